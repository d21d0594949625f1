//! Tiling of one matrix product `[rows x k] x [k x cols]` to the PE array, the two buffers'
//! banks and the accumulator's partial-sum storage.
//!
//! With `R x C` PEs, `rt = ceil(rows / R)` row tiles and `ct = ceil(cols / C)` column tiles:
//!
//! - **K chunks.** A weight column tile over the reduction `kc` takes `w(kc, C)` =
//!   `stored_bytes(kc, C)` bytes (compressed: values + indices) and must fit one weight bank;
//!   an activation row tile `a(kc, R) = R * kc * value_bytes` must fit one activation bank.
//!   When `kc = k` fits, there is one chunk. Otherwise `kc` is the largest multiple of the
//!   pattern's `M` (1 when dense) that fits both, then evened out:
//!   `chunks = ceil(k / kc_max)`, `kc = roundup(ceil(k / chunks), M)`. The accumulator adds
//!   each chunk's partial sums, so an output block of `rb x cb` tiles needs `rb * cb` partial
//!   tiles of storage (`R * C * 4` bytes each). The reduction may also be cut when one tile
//!   fits, if that moves fewer DRAM bytes (an input too large for one activation bank is
//!   then read in chunks that hold every row, instead of re-reading the weights for each
//!   row block).
//! - **Blocks.** Column tiles are grouped `cb` at a time into one weight load (at most a
//!   bank: `w(kc, cb * C) <= bank`) and row tiles `rb` at a time into one activation load
//!   (`a(kc, rb * R) <= bank`). One chunk: `rb` is every row tile when the input is on chip
//!   or fits one bank (*weights outer*: every compressed weight is read once), else as many
//!   as a bank holds (*activations outer*: weights are read once per row block); `cb = 1`
//!   (the DRAM bytes do not depend on it, and one column tile a load pipelines loads with
//!   compute best; a larger buffer prefetches more loads ahead). Several chunks: `(rb, cb)`
//!   minimises the DRAM bytes
//!   `W * ceil(rt / rb) + A * ceil(ct / cb)` (the `A` term only for an input in DRAM) under
//!   `rb * cb <= partial tiles`. Of every chunk count tried, the plan with the fewest DRAM
//!   bytes wins (ties: fewer chunks).
//! - **Whole rows.** A consumer that needs each row complete and in order (the softmax), or
//!   an input whose rows arrive one row tile at a time (P for P·V), runs row tiles outside
//!   column tiles with a column block per weight load (at most a bank); the softmax's
//!   whole rows then get `rb = 1` whenever the columns take more than one block. Otherwise
//!   every weight load is one column tile (the block then only bounds the partial sums).
//!
//! A design that cannot hold one minimal tile (`w(M, C)`, `a(M, R)`, one partial tile) is
//! an input error naming the parameter and its smallest working value.

use crate::workload::Pattern;

/// What the hardware offers one matrix product.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// PE rows `R`.
    pub rows: u64,
    /// PE columns `C`.
    pub cols: u64,
    /// Bits per stored value.
    pub value_bits: u64,
    /// Weight-buffer bank, bytes.
    pub wb_bank_bytes: u64,
    /// Activation-buffer bank, bytes.
    pub ab_bank_bytes: u64,
    /// Accumulator partial-sum storage, bytes.
    pub psum_bytes: u64,
}

/// One matrix product to tile.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Output rows.
    pub rows: u64,
    /// Reduction length.
    pub k: u64,
    /// Output columns.
    pub cols: u64,
    /// Pattern of the stationary operand as the engine runs it.
    pub pattern: Pattern,
    /// The input is already on chip (re-reading it costs no DRAM traffic).
    pub act_on_chip: bool,
    /// The consumer needs whole rows, in order (the softmax).
    pub whole_rows: bool,
    /// Weights are loaded a column block at a time (row tiles outside column tiles), so a
    /// block must fit one weight bank; else one column tile a load.
    pub block_loads: bool,
}

/// How a product is cut.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Tiling {
    /// Chunk length of the reduction.
    pub kc: u64,
    /// Chunks (`ceil(k / kc)`).
    pub chunks: u64,
    /// Row tiles per activation load (row block).
    pub rb: u64,
    /// Column tiles per weight load (column block).
    pub cb: u64,
    /// Row tiles `ceil(rows / R)`.
    pub row_tiles: u64,
    /// Column tiles `ceil(cols / C)`.
    pub col_tiles: u64,
}

/// A design too small for one minimal tile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TooSmall {
    /// The parameter to change (`weight_buffer.bank_bytes`, ...).
    pub param: &'static str,
    /// Its smallest working value.
    pub needed: u64,
    /// Its value now.
    pub have: u64,
    /// What did not fit.
    pub what: String,
}

impl std::fmt::Display for TooSmall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} is too small for one tile: {} needs {} bytes, `{}` is {}; set `{}` to at least {}",
            self.param.split('.').next().unwrap_or(self.param),
            self.what,
            self.needed,
            self.param,
            self.have,
            self.param,
            self.needed
        )
    }
}

impl Limits {
    fn vb(&self) -> u64 {
        self.value_bits / 8
    }

    /// Bytes of a `k x cols` block of the stationary operand.
    pub fn w_bytes(&self, p: Pattern, k: u64, cols: u64) -> u64 {
        p.stored_bytes(k, cols, self.value_bits)
    }

    /// Bytes of a `rows x k` block of activations.
    pub fn a_bytes(&self, rows: u64, k: u64) -> u64 {
        rows * k * self.vb()
    }

    /// Partial-sum tiles the accumulator holds.
    pub fn psum_tiles(&self) -> u64 {
        self.psum_bytes / (self.rows * self.cols * crate::sta::accumulator::PSUM_BYTES_PER_VALUE)
    }
}

/// Largest `n` in `1..=max` with `fits(n)`, for `fits` monotone (true then false); 0 if
/// not even `fits(1)`.
fn largest(max: u64, fits: impl Fn(u64) -> bool) -> u64 {
    let (mut lo, mut hi) = (0u64, max);
    while lo < hi {
        let mid = lo + (hi - lo).div_ceil(2);
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// Cuts `s` for `lim`.
pub fn tile(s: &Shape, lim: &Limits) -> Result<Tiling, TooSmall> {
    let (r, c) = (lim.rows, lim.cols);
    let p = s.pattern;
    let row_tiles = s.rows.div_ceil(r);
    let col_tiles = s.cols.div_ceil(c);
    let (r1, c1) = (r.min(s.rows), c.min(s.cols));
    let step = if p.is_dense() { 1 } else { u64::from(p.m) };
    let kmin = step.min(s.k);
    if lim.w_bytes(p, kmin, c1) > lim.wb_bank_bytes {
        return Err(TooSmall {
            param: "weight_buffer.bank_bytes",
            needed: lim.w_bytes(p, kmin, c1),
            have: lim.wb_bank_bytes,
            what: format!("a {kmin} x {c1} weight tile ({p})"),
        });
    }
    if lim.a_bytes(r1, kmin) > lim.ab_bank_bytes {
        return Err(TooSmall {
            param: "act_buffer.bank_bytes",
            needed: lim.a_bytes(r1, kmin),
            have: lim.ab_bank_bytes,
            what: format!("a {r1} x {kmin} activation tile"),
        });
    }
    let fits_k = |kc: u64| {
        lim.w_bytes(p, kc, c1) <= lim.wb_bank_bytes && lim.a_bytes(r1, kc) <= lim.ab_bank_bytes
    };
    let w_total = lim.w_bytes(p, s.k, s.cols);
    let a_total = if s.act_on_chip {
        0
    } else {
        lim.a_bytes(s.rows, s.k)
    };
    let psum_tiles = lim.psum_tiles();
    // The chunk counts worth trying: the fewest that fit, a few more (shorter chunks let
    // more row tiles share one activation load), and the count that holds every row.
    let kc_max = largest(s.k / step, |q| fits_k(q * step)).max(1) * step;
    let chunks_min = if fits_k(s.k) { 1 } else { s.k.div_ceil(kc_max) };
    let all_rows = lim
        .a_bytes(s.rows, s.k)
        .div_ceil(lim.ab_bank_bytes)
        .clamp(chunks_min, s.k.div_ceil(step));
    let mut best: Option<(u128, Tiling)> = None;
    let mut last_kc = 0;
    let tries = (chunks_min..chunks_min + CHUNK_TRIES).chain([all_rows]);
    for chunks in tries {
        let kc = s.k.div_ceil(chunks).div_ceil(step) * step;
        if kc == last_kc || kc == 0 || !fits_k(kc) {
            continue;
        }
        last_kc = kc;
        let chunks = s.k.div_ceil(kc);
        if chunks > 1 && psum_tiles == 0 {
            continue;
        }
        let cb_max = largest(col_tiles, |n| {
            lim.w_bytes(p, kc, (n * c).min(s.cols)) <= lim.wb_bank_bytes
        })
        .max(1);
        let ra_max = largest(row_tiles, |n| {
            lim.a_bytes((n * r).min(s.rows), kc) <= lim.ab_bank_bytes
        })
        .max(1);
        let tiling = |rb: u64, cb: u64| Tiling {
            kc,
            chunks,
            rb,
            cb,
            row_tiles,
            col_tiles,
        };
        let bytes = |t: &Tiling| {
            let a_loads = if t.chunks == 1 {
                1
            } else {
                col_tiles.div_ceil(t.cb)
            };
            u128::from(w_total) * u128::from(row_tiles.div_ceil(t.rb))
                + u128::from(a_total) * u128::from(a_loads)
        };
        let mut consider = |t: Tiling| {
            let b = bytes(&t);
            if best.as_ref().is_none_or(|(bb, _)| b < *bb) {
                best = Some((b, t));
            }
        };
        if chunks == 1 {
            let rb = if s.act_on_chip { row_tiles } else { ra_max };
            // Each weight is read once per row block whatever the column blocks, so the
            // finest blocks (one column tile a load) pipeline loads with compute best; the
            // softmax's whole rows want every key in one block when a bank holds them (else
            // one row tile at a time, keys re-read per row tile).
            consider(match (s.block_loads, s.whole_rows, cb_max >= col_tiles) {
                (false, _, _) => tiling(rb, 1),
                (true, _, true) => tiling(rb, col_tiles),
                (true, true, false) => tiling(1, cb_max),
                (true, false, false) => tiling(rb, cb_max),
            });
            continue;
        }
        // One column tile a load: a block is limited by the partial sums only.
        let cb_limit = if s.block_loads { cb_max } else { col_tiles };
        for rb in 1..=row_tiles.min(ra_max).min(psum_tiles) {
            let cb = cb_limit.min(psum_tiles / rb);
            if cb == 0 || (s.whole_rows && cb < col_tiles && rb > 1) {
                continue;
            }
            consider(tiling(rb, cb));
        }
    }
    best.map(|(_, t)| t).ok_or_else(|| {
        let needed = r * c * crate::sta::accumulator::PSUM_BYTES_PER_VALUE;
        TooSmall {
            param: "accumulator.psum_bytes",
            needed,
            have: lim.psum_bytes,
            what: format!(
                "one {r} x {c} tile of 32-bit partial sums (the reduction of {} needs {chunks_min} chunks)",
                s.k
            ),
        }
    })
}

/// Chunk counts tried beyond the fewest that fit.
const CHUNK_TRIES: u64 = 16;

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(wb: u64, ab: u64) -> Limits {
        Limits {
            rows: 16,
            cols: 16,
            value_bits: 16,
            wb_bank_bytes: wb,
            ab_bank_bytes: ab,
            psum_bytes: 64 * 1024,
        }
    }

    fn shape(rows: u64, k: u64, cols: u64, p: Pattern) -> Shape {
        Shape {
            rows,
            k,
            cols,
            pattern: p,
            act_on_chip: false,
            whole_rows: false,
            block_loads: false,
        }
    }

    const P24: Pattern = Pattern { n: 2, m: 4 };

    #[test]
    fn a_tile_that_fits_takes_the_whole_reduction_and_bank_sized_blocks() {
        // BERT-base ffn1 on the reference design: 768 x 16 at 2:4 = 768/4*2*16*18/8 = 6912 B.
        let t = tile(&shape(128, 768, 3072, P24), &lim(256 * 1024, 256 * 1024)).unwrap();
        assert_eq!((t.kc, t.chunks), (768, 1));
        // One column tile a load.
        assert_eq!(t.cb, 1);
        // The input (128 x 768 x 2 = 196608 B) fits a bank: every row tile in one load.
        assert_eq!(t.rb, 8);
    }

    #[test]
    fn k_is_split_into_even_chunks_of_whole_groups_when_a_tile_does_not_fit() {
        // A 64 x 64 array on ffn2 (k = 3072): a(3072, 64) = 393216 B > 256 KiB.
        let l = Limits {
            rows: 64,
            cols: 64,
            ..lim(256 * 1024, 256 * 1024)
        };
        let t = tile(&shape(128, 3072, 768, P24), &l).unwrap();
        // kc <= 2048 (64 * kc * 2 <= 262144) and w(kc, 64) = kc/4*2*64*18/8 <= 262144.
        // Two chunks (kc = 1536): one row tile a load, weights (2654208 B) read twice, the
        // input (786432 B) three times (4 partial tiles: cb = 4 of 12) = 7667712 B. Three
        // chunks (kc = 1024): both row tiles in one load (2 x 64 x 1024 x 2 = 262144 B), so
        // rb = 2, cb = 2: weights once, input 6 times = 7372800 B, the fewest.
        assert_eq!((t.kc, t.chunks, t.rb, t.cb), (1024, 3, 2, 2));
        assert_eq!(t.kc % 4, 0);
        // 64 KiB of partial sums hold 64 KiB / (64*64*4) = 4 tiles: rb * cb <= 4.
        assert!(t.rb * t.cb <= 4, "{t:?}");
    }

    #[test]
    fn a_design_too_small_names_the_parameter_and_its_smallest_value() {
        // One 4 x 16 weight tile at 2:4: 2 * 16 * 18 / 8 = 72 bytes.
        let e = tile(&shape(128, 768, 768, P24), &lim(64, 256 * 1024)).unwrap_err();
        assert_eq!(
            (e.param, e.needed, e.have),
            ("weight_buffer.bank_bytes", 72, 64)
        );
        assert!(e.to_string().contains("at least 72"), "{e}");
        let e = tile(&shape(128, 768, 768, P24), &lim(1 << 20, 100)).unwrap_err();
        // 16 rows x 4 x 2 bytes = 128.
        assert_eq!((e.param, e.needed), ("act_buffer.bank_bytes", 128));
        let mut l = lim(1024, 1024);
        l.psum_bytes = 512;
        let e = tile(&shape(128, 768, 768, P24), &l).unwrap_err();
        assert_eq!((e.param, e.needed), ("accumulator.psum_bytes", 1024));
    }

    #[test]
    fn rows_come_whole_for_the_softmax_when_keys_take_several_blocks() {
        let mut s = shape(520, 64, 520, Pattern::DENSE);
        s.whole_rows = true;
        s.block_loads = true;
        // K of one head: 64 x 16 x 2 = 2048 B a tile; an 8 KiB bank holds 4 of 33.
        let t = tile(&s, &lim(8192, 256 * 1024)).unwrap();
        assert_eq!((t.cb, t.rb), (4, 1));
        // When a bank holds every key, rows are whole with every row tile in one load.
        let t = tile(&s, &lim(128 * 1024, 256 * 1024)).unwrap();
        assert_eq!((t.cb, t.rb), (33, 33));
        s.whole_rows = false;
        s.block_loads = false;
        assert_eq!(tile(&s, &lim(8192, 256 * 1024)).unwrap().rb, 33);
    }

    #[test]
    fn chunked_blocks_minimise_dram_bytes_under_the_partial_sum_capacity() {
        // Input in DRAM, k = 4096 split in two; 4 partial tiles.
        let l = Limits {
            psum_bytes: 4 * 16 * 16 * 4,
            ..lim(16 * 1024, 16 * 1024)
        };
        let s = shape(64, 4096, 64, Pattern::DENSE);
        let t = tile(&s, &l).unwrap();
        assert!(t.chunks > 1);
        let bytes = |rb: u64, cb: u64| {
            l.w_bytes(s.pattern, s.k, s.cols) * t.row_tiles.div_ceil(rb)
                + l.a_bytes(s.rows, s.k) * t.col_tiles.div_ceil(cb)
        };
        for rb in 1..=4 {
            let cb = (4 / rb).min(t.col_tiles);
            assert!(bytes(t.rb, t.cb) <= bytes(rb, cb), "{t:?} vs {rb} x {cb}");
        }
    }
}
