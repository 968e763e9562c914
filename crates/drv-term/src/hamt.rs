//! Iteration order of BEAM's large (hash array mapped trie) maps.

use crate::Term;

/// Most keys a map can have and still be a flat (sorted) map in BEAM.
pub const SMALL_MAP_LIMIT: usize = 32;

/// For a map with more than [`SMALL_MAP_LIMIT`] keys, the indices of `pairs`
/// in BEAM's iteration order; `None` when the sorted order applies.
pub(crate) fn large_map_order(pairs: &[(Term, Term)]) -> Option<Vec<usize>> {
    if pairs.len() <= SMALL_MAP_LIMIT {
        return None;
    }
    None
}
