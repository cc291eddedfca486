//! A fast hasher for the checks after the run, which put every acked id
//! (and, reading the conversations back, every body) into hash sets: the
//! standard SipHash, built to resist keys chosen by an attacker, was most of
//! their cost, and these keys come from our own run. This is rustc's
//! `FxHasher`: rotate, xor, multiply, a word at a time.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The multiplier of rustc's `FxHasher` (64-bit).
const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

/// How many bits a hash rotates before each word is mixed in.
const ROTATE_BITS: u32 = 5;

#[derive(Debug, Default, Clone, Copy)]
pub struct FastHasher {
    hash: u64,
}

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(ROTATE_BITS) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, value: u8) {
        self.add(u64::from(value));
    }

    fn write_u32(&mut self, value: u32) {
        self.add(u64::from(value));
    }

    fn write_u64(&mut self, value: u64) {
        self.add(value);
    }

    fn write_usize(&mut self, value: usize) {
        self.add(value as u64);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}

pub type FastBuild = BuildHasherDefault<FastHasher>;
pub type FastSet<T> = HashSet<T, FastBuild>;
pub type FastMap<K, V> = HashMap<K, V, FastBuild>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_work_with_ids_and_strings() {
        let ids: FastSet<u64> = (0..10_000).collect();
        assert_eq!(ids.len(), 10_000);
        assert!(ids.contains(&9_999) && !ids.contains(&10_000));
        let mut bodies: FastMap<&str, u32> = FastMap::default();
        for body in ["sbload L1 u=1 n=1 t=1", "sbload L1 u=1 n=1 t=2", "x"] {
            *bodies.entry(body).or_default() += 1;
        }
        *bodies.entry("x").or_default() += 1;
        assert_eq!(bodies.get("x"), Some(&2));
        assert_eq!(bodies.len(), 3);
    }
}
