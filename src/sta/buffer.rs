//! `weight_buffer` and `act_buffer`: double-buffered on-chip SRAM that loads operand tiles
//! and offers them to the PE array.
//!
//! # Ports
//! - `cmd` (fetch, in): what to load next, in the PE array's order;
//! - `mem_req` / `mem_resp`: the DRAM;
//! - `operand` (operand, out): a loaded bank, offered to the PE array; the link's depth 1 is
//!   the second bank;
//! - `written` (signal, in, optional): DRAM writes completed by the output buffer, for
//!   read-after-write through DRAM (K and V written by the QKV projection);
//! - `act_buffer` only: `fill_acc`, `fill_sm`, `fill_vec` (tile, in, optional): tiles that
//!   stay on chip (outputs of one op that are the next op's input).
//!
//! # Timing
//! Two banks of `bank_bytes`: one is read by the PE array while the other loads. A fetch
//! starts when the operand link is free (the PE array has taken the previous operand, so
//! its old bank is released), and when its dependencies are met (`after_fills` tiles
//! arrived on chip, `after_writes` DRAM writes done). A DRAM fetch issues one request of
//! `bytes` (the DRAM splits it into bursts) and offers the operand when the response
//! arrives: `load time = DRAM time of the request`. On-chip fetches are offered at once.
//! The PE array reads an operand at `read_bytes_per_cycle`.
//!
//! # Parameters
//! `bank_bytes` (bytes per bank), `read_bytes_per_cycle`.

use super::account::{Accounted, OpLogs, Stall, WaitSlot};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, ProbeValue, Stat, StatValue};
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
        read_bpc: args.params.u64("read_bytes_per_cycle")?,
        current: None,
        phase: Phase::Idle,
        fills_seen: [0; 3],
        writes_seen: 0,
        wait: WaitSlot::default(),
        load_start_ps: 0,
        next_id: 0,
        bytes_loaded: 0,
        logs: OpLogs::default(),
        offered: 0,
        banks_traced: 0,
        functional: args.functional.cloned(),
    }))
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    WaitBank,
    WaitDeps,
    Request,
    Loading,
    Offer,
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
    read_bpc: u64,
    current: Option<Fetch>,
    phase: Phase,
    /// Tiles arrived on chip, per source.
    fills_seen: [u64; 3],
    writes_seen: u64,
    wait: WaitSlot,
    load_start_ps: u64,
    next_id: u64,
    bytes_loaded: u64,
    logs: OpLogs,
    /// Operands offered so far.
    offered: u64,
    /// Last `banks_used` value traced.
    banks_traced: u64,
    /// Functional runs: commits arriving fills to the memory image.
    functional: Option<crate::functional::Shared>,
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
        if ctx.observed() {
            // Banks holding data: the one the PE array reads (after the first operand), a
            // loaded one waiting on the operand link, and one being loaded.
            let loading = matches!(self.phase, Phase::Request | Phase::Loading | Phase::Offer);
            let banks = u64::from(self.offered > 0)
                + ctx.occupancy(self.operand) as u64
                + u64::from(loading);
            if banks != self.banks_traced {
                self.banks_traced = banks;
                ctx.probe("banks_used", ProbeValue::Int(banks.min(2) as i64));
            }
        }
    }

    fn advance(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.drain_signals(ctx);
        let now = ctx.now().as_ps();
        loop {
            let Some(f) = self.current else {
                match ctx.try_recv(self.cmd) {
                    Some(Transaction::Fetch(f)) => {
                        self.current = Some(*f);
                        self.phase = Phase::WaitBank;
                        continue;
                    }
                    _ => return,
                }
            };
            match self.phase {
                Phase::Idle | Phase::WaitBank => {
                    if !ctx.can_send(self.operand) {
                        self.wait.begin(f.op, Stall::Downstream, now);
                        return;
                    }
                    self.wait.end(&mut self.logs, now);
                    self.phase = Phase::WaitDeps;
                }
                Phase::WaitDeps => {
                    if self.fills_seen[usize::from(f.fill_src.min(2))] < f.after_fills {
                        self.wait.begin(f.op, Stall::Buffer, now);
                        return;
                    }
                    if self.writes_seen < f.after_writes {
                        self.wait.begin(f.op, Stall::Dram, now);
                        return;
                    }
                    self.wait.end(&mut self.logs, now);
                    self.phase = if f.from_dram && f.bytes > 0 {
                        Phase::Request
                    } else {
                        Phase::Offer
                    };
                }
                Phase::Request => {
                    let req = MemReq {
                        id: self.next_id,
                        addr: f.addr,
                        bytes: f.bytes,
                        write: false,
                    };
                    if ctx
                        .try_send(self.mem_req, Transaction::MemReq(Box::new(req)))
                        .is_err()
                    {
                        return;
                    }
                    self.next_id += 1;
                    self.load_start_ps = now;
                    ctx.probe("op", ProbeValue::Int(i64::from(f.op)));
                    ctx.probe("busy", ProbeValue::Bool(true));
                    self.phase = Phase::Loading;
                    let _ = ctx.try_recv(self.mem_resp); // arm the response notification
                    return;
                }
                Phase::Loading => match ctx.try_recv(self.mem_resp) {
                    Some(Transaction::MemResp(_)) => {
                        self.bytes_loaded += f.bytes;
                        self.logs.sram(f.op, 0, f.bytes);
                        self.logs.work(f.op, self.load_start_ps, now, 0);
                        self.logs.dram_bytes(f.op, f.bytes);
                        ctx.probe("busy", ProbeValue::Bool(false));
                        self.phase = Phase::Offer;
                    }
                    _ => return,
                },
                Phase::Offer => {
                    let o = Operand {
                        op: f.op,
                        read_bytes_per_cycle: self.read_bpc,
                    };
                    if ctx.try_send(self.operand, Transaction::Operand(o)).is_err() {
                        return;
                    }
                    self.current = None;
                    self.phase = Phase::Idle;
                    self.offered += 1;
                }
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
        self.current.map(|f| {
            format!(
                "fetch for op {} in phase {:?} (fills {}/{} from source {}, writes {}/{})",
                f.op,
                self.phase,
                self.fills_seen[usize::from(f.fill_src.min(2))],
                f.after_fills,
                f.fill_src,
                self.writes_seen,
                f.after_writes
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
