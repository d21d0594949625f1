//! A stable content hash (FNV-1a, 128 bits) for identifying a sweep across runs, machines and
//! Rust versions (`std`'s `DefaultHasher` is none of these).
//!
//! Fields are length-prefixed, so `("ab", "c")` and `("a", "bc")` hash differently. Not a
//! cryptographic hash: it tells sweeps apart, it does not resist forgery.

/// FNV-1a 128-bit offset basis.
const OFFSET_BASIS: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
/// FNV 128-bit prime, 2^88 + 2^8 + 0x3b.
const PRIME: u128 = 0x0000_0000_0100_0000_0000_0000_0000_013b;

/// An FNV-1a 128-bit hash being fed.
#[derive(Clone, Debug)]
pub struct StableHash(u128);

impl Default for StableHash {
    fn default() -> Self {
        StableHash(OFFSET_BASIS)
    }
}

impl StableHash {
    /// A fresh hash.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds raw bytes.
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(PRIME);
        }
        self
    }

    /// Feeds a number (8 bytes, little endian).
    pub fn u64(&mut self, x: u64) -> &mut Self {
        self.bytes(&x.to_le_bytes())
    }

    /// Feeds a string as one field: its length, then its bytes.
    pub fn field(&mut self, s: &str) -> &mut Self {
        self.u64(s.len() as u64).bytes(s.as_bytes())
    }

    /// The hash as 32 lowercase hex digits.
    pub fn hex(&self) -> String {
        format!("{:032x}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_published_fnv1a_128_vectors() {
        // From the FNV reference test suite (draft-eastlake-fnv).
        assert_eq!(StableHash::new().hex(), "6c62272e07bb014262b821756295c58d");
        assert_eq!(
            StableHash::new().bytes(b"a").hex(),
            "d228cb696f1a8caf78912b704e4a8964"
        );
        assert_eq!(
            StableHash::new().bytes(b"foobar").hex(),
            "343e1662793c64bf6f0d3597ba446f18"
        );
    }

    #[test]
    fn fields_are_length_prefixed() {
        let ab_c = StableHash::new().field("ab").field("c").hex();
        let a_bc = StableHash::new().field("a").field("bc").hex();
        assert_ne!(ab_c, a_bc);
    }
}
