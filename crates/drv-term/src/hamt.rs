//! Iteration order of BEAM's large (hash array mapped trie) maps.
//!
//! A map of up to [`SMALL_MAP_LIMIT`] keys is flat in BEAM, its keys sorted in map-key order.
//! A larger map is a HAMT indexed 4 bits at a time, lowest bits first, by
//! `make_internal_hash(Key, 0)`; BEAM iterates it (and `~0p` prints it) in trie order, and
//! `term_to_binary/1` writes the pairs in the reverse of that order.
//!
//! That hash is computed over the runtime's in-memory words. For an immediate small integer
//! the word is fixed (`Int << 4 | 0xF`), so a large map whose keys are all small integers gets
//! BEAM's order here, byte for byte (checked against `erl` by `tests/oracle.rs`). Other keys
//! hash words that only the VM that made the map knows (an atom hashes its index in that VM's
//! atom table, a pid its internal number), or structures not modelled here: a large map with
//! any such key, or with two keys whose 32-bit hashes collide (BEAM rehashes those a level
//! deeper), keeps its keys in map-key order. It has the same pairs and the same encoded
//! length, and `binary_to_term/1` gives the same map back, but the bytes and the printed order
//! differ from BEAM's.

use crate::Term;

/// Most keys a map can have and still be a flat (sorted) map in BEAM.
pub const SMALL_MAP_LIMIT: usize = 32;

/// `make_internal_hash`'s starting value (OTP 25).
const INTERNAL_HASH_SALT: u32 = 3_432_918_353;
/// The golden-ratio constant of BEAM's term hashes.
const HCONST: u32 = 0x9e37_79b9;
/// The range of BEAM's immediate small integers on a 64-bit VM (60 bits, signed).
const SMALL_BITS: u32 = 60;

/// Bob Jenkins' 96-bit mix, as BEAM's `MIX` macro.
fn mix(mut a: u32, mut b: u32, mut c: u32) -> u32 {
    a = a.wrapping_sub(b).wrapping_sub(c) ^ (c >> 13);
    b = b.wrapping_sub(c).wrapping_sub(a) ^ (a << 8);
    c = c.wrapping_sub(a).wrapping_sub(b) ^ (b >> 13);
    a = a.wrapping_sub(b).wrapping_sub(c) ^ (c >> 12);
    b = b.wrapping_sub(c).wrapping_sub(a) ^ (a << 16);
    c = c.wrapping_sub(a).wrapping_sub(b) ^ (b >> 5);
    a = a.wrapping_sub(b).wrapping_sub(c) ^ (c >> 3);
    b = b.wrapping_sub(c).wrapping_sub(a) ^ (a << 10);
    c.wrapping_sub(a).wrapping_sub(b) ^ (b >> 15)
}

/// `make_internal_hash(Key, 0)` for keys whose VM word is known: small integers.
fn internal_hash(key: &Term) -> Option<u32> {
    let Term::Int(i) = *key else { return None };
    let limit = 1i64 << (SMALL_BITS - 1);
    if !(-limit..limit).contains(&i) {
        return None;
    }
    let word = ((i as u64) << 4) | 0xF;
    Some(mix(
        HCONST.wrapping_add(word as u32),
        HCONST.wrapping_add((word >> 32) as u32),
        INTERNAL_HASH_SALT,
    ))
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
    fn only_small_integers_have_a_known_hash() {
        let cases = [
            (Term::Int(0), true),
            (Term::Int(-1), true),
            (Term::Int((1 << 59) - 1), true),
            (Term::Int(1 << 59), false),
            (Term::Int(-(1 << 59)), true),
            (Term::Int(-(1 << 59) - 1), false),
            (Term::atom("a"), false),
            (Term::Float(1.0), false),
        ];
        for (key, known) in cases {
            assert_eq!(internal_hash(&key).is_some(), known, "{key}");
        }
    }
}
