//! The term type, its constructors and Erlang's term order.

use std::cmp::Ordering;

use bytes::Bytes;

use crate::{Atom, Pid, Port, Ref};

/// An Erlang term.
///
/// Lists are kept normalized by the constructors of this crate: `[]` is
/// `List(vec![])`, an `ImproperList` has at least one element and a tail that
/// is not a list, and a `Map`'s pairs are sorted by key in map order with no
/// duplicate key (see [`Term::map`]). Integers that fit `i64` are `Int`.
///
/// Equality is Erlang's exact equality (`=:=`, so `1 != 1.0`, but `0.0 == -0.0`
/// as in OTP 25). Ordering is Erlang's term order; an integer and a float of
/// equal value (which Erlang's `==` calls equal) are ordered integer first, so
/// that the order agrees with equality.
#[derive(Clone, Debug)]
pub enum Term {
    /// An atom.
    Atom(Atom),
    /// An integer that fits `i64`.
    Int(i64),
    /// An integer outside `i64`.
    BigInt(BigInt),
    /// A (finite) float.
    Float(f64),
    /// A binary.
    Binary(Bytes),
    /// A bitstring whose length is not a whole number of bytes (a whole-byte one is a
    /// [`Term::Binary`]; [`Term::from_bits`] picks the right one).
    Bitstring(Bitstring),
    /// A proper list; `[]` is `List(vec![])`.
    List(Vec<Term>),
    /// A list `[E1, ..., En | Tail]` whose tail is not a list.
    ImproperList(Vec<Term>, Box<Term>),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A map, pairs sorted by key in map-key order.
    Map(Vec<(Term, Term)>),
    /// A process identifier.
    Pid(Pid),
    /// A port identifier.
    Port(Port),
    /// A reference.
    Ref(Ref),
}

/// A bitstring of `8 * n + k` bits with `k` in `1..=7`: Erlang's `<<1,2:3>>`.
///
/// Kept as BEAM sends it (`BIT_BINARY_EXT`): `n + 1` bytes, the last one holding the
/// trailing `k` bits as its high bits. The unused low bits of that byte are always zero, so
/// two equal bitstrings have equal bytes. Boxed (bitstrings are rare in driver terms): a
/// [`Term`] is five words, not six, and so is a received message (issue 16).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Bitstring {
    parts: Box<BitstringParts>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct BitstringParts {
    bytes: Bytes,
    trailing_bits: u8,
}

impl Bitstring {
    /// The bitstring of `bytes` whose last byte holds only `trailing_bits` (1..=7) bits, its
    /// high ones; the low bits of the last byte are ignored. `None` when `bytes` is empty or
    /// `trailing_bits` is outside `1..=7` (a whole-byte bitstring is a binary).
    pub fn new(bytes: Bytes, trailing_bits: u8) -> Option<Bitstring> {
        let last = *bytes.last()?;
        if !(1..=7).contains(&trailing_bits) {
            return None;
        }
        let masked = last & !(0xff >> trailing_bits);
        let bytes = if masked == last {
            bytes
        } else {
            let mut owned = bytes.to_vec();
            *owned.last_mut().expect("bytes is not empty") = masked;
            Bytes::from(owned)
        };
        Some(Bitstring {
            parts: Box::new(BitstringParts {
                bytes,
                trailing_bits,
            }),
        })
    }

    /// The bytes, the last one partial (its unused low bits zero).
    pub fn bytes(&self) -> &[u8] {
        &self.parts.bytes
    }

    /// How many bits of the last byte belong to the bitstring (1..=7).
    pub fn trailing_bits(&self) -> u8 {
        self.parts.trailing_bits
    }

    /// The length in bits (`bit_size/1`).
    pub fn bit_len(&self) -> usize {
        (self.parts.bytes.len() - 1) * 8 + usize::from(self.parts.trailing_bits)
    }
}

/// Bitstrings in Erlang's term order: bit by bit, a prefix before what extends it.
/// `a` and `b` are bytes holding `a_bits` and `b_bits` bits, unused low bits zero.
fn cmp_bits(a: &[u8], a_bits: usize, b: &[u8], b_bits: usize) -> Ordering {
    let common = a_bits.min(b_bits);
    let whole = common / 8;
    a[..whole]
        .cmp(&b[..whole])
        .then_with(|| {
            let rest = common % 8;
            if rest == 0 {
                return Ordering::Equal;
            }
            let mask = !(0xffu8 >> rest);
            (a[whole] & mask).cmp(&(b[whole] & mask))
        })
        .then(a_bits.cmp(&b_bits))
}

/// An integer outside the `i64` range: sign and magnitude.
///
/// The magnitude is kept as little-endian bytes without trailing zeros, the
/// same layout as the ETF big-integer encodings.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct BigInt {
    negative: bool,
    magnitude: Vec<u8>,
}

impl BigInt {
    /// A big integer from its sign and little-endian magnitude bytes.
    pub fn from_le_bytes(negative: bool, magnitude: &[u8]) -> BigInt {
        let end = magnitude.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        let magnitude = magnitude[..end].to_vec();
        BigInt {
            negative: negative && !magnitude.is_empty(),
            magnitude,
        }
    }

    /// A big integer holding `v`.
    pub fn from_i128(v: i128) -> BigInt {
        BigInt::from_le_bytes(v < 0, &v.unsigned_abs().to_le_bytes())
    }

    /// Whether the value is below zero.
    pub fn is_negative(&self) -> bool {
        self.negative
    }

    /// The magnitude as little-endian bytes, no trailing zeros.
    pub fn magnitude_le_bytes(&self) -> &[u8] {
        &self.magnitude
    }

    /// The value, if it fits `i64`.
    pub fn to_i64(&self) -> Option<i64> {
        if self.magnitude.len() > 8 {
            return None;
        }
        let mut buf = [0u8; 8];
        buf[..self.magnitude.len()].copy_from_slice(&self.magnitude);
        let m = u64::from_le_bytes(buf);
        if self.negative {
            if m <= 1 << 63 {
                Some((m as i64).wrapping_neg())
            } else {
                None
            }
        } else {
            i64::try_from(m).ok()
        }
    }

    /// The nearest `f64` (infinite if beyond `f64`'s range).
    pub fn to_f64(&self) -> f64 {
        let m = self
            .magnitude
            .iter()
            .rev()
            .fold(0.0f64, |acc, &b| acc * 256.0 + f64::from(b));
        if self.negative {
            -m
        } else {
            m
        }
    }

    fn cmp_magnitude(a: &[u8], b: &[u8]) -> Ordering {
        a.len()
            .cmp(&b.len())
            .then_with(|| a.iter().rev().cmp(b.iter().rev()))
    }

    fn cmp_value(&self, other: &BigInt) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => BigInt::cmp_magnitude(&self.magnitude, &other.magnitude),
            (true, true) => BigInt::cmp_magnitude(&other.magnitude, &self.magnitude),
        }
    }

    /// The decimal digits of the magnitude.
    fn magnitude_decimal(&self) -> String {
        // Repeated division by 10^9 over 32-bit limbs, most significant first.
        let mut limbs: Vec<u32> = self
            .magnitude
            .chunks(4)
            .rev()
            .map(|c| {
                let mut buf = [0u8; 4];
                buf[..c.len()].copy_from_slice(c);
                u32::from_le_bytes(buf)
            })
            .collect();
        let mut groups = Vec::new();
        while limbs.iter().any(|&l| l != 0) {
            let mut rem = 0u64;
            for l in limbs.iter_mut() {
                let cur = (rem << 32) | u64::from(*l);
                *l = (cur / 1_000_000_000) as u32;
                rem = cur % 1_000_000_000;
            }
            groups.push(rem as u32);
        }
        let mut out = String::new();
        for (i, g) in groups.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&g.to_string());
            } else {
                out.push_str(&format!("{g:09}"));
            }
        }
        if out.is_empty() {
            out.push('0');
        }
        out
    }
}

impl std::fmt::Display for BigInt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        f.write_str(&self.magnitude_decimal())
    }
}

/// An exact integer float as a big integer (the float must be integral).
fn integral_float_to_big(f: f64) -> BigInt {
    let bits = f.abs().to_bits();
    let exp = ((bits >> 52) & 0x7FF) as i32 - 1075;
    let mant = (bits & ((1 << 52) - 1)) | (1 << 52);
    if exp <= -64 {
        return BigInt::from_i128(0);
    }
    if exp < 0 {
        return BigInt::from_i128((mant >> -exp) as i128 * if f < 0.0 { -1 } else { 1 });
    }
    let shift_bytes = (exp / 8) as usize;
    let wide = u128::from(mant) << (exp % 8);
    let mut mag = vec![0u8; shift_bytes];
    mag.extend_from_slice(&wide.to_le_bytes());
    BigInt::from_le_bytes(f < 0.0, &mag)
}

/// Compares an integer with a float by value.
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    const TWO63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO63 {
        return Ordering::Less;
    }
    if f < -TWO63 {
        return Ordering::Greater;
    }
    let t = f.trunc();
    i.cmp(&(t as i64))
        .then_with(|| 0.0f64.partial_cmp(&(f - t)).unwrap_or(Ordering::Equal))
}

fn cmp_big_float(b: &BigInt, f: f64) -> Ordering {
    let approx = b.to_f64();
    match approx.partial_cmp(&f) {
        Some(Ordering::Equal) if f.fract() == 0.0 => b.cmp_value(&integral_float_to_big(f)),
        Some(Ordering::Equal) | None => Ordering::Equal,
        Some(o) => o,
    }
}

fn cmp_float(a: f64, b: f64) -> Ordering {
    a.partial_cmp(&b).unwrap_or_else(|| a.total_cmp(&b))
}

/// Erlang's term classes, in term order.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Class {
    Number,
    Atom,
    Ref,
    Port,
    Pid,
    Tuple,
    Map,
    Nil,
    List,
    Bitstring,
}

/// How numbers of different types compare.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NumberOrder {
    /// By value, an integer before an equal float (the `Ord` of `Term`).
    ByValue,
    /// Every integer before every float (map-key order).
    IntegersFirst,
}

impl Term {
    fn class(&self) -> Class {
        match self {
            Term::Int(_) | Term::BigInt(_) | Term::Float(_) => Class::Number,
            Term::Atom(_) => Class::Atom,
            Term::Ref(_) => Class::Ref,
            Term::Port(_) => Class::Port,
            Term::Pid(_) => Class::Pid,
            Term::Tuple(_) => Class::Tuple,
            Term::Map(_) => Class::Map,
            Term::List(v) if v.is_empty() => Class::Nil,
            Term::List(_) | Term::ImproperList(..) => Class::List,
            Term::Binary(_) | Term::Bitstring(_) => Class::Bitstring,
        }
    }

    /// Builds the integer `v`, as `Int` when it fits `i64`.
    pub fn int(v: i128) -> Term {
        match i64::try_from(v) {
            Ok(i) => Term::Int(i),
            Err(_) => Term::BigInt(BigInt::from_i128(v)),
        }
    }

    /// Builds an integer from sign and little-endian magnitude, as `Int` when it fits.
    pub fn int_from_le_bytes(negative: bool, magnitude: &[u8]) -> Term {
        let big = BigInt::from_le_bytes(negative, magnitude);
        match big.to_i64() {
            Some(i) => Term::Int(i),
            None => Term::BigInt(big),
        }
    }

    /// Builds the bitstring of the first `bit_len` bits of `bytes` (high bits first): a
    /// [`Term::Binary`] when `bit_len` is a whole number of bytes, else a
    /// [`Term::Bitstring`]. `None` unless `bytes` has exactly `ceil(bit_len / 8)` bytes.
    pub fn from_bits(bytes: Bytes, bit_len: usize) -> Option<Term> {
        if bytes.len() != bit_len.div_ceil(8) {
            return None;
        }
        match bit_len % 8 {
            0 => Some(Term::Binary(bytes)),
            trailing => Bitstring::new(bytes, trailing as u8).map(Term::Bitstring),
        }
    }

    /// The bytes and the bit length of a binary or bitstring (the last byte partial when the
    /// length is not a whole number of bytes); `None` for any other term.
    pub fn bits(&self) -> Option<(&[u8], usize)> {
        match self {
            Term::Binary(b) => Some((b, b.len() * 8)),
            Term::Bitstring(b) => Some((b.bytes(), b.bit_len())),
            _ => None,
        }
    }

    /// Builds an atom term from a name.
    pub fn atom(name: &str) -> Term {
        Term::Atom(Atom::new(name))
    }

    /// Builds the string (list of byte values) `s` as Erlang's `"..."` does for Latin-1.
    pub fn string_latin1(bytes: &[u8]) -> Term {
        Term::List(bytes.iter().map(|&b| Term::Int(i64::from(b))).collect())
    }

    /// Builds `[heads... | tail]`, keeping the list normalized: a list tail is
    /// spliced in, and no heads gives back the tail itself.
    pub fn cons(mut heads: Vec<Term>, tail: Term) -> Term {
        if heads.is_empty() {
            return tail;
        }
        match tail {
            Term::List(rest) => {
                heads.extend(rest);
                Term::List(heads)
            }
            Term::ImproperList(rest, t) => {
                heads.extend(rest);
                Term::ImproperList(heads, t)
            }
            other => Term::ImproperList(heads, Box::new(other)),
        }
    }

    /// Builds a map from pairs in any order; `None` if a key occurs twice
    /// (exact equality, so `1` and `1.0` are different keys).
    pub fn map(mut pairs: Vec<(Term, Term)>) -> Option<Term> {
        pairs.sort_by(|a, b| a.0.cmp_map_key(&b.0));
        if pairs
            .windows(2)
            .any(|w| w[0].0.cmp_map_key(&w[1].0) == Ordering::Equal)
        {
            return None;
        }
        Some(Term::Map(pairs))
    }

    /// Erlang's `==`: like `=:=` except that integers and floats compare by value.
    pub fn erl_eq(&self, other: &Term) -> bool {
        self.compare(other, NumberOrder::ByValue, true) == Ordering::Equal
    }

    /// Map-key order (the order of a small map's keys): term order, except that
    /// every integer sorts before every float, at any depth.
    pub fn cmp_map_key(&self, other: &Term) -> Ordering {
        self.compare(other, NumberOrder::IntegersFirst, false)
    }

    /// `loose`: integers equal to floats compare equal (Erlang `==`).
    fn compare(&self, other: &Term, numbers: NumberOrder, loose: bool) -> Ordering {
        let (ca, cb) = (self.class(), other.class());
        if ca != cb {
            return ca.cmp(&cb);
        }
        match (self, other) {
            (Term::Atom(a), Term::Atom(b)) => a.cmp(b),
            (Term::Ref(a), Term::Ref(b)) => a.cmp(b),
            (Term::Port(a), Term::Port(b)) => a.cmp(b),
            (Term::Pid(a), Term::Pid(b)) => a.cmp(b),
            (Term::Binary(a), Term::Binary(b)) => a.cmp(b),
            (Term::Binary(_) | Term::Bitstring(_), Term::Binary(_) | Term::Bitstring(_)) => {
                let (a, a_bits) = self.bits().expect("a bitstring");
                let (b, b_bits) = other.bits().expect("a bitstring");
                cmp_bits(a, a_bits, b, b_bits)
            }
            (Term::Tuple(a), Term::Tuple(b)) => a
                .len()
                .cmp(&b.len())
                .then_with(|| cmp_seq(a.iter(), b.iter(), numbers, loose)),
            (Term::Map(a), Term::Map(b)) => a
                .len()
                .cmp(&b.len())
                .then_with(|| {
                    cmp_seq(
                        a.iter().map(|p| &p.0),
                        b.iter().map(|p| &p.0),
                        numbers,
                        loose,
                    )
                })
                .then_with(|| {
                    cmp_seq(
                        a.iter().map(|p| &p.1),
                        b.iter().map(|p| &p.1),
                        numbers,
                        loose,
                    )
                }),
            _ if ca == Class::Number => cmp_numbers(self, other, numbers, loose),
            _ if ca == Class::Nil => Ordering::Equal,
            _ => cmp_lists(self.list_parts(), other.list_parts(), numbers, loose),
        }
    }

    /// How deeply lists, tuples and maps nest in this term (1 for a leaf).
    pub fn nesting_depth(&self) -> usize {
        let mut inner = 0;
        match self {
            Term::List(v) | Term::Tuple(v) => {
                for t in v {
                    inner = inner.max(t.nesting_depth());
                }
            }
            Term::ImproperList(v, t) => {
                inner = t.nesting_depth();
                for t in v {
                    inner = inner.max(t.nesting_depth());
                }
            }
            Term::Map(pairs) => {
                for (k, v) in pairs {
                    inner = inner.max(k.nesting_depth()).max(v.nesting_depth());
                }
            }
            _ => return 1,
        }
        inner + 1
    }

    /// Elements and tail of a non-empty list (`None` tail for a proper list).
    fn list_parts(&self) -> (&[Term], Option<&Term>) {
        match self {
            Term::List(v) => (v, None),
            Term::ImproperList(v, t) => (v, Some(t)),
            _ => (&[], Some(self)),
        }
    }
}

const NIL: Term = Term::List(Vec::new());

fn cmp_seq<'a>(
    a: impl Iterator<Item = &'a Term>,
    b: impl Iterator<Item = &'a Term>,
    numbers: NumberOrder,
    loose: bool,
) -> Ordering {
    for (x, y) in a.zip(b) {
        let c = x.compare(y, numbers, loose);
        if c != Ordering::Equal {
            return c;
        }
    }
    Ordering::Equal
}

fn cmp_lists(
    (ea, ta): (&[Term], Option<&Term>),
    (eb, tb): (&[Term], Option<&Term>),
    numbers: NumberOrder,
    loose: bool,
) -> Ordering {
    let n = ea.len().min(eb.len());
    let c = cmp_seq(ea[..n].iter(), eb[..n].iter(), numbers, loose);
    if c != Ordering::Equal {
        return c;
    }
    // One side ran out of elements: what is left of it (its tail) meets a
    // non-empty list on the other side, or both tails meet.
    let rest_a = ea.len() > n;
    let rest_b = eb.len() > n;
    match (rest_a, rest_b) {
        (false, false) => ta
            .unwrap_or(&NIL)
            .compare(tb.unwrap_or(&NIL), numbers, loose),
        (true, _) => Class::List.cmp(&tb.unwrap_or(&NIL).class()),
        (false, true) => ta.unwrap_or(&NIL).class().cmp(&Class::List),
    }
}

fn cmp_numbers(a: &Term, b: &Term, numbers: NumberOrder, loose: bool) -> Ordering {
    let is_float = |t: &Term| matches!(t, Term::Float(_));
    if numbers == NumberOrder::IntegersFirst && is_float(a) != is_float(b) {
        return if is_float(a) {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    let by_value = match (a, b) {
        (Term::Int(x), Term::Int(y)) => x.cmp(y),
        (Term::Float(x), Term::Float(y)) => cmp_float(*x, *y),
        (Term::BigInt(x), Term::BigInt(y)) => x.cmp_value(y),
        (Term::Int(x), Term::BigInt(y)) => BigInt::from_i128(i128::from(*x)).cmp_value(y),
        (Term::BigInt(x), Term::Int(y)) => x.cmp_value(&BigInt::from_i128(i128::from(*y))),
        (Term::Int(x), Term::Float(y)) => cmp_int_float(*x, *y),
        (Term::Float(x), Term::Int(y)) => cmp_int_float(*y, *x).reverse(),
        (Term::BigInt(x), Term::Float(y)) => cmp_big_float(x, *y),
        (Term::Float(x), Term::BigInt(y)) => cmp_big_float(y, *x).reverse(),
        _ => Ordering::Equal,
    };
    if by_value != Ordering::Equal || loose {
        return by_value;
    }
    // Equal values of different types: the integer first.
    is_float(a).cmp(&is_float(b))
}

impl PartialEq for Term {
    fn eq(&self, other: &Term) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Term {}
impl PartialOrd for Term {
    fn partial_cmp(&self, other: &Term) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Term {
    fn cmp(&self, other: &Term) -> Ordering {
        self.compare(other, NumberOrder::ByValue, false)
    }
}

impl From<i64> for Term {
    fn from(v: i64) -> Term {
        Term::Int(v)
    }
}
impl From<u64> for Term {
    fn from(v: u64) -> Term {
        Term::int(i128::from(v))
    }
}
impl From<f64> for Term {
    fn from(v: f64) -> Term {
        Term::Float(v)
    }
}
impl From<Atom> for Term {
    fn from(v: Atom) -> Term {
        Term::Atom(v)
    }
}
impl From<Bytes> for Term {
    fn from(v: Bytes) -> Term {
        Term::Binary(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(a: Term, b: Term, expected: Ordering) {
        assert_eq!(a.cmp(&b), expected, "{a} vs {b}");
        assert_eq!(b.cmp(&a), expected.reverse(), "{b} vs {a}");
    }

    #[test]
    fn term_order_table() {
        let big = Term::int(1 << 70);
        let nbig = Term::int(-(1 << 70));
        let cases = [
            (Term::Int(1), Term::atom("a"), Ordering::Less),
            (Term::atom("z"), Term::Ref(Ref::local(0)), Ordering::Less),
            (
                Term::Ref(Ref::local(5)),
                Term::Port(Port::local(0)),
                Ordering::Less,
            ),
            (
                Term::Port(Port::local(5)),
                Term::Pid(Pid::local(0)),
                Ordering::Less,
            ),
            (
                Term::Pid(Pid::local(5)),
                Term::Tuple(vec![]),
                Ordering::Less,
            ),
            (
                Term::Tuple(vec![Term::Int(9); 3]),
                Term::Map(vec![]),
                Ordering::Less,
            ),
            (Term::Map(vec![]), Term::List(vec![]), Ordering::Less),
            (
                Term::List(vec![]),
                Term::List(vec![Term::Int(0)]),
                Ordering::Less,
            ),
            (
                Term::List(vec![Term::Int(0)]),
                Term::Binary(Bytes::new()),
                Ordering::Less,
            ),
            (Term::Int(1), Term::Float(1.5), Ordering::Less),
            (Term::Float(2.5), Term::Int(2), Ordering::Greater),
            (Term::Int(1), Term::Float(1.0), Ordering::Less),
            (Term::Float(0.0), Term::Float(-0.0), Ordering::Equal),
            (big.clone(), Term::Int(i64::MAX), Ordering::Greater),
            (nbig.clone(), Term::Int(i64::MIN), Ordering::Less),
            (big.clone(), Term::Float(1.0e30), Ordering::Less),
            (
                big.clone(),
                Term::Float((1u128 << 70) as f64),
                Ordering::Less,
            ),
            (
                Term::int(1 << 70 | 1),
                Term::Float((1u128 << 70) as f64),
                Ordering::Greater,
            ),
            (nbig, Term::Float(-1.0e30), Ordering::Greater),
            (Term::Int(i64::MAX), Term::Float(9.3e18), Ordering::Less),
            (Term::atom("ab"), Term::atom("b"), Ordering::Less),
            (
                Term::Tuple(vec![Term::Int(5)]),
                Term::Tuple(vec![Term::Int(1), Term::Int(1)]),
                Ordering::Less,
            ),
            (
                Term::cons(vec![Term::Int(1)], Term::Int(2)),
                Term::List(vec![Term::Int(1)]),
                Ordering::Less,
            ),
            (
                Term::cons(vec![Term::Int(1)], Term::Binary(Bytes::new())),
                Term::List(vec![Term::Int(1), Term::Int(0)]),
                Ordering::Greater,
            ),
            (
                Term::List(vec![Term::Int(1), Term::Int(2)]),
                Term::List(vec![Term::Int(1)]),
                Ordering::Greater,
            ),
            (
                Term::Binary(Bytes::from_static(b"ab")),
                Term::Binary(Bytes::from_static(b"b")),
                Ordering::Less,
            ),
        ];
        for (a, b, expected) in cases {
            check(a, b, expected);
        }
    }

    #[test]
    fn map_key_order_puts_integers_before_floats() {
        let m = Term::map(vec![
            (Term::Float(0.5), Term::Int(0)),
            (Term::Int(2), Term::Int(0)),
            (Term::Float(1.0), Term::Int(0)),
            (Term::Int(1), Term::Int(0)),
        ])
        .expect("distinct keys");
        let Term::Map(pairs) = m else {
            panic!("map expected")
        };
        let keys: Vec<String> = pairs.iter().map(|p| p.0.to_string()).collect();
        assert_eq!(keys, ["1", "2", "0.5", "1.0"]);
        assert!(Term::map(vec![
            (Term::Int(1), Term::Int(0)),
            (Term::Int(1), Term::Int(2))
        ])
        .is_none());
    }

    #[test]
    fn cons_normalizes() {
        assert_eq!(Term::cons(vec![], Term::Int(3)), Term::Int(3));
        assert_eq!(
            Term::cons(vec![Term::Int(1)], Term::List(vec![Term::Int(2)])),
            Term::List(vec![Term::Int(1), Term::Int(2)])
        );
        assert_eq!(
            Term::cons(
                vec![Term::Int(1)],
                Term::cons(vec![Term::Int(2)], Term::Int(3))
            ),
            Term::ImproperList(vec![Term::Int(1), Term::Int(2)], Box::new(Term::Int(3)))
        );
        assert!(Term::Int(1).erl_eq(&Term::Float(1.0)));
        assert_ne!(Term::Int(1), Term::Float(1.0));
    }

    #[test]
    fn big_int_decimal_and_range() {
        let cases: [(i128, &str); 4] = [
            (1 << 64, "18446744073709551616"),
            (-(1 << 100), "-1267650600228229401496703205376"),
            (i128::from(i64::MAX) + 1, "9223372036854775808"),
            (1_000_000_000_000_000_000_000, "1000000000000000000000"),
        ];
        for (v, s) in cases {
            assert_eq!(BigInt::from_i128(v).to_string(), s);
        }
        assert_eq!(
            BigInt::from_i128(i128::from(i64::MIN)).to_i64(),
            Some(i64::MIN)
        );
        assert_eq!(BigInt::from_i128(i128::from(i64::MIN) - 1).to_i64(), None);
        assert_eq!(Term::int(i128::from(i64::MIN)), Term::Int(i64::MIN));
    }
}
