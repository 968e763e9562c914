//! Coverage from a driver built with sanitizer coverage (gcc: `-fsanitize-coverage=trace-pc,
//! trace-cmp`; clang: `-fsanitize-coverage=trace-pc-guard,trace-cmp`).
//!
//! The hooks the instrumentation calls are a small C library (`shim/ddll_fuzz_coverage.c`)
//! embedded in this crate, written to a private folder and preloaded (`LD_PRELOAD`) into the
//! isolated driver's host, where the driver resolves them when it is opened. They count edge
//! hits and record comparison operands in a file mapped shared, which the fuzzer clears before
//! a case and reads after it: a case that reaches a new edge (or an edge a new number of
//! times, in AFL's buckets) joins the corpus, and the constants the driver compared its input
//! with go into later inputs.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Edge counters at the start of the map (the shim's `EDGES`).
pub const EDGES: usize = 1 << 16;
/// The comparison count (`u32`) and padding, then the entries (the shim's layout).
const CMP_OFFSET: usize = EDGES + 8;
const CMP_ENTRY: usize = 24;
const CMP_ENTRIES: usize = 1024;
const MAP_LEN: usize = CMP_OFFSET + CMP_ENTRY * CMP_ENTRIES;

static SHIM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/libddll_fuzz_coverage.so"));

/// A comparison the driver made: `constant` (a compile-time constant when `is_const`, else
/// the first operand) against `operand`, `size` bytes wide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cmp {
    pub constant: u64,
    pub operand: u64,
    pub size: u8,
}

impl Cmp {
    /// The value's `size` bytes, little-endian (as the driver read them from its input).
    pub fn bytes(value: u64, size: u8) -> Vec<u8> {
        value.to_le_bytes()[..usize::from(size.clamp(1, 8))].to_vec()
    }
}

/// What one case reached.
#[derive(Debug, Default, Clone)]
pub struct Trace {
    /// `(edge, hit count)` of every edge hit.
    pub edges: Vec<(u32, u8)>,
    pub cmps: Vec<Cmp>,
}

/// The map file and what the run has reached so far.
#[derive(Debug)]
pub struct Coverage {
    map: File,
    map_path: PathBuf,
    shim: PathBuf,
    /// Per edge, the hit-count buckets seen so far (one bit each).
    seen: Vec<u8>,
    edges: usize,
}

/// AFL's hit-count bucket of a count, as one bit.
fn bucket(count: u8) -> u8 {
    match count {
        0 => 0,
        1 => 1,
        2 => 2,
        3 => 4,
        4..=7 => 8,
        8..=15 => 16,
        16..=31 => 32,
        32..=127 => 64,
        _ => 128,
    }
}

impl Coverage {
    /// Writes the hooks' library and the map file into `dir`.
    pub fn new(dir: &Path) -> Result<Coverage, String> {
        let shim = dir.join("libddll_fuzz_coverage.so");
        std::fs::write(&shim, SHIM).map_err(|e| format!("{}: {e}", shim.display()))?;
        let map_path = dir.join("coverage.map");
        let map = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&map_path)
            .map_err(|e| format!("{}: {e}", map_path.display()))?;
        map.set_len(MAP_LEN as u64)
            .map_err(|e| format!("{}: {e}", map_path.display()))?;
        Ok(Coverage {
            map,
            map_path,
            shim,
            seen: vec![0; EDGES],
            edges: 0,
        })
    }

    /// The host's environment: the hooks preloaded (after any `LD_PRELOAD` already set), and
    /// the map they write to.
    pub fn env(&self) -> Vec<(OsString, OsString)> {
        let mut preload = OsString::from(&self.shim);
        if let Some(before) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
            preload.push(":");
            preload.push(before);
        }
        vec![
            ("LD_PRELOAD".into(), preload),
            ("DDLL_FUZZ_COVERAGE".into(), self.map_path.clone().into()),
        ]
    }

    /// Clears the map for the next case.
    pub fn reset(&self) -> Result<(), String> {
        self.map
            .write_all_at(&[0; MAP_LEN], 0)
            .map_err(|e| format!("{}: {e}", self.map_path.display()))
    }

    /// What the case since [`Coverage::reset`] reached.
    pub fn read(&self) -> Result<Trace, String> {
        let mut map = vec![0u8; MAP_LEN];
        self.map
            .read_exact_at(&mut map, 0)
            .map_err(|e| format!("{}: {e}", self.map_path.display()))?;
        Ok(trace_of(&map))
    }

    /// Takes `trace` into what the run reached: whether it reached something new.
    pub fn merge(&mut self, trace: &Trace) -> bool {
        let mut new = false;
        for &(edge, count) in &trace.edges {
            let seen = &mut self.seen[edge as usize % EDGES];
            let b = bucket(count);
            if *seen == 0 {
                self.edges += 1;
            }
            if *seen & b == 0 {
                *seen |= b;
                new = true;
            }
        }
        new
    }

    /// Edges reached so far.
    pub fn edges(&self) -> usize {
        self.edges
    }
}

fn u64_at(map: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&map[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The edges and comparisons in a map's bytes.
fn trace_of(map: &[u8]) -> Trace {
    let edges = map[..EDGES]
        .iter()
        .enumerate()
        .filter(|(_, &c)| c != 0)
        .map(|(i, &c)| (i as u32, c))
        .collect();
    let mut count = [0u8; 4];
    count.copy_from_slice(&map[EDGES..EDGES + 4]);
    let count = (u32::from_le_bytes(count) as usize).min(CMP_ENTRIES);
    let mut cmps: Vec<Cmp> = (0..count)
        .map(|i| {
            let at = CMP_OFFSET + i * CMP_ENTRY;
            Cmp {
                constant: u64_at(map, at),
                operand: u64_at(map, at + 8),
                size: map[at + 16],
            }
        })
        .filter(|c| (1..=8).contains(&c.size))
        .collect();
    cmps.sort_unstable();
    cmps.dedup();
    Trace { edges, cmps }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_map_reads_as_edges_and_comparisons() {
        let mut map = vec![0u8; MAP_LEN];
        map[7] = 1;
        map[EDGES - 1] = 200;
        map[EDGES..EDGES + 4].copy_from_slice(&2u32.to_le_bytes());
        let entry = |map: &mut [u8], i: usize, c: u64, o: u64, size: u8| {
            let at = CMP_OFFSET + i * CMP_ENTRY;
            map[at..at + 8].copy_from_slice(&c.to_le_bytes());
            map[at + 8..at + 16].copy_from_slice(&o.to_le_bytes());
            map[at + 16] = size;
        };
        entry(&mut map, 0, u64::from(b'F'), 3, 1);
        entry(&mut map, 1, 0x5a5a_5546, 0, 4);
        // Past the count: not read.
        entry(&mut map, 2, 9, 9, 1);
        let trace = trace_of(&map);
        assert_eq!(trace.edges, [(7, 1), (EDGES as u32 - 1, 200)]);
        assert_eq!(trace.cmps.len(), 2);
        assert_eq!(Cmp::bytes(trace.cmps[1].constant, 4), b"FUZZ");
    }

    #[test]
    fn new_edges_and_new_hit_count_buckets_are_new_coverage() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut coverage = Coverage::new(dir.path()).expect("coverage files");
        let trace = |edges: &[(u32, u8)]| Trace {
            edges: edges.to_vec(),
            cmps: Vec::new(),
        };
        // (the case's edges and hit counts, whether they are new, edges reached so far)
        type Case<'a> = (&'a [(u32, u8)], bool, usize);
        let cases: [Case<'_>; 5] = [
            (&[(1, 1)], true, 1),
            (&[(1, 1)], false, 1),
            (&[(1, 2)], true, 1),
            (&[(1, 5), (2, 1)], true, 2),
            (&[(1, 6), (2, 1)], false, 2),
        ];
        for (edges, new, total) in cases {
            assert_eq!(coverage.merge(&trace(edges)), new, "{edges:?}");
            assert_eq!(coverage.edges(), total, "{edges:?}");
        }
        coverage.reset().expect("reset");
        assert!(coverage.read().expect("read").edges.is_empty());
    }
}
