//! A coverage-less mutation fuzzer for `drv_term::fuzz` on stable Rust.
//!
//! `cargo run --release -p drv-term --example fuzz -- [SECONDS] [SEED]`
//!
//! Starts from `fuzz-corpus/`, mutates inputs with a seeded xorshift PRNG,
//! keeps mutants that decode or build (a cheap stand-in for coverage), and
//! saves any input that panics to `tests/regressions/`.

use std::panic;
use std::path::Path;
use std::time::{Duration, Instant};

use drv_term::fuzz::{etf_decode_one, spec_one};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut v = input.to_vec();
    for _ in 0..=rng.below(4) {
        let at = rng.below(v.len() + 1);
        let last = at.min(v.len().saturating_sub(1));
        match rng.below(7) {
            0 if !v.is_empty() => v[last] ^= 1 << rng.below(8),
            1 if !v.is_empty() => v[last] = rng.next() as u8,
            2 => v.insert(at, rng.next() as u8),
            3 if at < v.len() => {
                v.remove(at);
            }
            4 => v.truncate(at),
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let len = rng.below(other.len() - from) + 1;
                v.splice(at..at, other[from..from + len].iter().copied());
            }
            _ if !v.is_empty() => {
                let interesting = [0u8, 1, 0x7F, 0x80, 0xFF, 131, 104, 108, 116];
                v[last] = interesting[rng.below(interesting.len())];
            }
            _ => v.push(rng.next() as u8),
        }
    }
    v
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10);
    let seed: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(0x5EED);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut etf: Vec<Vec<u8>> = Vec::new();
    let mut spec: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(root.join("fuzz-corpus")).expect("fuzz-corpus exists") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("readable");
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if name.starts_with("spec-") {
            spec.push(data)
        } else {
            etf.push(data)
        }
    }
    panic::set_hook(Box::new(|_| {}));
    let mut rng = Rng(seed | 1);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let (mut runs, mut crashes) = (0u64, 0u64);
    while Instant::now() < deadline {
        for _ in 0..1000 {
            let use_spec = rng.below(2) == 0;
            let pool = if use_spec { &spec } else { &etf };
            let base = &pool[rng.below(pool.len())];
            let other = &pool[rng.below(pool.len())];
            let input = mutate(&mut rng, base, other);
            let run = if use_spec { spec_one } else { etf_decode_one };
            runs += 1;
            match panic::catch_unwind(|| run(&input)) {
                Ok(()) => {
                    let pool = if use_spec { &mut spec } else { &mut etf };
                    // Keep a few new inputs so mutations can go deeper.
                    if pool.len() < 4096 && rng.below(64) == 0 {
                        pool.push(input);
                    }
                }
                Err(_) => {
                    crashes += 1;
                    let kind = if use_spec { "spec" } else { "etf" };
                    let name = format!("{kind}-crash-{seed}-{runs}.bin");
                    let path = root.join("tests/regressions").join(name);
                    std::fs::write(&path, &input).expect("write crasher");
                    eprintln!("crash saved to {}", path.display());
                }
            }
        }
    }
    println!(
        "{runs} runs, {crashes} crashes, corpus {} etf + {} spec",
        etf.len(),
        spec.len()
    );
    if crashes > 0 {
        std::process::exit(1);
    }
}
