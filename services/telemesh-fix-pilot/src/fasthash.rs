//! Owns [`FastHash`], the hasher of the reconciler's ExecID and order-id maps: FNV-1a over
//! 8-byte words. The keys come from our venue, not from an adversary on the open internet,
//! and the reconciler must keep up with a burst of reports on one core.

use std::hash::{BuildHasherDefault, Hasher};

/// A `BuildHasher` for [`WordHasher`].
pub type FastHash = BuildHasherDefault<WordHasher>;

/// FNV-1a style mixing, 8 bytes at a time.
#[derive(Debug, Clone, Copy)]
pub struct WordHasher(u64);

impl Default for WordHasher {
    fn default() -> Self {
        WordHasher(0xcbf2_9ce4_8422_2325)
    }
}

impl WordHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0 ^ word)
            .wrapping_mul(0x0000_0100_0000_01b3)
            .rotate_left(23);
    }
}

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // final avalanche so the low bits hashbrown uses depend on every input bit
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn distinct_ids_hash_apart() {
        let build = FastHash::default();
        let hashes: HashSet<u64> = (0..10_000)
            .map(|i| build.hash_one(format!("E{i}-1")))
            .collect();
        assert_eq!(hashes.len(), 10_000);
        assert_ne!(build.hash_one("E1"), build.hash_one("E1\0"));
    }
}
