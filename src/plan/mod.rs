//! The controller's planner: places every tensor of a workload in DRAM or on chip, cuts
//! every matrix product into jobs and tiles ([`tiling`]), and streams the commands of one
//! job at a time ([`expand`]) as the controller needs them, so a plan's memory does not grow
//! with the run.
//!
//! # Jobs
//! A job is one instance of one matrix product (a batch element of a linear layer, or one
//! head of attention) with its operands' places and the dependency each waits on: a job
//! (all its output tiles on chip or written) or a job's row tile (P rows for P·V). The job
//! list of a run is small (a few per layer and head) and is built, and every job tiled, before
//! the run starts: a design too small for one tile is an input error then.
//!
//! # Placement
//! QKV outputs go to DRAM (read back per head as K, V and Q operands). Attention runs head
//! by head, software-pipelined by one head (`scores(h+1)` is issued before `pv(h)`), with
//! scores routed through the softmax to the activation buffer and P·V's output (the context)
//! kept on chip. The context and the other outputs stay on chip when the tensor fits one
//! activation bank (and is not the model's output); else they are *spilled*: written to DRAM
//! and read back by their consumer, traffic that is simulated and listed in the report
//! (`spills`). Consumers wait for producers by counting tiles
//! that arrived on chip (per source: accumulator, softmax, vector unit) or DRAM writes done.
//!
//! Causal attention (decoders) skips score tiles entirely above the diagonal and shortens
//! P·V's reduction to the keys a row tile can see.

pub mod expand;
pub mod tiling;

use std::collections::VecDeque;

use crate::model::{LinearClass, Role, TensorKind};
use crate::sta::pe_array::Engine;
use crate::txn::Via;
use crate::workload::{Op, Pattern, Workload};
use tiling::{Limits, Shape, Tiling};

/// Buffer and engine sizes the planner works with.
#[derive(Clone, Debug)]
pub struct Hardware {
    /// The PE array.
    pub engine: Engine,
    /// Weight-buffer bank, bytes.
    pub wb_bank_bytes: u64,
    /// Activation-buffer bank, bytes.
    pub ab_bank_bytes: u64,
    /// Accumulator partial-sum storage, bytes.
    pub psum_bytes: u64,
}

/// What a dependency waits for.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dep {
    /// Nothing.
    None,
    /// Every output tile of job `j` (on chip, or written to DRAM).
    Job(usize),
    /// The row tile being read of job `j`'s output (softmax rows for P·V).
    Rows(usize),
}

/// Where an operand comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Src {
    /// DRAM at `addr` (row-major), once `after`'s writes are done.
    Dram {
        /// Byte address.
        addr: u64,
        /// The producer.
        after: Dep,
    },
    /// On chip, from fill source `src`, once `after`'s tiles have arrived.
    OnChip {
        /// Fill source ([`FILL_ACC`], [`FILL_SM`], [`FILL_VEC`]).
        src: u8,
        /// The producer.
        after: Dep,
    },
}

/// Fill sources counted by the activation buffer (its `fill_acc`, `fill_sm`, `fill_vec`).
pub const FILL_ACC: u8 = 0;
/// Fills from the softmax.
pub const FILL_SM: u8 = 1;
/// Fills from the vector unit.
pub const FILL_VEC: u8 = 2;

/// Which causal mask applies to a matrix product.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Causal {
    /// None.
    No,
    /// Scores: row `i` sees keys `0..=i` (tiles above the diagonal skipped).
    Scores,
    /// P·V: row `i` sums over keys `0..=i` (reduction cut at the tile's last row).
    Pv,
}

/// One instance of one matrix product, placed and tiled.
#[derive(Clone, Debug)]
pub struct Job {
    /// Op index.
    pub op: u32,
    /// Instance of the op (batch, or `batch * heads + head`).
    pub inst: u32,
    /// Output rows.
    pub rows: u64,
    /// Reduction length.
    pub k: u64,
    /// Output columns.
    pub cols: u64,
    /// Pattern of the stationary operand as the engine runs it.
    pub pattern: Pattern,
    /// The stationary operand (weights, K or V).
    pub weight: Src,
    /// The streamed operand (activations, Q or P).
    pub act: Src,
    /// Route of finished tiles.
    pub via: Via,
    /// Output in DRAM at this address (else on chip).
    pub dest_dram: Option<u64>,
    /// Causal mask.
    pub causal: Causal,
    /// The stationary operand is a layer's weights (counted in the planned weight bytes),
    /// not K or V.
    pub weights: bool,
    /// How it is cut.
    pub tiling: Tiling,
}

impl Job {
    /// The consumer needs whole rows, in order (scores for the softmax).
    pub fn whole_rows(&self) -> bool {
        matches!(self.via, Via::Softmax { .. })
    }

    /// The streamed operand arrives row tile by row tile (P rows for P·V).
    pub fn rows_arrive(&self) -> bool {
        matches!(
            self.act,
            Src::OnChip {
                after: Dep::Rows(_),
                ..
            }
        )
    }

    /// Weights are loaded a block of column tiles at a time and the row tiles run outside
    /// the column tiles (whole rows, or rows as they arrive); else one column tile a load,
    /// used by every row tile of its block.
    pub fn block_loads(&self) -> bool {
        self.whole_rows() || self.rows_arrive()
    }
}

/// Most PE passes one run may take (2^32): memory does not limit a streamed plan, but at a
/// few million passes a second of simulation such a run would take over an hour.
pub const MAX_PASSES: u128 = 1 << 32;

/// A run's plan: its jobs, streamed into commands one job at a time.
#[derive(Clone, Debug)]
pub struct Stream {
    jobs: VecDeque<Job>,
    r: u64,
    c: u64,
    vb: u64,
    /// Counters over the jobs expanded so far.
    pub counters: expand::Counters,
    /// The operations (index = op id used in every command).
    pub ops: Vec<Op>,
    /// DRAM bytes the plan places tensors in: addresses `0..footprint_bytes`.
    pub footprint_bytes: u64,
    /// Upper bound of the passes (causal masks skip some).
    pub passes_bound: u128,
    /// Tensors spilled to DRAM because they do not fit on chip.
    pub spills: Vec<Spill>,
}

impl Stream {
    /// Expands the next job into `out`; false when every job is out.
    pub fn expand_next(&mut self, out: &mut impl expand::Sink) -> bool {
        let Some(job) = self.jobs.pop_front() else {
            return false;
        };
        expand::expand(
            &job,
            &job.tiling,
            self.r,
            self.c,
            self.vb,
            &mut self.counters,
            out,
        );
        // Row fills are read once, by the P·V of the same head.
        if let Src::OnChip {
            after: Dep::Rows(j),
            ..
        } = job.act
            && let Some(e) = self.counters.ends.get_mut(j)
        {
            e.row_fills = Vec::new();
        }
        true
    }

    /// Jobs not yet expanded.
    pub fn jobs_left(&self) -> usize {
        self.jobs.len()
    }
}

struct Planner<'a> {
    hw: &'a Hardware,
    lim: Limits,
    jobs: Vec<Job>,
    next_addr: u64,
    ops: &'a [Op],
    spills: Vec<Spill>,
}

/// A tensor the plan would keep on chip but cannot: written to DRAM and read back.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Spill {
    /// Layer.
    pub layer: u64,
    /// Which tensor.
    pub tensor: TensorKind,
    /// Its bytes (written once, read back at least once).
    pub bytes: u64,
}

/// A product to place: everything of a [`Job`] but its tiling.
struct MatMul {
    op: u32,
    inst: u32,
    rows: u64,
    k: u64,
    cols: u64,
    pattern: Pattern,
    weight: Src,
    act: Src,
    via: Via,
    dest_dram: Option<u64>,
    causal: Causal,
    weights: bool,
}

impl Planner<'_> {
    /// Places a tensor that would stay on chip but does not fit in DRAM, and records it.
    fn spill(&mut self, layer: u64, tensor: TensorKind, bytes: u64) -> u64 {
        self.spills.push(Spill {
            layer,
            tensor,
            bytes,
        });
        self.alloc(bytes)
    }

    fn alloc(&mut self, bytes: u64) -> u64 {
        let a = self.next_addr;
        self.next_addr += bytes.div_ceil(4096) * 4096;
        a
    }

    /// The pattern the engine actually runs.
    fn effective(&self, p: Pattern) -> Pattern {
        if self.hw.engine.sparse {
            p
        } else {
            Pattern::DENSE
        }
    }

    /// Tiles `m` and adds it as a job; returns its index.
    fn job(&mut self, m: MatMul) -> Result<usize, String> {
        let pattern = self.effective(m.pattern);
        let shape = Shape {
            rows: m.rows,
            k: m.k,
            cols: m.cols,
            pattern,
            act_on_chip: matches!(m.act, Src::OnChip { .. }),
            whole_rows: matches!(m.via, Via::Softmax { .. }),
            block_loads: matches!(m.via, Via::Softmax { .. })
                || matches!(
                    m.act,
                    Src::OnChip {
                        after: Dep::Rows(_),
                        ..
                    }
                ),
        };
        let tiling = tiling::tile(&shape, &self.lim).map_err(|e| {
            let op = &self.ops[m.op as usize];
            format!(
                "layer {} `{}` ({} x {} x {}): {e}",
                op.layer, op.name, m.rows, m.k, m.cols
            )
        })?;
        self.jobs.push(Job {
            op: m.op,
            inst: m.inst,
            rows: m.rows,
            k: m.k,
            cols: m.cols,
            pattern,
            weight: m.weight,
            act: m.act,
            via: m.via,
            dest_dram: m.dest_dram,
            causal: m.causal,
            weights: m.weights,
            tiling,
        });
        Ok(self.jobs.len() - 1)
    }
}

/// A tensor's place for its consumer: on chip from fill source `src`, else in DRAM at
/// `addr`; either way once `after` is done.
fn placed(on_chip: bool, src: u8, addr: u64, after: Dep) -> Src {
    if on_chip {
        Src::OnChip { src, after }
    } else {
        Src::Dram { addr, after }
    }
}

/// Plans a whole workload (`w` must be valid, see [`Workload::validate`]): places its
/// tensors, tiles every job, and returns the stream that expands them.
pub fn plan(w: &Workload, hw: &Hardware) -> Result<Stream, String> {
    let e = &hw.engine;
    if e.sparse {
        for layer in 0..w.layers {
            let ps = w.patterns_of(layer);
            for (class, p) in [
                ("qkv", ps.qkv),
                ("proj", ps.proj),
                ("ffn1", ps.ffn1),
                ("ffn2", ps.ffn2),
            ] {
                if !p.is_dense() && !e.supported_m.contains(&u64::from(p.m)) {
                    return Err(format!(
                        "pattern {p} of `{class}` (layer {layer}) needs M = {}, but the PE array supports M in {:?} (`pe_array.supported_m`)",
                        p.m, e.supported_m
                    ));
                }
            }
        }
    }
    let ops = w.ops();
    let vb = w.value_bits / 8;
    let mut pl = Planner {
        hw,
        lim: Limits {
            rows: e.rows,
            cols: e.cols,
            value_bits: w.value_bits,
            wb_bank_bytes: hw.wb_bank_bytes,
            ab_bank_bytes: hw.ab_bank_bytes,
            psum_bytes: hw.psum_bytes,
        },
        jobs: Vec::new(),
        next_addr: 0,
        ops: &ops,
        spills: Vec::new(),
    };
    let (s, b) = (w.seq, w.batch);
    let (d, h, f, dh) = (w.model.hidden, w.model.heads, w.model.ffn, w.head_dim());
    let fits = |bytes: u64| bytes <= hw.ab_bank_bytes;
    let input_addr = pl.alloc(b * s * d * vb);
    let mut x: Vec<Src> = (0..b)
        .map(|i| Src::Dram {
            addr: input_addr + i * s * d * vb,
            after: Dep::None,
        })
        .collect();
    let per_layer = 10;
    for layer in 0..w.layers {
        let lp = w.patterns_of(layer);
        let base = (layer * per_layer) as u32;
        let layer_ops = &ops[base as usize..base as usize + per_layer as usize];
        let op =
            |role: Role| base + layer_ops.iter().position(|o| o.role == role).unwrap_or(0) as u32;
        let linear = |class: LinearClass| op(Role::Linear { class });
        // The vector op fused to a linear layer follows it in the graph.
        let fused = |lin: u32| -> (u32, u32) {
            match ops.get(lin as usize + 1).map(|o| o.role) {
                Some(Role::Vector { op }) => (lin + 1, op.passes()),
                _ => (lin, 0),
            }
        };
        let last_layer = layer + 1 == w.layers;
        // QKV projection -> DRAM.
        let wq = pl.alloc(lp.qkv.stored_bytes(d, 3 * d, w.value_bits));
        let qkv_addr = pl.alloc(b * s * 3 * d * vb);
        let mut qkv_job = 0;
        for (i, xi) in x.iter().enumerate() {
            qkv_job = pl.job(MatMul {
                op: linear(LinearClass::Qkv),
                inst: i as u32,
                rows: s,
                k: d,
                cols: 3 * d,
                pattern: lp.qkv,
                weight: Src::Dram {
                    addr: wq,
                    after: Dep::None,
                },
                act: *xi,
                via: Via::Direct,
                dest_dram: Some(qkv_addr + i as u64 * s * 3 * d * vb),
                causal: Causal::No,
                weights: true,
            })?;
        }
        let qkv_written = Dep::Job(qkv_job);
        // Attention, head by head, pipelined by one head.
        let heads: Vec<(u64, u64)> = (0..b)
            .flat_map(|bi| (0..h).map(move |hi| (bi, hi)))
            .collect();
        let mut scores_jobs: Vec<usize> = Vec::new();
        let (op_scores, op_sm, op_pv) = (op(Role::Scores), op(Role::Softmax), op(Role::Pv));
        let head_addr = |bi: u64, part: u64, hi: u64| {
            qkv_addr + bi * s * 3 * d * vb + (part * d + hi * dh) * s * vb
        };
        let causal = |c: Causal| if w.model.causal { c } else { Causal::No };
        let mut last_pv = 0;
        // The context stays on chip when it fits one activation bank; else it is spilled:
        // written to DRAM head by head and read back by the output projection.
        let context_bytes = b * s * d * vb;
        let context_on_chip = fits(context_bytes);
        let context_addr = if context_on_chip {
            0
        } else {
            pl.spill(layer, TensorKind::Context, context_bytes)
        };
        for i in 0..=heads.len() {
            if let Some(&(bi, hi)) = heads.get(i) {
                scores_jobs.push(pl.job(MatMul {
                    op: op_scores,
                    inst: (bi * h + hi) as u32,
                    rows: s,
                    k: dh,
                    cols: s,
                    pattern: Pattern::DENSE,
                    weight: Src::Dram {
                        addr: head_addr(bi, 1, hi),
                        after: qkv_written,
                    },
                    act: Src::Dram {
                        addr: head_addr(bi, 0, hi),
                        after: qkv_written,
                    },
                    via: Via::Softmax { op: op_sm },
                    dest_dram: None,
                    causal: causal(Causal::Scores),
                    weights: false,
                })?);
            }
            if i >= 1 {
                let (bi, hi) = heads[i - 1];
                last_pv = pl.job(MatMul {
                    op: op_pv,
                    inst: (bi * h + hi) as u32,
                    rows: s,
                    k: s,
                    cols: dh,
                    pattern: Pattern::DENSE,
                    weight: Src::Dram {
                        addr: head_addr(bi, 2, hi),
                        after: qkv_written,
                    },
                    act: Src::OnChip {
                        src: FILL_SM,
                        after: Dep::Rows(scores_jobs[i - 1]),
                    },
                    via: Via::Direct,
                    dest_dram: (!context_on_chip)
                        .then_some(context_addr + (bi * h + hi) * s * dh * vb),
                    causal: causal(Causal::Pv),
                    weights: false,
                })?;
            }
        }
        let context_of = |bi: u64| {
            placed(
                context_on_chip,
                FILL_ACC,
                context_addr + bi * s * d * vb,
                Dep::Job(last_pv),
            )
        };
        // Output projection + residual + LayerNorm; FFN up + GELU; FFN down + residual + LN.
        let stages: [(LinearClass, u64, u64, Pattern, bool); 3] = [
            (LinearClass::Proj, d, d, lp.proj, false),
            (LinearClass::Ffn1, d, f, lp.ffn1, false),
            (LinearClass::Ffn2, f, d, lp.ffn2, last_layer),
        ];
        let mut input: Vec<Src> = (0..b).map(context_of).collect();
        for (class, k, cols, pattern, to_dram) in stages {
            let lin = linear(class);
            let (vop, passes) = fused(lin);
            let waddr = pl.alloc(pattern.stored_bytes(k, cols, w.value_bits));
            let out_bytes = b * s * cols * vb;
            let on_chip = !to_dram && fits(out_bytes);
            let out_addr = if on_chip || to_dram {
                pl.alloc(out_bytes)
            } else {
                let kind = ops[vop as usize].output.unwrap_or(TensorKind::Output);
                pl.spill(layer, kind, out_bytes)
            };
            let mut last = 0;
            for (i, src) in input.iter().enumerate() {
                last = pl.job(MatMul {
                    op: lin,
                    inst: i as u32,
                    rows: s,
                    k,
                    cols,
                    pattern,
                    weight: Src::Dram {
                        addr: waddr,
                        after: Dep::None,
                    },
                    act: *src,
                    via: Via::Vector { op: vop, passes },
                    dest_dram: (!on_chip).then_some(out_addr + i as u64 * s * cols * vb),
                    causal: Causal::No,
                    weights: true,
                })?;
            }
            input = (0..b)
                .map(|i| {
                    placed(
                        on_chip,
                        FILL_VEC,
                        out_addr + i * s * cols * vb,
                        Dep::Job(last),
                    )
                })
                .collect();
        }
        x = input;
    }
    let passes_bound = pl
        .jobs
        .iter()
        .map(|j| {
            let t = &j.tiling;
            u128::from(t.row_tiles) * u128::from(t.col_tiles) * u128::from(t.chunks)
        })
        .sum::<u128>();
    if passes_bound > MAX_PASSES {
        return Err(format!(
            "the run needs up to {passes_bound} PE passes, more than the limit of {MAX_PASSES} (simulating them would take hours); lower the workload (seq {}, batch {}, layers {}: --seq, --batch, --layers or the `workload:` block) or use a larger PE array (`pe_array.rows` = {}, `pe_array.cols` = {})",
            w.seq, w.batch, w.layers, e.rows, e.cols
        ));
    }
    let footprint_bytes = pl.next_addr;
    let jobs = std::mem::take(&mut pl.jobs);
    let spills = std::mem::take(&mut pl.spills);
    Ok(Stream {
        jobs: jobs.into(),
        r: e.rows,
        c: e.cols,
        vb,
        counters: expand::Counters::default(),
        footprint_bytes,
        passes_bound,
        spills,
        ops,
    })
}
