//! `out_buffer`: finished tiles on their way back to DRAM.
//!
//! # Ports
//! `in_acc`, `in_vec` (tile, in, optional) from the accumulator and the vector unit;
//! `mem_req` / `mem_resp` the DRAM; `written_w`, `written_a` (signal, out, optional): one
//! signal per completed write, to the weight and activation buffers (read-after-write
//! through DRAM: K and V are read back as operands).
//!
//! # Timing
//! Each tile becomes one DRAM write of `elems * elem_bytes` bytes at its destination
//! address; at most `outstanding` writes are in flight; a write completes when the DRAM
//! has written its last burst.
//!
//! # Parameters
//! `outstanding`.

use std::collections::VecDeque;

use super::account::{Accounted, OpLogs};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, Stat, StatValue};
use crate::txn::{Dest, MemReq, Signal, Tile, Transaction, TxnType};

/// The `out_buffer` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "out_buffer",
    summary: "writes finished tiles to DRAM and signals their completion",
    ports: &[
        PortSpec::new(
            "in_acc",
            Dir::In,
            TxnType::Tile,
            true,
            "tiles from the accumulator",
        ),
        PortSpec::new(
            "in_vec",
            Dir::In,
            TxnType::Tile,
            true,
            "tiles from the vector unit",
        ),
        PortSpec::new("mem_req", Dir::Out, TxnType::MemReq, false, "DRAM writes"),
        PortSpec::new(
            "mem_resp",
            Dir::In,
            TxnType::MemResp,
            false,
            "DRAM write completions",
        ),
        PortSpec::new(
            "written_w",
            Dir::Out,
            TxnType::Signal,
            true,
            "write done, to the weight buffer",
        ),
        PortSpec::new(
            "written_a",
            Dir::Out,
            TxnType::Signal,
            true,
            "write done, to the activation buffer",
        ),
    ],
    params: &[ParamSpec {
        name: "outstanding",
        ty: ParamType::Int { min: 1, max: 4096 },
        default: ParamDefault::Int(8),
        unit: "writes",
        doc: "most writes in flight",
    }],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let inputs = ["in_acc", "in_vec"]
        .iter()
        .filter_map(|p| args.opt_port(p))
        .collect();
    let signals = ["written_w", "written_a"]
        .iter()
        .filter_map(|p| args.opt_port(p))
        .map(|l| (l, 0u64))
        .collect();
    Ok(Box::new(OutBuffer {
        inputs,
        mem_req: args.port("mem_req")?,
        mem_resp: args.port("mem_resp")?,
        signals,
        outstanding: args.params.u64("outstanding")?,
        in_flight: VecDeque::new(),
        next_id: 0,
        writes: 0,
        bytes_written: 0,
        logs: OpLogs::default(),
        functional: args.functional.cloned(),
    }))
}

/// State of an `out_buffer` instance.
pub struct OutBuffer {
    inputs: Vec<LinkId>,
    mem_req: LinkId,
    mem_resp: LinkId,
    /// Signal links and how many signals each still owes.
    signals: Vec<(LinkId, u64)>,
    outstanding: u64,
    /// Writes in flight: (id, op, start ps, the tile in functional runs).
    in_flight: VecDeque<(u64, u32, u64, Option<Box<Tile>>)>,
    next_id: u64,
    writes: u64,
    bytes_written: u64,
    logs: OpLogs,
    /// Functional runs: commits a tile to the memory image when its write completes.
    functional: Option<crate::functional::Shared>,
}

impl OutBuffer {
    fn step(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        while let Some(Transaction::MemResp(r)) = ctx.try_recv(self.mem_resp) {
            if let Some(pos) = self.in_flight.iter().position(|w| w.0 == r.id)
                && let Some((_, op, start, tile)) = self.in_flight.remove(pos)
            {
                self.logs.work(op, start, now, 0);
                if let (Some(f), Some(t)) = (&self.functional, tile) {
                    crate::functional::lock(f).commit(&t);
                }
            }
            self.writes += 1;
            for s in &mut self.signals {
                s.1 += 1;
            }
        }
        for s in &mut self.signals {
            while s.1 > 0 {
                if ctx
                    .try_send(s.0, Transaction::Signal(Signal { op: 0 }))
                    .is_err()
                {
                    break;
                }
                s.1 -= 1;
            }
        }
        'take: while (self.in_flight.len() as u64) < self.outstanding {
            if !ctx.can_send(self.mem_req) {
                break;
            }
            for i in 0..self.inputs.len() {
                if let Some(Transaction::Tile(t)) = ctx.try_recv(self.inputs[i]) {
                    let addr = match t.dest {
                        Dest::Dram { addr } => addr,
                        Dest::OnChip => 0,
                    };
                    let bytes = u64::from(t.elems) * u64::from(t.elem_bytes);
                    let req = MemReq {
                        id: self.next_id,
                        addr,
                        bytes,
                        write: true,
                        prefetch: false,
                    };
                    if ctx
                        .try_send(self.mem_req, Transaction::MemReq(Box::new(req)))
                        .is_err()
                    {
                        break 'take;
                    }
                    let kept = self.functional.is_some().then(|| t.clone());
                    self.in_flight.push_back((self.next_id, t.op, now, kept));
                    self.logs.dram_bytes(t.op, bytes);
                    // Staged in the output buffer's SRAM: written, then read out.
                    self.logs.sram(t.op, bytes, bytes);
                    self.next_id += 1;
                    self.bytes_written += bytes;
                    continue 'take;
                }
            }
            break;
        }
    }
}

impl Actor<Transaction> for OutBuffer {
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
        let owed: u64 = self.signals.iter().map(|s| s.1).sum();
        (!self.in_flight.is_empty() || owed > 0).then(|| {
            format!(
                "{} writes in flight, {owed} signals undelivered",
                self.in_flight.len()
            )
        })
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("writes", StatValue::U64(self.writes)),
            ("bytes_written", StatValue::U64(self.bytes_written)),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Accounted for OutBuffer {
    fn op_logs(&self) -> &OpLogs {
        &self.logs
    }
}
