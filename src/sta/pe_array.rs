//! `pe_array`: STA's unified engine of `R x C` processing elements, each with `L`
//! multipliers and an adder tree, for sparse x dense and dense x dense products.
//!
//! # Ports
//! `cmd` (pass, in) from the controller; `weights`, `acts` (operand, in) from the buffers;
//! `psum` (tile, out) to the accumulator.
//!
//! # Timing equations (one pass = one `rows x cols` output tile over a reduction chunk of
//! length K: the whole reduction, or one K chunk when the planner splits it)
//! - Sparse x dense with pattern N:M: PE `(i, j)` takes `L` non-zeros of column `j` a cycle
//!   and picks the matching activations of row `i` from a window of `L*M/N` through index
//!   multiplexers. Each PE row reads at most `A` activations a cycle, so the rate is
//!   `min(L, A*N/M)` useful MACs a cycle and
//!   `compute = ceil(nnz * M / min(L*M, A*N))`, `nnz = ceil(K/M) * N`.
//!   (Compute-bound: `ceil(nnz / L)`; starved when `L*M/N > A`: `ceil(nnz / (A*N/M))`.)
//! - Dense x dense, or any pattern on an engine with `sparse: false`:
//!   `compute = ceil(K / min(L, A))`.
//! - A pass also reads its operands: `pass = max(compute, ceil(weight_bytes / Bw),
//!   ceil(act_bytes / Ba))` with `Bw`, `Ba` the buffers' read bandwidths.
//! - Pipeline depth `D = 1 (mux) + mult_latency + ceil(log2 L)`: a pass's partial sums
//!   leave `D` cycles after the pass ends. Passes stream back to back, so an op of passes
//!   `p_1..p_n` with no stall takes `sum(p_i) + D`: the depth is paid when the pipeline
//!   fills, not once per pass.
//! - A pass waits for its operands, the parts of the buffers' loads it reads (one weight
//!   column tile, one activation row tile; not the whole banks): a stall charged to DRAM for
//!   weights, to the buffer for activations, or to the softmax when the activations are its
//!   P rows; and, when a finished tile cannot leave (the accumulator is backed up), for room
//!   downstream.
//!
//! # Accounting
//! At every moment the array is in one [`EngineState`]: computing a pass, waiting (for DRAM,
//! a buffer, the softmax or the accumulator) with a pass in hand, or idle with none. A pass
//! whose operands arrive between two clock edges starts at the next edge; the part cycle
//! before it stays in the wait. The state is probed as `state` (its code) and `busy`
//! (computing), each at the moment it changes, so a waveform shows the stalls.
//!
//! # Parameters
//! `rows` (R), `cols` (C), `multipliers` (L), `window` (A), `supported_m`, `sparse`,
//! `mult_latency`.

use std::collections::VecDeque;

use super::account::{Accounted, EngineClock, EngineState, OpLogs, Stall, Timeline};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, Cycles, LinkId, ProbeValue, Stat, StatValue};
use crate::txn::{Pass, Tile, Transaction, TxnType};

/// The `pe_array` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "pe_array",
    summary: "R x C PEs with L multipliers and index muxes: sparse x dense and dense x dense",
    ports: &[
        PortSpec::new(
            "cmd",
            Dir::In,
            TxnType::Pass,
            false,
            "passes from the controller, in order",
        ),
        PortSpec::new(
            "weights",
            Dir::In,
            TxnType::Operand,
            false,
            "weight (or K, V) operands",
        ),
        PortSpec::new(
            "acts",
            Dir::In,
            TxnType::Operand,
            false,
            "activation (or Q, P) operands",
        ),
        PortSpec::new(
            "psum",
            Dir::Out,
            TxnType::Tile,
            false,
            "output tiles (32-bit partial sums)",
        ),
    ],
    params: &[
        ParamSpec::int(
            "rows",
            1,
            4096,
            16,
            "PEs",
            "R: PE rows (output rows per pass)",
        ),
        ParamSpec::int(
            "cols",
            1,
            4096,
            16,
            "PEs",
            "C: PE columns (output columns per pass)",
        ),
        ParamSpec::int("multipliers", 1, 1024, 8, "per PE", "L: multipliers per PE"),
        ParamSpec::int(
            "window",
            1,
            65536,
            32,
            "activations/cycle",
            "A: activations a PE row reads per cycle",
        ),
        ParamSpec {
            name: "supported_m",
            ty: ParamType::IntList { min: 2, max: 1024 },
            default: ParamDefault::IntList(&[4, 8, 16]),
            unit: "",
            doc: "group sizes M the index muxes are built for",
        },
        ParamSpec {
            name: "sparse",
            ty: ParamType::Bool,
            default: ParamDefault::Bool(true),
            unit: "",
            doc: "has index muxes; false runs N:M weights as dense",
        },
        ParamSpec::int(
            "mult_latency",
            0,
            64,
            1,
            "cycles",
            "multiplier pipeline stages",
        ),
    ],
    build,
    fixed_clock: None,
};

/// The engine's geometry and rates, shared with the planner.
#[derive(Clone, Debug, PartialEq)]
pub struct Engine {
    /// R.
    pub rows: u64,
    /// C.
    pub cols: u64,
    /// L.
    pub multipliers: u64,
    /// A.
    pub window: u64,
    /// Supported M.
    pub supported_m: Vec<u64>,
    /// Index muxes present.
    pub sparse: bool,
    /// Multiplier latency, cycles.
    pub mult_latency: u64,
}

impl Engine {
    /// Reads the engine from `pe_array` parameters.
    pub fn from_params(p: &crate::component::Params) -> Result<Engine, String> {
        Ok(Engine {
            rows: p.u64("rows")?,
            cols: p.u64("cols")?,
            multipliers: p.u64("multipliers")?,
            window: p.u64("window")?,
            supported_m: p
                .int_list("supported_m")?
                .into_iter()
                .map(|m| m as u64)
                .collect(),
            sparse: p.bool("sparse")?,
            mult_latency: p.u64("mult_latency")?,
        })
    }

    /// Pipeline depth `1 + mult_latency + ceil(log2 L)`, cycles.
    pub fn depth(&self) -> u64 {
        1 + self.mult_latency + u64::from(64 - (self.multipliers.max(1) - 1).leading_zeros())
    }

    /// Compute cycles of a pass over reduction `k` with pattern `n:m` (`n == m`: dense).
    pub fn compute_cycles(&self, k: u64, n: u64, m: u64) -> u64 {
        let l = self.multipliers;
        if n == m || !self.sparse {
            return k.div_ceil(l.min(self.window));
        }
        let nnz = k.div_ceil(m) * n;
        (nnz * m).div_ceil((l * m).min(self.window * n))
    }
}

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(PeArray {
        engine: Engine::from_params(args.params)?,
        cmd: args.port("cmd")?,
        weights: args.port("weights")?,
        acts: args.port("acts")?,
        psum: args.port("psum")?,
        current: None,
        w: Side::default(),
        a: Side::default(),
        computing: None,
        pipe: VecDeque::new(),
        clock: EngineClock::default(),
        starting: None,
        logs: OpLogs::default(),
        macs: 0,
        busy_ps: 0,
        passes: 0,
        macs_timeline: Timeline::default(),
        functional: args.functional.cloned(),
    }))
}

/// What the array has of one operand side (weights or activations): the load (bank fill)
/// it reads, how many of that load's parts have arrived, and the bank's read bandwidth.
#[derive(Copy, Clone, Debug)]
struct Side {
    load: u32,
    parts: u32,
    bpc: u64,
}

impl Default for Side {
    fn default() -> Self {
        // The first pass's `new_*` flag moves to load 0.
        Side {
            load: u32::MAX,
            parts: 0,
            bpc: 1,
        }
    }
}

impl Side {
    /// Moves on to the buffer's next load (the previous bank is done with).
    fn next_load(&mut self) {
        self.load = self.load.wrapping_add(1);
        self.parts = 0;
    }

    /// Takes parts from `link` until part `part` of the current load has arrived; false if
    /// it has not yet. Parts of earlier loads that no pass read are dropped.
    fn need(&mut self, ctx: &mut Ctx<'_, Transaction>, link: LinkId, part: u32) -> bool {
        while self.parts <= part {
            match ctx.try_recv(link) {
                Some(Transaction::Operand(o)) if o.load == self.load => {
                    self.parts = o.part + 1;
                    self.bpc = u64::from(o.read_bytes_per_cycle.max(1));
                }
                Some(_) => {}
                None => return false,
            }
        }
        true
    }
}

const TAG_DONE: u64 = 0;
const TAG_EMIT: u64 = 1;
/// A pass whose operands arrived between edges starts computing at the next edge.
const TAG_START: u64 = 2;

/// A pass about to start computing: what its start probes report.
#[derive(Copy, Clone, Debug)]
struct Starting {
    op: u32,
    macs: u64,
    cycles: u64,
    start_ps: u64,
}

/// State of a `pe_array` instance.
pub struct PeArray {
    engine: Engine,
    cmd: LinkId,
    weights: LinkId,
    acts: LinkId,
    psum: LinkId,
    current: Option<Box<Pass>>,
    /// The weight side's load and parts.
    w: Side,
    /// The activation side's load and parts.
    a: Side,
    /// The tile of the pass being computed.
    computing: Option<Tile>,
    /// Finished tiles in the pipeline: (time they leave, tile).
    pipe: VecDeque<(u64, Tile)>,
    /// Which state the array is in, and since when.
    clock: EngineClock,
    /// The pass taken but not yet started (it starts at the next clock edge).
    starting: Option<Starting>,
    logs: OpLogs,
    macs: u64,
    busy_ps: u64,
    passes: u64,
    /// Useful MACs by time (spread over each pass).
    macs_timeline: Timeline,
    /// Functional runs: computes each pass's values from operands in the memory image.
    functional: Option<crate::functional::Shared>,
}

impl PeArray {
    /// Cycles of a whole pass: compute and operand reads.
    pub fn pass_cycles(&self, p: &Pass) -> u64 {
        let compute = self
            .engine
            .compute_cycles(p.k, u64::from(p.n), u64::from(p.m));
        compute
            .max(p.weight_bytes.div_ceil(self.w.bpc))
            .max(p.act_bytes.div_ceil(self.a.bpc))
    }

    fn step(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        loop {
            if self.computing.is_some() {
                return;
            }
            let Some(p) = self.current.as_deref() else {
                match ctx.try_recv(self.cmd) {
                    Some(Transaction::Pass(p)) => {
                        if p.new_weight {
                            self.w.next_load();
                        }
                        if p.new_act {
                            self.a.next_load();
                        }
                        self.current = Some(p);
                        continue;
                    }
                    _ => {
                        self.enter(ctx, EngineState::Idle, 0);
                        return;
                    }
                }
            };
            let (op, w_part, a_part) = (p.op, p.w_part, p.a_part);
            // A finished tile that could not leave yet: the accumulator is backed up.
            if self.pipe.front().is_some_and(|&(at, _)| at <= now) {
                self.enter(ctx, EngineState::Waiting(Stall::Downstream), op);
                return;
            }
            let act_stall = if p.act_from_softmax {
                Stall::Softmax
            } else {
                Stall::Buffer
            };
            if !self.w.need(ctx, self.weights, w_part) {
                self.enter(ctx, EngineState::Waiting(Stall::Dram), op);
                return;
            }
            if !self.a.need(ctx, self.acts, a_part) {
                self.enter(ctx, EngineState::Waiting(act_stall), op);
                return;
            }
            let Some(p) = self.current.take() else { return };
            let cycles = self.pass_cycles(&p);
            // Passes start on a clock edge of the array (operands arrive at DRAM-clock times).
            let start_t = ctx.clock().next_edge(ctx.now());
            let (start, end) = (
                start_t.as_ps(),
                (start_t + ctx.clock().cycles(Cycles(cycles))).as_ps(),
            );
            self.logs.work(p.op, start, end, p.macs);
            // Operands are read from the buffers' SRAM during the pass.
            self.logs.sram(p.op, p.weight_bytes + p.act_bytes, 0);
            self.macs += p.macs;
            self.macs_timeline.add_spread(start, end, p.macs);
            self.busy_ps += end - start;
            self.passes += 1;
            let data = self
                .functional
                .as_ref()
                .map(|f| crate::functional::lock(f).pass(&p));
            self.computing = Some(Tile {
                data,
                op: p.op,
                at: (p.inst, p.row0, p.col0),
                first_chunk: p.first_chunk,
                last_chunk: p.last_chunk,
                rows: p.rows,
                elems: p.rows * p.cols,
                elem_bytes: 4,
                value_bytes: p.value_bytes,
                group_end: p.group_end,
                via: p.via,
                dest: p.dest,
            });
            self.starting = Some(Starting {
                op: p.op,
                macs: p.macs,
                cycles,
                start_ps: start,
            });
            if start == now {
                self.begin_computing(ctx);
            } else {
                ctx.wake_at(start_t, TAG_START);
            }
            ctx.wake_at(crate::kernel::SimTime::from_ps(end), TAG_DONE);
            return;
        }
    }

    /// Enters `state` (on `op`) now, probing `state` and `busy` when the state changes.
    fn enter(&mut self, ctx: &mut Ctx<'_, Transaction>, state: EngineState, op: u32) {
        let now = ctx.now().as_ps();
        if self.clock.enter(&mut self.logs, state, op, now) {
            ctx.probe("state", ProbeValue::Int(state.code()));
            ctx.probe("busy", ProbeValue::Bool(state == EngineState::Computing));
        }
    }

    /// The pass taken last starts computing, if now is its start edge.
    fn begin_computing(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let Some(s) = self.starting.take_if(|s| s.start_ps <= ctx.now().as_ps()) else {
            return;
        };
        self.enter(ctx, EngineState::Computing, s.op);
        ctx.probe("op", ProbeValue::Int(i64::from(s.op)));
        if ctx.observed() {
            let e = &self.engine;
            let peak = (e.rows * e.cols * e.multipliers * s.cycles.max(1)) as f64;
            ctx.probe("utilization", ProbeValue::Real(s.macs as f64 / peak));
            ctx.probe("tile", ProbeValue::Int(i64::from(s.op)));
        }
    }

    fn emit(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        while let Some((at, tile)) = self.pipe.pop_front() {
            if at > now {
                self.pipe.push_front((at, tile));
                return;
            }
            if let Err(Transaction::Tile(tile)) =
                ctx.try_send(self.psum, Transaction::Tile(Box::new(tile)))
            {
                self.pipe.push_front((at, *tile));
                return;
            }
        }
    }
}

impl Actor<Transaction> for PeArray {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        // The initial state, so that a waveform has a value from time 0.
        let idle = EngineState::Idle;
        ctx.probe("state", ProbeValue::Int(idle.code()));
        ctx.probe("busy", ProbeValue::Bool(false));
        self.step(ctx);
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, tag: u64) {
        // A zero-cycle pass ends at its start edge: start it first.
        if tag == TAG_START || tag == TAG_DONE {
            self.begin_computing(ctx);
        }
        if tag == TAG_DONE
            && let Some(tile) = self.computing.take()
        {
            ctx.probe("tile_end", ProbeValue::Int(i64::from(tile.op)));
            let depth = ctx.clock().cycles(Cycles(self.engine.depth()));
            let at = ctx.now() + depth;
            self.pipe.push_back((at.as_ps(), tile));
            ctx.wake_at(at, TAG_EMIT);
        }
        self.emit(ctx);
        self.step(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.step(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.emit(ctx);
        self.step(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        if let Some(p) = &self.current {
            Some(format!(
                "pass of op {} waiting (weight part {} of load {}: {}; activation part {} of load {}: {})",
                p.op,
                p.w_part,
                self.w.load,
                if self.w.parts > p.w_part {
                    "ready"
                } else {
                    "missing"
                },
                p.a_part,
                self.a.load,
                if self.a.parts > p.a_part {
                    "ready"
                } else {
                    "missing"
                }
            ))
        } else if !self.pipe.is_empty() || self.computing.is_some() {
            Some(format!(
                "{} output tiles not yet delivered",
                self.pipe.len()
            ))
        } else {
            None
        }
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("passes", StatValue::U64(self.passes)),
            ("macs", StatValue::U64(self.macs)),
            ("busy_ps", StatValue::U64(self.busy_ps)),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Accounted for PeArray {
    fn op_logs(&self) -> &OpLogs {
        &self.logs
    }
}

impl PeArray {
    /// The engine's geometry.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Useful MACs by time.
    pub fn macs_timeline(&self) -> &Timeline {
        &self.macs_timeline
    }

    /// The array's state over the run (its waits are in [`Accounted::op_logs`]).
    pub fn engine_clock(&self) -> &EngineClock {
        &self.clock
    }
}
