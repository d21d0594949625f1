//! Symmetric fixed-point rounding of values, row by row: what a datapath of `bits`-bit
//! values keeps of f32 numbers, for the quality side of a `value_bits` choice (the
//! explorer's 8-bit candidates; [`super::forward::Model::with_value_bits`]).
//!
//! A row `x` (a weight row of one output, or one token's activations) gets one scale:
//!
//! ```text
//! qmax   = 2^(bits-1) - 1                          (8 bits: 127)
//! scale  = max_i |x_i| / qmax
//! x'_i   = clamp(round(x_i / scale), -qmax, qmax) * scale      (round half away from zero)
//! ```
//!
//! A row of zeros stays zeros, and so does every zero of a row (N:M sparsity is kept). The
//! largest magnitude of a row is exact; every other value moves by at most `scale / 2`.

/// Rounds every row of `x` (rows of `k` values) to `bits`-bit symmetric fixed point with a
/// scale per row, in place. `bits` is 2..=16; `x.len()` a multiple of `k`.
pub fn round_rows(x: &mut [f32], k: usize, bits: u32) {
    debug_assert!((2..=16).contains(&bits) && k > 0 && x.len().is_multiple_of(k));
    let qmax = ((1u32 << (bits - 1)) - 1) as f32;
    for row in x.chunks_mut(k) {
        let max = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        if max == 0.0 || !max.is_finite() {
            continue;
        }
        let scale = max / qmax;
        for v in row.iter_mut() {
            *v = (*v / scale).round().clamp(-qmax, qmax) * scale;
        }
    }
}

/// [`round_rows`] of a copy.
pub fn rounded_rows(x: &[f32], k: usize, bits: u32) -> Vec<f32> {
    let mut y = x.to_vec();
    round_rows(&mut y, k, bits);
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_bit_rows_keep_their_largest_value_zeros_and_a_grid_of_max_over_127() {
        let mut x = vec![0.0, 1.0, -0.5, 0.0031, 2.54, 0.0, 0.0, 0.0];
        round_rows(&mut x, 4, 8);
        // Row 1: scale 1/127; row 2: scale 2.54/127 = 0.02 (0.0 stays 0).
        let s1 = 1.0f32 / 127.0;
        assert_eq!(x[0], 0.0);
        assert_eq!(x[1], 1.0);
        assert_eq!(x[2], (-0.5f32 / s1).round() * s1);
        assert!((x[2] + 0.5).abs() <= s1 / 2.0);
        assert_eq!(x[3], (0.0031f32 / s1).round() * s1);
        assert_eq!(x[4], 2.54);
        assert_eq!(&x[5..], &[0.0, 0.0, 0.0]);
    }

    #[test]
    fn every_value_moves_by_at_most_half_a_step_and_lands_on_the_grid() {
        let mut state = 7u64;
        let x: Vec<f32> = (0..4096)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 8.0 - 4.0
            })
            .collect();
        for bits in [4, 8, 12] {
            let y = rounded_rows(&x, 64, bits);
            let qmax = ((1 << (bits - 1)) - 1) as f32;
            for (xr, yr) in x.chunks(64).zip(y.chunks(64)) {
                let scale = xr.iter().fold(0.0f32, |m, v| m.max(v.abs())) / qmax;
                for (a, b) in xr.iter().zip(yr) {
                    assert!(
                        (a - b).abs() <= scale * 0.5 * (1.0 + 1e-5),
                        "{bits} bits: {a} -> {b}"
                    );
                    let q = b / scale;
                    assert!(
                        (q - q.round()).abs() < 1e-3,
                        "{bits} bits: {b} is off the grid"
                    );
                }
            }
        }
    }
}
