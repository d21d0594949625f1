//! `weight_buffer` and `act_buffer`: double-buffered on-chip SRAM that loads operand tiles
//! and offers them to the PE array.
//!
//! # Ports
//! - `cmd` (fetch, in): what to load next, in the PE array's order;
//! - `mem_req` / `mem_resp`: the DRAM;
//! - `operand` (operand, out): the parts of loaded banks, offered to the PE array in order;
//! - `written` (signal, in, optional): DRAM writes completed by the output buffer, for
//!   read-after-write through DRAM (K and V written by the QKV projection);
//! - `act_buffer` only: `fill_acc`, `fill_sm`, `fill_vec` (tile, in, optional): tiles that
//!   stay on chip (outputs of one op that are the next op's input).
//!
//! # Timing
//! Two banks of `bank_bytes`, used as one circular space of `2 * bank_bytes`: the PE array
//! reads one load (a block of at most one bank) while the next ones load. A fetch starts,
//! in order, when its bytes fit the free space and its dependencies are met (`after_fills`
//! tiles arrived on chip, `after_writes` DRAM writes done); a load's space is free once the
//! PE array has taken the first part of the load after it (it takes the next load only when
//! done with the last). A larger buffer therefore prefetches further ahead, never less; the
//! requests of loads beyond the one being read and the next are marked `prefetch`, which the
//! DRAM serves after every other requester's. A DRAM fetch issues one request per part
//! (a weight column tile or an activation row tile; the DRAM splits each into bursts) and
//! offers each part as soon as it and the parts before it have arrived, so a pass waits
//! for its own operands, never for the whole bank. On-chip fetches are offered at once.
//! The PE array reads an operand at `read_bytes_per_cycle`.
//!
//! # Parameters
//! `bank_bytes` (bytes per bank), `read_bytes_per_cycle`.

use super::account::{Accounted, OpLogs, Stall, WaitSlot};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, ProbeValue, Stat, StatValue};
use std::collections::VecDeque;

use crate::txn::{Fetch, MemReq, Operand, Transaction, TxnType};

const COMMON_PORTS: [PortSpec; 5] = [
    PortSpec::new(
        "cmd",
        Dir::In,
        TxnType::Fetch,
        false,
        "fetch orders from the controller",
    ),
    PortSpec::new("mem_req", Dir::Out, TxnType::MemReq, false, "DRAM reads"),
    PortSpec::new(
        "mem_resp",
        Dir::In,
        TxnType::MemResp,
        false,
        "DRAM read data",
    ),
    PortSpec::new(
        "operand",
        Dir::Out,
        TxnType::Operand,
        false,
        "loaded banks offered to the PE array",
    ),
    PortSpec::new(
        "written",
        Dir::In,
        TxnType::Signal,
        true,
        "DRAM writes completed (read-after-write)",
    ),
];

const PARAMS: &[ParamSpec] = &[
    ParamSpec {
        name: "bank_bytes",
        ty: ParamType::Int {
            min: 64,
            max: 1 << 30,
        },
        default: ParamDefault::Int(256 * 1024),
        unit: "bytes",
        doc: "capacity of each of the two banks",
    },
    ParamSpec {
        name: "read_bytes_per_cycle",
        ty: ParamType::Int {
            min: 1,
            max: 1 << 20,
        },
        default: ParamDefault::Int(1024),
        unit: "bytes/cycle",
        doc: "read bandwidth towards the PE array",
    },
];

/// The `weight_buffer` module kind.
pub const WEIGHT_SPEC: ModuleSpec = ModuleSpec {
    kind: "weight_buffer",
    summary: "double-buffered SRAM for compressed weight tiles (values + indices), K and V",
    ports: &COMMON_PORTS,
    params: PARAMS,
    build,
    fixed_clock: None,
};

/// The `act_buffer` module kind.
pub const ACT_SPEC: ModuleSpec = ModuleSpec {
    kind: "act_buffer",
    summary: "double-buffered SRAM for activation tiles, Q, and on-chip intermediate results",
    ports: &[
        COMMON_PORTS[0],
        COMMON_PORTS[1],
        COMMON_PORTS[2],
        COMMON_PORTS[3],
        COMMON_PORTS[4],
        PortSpec::new(
            "fill_acc",
            Dir::In,
            TxnType::Tile,
            true,
            "tiles kept on chip, from the accumulator",
        ),
        PortSpec::new(
            "fill_sm",
            Dir::In,
            TxnType::Tile,
            true,
            "probability rows P, from the softmax",
        ),
        PortSpec::new(
            "fill_vec",
            Dir::In,
            TxnType::Tile,
            true,
            "tiles kept on chip, from the vector unit",
        ),
    ],
    params: PARAMS,
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let fills = ["fill_acc", "fill_sm", "fill_vec"]
        .iter()
        .enumerate()
        .filter_map(|(i, p)| args.opt_port(p).map(|l| (l, i)))
        .collect();
    Ok(Box::new(Buffer {
        cmd: args.port("cmd")?,
        mem_req: args.port("mem_req")?,
        mem_resp: args.port("mem_resp")?,
        operand: args.port("operand")?,
        written: args.opt_port("written"),
        fills,
        read_bpc: u32::try_from(args.params.u64("read_bytes_per_cycle")?)
            .map_err(|_| "`read_bytes_per_cycle` is too large")?,
        next: None,
        open: VecDeque::new(),
        capacity: BANKS * args.params.u64("bank_bytes")?,
        reserved: 0,
        loads: 0,
        sent: 0,
        fills_seen: [0; 3],
        writes_seen: 0,
        wait: WaitSlot::default(),
        in_flight: 0,
        bytes_loaded: 0,
        logs: OpLogs::default(),
        bytes_traced: 0,
        functional: args.functional.cloned(),
    }))
}

/// Banks of a double buffer: the capacity is `BANKS * bank_bytes`.
const BANKS: u64 = 2;

/// Most loads open at once (on-chip loads reserve no bytes; this bounds their number).
const MAX_OPEN_LOADS: usize = 64;

/// One bank's load: its order, and how far its parts got.
#[derive(Clone, Debug)]
struct Load {
    f: Fetch,
    /// Load number (as the PE array counts them).
    seq: u32,
    /// Index of the first operand message of this load among all sent.
    first_msg: u64,
    /// Parts requested from DRAM.
    requested: u32,
    /// Which parts have arrived.
    arrived: Vec<bool>,
    /// Parts offered to the PE array (always a prefix of the arrived ones).
    offered: u32,
    /// When the first request left, ps.
    start_ps: u64,
}

impl Load {
    fn part_bytes(&self, part: u32) -> u64 {
        let f = &self.f;
        if part + 1 < f.parts {
            f.part_bytes
        } else {
            f.bytes
                .saturating_sub(f.part_bytes * u64::from(f.parts.saturating_sub(1)))
        }
    }

    fn reads_dram(&self) -> bool {
        self.f.from_dram && self.f.bytes > 0
    }

    /// Bytes of the buffer this load holds.
    fn reserved(&self) -> u64 {
        if self.f.from_dram { self.f.bytes } else { 0 }
    }
}

/// State of a buffer instance.
pub struct Buffer {
    cmd: LinkId,
    mem_req: LinkId,
    mem_resp: LinkId,
    operand: LinkId,
    written: Option<LinkId>,
    /// Fill links with their source index (0 accumulator, 1 softmax, 2 vector unit).
    fills: Vec<(LinkId, usize)>,
    read_bpc: u32,
    /// The next order, waiting for a free bank or its dependencies.
    next: Option<Fetch>,
    /// Open loads, oldest (the one the PE array reads) first.
    open: VecDeque<Load>,
    /// Capacity, bytes (`BANKS * bank_bytes`).
    capacity: u64,
    /// Bytes reserved by the open loads.
    reserved: u64,
    /// Loads started so far.
    loads: u32,
    /// Operand messages sent so far.
    sent: u64,
    /// Tiles arrived on chip, per source.
    fills_seen: [u64; 3],
    writes_seen: u64,
    wait: WaitSlot,
    /// DRAM requests in flight.
    in_flight: u64,
    bytes_loaded: u64,
    logs: OpLogs,
    /// Last `bytes_used` value traced.
    bytes_traced: u64,
    /// Functional runs: commits arriving fills to the memory image.
    functional: Option<crate::functional::Shared>,
}

/// DRAM request ids carry the load (high bits) and the part (low 32 bits).
fn request_id(seq: u32, part: u32) -> u64 {
    (u64::from(seq) << 32) | u64::from(part)
}

impl Buffer {
    fn drain_signals(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        if let Some(w) = self.written {
            while ctx.try_recv(w).is_some() {
                self.writes_seen += 1;
            }
        }
        for i in 0..self.fills.len() {
            let (link, src) = self.fills[i];
            while let Some(t) = ctx.try_recv(link) {
                self.fills_seen[src] += 1;
                if let Transaction::Tile(t) = t {
                    let bytes = u64::from(t.elems) * u64::from(t.elem_bytes);
                    self.logs.sram(t.op, 0, bytes);
                    if let Some(f) = &self.functional {
                        crate::functional::lock(f).commit(&t);
                    }
                }
            }
        }
    }

    fn step(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.advance(ctx);
        if ctx.observed() && self.reserved != self.bytes_traced {
            self.bytes_traced = self.reserved;
            ctx.probe("bytes_used", ProbeValue::Int(self.reserved as i64));
        }
    }

    /// Operand messages the PE array has taken.
    fn taken(&self, ctx: &Ctx<'_, Transaction>) -> u64 {
        self.sent - ctx.occupancy(self.operand) as u64
    }

    fn advance(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.drain_signals(ctx);
        let now = ctx.now().as_ps();
        // DRAM responses: parts arrived.
        while let Some(Transaction::MemResp(r)) = ctx.try_recv(self.mem_resp) {
            self.in_flight -= 1;
            let (seq, part) = ((r.id >> 32) as u32, r.id as u32);
            if let Some(l) = self.open.iter_mut().find(|l| l.seq == seq) {
                l.arrived[part as usize] = true;
                let op = l.f.op;
                self.bytes_loaded += r.bytes;
                self.logs.sram(op, 0, r.bytes);
                self.logs.dram_bytes(op, r.bytes);
                if l.arrived.iter().all(|&a| a) {
                    self.logs.work(op, l.start_ps, now, 0);
                }
            }
        }
        if self.in_flight == 0 {
            ctx.probe("busy", ProbeValue::Bool(false));
        }
        // A load's space is free once the PE array has taken the first part of the load
        // after it.
        let taken = self.taken(ctx);
        while self.open.len() >= 2 && taken > self.open[1].first_msg {
            if let Some(l) = self.open.pop_front() {
                self.reserved -= l.reserved();
            }
        }
        self.start_loads(ctx, now);
        self.request_parts(ctx, now);
        self.offer_parts(ctx);
    }

    /// Starts the next orders while a bank is free and their dependencies are met.
    fn start_loads(&mut self, ctx: &mut Ctx<'_, Transaction>, now: u64) {
        loop {
            if self.next.is_none() {
                match ctx.try_recv(self.cmd) {
                    Some(Transaction::Fetch(f)) => self.next = Some(*f),
                    _ => return,
                }
            }
            let Some(f) = self.next else { return };
            let bytes = if f.from_dram { f.bytes } else { 0 };
            if self.reserved + bytes > self.capacity || self.open.len() >= MAX_OPEN_LOADS {
                // The space holds data the PE array has not finished with.
                self.wait.begin(f.op, Stall::Downstream, now);
                ctx.notify_on_take(self.operand);
                return;
            }
            if self.fills_seen[usize::from(f.fill_src.min(2))] < f.after_fills {
                self.wait.begin(f.op, Stall::Buffer, now);
                return;
            }
            if self.writes_seen < f.after_writes {
                self.wait.begin(f.op, Stall::Dram, now);
                return;
            }
            self.wait.end(&mut self.logs, now);
            self.next = None;
            self.reserved += bytes;
            let parts = f.parts.max(1);
            let on_chip = !(f.from_dram && f.bytes > 0);
            let first_msg = self.sent
                + self
                    .open
                    .iter()
                    .map(|l| u64::from(l.f.parts.max(1) - l.offered))
                    .sum::<u64>();
            self.open.push_back(Load {
                f: Fetch { parts, ..f },
                seq: self.loads,
                first_msg,
                requested: if on_chip { parts } else { 0 },
                arrived: vec![on_chip; parts as usize],
                offered: 0,
                start_ps: now,
            });
            self.loads = self.loads.wrapping_add(1);
        }
    }

    /// Sends the DRAM requests of the open loads, part by part, as the link accepts them.
    fn request_parts(&mut self, ctx: &mut Ctx<'_, Transaction>, now: u64) {
        for i in 0..self.open.len() {
            if !self.open[i].reads_dram() {
                continue;
            }
            let mut part = self.open[i].requested;
            while part < self.open[i].f.parts {
                let l = &self.open[i];
                let req = MemReq {
                    id: request_id(l.seq, part),
                    addr: l.f.addr + l.f.part_stride * u64::from(part),
                    bytes: l.part_bytes(part),
                    write: false,
                    // Beyond the load being read and the next one: a prefetch.
                    prefetch: i >= BANKS as usize,
                };
                if ctx
                    .try_send(self.mem_req, Transaction::MemReq(Box::new(req)))
                    .is_err()
                {
                    return;
                }
                if part == 0 {
                    self.open[i].start_ps = now;
                    ctx.probe("op", ProbeValue::Int(i64::from(self.open[i].f.op)));
                }
                ctx.probe("busy", ProbeValue::Bool(true));
                self.in_flight += 1;
                part += 1;
                self.open[i].requested = part;
                let _ = ctx.try_recv(self.mem_resp); // arm the response notification
            }
        }
    }

    /// Offers arrived parts to the PE array, in order.
    fn offer_parts(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        for i in 0..self.open.len() {
            while self.open[i].offered < self.open[i].f.parts {
                let l = &self.open[i];
                if !l.arrived[l.offered as usize] {
                    return;
                }
                let o = Operand {
                    op: l.f.op,
                    load: l.seq,
                    part: l.offered,
                    read_bytes_per_cycle: self.read_bpc,
                };
                if ctx.try_send(self.operand, Transaction::Operand(o)).is_err() {
                    return;
                }
                self.sent += 1;
                self.open[i].offered += 1;
                // Learn when the PE array takes it (a bank may then be free).
                ctx.notify_on_take(self.operand);
            }
            if self.open[i].offered < self.open[i].f.parts {
                return;
            }
        }
    }
}

impl Actor<Transaction> for Buffer {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.step(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.step(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.step(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        if let Some(f) = self.next {
            return Some(format!(
                "fetch for op {} waiting (bytes in use {}/{}, fills {}/{} from source {}, writes {}/{})",
                f.op,
                self.reserved,
                self.capacity,
                self.fills_seen[usize::from(f.fill_src.min(2))],
                f.after_fills,
                f.fill_src,
                self.writes_seen,
                f.after_writes
            ));
        }
        self.open.iter().find(|l| l.offered < l.f.parts).map(|l| {
            format!(
                "load of op {}: {} of {} parts offered, {} arrived",
                l.f.op,
                l.offered,
                l.f.parts,
                l.arrived.iter().filter(|&&a| a).count()
            )
        })
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("bytes_loaded", StatValue::U64(self.bytes_loaded)),
            ("fills", StatValue::U64(self.fills_seen.iter().sum())),
            ("writes_seen", StatValue::U64(self.writes_seen)),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Accounted for Buffer {
    fn op_logs(&self) -> &OpLogs {
        &self.logs
    }
}

impl Buffer {
    /// Bytes loaded from DRAM.
    pub fn bytes_loaded(&self) -> u64 {
        self.bytes_loaded
    }
}
