//! `controller`: walks the workload and drives the engine.
//!
//! At build time it plans the run with [`crate::plan`] from the workload and the
//! parameters of the modules it is wired to (the PE array behind `pe_cmd`, the buffers
//! behind `wb_cmd` and `ab_cmd`, the accumulator behind the PE array's `psum`): placements,
//! jobs, tilings, dependencies. A pattern whose M the PE array does not support, or a design
//! too small for one tile, is an input error then (exit code 2), before anything runs. The
//! commands themselves are made one job at a time while the run goes (a streaming plan), so
//! the controller holds at most a job or two of commands.
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
use crate::component::{BuildArgs, Dir, ModuleSpec, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, Stat, StatValue};
use crate::plan::{self, Hardware, Stream};
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

/// The hardware a controller plans for, read from its peers (and the accumulator behind
/// the PE array; its default storage when the PE array feeds none).
pub fn hardware(args: &BuildArgs<'_>) -> Result<Hardware, String> {
    let psum_bytes = match args.peer_of_peer("pe_cmd", "psum") {
        Some((spec, params)) if spec.kind == "accumulator" => params.u64("psum_bytes")?,
        _ => super::accumulator::DEFAULT_PSUM_BYTES,
    };
    Ok(Hardware {
        engine: Engine::from_params(peer_params(args, "pe_cmd", "pe_array")?)?,
        wb_bank_bytes: peer_params(args, "wb_cmd", "weight_buffer")?.u64("bank_bytes")?,
        ab_bank_bytes: peer_params(args, "ab_cmd", "act_buffer")?.u64("bank_bytes")?,
        psum_bytes,
    })
}

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let w = args
        .workload
        .ok_or("a controller needs a workload (`stasim run`, or a `workload:` block)")?;
    w.validate()?;
    let hw = hardware(args)?;
    let stream = plan::plan(w, &hw)?;
    Ok(Box::new(Controller {
        wb_cmd: args.port("wb_cmd")?,
        ab_cmd: args.port("ab_cmd")?,
        pe_cmd: args.port("pe_cmd")?,
        queues: Queues::default(),
        stream,
    }))
}

/// Commands made but not yet sent.
#[derive(Default)]
struct Queues {
    wb: VecDeque<Fetch>,
    ab: VecDeque<Fetch>,
    pe: VecDeque<Pass>,
}

impl plan::expand::Sink for Queues {
    fn wb(&mut self, f: Fetch) {
        self.wb.push_back(f);
    }
    fn ab(&mut self, f: Fetch) {
        self.ab.push_back(f);
    }
    fn pe(&mut self, p: Pass) {
        self.pe.push_back(p);
    }
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
    queues: Queues,
    stream: Stream,
}

impl Controller {
    /// Sends commands while the links take them, making the next job's commands whenever a
    /// queue runs dry.
    fn pump(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        loop {
            let q = &mut self.queues;
            send_all(ctx, self.wb_cmd, &mut q.wb, |f| {
                Transaction::Fetch(Box::new(f))
            });
            send_all(ctx, self.ab_cmd, &mut q.ab, |f| {
                Transaction::Fetch(Box::new(f))
            });
            send_all(ctx, self.pe_cmd, &mut q.pe, |p| {
                Transaction::Pass(Box::new(p))
            });
            let dry = q.wb.is_empty() || q.ab.is_empty() || q.pe.is_empty();
            if !dry || !self.stream.expand_next(&mut self.queues) {
                return;
            }
        }
    }

    /// The operations of the run (index = op id).
    pub fn ops(&self) -> &[Op] {
        &self.stream.ops
    }

    /// Compressed weight bytes the plan read from DRAM (so far: all of them after the run).
    pub fn planned_weight_bytes(&self) -> u64 {
        self.stream.counters.weight_bytes
    }

    /// Tensors the plan spills to DRAM because they do not fit on chip.
    pub fn spills(&self) -> &[plan::Spill] {
        &self.stream.spills
    }

    /// DRAM bytes the plan places tensors in (addresses from 0).
    pub fn planned_footprint_bytes(&self) -> u64 {
        self.stream.footprint_bytes
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
        let q = &self.queues;
        let left = q.wb.len() + q.ab.len() + q.pe.len();
        let jobs = self.stream.jobs_left();
        (left > 0 || jobs > 0)
            .then(|| format!("{left} commands not yet issued, {jobs} jobs not yet planned"))
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("passes", StatValue::U64(self.stream.counters.passes)),
            (
                "planned_weight_bytes",
                StatValue::U64(self.stream.counters.weight_bytes),
            ),
        ]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}
