//! Reports: numbers from a finished STA run, as JSON, CSV and a terminal summary.
//!
//! Built after the run from the modules' per-op logs and statistics; deterministic (no
//! wall-clock times inside). Every module instance is read: a design with two DRAMs or two
//! PE arrays reports each (`drams`, `pe_arrays`) and sums them in the totals.
//!
//! Cycles are cycles of the report clock (the topology's `clock_mhz`); a module on another
//! clock is measured in picoseconds and converted.
//!
//! # Three times per op
//! - `span_cycles` = `end_cycle - start_cycle`: from the first cycle any module worked on the
//!   op (or held it waiting for its inputs: a PE-array pass in hand waiting for operands) to
//!   the last cycle any module worked on it. Ops overlap, so spans add up to more than the
//!   run.
//! - `pe_cycles`: the PE-array cycles charged to the op: cycles computing its passes
//!   (`busy_cycles` for a matmul) plus the cycles the array waited with one of its passes in
//!   hand (`stall_dram_cycles + stall_buffer_cycles + stall_softmax_cycles +
//!   stall_downstream_cycles`). 0 for softmax and vector ops, which the array does not run.
//!   Over all ops, `pe_cycles` plus the array's idle cycles is `total_cycles` exactly (with
//!   one PE array), and on a design with one PE array `span_cycles >= pe_cycles`.
//! - `critical_cycles`: how far the op moved the finish line past the ops before it,
//!   `end - max(ends of earlier ops)` (0 for an op that ends inside an earlier one); these
//!   add up to `total_cycles` exactly (the run's tail after the last op's work goes to the
//!   last op).
//!
//! # Where the PE array's time went
//! Every picosecond of the run is in exactly one state of each PE array (see
//! [`crate::sta::account::EngineState`]): computing (a pass of some op), waiting for DRAM
//! (the weight operand), for a buffer (an activation operand), for the softmax (the P rows
//! of `pv`), for the accumulator (a finished tile cannot leave), or idle (no pass issued).
//! Waits are charged to the op of the pass that waited. The states are converted to cycles
//! by cumulative rounding in a fixed order (for each op in order: computing, the four waits;
//! then idle): a state gets `ceil(S_after / P) - ceil(S_before / P)` cycles, where `S_before`,
//! `S_after` are the picoseconds of all states before it and including it and `P` the
//! clock period, so the states of one array add up to `ceil(end / P) = total_cycles`
//! exactly; each differs from its own time rounded up by less than a cycle (none at all for
//! an array on the report clock, whose passes start and end on its edges).

use std::any::Any;

use serde::Serialize;

use crate::energy::{Actions, Breakdown, EnergyTable};
use crate::kernel::{Actor, ActorId, SimTime, Simulation, Stat, StatValue};
use crate::sta::account::{Accounted, OpLog, Timeline};
use crate::sta::{
    accumulator::Accumulator, buffer::Buffer, controller::Controller, dram::Dram,
    out_buffer::OutBuffer, pe_array::PeArray, softmax::Softmax, vector::VectorUnit,
};
use crate::topology::{ModuleInst, Topology};
use crate::txn::Transaction;
use crate::workload::{OpKind, Workload};

pub mod generation;
pub mod plain;
pub mod table;

/// When one module worked on one op.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UnitSpan {
    /// Module instance name.
    pub module: String,
    /// First cycle it worked on the op or held it waiting.
    pub start_cycle: u64,
    /// Last cycle.
    pub end_cycle: u64,
    /// Busy cycles.
    pub busy_cycles: u64,
}

/// One operation's numbers.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OpReport {
    /// Layer.
    pub layer: u64,
    /// Name (`qkv`, `scores`, `softmax`, `pv`, `proj`, `add_ln1`, `ffn1`, `gelu`, `ffn2`, `add_ln2`).
    pub name: String,
    /// What it computes, from the model IR (`{"role": "linear", "class": "qkv"}`,
    /// `{"role": "scores"}`, `{"role": "vector", "op": "gelu"}`, ...).
    pub role: crate::model::Role,
    /// Kind.
    pub kind: OpKind,
    /// Weight pattern as run (`dense` on an engine without sparse support).
    pub pattern: String,
    /// Useful MACs.
    pub macs: u64,
    /// MACs a dense engine needs.
    pub dense_macs: u64,
    /// First cycle any module worked on the op (or held it waiting for its inputs).
    pub start_cycle: u64,
    /// Last cycle of work.
    pub end_cycle: u64,
    /// First cycle the PE array computed this op (0 for softmax and vector ops).
    pub compute_start_cycle: u64,
    /// Cycle the PE array's last pass of this op ended.
    pub compute_end_cycle: u64,
    /// `end_cycle - start_cycle`.
    pub span_cycles: u64,
    /// PE-array cycles charged to the op: its busy cycles plus the waits with its passes
    /// (with one PE array, these and the array's idle cycles add up to `total_cycles`).
    pub pe_cycles: u64,
    /// How far the op moved the finish line past the ops before it (these add up to
    /// `total_cycles`).
    pub critical_cycles: u64,
    /// PE-array busy cycles on this op (the softmax's or vector unit's for those ops).
    pub busy_cycles: u64,
    /// PE array waiting for DRAM (weights).
    pub stall_dram_cycles: u64,
    /// PE array waiting for the activation buffer.
    pub stall_buffer_cycles: u64,
    /// PE array waiting for softmax rows.
    pub stall_softmax_cycles: u64,
    /// PE array blocked by the accumulator.
    pub stall_downstream_cycles: u64,
    /// DRAM bytes moved for this op (loads, writes, softmax round trip).
    pub dram_bytes: u64,
    /// Each module's span on this op.
    pub units: Vec<UnitSpan>,
    /// Dynamic energy of this op's counted actions (MACs, SRAM, DRAM bytes requested), pJ.
    /// The run's total counts the bursts the DRAM moved instead, so a partial-burst write
    /// costs the total a whole burst.
    pub energy_pj: f64,
}

impl OpReport {
    /// The PE-array stall cycles charged to the op.
    pub fn stall_cycles(&self) -> u64 {
        self.stall_dram_cycles
            + self.stall_buffer_cycles
            + self.stall_softmax_cycles
            + self.stall_downstream_cycles
    }

    /// The PE-array cycles spent computing the op (`pe_cycles` less the stalls).
    pub fn pe_busy_cycles(&self) -> u64 {
        self.pe_cycles - self.stall_cycles()
    }
}

/// One layer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LayerReport {
    /// Index.
    pub layer: u64,
    /// First cycle.
    pub start_cycle: u64,
    /// Last cycle.
    pub end_cycle: u64,
    /// Sum of its ops' `critical_cycles` (these add up to `total_cycles`).
    pub critical_cycles: u64,
    /// Its operations.
    pub ops: Vec<OpReport>,
}

/// DRAM traffic.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DramReport {
    /// Bytes read.
    pub bytes_read: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// Average bandwidth over the run, GB/s.
    pub avg_gbps: f64,
    /// Peak bandwidth of the configured DRAM, GB/s.
    pub peak_gbps: f64,
    /// Row hits.
    pub row_hits: u64,
    /// Activates.
    pub activates: u64,
    /// Refreshes.
    pub refreshes: u64,
}

/// One DRAM module's traffic.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DramModuleReport {
    /// Instance name.
    pub module: String,
    /// Its traffic.
    #[serde(flatten)]
    pub traffic: DramReport,
}

/// Where the PE array's time went: every cycle of the run in exactly one state.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StallReport {
    /// What the states add up to: `total_cycles` times the number of PE arrays.
    pub array_cycles: u64,
    /// Computing (the sum of the ops' PE busy cycles).
    pub busy_cycles: u64,
    /// Waiting for DRAM.
    pub dram_cycles: u64,
    /// Waiting for the activation buffer.
    pub buffer_cycles: u64,
    /// Waiting for softmax rows.
    pub softmax_cycles: u64,
    /// Blocked by the accumulator.
    pub downstream_cycles: u64,
    /// Idle: no pass issued.
    pub idle_cycles: u64,
}

impl StallReport {
    fn add(&mut self, o: &StallReport) {
        self.array_cycles += o.array_cycles;
        self.busy_cycles += o.busy_cycles;
        self.dram_cycles += o.dram_cycles;
        self.buffer_cycles += o.buffer_cycles;
        self.softmax_cycles += o.softmax_cycles;
        self.downstream_cycles += o.downstream_cycles;
        self.idle_cycles += o.idle_cycles;
    }

    /// The sum of the states (equal to `array_cycles`).
    pub fn sum_cycles(&self) -> u64 {
        self.busy_cycles
            + self.dram_cycles
            + self.buffer_cycles
            + self.softmax_cycles
            + self.downstream_cycles
            + self.idle_cycles
    }
}

/// One PE array.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PeArrayReport {
    /// Instance name.
    pub module: String,
    /// Useful MACs.
    pub macs: u64,
    /// Passes computed.
    pub passes: u64,
    /// Multipliers, `R*C*L`.
    pub multipliers: u64,
    /// Its clock, MHz.
    pub clock_mhz: f64,
    /// Its peak, `R*C*L*f`, GMAC/s.
    pub peak_gmacs: f64,
    /// Useful MACs over its peak times the run's time.
    pub utilization: f64,
    /// Where its time went.
    pub time: StallReport,
}

/// One module's dynamic energy.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ModuleEnergy {
    /// Instance name.
    pub module: String,
    /// Dynamic energy, pJ.
    pub dynamic_pj: f64,
    /// Static energy of its own `static_mw` over the run, pJ.
    pub static_pj: f64,
}

/// Energy of the run (see [`crate::energy`] for the model and the defaults' sources).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EnergyReport {
    /// The table used.
    pub table: EnergyTable,
    /// Counted actions.
    pub actions: Actions,
    /// Dynamic energy by kind.
    pub dynamic: Breakdown,
    /// Static energy over the run, pJ: the table's `static_mw` and every module's.
    pub static_pj: f64,
    /// Total, microjoules.
    pub total_uj: f64,
    /// Average power, W.
    pub avg_power_w: f64,
    /// Dense-equivalent GOPS/W (2 ops per MAC).
    pub gops_per_w_dense: f64,
    /// Useful GOPS/W.
    pub gops_per_w_useful: f64,
    /// Energy per module, in topology order: a DRAM module's dynamic energy is the bytes it
    /// moved and its activates; every other module's is its MACs and SRAM accesses. The
    /// modules' dynamic energies add up to the run's.
    pub per_module: Vec<ModuleEnergy>,
}

/// Quantities over time, in equal buckets (at most 400 over the run).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TimelineReport {
    /// Bucket width, microseconds.
    pub bucket_us: f64,
    /// Useful MACs over the peak MACs in each bucket (all PE arrays, each at its clock).
    pub pe_utilization: Vec<f64>,
    /// DRAM bytes moved per second in each bucket, GB/s (all DRAMs).
    pub dram_gbps: Vec<f64>,
}

/// The report of one run.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Report {
    /// Topology name.
    pub topology: String,
    /// The workload.
    pub workload: Workload,
    /// Engine clock, MHz.
    pub clock_mhz: f64,
    /// Total latency, cycles of the engine clock.
    pub total_cycles: u64,
    /// Total latency, microseconds.
    pub total_time_us: f64,
    /// Useful MACs.
    pub macs: u64,
    /// MACs a dense engine needs.
    pub dense_macs: u64,
    /// Useful MACs over `R*C*L*total_cycles`, summed over the PE arrays (each at its own
    /// clock: `R*C*L*f*total_cycles/clock_mhz`).
    pub pe_utilization: f64,
    /// Dense-equivalent throughput, GMAC/s (`dense_macs / time`).
    pub dense_equivalent_gmacs: f64,
    /// Useful throughput, GMAC/s.
    pub useful_gmacs: f64,
    /// The engines' peak, `R*C*L*f` summed over the PE arrays, GMAC/s.
    pub peak_gmacs: f64,
    /// Where the PE arrays' time went (summed over the arrays).
    pub pe_time: StallReport,
    /// Each PE array.
    pub pe_arrays: Vec<PeArrayReport>,
    /// DRAM traffic, summed over the DRAM modules (peak: the sum of their peaks).
    pub dram: DramReport,
    /// Each DRAM module.
    pub drams: Vec<DramModuleReport>,
    /// Compressed layer-weight bytes the plan reads from DRAM (K and V not included).
    pub weight_bytes_planned: u64,
    /// Tensors the plan would keep on chip but spilled to DRAM (they do not fit one
    /// activation bank): `layer`, `tensor`, `bytes` (written once and read back).
    pub spills: Vec<crate::plan::Spill>,
    /// Energy, power, efficiency.
    pub energy: EnergyReport,
    /// Utilisation and bandwidth over time.
    pub timeline: TimelineReport,
    /// Layers with their ops.
    pub layers: Vec<LayerReport>,
    /// Functional runs only: errors against the f64 reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub functional: Option<crate::functional::FunctionalReport>,
}

/// The per-op logs of a module, if its kind keeps them (a module kind with per-op logs is
/// listed here once).
fn accounted(a: &dyn Any) -> Option<&dyn Accounted> {
    fn as_acc<T: Accounted + 'static>(a: &dyn Any) -> Option<&dyn Accounted> {
        a.downcast_ref::<T>().map(|x| x as &dyn Accounted)
    }
    as_acc::<Buffer>(a)
        .or_else(|| as_acc::<PeArray>(a))
        .or_else(|| as_acc::<Accumulator>(a))
        .or_else(|| as_acc::<Softmax>(a))
        .or_else(|| as_acc::<VectorUnit>(a))
        .or_else(|| as_acc::<OutBuffer>(a))
}

/// The module instances of a finished run, each found by its type (every instance, not
/// the first of a kind).
struct Instances<'a> {
    topo: &'a Topology,
    sim: &'a Simulation<Transaction>,
}

impl<'a> Instances<'a> {
    /// Every module with its state, in topology order.
    fn all(&self) -> impl Iterator<Item = (&'a ModuleInst, Option<&'a dyn Any>)> + use<'a> {
        let sim = self.sim;
        self.topo
            .modules
            .iter()
            .enumerate()
            .map(move |(i, m)| (m, sim.actor_any(ActorId(i as u32))))
    }

    /// Every instance of `T`, in topology order.
    fn of<T: 'static>(&self) -> Vec<(&'a ModuleInst, &'a T)> {
        self.all()
            .filter_map(|(m, a)| Some((m, a?.downcast_ref::<T>()?)))
            .collect()
    }

    /// Every module that keeps per-op logs, in topology order, with its name.
    fn accounted(&self) -> Vec<(&'a str, &'a dyn Accounted)> {
        self.all()
            .filter_map(|(m, a)| Some((m.name.as_str(), accounted(a?)?)))
            .collect()
    }
}

/// `f` summed over every op log of `l`.
fn logged(f: &dyn Fn(&OpLog) -> u64, l: &dyn Accounted) -> u64 {
    (0..).map_while(|i| l.op_logs().get(i)).map(f).sum()
}

/// A statistic of a module, as an integer (0 if absent).
fn stat_u64(stats: &[Stat], name: &str) -> u64 {
    match stats.iter().find(|(n, _)| *n == name) {
        Some((_, StatValue::U64(x))) => *x,
        _ => 0,
    }
}

/// A statistic of a module, as a real (0 if absent).
fn stat_f64(stats: &[Stat], name: &str) -> f64 {
    match stats.iter().find(|(n, _)| *n == name) {
        Some((_, StatValue::F64(x))) => *x,
        _ => 0.0,
    }
}

/// The traffic of one DRAM module over `time_s`.
fn dram_traffic(d: &Dram, time_s: f64) -> DramReport {
    let s = d.stats();
    let (read, written) = (stat_u64(&s, "bytes_read"), stat_u64(&s, "bytes_written"));
    DramReport {
        bytes_read: read,
        bytes_written: written,
        avg_gbps: per_s((read + written) as f64, time_s) / 1e9,
        peak_gbps: stat_f64(&s, "peak_gbps"),
        row_hits: stat_u64(&s, "row_hits"),
        activates: stat_u64(&s, "activates"),
        refreshes: stat_u64(&s, "refreshes"),
    }
}

/// `macs` over the MACs PE arrays of `(R*C*L, clock period ps)` could retire in `ps`
/// picoseconds (0 for an empty run or no engine).
fn utilization(macs: u64, pes: &[(u64, u64)], ps: u64) -> f64 {
    let peak: f64 = pes
        .iter()
        .map(|&(multipliers, period_ps)| multipliers as f64 * (ps as f64 / period_ps as f64))
        .sum();
    if peak > 0.0 { macs as f64 / peak } else { 0.0 }
}

/// `x` per second over `time_s` (0 for an empty run).
fn per_s(x: f64, time_s: f64) -> f64 {
    if time_s > 0.0 { x / time_s } else { 0.0 }
}

/// The energy report of a run whose counted actions are `actions` (over `time_s`; MACs at
/// `value_bits`), with each module's part from its op logs (a DRAM's from its traffic).
fn energy_report(
    topo: &Topology,
    mods: &Instances<'_>,
    actions: Actions,
    time_s: f64,
    dense_macs: u64,
    value_bits: u64,
) -> EnergyReport {
    let t = &topo.energy;
    let macs = actions.macs;
    let dynamic: Breakdown = t.dynamic(&actions, value_bits);
    let per_module: Vec<ModuleEnergy> = mods
        .all()
        .map(|(m, any)| {
            let own = if let Some(l) = any.and_then(accounted) {
                Actions {
                    macs: logged(&|e| e.macs, l),
                    sram_read_bytes: logged(&|e| e.sram_read_bytes, l),
                    sram_write_bytes: logged(&|e| e.sram_write_bytes, l),
                    ..Actions::default()
                }
            } else if let Some(d) = any.and_then(|a| a.downcast_ref::<Dram>()) {
                let traffic = dram_traffic(d, time_s);
                Actions {
                    dram_bytes: traffic.bytes_read + traffic.bytes_written,
                    activates: traffic.activates,
                    ..Actions::default()
                }
            } else {
                Actions::default()
            };
            ModuleEnergy {
                module: m.name.clone(),
                dynamic_pj: t.dynamic(&own, value_bits).total_pj(),
                static_pj: crate::energy::static_pj(m.static_mw, time_s),
            }
        })
        .collect();
    let static_pj = t.static_pj(time_s) + per_module.iter().map(|m| m.static_pj).sum::<f64>();
    let total_pj = dynamic.total_pj() + static_pj;
    let joules = total_pj * 1e-12;
    let gops_per_w = |m: u64| {
        if joules > 0.0 {
            2.0 * m as f64 / 1e9 / joules
        } else {
            0.0
        }
    };
    EnergyReport {
        table: t.clone(),
        actions,
        dynamic,
        static_pj,
        total_uj: total_pj * 1e-6,
        avg_power_w: if time_s > 0.0 { joules / time_s } else { 0.0 },
        gops_per_w_dense: gops_per_w(dense_macs),
        gops_per_w_useful: gops_per_w(macs),
        per_module,
    }
}

/// Sums `timelines` into at most `max` equal buckets covering `end_ps`; returns the bucket
/// width and the sums. The width is a whole number of the widest timeline's buckets, so
/// every source bucket falls into one output bucket.
fn summed_timeline(timelines: &[&Timeline], end_ps: u64, max: usize) -> (u64, Vec<u64>) {
    let base = timelines
        .iter()
        .map(|t| t.bucket_ps())
        .max()
        .unwrap_or(crate::sta::account::TIMELINE_BUCKET_PS);
    let n = end_ps.div_ceil(base).max(1);
    let k = n.div_ceil(max as u64).max(1);
    let width = base * k;
    let mut out = vec![0u64; n.div_ceil(k) as usize];
    let last = out.len() - 1;
    for t in timelines {
        for (i, v) in t.values().iter().enumerate() {
            let at = (i as u64).saturating_mul(t.bucket_ps()) / width;
            out[(at as usize).min(last)] += v;
        }
    }
    (width, out)
}

/// Whole cycles of consecutive stretches that add up exactly: a stretch gets
/// `ceil(after / period) - ceil(before / period)` of the running sum.
struct Rounding {
    period_ps: u64,
    sum_ps: u64,
}

impl Rounding {
    fn take(&mut self, ps: u64) -> u64 {
        let before = self.sum_ps.div_ceil(self.period_ps);
        self.sum_ps += ps;
        self.sum_ps.div_ceil(self.period_ps) - before
    }
}

/// A PE array's cycles charged to each op (`[busy, dram, buffer, softmax, downstream]`)
/// and its time split, over `n_ops` ops and a run ending at `end_ps`.
fn pe_cycles(
    pe: &PeArray,
    n_ops: usize,
    period_ps: u64,
    end_ps: u64,
) -> (Vec<[u64; 5]>, StallReport) {
    let mut r = Rounding {
        period_ps,
        sum_ps: 0,
    };
    let mut time = StallReport::default();
    let per_op: Vec<[u64; 5]> = (0..n_ops)
        .map(|i| {
            let l = pe.op_logs().get(i as u32).cloned().unwrap_or_default();
            let c = [
                r.take(l.busy_ps),
                r.take(l.stall_dram_ps),
                r.take(l.stall_buffer_ps),
                r.take(l.stall_softmax_ps),
                r.take(l.stall_downstream_ps),
            ];
            time.busy_cycles += c[0];
            time.dram_cycles += c[1];
            time.buffer_cycles += c[2];
            time.softmax_cycles += c[3];
            time.downstream_cycles += c[4];
            c
        })
        .collect();
    debug_assert_eq!(
        pe.engine_clock().computing_ps(end_ps),
        logged(&|e| e.busy_ps, pe),
        "the PE array's computing time is its passes' time"
    );
    time.idle_cycles = r.take(pe.engine_clock().idle_ps(end_ps));
    debug_assert_eq!(r.sum_ps, end_ps, "the PE array's states tile the run");
    time.array_cycles = end_ps.div_ceil(period_ps);
    (per_op, time)
}

/// Builds the report of a finished run.
pub fn build(topo: &Topology, sim: &Simulation<Transaction>, w: &Workload, end: SimTime) -> Report {
    let period = topo.clock.period().as_ps();
    let cyc = |ps: u64| ps.div_ceil(period);
    let total_cycles = cyc(end.as_ps());
    let time_s = end.as_ps() as f64 * 1e-12;
    let mods = Instances { topo, sim };
    let controller = mods.of::<Controller>().first().map(|c| c.1);
    let ops = controller.map(|c| c.ops().to_vec()).unwrap_or_default();
    let pes = mods.of::<PeArray>();
    let logs = mods.accounted();
    // Each op kind's own busy time: the modules that compute it.
    let unit_busy = |kind: OpKind, i: u32| -> u64 {
        let busy = |l: &dyn Accounted| l.op_logs().get(i).map_or(0, |e| e.busy_ps);
        match kind {
            OpKind::Softmax => mods.of::<Softmax>().iter().map(|s| busy(s.1)).sum(),
            OpKind::Vector => mods.of::<VectorUnit>().iter().map(|s| busy(s.1)).sum(),
            _ => 0,
        }
    };
    let sparse = pes.iter().all(|p| p.1.engine().sparse);
    let mut pe_time = StallReport::default();
    let mut pe_arrays = Vec::new();
    // Each array's `(R*C*L, clock period ps)`.
    let mut engines: Vec<(u64, u64)> = Vec::new();
    let mut charged = vec![[0u64; 5]; ops.len()];
    for (m, p) in &pes {
        let (per_op, time) = pe_cycles(p, ops.len(), period, end.as_ps());
        for (sum, c) in charged.iter_mut().zip(&per_op) {
            for (s, x) in sum.iter_mut().zip(c) {
                *s += x;
            }
        }
        let e = p.engine();
        let multipliers = e.rows * e.cols * e.multipliers;
        let macs = logged(&|l| l.macs, *p);
        let peak_gmacs = multipliers as f64 * m.clock.mhz() / 1e3;
        let engine = (multipliers, m.clock.period().as_ps());
        pe_arrays.push(PeArrayReport {
            module: m.name.clone(),
            macs,
            passes: stat_u64(&p.stats(), "passes"),
            multipliers,
            clock_mhz: m.clock.mhz(),
            peak_gmacs,
            // Over whole cycles of its clock, as `total_cycles` counts the report clock's.
            utilization: utilization(macs, &[engine], end.as_ps().div_ceil(engine.1) * engine.1),
            time: time.clone(),
        });
        engines.push(engine);
        pe_time.add(&time);
    }
    let mut layers: Vec<LayerReport> = Vec::new();
    let mut finish_ps = 0u64;
    for (i, op) in ops.iter().enumerate() {
        let i = i as u32;
        let entries: Vec<&OpLog> = logs
            .iter()
            .filter_map(|(_, l)| l.op_logs().get(i))
            .collect();
        let units: Vec<UnitSpan> = logs
            .iter()
            .filter_map(|(name, l)| {
                let e = l.op_logs().get(i)?;
                let first = e.first_seen_ps()?;
                Some(UnitSpan {
                    module: (*name).to_owned(),
                    start_cycle: first / period,
                    end_cycle: cyc(e.last_ps),
                    busy_cycles: cyc(e.busy_ps),
                })
            })
            .collect();
        let dram_bytes = entries.iter().map(|e| e.dram_bytes).sum();
        let energy_pj = topo
            .energy
            .dynamic(
                &Actions {
                    macs: op.macs,
                    sram_read_bytes: entries.iter().map(|e| e.sram_read_bytes).sum(),
                    sram_write_bytes: entries.iter().map(|e| e.sram_write_bytes).sum(),
                    dram_bytes,
                    activates: 0,
                },
                w.value_bits,
            )
            .total_pj();
        let start_ps = entries
            .iter()
            .filter_map(|l| l.first_seen_ps())
            .min()
            .unwrap_or(finish_ps);
        let end_ps = entries
            .iter()
            .map(|l| l.last_ps)
            .max()
            .unwrap_or(start_ps)
            .max(start_ps);
        let share_ps = end_ps.saturating_sub(finish_ps);
        finish_ps = finish_ps.max(end_ps);
        let pe_logs: Vec<&OpLog> = pes.iter().filter_map(|p| p.1.op_logs().get(i)).collect();
        let compute_start = pe_logs.iter().filter_map(|l| l.first_ps).min();
        let compute_end = pe_logs.iter().map(|l| l.last_ps).max().unwrap_or(0);
        let c = charged[i as usize];
        let (start_cycle, end_cycle) = (start_ps / period, cyc(end_ps));
        let r = OpReport {
            layer: op.layer,
            name: op.name.to_owned(),
            role: op.role,
            kind: op.kind,
            pattern: if sparse {
                op.pattern.to_string()
            } else {
                "dense".into()
            },
            macs: op.macs,
            dense_macs: op.dense_macs,
            start_cycle,
            end_cycle,
            compute_start_cycle: compute_start.unwrap_or(0) / period,
            compute_end_cycle: cyc(compute_end),
            span_cycles: end_cycle - start_cycle,
            pe_cycles: c.iter().sum(),
            // Shares in whole cycles that still add up: cumulative rounding.
            critical_cycles: cyc(finish_ps) - cyc(finish_ps - share_ps),
            busy_cycles: match op.kind {
                OpKind::Softmax | OpKind::Vector => cyc(unit_busy(op.kind, i)),
                _ => c[0],
            },
            stall_dram_cycles: c[1],
            stall_buffer_cycles: c[2],
            stall_softmax_cycles: c[3],
            stall_downstream_cycles: c[4],
            dram_bytes,
            units,
            energy_pj,
        };
        if layers.last().is_none_or(|l| l.layer != op.layer) {
            layers.push(LayerReport {
                layer: op.layer,
                start_cycle: r.start_cycle,
                end_cycle: r.end_cycle,
                critical_cycles: 0,
                ops: Vec::new(),
            });
        }
        if let Some(l) = layers.last_mut() {
            l.start_cycle = l.start_cycle.min(r.start_cycle);
            l.end_cycle = l.end_cycle.max(r.end_cycle);
            l.critical_cycles += r.critical_cycles;
            l.ops.push(r);
        }
    }
    // The run may end after the last op's work (a final write completing): give the rest
    // to the last op so the shares add up to the total.
    let accounted: u64 = layers.iter().map(|l| l.critical_cycles).sum();
    if let Some(l) = layers.last_mut()
        && let Some(o) = l.ops.last_mut()
        && total_cycles > accounted
    {
        o.critical_cycles += total_cycles - accounted;
        l.critical_cycles += total_cycles - accounted;
    }
    let macs: u64 = ops.iter().map(|o| o.macs).sum();
    let dense_macs: u64 = ops.iter().map(|o| o.dense_macs).sum();
    let peak_gmacs: f64 = pe_arrays.iter().map(|p| p.peak_gmacs).sum();
    let drams: Vec<DramModuleReport> = mods
        .of::<Dram>()
        .into_iter()
        .map(|(m, d)| DramModuleReport {
            module: m.name.clone(),
            traffic: dram_traffic(d, time_s),
        })
        .collect();
    let mut dram = DramReport::default();
    for d in &drams {
        let t = &d.traffic;
        dram.bytes_read += t.bytes_read;
        dram.bytes_written += t.bytes_written;
        dram.peak_gbps += t.peak_gbps;
        dram.row_hits += t.row_hits;
        dram.activates += t.activates;
        dram.refreshes += t.refreshes;
    }
    dram.avg_gbps = per_s((dram.bytes_read + dram.bytes_written) as f64, time_s) / 1e9;
    let actions = Actions {
        macs,
        sram_read_bytes: logs
            .iter()
            .map(|l| logged(&|e| e.sram_read_bytes, l.1))
            .sum(),
        sram_write_bytes: logs
            .iter()
            .map(|l| logged(&|e| e.sram_write_bytes, l.1))
            .sum(),
        dram_bytes: dram.bytes_read + dram.bytes_written,
        activates: dram.activates,
    };
    let energy = energy_report(topo, &mods, actions, time_s, dense_macs, w.value_bits);
    let mac_timelines: Vec<&Timeline> = pes.iter().map(|p| p.1.macs_timeline()).collect();
    let byte_timelines: Vec<&Timeline> = mods
        .of::<Dram>()
        .iter()
        .map(|d| d.1.bytes_timeline())
        .collect();
    let all: Vec<&Timeline> = mac_timelines
        .iter()
        .chain(&byte_timelines)
        .copied()
        .collect();
    let (width, _) = summed_timeline(&all, end.as_ps(), 400);
    let mut timeline = TimelineReport::default();
    if !all.is_empty() {
        timeline.bucket_us = width as f64 / 1e6;
    }
    if !pes.is_empty() {
        let (w, sums) = summed_timeline(&mac_timelines, end.as_ps(), 400);
        debug_assert_eq!(w, width);
        timeline.pe_utilization = sums.iter().map(|&m| utilization(m, &engines, w)).collect();
    }
    if !byte_timelines.is_empty() {
        let (w, sums) = summed_timeline(&byte_timelines, end.as_ps(), 400);
        timeline.dram_gbps = sums
            .iter()
            .map(|&b| b as f64 / (w as f64 * 1e-12) / 1e9)
            .collect();
    }
    Report {
        topology: topo.name.clone(),
        workload: w.clone(),
        clock_mhz: topo.clock.mhz(),
        total_cycles,
        total_time_us: end.as_us_f64(),
        macs,
        dense_macs,
        pe_utilization: utilization(macs, &engines, total_cycles * period),
        dense_equivalent_gmacs: per_s(dense_macs as f64, time_s) / 1e9,
        useful_gmacs: per_s(macs as f64, time_s) / 1e9,
        peak_gmacs,
        pe_time,
        pe_arrays,
        dram,
        drams,
        energy,
        timeline,
        weight_bytes_planned: controller.map_or(0, |c| c.planned_weight_bytes()),
        spills: controller.map_or_else(Vec::new, |c| c.spills().to_vec()),
        layers,
        functional: None,
    }
}
