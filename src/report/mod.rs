//! Reports: numbers from a finished STA run, as JSON, CSV and a terminal summary.
//!
//! Built after the run from the modules' per-op logs and statistics; deterministic (no
//! wall-clock times inside).
//!
//! Per op: `start_cycle` / `end_cycle` are the first and last cycle any module worked on it;
//! `cycles` is the op's share of the total: how far it moved the finish line past the ops
//! before it (`end - max(previous ends)`), so the `cycles` of all ops add up to
//! `total_cycles` even though ops overlap. Stall cycles are the PE array's waits charged to
//! the op (waiting for the softmax's P rows is a softmax stall, as the PE array charges it).

use serde::Serialize;

use crate::energy::{Actions, Breakdown, EnergyTable};
use crate::kernel::{ActorId, SimTime, Simulation, StatValue};
use crate::sta::account::{Accounted, OpLog};
use crate::sta::{
    accumulator::Accumulator, buffer::Buffer, controller::Controller, out_buffer::OutBuffer,
    pe_array::PeArray, softmax::Softmax, vector::VectorUnit,
};
use crate::topology::Topology;
use crate::txn::Transaction;
use crate::workload::{OpKind, Workload};

pub mod plain;
pub mod table;

/// When one module worked on one op.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct UnitSpan {
    /// Module instance name.
    pub module: String,
    /// First cycle.
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
    /// Kind.
    pub kind: OpKind,
    /// Weight pattern as run (`dense` on an engine without sparse support).
    pub pattern: String,
    /// Useful MACs.
    pub macs: u64,
    /// MACs a dense engine needs.
    pub dense_macs: u64,
    /// First cycle of work.
    pub start_cycle: u64,
    /// Last cycle of work.
    pub end_cycle: u64,
    /// First cycle the PE array computed this op (0 for softmax and vector ops).
    pub compute_start_cycle: u64,
    /// Cycle the PE array's last pass of this op ended.
    pub compute_end_cycle: u64,
    /// Share of the total (these add up to `total_cycles`).
    pub cycles: u64,
    /// PE-array (or unit) busy cycles on this op.
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

/// One layer.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LayerReport {
    /// Index.
    pub layer: u64,
    /// First cycle.
    pub start_cycle: u64,
    /// Last cycle.
    pub end_cycle: u64,
    /// Share of the total.
    pub cycles: u64,
    /// Its operations.
    pub ops: Vec<OpReport>,
}

/// DRAM traffic.
#[derive(Clone, Debug, Serialize, PartialEq)]
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

/// Where the PE array's time went, cycles.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StallReport {
    /// Computing.
    pub busy_cycles: u64,
    /// Waiting for DRAM.
    pub dram_cycles: u64,
    /// Waiting for the activation buffer.
    pub buffer_cycles: u64,
    /// Waiting for softmax rows.
    pub softmax_cycles: u64,
    /// Blocked by the accumulator.
    pub downstream_cycles: u64,
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
    /// Energy per module, in topology order (the DRAM module's dynamic energy is its
    /// activates; the bytes it moves are charged to the modules that asked for them).
    pub per_module: Vec<ModuleEnergy>,
}

/// Quantities over time, in equal buckets (at most 400 over the run).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct TimelineReport {
    /// Bucket width, microseconds.
    pub bucket_us: f64,
    /// Useful MACs over `R*C*L*cycles` in each bucket.
    pub pe_utilization: Vec<f64>,
    /// DRAM bytes moved per second in each bucket, GB/s.
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
    /// Useful MACs over `R*C*L*total_cycles`.
    pub pe_utilization: f64,
    /// Dense-equivalent throughput, GMAC/s (`dense_macs / time`).
    pub dense_equivalent_gmacs: f64,
    /// Useful throughput, GMAC/s.
    pub useful_gmacs: f64,
    /// The engine's peak, `R*C*L*f`, GMAC/s.
    pub peak_gmacs: f64,
    /// PE array time split.
    pub pe_time: StallReport,
    /// DRAM.
    pub dram: DramReport,
    /// Compressed layer-weight bytes the plan reads from DRAM (K and V not included).
    pub weight_bytes_planned: u64,
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

/// `f` summed over every op log of `l`.
fn logged(f: &dyn Fn(&OpLog) -> u64, l: &dyn Accounted) -> u64 {
    (0..).map_while(|i| l.op_logs().get(i)).map(f).sum()
}

/// `f` summed over every op log of every module in `logs`.
fn logged_all(f: &dyn Fn(&OpLog) -> u64, logs: &[(String, &dyn Accounted)]) -> u64 {
    logs.iter().map(|(_, l)| logged(f, *l)).sum()
}

/// The energy report of a run whose counted actions are `actions` (over `time_s`; MACs at
/// `value_bits`), with each module's part from its op logs.
fn energy_report(
    topo: &Topology,
    logs: &[(String, &dyn Accounted)],
    actions: Actions,
    time_s: f64,
    dense_macs: u64,
    value_bits: u64,
) -> EnergyReport {
    let t = &topo.energy;
    let (macs, activates) = (actions.macs, actions.activates);
    let dynamic: Breakdown = t.dynamic(&actions, value_bits);
    // The activates are the (first) DRAM's own dynamic energy.
    let dram = topo.modules.iter().position(|m| m.spec.kind == "dram");
    let per_module: Vec<ModuleEnergy> = topo
        .modules
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let requested = logs
                .iter()
                .find(|(n, _)| *n == m.name)
                .map_or(0.0, |(_, l)| {
                    t.dynamic(
                        &Actions {
                            macs: logged(&|e| e.macs, *l),
                            sram_read_bytes: logged(&|e| e.sram_read_bytes, *l),
                            sram_write_bytes: logged(&|e| e.sram_write_bytes, *l),
                            dram_bytes: logged(&|e| e.dram_bytes, *l),
                            activates: 0,
                        },
                        value_bits,
                    )
                    .total_pj()
                });
            let own_activates = if dram == Some(i) {
                activates as f64 * t.dram_activate_pj
            } else {
                0.0
            };
            ModuleEnergy {
                module: m.name.clone(),
                dynamic_pj: requested + own_activates,
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

/// Sums `values` (per bucket of `bucket_ps`) into at most `max` buckets covering `end_ps`;
/// returns the merged bucket width and sums.
fn rebin(values: &[u64], bucket_ps: u64, end_ps: u64, max: usize) -> (u64, Vec<u64>) {
    let n = end_ps.div_ceil(bucket_ps).max(1) as usize;
    let k = n.div_ceil(max).max(1);
    let mut out = vec![0u64; n.div_ceil(k)];
    for (i, v) in values.iter().enumerate().take(n) {
        out[i / k] += v;
    }
    (bucket_ps * k as u64, out)
}

fn find<'a, T: 'static>(
    topo: &Topology,
    sim: &'a Simulation<Transaction>,
    kind: &str,
) -> Option<&'a T> {
    let i = topo.modules.iter().position(|m| m.spec.kind == kind)?;
    sim.actor_any(ActorId(i as u32))?.downcast_ref::<T>()
}

fn stat(
    topo: &Topology,
    sim: &Simulation<Transaction>,
    kind: &str,
    name: &str,
) -> Option<StatValue> {
    let i = topo.modules.iter().position(|m| m.spec.kind == kind)?;
    sim.actor_stats(ActorId(i as u32))
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

fn u64_stat(topo: &Topology, sim: &Simulation<Transaction>, kind: &str, name: &str) -> u64 {
    match stat(topo, sim, kind, name) {
        Some(StatValue::U64(x)) => x,
        _ => 0,
    }
}

/// Builds the report of a finished run.
pub fn build(topo: &Topology, sim: &Simulation<Transaction>, w: &Workload, end: SimTime) -> Report {
    let period = topo.clock.period().as_ps();
    let cyc = |ps: u64| ps.div_ceil(period);
    let total_cycles = cyc(end.as_ps());
    let controller = find::<Controller>(topo, sim, "controller");
    let ops = controller.map(|c| c.ops().to_vec()).unwrap_or_default();
    let pe = find::<PeArray>(topo, sim, "pe_array");
    let softmax = find::<Softmax>(topo, sim, "softmax");
    let vector = find::<VectorUnit>(topo, sim, "vector");
    let name_of = |kind: &str| {
        topo.modules
            .iter()
            .find(|m| m.spec.kind == kind)
            .map_or_else(|| kind.to_owned(), |m| m.name.clone())
    };
    let logs: Vec<(String, &dyn Accounted)> = [
        (
            "weight_buffer",
            find::<Buffer>(topo, sim, "weight_buffer").map(|x| x as &dyn Accounted),
        ),
        (
            "act_buffer",
            find::<Buffer>(topo, sim, "act_buffer").map(|x| x as &dyn Accounted),
        ),
        ("pe_array", pe.map(|x| x as &dyn Accounted)),
        (
            "accumulator",
            find::<Accumulator>(topo, sim, "accumulator").map(|x| x as &dyn Accounted),
        ),
        ("softmax", softmax.map(|x| x as &dyn Accounted)),
        ("vector", vector.map(|x| x as &dyn Accounted)),
        (
            "out_buffer",
            find::<OutBuffer>(topo, sim, "out_buffer").map(|x| x as &dyn Accounted),
        ),
    ]
    .into_iter()
    .filter_map(|(k, l)| l.map(|l| (name_of(k), l)))
    .collect();
    let sparse = pe.is_none_or(|p| p.engine().sparse);
    let mut pe_time = StallReport::default();
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
                let first = e.first_ps?;
                Some(UnitSpan {
                    module: name.clone(),
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
            .filter_map(|l| l.first_ps)
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
        let pel = pe
            .and_then(|p| p.op_logs().get(i))
            .cloned()
            .unwrap_or_default();
        let own = match op.kind {
            OpKind::Softmax => softmax
                .and_then(|s| s.op_logs().get(i))
                .map_or(0, |l| l.busy_ps),
            OpKind::Vector => vector
                .and_then(|s| s.op_logs().get(i))
                .map_or(0, |l| l.busy_ps),
            _ => pel.busy_ps,
        };
        let r = OpReport {
            layer: op.layer,
            name: op.name.to_owned(),
            kind: op.kind,
            pattern: if sparse {
                op.pattern.to_string()
            } else {
                "dense".into()
            },
            macs: op.macs,
            dense_macs: op.dense_macs,
            start_cycle: start_ps / period,
            end_cycle: cyc(end_ps),
            compute_start_cycle: pel.first_ps.unwrap_or(0) / period,
            compute_end_cycle: cyc(pel.last_ps),
            cycles: 0,
            busy_cycles: cyc(own),
            stall_dram_cycles: cyc(pel.stall_dram_ps),
            stall_buffer_cycles: cyc(pel.stall_buffer_ps),
            stall_softmax_cycles: cyc(pel.stall_softmax_ps),
            stall_downstream_cycles: cyc(pel.stall_downstream_ps),
            dram_bytes,
            units,
            energy_pj,
        };
        pe_time.busy_cycles += cyc(pel.busy_ps);
        pe_time.dram_cycles += r.stall_dram_cycles;
        pe_time.buffer_cycles += r.stall_buffer_cycles;
        pe_time.softmax_cycles += r.stall_softmax_cycles;
        pe_time.downstream_cycles += r.stall_downstream_cycles;
        if layers.last().is_none_or(|l| l.layer != op.layer) {
            layers.push(LayerReport {
                layer: op.layer,
                start_cycle: r.start_cycle,
                end_cycle: r.end_cycle,
                cycles: 0,
                ops: Vec::new(),
            });
        }
        if let Some(l) = layers.last_mut() {
            l.start_cycle = l.start_cycle.min(r.start_cycle);
            l.end_cycle = l.end_cycle.max(r.end_cycle);
            let mut r = r;
            // Shares in whole cycles that still add up: cumulative rounding.
            r.cycles = cyc(finish_ps) - cyc(finish_ps - share_ps);
            l.cycles += r.cycles;
            l.ops.push(r);
        }
    }
    // The run may end after the last op's work (a final write completing): give the rest
    // to the last op so the shares add up to the total.
    let accounted: u64 = layers.iter().map(|l| l.cycles).sum();
    if let Some(l) = layers.last_mut()
        && let Some(o) = l.ops.last_mut()
        && total_cycles > accounted
    {
        o.cycles += total_cycles - accounted;
        l.cycles += total_cycles - accounted;
    }
    let macs: u64 = ops.iter().map(|o| o.macs).sum();
    let dense_macs: u64 = ops.iter().map(|o| o.dense_macs).sum();
    let multipliers = pe.map_or(1, |p| {
        let e = p.engine();
        e.rows * e.cols * e.multipliers
    });
    let time_s = end.as_ps() as f64 * 1e-12;
    let bytes_read = u64_stat(topo, sim, "dram", "bytes_read");
    let bytes_written = u64_stat(topo, sim, "dram", "bytes_written");
    let peak = match stat(topo, sim, "dram", "peak_gbps") {
        Some(StatValue::F64(x)) => x,
        _ => 0.0,
    };
    let per_s = |x: f64| if time_s > 0.0 { x / time_s } else { 0.0 };
    let actions = Actions {
        macs,
        sram_read_bytes: logged_all(&|e| e.sram_read_bytes, &logs),
        sram_write_bytes: logged_all(&|e| e.sram_write_bytes, &logs),
        dram_bytes: bytes_read + bytes_written,
        activates: u64_stat(topo, sim, "dram", "activates"),
    };
    let energy = energy_report(topo, &logs, actions, time_s, dense_macs, w.value_bits);
    let mut timeline = TimelineReport::default();
    if let Some(p) = pe {
        let t = p.macs_timeline();
        let (w, sums) = rebin(t.values(), t.bucket_ps(), end.as_ps(), 400);
        let cycles = w as f64 / period as f64;
        timeline.bucket_us = w as f64 / 1e6;
        timeline.pe_utilization = sums
            .iter()
            .map(|&m| m as f64 / (multipliers as f64 * cycles))
            .collect();
    }
    if let Some(d) = find::<crate::sta::dram::Dram>(topo, sim, "dram") {
        let t = d.bytes_timeline();
        let (w, sums) = rebin(t.values(), t.bucket_ps(), end.as_ps(), 400);
        timeline.bucket_us = w as f64 / 1e6;
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
        pe_utilization: if total_cycles == 0 {
            0.0
        } else {
            macs as f64 / (multipliers * total_cycles) as f64
        },
        dense_equivalent_gmacs: per_s(dense_macs as f64) / 1e9,
        useful_gmacs: per_s(macs as f64) / 1e9,
        peak_gmacs: multipliers as f64 * topo.clock.mhz() / 1e3,
        pe_time,
        dram: DramReport {
            bytes_read,
            bytes_written,
            avg_gbps: per_s((bytes_read + bytes_written) as f64) / 1e9,
            peak_gbps: peak,
            row_hits: u64_stat(topo, sim, "dram", "row_hits"),
            activates: u64_stat(topo, sim, "dram", "activates"),
            refreshes: u64_stat(topo, sim, "dram", "refreshes"),
        },
        energy,
        timeline,
        weight_bytes_planned: controller.map_or(0, |c| c.planned_weight_bytes()),
        layers,
        functional: None,
    }
}
