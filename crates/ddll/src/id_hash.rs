//! A hasher for maps keyed by the runtime's own numbers (process and port numbers, pids):
//! a multiply and a rotate per word, where the standard library's SipHash costs a hundred
//! instructions or more a lookup on an isolated driver's round trip. Those keys are made by
//! the runtime, not by whoever sends it data, so no resistance to chosen collisions is needed.

#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A map keyed by the runtime's own numbers.
pub(crate) type IdHashMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdHashMap`] (the Fx hash's step: rotate, xor the word, multiply).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdHasher(u64);

/// An odd constant with well-spread bits (the Fx hash's).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            self.add(u64::from_le_bytes(chunk.try_into().expect("8 bytes")));
        }
        let mut last = [0; 8];
        let rest = chunks.remainder();
        if !rest.is_empty() {
            last[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(last));
        }
    }

    #[inline]
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_keep_what_they_are_given() {
        let mut map: IdHashMap<u64, u64> = IdHashMap::default();
        // Numbers as the runtime makes them: a counter, with a generation in the high half.
        let keys: Vec<u64> = (0..2000u64).map(|n| n | (n % 7) << 32).collect();
        for &k in &keys {
            map.insert(k, !k);
        }
        assert_eq!(map.len(), keys.len());
        assert!(keys.iter().all(|k| map.get(k) == Some(&!k)));
        assert_eq!(map.get(&(1 << 40)), None);
    }

    #[test]
    fn byte_writes_hash_every_byte() {
        let hash = |bytes: &[u8]| {
            let mut h = IdHasher::default();
            h.write(bytes);
            h.finish()
        };
        // The tail past the last whole word counts too.
        assert_ne!(hash(&[0; 9]), hash(&[0, 0, 0, 0, 0, 0, 0, 0, 1]));
        assert_ne!(hash(b"ab"), hash(b"ba"));
    }
}
