//! The text summary and CSV of a generation ([`crate::generate::GenerationReport`]):
//! TTFT, TPOT, tokens/s, every step's latency and byte ledger, and the last step's ops
//! with what bound each.

use std::fmt::Write;

use crate::generate::{GenerationReport, Ledger, StepReport};

/// Megabytes (10^6 bytes).
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// The ledger as one line.
fn ledger_line(l: &Ledger) -> String {
    format!(
        "weight values {:.2} MB, weight indices {:.2} MB, lm_head {:.2} MB, KV read {:.3} MB, KV write {:.3} MB, activations {:.2} MB",
        mb(l.weight_values),
        mb(l.weight_indices),
        mb(l.lm_head),
        mb(l.kv_read),
        mb(l.kv_write),
        mb(l.activations)
    )
}

/// The steps the summary's table lists: all of up to 16, else the first 4, every k-th and
/// the last (the CSV and the JSON have every step).
fn shown(n: usize) -> Vec<usize> {
    if n <= 16 {
        return (0..n).collect();
    }
    let stride = n.div_ceil(12);
    let mut v: Vec<usize> = (0..4).chain((stride..n).step_by(stride)).collect();
    if v.last() != Some(&(n - 1)) {
        v.push(n - 1);
    }
    v.dedup();
    v
}

fn step_row(s: &mut String, label: &str, st: &StepReport) {
    let l = &st.ledger;
    let _ = writeln!(
        s,
        "    {label:>8} {:>8} {:>10.3} {:>9.2} {:>9.2} {:>8.2} {:>8.3} {:>8.2} {:>6.1}%",
        st.context,
        st.time_us / 1e3,
        mb(l.weight_values + l.weight_indices),
        mb(l.lm_head),
        mb(l.kv_read),
        mb(l.kv_write),
        mb(l.activations),
        100.0 * st.pe_utilization
    );
}

/// The text summary.
pub fn summary(r: &GenerationReport) -> String {
    let w = &r.workload;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "stasim: {} on `{}` — prompt {} tokens, {} decode steps, batch {}, pattern {}, {}-bit values",
        w.model.name, r.topology, w.seq, r.generate, w.batch, w.patterns, w.value_bits
    );
    let _ = writeln!(s, "  TTFT (prefill)     {:.3} ms", r.ttft_ms);
    if let (Some(t), Some(tps)) = (&r.tpot, r.tokens_per_s) {
        let _ = writeln!(
            s,
            "  TPOT (a step)      mean {:.3} ms, p50 {:.3} ms, first {:.3} ms, last {:.3} ms",
            t.mean_ms, t.p50_ms, t.first_ms, t.last_ms
        );
        let _ = writeln!(
            s,
            "  tokens/s           {tps:.1} over the decode steps (batch {})",
            w.batch
        );
    }
    let _ = writeln!(
        s,
        "  KV cache           {} bytes a token a layer ({} layers simulated); {:.2} MB after the last step",
        r.kv_bytes_per_token_layer,
        w.layers,
        mb(r.kv_bytes_per_token_layer * w.layers * w.batch * (w.seq + r.generate))
    );
    let last = r.steps.last().unwrap_or(&r.prefill);
    let _ = writeln!(s, "  last run's bytes   {}", ledger_line(&last.ledger));
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  per run (MB of DRAM traffic by class; the CSV and the JSON have every step):"
    );
    let _ = writeln!(
        s,
        "    {:>8} {:>8} {:>10} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7}",
        "run", "context", "ms", "weights", "lm_head", "KV read", "KV wr", "acts", "PE util"
    );
    step_row(&mut s, "prefill", &r.prefill);
    for i in shown(r.steps.len()) {
        step_row(&mut s, &format!("step {i}"), &r.steps[i]);
    }
    let total: u64 = r.last_ops.iter().map(|o| o.critical_cycles).sum();
    let _ = writeln!(s);
    let _ = writeln!(
        s,
        "  last run per op (all layers): critical = how far it moved the finish line"
    );
    let _ = writeln!(
        s,
        "    {:<12} {:>10} {:>7} {:>10}  bound",
        "op", "critical", "share", "DRAM MB"
    );
    for o in &r.last_ops {
        let _ = writeln!(
            s,
            "    {:<12} {:>10} {:>6.1}% {:>10.3}  {}",
            o.name,
            o.critical_cycles,
            100.0 * o.critical_cycles as f64 / total.max(1) as f64,
            mb(o.dram_bytes),
            o.bound
        );
    }
    s
}

/// Every run as a CSV row: the prefill (step -1), then the decode steps.
pub fn csv(r: &GenerationReport) -> String {
    let mut s = String::from(
        "step,context,cycles,time_us,dram_bytes,weight_values,weight_indices,lm_head,kv_read,kv_write,activations,pe_utilization\n",
    );
    let rows = std::iter::once((-1i64, &r.prefill))
        .chain(r.steps.iter().enumerate().map(|(i, st)| (i as i64, st)));
    for (i, st) in rows {
        let l = &st.ledger;
        let _ = writeln!(
            s,
            "{i},{},{},{:.3},{},{},{},{},{},{},{},{:.6}",
            st.context,
            st.cycles,
            st.time_us,
            st.dram_bytes,
            l.weight_values,
            l.weight_indices,
            l.lm_head,
            l.kv_read,
            l.kv_write,
            l.activations,
            st.pe_utilization
        );
    }
    s
}
