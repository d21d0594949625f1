//! Activation-aware N:M pruning of one linear weight from its calibration inputs: Wanda and
//! SparseGPT, with the input statistics both need and the relative output error they are
//! judged by.
//!
//! A linear `y = x W^T`, `W` of `rows x k` (PyTorch's `[out, in]`), sees `n` calibration
//! inputs `x_t` (rows of `X`, `n x k`). Everything below needs only the Gram matrix
//! `G = X^T X = sum_t x_t x_t^T` (`k x k`, accumulated in f64, [`Gram`]).
//!
//! **Wanda** (Sun et al. 2023): score `|W_ij| * ||X_j||_2` with `||X_j||_2^2 = G_jj`; the `N`
//! largest scores of each group of `M` inputs of a row are kept. No weight is changed.
//!
//! **SparseGPT** (Frantar and Alistarh 2023), on `H = 2 G / n` with damping
//! `H_ii += 0.01 mean(diag H)` (an input never seen, `H_ii = 0`, gets `H_ii = 1` and its
//! weights zero first, as the reference does). `U` is the upper Cholesky factor of `H^-1`
//! (`H^-1 = U^T U`). Columns go left to right; at the first column of each group of `M` the
//! group's mask keeps the `N` largest `w_j^2 / U_jj^2` of the row as it is then (earlier
//! columns' updates applied); each column `i` is then quantised to `q_i` (`w_i` if kept, else
//! 0) and the error is pushed onto the columns after it:
//!
//! ```text
//! e = (w_i - q_i) / U_ii          w_j -= e * U_ij   for every j > i       (the OBS update)
//! ```
//!
//! Updates are applied lazily in blocks of 128 columns (the reference's `blocksize`, rounded
//! up to a multiple of `M`): within a block at once, to the columns after it once per block,
//! which changes only the order of the additions. Rows are independent given `U`, so each row
//! is pruned on its own (f64 throughout, two threads), and the result does not depend on how
//! rows are split. `U` comes from one Cholesky factorisation and one triangular inverse: with
//! `J` the reversal permutation, `J H J = L L^T` (lower `L`) gives `H = R R^T`, `R = J L J`
//! upper, so `H^-1 = R^-T R^-1` and `U = R^-1 = J L^-1 J`.
//!
//! **Families** (one M, falling N) by inheritance: the densest member by the method from the
//! weights; each sparser member chosen among the kept weights of the member before it, by the
//! same method run on that member's (updated) weights. The family format stores one value a
//! slot for every member ([`super::prune`]), so a sparser member keeps the values of the
//! densest one: SparseGPT chooses its mask with the OBS updates (on a copy), but the values
//! stored are the densest member's.

use super::nm::Pattern;
use super::prune::{Mask, choose, prune, prune_scored};

/// How the kept weights are chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    /// The `N` largest `|w|` of each group.
    Magnitude,
    /// The `N` largest `|w| ||X_j||` of each group (Wanda).
    Wanda,
    /// SparseGPT's mask and OBS update.
    Sparsegpt,
}

impl Method {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::Magnitude => "magnitude",
            Method::Wanda => "wanda",
            Method::Sparsegpt => "sparsegpt",
        }
    }
}

/// SparseGPT's damping, a share of the mean diagonal of `H`.
pub const DAMPING: f64 = 0.01;
/// SparseGPT's block of columns updated together.
pub const BLOCK_COLUMNS: usize = 128;

/// The Gram matrix `G = X^T X` of a linear's inputs, `k x k` (full, symmetric), and `n`.
#[derive(Clone, Debug)]
pub struct Gram {
    /// Inputs (columns of `W`).
    pub k: usize,
    /// Rows of `X` seen.
    pub n: usize,
    /// `G`, row-major.
    pub g: Vec<f64>,
}

impl Gram {
    /// An empty Gram matrix of `k` inputs.
    pub fn new(k: usize) -> Gram {
        Gram {
            k,
            n: 0,
            g: vec![0.0; k * k],
        }
    }

    /// Adds the `rows` inputs of `x` (`rows x k`, row-major): `G += X^T X`. The upper
    /// triangle is summed (4 rows of `G` at a time, over `t` in order, two threads by
    /// alternating blocks of rows) and mirrored.
    pub fn add(&mut self, x: &[f32], rows: usize) {
        let k = self.k;
        assert_eq!(x.len(), rows * k, "Gram::add: {rows} rows of {k}");
        // X^T, f64, so each G_ij is a contiguous dot product over t.
        let mut xt = vec![0.0f64; k * rows];
        for (t, row) in x.chunks_exact(k).enumerate() {
            for (j, &v) in row.iter().enumerate() {
                xt[j * rows + t] = f64::from(v);
            }
        }
        const TILE: usize = 4;
        let tiles = k.div_ceil(TILE);
        let work = |parity: usize| -> Vec<(usize, Vec<f64>)> {
            let mut out = Vec::new();
            for b in (parity..tiles).step_by(2) {
                let i0 = b * TILE;
                let i1 = (i0 + TILE).min(k);
                // Rows i0..i1 of the upper triangle, columns i0..k.
                let mut part = vec![0.0f64; (i1 - i0) * (k - i0)];
                for j in i0..k {
                    let xj = &xt[j * rows..(j + 1) * rows];
                    for i in i0..i1.min(j + 1) {
                        let xi = &xt[i * rows..(i + 1) * rows];
                        part[(i - i0) * (k - i0) + (j - i0)] = dot64(xi, xj);
                    }
                }
                out.push((i0, part));
            }
            out
        };
        let (even, odd) = std::thread::scope(|s| {
            let h = s.spawn(|| work(1));
            (work(0), h.join().unwrap_or_default())
        });
        for (i0, part) in even.into_iter().chain(odd) {
            let width = k - i0;
            for (di, row) in part.chunks_exact(width).enumerate() {
                let i = i0 + di;
                for j in i..k {
                    let v = row[j - i0];
                    self.g[i * k + j] += v;
                    if j != i {
                        self.g[j * k + i] += v;
                    }
                }
            }
        }
        self.n += rows;
    }

    /// `||X_j||_2^2 = G_jj`, each input's squared norm.
    pub fn sq_norms(&self) -> Vec<f64> {
        (0..self.k).map(|j| self.g[j * self.k + j]).collect()
    }
}

/// `sum a_i b_i` in 4 lanes, then the lanes in order (a fixed order).
fn dot64(a: &[f64], b: &[f64]) -> f64 {
    let mut lanes = [0.0f64; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..4 {
            lanes[j] += x[j] * y[j];
        }
    }
    for (j, (x, y)) in ra.iter().zip(rb).enumerate() {
        lanes[j] += x * y;
    }
    (lanes[0] + lanes[1]) + (lanes[2] + lanes[3])
}

/// Wanda's masks of a family (densest first) of `w` (`rows x k`) with input squared norms
/// `sq_norms` (`G_jj`).
pub fn wanda_family(
    w: &[f32],
    rows: usize,
    k: usize,
    sq_norms: &[f64],
    family: &[Pattern],
) -> Vec<Mask> {
    let norms: Vec<f64> = sq_norms.iter().map(|&s| s.max(0.0).sqrt()).collect();
    let score = |c: usize, v: f32| f64::from(v.abs()) * norms[c];
    let mut out: Vec<Mask> = Vec::with_capacity(family.len());
    for &p in family {
        let m = prune_scored(w, rows, k, p, out.last(), &score);
        out.push(m);
    }
    out
}

/// `U`, the upper Cholesky factor of `H^-1` for `H = 2 G / n` damped (module header),
/// row-major `k x k`; also the columns never seen (`G_jj = 0`), whose weights are zeroed.
pub fn inverse_factor(gram: &Gram) -> Result<(Vec<f64>, Vec<bool>), String> {
    let k = gram.k;
    let scale = if gram.n > 0 { 2.0 / gram.n as f64 } else { 0.0 };
    let mut h: Vec<f64> = gram.g.iter().map(|&v| v * scale).collect();
    let dead: Vec<bool> = (0..k).map(|i| h[i * k + i] == 0.0).collect();
    for (i, &d) in dead.iter().enumerate() {
        if d {
            h[i * k + i] = 1.0;
        }
    }
    let mean = (0..k).map(|i| h[i * k + i]).sum::<f64>() / k as f64;
    for i in 0..k {
        h[i * k + i] += DAMPING * mean;
    }
    // J H J = L L^T: the reversed matrix, factored.
    let rev = |i: usize| k - 1 - i;
    let mut a = vec![0.0f64; k * k];
    for i in 0..k {
        for j in 0..k {
            a[i * k + j] = h[rev(i) * k + rev(j)];
        }
    }
    let l = cholesky_lower(&a, k)?;
    let linv = invert_lower(&l, k);
    // U = J L^-1 J.
    let mut u = vec![0.0f64; k * k];
    for i in 0..k {
        for j in i..k {
            u[i * k + j] = linv[rev(i) * k + rev(j)];
        }
    }
    Ok((u, dead))
}

/// The lower Cholesky factor of the symmetric positive definite `a` (`k x k`).
fn cholesky_lower(a: &[f64], k: usize) -> Result<Vec<f64>, String> {
    let mut l = vec![0.0f64; k * k];
    for j in 0..k {
        let (lj, rest) = l.split_at_mut((j + 1) * k);
        let lj = &mut lj[j * k..];
        let d = a[j * k + j] - dot64(&lj[..j], &lj[..j]);
        if d.is_nan() || d <= 0.0 {
            return Err(format!(
                "the damped Hessian is not positive definite at column {j} (pivot {d:e})"
            ));
        }
        let djj = d.sqrt();
        lj[j] = djj;
        let lj = &lj[..j];
        for (r, li) in rest.chunks_exact_mut(k).enumerate() {
            let i = j + 1 + r;
            li[j] = (a[i * k + j] - dot64(&li[..j], lj)) / djj;
        }
    }
    Ok(l)
}

/// `L^-1` of a lower-triangular `l`, column by column (forward substitution of `L x = e_j`),
/// two threads by alternating columns.
fn invert_lower(l: &[f64], k: usize) -> Vec<f64> {
    let column = |j: usize| -> Vec<f64> {
        // x[i] for i >= j.
        let mut x = vec![0.0f64; k - j];
        x[0] = 1.0 / l[j * k + j];
        for i in j + 1..k {
            let s = dot64(&l[i * k + j..i * k + i], &x[..i - j]);
            x[i - j] = -s / l[i * k + i];
        }
        x
    };
    let cols = |parity: usize| -> Vec<(usize, Vec<f64>)> {
        (parity..k).step_by(2).map(|j| (j, column(j))).collect()
    };
    let (even, odd) = std::thread::scope(|s| {
        let h = s.spawn(|| cols(1));
        (cols(0), h.join().unwrap_or_default())
    });
    let mut inv = vec![0.0f64; k * k];
    for (j, x) in even.into_iter().chain(odd) {
        for (d, v) in x.into_iter().enumerate() {
            inv[(j + d) * k + j] = v;
        }
    }
    inv
}

/// SparseGPT on `w` (`rows x k`, updated in place: pruned weights 0, the others compensated)
/// with inverse factor `u` ([`inverse_factor`]) and dead columns `dead`; with `from`, the mask
/// is chosen among its kept weights. Returns the mask.
pub fn sparsegpt(
    w: &mut [f32],
    rows: usize,
    k: usize,
    u: &[f64],
    dead: &[bool],
    pattern: Pattern,
    from: Option<&Mask>,
) -> Mask {
    let m = pattern.m as usize;
    let groups = k.div_ceil(m);
    let block = BLOCK_COLUMNS.div_ceil(m) * m;
    let one_row = |r: usize, wr: &mut [f32]| -> Vec<Vec<u32>> {
        let mut x: Vec<f64> = wr
            .iter()
            .zip(dead)
            .map(|(&v, &d)| if d { 0.0 } else { f64::from(v) })
            .collect();
        let mut kept_row = Vec::with_capacity(groups);
        let mut keep = vec![false; k];
        let mut err = vec![0.0f64; block];
        let mut score = Vec::with_capacity(m);
        for i1 in (0..k).step_by(block) {
            let i2 = (i1 + block).min(k);
            for i in i1..i2 {
                if (i - i1).is_multiple_of(m) {
                    let g = i / m;
                    let len = m.min(k - i);
                    score.clear();
                    score.extend((0..len).map(|o| {
                        let uu = u[(i + o) * k + i + o];
                        x[i + o] * x[i + o] / (uu * uu)
                    }));
                    let all: Vec<u32> = (0..len as u32).collect();
                    let candidates = from.map_or(all, |f| f.kept[r * groups + g].clone());
                    let kept = choose(&score, &candidates, (pattern.n as usize).min(len));
                    for &o in &kept {
                        keep[i + o as usize] = true;
                    }
                    kept_row.push(kept);
                }
                let q = if keep[i] { x[i] } else { 0.0 };
                let e = (x[i] - q) / u[i * k + i];
                x[i] = q;
                err[i - i1] = e;
                if e != 0.0 {
                    let ui = &u[i * k..(i + 1) * k];
                    for j in i + 1..i2 {
                        x[j] -= e * ui[j];
                    }
                }
            }
            // The block's errors onto the columns after it.
            for (b, &e) in err[..i2 - i1].iter().enumerate() {
                if e != 0.0 {
                    let ui = &u[(i1 + b) * k..(i1 + b + 1) * k];
                    for j in i2..k {
                        x[j] -= e * ui[j];
                    }
                }
            }
        }
        for (v, xv) in wr.iter_mut().zip(&x) {
            *v = *xv as f32;
        }
        kept_row
    };
    let half = rows.div_ceil(2);
    let (top, bottom) = w.split_at_mut(half * k);
    let run = |first: usize, part: &mut [f32]| -> Vec<Vec<u32>> {
        let mut kept = Vec::new();
        for (dr, wr) in part.chunks_exact_mut(k).enumerate() {
            kept.extend(one_row(first + dr, wr));
        }
        kept
    };
    let (mut kept, rest) = std::thread::scope(|s| {
        let h = s.spawn(|| run(half, bottom));
        (run(0, top), h.join().unwrap_or_default())
    });
    kept.extend(rest);
    Mask {
        rows,
        k,
        pattern,
        kept,
    }
}

/// One linear pruned to a family (densest first) by `method`: the weights to store (the
/// densest member's, updated by SparseGPT; unchanged otherwise) and the masks, densest first.
pub fn prune_linear(
    w: &[f32],
    rows: usize,
    k: usize,
    gram: Option<&Gram>,
    method: Method,
    family: &[Pattern],
) -> Result<(Vec<f32>, Vec<Mask>), String> {
    let need = || {
        gram.ok_or_else(|| {
            format!(
                "{} needs calibration inputs (a bug: please report it)",
                method.name()
            )
        })
    };
    match method {
        Method::Magnitude => {
            let mut masks: Vec<Mask> = Vec::with_capacity(family.len());
            for &p in family {
                let m = prune(w, rows, k, p, masks.last());
                masks.push(m);
            }
            Ok((w.to_vec(), masks))
        }
        Method::Wanda => Ok((
            w.to_vec(),
            wanda_family(w, rows, k, &need()?.sq_norms(), family),
        )),
        Method::Sparsegpt => {
            let (u, dead) = inverse_factor(need()?)?;
            let mut values = w.to_vec();
            let mut masks = vec![sparsegpt(&mut values, rows, k, &u, &dead, family[0], None)];
            for &p in &family[1..] {
                let mut scratch = values.clone();
                let m = sparsegpt(&mut scratch, rows, k, &u, &dead, p, masks.last());
                masks.push(m);
            }
            Ok((values, masks))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SplitMix64;

    fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut r = SplitMix64::new(seed);
        (0..n)
            .map(|_| ((r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32)
            .collect()
    }

    /// Inputs whose channels have very different norms (channel `j` scaled by `1 + j % 7`).
    fn skewed_inputs(n: usize, k: usize, seed: u64) -> Vec<f32> {
        let mut x = random(n * k, seed);
        for (i, v) in x.iter_mut().enumerate() {
            *v *= (1 + (i % k) % 7) as f32;
        }
        x
    }

    fn gram_of(x: &[f32], n: usize, k: usize) -> Gram {
        let mut g = Gram::new(k);
        g.add(x, n);
        g
    }

    #[test]
    fn gram_is_xtx() {
        let (n, k) = (37, 13);
        let x = random(n * k, 1);
        let g = gram_of(&x, n, k);
        for i in 0..k {
            for j in 0..k {
                let want: f64 = (0..n)
                    .map(|t| f64::from(x[t * k + i]) * f64::from(x[t * k + j]))
                    .sum();
                assert!((g.g[i * k + j] - want).abs() < 1e-9 * (1.0 + want.abs()));
            }
        }
        assert_eq!(g.n, n);
    }

    /// H^-1 by Gauss-Jordan, then its upper Cholesky factor the textbook way (row by row of
    /// `U^T U`): an independent route to `U`.
    fn naive_u(gram: &Gram) -> Vec<f64> {
        let k = gram.k;
        let mut h: Vec<f64> = gram.g.iter().map(|&v| v * 2.0 / gram.n as f64).collect();
        for i in 0..k {
            if h[i * k + i] == 0.0 {
                h[i * k + i] = 1.0;
            }
        }
        let mean = (0..k).map(|i| h[i * k + i]).sum::<f64>() / k as f64;
        for i in 0..k {
            h[i * k + i] += DAMPING * mean;
        }
        // Gauss-Jordan on [H | I].
        let w = 2 * k;
        let mut a = vec![0.0f64; k * w];
        for i in 0..k {
            a[i * w..i * w + k].copy_from_slice(&h[i * k..(i + 1) * k]);
            a[i * w + k + i] = 1.0;
        }
        for c in 0..k {
            let p = a[c * w + c];
            for j in 0..w {
                a[c * w + j] /= p;
            }
            for r in 0..k {
                if r != c {
                    let f = a[r * w + c];
                    for j in 0..w {
                        a[r * w + j] -= f * a[c * w + j];
                    }
                }
            }
        }
        let inv: Vec<f64> = (0..k * k).map(|i| a[(i / k) * w + k + i % k]).collect();
        // inv = U^T U: U_ii = sqrt(inv_ii - sum_{m<i} U_mi^2), U_ij = (inv_ij - sum U_mi U_mj) / U_ii.
        let mut u = vec![0.0f64; k * k];
        for i in 0..k {
            let s: f64 = (0..i).map(|m| u[m * k + i] * u[m * k + i]).sum();
            u[i * k + i] = (inv[i * k + i] - s).sqrt();
            for j in i + 1..k {
                let s: f64 = (0..i).map(|m| u[m * k + i] * u[m * k + j]).sum();
                u[i * k + j] = (inv[i * k + j] - s) / u[i * k + i];
            }
        }
        u
    }

    /// SparseGPT written directly from the paper: every column's error pushed onto all the
    /// columns after it at once (no blocks), the mask of each group chosen at its first
    /// column, on the full matrix, column by column.
    fn naive_sparsegpt(w: &mut [f64], rows: usize, k: usize, u: &[f64], n: usize, m: usize) {
        let mut keep = vec![false; rows * k];
        for i in 0..k {
            if i % m == 0 {
                for r in 0..rows {
                    let len = m.min(k - i);
                    let mut idx: Vec<usize> = (0..len).collect();
                    let s = |o: usize| {
                        let uu = u[(i + o) * k + i + o];
                        w[r * k + i + o].powi(2) / (uu * uu)
                    };
                    idx.sort_by(|&a, &b| s(b).total_cmp(&s(a)).then(a.cmp(&b)));
                    for &o in &idx[..n.min(len)] {
                        keep[r * k + i + o] = true;
                    }
                }
            }
            for r in 0..rows {
                let wi = w[r * k + i];
                let q = if keep[r * k + i] { wi } else { 0.0 };
                let e = (wi - q) / u[i * k + i];
                w[r * k + i] = q;
                for j in i + 1..k {
                    w[r * k + j] -= e * u[i * k + j];
                }
            }
        }
    }

    #[test]
    fn the_inverse_factor_is_the_upper_cholesky_of_the_inverse() {
        let (n, k) = (64, 24);
        let g = gram_of(&skewed_inputs(n, k, 3), n, k);
        let (u, dead) = inverse_factor(&g).unwrap();
        assert!(dead.iter().all(|d| !d));
        let want = naive_u(&g);
        for (a, b) in u.iter().zip(&want) {
            assert!((a - b).abs() < 1e-9 * (1.0 + b.abs()), "{a} vs {b}");
        }
    }

    #[test]
    fn sparsegpt_matches_the_naive_column_by_column_update() {
        // k = 300: three blocks of 128 (the last short), groups of 4 and 8, and a short
        // last group for M = 16 (300 = 18 * 16 + 12).
        let (n, rows, k) = (400, 9, 300);
        let x = skewed_inputs(n, k, 5);
        let g = gram_of(&x, n, k);
        let w = random(rows * k, 7);
        let u_naive = naive_u(&g);
        for (nk, m) in [(2, 4), (4, 8), (1, 4), (5, 16)] {
            let p = Pattern::parse(&format!("{nk}:{m}")).unwrap();
            let (u, dead) = inverse_factor(&g).unwrap();
            let mut fast = w.clone();
            let mask = sparsegpt(&mut fast, rows, k, &u, &dead, p, None);
            let mut slow: Vec<f64> = w.iter().map(|&v| f64::from(v)).collect();
            naive_sparsegpt(&mut slow, rows, k, &u_naive, nk as usize, m as usize);
            let scale = slow.iter().fold(0.0f64, |a, v| a.max(v.abs()));
            for (i, (a, b)) in fast.iter().zip(&slow).enumerate() {
                assert!(
                    (f64::from(*a) - b).abs() <= 1e-5 * scale,
                    "{p} weight {i}: {a} vs {b}"
                );
                assert_eq!(*b == 0.0, !mask.keeps(i / k, i % k), "{p} mask at {i}");
            }
        }
    }

    #[test]
    fn sparsegpt_beats_wanda_and_wanda_beats_magnitude_on_skewed_inputs() {
        let (n, rows, k) = (512, 32, 128);
        let x = skewed_inputs(n, k, 11);
        let g = gram_of(&x, n, k);
        let w = random(rows * k, 13);
        let fam = [Pattern::parse("2:4").unwrap()];
        let err = |m: Method| {
            let (v, masks) = prune_linear(&w, rows, k, Some(&g), m, &fam).unwrap();
            let pruned = super::super::prune::apply(&v, &masks[0]);
            // ||X D^T||^2 = sum_r d_r^T G d_r.
            let quad = |d: &[f64]| -> f64 {
                (0..k)
                    .map(|i| d[i] * (0..k).map(|j| g.g[i * k + j] * d[j]).sum::<f64>())
                    .sum()
            };
            let (mut num, mut den) = (0.0, 0.0);
            for r in 0..rows {
                let row = |v: &[f32]| -> Vec<f64> {
                    v[r * k..(r + 1) * k]
                        .iter()
                        .map(|&x| f64::from(x))
                        .collect()
                };
                let (p, d) = (row(&pruned), row(&w));
                let diff: Vec<f64> = p.iter().zip(&d).map(|(a, b)| a - b).collect();
                num += quad(&diff);
                den += quad(&d);
            }
            (num / den).sqrt()
        };
        let (mag, wanda, sgpt) = (
            err(Method::Magnitude),
            err(Method::Wanda),
            err(Method::Sparsegpt),
        );
        assert!(sgpt < wanda && wanda < mag, "{sgpt} {wanda} {mag}");
    }

    #[test]
    fn wanda_keeps_by_weight_times_input_norm() {
        // One row, one group of 4: |w| = 4 3 2 1, input norms 1 1 10 10 -> scores 4 3 20 10.
        let g = Gram {
            k: 4,
            n: 1,
            g: vec![
                1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 100.0, 0.0, 0.0, 0.0, 0.0, 100.0,
            ],
        };
        let w = [4.0f32, -3.0, 2.0, -1.0];
        let fam = [
            Pattern::parse("2:4").unwrap(),
            Pattern::parse("1:4").unwrap(),
        ];
        let masks = wanda_family(&w, 1, 4, &g.sq_norms(), &fam);
        assert_eq!(masks[0].kept, vec![vec![2, 3]]);
        assert_eq!(masks[1].kept, vec![vec![2]]);
        // Magnitude keeps the first two.
        let (_, mag) = prune_linear(&w, 1, 4, None, Method::Magnitude, &fam[..1]).unwrap();
        assert_eq!(mag[0].kept, vec![vec![0, 1]]);
    }

    #[test]
    fn dead_inputs_are_zeroed() {
        let (n, rows, k) = (40, 3, 8);
        let mut x = random(n * k, 29);
        for t in 0..n {
            x[t * k + 5] = 0.0;
        }
        let g = gram_of(&x, n, k);
        let (u, dead) = inverse_factor(&g).unwrap();
        assert_eq!(dead.iter().filter(|d| **d).count(), 1);
        let mut w = random(rows * k, 31);
        sparsegpt(
            &mut w,
            rows,
            k,
            &u,
            &dead,
            Pattern::parse("4:8").unwrap(),
            None,
        );
        assert!((0..rows).all(|r| w[r * k + 5] == 0.0));
    }
}
