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
//! The planner walks the model's graph ([`crate::model::Graph`]) in order: a linear layer
//! with the vector ops fused to it, or an attention block (scores, softmax, P·V). A tensor
//! lives where its home says. Tensors homed in DRAM (the model input and output, Q/K/V,
//! which attention reads back head by head) are placed there. An on-chip tensor stays in the
//! activation buffer only if it fits in one bank *together with every on-chip tensor written
//! before it and still to be read* (a residual beside the next input, say); the other bank's
//! worth of the buffer's circular space is the double-buffered operand space. Otherwise it is
//! *spilled*: written to DRAM and read back by each consumer (streamed operand or residual),
//! traffic that is simulated and listed in the report (`spills`). Attention runs head by
//! head, software-pipelined by one head (`scores(h+1)` is issued before `pv(h)`), with scores
//! routed through the softmax to the activation buffer, a row tile at a time, for P·V. Query
//! head `h` reads key/value head `h / (heads / kv_heads)` (grouped-query attention).
//! Consumers wait for producers by counting tiles that arrived on chip (per source:
//! accumulator, softmax, vector unit) or DRAM writes done.
//!
//! Causal attention (decoders) skips score tiles entirely above the diagonal and shortens
//! P·V's reduction to the keys a row tile can see.

pub mod expand;
pub mod tiling;

use std::collections::VecDeque;

use crate::model::{Graph, Home, Role, TensorId, View};
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
    /// The fused vector op's second operand (residual, gate) in DRAM at this address,
    /// tile-major like every tensor the engine writes (else on chip, or none).
    pub operand_dram: Option<u64>,
    /// A second tensor the fused chain stores: the vector op storing it, and its DRAM
    /// address (`None`: on chip).
    pub also: Option<(u32, Option<u64>)>,
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
    /// Which tensor (its label within the layer: `context`).
    pub tensor: &'static str,
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
    operand_dram: Option<u64>,
    also: Option<(u32, Option<u64>)>,
    causal: Causal,
    weights: bool,
}

impl Planner<'_> {
    /// Places a tensor that would stay on chip but does not fit in DRAM, and records it.
    fn spill(&mut self, layer: u64, tensor: &'static str, bytes: u64) -> u64 {
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
            operand_dram: m.operand_dram,
            also: m.also,
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

/// Where a stored tensor was placed.
#[derive(Copy, Clone, Debug)]
struct Placed {
    /// Kept on chip (else in DRAM at `addr`).
    on_chip: bool,
    /// DRAM address of instance 0 (instances follow each other).
    addr: u64,
    /// Bytes of one instance.
    instance_bytes: u64,
    /// Fill source of its tiles when on chip.
    src: u8,
    /// Its producer.
    after: Dep,
}

impl Placed {
    /// The tensor as a streamed operand of instance `inst`.
    fn src(&self, inst: u64) -> Src {
        placed(
            self.on_chip,
            self.src,
            self.addr + inst * self.instance_bytes,
            self.after,
        )
    }
}

/// The graph walk: every tensor's place, and the on-chip tensors that are still to be read.
struct Walk<'g> {
    g: &'g Graph,
    vb: u64,
    /// Index of the last op reading each tensor.
    last_read: Vec<Option<usize>>,
    place: Vec<Option<Placed>>,
}

impl Walk<'_> {
    fn placed(&self, t: TensorId) -> Result<Placed, String> {
        self.place[t.0 as usize].ok_or_else(|| {
            format!(
                "internal: `{}` is read before it is written",
                self.g.tensor(t).name()
            )
        })
    }

    /// Bytes held on chip by tensors still to be read at or after op `i`.
    fn live_bytes(&self, i: usize) -> u64 {
        self.place
            .iter()
            .zip(&self.last_read)
            .zip(&self.g.tensors)
            .filter(|((p, last), t)| {
                t.home == Home::Chip && p.is_some_and(|p| p.on_chip) && last.is_some_and(|l| l >= i)
            })
            .map(|(_, t)| t.bytes(self.vb))
            .sum()
    }
}

/// The error of a graph this planner cannot run (a lowering's mistake, not the user's).
fn shape_error(o: &crate::model::Op, what: &str) -> String {
    format!(
        "internal: layer {} `{}`: {what} (the model's lowering does not fit the planner)",
        o.layer, o.name
    )
}

impl Planner<'_> {
    /// Places tensor `t`, written by op `i`'s jobs: in DRAM when its home is DRAM (or the
    /// KV cache), else on chip if it fits beside every on-chip tensor still to be read,
    /// else spilled.
    fn place_output(&mut self, wk: &Walk<'_>, i: usize, t: TensorId) -> Placed {
        let tensor = wk.g.tensor(t);
        let (inst, bytes) = (tensor.instance_bytes(wk.vb), tensor.bytes(wk.vb));
        let on_chip = match tensor.home {
            Home::Dram | Home::KvCache => false,
            Home::Chip => wk.live_bytes(i) + bytes <= self.hw.ab_bank_bytes,
            Home::Stream => true,
        };
        let addr = if on_chip {
            0
        } else if tensor.home == Home::Chip {
            self.spill(tensor.layer, tensor.label, bytes)
        } else {
            self.alloc(bytes)
        };
        Placed {
            on_chip,
            addr,
            instance_bytes: inst,
            src: FILL_ACC,
            after: Dep::None,
        }
    }

    /// A linear layer at op `i` and the vector ops fused to it; returns the next op.
    fn linear(&mut self, wk: &mut Walk<'_>, i: usize) -> Result<usize, String> {
        let g = wk.g;
        let o = &g.ops[i];
        let chain = g.chain(i);
        let storing: Vec<usize> = std::iter::once(i)
            .chain(chain.clone())
            .filter(|&j| g.ops[j].output.is_some())
            .collect();
        let last = chain.end - 1;
        // The vector unit writes the chain's last value, and may also write the value
        // before its trailing row-wise ops (a pre-norm layer's residual stream beside its
        // normalisation): their element values are the same, the norm runs per row.
        let mid = match storing.as_slice() {
            [l] if *l == last => None,
            [j, l]
                if *l == last
                    && *j > i
                    && (j + 1..=last)
                        .all(|k| g.ops[k].vector_op().is_some_and(|v| v.row_wise())) =>
            {
                Some(*j)
            }
            _ => {
                return Err(shape_error(
                    o,
                    "the vector unit writes a fused chain's last value, and at most one more before its trailing row-wise ops: only the last op of a fused chain may store, or one before its final norms",
                ));
            }
        };
        let out_t = g.ops[last].output.unwrap_or(TensorId(0));
        let input = o
            .input
            .ok_or_else(|| shape_error(o, "a linear layer needs an input"))?;
        if input.col0 != 0 {
            return Err(shape_error(o, "a linear layer reads whole rows"));
        }
        let mut src = wk.placed(input.tensor)?;
        // A part of the rows (a prefill's lm_head reads the last token's): its first row.
        src.addr += input.row0 * wk.g.tensor(input.tensor).cols * wk.vb;
        let via = if chain.is_empty() {
            Via::Direct
        } else {
            let passes = chain
                .clone()
                .filter_map(|j| g.ops[j].vector_op())
                .map(|v| v.passes())
                .sum();
            Via::Vector {
                op: chain.start as u32,
                passes,
                store: last as u32,
                operand: None,
                also: None,
            }
        };
        // The chain's second operand: read by the vector unit from DRAM unless on chip. A
        // residual or gate is written before the matmul's input (it is an ancestor of it),
        // so waiting for the input also waits for it.
        let mut operands = Vec::new();
        for j in chain.clone() {
            if let Some(t) = g.ops[j].operand {
                operands.push(wk.placed(t)?);
            }
        }
        if operands.len() > 1 {
            return Err(shape_error(
                o,
                "a fused chain reads at most one second operand",
            ));
        }
        let operand = operands.first().copied().filter(|p| !p.on_chip);
        // The second store is placed first: the last output must fit beside it.
        let mut also = mid.map(|j| {
            let t = g.ops[j].output.unwrap_or(TensorId(0));
            (j, t, self.place_output(wk, i, t))
        });
        if let Some((_, t, p)) = also {
            wk.place[t.0 as usize] = Some(p);
        }
        let mut out = self.place_output(wk, i, out_t);
        let waddr = self.alloc(o.pattern.stored_bytes(o.k, o.cols, 8 * wk.vb));
        let mut job = 0;
        for inst in 0..o.instances {
            job = self.job(MatMul {
                op: i as u32,
                inst: inst as u32,
                rows: o.rows,
                k: o.k,
                cols: o.cols,
                pattern: o.pattern,
                weight: Src::Dram {
                    addr: waddr,
                    after: Dep::None,
                },
                act: src.src(inst),
                via,
                dest_dram: (!out.on_chip).then_some(out.addr + inst * out.instance_bytes),
                operand_dram: operand.map(|p| p.addr + inst * p.instance_bytes),
                also: also.map(|(j, _, p)| {
                    (
                        j as u32,
                        (!p.on_chip).then_some(p.addr + inst * p.instance_bytes),
                    )
                }),
                causal: Causal::No,
                weights: true,
            })?;
        }
        out.after = Dep::Job(job);
        out.src = if chain.is_empty() { FILL_ACC } else { FILL_VEC };
        wk.place[out_t.0 as usize] = Some(out);
        if let Some((_, t, p)) = &mut also {
            p.after = Dep::Job(job);
            p.src = FILL_VEC;
            wk.place[t.0 as usize] = Some(*p);
        }
        Ok(chain.end)
    }

    /// Attention at op `i`: scores, their softmax and P·V, head by head, pipelined by one
    /// head (`scores(h+1)` is issued before `pv(h)`); returns the next op.
    fn attention(&mut self, wk: &mut Walk<'_>, i: usize) -> Result<usize, String> {
        let g = wk.g;
        let (sc, sm, pv) = (&g.ops[i], g.ops.get(i + 1), g.ops.get(i + 2));
        let (Some(sm), Some(pv)) = (sm, pv) else {
            return Err(shape_error(
                sc,
                "scores need a softmax and a P·V after them",
            ));
        };
        if sm.role != Role::Softmax || pv.role != Role::Pv {
            return Err(shape_error(
                sc,
                "scores need a softmax and a P·V after them",
            ));
        }
        let (Some(a), Some(q), Some(k), Some(v), Some(p_t), Some(ctx_t)) =
            (sc.attention, sc.input, sc.kv, pv.kv, sm.output, pv.output)
        else {
            return Err(shape_error(sc, "attention needs Q, K, V, P and an output"));
        };
        let vb = wk.vb;
        let (s, keys, dh) = (sc.rows, sc.cols, a.head_dim);
        // Q, K and V are read head by head from DRAM: each head's columns as one block.
        let head_src = |wk: &Walk<'_>, view: View, bi: u64, head: u64| {
            let pl = wk.placed(view.tensor)?;
            if pl.on_chip {
                return Err(shape_error(sc, "attention reads Q, K and V from DRAM"));
            }
            let rows = wk.g.tensor(view.tensor).rows;
            Ok(Src::Dram {
                addr: pl.addr + bi * pl.instance_bytes + (view.col0 + head * dh) * rows * vb,
                after: pl.after,
            })
        };
        // Grouped (decode): sequence `bi`'s Q rows of group `g` in the batch-wide qkv
        // (`rows` = the batch): the group's column block, then the sequence's part of it.
        let group_width = a.group() * dh;
        let grouped_at = |rows: u64, col0: u64, g: u64, bi: u64| {
            ((col0 + g * group_width) * rows + bi * group_width) * vb
        };
        let q_src = |wk: &Walk<'_>, bi: u64, hi: u64| {
            if !a.grouped {
                return head_src(wk, q, bi, hi);
            }
            let pl = wk.placed(q.tensor)?;
            if pl.on_chip {
                return Err(shape_error(sc, "attention reads Q, K and V from DRAM"));
            }
            let rows = wk.g.tensor(q.tensor).rows;
            Ok(Src::Dram {
                addr: pl.addr + grouped_at(rows, q.col0, hi, bi),
                after: pl.after,
            })
        };
        let kv_of = |hi: u64| if a.grouped { hi } else { a.kv_head(hi) };
        // P passes from the softmax to P·V a row tile at a time: never held whole.
        wk.place[p_t.0 as usize] = Some(Placed {
            on_chip: true,
            addr: 0,
            instance_bytes: 0,
            src: FILL_SM,
            after: Dep::None,
        });
        let mut out = self.place_output(wk, i + 2, ctx_t);
        let per_seq = a.per_sequence();
        let b = sc.instances / per_seq;
        let heads: Vec<(u64, u64)> = (0..b)
            .flat_map(|bi| (0..per_seq).map(move |hi| (bi, hi)))
            .collect();
        let ctx_rows = g.tensor(ctx_t).rows;
        let causal = |c: Causal| if a.causal { c } else { Causal::No };
        let mut scores_jobs = Vec::new();
        let mut last_pv = 0;
        for n in 0..=heads.len() {
            if let Some(&(bi, hi)) = heads.get(n) {
                scores_jobs.push(self.job(MatMul {
                    op: i as u32,
                    inst: (bi * per_seq + hi) as u32,
                    rows: s,
                    k: dh,
                    cols: keys,
                    pattern: Pattern::DENSE,
                    weight: head_src(wk, k, bi, kv_of(hi))?,
                    act: q_src(wk, bi, hi)?,
                    via: Via::Softmax { op: i as u32 + 1 },
                    dest_dram: None,
                    operand_dram: None,
                    also: None,
                    causal: causal(Causal::Scores),
                    weights: false,
                })?);
            }
            if n >= 1 {
                let (bi, hi) = heads[n - 1];
                let inst = bi * per_seq + hi;
                let (be, row0, col0) = pv.out_at(inst);
                let at = if a.grouped {
                    grouped_at(ctx_rows, 0, hi, row0)
                } else {
                    (row0 + col0 * s) * vb
                };
                last_pv = self.job(MatMul {
                    op: i as u32 + 2,
                    inst: inst as u32,
                    rows: s,
                    k: keys,
                    cols: dh,
                    pattern: Pattern::DENSE,
                    weight: head_src(wk, v, bi, kv_of(hi))?,
                    act: Src::OnChip {
                        src: FILL_SM,
                        after: Dep::Rows(scores_jobs[n - 1]),
                    },
                    via: Via::Direct,
                    dest_dram: (!out.on_chip).then_some(out.addr + be * out.instance_bytes + at),
                    operand_dram: None,
                    also: None,
                    causal: causal(Causal::Pv),
                    weights: false,
                })?;
            }
        }
        out.after = Dep::Job(last_pv);
        out.src = FILL_ACC;
        wk.place[ctx_t.0 as usize] = Some(out);
        Ok(i + 3)
    }
}

/// Plans a whole workload (`w` must be valid, see [`Workload::validate`]): lowers it,
/// places its tensors, tiles every job, and returns the stream that expands them.
///
/// The graph is walked in order: a linear layer with the vector ops fused to it, or an
/// attention block (scores, softmax, P·V). Tensors live where their home says; an on-chip
/// tensor stays on chip only if it fits in one activation bank together with every on-chip
/// tensor written before it and still to be read (the other bank's worth of the buffer is
/// the double-buffered operand space); else it is spilled.
pub fn plan(w: &Workload, hw: &Hardware) -> Result<Stream, String> {
    let e = &hw.engine;
    plan_graph(w.graph(), w.value_bits, hw).map_err(|err| match err {
        PlanError::Design(msg) => msg,
        PlanError::TooManyPasses(n) => format!(
            "the run needs up to {n} PE passes, more than the limit of {MAX_PASSES} (simulating them would take hours); lower the workload (seq {}, batch {}, layers {}: --seq, --batch, --layers or the `workload:` block) or use a larger PE array (`pe_array.rows` = {}, `pe_array.cols` = {})",
            w.seq, w.batch, w.layers, e.rows, e.cols
        ),
    })
}

/// Why a graph cannot be planned.
#[derive(Debug)]
pub enum PlanError {
    /// The design cannot run it (a message naming the parameter to change).
    Design(String),
    /// More passes than [`MAX_PASSES`].
    TooManyPasses(u128),
}

impl From<String> for PlanError {
    fn from(s: String) -> Self {
        PlanError::Design(s)
    }
}

/// Plans graph `g` with `value_bits`-bit values on `hw` (see [`plan`]).
pub fn plan_graph(g: Graph, value_bits: u64, hw: &Hardware) -> Result<Stream, PlanError> {
    let e = &hw.engine;
    if e.sparse {
        for o in &g.ops {
            let p = o.pattern;
            if o.linear_class().is_some()
                && !p.is_dense()
                && !e.supported_m.contains(&u64::from(p.m))
            {
                return Err(PlanError::Design(format!(
                    "pattern {p} of `{}` (layer {}) needs M = {}, but the PE array supports M in {:?} (`pe_array.supported_m`)",
                    o.name, o.layer, p.m, e.supported_m
                )));
            }
        }
    }
    let vb = value_bits / 8;
    let mut pl = Planner {
        hw,
        lim: Limits {
            rows: e.rows,
            cols: e.cols,
            value_bits,
            wb_bank_bytes: hw.wb_bank_bytes,
            ab_bank_bytes: hw.ab_bank_bytes,
            psum_bytes: hw.psum_bytes,
        },
        jobs: Vec::new(),
        next_addr: 0,
        ops: &g.ops,
        spills: Vec::new(),
    };
    let mut wk = Walk {
        g: &g,
        vb,
        last_read: g.last_reads(),
        place: vec![None; g.tensors.len()],
    };
    // Tensors no op writes (the model input) are in DRAM from the start.
    let mut written = vec![false; g.tensors.len()];
    for o in &g.ops {
        if let Some(t) = o.output {
            written[t.0 as usize] = true;
        }
    }
    for (t, tensor) in g.tensors.iter().enumerate() {
        if !written[t] {
            wk.place[t] = Some(Placed {
                on_chip: false,
                addr: pl.alloc(tensor.bytes(vb)),
                instance_bytes: tensor.instance_bytes(vb),
                src: FILL_ACC,
                after: Dep::None,
            });
        }
    }
    let mut i = 0;
    while i < g.ops.len() {
        let o = &g.ops[i];
        i = match o.role {
            Role::Linear { .. } => pl.linear(&mut wk, i)?,
            Role::Scores => pl.attention(&mut wk, i)?,
            _ => return Err(shape_error(o, "this op must follow a matmul").into()),
        };
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
        return Err(PlanError::TooManyPasses(passes_bound));
    }
    let footprint_bytes = pl.next_addr;
    let jobs = std::mem::take(&mut pl.jobs);
    let spills = std::mem::take(&mut pl.spills);
    drop(wk);
    let ops = g.ops;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::{Patterns, preset};

    /// BERT-base, s = 128, batch 1, 2:4, `layers` layers.
    fn bert(layers: u64) -> Workload {
        Workload {
            model: preset("bert-base").unwrap(),
            seq: 128,
            batch: 1,
            layers,
            patterns: Patterns::uniform(Pattern { n: 2, m: 4 }),
            per_layer: Vec::new(),
            value_bits: 16,
            phase: crate::workload::Phase::Prefill,
        }
    }

    /// The reference design's 16 x 16 array with activation banks of `ab_bank_bytes`.
    fn hw(ab_bank_bytes: u64) -> Hardware {
        Hardware {
            engine: Engine {
                rows: 16,
                cols: 16,
                multipliers: 8,
                window: 32,
                supported_m: vec![4, 8, 16],
                sparse: true,
                mult_latency: 1,
            },
            wb_bank_bytes: 256 << 10,
            ab_bank_bytes,
            psum_bytes: 64 << 10,
        }
    }

    fn spilled(st: &Stream) -> Vec<String> {
        st.spills
            .iter()
            .map(|s| format!("L{}.{}", s.layer, s.tensor))
            .collect()
    }

    #[test]
    fn an_on_chip_tensor_must_fit_beside_everything_held_with_it() {
        // s x d = 128 x 768 x 2 B = 196,608 B; s x f = 786,432 B.
        let (x, ffn) = (128 * 768 * 2, 128 * 3072 * 2);
        // 256 KiB: L0's context fits alone (the input is in DRAM); its add_ln1 would sit
        // beside the context proj still reads (2x > 256 KiB); in L1 the layer input is held
        // as the residual, so the context and add_ln1 spill too. The model output is DRAM's.
        assert!(x <= 256 << 10 && 2 * x > 256 << 10);
        let st = plan(&bert(2), &hw(256 << 10)).unwrap();
        assert_eq!(
            spilled(&st),
            [
                "L0.add_ln1",
                "L0.gelu",
                "L1.context",
                "L1.add_ln1",
                "L1.gelu"
            ]
        );
        // 1 MiB: everything fits but L0's output, which would be held with add_ln1 (the
        // residual of its add) and gelu (ffn2's input): 2x + ffn > 1 MiB.
        assert!(x + ffn <= 1 << 20 && 2 * x + ffn > 1 << 20);
        let st = plan(&bert(2), &hw(1 << 20)).unwrap();
        assert_eq!(spilled(&st), ["L0.add_ln2"]);
        let bytes: u64 = st.spills.iter().map(|s| s.bytes).sum();
        assert_eq!(bytes, x);
    }

    #[test]
    fn a_residual_not_on_chip_is_read_from_dram_by_its_vector_op() {
        let st = plan(&bert(2), &hw(256 << 10)).unwrap();
        let jobs: Vec<&Job> = st.jobs.iter().collect();
        let by_name = |layer: u64, name: &str| {
            jobs.iter()
                .find(|j| {
                    let o = &st.ops[j.op as usize];
                    o.layer == layer && o.name == name
                })
                .copied()
                .unwrap()
        };
        // L0: proj's add reads the model input (DRAM, address 0); ffn2's add reads the
        // spilled add_ln1. L1: the input (L0's output) is on chip; add_ln1 is spilled.
        assert_eq!(by_name(0, "proj").operand_dram, Some(0));
        assert!(by_name(0, "ffn2").operand_dram.is_some());
        assert_eq!(by_name(1, "proj").operand_dram, None);
        assert!(by_name(1, "ffn2").operand_dram.is_some());
        // Linear layers without an add take no operand.
        assert_eq!(by_name(0, "ffn1").operand_dram, None);
        assert_eq!(by_name(0, "qkv").operand_dram, None);
    }

    #[test]
    fn grouped_query_heads_read_their_shared_key_value_head() {
        // BERT-base's layer with 3 key/value heads for its 12 query heads: Q is 768
        // columns, then K and V 3 x 64 each.
        let w = bert(1);
        let mut g = w.graph();
        let (d, dh, kv) = (768, 64, 3);
        let qkv_t = g.ops[0].output.unwrap();
        g.tensors[qkv_t.0 as usize].cols = d + 2 * kv * dh;
        g.ops[0].cols = d + 2 * kv * dh;
        for o in &mut g.ops[1..4] {
            o.attention.as_mut().unwrap().kv_heads = kv;
        }
        g.ops[3].kv.as_mut().unwrap().col0 = d + kv * dh;
        let st = plan_graph(g, 16, &hw(256 << 10)).unwrap();
        let addr = |s: Src| match s {
            Src::Dram { addr, .. } => addr,
            Src::OnChip { .. } => panic!("on chip"),
        };
        let heads = |op: u32| -> Vec<&Job> { st.jobs.iter().filter(|j| j.op == op).collect() };
        let (scores, pv) = (heads(1), heads(3));
        assert_eq!((scores.len(), pv.len()), (12, 12));
        // Heads 0-3 share K/V head 0, 4-7 head 1, 8-11 head 2; a head's block is s x dh.
        let block = 128 * dh * 2;
        let k0 = addr(scores[0].weight);
        let v0 = addr(pv[0].weight);
        for h in 0..12u64 {
            assert_eq!(
                addr(scores[h as usize].weight),
                k0 + (h / 4) * block,
                "K of {h}"
            );
            assert_eq!(
                addr(pv[h as usize].weight),
                v0 + (h / 4) * block,
                "V of {h}"
            );
            assert_eq!(
                addr(scores[h as usize].act),
                addr(scores[0].act) + h * block,
                "Q of {h}"
            );
        }
        // K starts after Q's 12 blocks, V after K's 3.
        assert_eq!(k0, addr(scores[0].act) + 12 * block);
        assert_eq!(v0, k0 + 3 * block);
    }

    #[test]
    fn a_fused_chain_that_stores_twice_is_refused() {
        let mut g = bert(1).graph();
        // ffn1 stores its output as well as gelu: the vector unit writes one tensor.
        g.ops[6].output = g.ops[7].output;
        let Err(PlanError::Design(e)) = plan_graph(g, 16, &hw(256 << 10)) else {
            panic!("planned")
        };
        assert!(
            e.contains("only the last op of a fused chain may store"),
            "{e}"
        );
        assert!(e.contains("layer 0 `ffn1`"), "{e}");
    }

    /// Counts what a job expands into.
    #[derive(Default)]
    struct Count {
        passes: u64,
    }

    impl expand::Sink for Count {
        fn wb(&mut self, _f: crate::txn::Fetch) {}
        fn ab(&mut self, _f: crate::txn::Fetch) {}
        fn pe(&mut self, _p: crate::txn::Pass) {
            self.passes += 1;
        }
    }

    #[test]
    fn a_chain_may_also_store_its_value_before_its_final_norm() {
        use crate::model::{Home, Op, Tensor, VectorOp};
        // Pre-norm style: ffn2 -> add (stores the residual stream) -> LayerNorm (stores
        // the normalised output), both written by the vector unit from one pass of tiles.
        let mut g = bert(1).graph();
        let stream = g.add_tensor(Tensor {
            label: "stream",
            home: Home::Chip,
            ..g.tensors[0].clone()
        });
        let out = g.ops[9].output;
        g.ops[9].role = crate::model::Role::Vector { op: VectorOp::Add };
        g.ops[9].output = Some(stream);
        let norm = Op {
            name: "ln",
            role: crate::model::Role::Vector {
                op: VectorOp::LayerNorm,
            },
            operand: None,
            output: out,
            ..g.ops[9].clone()
        };
        g.ops.push(norm);
        let mut st = plan_graph(g, 16, &hw(256 << 10)).unwrap();
        let ffn2 = st.jobs.iter().find(|j| j.op == 8).unwrap();
        // The stream (192 KiB) fits on chip: no DRAM address; the output goes to DRAM.
        assert_eq!(ffn2.also, Some((9, None)));
        assert!(ffn2.dest_dram.is_some());
        assert_eq!(
            ffn2.via,
            Via::Vector {
                op: 9,
                passes: 1 + 2,
                store: 10,
                operand: None,
                also: None
            }
        );
        let mut sink = Count::default();
        while st.jobs_left() > 1 {
            st.expand_next(&mut sink);
        }
        let before = st.counters.clone();
        st.expand_next(&mut sink);
        // 128 x 768 output: 8 x 48 tiles of 16 x 16, each written to DRAM and kept on chip.
        assert_eq!(st.counters.writes - before.writes, 8 * 48);
        assert_eq!(
            st.counters.fills[FILL_VEC as usize] - before.fills[FILL_VEC as usize],
            8 * 48
        );
    }

    #[test]
    fn a_chain_may_not_store_before_an_element_wise_op() {
        let mut g = bert(1).graph();
        // add_ln2 made an add that stores, followed by GELU that stores: the tiles' values
        // differ element by element, so the vector unit cannot write both.
        let out = g.ops[9].output;
        g.ops[9].role = crate::model::Role::Vector {
            op: crate::model::VectorOp::Add,
        };
        let mut gelu = g.ops[7].clone();
        gelu.output = out;
        g.ops[9].output = Some(g.ops[7].output.unwrap());
        g.ops.push(gelu);
        let Err(PlanError::Design(e)) = plan_graph(g, 16, &hw(256 << 10)) else {
            panic!("planned")
        };
        assert!(e.contains("trailing row-wise ops"), "{e}");
    }
}
