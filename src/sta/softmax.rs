//! `softmax`: row-wise softmax of attention scores, fed straight from the accumulator; its
//! probabilities P go to the activation buffer for `P·V`, so scores never leave the chip.
//!
//! # Ports
//! `in` (tile, in) score tiles; `out` (tile, out) P tiles to the activation buffer;
//! `mem_req` / `mem_resp` (optional) the DRAM, used only with `offchip: true`.
//!
//! # Timing
//! Tiles of one row block (all column tiles of `R` rows) are collected until the block's
//! last tile. The block is then processed with a documented **single-pass online** softmax
//! (running max and sum in one pass, normalisation in a second): `passes = 2` passes of
//! `lanes` elements a cycle, `cycles = passes * ceil(E / lanes)` for a block of `E`
//! elements; blocks are pipelined (the next block collects while one is processed). Its
//! tiles then leave in order.
//!
//! With `offchip: true` (the ablation of `topologies/sta-offchip-softmax.yaml`), each block
//! first makes the DRAM round trip an accelerator without the fused unit needs: the scores
//! are written to DRAM and read back before the softmax runs.
//!
//! # The scratch area
//! Blocks make the round trip one at a time, each at the same DRAM address `scratch_addr`,
//! so the area holds one block: at most `R` rows (the PE array's) of `s` scores of the
//! workload's value width, [`scratch_bytes`]. `auto` (the default) places it at the first
//! [`SCRATCH_ALIGN_BYTES`] boundary after the tensors the controller placed; the run
//! resolves it before it starts ([`Softmax::place_scratch`], from `run::check_memory`),
//! which also refuses an explicit address whose area leaves the DRAM or overlaps those
//! tensors.
//!
//! # Parameters
//! `lanes`, `passes`, `offchip`, `scratch_addr`.

use std::collections::VecDeque;

use super::account::{Accounted, OpLogs, Stall};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, Cycles, LinkId, ProbeValue, Stat, StatValue};
use crate::txn::{MemReq, Tile, Transaction, TxnType, Via};

/// The `softmax` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "softmax",
    summary: "row-wise softmax on chip (online max/sum pass + normalise pass), pipelined by row block",
    ports: &[
        PortSpec::new(
            "in",
            Dir::In,
            TxnType::Tile,
            false,
            "score tiles from the accumulator",
        ),
        PortSpec::new(
            "out",
            Dir::Out,
            TxnType::Tile,
            false,
            "probability tiles to the activation buffer",
        ),
        PortSpec::new(
            "mem_req",
            Dir::Out,
            TxnType::MemReq,
            true,
            "DRAM requests (offchip only)",
        ),
        PortSpec::new(
            "mem_resp",
            Dir::In,
            TxnType::MemResp,
            true,
            "DRAM responses (offchip only)",
        ),
    ],
    params: &[
        ParamSpec {
            name: "lanes",
            ty: ParamType::Int { min: 1, max: 65536 },
            default: ParamDefault::Int(16),
            unit: "elements/cycle",
            doc: "elements per cycle per pass",
        },
        ParamSpec {
            name: "passes",
            ty: ParamType::Int { min: 1, max: 8 },
            default: ParamDefault::Int(2),
            unit: "passes",
            doc: "passes over each row (2: online max+sum, normalise; 3: max, exp-sum, normalise)",
        },
        ParamSpec {
            name: "offchip",
            ty: ParamType::Bool,
            default: ParamDefault::Bool(false),
            unit: "",
            doc: "ablation: scores make a DRAM round trip before the softmax",
        },
        ParamSpec {
            name: "scratch_addr",
            ty: ParamType::AutoInt {
                min: 0,
                max: 1 << 50,
            },
            default: ParamDefault::Str(crate::component::AUTO),
            unit: "bytes",
            doc: "DRAM address of the score scratch area (offchip only); auto: the first 4 KiB boundary after the planned tensors",
        },
    ],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let offchip = args.params.bool("offchip")?;
    let mem = match (args.opt_port("mem_req"), args.opt_port("mem_resp")) {
        (Some(q), Some(r)) => Some((q, r)),
        (None, None) if !offchip => None,
        _ => return Err("`offchip: true` needs both `mem_req` and `mem_resp` connected".into()),
    };
    Ok(Box::new(Softmax {
        input: args.port("in")?,
        output: args.port("out")?,
        mem: if offchip { mem } else { None },
        lanes: args.params.u64("lanes")?,
        passes: args.params.u64("passes")?,
        scratch: args.params.auto_u64("scratch_addr")?,
        scratch_bytes: None,
        filling: Vec::new(),
        ready: VecDeque::new(),
        phase: Phase::Idle,
        since_ps: 0,
        logs: OpLogs::default(),
        rows: 0,
        dram_bytes: 0,
        functional: args.functional.cloned(),
    }))
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Writing,
    Reading,
    Computing,
    Emitting(usize),
}

/// State of a `softmax` instance.
pub struct Softmax {
    input: LinkId,
    output: LinkId,
    mem: Option<(LinkId, LinkId)>,
    lanes: u64,
    passes: u64,
    /// DRAM address of the scratch area; `None` until placed (`auto`).
    scratch: Option<u64>,
    /// Bytes the placed area holds (`None`: not placed, or no bound known).
    scratch_bytes: Option<u64>,
    /// Tiles of the row block being collected.
    filling: Vec<Tile>,
    /// Complete row blocks waiting or in progress (front).
    ready: VecDeque<Vec<Tile>>,
    phase: Phase,
    since_ps: u64,
    logs: OpLogs,
    rows: u64,
    dram_bytes: u64,
    /// Functional runs: normalises each row block's scores.
    functional: Option<crate::functional::Shared>,
}

fn op_of(t: &Tile) -> u32 {
    match t.via {
        Via::Softmax { op } => op,
        _ => t.op,
    }
}

/// Alignment of an `auto` scratch area, bytes.
pub const SCRATCH_ALIGN_BYTES: u64 = 4096;

/// Bytes of the scratch area: one row block, `pe_rows` rows of `seq` scores of
/// `value_bytes` each (saturating).
pub fn scratch_bytes(pe_rows: u64, seq: u64, value_bytes: u64) -> u64 {
    pe_rows.saturating_mul(seq).saturating_mul(value_bytes)
}

/// Where an `auto` scratch area goes: the first [`SCRATCH_ALIGN_BYTES`] boundary at or
/// after `footprint_bytes` (saturating).
pub fn auto_scratch_addr(footprint_bytes: u64) -> u64 {
    footprint_bytes
        .checked_next_multiple_of(SCRATCH_ALIGN_BYTES)
        .unwrap_or(u64::MAX)
}

impl Softmax {
    /// Whether scores make the DRAM round trip (`offchip: true`, DRAM connected).
    pub fn offchip(&self) -> bool {
        self.mem.is_some()
    }

    /// The scratch area's address: `None` while `auto` has not been placed.
    pub fn scratch_addr(&self) -> Option<u64> {
        self.scratch
    }

    /// Places the scratch area at `addr`, `bytes` long if known (before the run starts).
    pub fn place_scratch(&mut self, addr: u64, bytes: Option<u64>) {
        self.scratch = Some(addr);
        self.scratch_bytes = bytes;
    }

    fn block_bytes(block: &[Tile]) -> u64 {
        block
            .iter()
            .map(|t| u64::from(t.elems) * u64::from(t.value_bytes))
            .sum()
    }

    fn mem_request(&mut self, ctx: &mut Ctx<'_, Transaction>, write: bool) -> bool {
        let Some((req, resp)) = self.mem else {
            return false;
        };
        let bytes = self.ready.front().map_or(0, |b| Self::block_bytes(b));
        // Every run places it before it starts (`run::check_memory`).
        let Some(addr) = self.scratch else {
            panic!("internal error: the off-chip softmax's scratch area was never placed");
        };
        debug_assert!(
            self.scratch_bytes.is_none_or(|area| bytes <= area),
            "a row block of {bytes} bytes overflows the scratch area of {:?} bytes \
             (softmax::scratch_bytes no longer bounds the planner's row blocks)",
            self.scratch_bytes
        );
        let r = MemReq {
            id: self.rows,
            addr,
            bytes,
            write,
            prefetch: false,
        };
        if ctx.try_send(req, Transaction::MemReq(Box::new(r))).is_err() {
            return false;
        }
        self.dram_bytes += bytes;
        if let Some(op) = self.ready.front().map(|b| op_of(&b[0])) {
            self.logs.dram_bytes(op, bytes);
        }
        let _ = ctx.try_recv(resp);
        true
    }

    fn step(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        while let Some(Transaction::Tile(t)) = ctx.try_recv(self.input) {
            let end = t.group_end;
            self.filling.push(*t);
            if end {
                self.ready.push_back(std::mem::take(&mut self.filling));
            }
        }
        let now = ctx.now().as_ps();
        loop {
            let Some(block) = self.ready.front() else {
                ctx.probe("busy", ProbeValue::Bool(false));
                return;
            };
            let op = op_of(&block[0]);
            match self.phase {
                Phase::Idle => {
                    self.since_ps = now;
                    ctx.probe("busy", ProbeValue::Bool(true));
                    if self.mem.is_some() {
                        if !self.mem_request(ctx, true) {
                            return;
                        }
                        self.phase = Phase::Writing;
                        return;
                    }
                    self.start_compute(ctx);
                    return;
                }
                Phase::Writing | Phase::Reading => {
                    let Some((_, resp)) = self.mem else { return };
                    if ctx.try_recv(resp).is_none() {
                        return;
                    }
                    if self.phase == Phase::Writing {
                        if !self.mem_request(ctx, false) {
                            return;
                        }
                        self.phase = Phase::Reading;
                        return;
                    }
                    self.logs.stall(op, Stall::Dram, now - self.since_ps);
                    self.start_compute(ctx);
                    return;
                }
                Phase::Computing => return,
                Phase::Emitting(i) => {
                    let Some(block) = self.ready.front_mut() else {
                        return;
                    };
                    if i == block.len() {
                        self.ready.pop_front();
                        self.phase = Phase::Idle;
                        continue;
                    }
                    let t = Tile {
                        elem_bytes: block[i].value_bytes,
                        via: Via::Direct,
                        op,
                        data: block[i].data.take(),
                        ..block[i]
                    };
                    if let Err(Transaction::Tile(t)) =
                        ctx.try_send(self.output, Transaction::Tile(Box::new(t)))
                    {
                        block[i].data = t.data; // kept for the next try
                        return;
                    }
                    self.phase = Phase::Emitting(i + 1);
                }
            }
        }
    }

    fn start_compute(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let Some(block) = self.ready.front_mut() else {
            return;
        };
        if let Some(f) = &self.functional {
            crate::functional::lock(f).softmax(block);
        }
        let elems: u64 = block.iter().map(|t| u64::from(t.elems)).sum();
        self.rows += u64::from(block[0].rows);
        let cycles = self.passes * elems.div_ceil(self.lanes);
        let now = ctx.now();
        let end = now + ctx.clock().cycles(Cycles(cycles));
        self.logs
            .work(op_of(&block[0]), now.as_ps(), end.as_ps(), 0);
        ctx.probe("op", ProbeValue::Int(i64::from(op_of(&block[0]))));
        ctx.probe("rows", ProbeValue::Int(i64::from(block[0].rows)));
        self.phase = Phase::Computing;
        ctx.wake_at(end, 0);
    }
}

impl Actor<Transaction> for Softmax {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.step(ctx);
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, _tag: u64) {
        if self.phase == Phase::Computing {
            self.phase = Phase::Emitting(0);
        }
        self.step(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.step(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.step(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        if self.ready.is_empty() && self.filling.is_empty() {
            None
        } else {
            Some(format!(
                "{} row blocks in progress ({:?}), {} tiles of an unfinished block",
                self.ready.len(),
                self.phase,
                self.filling.len()
            ))
        }
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("rows", StatValue::U64(self.rows)),
            ("dram_bytes", StatValue::U64(self.dram_bytes)),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        Some(self)
    }
}

impl Accounted for Softmax {
    fn op_logs(&self) -> &OpLogs {
        &self.logs
    }
}
