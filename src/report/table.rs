//! The report as a terminal summary and as per-op CSV. The three per-op times and the PE
//! array's states are defined in [`super`].

use std::collections::BTreeMap;
use std::fmt::Write;

use super::{Report, StallReport};

/// Columns of the per-op CSV, in order.
pub const CSV_HEADER: &str = "layer,op,kind,pattern,macs,dense_macs,start_cycle,end_cycle,span_cycles,pe_cycles,critical_cycles,busy_cycles,stall_dram_cycles,stall_buffer_cycles,stall_softmax_cycles,stall_downstream_cycles";

/// Per-op CSV.
pub fn csv(r: &Report) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push('\n');
    for l in &r.layers {
        for o in &l.ops {
            let kind = serde_json::to_value(o.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                o.layer,
                o.name,
                kind,
                o.pattern,
                o.macs,
                o.dense_macs,
                o.start_cycle,
                o.end_cycle,
                o.span_cycles,
                o.pe_cycles,
                o.critical_cycles,
                o.busy_cycles,
                o.stall_dram_cycles,
                o.stall_buffer_cycles,
                o.stall_softmax_cycles,
                o.stall_downstream_cycles
            );
        }
    }
    out
}

fn pct(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        100.0 * part as f64 / whole as f64
    }
}

/// One op name's times summed over the layers.
#[derive(Default)]
struct OpTotals {
    span: u64,
    pe: u64,
    pe_busy: u64,
    critical: u64,
    macs: u64,
}

/// Per op (keyed by its place in the layer and its name), summed over the layers.
fn by_op(r: &Report) -> BTreeMap<(usize, &str), OpTotals> {
    let mut by_op: BTreeMap<(usize, &str), OpTotals> = BTreeMap::new();
    for l in &r.layers {
        for (i, o) in l.ops.iter().enumerate() {
            let e = by_op.entry((i, o.name.as_str())).or_default();
            e.span += o.span_cycles;
            e.pe += o.pe_cycles;
            e.pe_busy += o.pe_busy_cycles();
            e.critical += o.critical_cycles;
            e.macs += o.macs;
        }
    }
    by_op
}

/// The wait states with their cycles, in report order.
fn waits(t: &StallReport) -> [(&'static str, u64); 4] {
    [
        ("waiting for DRAM", t.dram_cycles),
        ("waiting for a buffer", t.buffer_cycles),
        ("waiting for the softmax", t.softmax_cycles),
        ("waiting for the accumulator", t.downstream_cycles),
    ]
}

/// One line of PE-array state shares.
fn pe_time_line(s: &mut String, title: &str, t: &StallReport) {
    let waits: Vec<String> = waits(t)
        .iter()
        .map(|(label, c)| format!("{label} {:.1} %", pct(*c, t.array_cycles)))
        .collect();
    let _ = writeln!(
        s,
        "  {title:<18} computing {:.1} %, {}, idle {:.1} %",
        pct(t.busy_cycles, t.array_cycles),
        waits.join(", "),
        pct(t.idle_cycles, t.array_cycles)
    );
}

/// A readable summary.
pub fn summary(r: &Report) -> String {
    let w = &r.workload;
    let mut s = String::new();
    let pattern = w.patterns.to_string();
    let _ = writeln!(
        s,
        "stasim: {} on `{}` — {} layers, {}, batch {}, pattern {}",
        w.model.name,
        r.topology,
        w.layers,
        match w.phase {
            crate::workload::Phase::Prefill => format!("s={}", w.seq),
            crate::workload::Phase::Decode { context } =>
                format!("a decode step at context {context}"),
        },
        w.batch,
        pattern
    );
    let _ = writeln!(
        s,
        "  total latency      {} cycles = {:.3} ms at {:.0} MHz",
        r.total_cycles,
        r.total_time_us / 1000.0,
        r.clock_mhz
    );
    let _ = writeln!(
        s,
        "  MACs               {:.3} G useful, {:.3} G dense-equivalent",
        r.macs as f64 / 1e9,
        r.dense_macs as f64 / 1e9
    );
    let _ = writeln!(
        s,
        "  throughput         {:.1} GMAC/s dense-equivalent, {:.1} GMAC/s useful; PE utilisation {:.1} %",
        r.dense_equivalent_gmacs,
        r.useful_gmacs,
        100.0 * r.pe_utilization
    );
    let _ = writeln!(
        s,
        "  DRAM               {:.2} MB read, {:.2} MB written, {:.2} GB/s average of {:.1} GB/s peak",
        r.dram.bytes_read as f64 / 1e6,
        r.dram.bytes_written as f64 / 1e6,
        r.dram.avg_gbps,
        r.dram.peak_gbps
    );
    if !r.spills.is_empty() {
        // Spilled bytes by tensor kind, over all layers.
        let mut kinds: Vec<(&str, u64, u64)> = Vec::new();
        for sp in &r.spills {
            match kinds.iter_mut().find(|k| k.0 == sp.tensor) {
                Some(k) => (k.1, k.2) = (k.1 + 1, k.2 + sp.bytes),
                None => kinds.push((sp.tensor, 1, sp.bytes)),
            }
        }
        let list: Vec<String> = kinds
            .iter()
            .map(|(t, n, b)| format!("{t} {:.2} MB in {n} layers", *b as f64 / 1e6))
            .collect();
        let _ = writeln!(
            s,
            "  spilled to DRAM    {} (no room on chip beside the tensors held there: written and read back)",
            list.join(", ")
        );
    }
    if r.drams.len() > 1 {
        for d in &r.drams {
            let t = &d.traffic;
            let _ = writeln!(
                s,
                "    {:<16} {:.2} MB read, {:.2} MB written, {:.2} GB/s average of {:.1} GB/s peak",
                d.module,
                t.bytes_read as f64 / 1e6,
                t.bytes_written as f64 / 1e6,
                t.avg_gbps,
                t.peak_gbps
            );
        }
    }
    let e = &r.energy;
    let total = e.total_uj * 1e6;
    let share = |pj: f64| if total > 0.0 { 100.0 * pj / total } else { 0.0 };
    let _ = writeln!(
        s,
        "  energy             {:.3} mJ (MACs {:.1} %, SRAM {:.1} %, DRAM {:.1} %, static {:.1} %), {:.2} W, {:.1} GOPS/W dense-equivalent ({:.1} useful)",
        e.total_uj / 1000.0,
        share(e.dynamic.mac_pj),
        share(e.dynamic.sram_pj),
        share(e.dynamic.dram_pj),
        share(e.static_pj),
        e.avg_power_w,
        e.gops_per_w_dense,
        e.gops_per_w_useful
    );
    let mut modules: Vec<(&str, f64)> = e
        .per_module
        .iter()
        .map(|m| (m.module.as_str(), m.dynamic_pj + m.static_pj))
        .filter(|(_, pj)| *pj > 0.0)
        .collect();
    modules.sort_by(|a, b| b.1.total_cmp(&a.1));
    // In mJ, or in µJ for small runs.
    let (unit, scale) = if total >= 1e9 {
        ("mJ", 1e-9)
    } else {
        ("µJ", 1e-6)
    };
    let listed: Vec<String> = modules
        .iter()
        .map(|(m, pj)| format!("{m} {:.3}", pj * scale))
        .collect();
    let attributed: f64 = modules.iter().map(|(_, pj)| pj).sum();
    let _ = writeln!(
        s,
        "  energy by module   {} {unit}; not attributed to a module {:.3} {unit}",
        listed.join(", "),
        (total - attributed) * scale
    );
    pe_time_line(&mut s, "PE array time", &r.pe_time);
    if r.pe_arrays.len() > 1 {
        for p in &r.pe_arrays {
            pe_time_line(&mut s, &format!("  {}", p.module), &p.time);
        }
    }
    let _ = writeln!(
        s,
        "\n  where the PE array's time went (every cycle in one state; all layers):"
    );
    let t = &r.pe_time;
    let _ = writeln!(s, "    {:<32} {:>12} {:>7}", "state", "cycles", "share");
    let mut state_row = |label: &str, cycles: u64| {
        let _ = writeln!(
            s,
            "    {:<32} {:>12} {:>6.1}%",
            label,
            cycles,
            pct(cycles, t.array_cycles)
        );
    };
    for ((_, name), o) in &by_op(r) {
        if o.pe_busy > 0 {
            state_row(&format!("computing {name}"), o.pe_busy);
        }
    }
    for (label, cycles) in waits(t) {
        state_row(label, cycles);
    }
    state_row("idle (no pass)", t.idle_cycles);
    state_row("total", t.sum_cycles());
    let _ = writeln!(
        s,
        "\n  per op (all layers): span = first to last cycle any module worked on it, PE = the PE\n  array computing it or waiting with its pass, critical = how far it moved the finish line"
    );
    let _ = writeln!(
        s,
        "    {:<10} {:>12} {:>12} {:>12} {:>8} {:>10}",
        "op", "span", "PE", "critical", "share", "GMAC"
    );
    for ((_, name), o) in &by_op(r) {
        let _ = writeln!(
            s,
            "    {:<10} {:>12} {:>12} {:>12} {:>7.1}% {:>10.3}",
            name,
            o.span,
            o.pe,
            o.critical,
            pct(o.critical, r.total_cycles),
            o.macs as f64 / 1e9
        );
    }
    let _ = writeln!(s, "\n  per layer:");
    let _ = writeln!(
        s,
        "    {:>5} {:>12} {:>12} {:>12}",
        "layer", "start", "end", "critical"
    );
    for l in &r.layers {
        let _ = writeln!(
            s,
            "    {:>5} {:>12} {:>12} {:>12}",
            l.layer, l.start_cycle, l.end_cycle, l.critical_cycles
        );
    }
    if let Some(f) = &r.functional {
        let _ = writeln!(
            s,
            "\n  functional check ({} weights, input seed {}): {}",
            f.weights,
            f.seed,
            if f.passed { "PASSED" } else { "FAILED" }
        );
        let _ = writeln!(
            s,
            "    output: relative error {:.3e}, max |error| {:.3e} (tolerance {:.1e} relative)",
            f.output_rel_error, f.output_max_abs_error, f.tolerance
        );
        let _ = writeln!(
            s,
            "    {:<14} {:>10} {:>12} {:>12} {:>10}",
            "tensor", "values", "rel error", "max |error|", "unwritten"
        );
        for t in &f.tensors {
            let _ = writeln!(
                s,
                "    {:<14} {:>10} {:>12.3e} {:>12.3e} {:>10}",
                t.name, t.values, t.rel_error, t.max_abs_error, t.non_finite
            );
        }
    }
    s
}
