//! `controller`: walks the workload and drives the engine.
//!
//! At build time it plans the whole run with [`super::plan`] from the workload and the
//! parameters of the modules it is wired to (the PE array behind `pe_cmd`, the buffers
//! behind `wb_cmd` and `ab_cmd`): tiles, loop orders, placements, dependencies. A pattern
//! whose M the PE array does not support, or a buffer too small for one tile, is an input
//! error then (exit code 2), before anything runs.
//!
//! # Ports
//! `wb_cmd`, `ab_cmd` (fetch, out) and `pe_cmd` (pass, out).
//!
//! # Timing
//! Commands cost no time: the controller streams them as fast as the links accept, so the
//! buffers prefetch the next tiles while the PE array computes (bounded by their two
//! banks), and each module keeps its commands in order. Dependencies between operations
//! are carried by the commands (a fetch waits for on-chip tiles or DRAM writes).
//!
//! # Parameters
//! none; the workload comes from the topology's `workload:` block or the command line.

use std::collections::VecDeque;

use super::pe_array::Engine;
use super::plan::{self, Hardware};
use crate::component::{BuildArgs, Dir, ModuleSpec, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, Stat, StatValue};
use crate::txn::{Fetch, Pass, Transaction, TxnType};
use crate::workload::Op;

const fn port(name: &'static str, txn: TxnType, doc: &'static str) -> PortSpec {
    PortSpec {
        name,
        dir: Dir::Out,
        txn,
        optional: false,
        doc,
    }
}

/// The `controller` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "controller",
    summary: "tiles the workload to the buffers, streams fetches and passes, keeps dependencies",
    ports: &[
        port("wb_cmd", TxnType::Fetch, "weight-buffer fetches"),
        port("ab_cmd", TxnType::Fetch, "activation-buffer fetches"),
        port("pe_cmd", TxnType::Pass, "PE-array passes"),
    ],
    params: &[],
    build,
    fixed_clock: None,
};

fn peer_params<'a>(
    args: &'a BuildArgs<'_>,
    port: &str,
    kind: &str,
) -> Result<&'a crate::component::Params, String> {
    match args.peer(port) {
        Some((spec, params)) if spec.kind == kind => Ok(params),
        Some((spec, _)) => Err(format!(
            "`{port}` must connect to a `{kind}`, not a `{}`",
            spec.kind
        )),
        None => Err(format!("`{port}` is not connected")),
    }
}

/// The hardware a controller plans for, read from its peers.
pub fn hardware(args: &BuildArgs<'_>) -> Result<Hardware, String> {
    Ok(Hardware {
        engine: Engine::from_params(peer_params(args, "pe_cmd", "pe_array")?)?,
        wb_bank_bytes: peer_params(args, "wb_cmd", "weight_buffer")?.u64("bank_bytes")?,
        ab_bank_bytes: peer_params(args, "ab_cmd", "act_buffer")?.u64("bank_bytes")?,
    })
}

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let w = args
        .workload
        .ok_or("a controller needs a workload (`stasim run`, or a `workload:` block)")?;
    w.validate()?;
    let hw = hardware(args)?;
    let plan = plan::plan(w, &hw)?;
    // The command streams move into the queues (no second copy of a large plan).
    Ok(Box::new(Controller {
        wb_cmd: args.port("wb_cmd")?,
        ab_cmd: args.port("ab_cmd")?,
        pe_cmd: args.port("pe_cmd")?,
        passes: plan.pe.len() as u64,
        wb: plan.wb.into(),
        ab: plan.ab.into(),
        pe: plan.pe.into(),
        ops: plan.ops,
        weight_bytes: plan.weight_bytes,
        footprint_bytes: plan.footprint_bytes,
    }))
}

/// Sends queued commands on `link` until it is full (the controller resumes on
/// `on_writable`).
fn send_all<T: Copy>(
    ctx: &mut Ctx<'_, Transaction>,
    link: LinkId,
    queue: &mut VecDeque<T>,
    wrap: fn(T) -> Transaction,
) {
    while let Some(&c) = queue.front() {
        if ctx.try_send(link, wrap(c)).is_err() {
            return;
        }
        queue.pop_front();
    }
}

/// State of a `controller` instance.
pub struct Controller {
    wb_cmd: LinkId,
    ab_cmd: LinkId,
    pe_cmd: LinkId,
    wb: VecDeque<Fetch>,
    ab: VecDeque<Fetch>,
    pe: VecDeque<Pass>,
    ops: Vec<Op>,
    weight_bytes: u64,
    footprint_bytes: u64,
    passes: u64,
}

impl Controller {
    fn pump(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        send_all(ctx, self.wb_cmd, &mut self.wb, |f| {
            Transaction::Fetch(Box::new(f))
        });
        send_all(ctx, self.ab_cmd, &mut self.ab, |f| {
            Transaction::Fetch(Box::new(f))
        });
        send_all(ctx, self.pe_cmd, &mut self.pe, |p| {
            Transaction::Pass(Box::new(p))
        });
    }

    /// The operations of the run (index = op id).
    pub fn ops(&self) -> &[Op] {
        &self.ops
    }

    /// Compressed weight bytes the plan reads from DRAM.
    pub fn planned_weight_bytes(&self) -> u64 {
        self.weight_bytes
    }

    /// DRAM bytes the plan places tensors in (addresses from 0).
    pub fn planned_footprint_bytes(&self) -> u64 {
        self.footprint_bytes
    }
}

impl Actor<Transaction> for Controller {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.pump(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.pump(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        let left = self.wb.len() + self.ab.len() + self.pe.len();
        (left > 0).then(|| format!("{left} commands not yet issued"))
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("passes", StatValue::U64(self.passes)),
            ("planned_weight_bytes", StatValue::U64(self.weight_bytes)),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
