//! N:M sparsity patterns and the compressed storage format of STA.md.
//!
//! A weight matrix `W[K x Nout]` is cut, in every output column, into groups of `M`
//! consecutive elements along K; a group keeps at most `N`. Compressed bytes of one member:
//! `ceil(K/M) * N * Nout * (b + ceil(log2 M)) / 8` (a short last group padded to N slots),
//! against `K * Nout * b / 8` dense.

use std::fmt;

/// An N:M pattern, or dense.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pattern {
    /// Kept per group.
    pub n: u32,
    /// Group size; `n == m` means dense.
    pub m: u32,
}

impl Pattern {
    /// Dense (stored and computed without indices).
    pub const DENSE: Pattern = Pattern { n: 1, m: 1 };

    /// Parses `N:M` or `dense`.
    pub fn parse(text: &str) -> Result<Pattern, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("dense") {
            return Ok(Pattern::DENSE);
        }
        let (n, m) = t
            .split_once(':')
            .ok_or_else(|| format!("`{t}` is not a pattern; write N:M (e.g. 2:4) or `dense`"))?;
        let n: u32 = n
            .trim()
            .parse()
            .map_err(|_| format!("`{n}` in `{t}` is not a whole number"))?;
        let m: u32 = m
            .trim()
            .parse()
            .map_err(|_| format!("`{m}` in `{t}` is not a whole number"))?;
        if m < 2 {
            return Err(format!("M = {m} in `{t}`: M must be at least 2"));
        }
        if n < 1 || n > m {
            return Err(format!("N = {n} in `{t}`: N must be between 1 and M = {m}"));
        }
        if n == m {
            return Ok(Pattern::DENSE);
        }
        Ok(Pattern { n, m })
    }

    /// Whether this is dense.
    pub fn is_dense(self) -> bool {
        self.n == self.m
    }

    /// Position-index bits per kept value, `ceil(log2 M)` (0 when dense).
    pub fn index_bits(self) -> u64 {
        if self.is_dense() {
            0
        } else {
            u64::from(32 - (self.m - 1).leading_zeros())
        }
    }

    /// Non-zeros stored per output column for a reduction length `k` (short last group
    /// padded to N slots).
    pub fn nnz_per_column(self, k: u64) -> u64 {
        if self.is_dense() {
            k
        } else {
            k.div_ceil(u64::from(self.m)) * u64::from(self.n)
        }
    }

    /// Stored bytes of a `k x cols` weight block with `value_bits`-bit values.
    pub fn stored_bytes(self, k: u64, cols: u64, value_bits: u64) -> u64 {
        (self.nnz_per_column(k) * cols * (value_bits + self.index_bits())).div_ceil(8)
    }

    /// Useful MACs of `rows x k x cols` with this pattern (real non-zeros only: a short last
    /// group keeps `min(N, its length)`).
    pub fn useful_macs(self, rows: u64, k: u64, cols: u64) -> u64 {
        if self.is_dense() {
            return rows * k * cols;
        }
        let (n, m) = (u64::from(self.n), u64::from(self.m));
        let kept = k / m * n + (k % m).min(n);
        rows * kept * cols
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_dense() {
            write!(f, "dense")
        } else {
            write!(f, "{}:{}", self.n, self.m)
        }
    }
}

impl serde::Serialize for Pattern {
    /// Serialised as `"2:4"` or `"dense"`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_parse_and_reject() {
        assert_eq!(Pattern::parse("2:4"), Ok(Pattern { n: 2, m: 4 }));
        assert_eq!(Pattern::parse("dense"), Ok(Pattern::DENSE));
        assert_eq!(Pattern::parse("4:4"), Ok(Pattern::DENSE));
        assert!(Pattern::parse("5:4").is_err());
        assert!(Pattern::parse("1:1").is_err());
        assert!(Pattern::parse("0:4").is_err());
        assert!(Pattern::parse("24").is_err());
    }

    #[test]
    fn compressed_size_follows_the_formula() {
        // STA.md: 2:4 with 16-bit values is 1.78x smaller than dense; 8-bit 1.6x.
        let p = Pattern::parse("2:4").unwrap();
        let dense16 = 768 * 768 * 16 / 8;
        let r16 = dense16 as f64 / p.stored_bytes(768, 768, 16) as f64;
        assert!((r16 - 16.0 / 9.0).abs() < 1e-9, "{r16}");
        let r8 = (768 * 768) as f64 / p.stored_bytes(768, 768, 8) as f64;
        assert!((r8 - 1.6).abs() < 1e-9, "{r8}");
        assert_eq!(Pattern::parse("1:8").unwrap().index_bits(), 3);
        assert_eq!(Pattern::parse("3:16").unwrap().index_bits(), 4);
    }
}
