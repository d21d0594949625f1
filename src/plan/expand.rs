//! Expansion of one matrix-product job into the command streams: weight-buffer loads,
//! activation-buffer loads and PE-array passes, in the loop order of its [`Tiling`].
//!
//! ```text
//! for row block {                      // rb row tiles
//!   [one chunk, or input on chip: load A(row block) once, a part per row tile]
//!   for column block {                 // cb column tiles
//!     for chunk {                      // K chunks
//!       load W(chunk, column block)    // a part per column tile
//!       [several chunks, input in DRAM: load A(row block, chunk)]
//!       for row tile { [P rows: load A(row tile) once its rows are out]; for column tile: pass } } } }
//! ```
//!
//! A pass names the part of each load it reads (`w_part`, `a_part`), so the PE array starts it
//! as soon as that part has arrived. Partial sums of chunks other than the tile's last stay in
//! the accumulator; only finished tiles count as fills (on chip) or writes (to DRAM), the
//! counters later jobs wait on. Causal products skip what the mask hides: score tiles wholly
//! above the diagonal (and their key columns' loads), and P·V chunks past a row tile's last
//! key.

use super::tiling::Tiling;
use super::{Causal, Dep, FILL_ACC, FILL_SM, FILL_VEC, Job, Src};
use crate::txn::{Dest, Fetch, Pass, Via};

/// The commands one job produced, appended to the controller's queues.
pub trait Sink {
    /// A weight-buffer load.
    fn wb(&mut self, f: Fetch);
    /// An activation-buffer load.
    fn ab(&mut self, f: Fetch);
    /// A PE-array pass.
    fn pe(&mut self, p: Pass);
}

/// Counters of a job, for jobs that depend on it.
#[derive(Clone, Debug, Default)]
pub struct JobEnd {
    /// Fills per source when the job's last tile is out.
    pub fills: [u64; 3],
    /// DRAM writes when the job's last tile is out.
    pub writes: u64,
    /// Softmax fills after each row tile is complete (for the P·V that reads its rows).
    pub row_fills: Vec<u64>,
}

/// Running counters over all jobs expanded so far.
#[derive(Clone, Debug, Default)]
pub struct Counters {
    /// Tiles kept on chip, per fill source.
    pub fills: [u64; 3],
    /// Tiles written to DRAM.
    pub writes: u64,
    /// Passes emitted.
    pub passes: u64,
    /// DRAM bytes of layer weights loaded.
    pub weight_bytes: u64,
    /// Every job's end counters (row fills dropped once read).
    pub ends: Vec<JobEnd>,
}

impl Counters {
    /// `(after_fills, fill_src, after_writes)` of a source, for row tile `rt`.
    fn deps(&self, src: &Src, rt: u64) -> (u64, u8, u64) {
        match src {
            Src::Dram { after, .. } => {
                let writes = match after {
                    Dep::None => 0,
                    Dep::Job(j) | Dep::Rows(j) => self.ends.get(*j).map_or(0, |e| e.writes),
                };
                (0, 0, writes)
            }
            Src::OnChip { src, after } => {
                let s = usize::from(*src);
                let fills = match after {
                    Dep::None => 0,
                    Dep::Job(j) => self.ends.get(*j).map_or(0, |e| e.fills[s]),
                    Dep::Rows(j) => self.ends.get(*j).map_or(0, |e| {
                        e.row_fills
                            .get(rt as usize)
                            .or(e.row_fills.last())
                            .copied()
                            .unwrap_or(e.fills[s])
                    }),
                };
                (fills, *src, 0)
            }
        }
    }
}

/// The array, value width and mask shape a job's passes are cut for.
struct Geo<'a> {
    r: u64,
    c: u64,
    vb: u64,
    last_row_of: &'a dyn Fn(u64) -> u64,
    ct_last_of: &'a dyn Fn(u64) -> u64,
}

/// Which operand loads a pass starts on and which parts of them it reads.
struct PassAt {
    new_weight: bool,
    new_act: bool,
    w_part: u32,
    a_part: u32,
}

/// Emits the pass of output tile `(rt, ct)` over the chunk `k0 .. k0 + kk` (`last`: the
/// tile's last chunk) and counts what it finishes.
#[allow(clippy::too_many_arguments)]
fn emit(
    job: &Job,
    g: &Geo<'_>,
    (rt, ct, k0, kk, last_chunk): (u64, u64, u64, u64, bool),
    at: PassAt,
    n: &mut Counters,
    row_fills: &mut [u64],
    out: &mut impl Sink,
) {
    let p = job.pattern;
    let (r, c, vb) = (g.r, g.c, g.vb);
    let row0 = rt * r;
    let rows_used = r.min(job.rows - row0);
    let last_row = (g.last_row_of)(rt);
    // P·V: the reduction stops at the row tile's last key.
    let k_pass = match job.causal {
        Causal::Pv => kk.min(last_row + 1 - k0),
        _ => kk,
    };
    let col0 = ct * c;
    let cols_used = c.min(job.cols - col0);
    let macs = match job.causal {
        Causal::No => p.useful_macs(rows_used, k_pass, cols_used),
        // Row i sees keys 0..=i.
        Causal::Scores => {
            (row0..=last_row)
                .map(|i| (i + 1).min(col0 + cols_used).saturating_sub(col0))
                .sum::<u64>()
                * k_pass
        }
        // Row i sums over keys k0..=i of this chunk.
        Causal::Pv => {
            (row0..=last_row)
                .map(|i| (i + 1).min(k0 + k_pass).saturating_sub(k0))
                .sum::<u64>()
                * cols_used
        }
    };
    // Tensors the engine writes lie tile by tile: row tile after row tile, and within one,
    // column tile after column tile (`rows_used x C` values each).
    let tile_at = (row0 * job.cols + rows_used * col0) * vb;
    let dest = match job.dest_dram {
        Some(a) => Dest::Dram { addr: a + tile_at },
        None => Dest::OnChip,
    };
    let row_done = last_chunk && ct == (g.ct_last_of)(rt);
    // The tile of the vector op's DRAM operand, at the same tile-major place.
    let via = match job.via {
        Via::Vector {
            op, passes, store, ..
        } => Via::Vector {
            op,
            passes,
            store,
            operand: job.operand_dram.map(|a| a + tile_at),
            also: job.also.map(|(store, addr)| {
                let dest = addr.map_or(Dest::OnChip, |a| Dest::Dram { addr: a + tile_at });
                (store, dest)
            }),
        },
        v => v,
    };
    out.pe(Pass {
        op: job.op,
        inst: job.inst,
        row0: row0 as u32,
        col0: col0 as u32,
        new_weight: at.new_weight,
        new_act: at.new_act,
        w_part: at.w_part,
        a_part: at.a_part,
        k0,
        first_chunk: k0 == 0,
        last_chunk,
        rows: rows_used as u32,
        cols: cols_used as u32,
        k: k_pass,
        n: p.n,
        m: p.m,
        weight_bytes: p.stored_bytes(k_pass, cols_used, vb * 8),
        act_bytes: rows_used * k_pass * vb,
        macs,
        value_bytes: vb as u8,
        act_from_softmax: matches!(job.act, Src::OnChip { src: FILL_SM, .. }),
        group_end: row_done,
        via,
        dest,
    });
    n.passes += 1;
    if last_chunk {
        if let Via::Vector {
            also: Some((_, d)), ..
        } = via
        {
            match d {
                Dest::Dram { .. } => n.writes += 1,
                Dest::OnChip => n.fills[FILL_VEC as usize] += 1,
            }
        }
        match (dest, job.via) {
            (Dest::Dram { .. }, _) => n.writes += 1,
            (Dest::OnChip, Via::Softmax { .. }) => n.fills[FILL_SM as usize] += 1,
            (Dest::OnChip, Via::Vector { .. }) => n.fills[FILL_VEC as usize] += 1,
            (Dest::OnChip, Via::Direct) => n.fills[FILL_ACC as usize] += 1,
        }
    }
    if row_done && !row_fills.is_empty() {
        row_fills[rt as usize] = n.fills[FILL_SM as usize];
    }
}

/// Expands `job` (tiled as `t`, on an `r x c` array with `vb`-byte values) into `out`.
pub fn expand(
    job: &Job,
    t: &Tiling,
    r: u64,
    c: u64,
    vb: u64,
    n: &mut Counters,
    out: &mut impl Sink,
) {
    let p = job.pattern;
    let vbits = vb * 8;
    let (rows, k, cols) = (job.rows, job.k, job.cols);
    let w_col_bytes = |kk: u64| p.stored_bytes(kk, c.min(cols), vbits);
    // Stored bits of a `kk x n` block; the weights lie column tile after column tile, each
    // over the whole reduction, so a tile's chunk starts at bit `bits(k, ct*C) + bits(k0,
    // C')` and its bytes are those its bit range touches, rounded so that the bytes of every
    // tile and chunk add up to the matrix's exactly.
    let bits = |kk: u64, n: u64| p.nnz_per_column(kk) * n * (vbits + p.index_bits());
    let w_tile_bytes = |ct: u64, k0: u64, kk: u64| {
        let n = c.min(cols - ct * c);
        let base = bits(k, ct * c);
        (base + bits(k0 + kk, n)).div_ceil(8) - (base + bits(k0, n)).div_ceil(8)
    };
    let act_on_chip = matches!(job.act, Src::OnChip { .. });
    // P rows arrive row tile by row tile: one load per row tile, each waiting for its rows.
    let per_row_loads = matches!(
        job.act,
        Src::OnChip {
            after: Dep::Rows(_),
            ..
        }
    );
    let w_addr = match job.weight {
        Src::Dram { addr, .. } => addr,
        Src::OnChip { .. } => 0,
    };
    let (_, _, w_after_writes) = n.deps(&job.weight, 0);
    let mut row_fills = if matches!(job.via, Via::Softmax { .. }) {
        vec![0; t.row_tiles as usize]
    } else {
        Vec::new()
    };
    let last_row_of = |rt: u64| ((rt + 1) * r).min(rows) - 1;
    // The last column tile row tile `rt` computes.
    let ct_last_of = |rt: u64| match job.causal {
        Causal::Scores => (last_row_of(rt) / c).min(t.col_tiles - 1),
        _ => t.col_tiles - 1,
    };
    let chunks_of = |rt: u64| match job.causal {
        // P·V: row tile `rt` sums over keys 0..=last_row only.
        Causal::Pv => (last_row_of(rt) + 1).div_ceil(t.kc).min(t.chunks),
        _ => t.chunks,
    };
    let act_load = |rt0: u64, rt1: u64, k0: u64, kk: u64, n: &Counters| -> Fetch {
        let (after_fills, fill_src, after_writes) = n.deps(&job.act, rt1 - 1);
        match job.act {
            Src::Dram { addr, .. } => {
                let part_rows = r.min(rows - rt0 * r);
                let last_rows = rows.min(rt1 * r) - (rt1 - 1) * r;
                let parts = (rt1 - rt0) as u32;
                Fetch {
                    op: job.op,
                    bytes: (u64::from(parts) - 1) * part_rows * kk * vb + last_rows * kk * vb,
                    parts,
                    part_bytes: part_rows * kk * vb,
                    part_stride: r * k * vb,
                    addr: addr + (rt0 * r * k + k0) * vb,
                    from_dram: true,
                    after_fills,
                    fill_src,
                    after_writes,
                }
            }
            Src::OnChip { .. } => Fetch {
                op: job.op,
                bytes: 0,
                parts: (rt1 - rt0) as u32,
                part_bytes: 0,
                part_stride: 0,
                addr: 0,
                from_dram: false,
                after_fills,
                fill_src,
                after_writes,
            },
        }
    };
    // Whole rows for the softmax, or P rows arriving row tile by row tile: a row tile's
    // column tiles in order, from one weight load of the block; else one weight load per
    // column tile, used by every row tile of the block.
    let rows_inner = !job.block_loads();
    let geo = Geo {
        r,
        c,
        vb,
        last_row_of: &last_row_of,
        ct_last_of: &ct_last_of,
    };
    let mut rb0 = 0;
    while rb0 < t.row_tiles {
        let rb1 = (rb0 + t.rb).min(t.row_tiles);
        let mut new_act = false;
        let whole_input_load = (t.chunks == 1 || act_on_chip) && !per_row_loads;
        if whole_input_load {
            out.ab(act_load(rb0, rb1, 0, k, n));
            new_act = true;
        }
        let ct_end = ct_last_of(rb1 - 1) + 1;
        let mut cb0 = 0;
        while cb0 < ct_end {
            let cb1 = (cb0 + t.cb).min(ct_end);
            let chunks = chunks_of(rb1 - 1);
            for chunk in 0..chunks {
                let k0 = chunk * t.kc;
                let kk = t.kc.min(k - k0);
                if !whole_input_load && !per_row_loads {
                    out.ab(act_load(rb0, rb1, k0, kk, n));
                    new_act = true;
                }
                // (first column tile, end) of each weight load of this block and chunk.
                let loads: Vec<(u64, u64)> = if rows_inner {
                    (cb0..cb1).map(|ct| (ct, ct + 1)).collect()
                } else {
                    vec![(cb0, cb1)]
                };
                for (w0, w1) in loads {
                    // The weight load: column tiles w0..w1 of this chunk.
                    let parts = (w1 - w0) as u32;
                    let w_bytes = (w0..w1).map(|ct| w_tile_bytes(ct, k0, kk)).sum::<u64>();
                    out.wb(Fetch {
                        op: job.op,
                        bytes: w_bytes,
                        parts,
                        part_bytes: w_col_bytes(kk),
                        part_stride: w_col_bytes(k),
                        addr: w_addr + w0 * w_col_bytes(k) + p.stored_bytes(k0, c.min(cols), vbits),
                        from_dram: true,
                        after_fills: 0,
                        fill_src: 0,
                        after_writes: w_after_writes,
                    });
                    if job.weights {
                        n.weight_bytes += w_bytes;
                    }
                    let mut new_weight = true;
                    for rt in rb0..rb1 {
                        if chunk >= chunks_of(rt) {
                            continue;
                        }
                        let ct_hi = ct_last_of(rt).min(w1 - 1);
                        if ct_hi < w0 {
                            continue; // every column of this load is masked for this row tile
                        }
                        if per_row_loads {
                            out.ab(act_load(rt, rt + 1, k0, kk, n));
                            new_act = true;
                        }
                        for ct in w0..=ct_hi {
                            let first = PassAt {
                                new_weight,
                                new_act,
                                w_part: (ct - w0) as u32,
                                a_part: if per_row_loads { 0 } else { (rt - rb0) as u32 },
                            };
                            let at = (rt, ct, k0, kk, chunk + 1 == chunks_of(rt));
                            emit(job, &geo, at, first, n, &mut row_fills, out);
                            new_weight = false;
                            new_act = false;
                        }
                    }
                }
            }
            cb0 = cb1;
        }
        rb0 = rb1;
    }
    n.ends.push(JobEnd {
        fills: n.fills,
        writes: n.writes,
        row_fills,
    });
}
