//! Iteration order of BEAM's large (hash array mapped trie) maps.
//!
//! A map of up to [`SMALL_MAP_LIMIT`] keys is flat in BEAM, its keys sorted in map-key order:
//! `encode` writes them in that order, byte-identical to `term_to_binary/1`. A larger map is a
//! HAMT indexed by `make_internal_hash` of each key, and `term_to_binary/1` writes its pairs in
//! trie order. That hash is computed over the runtime's in-memory words: an atom key hashes its
//! index in that VM's atom table, a pid its internal number, and the mixing function depends
//! on the OTP release and on how the VM was built (CRC32C or not). So the order cannot be
//! reproduced outside the VM that made the map, and this crate does not try: a large map
//! encodes with its keys in map-key order (same pairs, same length, and `binary_to_term/1`
//! gives the same map back), and decoding accepts any order. `Display` prints a large map in
//! map-key order too, where `~0p` prints BEAM's hash order: a scenario printing a map of more
//! than 32 keys differs from BEAM in the order of the pairs only.

use crate::Term;

/// Most keys a map can have and still be a flat (sorted) map in BEAM.
pub const SMALL_MAP_LIMIT: usize = 32;

/// For a map with more than [`SMALL_MAP_LIMIT`] keys, the indices of `pairs`
/// in BEAM's iteration order; `None` when the sorted order applies (always, for now: see the
/// module documentation).
pub(crate) fn large_map_order(pairs: &[(Term, Term)]) -> Option<Vec<usize>> {
    if pairs.len() <= SMALL_MAP_LIMIT {
        return None;
    }
    None
}
