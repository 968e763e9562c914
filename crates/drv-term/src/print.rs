//! Printing terms exactly as OTP 25's `io_lib:format("~0p", [Term])` does.

use std::fmt::{self, Write};

use crate::view::{Node, TermRef};
use crate::{Atom, Pid, Port, Ref, Term};

/// Names pids, ports and references when printing with [`Term::write_with`],
/// e.g. to give them stable names in test transcripts.
pub trait IdentNamer {
    /// Text printed for a pid.
    fn pid(&mut self, pid: &Pid) -> String;
    /// Text printed for a port.
    fn port(&mut self, port: &Port) -> String;
    /// Text printed for a reference.
    fn reference(&mut self, reference: &Ref) -> String;
}

/// The default naming: `<0.N.S>`, `#Port<0.N>`, `#Ref<0.W2.W1.W0>`.
///
/// Like a non-distributed BEAM, every identifier prints with node number 0.
#[derive(Debug, Default, Clone, Copy)]
pub struct DefaultNamer;

impl IdentNamer for DefaultNamer {
    fn pid(&mut self, pid: &Pid) -> String {
        format!("<0.{}.{}>", pid.id, pid.serial)
    }
    fn port(&mut self, port: &Port) -> String {
        format!("#Port<0.{}>", port.id)
    }
    fn reference(&mut self, reference: &Ref) -> String {
        let mut s = String::from("#Ref<0");
        for w in reference.words().iter().rev() {
            let _ = write!(s, ".{w}");
        }
        s.push('>');
        s
    }
}

/// Whether `c` may appear in a printable Latin-1 list or binary.
fn printable_latin1(c: u32) -> bool {
    matches!(c, 32..=126 | 160..=255 | 8..=13 | 27)
}

/// Writes one character of a quoted string or atom, escaped as `io_lib` does.
fn push_escaped(out: &mut String, c: u32, quote: char) {
    match c {
        10 => out.push_str("\\n"),
        13 => out.push_str("\\r"),
        9 => out.push_str("\\t"),
        11 => out.push_str("\\v"),
        8 => out.push_str("\\b"),
        12 => out.push_str("\\f"),
        27 => out.push_str("\\e"),
        127 => out.push_str("\\d"),
        92 => out.push_str("\\\\"),
        _ if c == quote as u32 => {
            out.push('\\');
            out.push(quote);
        }
        0..=31 | 128..=159 => {
            let _ = write!(out, "\\{c:03o}");
        }
        256.. => {
            let _ = write!(out, "\\x{{{c:X}}}");
        }
        _ => out.push(char::from_u32(c).expect("below 256")),
    }
}

const RESERVED: [&str; 28] = [
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
    "rem", "try", "when", "xor", "",
];

fn lower_start(c: char) -> bool {
    c.is_ascii_lowercase() || (('ß'..='ÿ').contains(&c) && c != '÷')
}

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || c == '_'
        || c == '@'
        || (('À'..='ÿ').contains(&c) && c != '×' && c != '÷')
}

/// Writes an atom, quoted only when Erlang's reader needs it.
pub(crate) fn write_atom(out: &mut String, atom: Atom) {
    let name = atom.as_str();
    let mut chars = name.chars();
    let bare =
        chars.next().is_some_and(lower_start) && chars.all(name_char) && !RESERVED.contains(&name);
    if bare {
        out.push_str(name);
    } else {
        out.push('\'');
        for c in name.chars() {
            push_escaped(out, c as u32, '\'');
        }
        out.push('\'');
    }
}

/// Writes a float in the shortest form that reads back exactly, choosing
/// between `123.45` and `1.2345e2` as OTP does: the shorter, fixed on a tie,
/// but never fixed from 2^53 up.
pub fn write_float(out: &mut String, f: f64) {
    // Rust's `{:e}` gives the shortest round-trip digits: "d.ddde[-]x".
    let sci = format!("{:e}", f.abs());
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("exponent is an integer");
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let (first, rest) = digits.split_at(1);
    let scientific = format!("{first}.{}e{exp}", if rest.is_empty() { "0" } else { rest });
    let fixed = if exp >= 0 {
        let int_len = exp as usize + 1;
        if digits.len() <= int_len {
            format!("{digits}{}.0", "0".repeat(int_len - digits.len()))
        } else {
            format!("{}.{}", &digits[..int_len], &digits[int_len..])
        }
    } else {
        format!("0.{}{digits}", "0".repeat((-exp - 1) as usize))
    };
    if f.is_sign_negative() {
        out.push('-');
    }
    const TWO_POW_53: f64 = 9_007_199_254_740_992.0;
    let use_fixed = fixed.len() <= scientific.len() && f.abs() < TWO_POW_53;
    out.push_str(if use_fixed { &fixed } else { &scientific });
}

impl Term {
    /// Appends the `~0p` text of this term, with pids, ports and references named by
    /// `namer`.
    pub fn write_with(&self, out: &mut String, namer: &mut dyn IdentNamer) {
        write_term(self, out, namer);
    }
}

/// Appends the `~0p` text of a term in either form.
///
/// Containers recurse here; everything else is written out of line, so that the recursive
/// frame stays small (deep terms on small thread stacks).
pub(crate) fn write_term<'a, R: TermRef<'a>>(
    term: R,
    out: &mut String,
    namer: &mut dyn IdentNamer,
) {
    match term.node() {
        Node::List {
            items,
            len,
            tail: None,
        } if write_string::<R>(items.clone(), len, out) => {}
        Node::List { items, tail, .. } => write_seq(out, '[', items, tail, ']', namer),
        Node::Tuple { items, .. } => write_seq::<R>(out, '{', items, None, '}', namer),
        Node::Map(pairs) => write_map(pairs, out, namer),
        leaf => write_leaf(leaf, out, namer),
    }
}

/// Writes a proper list as a string if it is one (at least one element, each a printable
/// Latin-1 character code); `false` (and nothing written) otherwise.
#[inline(never)]
fn write_string<'a, R: TermRef<'a>>(items: R::Items, len: usize, out: &mut String) -> bool {
    let char_code = |t: R| match t.node() {
        Node::Int(c) => u32::try_from(c).ok().filter(|&c| printable_latin1(c)),
        _ => None,
    };
    if len == 0 || !items.clone().all(|t| char_code(t).is_some()) {
        return false;
    }
    out.push('"');
    for c in items.filter_map(char_code) {
        push_escaped(out, c, '"');
    }
    out.push('"');
    true
}

#[inline(never)]
fn write_map(pairs: &[(Term, Term)], out: &mut String, namer: &mut dyn IdentNamer) {
    out.push_str("#{");
    for (i, (k, v)) in map_print_order(pairs).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_term(k, out, namer);
        out.push_str(" => ");
        write_term(v, out, namer);
    }
    out.push('}');
}

#[inline(never)]
fn write_leaf<'a, R: TermRef<'a>>(leaf: Node<'a, R>, out: &mut String, namer: &mut dyn IdentNamer) {
    match leaf {
        Node::Atom(a) => write_atom(out, a),
        Node::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Node::BigInt(b) => {
            let _ = write!(out, "{b}");
        }
        Node::Float(f) => write_float(out, f),
        Node::Binary(b) => {
            out.push_str("<<");
            if !b.is_empty() && b.iter().all(|&c| printable_latin1(u32::from(c))) {
                out.push('"');
                for &c in b {
                    push_escaped(out, u32::from(c), '"');
                }
                out.push('"');
            } else {
                for (i, c) in b.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{c}");
                }
            }
            out.push_str(">>");
        }
        Node::Bitstring(b) => {
            // OTP 25 prints a bitstring's bytes as numbers even when they are printable
            // (`<<97,1:3>>`), then the trailing bits as `Value:Count`.
            let (whole, last) = b.bytes().split_at(b.bytes().len() - 1);
            out.push_str("<<");
            for c in whole {
                let _ = write!(out, "{c},");
            }
            let k = b.trailing_bits();
            let _ = write!(out, "{}:{k}>>", last[0] >> (8 - k));
        }
        Node::Pid(p) => out.push_str(&namer.pid(&p)),
        Node::Port(p) => out.push_str(&namer.port(&p)),
        Node::Ref(r) => out.push_str(&namer.reference(&r)),
        Node::List { .. } | Node::Tuple { .. } | Node::Map(_) => {
            unreachable!("containers are written by write_term")
        }
    }
}

/// Pairs in the order BEAM iterates a map: sorted for small maps, hash
/// order for large ones (see [`crate::hamt`]).
fn map_print_order(pairs: &[(Term, Term)]) -> Box<dyn Iterator<Item = &(Term, Term)> + '_> {
    match crate::hamt::large_map_order(pairs) {
        Some(order) => Box::new(order.into_iter().map(move |i| &pairs[i])),
        None => Box::new(pairs.iter()),
    }
}

fn write_seq<'a, R: TermRef<'a>>(
    out: &mut String,
    open: char,
    items: R::Items,
    tail: Option<R>,
    close: char,
    namer: &mut dyn IdentNamer,
) {
    out.push(open);
    for (i, t) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_term(t, out, namer);
    }
    if let Some(t) = tail {
        out.push('|');
        write_term(t, out, namer);
    }
    out.push(close);
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        self.write_with(&mut s, &mut DefaultNamer);
        f.write_str(&s)
    }
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::new();
        write_atom(&mut s, *self);
        f.write_str(&s)
    }
}
