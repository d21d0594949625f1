//! The report as a terminal summary and as per-op CSV.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Report;

/// Columns of the per-op CSV, in order.
pub const CSV_HEADER: &str = "layer,op,kind,pattern,macs,dense_macs,start_cycle,end_cycle,cycles,busy_cycles,stall_dram_cycles,stall_buffer_cycles,stall_softmax_cycles,stall_downstream_cycles";

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
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                o.layer,
                o.name,
                kind,
                o.pattern,
                o.macs,
                o.dense_macs,
                o.start_cycle,
                o.end_cycle,
                o.cycles,
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

/// A readable summary.
pub fn summary(r: &Report) -> String {
    let w = &r.workload;
    let mut s = String::new();
    let pattern = if w.patterns.all().iter().all(|p| *p == w.patterns.qkv) {
        w.patterns.qkv.to_string()
    } else {
        format!(
            "qkv={},proj={},ffn1={},ffn2={}",
            w.patterns.qkv, w.patterns.proj, w.patterns.ffn1, w.patterns.ffn2
        )
    };
    let _ = writeln!(
        s,
        "stasim: {} on `{}` — {} layers, s={}, batch {}, pattern {}",
        w.model.name, r.topology, w.layers, w.seq, w.batch, pattern
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
    let t = &r.pe_time;
    let _ = writeln!(
        s,
        "  PE array time      busy {:.1} %, waiting for DRAM {:.1} %, buffers {:.1} %, softmax {:.1} %, accumulator {:.1} %",
        pct(t.busy_cycles, r.total_cycles),
        pct(t.dram_cycles, r.total_cycles),
        pct(t.buffer_cycles, r.total_cycles),
        pct(t.softmax_cycles, r.total_cycles),
        pct(t.downstream_cycles, r.total_cycles)
    );
    let _ = writeln!(
        s,
        "\n  where the time went (share of the total, all layers):"
    );
    let mut by_op: BTreeMap<(usize, &str), (u64, u64)> = BTreeMap::new();
    for l in &r.layers {
        for (i, o) in l.ops.iter().enumerate() {
            let e = by_op.entry((i, o.name.as_str())).or_default();
            e.0 += o.cycles;
            e.1 += o.macs;
        }
    }
    let _ = writeln!(
        s,
        "    {:<10} {:>12} {:>7} {:>10}",
        "op", "cycles", "share", "GMAC"
    );
    for ((_, name), (cycles, macs)) in &by_op {
        let _ = writeln!(
            s,
            "    {:<10} {:>12} {:>6.1}% {:>10.3}",
            name,
            cycles,
            pct(*cycles, r.total_cycles),
            *macs as f64 / 1e9
        );
    }
    let _ = writeln!(s, "\n  per layer:");
    let _ = writeln!(
        s,
        "    {:>5} {:>12} {:>12} {:>12}",
        "layer", "start", "end", "cycles"
    );
    for l in &r.layers {
        let _ = writeln!(
            s,
            "    {:>5} {:>12} {:>12} {:>12}",
            l.layer, l.start_cycle, l.end_cycle, l.cycles
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
