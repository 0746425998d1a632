//! 128-bit fingerprints of keys (and of any text a caller indexes by): what
//! the writer's duplicate check, a resumed run's [`WrittenKeys`] and the
//! ingest ledger hold instead of the strings, so each costs a fixed number
//! of bytes whatever its length. The hash tables over them use the
//! fingerprint's own bits as the hash: a BLAKE3 output is already uniform,
//! so hashing it again (SipHash, the std default) is time spent for nothing
//! at millions of entries.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

/// The fingerprint of a key (BLAKE3, first 128 bits).
pub fn key_fingerprint(key: &str) -> u128 {
    let hash = blake3::hash(key.as_bytes());
    u128::from_le_bytes(hash.as_bytes()[..16].try_into().expect("16 of 32 bytes"))
}

/// A [`Hasher`] for fingerprints: the low 64 bits of the value hashed.
/// Only for values that are already uniform hashes (anything else hashed
/// with it still works, just with more collisions).
#[derive(Default, Clone, Copy)]
pub struct FingerprintHasher(u64);

impl Hasher for FingerprintHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Not a fingerprint: fold the bytes in (FNV-1a), so the hasher stays correct.
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn write_u128(&mut self, value: u128) {
        self.0 ^= value as u64;
    }
}

/// A set of fingerprints.
pub type FingerprintSet = HashSet<u128, BuildHasherDefault<FingerprintHasher>>;
/// A map from fingerprints.
pub type FingerprintMap<V> = HashMap<u128, V, BuildHasherDefault<FingerprintHasher>>;

/// The keys of the samples in the complete shards that
/// [`crate::DatasetWriter::resume`] kept, as [`key_fingerprint`]s: 16 bytes
/// a key (plus the hash set's slack) whatever the keys' length, so a
/// resumed run over millions of samples does not hold their keys as strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WrittenKeys(FingerprintSet);

impl WrittenKeys {
    pub(crate) fn from_fingerprints(set: FingerprintSet) -> Self {
        WrittenKeys(set)
    }
    pub fn contains(&self, key: &str) -> bool {
        self.0.contains(&key_fingerprint(key))
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The fingerprints themselves, for callers that index by [`key_fingerprint`].
    pub fn into_fingerprints(self) -> FingerprintSet {
        self.0
    }
}

impl<'a> FromIterator<&'a str> for WrittenKeys {
    fn from_iter<I: IntoIterator<Item = &'a str>>(keys: I) -> Self {
        WrittenKeys(keys.into_iter().map(key_fingerprint).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_keys_answer_by_key_and_fingerprint_sets_hash_by_value() {
        let keys: WrittenKeys = ["a", "b"].into_iter().collect();
        assert!(keys.contains("a") && keys.contains("b") && !keys.contains("c"));
        assert_eq!(keys.len(), 2);
        let set = keys.into_fingerprints();
        assert!(set.contains(&key_fingerprint("b")));
        // Distinct keys, distinct fingerprints; the same key, the same one.
        assert_ne!(key_fingerprint("a"), key_fingerprint("b"));
        assert_eq!(key_fingerprint("a"), key_fingerprint("a"));
        // Bytes hashed through the fallback still tell values apart.
        let mut map: HashMap<&str, u32, BuildHasherDefault<FingerprintHasher>> = HashMap::default();
        map.insert("x", 1);
        map.insert("y", 2);
        assert_eq!((map["x"], map["y"]), (1, 2));
    }
}
