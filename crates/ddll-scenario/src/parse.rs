//! Parser for scenario files: one Erlang statement per line.
//!
//! A scenario (see the crate's `README.md`) is a text file whose
//! non-blank, non-comment lines each hold one statement `[Var =] Expr.`.
//! Expressions are Erlang literals (atoms, integers, floats, strings, chars,
//! binaries of literal segments, lists, tuples, maps), variables, and calls
//! `module:function(Args)` or `function(Args)` (the local calls `recv/1`,
//! `as/2`, `kill/1`). Lexical rules follow Erlang: quoted atoms and strings
//! with escapes, `$c` characters, `16#ff` based integers with `_` digit
//! separators, `1.0e10` floats, `%` comments.
//!
//! ```
//! use ddll_scenario::parse::{parse_scenario, Expr};
//! let lines = parse_scenario("% load it\nP = erlang:open_port({spawn, \"echo_drv\"}, []).\n")
//!     .expect("valid scenario");
//! assert_eq!(lines[0].number, 2);
//! assert_eq!(lines[0].stmt.bind.as_deref(), Some("P"));
//! assert!(matches!(&lines[0].stmt.expr, Expr::Call { module: Some(m), .. } if m == "erlang"));
//! ```

use std::fmt;

/// One statement together with its 1-based line number in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// Line number in the scenario file, counting from 1.
    pub number: usize,
    /// The statement on that line.
    pub stmt: Stmt,
}

/// `[Var =] Expr.`
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    /// The variable bound by `Var = ...`, if any.
    pub bind: Option<String>,
    /// The expression evaluated (and printed) for this line.
    pub expr: Expr,
}

/// An expression of the scenario language.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An atom, unquoted and unescaped (`'a b'` is `Atom("a b")`).
    Atom(String),
    /// An integer; `$c` characters are integers too (their code point).
    Int(i128),
    /// A float literal.
    Float(f64),
    /// A string literal (adjacent literals concatenated): a list of chars.
    Str(String),
    /// `<<Seg, ...>>`: Erlang's bit syntax (construction).
    Binary(Vec<BinSegment>),
    /// `Left ++ Right`: the elements of the proper list `Left` followed by `Right`.
    Append(Box<Expr>, Box<Expr>),
    /// `[A, B | Tail]`; the tail is `None` for a proper list.
    List(Vec<Expr>, Option<Box<Expr>>),
    /// `{A, B}`.
    Tuple(Vec<Expr>),
    /// `#{K => V}` in source order.
    Map(Vec<(Expr, Expr)>),
    /// A variable (`_` included).
    Var(String),
    /// `module:function(Args)` or, with `module: None`, `function(Args)`.
    Call {
        /// The module atom for a remote call; `None` for a local call.
        module: Option<String>,
        /// The function atom.
        function: String,
        /// The argument expressions.
        args: Vec<Expr>,
    },
}

/// One segment of a binary, `Value:Size/Type-Sign-Endian-unit:U`, as Erlang's bit syntax
/// writes it. A string value stands for one segment per char, each with this size and type.
#[derive(Debug, Clone, PartialEq)]
pub struct BinSegment {
    /// The value: a literal, a variable, a string or a parenthesized expression.
    pub value: Expr,
    /// The size, in units; `None` takes the type's default (8 bits for an integer, 64 for a
    /// float, the whole value for a binary).
    pub size: Option<Expr>,
    /// The segment's type (`integer` unless given).
    pub kind: BinType,
    /// `signed` (only matters for matching, which scenarios do not do; kept for the record).
    pub signed: bool,
    /// Byte order of an integer or float.
    pub endian: Endian,
    /// `unit:U`, the bits per size unit (1 to 256); `None` is the type's default.
    pub unit: Option<u32>,
}

impl BinSegment {
    /// A segment of `value` with every specifier left at its default.
    pub fn of(value: Expr) -> BinSegment {
        BinSegment {
            value,
            size: None,
            kind: BinType::Integer,
            signed: false,
            endian: Endian::Big,
            unit: None,
        }
    }
}

/// The type of a binary segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinType {
    /// `integer` (the default).
    Integer,
    /// `float`: 16, 32 or 64 bits.
    Float,
    /// `binary` or `bytes`: a binary value, unit 8.
    Binary,
    /// `bitstring` or `bits`: a binary value, unit 1.
    Bits,
    /// `utf8`, `utf16`, `utf32`: one character, encoded; no size or unit.
    Utf8,
    /// See [`BinType::Utf8`].
    Utf16,
    /// See [`BinType::Utf8`].
    Utf32,
}

/// The byte order of an integer or float segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endian {
    /// `big` (the default).
    Big,
    /// `little`.
    Little,
    /// `native`: the host's order.
    Native,
}

/// Why a line failed to parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number of the offending line.
    pub line: usize,
    /// What was wrong.
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// Parses a whole scenario; blank and comment-only lines are skipped.
/// Stops at the first bad line.
pub fn parse_scenario(text: &str) -> Result<Vec<Line>, ParseError> {
    let mut lines = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        if let Some(line) = parse_line(index + 1, raw)? {
            lines.push(line);
        }
    }
    Ok(lines)
}

/// Parses one line of a scenario: `Ok(None)` when it holds no statement
/// (blank or comment only). `number` is only used to label the result.
pub fn parse_line(number: usize, text: &str) -> Result<Option<Line>, ParseError> {
    let error = |message: String| ParseError {
        line: number,
        message,
    };
    let tokens = tokenize(text.strip_suffix('\r').unwrap_or(text)).map_err(error)?;
    if tokens.is_empty() {
        return Ok(None);
    }
    let stmt = Parser {
        tokens,
        pos: 0,
        depth: 0,
    }
    .statement()
    .map_err(error)?;
    Ok(Some(Line { number, stmt }))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Atom(String),
    Var(String),
    Int(i128),
    Float(f64),
    Str(String),
    Char(char),
    /// Punctuation: `( ) [ ] { } << >> , | : = => #{ ++ /` and `-`.
    Punct(&'static str),
    /// The statement terminator `.` (followed by blank, `%` or end).
    Dot,
}

/// Nesting limit: deeper input is an error rather than a stack overflow.
const MAX_DEPTH: usize = 200;

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        pos: 0,
    };
    let mut tokens = Vec::new();
    while let Some(token) = lexer.next_token()? {
        tokens.push(token);
    }
    Ok(tokens)
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.pos + ahead).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn next_token(&mut self) -> Result<Option<Token>, String> {
        loop {
            match self.peek() {
                None => return Ok(None),
                Some('%') => return Ok(None), // a comment runs to the end of the line
                Some(c) if c.is_whitespace() => self.pos += 1,
                Some(_) => break,
            }
        }
        let c = self.bump().ok_or("unexpected end")?;
        let token = match c {
            'a'..='z' => Token::Atom(name(self.name_rest(c))?),
            'A'..='Z' | '_' => Token::Var(name(self.name_rest(c))?),
            '0'..='9' => self.number(c)?,
            '\'' => Token::Atom(name(self.quoted('\'')?)?),
            '"' => Token::Str(self.quoted('"')?),
            '$' => Token::Char(self.char_literal()?),
            '(' => Token::Punct("("),
            ')' => Token::Punct(")"),
            '[' => Token::Punct("["),
            ']' => Token::Punct("]"),
            '{' => Token::Punct("{"),
            '}' => Token::Punct("}"),
            ',' => Token::Punct(","),
            '|' => Token::Punct("|"),
            ':' => Token::Punct(":"),
            '-' => Token::Punct("-"),
            '/' => Token::Punct("/"),
            '+' if self.peek() == Some('+') => {
                self.pos += 1;
                Token::Punct("++")
            }
            '<' if self.peek() == Some('<') => {
                self.pos += 1;
                Token::Punct("<<")
            }
            '>' if self.peek() == Some('>') => {
                self.pos += 1;
                Token::Punct(">>")
            }
            '=' if self.peek() == Some('>') => {
                self.pos += 1;
                Token::Punct("=>")
            }
            '=' => Token::Punct("="),
            '#' if self.peek() == Some('{') => {
                self.pos += 1;
                Token::Punct("#{")
            }
            '.' => match self.peek() {
                None | Some('%') => Token::Dot,
                Some(n) if n.is_whitespace() => Token::Dot,
                Some(n) => return Err(format!("unexpected '.' before {n:?}")),
            },
            other => return Err(format!("unexpected character {other:?}")),
        };
        Ok(Some(token))
    }

    fn name_rest(&mut self, first: char) -> String {
        let mut name = String::from(first);
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' || c == '@' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// Digits (with `_` between digits) valid in `radix`; at least one.
    fn digits(&mut self, radix: u32, first: Option<char>) -> Result<String, String> {
        let mut digits = String::new();
        if let Some(c) = first {
            digits.push(c);
        }
        loop {
            match self.peek() {
                Some(c) if c.is_digit(radix) => {
                    digits.push(c);
                    self.pos += 1;
                }
                Some('_')
                    if !digits.is_empty() && self.peek_at(1).is_some_and(|n| n.is_digit(radix)) =>
                {
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if digits.is_empty() {
            return Err(format!("missing digits in base {radix}"));
        }
        Ok(digits)
    }

    fn number(&mut self, first: char) -> Result<Token, String> {
        let int_part = self.digits(10, Some(first))?;
        if self.peek() == Some('#') {
            self.pos += 1;
            let radix: u32 = int_part
                .parse()
                .ok()
                .filter(|r| (2..=36).contains(r))
                .ok_or_else(|| format!("bad integer base {int_part}"))?;
            let digits = self.digits(radix, None)?;
            return parse_int(&digits, radix).map(Token::Int);
        }
        let is_fraction =
            self.peek() == Some('.') && self.peek_at(1).is_some_and(|c| c.is_ascii_digit());
        if !is_fraction {
            return parse_int(&int_part, 10).map(Token::Int);
        }
        self.pos += 1;
        let fraction = self.digits(10, None)?;
        let mut text = format!("{int_part}.{fraction}");
        if matches!(self.peek(), Some('e' | 'E')) {
            let sign_len = usize::from(matches!(self.peek_at(1), Some('+' | '-')));
            if self
                .peek_at(1 + sign_len)
                .is_some_and(|c| c.is_ascii_digit())
            {
                text.push('e');
                if sign_len == 1 {
                    text.push(self.peek_at(1).unwrap_or('+'));
                }
                self.pos += 1 + sign_len;
                text.push_str(&self.digits(10, None)?);
            }
        }
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(Token::Float(f)),
            _ => Err(format!("bad float {text}")),
        }
    }

    /// The body of a quoted atom or string, after its opening quote.
    fn quoted(&mut self, quote: char) -> Result<String, String> {
        let mut text = String::new();
        loop {
            match self.bump() {
                None => return Err(format!("unterminated {quote}...{quote}")),
                Some(c) if c == quote => return Ok(text),
                Some('\\') => text.push(self.escape()?),
                Some(c) => text.push(c),
            }
        }
    }

    fn char_literal(&mut self) -> Result<char, String> {
        match self.bump() {
            None => Err("'$' at end of line".to_string()),
            Some('\\') => self.escape(),
            Some(c) => Ok(c),
        }
    }

    /// An escape sequence, after its backslash.
    fn escape(&mut self) -> Result<char, String> {
        let c = self.bump().ok_or("escape at end of line")?;
        let simple = match c {
            'b' => Some('\u{8}'),
            'd' => Some('\u{7f}'),
            'e' => Some('\u{1b}'),
            'f' => Some('\u{c}'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            's' => Some(' '),
            't' => Some('\t'),
            'v' => Some('\u{b}'),
            _ => None,
        };
        if let Some(s) = simple {
            return Ok(s);
        }
        match c {
            '0'..='7' => {
                let mut value = c.to_digit(8).unwrap_or(0);
                for _ in 0..2 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(value).ok_or_else(|| format!("bad octal escape {value}"))
            }
            'x' => {
                let digits = if self.peek() == Some('{') {
                    self.pos += 1;
                    let mut digits = String::new();
                    loop {
                        match self.bump() {
                            Some('}') => break,
                            Some(d) if d.is_ascii_hexdigit() && digits.len() < 8 => digits.push(d),
                            _ => return Err("bad \\x{...} escape".to_string()),
                        }
                    }
                    digits
                } else {
                    let mut digits = String::new();
                    for _ in 0..2 {
                        match self.bump() {
                            Some(d) if d.is_ascii_hexdigit() => digits.push(d),
                            _ => return Err("bad \\xHH escape".to_string()),
                        }
                    }
                    digits
                };
                u32::from_str_radix(&digits, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .ok_or_else(|| format!("bad code point \\x{{{digits}}}"))
            }
            '^' => {
                let ctl = self.bump().ok_or("escape at end of line")?;
                char::from_u32(u32::from(ctl) & 0x1f).ok_or_else(|| "bad \\^ escape".to_string())
            }
            // Any other escaped char stands for itself (\\, \', \", ...).
            other => Ok(other),
        }
    }
}

/// The longest atom or variable name Erlang's scanner accepts, in characters.
const MAX_NAME_CHARS: usize = 255;

/// An atom or variable name, refused when longer than Erlang allows (its scanner rejects the
/// line, and ddll's atoms cannot hold it).
fn name(text: String) -> Result<String, String> {
    if text.chars().count() > MAX_NAME_CHARS {
        return Err(format!(
            "atom or variable longer than {MAX_NAME_CHARS} characters"
        ));
    }
    Ok(text)
}

fn parse_int(digits: &str, radix: u32) -> Result<i128, String> {
    i128::from_str_radix(digits, radix).map_err(|_| format!("integer too large: {digits}"))
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Some(Token::Punct(q)) if *q == p)
    }

    fn expect(&mut self, p: &str) -> Result<(), String> {
        match self.next() {
            Some(Token::Punct(q)) if q == p => Ok(()),
            other => Err(format!(
                "expected '{p}', found {}",
                describe(other.as_ref())
            )),
        }
    }

    fn statement(mut self) -> Result<Stmt, String> {
        let bind = match (self.tokens.first(), self.tokens.get(1)) {
            (Some(Token::Var(name)), Some(Token::Punct("="))) => {
                let name = name.clone();
                self.pos = 2;
                Some(name)
            }
            _ => None,
        };
        let expr = self.expr()?;
        match self.next() {
            Some(Token::Dot) => {}
            other => return Err(format!("expected '.', found {}", describe(other.as_ref()))),
        }
        if let Some(extra) = self.peek() {
            return Err(format!(
                "one statement per line: unexpected {}",
                describe(Some(extra))
            ));
        }
        Ok(Stmt { bind, expr })
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let left = self.expr_operand()?;
        if !self.is_punct("++") {
            return Ok(left);
        }
        self.pos += 1;
        // Right-associative, as in Erlang: `A ++ B ++ C` is `A ++ (B ++ C)`.
        self.depth += 1;
        let right = self.expr();
        self.depth -= 1;
        Ok(Expr::Append(Box::new(left), Box::new(right?)))
    }

    fn expr_inner(&mut self) -> Result<Expr, String> {
        let token = self.next();
        match token {
            Some(Token::Atom(name)) => self.after_atom(name),
            Some(Token::Var(name)) => Ok(Expr::Var(name)),
            Some(Token::Int(i)) => Ok(Expr::Int(i)),
            Some(Token::Float(f)) => Ok(Expr::Float(f)),
            Some(Token::Char(c)) => Ok(Expr::Int(i128::from(u32::from(c)))),
            Some(Token::Str(s)) => Ok(Expr::Str(self.more_strings(s))),
            Some(Token::Punct("-")) => match self.next() {
                Some(Token::Int(i)) => Ok(Expr::Int(-i)),
                Some(Token::Float(f)) => Ok(Expr::Float(-f)),
                Some(Token::Char(c)) => Ok(Expr::Int(-i128::from(u32::from(c)))),
                other => Err(format!(
                    "expected a number after '-', found {}",
                    describe(other.as_ref())
                )),
            },
            Some(Token::Punct("[")) => self.list(),
            Some(Token::Punct("{")) => {
                let elems = self.sequence("}")?;
                Ok(Expr::Tuple(elems))
            }
            Some(Token::Punct("#{")) => self.map(),
            Some(Token::Punct("<<")) => self.binary(),
            Some(Token::Punct("(")) => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            other => Err(format!(
                "expected an expression, found {}",
                describe(other.as_ref())
            )),
        }
    }

    /// Adjacent string literals are one string, as in Erlang.
    fn more_strings(&mut self, mut text: String) -> String {
        while let Some(Token::Str(more)) = self.peek() {
            text.push_str(more);
            self.pos += 1;
        }
        text
    }

    fn after_atom(&mut self, name: String) -> Result<Expr, String> {
        if self.is_punct(":") {
            self.pos += 1;
            let function = match self.next() {
                Some(Token::Atom(f)) => f,
                other => {
                    return Err(format!(
                        "expected a function name, found {}",
                        describe(other.as_ref())
                    ))
                }
            };
            self.expect("(")?;
            let args = self.sequence(")")?;
            return Ok(Expr::Call {
                module: Some(name),
                function,
                args,
            });
        }
        if self.is_punct("(") {
            self.pos += 1;
            let args = self.sequence(")")?;
            return Ok(Expr::Call {
                module: None,
                function: name,
                args,
            });
        }
        Ok(Expr::Atom(name))
    }

    /// Comma-separated expressions up to the closing punctuation `close`.
    fn sequence(&mut self, close: &str) -> Result<Vec<Expr>, String> {
        let mut elems = Vec::new();
        if self.is_punct(close) {
            self.pos += 1;
            return Ok(elems);
        }
        loop {
            elems.push(self.expr()?);
            if self.is_punct(",") {
                self.pos += 1;
            } else {
                self.expect(close)?;
                return Ok(elems);
            }
        }
    }

    fn list(&mut self) -> Result<Expr, String> {
        let mut elems = Vec::new();
        if self.is_punct("]") {
            self.pos += 1;
            return Ok(Expr::List(elems, None));
        }
        loop {
            elems.push(self.expr()?);
            if self.is_punct(",") {
                self.pos += 1;
            } else if self.is_punct("|") {
                self.pos += 1;
                let tail = self.expr()?;
                self.expect("]")?;
                return Ok(Expr::List(elems, Some(Box::new(tail))));
            } else {
                self.expect("]")?;
                return Ok(Expr::List(elems, None));
            }
        }
    }

    fn map(&mut self) -> Result<Expr, String> {
        let mut pairs = Vec::new();
        if self.is_punct("}") {
            self.pos += 1;
            return Ok(Expr::Map(pairs));
        }
        loop {
            let key = self.expr()?;
            self.expect("=>")?;
            let value = self.expr()?;
            pairs.push((key, value));
            if self.is_punct(",") {
                self.pos += 1;
            } else {
                self.expect("}")?;
                return Ok(Expr::Map(pairs));
            }
        }
    }

    fn binary(&mut self) -> Result<Expr, String> {
        let mut segments = Vec::new();
        if self.is_punct(">>") {
            self.pos += 1;
            return Ok(Expr::Binary(segments));
        }
        loop {
            segments.push(self.segment()?);
            if self.is_punct(",") {
                self.pos += 1;
            } else {
                self.expect(">>")?;
                return Ok(Expr::Binary(segments));
            }
        }
    }

    /// `Value[:Size][/Spec-Spec...]`. As in Erlang, the value and the size are literals,
    /// variables or parenthesized expressions (`<<(A ++ B)/binary>>`).
    fn segment(&mut self) -> Result<BinSegment, String> {
        let value = self.segment_operand("a segment value")?;
        let mut segment = BinSegment::of(value);
        if self.is_punct(":") {
            self.pos += 1;
            segment.size = Some(self.segment_operand("a segment size")?);
        }
        if !self.is_punct("/") {
            return Ok(segment);
        }
        self.pos += 1;
        loop {
            match self.next() {
                Some(Token::Atom(spec)) if spec == "unit" => {
                    self.expect(":")?;
                    match self.next() {
                        Some(Token::Int(u)) if (1..=256).contains(&u) => {
                            segment.unit = Some(u as u32);
                        }
                        other => {
                            return Err(format!(
                                "expected a unit from 1 to 256, found {}",
                                describe(other.as_ref())
                            ))
                        }
                    }
                }
                Some(Token::Atom(spec)) => match spec.as_str() {
                    "integer" => segment.kind = BinType::Integer,
                    "float" => segment.kind = BinType::Float,
                    "binary" | "bytes" => segment.kind = BinType::Binary,
                    "bitstring" | "bits" => segment.kind = BinType::Bits,
                    "utf8" => segment.kind = BinType::Utf8,
                    "utf16" => segment.kind = BinType::Utf16,
                    "utf32" => segment.kind = BinType::Utf32,
                    "signed" => segment.signed = true,
                    "unsigned" => segment.signed = false,
                    "big" => segment.endian = Endian::Big,
                    "little" => segment.endian = Endian::Little,
                    "native" => segment.endian = Endian::Native,
                    other => return Err(format!("unknown binary segment type {other}")),
                },
                other => {
                    return Err(format!(
                        "expected a binary segment type, found {}",
                        describe(other.as_ref())
                    ))
                }
            }
            if self.is_punct("-") {
                self.pos += 1;
            } else {
                return Ok(segment);
            }
        }
    }

    /// A segment's value or size: a literal (`-` allowed before a number), a variable, a
    /// string or `(Expr)`.
    fn segment_operand(&mut self, what: &str) -> Result<Expr, String> {
        // An atom is a value here (BEAM raises `badarg` when it builds the segment), never the
        // start of a call: `<<a:8>>` is not `a:8(...)`.
        if let Some(Token::Atom(a)) = self.peek() {
            let a = a.clone();
            self.pos += 1;
            return Ok(Expr::Atom(a));
        }
        match self.peek() {
            Some(
                Token::Int(_)
                | Token::Float(_)
                | Token::Char(_)
                | Token::Str(_)
                | Token::Var(_)
                | Token::Punct("-" | "("),
            ) => self.expr_operand(),
            other => Err(format!(
                "expected {what} (a literal, variable or parenthesized expression), found {}",
                describe(other)
            )),
        }
    }

    /// One operand without a following `++` (that needs parentheses inside a segment).
    fn expr_operand(&mut self) -> Result<Expr, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("nesting deeper than {MAX_DEPTH}"));
        }
        let result = self.expr_inner();
        self.depth -= 1;
        result
    }
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "end of line".to_string(),
        Some(Token::Atom(a)) => format!("atom {a}"),
        Some(Token::Var(v)) => format!("variable {v}"),
        Some(Token::Int(i)) => format!("integer {i}"),
        Some(Token::Float(f)) => format!("float {f}"),
        Some(Token::Str(s)) => format!("string {s:?}"),
        Some(Token::Char(c)) => format!("char {c:?}"),
        Some(Token::Punct(p)) => format!("'{p}'"),
        Some(Token::Dot) => "'.'".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn atom(a: &str) -> Expr {
        Expr::Atom(a.to_string())
    }
    fn var(v: &str) -> Expr {
        Expr::Var(v.to_string())
    }
    fn string(s: &str) -> Expr {
        Expr::Str(s.to_string())
    }
    fn list(elems: Vec<Expr>) -> Expr {
        Expr::List(elems, None)
    }
    fn call(module: Option<&str>, function: &str, args: Vec<Expr>) -> Expr {
        Expr::Call {
            module: module.map(str::to_string),
            function: function.to_string(),
            args,
        }
    }
    fn seg(value: Expr) -> BinSegment {
        BinSegment::of(value)
    }
    fn stmt(expr: Expr) -> Option<Stmt> {
        Some(Stmt { bind: None, expr })
    }

    /// Expected outcome: a statement, nothing (blank line), or an error
    /// whose message contains the given text.
    enum Want {
        Stmt(Option<Stmt>),
        Err(&'static str),
    }

    fn check(input: &str, expected: Want) {
        let got = parse_line(7, input);
        match (got, expected) {
            (Ok(line), Want::Stmt(want)) => {
                assert_eq!(line.map(|l| l.stmt), want, "input: {input:?}");
            }
            (Err(e), Want::Err(text)) => {
                assert_eq!(e.line, 7, "input: {input:?}");
                assert!(
                    e.message.contains(text),
                    "input {input:?}: error {e} lacks {text:?}"
                );
            }
            (Ok(line), Want::Err(text)) => {
                panic!("input {input:?}: wanted error {text:?}, got {line:?}")
            }
            (Err(e), Want::Stmt(want)) => panic!("input {input:?}: wanted {want:?}, got error {e}"),
        }
    }

    #[test]
    fn literals() {
        use Want::Stmt as S;
        let cases: Vec<(&str, Want)> = vec![
            ("ok.", S(stmt(atom("ok")))),
            ("'hello world'.", S(stmt(atom("hello world")))),
            ("'it''s'.", Want::Err("expected '.', found atom s")),
            (r"'a\'b\n'.", S(stmt(atom("a'b\n")))),
            ("node@host.", S(stmt(atom("node@host")))),
            ("42.", S(stmt(Expr::Int(42)))),
            ("-42.", S(stmt(Expr::Int(-42)))),
            ("1_000_000.", S(stmt(Expr::Int(1_000_000)))),
            ("16#ff.", S(stmt(Expr::Int(255)))),
            ("16#FF_FF.", S(stmt(Expr::Int(65535)))),
            ("2#1010.", S(stmt(Expr::Int(10)))),
            ("36#z.", S(stmt(Expr::Int(35)))),
            ("37#1.", Want::Err("bad integer base")),
            ("8#9.", Want::Err("missing digits")),
            (
                "123456789012345678901234567890.",
                S(stmt(Expr::Int(123_456_789_012_345_678_901_234_567_890))),
            ),
            (
                "1000000000000000000000000000000000000000000.",
                Want::Err("integer too large"),
            ),
            ("1.5.", S(stmt(Expr::Float(1.5)))),
            ("-0.25.", S(stmt(Expr::Float(-0.25)))),
            ("1.0e10.", S(stmt(Expr::Float(1.0e10)))),
            ("2.5E-3.", S(stmt(Expr::Float(2.5e-3)))),
            ("1.0e+2.", S(stmt(Expr::Float(100.0)))),
            ("1_0.5.", S(stmt(Expr::Float(10.5)))),
            ("$a.", S(stmt(Expr::Int(97)))),
            ("$\\n.", S(stmt(Expr::Int(10)))),
            ("$%.", S(stmt(Expr::Int(37)))),
            ("$ .", S(stmt(Expr::Int(32)))),
            ("$é.", S(stmt(Expr::Int(233)))),
            ("$\\x{1F600}.", S(stmt(Expr::Int(0x1F600)))),
            ("$\\101.", S(stmt(Expr::Int(65)))),
            ("$\\^a.", S(stmt(Expr::Int(1)))),
            ("\"abc\".", S(stmt(string("abc")))),
            ("\"\".", S(stmt(string("")))),
            (
                "\"tab\\there\\\"q\\\\ \\x41\\x{42}\\101\\s\"",
                Want::Err("expected '.'"),
            ),
            (
                "\"tab\\there\\\"q\\\\ \\x41\\x{42}\\101\\s\".",
                S(stmt(string("tab\there\"q\\ ABA "))),
            ),
            ("\"a%b\". % comment", S(stmt(string("a%b")))),
            ("\"ab\" \"cd\".", S(stmt(string("abcd")))),
            ("\"unterminated.", Want::Err("unterminated")),
            ("'unterminated.", Want::Err("unterminated")),
            ("\"\\x{110000}\".", Want::Err("bad code point")),
            ("\"\\xZZ\".", Want::Err("bad \\xHH")),
            ("<<>>.", S(stmt(Expr::Binary(vec![])))),
            (
                "<<\"abc\">>.",
                S(stmt(Expr::Binary(vec![seg(string("abc"))]))),
            ),
            (
                "<<1,2,3>>.",
                S(stmt(Expr::Binary(vec![
                    seg(Expr::Int(1)),
                    seg(Expr::Int(2)),
                    seg(Expr::Int(3)),
                ]))),
            ),
            (
                "<<\"a\",1,$b,-1>>.",
                S(stmt(Expr::Binary(vec![
                    seg(string("a")),
                    seg(Expr::Int(1)),
                    seg(Expr::Int(98)),
                    seg(Expr::Int(-1)),
                ]))),
            ),
            ("<<X>>.", S(stmt(Expr::Binary(vec![seg(var("X"))])))),
            (
                "<<N:32, N:16/little, B/binary, F:64/float>>.",
                S(stmt(Expr::Binary(vec![
                    BinSegment {
                        size: Some(Expr::Int(32)),
                        ..seg(var("N"))
                    },
                    BinSegment {
                        size: Some(Expr::Int(16)),
                        endian: Endian::Little,
                        ..seg(var("N"))
                    },
                    BinSegment {
                        kind: BinType::Binary,
                        ..seg(var("B"))
                    },
                    BinSegment {
                        size: Some(Expr::Int(64)),
                        kind: BinType::Float,
                        ..seg(var("F"))
                    },
                ]))),
            ),
            (
                "<<(<<1>>):Size/bits-unit:8, -2:16/signed-native-integer, \"ab\"/utf16>>.",
                S(stmt(Expr::Binary(vec![
                    BinSegment {
                        size: Some(var("Size")),
                        kind: BinType::Bits,
                        unit: Some(8),
                        ..seg(Expr::Binary(vec![seg(Expr::Int(1))]))
                    },
                    BinSegment {
                        size: Some(Expr::Int(16)),
                        signed: true,
                        endian: Endian::Native,
                        ..seg(Expr::Int(-2))
                    },
                    BinSegment {
                        kind: BinType::Utf16,
                        ..seg(string("ab"))
                    },
                ]))),
            ),
            (
                "<<1:8/bytes-big-unsigned>>.",
                S(stmt(Expr::Binary(vec![BinSegment {
                    size: Some(Expr::Int(8)),
                    kind: BinType::Binary,
                    ..seg(Expr::Int(1))
                }]))),
            ),
            (
                "<<a:b>>.",
                S(stmt(Expr::Binary(vec![BinSegment {
                    size: Some(atom("b")),
                    ..seg(atom("a"))
                }]))),
            ),
            ("<<[]>>.", Want::Err("expected a segment value")),
            ("<<1:[]>>.", Want::Err("expected a segment size")),
            ("<<1/unit:0>>.", Want::Err("unit from 1 to 256")),
            ("<<1/unit:257>>.", Want::Err("unit from 1 to 256")),
            ("<<1/word>>.", Want::Err("unknown binary segment type word")),
            ("<<1/8>>.", Want::Err("expected a binary segment type")),
            ("<<A ++ B>>.", Want::Err("expected '>>'")),
            (
                "\"a\" ++ X ++ [].",
                S(stmt(Expr::Append(
                    Box::new(string("a")),
                    Box::new(Expr::Append(Box::new(var("X")), Box::new(list(vec![])))),
                ))),
            ),
            ("(a).", S(stmt(atom("a")))),
            ("(a.", Want::Err("expected ')'")),
            ("X ++.", Want::Err("expected an expression")),
        ];
        for (input, want) in cases {
            check(input, want);
        }
    }

    #[test]
    fn structures_and_calls() {
        use Want::Stmt as S;
        let cases: Vec<(&str, Want)> = vec![
            ("[].", S(stmt(list(vec![])))),
            ("[1, a].", S(stmt(list(vec![Expr::Int(1), atom("a")])))),
            (
                "[1 | 2].",
                S(stmt(Expr::List(
                    vec![Expr::Int(1)],
                    Some(Box::new(Expr::Int(2))),
                ))),
            ),
            (
                "[1, 2 | T].",
                S(stmt(Expr::List(
                    vec![Expr::Int(1), Expr::Int(2)],
                    Some(Box::new(var("T"))),
                ))),
            ),
            ("[[[]]].", S(stmt(list(vec![list(vec![list(vec![])])])))),
            ("[| 2].", Want::Err("expected an expression")),
            ("[1,].", Want::Err("expected an expression")),
            ("{}.", S(stmt(Expr::Tuple(vec![])))),
            (
                "{a, {b}, \"c\"}.",
                S(stmt(Expr::Tuple(vec![
                    atom("a"),
                    Expr::Tuple(vec![atom("b")]),
                    string("c"),
                ]))),
            ),
            ("{a.", Want::Err("expected '}'")),
            ("#{}.", S(stmt(Expr::Map(vec![])))),
            (
                "#{k => v, 1 => [x]}.",
                S(stmt(Expr::Map(vec![
                    (atom("k"), atom("v")),
                    (Expr::Int(1), list(vec![atom("x")])),
                ]))),
            ),
            // `:=` lexes as ':' then '=': `k:` reads as the start of a remote call
            ("#{k := v}.", Want::Err("expected a function name")),
            ("X.", S(stmt(var("X")))),
            ("_Ignored.", S(stmt(var("_Ignored")))),
            (
                "recv(1000).",
                S(stmt(call(None, "recv", vec![Expr::Int(1000)]))),
            ),
            ("kill(p1).", S(stmt(call(None, "kill", vec![atom("p1")])))),
            (
                "erlang:self().",
                S(stmt(call(Some("erlang"), "self", vec![]))),
            ),
            (
                "as(p1, erl_ddll:load(DriverDir, echo_drv)).",
                S(stmt(call(
                    None,
                    "as",
                    vec![
                        atom("p1"),
                        call(
                            Some("erl_ddll"),
                            "load",
                            vec![var("DriverDir"), atom("echo_drv")],
                        ),
                    ],
                ))),
            ),
            (
                "'erl_ddll':'load'(x).",
                S(stmt(call(Some("erl_ddll"), "load", vec![atom("x")]))),
            ),
            ("erlang:(x).", Want::Err("expected a function name")),
            ("erlang:f.", Want::Err("expected '('")),
            ("f(a, b.", Want::Err("expected ')'")),
            (
                "X = f().",
                S(Some(Stmt {
                    bind: Some("X".into()),
                    expr: call(None, "f", vec![]),
                })),
            ),
            (
                "P = erlang:open_port({spawn_driver, \"echo_drv\"}, [binary]). % trailing",
                S(Some(Stmt {
                    bind: Some("P".into()),
                    expr: call(
                        Some("erlang"),
                        "open_port",
                        vec![
                            Expr::Tuple(vec![atom("spawn_driver"), string("echo_drv")]),
                            list(vec![atom("binary")]),
                        ],
                    ),
                })),
            ),
            ("X = Y = 1.", Want::Err("expected '.'")),
            ("1 = X.", Want::Err("expected '.'")),
        ];
        for (input, want) in cases {
            check(input, want);
        }
    }

    #[test]
    fn blank_comments_and_terminators() {
        use Want::Stmt as S;
        let cases: Vec<(&str, Want)> = vec![
            ("", S(None)),
            ("   \t ", S(None)),
            ("% just a comment", S(None)),
            ("  %% indented comment with 'quote and \"dq", S(None)),
            ("ok.\r", S(stmt(atom("ok")))),
            ("ok .", S(stmt(atom("ok")))),
            ("ok.%c", S(stmt(atom("ok")))),
            ("ok", Want::Err("expected '.'")),
            ("ok.x", Want::Err("unexpected '.'")),
            ("a. b.", Want::Err("one statement per line")),
            ("ok. ok", Want::Err("one statement per line")),
            (".", Want::Err("expected an expression")),
            ("a + b.", Want::Err("unexpected character '+'")),
            ("- a.", Want::Err("expected a number after '-'")),
            (
                "{ok, [1,2|3], #{k=>\"v\"}, <<\"x\", 255>>, -1.0e-2, $z}.",
                S(stmt(Expr::Tuple(vec![
                    atom("ok"),
                    Expr::List(
                        vec![Expr::Int(1), Expr::Int(2)],
                        Some(Box::new(Expr::Int(3))),
                    ),
                    Expr::Map(vec![(atom("k"), string("v"))]),
                    Expr::Binary(vec![seg(string("x")), seg(Expr::Int(255))]),
                    Expr::Float(-0.01),
                    Expr::Int(122),
                ]))),
            ),
        ];
        for (input, want) in cases {
            check(input, want);
        }
    }

    #[test]
    fn whole_file_numbers_lines_and_reports_errors() {
        let text = "% header\n\nA = erlang:self().\n  \nrecv(10). % wait\n";
        let lines = parse_scenario(text).expect("valid");
        let numbers: Vec<usize> = lines.iter().map(|l| l.number).collect();
        assert_eq!(numbers, vec![3, 5]);
        assert_eq!(lines[0].stmt.bind.as_deref(), Some("A"));
        assert_eq!(lines[1].stmt.expr, call(None, "recv", vec![Expr::Int(10)]));

        let err = parse_scenario("ok.\n\nbad(.\nok.\n").expect_err("line 3 is bad");
        assert_eq!(err.line, 3);
        assert_eq!(err.to_string(), format!("line 3: {}", err.message));
    }

    /// Erlang's scanner refuses atoms and variables of more than 255 characters; so does this
    /// parser (an atom that long cannot exist).
    #[test]
    fn names_longer_than_erlang_allows_are_refused() {
        let at_limit = "a".repeat(255);
        let over = "a".repeat(256);
        let cases: Vec<(String, bool)> = vec![
            (format!("{at_limit}."), true),
            (format!("{over}."), false),
            (format!("'{at_limit}'."), true),
            (format!("'{over}'."), false),
            (format!("V{} = 1.", &at_limit[1..]), true),
            (format!("V{} = 1.", &over[1..]), false),
            (format!("as({over}, erlang:self())."), false),
            (format!("erl_ddll:{over}()."), false),
            // Strings have no such limit.
            (format!("\"{over}\"."), true),
        ];
        for (input, accepted) in cases {
            let got = parse_line(1, &input);
            assert_eq!(got.is_ok(), accepted, "{input}: {got:?}");
            if let Err(e) = got {
                assert!(e.message.contains("longer than 255"), "{e}");
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}.", "[".repeat(10_000), "]".repeat(10_000));
        let err = parse_line(1, &deep).expect_err("too deep");
        assert!(err.message.contains("nesting"), "{err}");
        let ok = format!("{}{}.", "{".repeat(50), "}".repeat(50));
        assert!(parse_line(1, &ok).is_ok());
    }

    /// The checked-in corpus parses (when run from the workspace), but for `syntax_errors.scen`,
    /// whose lines are meant to be refused.
    #[test]
    fn corpus_parses() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        let mut parsed = 0;
        for entry in entries.flatten() {
            let path = entry.path();
            let deliberate = path.file_stem().is_some_and(|s| s == "syntax_errors");
            if path.extension().is_some_and(|e| e == "scen") && !deliberate {
                let text = std::fs::read_to_string(&path).expect("readable scenario");
                let lines =
                    parse_scenario(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(!lines.is_empty(), "{}", path.display());
                parsed += 1;
            }
        }
        assert!(parsed > 0, "no scenarios in {}", dir.display());
    }

    /// Random and mutated input never panics (small xorshift, no deps).
    #[test]
    fn random_input_never_panics() {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: Vec<char> = "abzAZ_09#$%.,:;=>-+|[]{}()<<>>\"'\\ \t\r\nxe^@é\u{1F600}"
            .chars()
            .collect();
        let seeds = [
            "P = erlang:open_port({spawn_driver, \"echo_drv\"}, [binary]).",
            "{ok, [1,2|3], #{k=>\"v\\x{41}\"}, <<\"x\", 255>>, -1.0e-2, $z, 16#ff_ff}.",
            "as(p1, erl_ddll:load(DriverDir, 'echo\\'drv')). % c",
        ];
        for round in 0..20_000 {
            let mut text: Vec<char> = if round % 2 == 0 {
                let len = (next() % 40) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                seeds[(next() % seeds.len() as u64) as usize]
                    .chars()
                    .collect()
            };
            for _ in 0..(next() % 4) {
                if text.is_empty() {
                    break;
                }
                let at = (next() % text.len() as u64) as usize;
                match next() % 3 {
                    0 => {
                        text.remove(at);
                    }
                    1 => text.insert(at, alphabet[(next() % alphabet.len() as u64) as usize]),
                    _ => text.truncate(at),
                }
            }
            let input: String = text.into_iter().collect();
            let _ = parse_scenario(&input);
        }
    }
}
