//! Iteration order of BEAM's large (hash array mapped trie) maps.
//!
//! A map of up to [`SMALL_MAP_LIMIT`] keys is flat in BEAM, its keys sorted in map-key order.
//! A larger map is a HAMT indexed 4 bits at a time, lowest bits first, by OTP 25's
//! `make_internal_hash(Key, 0)`; BEAM iterates it (and `~0p` prints it) in trie order, and
//! `term_to_binary/1` writes the pairs in the reverse of that order.
//!
//! That hash is computed over the runtime's in-memory words. For integers, floats, binaries,
//! lists and tuples of them the words are fixed, and this module computes the same hash, so a
//! large map with such keys encodes and prints byte for byte as in BEAM (checked against `erl`
//! by `tests/oracle.rs`: small and big integers, floats, binaries, strings, improper and mixed
//! lists, nested tuples). A key holding an atom, a pid, a port, a reference or a map hashes
//! words that only the VM that made the map knows (an atom hashes its index in that VM's atom
//! table, and the order of such a map differs between two `erl` runs): such a map, or one
//! with two keys whose 32-bit hashes collide (BEAM rehashes those a level deeper), keeps its
//! keys in map-key order. It has the same pairs and the same encoded length, and
//! `binary_to_term/1` gives the same map back, but its bytes and printed order are not BEAM's.

use crate::Term;

/// Most keys a map can have and still be a flat (sorted) map in BEAM.
pub const SMALL_MAP_LIMIT: usize = 32;

/// `make_internal_hash`'s starting value (OTP 25).
const INTERNAL_HASH_SALT: u32 = 3_432_918_353;
/// The golden-ratio constant of BEAM's term hashes.
const HCONST: u32 = 0x9e37_79b9;
/// The range of BEAM's immediate small integers on a 64-bit VM (60 bits, signed).
const SMALL_BITS: u32 = 60;

/// Bob Jenkins' 96-bit mix, as BEAM's `MIX` macro: the new `c`.
fn mix(a: u32, b: u32, c: u32) -> u32 {
    mix3(a, b, c).2
}

/// More of BEAM's hash constants (`HCONST * n`).
const HCONST_4: u32 = 0x78dd_e6e4;
const HCONST_9: u32 = 0x8ff3_4781;
const HCONST_10: u32 = 0x2e2a_c13a;
const HCONST_11: u32 = 0xcc62_3af3;
const HCONST_12: u32 = 0x6a99_b4ac;
const HCONST_13: u32 = 0x08d1_2e65;
const HCONST_17: u32 = 0x81af_1549;
const HCONST_18: u32 = 0x1fe6_8f02;
const HCONST_22: u32 = 0x98c4_75e6;

/// The word of BEAM's `[]` (OTP 25, 64-bit: the immediate tag alone).
const NIL_WORD: u64 = 0x3B;

static NIL: Term = Term::List(Vec::new());

/// What is left to hash, as `make_internal_hash`'s stack holds it.
enum Work<'a> {
    Term(&'a Term),
    /// The cons cells of `items`, then `tail` (`[]` when `None`).
    List(&'a [Term], Option<&'a Term>),
    /// A cons cell's tail that is not a cons has been hashed.
    Cdr,
}

struct Hasher(u32);

impl Hasher {
    fn pair(&mut self, x: u32, y: u32, constant: u32) {
        self.0 = mix(constant.wrapping_add(x), constant.wrapping_add(y), self.0);
    }
    fn word(&mut self, word: u64) {
        self.pair(word as u32, (word >> 32) as u32, HCONST);
    }
    fn constant(&mut self, constant: u32) {
        self.0 = (self.0 ^ constant).rotate_left(17);
    }
}

/// The immediate word of a small integer, if `i` is one on a 64-bit VM.
fn small_word(i: i128) -> Option<u64> {
    let limit = 1i128 << (SMALL_BITS - 1);
    (-limit..limit)
        .contains(&i)
        .then_some(((i as i64 as u64) << 4) | 0xF)
}

fn as_byte(t: &Term) -> Option<u32> {
    match *t {
        Term::Int(i @ 0..=255) => Some(i as u32),
        _ => None,
    }
}

/// Lookup2's block hash, as BEAM's `block_hash`.
fn block_hash(bytes: &[u8], initval: u32) -> u32 {
    let (mut a, mut b, mut c) = (HCONST, HCONST, initval);
    let word = |k: &[u8]| {
        k.iter().enumerate().fold(0u32, |w, (i, &byte)| {
            w.wrapping_add(u32::from(byte) << (8 * i))
        })
    };
    let mut blocks = bytes.chunks_exact(12);
    for k in &mut blocks {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        (a, b, c) = mix3(a, b, c);
    }
    let rest = blocks.remainder();
    c = c.wrapping_add(bytes.len() as u32);
    a = a.wrapping_add(word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        // The first byte of c holds the length.
        c = c.wrapping_add(word(&rest[8..]) << 8);
    }
    mix3(a, b, c).2
}

/// [`mix`] giving all three words.
fn mix3(mut a: u32, mut b: u32, mut c: u32) -> (u32, u32, u32) {
    a = a.wrapping_sub(b).wrapping_sub(c) ^ (c >> 13);
    b = b.wrapping_sub(c).wrapping_sub(a) ^ (a << 8);
    c = c.wrapping_sub(a).wrapping_sub(b) ^ (b >> 13);
    a = a.wrapping_sub(b).wrapping_sub(c) ^ (c >> 12);
    b = b.wrapping_sub(c).wrapping_sub(a) ^ (a << 16);
    c = c.wrapping_sub(a).wrapping_sub(b) ^ (b >> 5);
    a = a.wrapping_sub(b).wrapping_sub(c) ^ (c >> 3);
    b = b.wrapping_sub(c).wrapping_sub(a) ^ (a << 10);
    c = c.wrapping_sub(a).wrapping_sub(b) ^ (b >> 15);
    (a, b, c)
}

/// `make_internal_hash(Key, 0)` (OTP 25) for keys made of numbers, binaries, lists and tuples;
/// `None` for a key holding anything whose VM word is not known here (atoms, pids, ports,
/// references, maps).
fn internal_hash(key: &Term) -> Option<u32> {
    let mut h = Hasher(INTERNAL_HASH_SALT);
    let mut stack: Vec<Work<'_>> = Vec::new();
    let mut next = Work::Term(key);
    loop {
        match next {
            Work::Cdr => h.constant(HCONST_18),
            Work::List(items, tail) => {
                // Bytes are hashed four at a time.
                let (mut count, mut bytes, mut at) = (0u32, 0u32, 0);
                while let Some(byte) = items.get(at).and_then(as_byte) {
                    bytes = (bytes << 8).wrapping_add(byte);
                    if count == 3 {
                        h.pair(bytes, 0, HCONST_4);
                        (count, bytes) = (0, 0);
                    } else {
                        count += 1;
                    }
                    at += 1;
                }
                if count > 0 {
                    h.pair(bytes, count, HCONST_22);
                }
                if at < items.len() {
                    // A cons whose head is no byte: its head now, its tail later.
                    h.constant(HCONST_17);
                    if at + 1 < items.len() {
                        stack.push(Work::List(&items[at + 1..], tail));
                    } else {
                        stack.push(Work::Term(tail.unwrap_or(&NIL)));
                        stack.push(Work::Cdr);
                    }
                    next = Work::Term(&items[at]);
                    continue;
                }
                next = Work::Term(tail.unwrap_or(&NIL));
                continue;
            }
            Work::Term(term) => match term {
                Term::Int(i) => match small_word(i128::from(*i)) {
                    Some(word) => h.word(word),
                    None => big(&mut h, *i < 0, &i.unsigned_abs().to_le_bytes()),
                },
                Term::BigInt(b) => big(&mut h, b.is_negative(), b.magnitude_le_bytes()),
                Term::Float(f) => {
                    // -0.0 hashes as 0.0.
                    let bits = if *f == 0.0 { 0 } else { f.to_bits() };
                    h.pair(bits as u32, (bits >> 32) as u32, HCONST_12);
                }
                Term::Binary(b) => {
                    let con = HCONST_13.wrapping_add(h.0);
                    h.0 = if b.is_empty() {
                        con
                    } else {
                        block_hash(b, con)
                    };
                }
                Term::List(items) if items.is_empty() => h.word(NIL_WORD),
                Term::List(items) => {
                    next = Work::List(items, None);
                    continue;
                }
                Term::ImproperList(items, tail) => {
                    next = Work::List(items, Some(tail));
                    continue;
                }
                Term::Tuple(items) => {
                    h.pair(items.len() as u32, 0, HCONST_9);
                    if let Some((first, rest)) = items.split_first() {
                        stack.extend(rest.iter().rev().map(Work::Term));
                        next = Work::Term(first);
                        continue;
                    }
                }
                Term::Atom(_)
                | Term::Pid(_)
                | Term::Port(_)
                | Term::Ref(_)
                | Term::Map(_)
                | Term::Bitstring(_) => return None,
            },
        }
        match stack.pop() {
            Some(work) => next = work,
            None => return Some(h.0),
        }
    }
}

/// A bignum: its 64-bit digits, least significant first, as two 32-bit halves each.
fn big(h: &mut Hasher, negative: bool, magnitude: &[u8]) {
    let constant = if negative { HCONST_10 } else { HCONST_11 };
    let end = magnitude.iter().rposition(|&b| b != 0).map_or(1, |i| i + 1);
    for digit in magnitude[..end].chunks(8) {
        let mut word = [0u8; 8];
        word[..digit.len()].copy_from_slice(digit);
        let word = u64::from_le_bytes(word);
        h.pair(word as u32, (word >> 32) as u32, constant);
    }
}

/// A hash's trie path as one number: its nibbles from the lowest up, most significant first,
/// so that ordering paths is ordering these numbers.
fn trie_path(hash: u32) -> u32 {
    let bytes = hash.to_le_bytes().map(|b| b.rotate_left(4));
    u32::from_be_bytes(bytes)
}

/// For a map with more than [`SMALL_MAP_LIMIT`] keys, the indices of `pairs`
/// in BEAM's iteration order; `None` when the sorted order applies (small maps, and large maps
/// whose order this crate cannot know: see the module documentation).
pub(crate) fn large_map_order(pairs: &[(Term, Term)]) -> Option<Vec<usize>> {
    if pairs.len() <= SMALL_MAP_LIMIT {
        return None;
    }
    let mut paths: Vec<(u32, usize)> = pairs
        .iter()
        .enumerate()
        .map(|(i, (k, _))| internal_hash(k).map(|h| (trie_path(h), i)))
        .collect::<Option<_>>()?;
    paths.sort_unstable();
    if paths.windows(2).any(|w| w[0].0 == w[1].0) {
        return None;
    }
    Some(paths.into_iter().map(|(_, i)| i).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_path_orders_by_lowest_nibble_first() {
        assert_eq!(trie_path(0x0000_0001), 0x1000_0000);
        assert_eq!(trie_path(0x0000_0010), 0x0100_0000);
        assert_eq!(trie_path(0x8765_4321), 0x1234_5678);
    }

    #[test]
    fn keys_without_vm_words_have_a_known_hash() {
        let cases = [
            (Term::Int(0), true),
            (Term::Int(-1), true),
            (Term::Int((1 << 59) - 1), true),
            (Term::Int(1 << 59), true),
            (Term::Int(-(1 << 59)), true),
            (Term::Int(-(1 << 59) - 1), true),
            (Term::atom("a"), false),
            (Term::Float(1.0), true),
            (Term::Tuple(vec![Term::Int(1), Term::atom("a")]), false),
            (Term::string_latin1(b"abc"), true),
        ];
        for (key, known) in cases {
            assert_eq!(internal_hash(&key).is_some(), known, "{key}");
        }
    }
}
