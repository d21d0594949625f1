//! The STA model against closed-form arithmetic from STA.md, and the paper's story.
//!
//! Reference design: R = C = 16, L = 8, A = 32, 200 MHz, DDR4-2400.

use crate::support::run_report as run;
use stasim::report::Report;
use stasim::run::WorkloadArgs;

fn bert(layers: i64, pattern: &str) -> WorkloadArgs {
    WorkloadArgs {
        model: Some("bert-base".into()),
        seq: Some(128),
        layers: Some(layers),
        pattern: Some(pattern.into()),
        ..WorkloadArgs::default()
    }
}

fn op<'a>(r: &'a Report, layer: usize, name: &str) -> &'a stasim::report::OpReport {
    r.layers[layer].ops.iter().find(|o| o.name == name).unwrap()
}

/// Fast DRAM so that the engine, not memory, sets the pace.
const FAST_DRAM: &[&str] = &["dram.channels=8", "dram.preset=ddr4-3200"];

#[test]
fn compute_bound_sparse_op_matches_the_closed_form() {
    // QKV of BERT-base at s=128, 2:4: K=768, 3d=2304 output columns.
    // Passes: ceil(128/16) row tiles x ceil(2304/16) column tiles = 8 x 144 = 1152.
    // Per pass: ceil(K*N/M / L) = ceil(768*2/4 / 8) = 48 cycles. Depth: 1 + 1 + log2(8) = 5.
    let r = run("sta", bert(1, "2:4"), FAST_DRAM);
    let qkv = op(&r, 0, "qkv");
    let passes = 8 * 144;
    let per_pass = (768u64 * 2 / 4).div_ceil(8);
    assert_eq!(qkv.busy_cycles, passes * per_pass);
    // From the first pass to the last tile leaving the accumulator (8 cycles per tile).
    let expected = passes * per_pass + 5 + 8;
    let span = qkv.end_cycle - qkv.compute_start_cycle;
    assert_eq!(
        qkv.compute_end_cycle - qkv.compute_start_cycle,
        passes * per_pass
    );
    let err = (span as f64 - expected as f64).abs() / expected as f64;
    assert!(
        err < 0.01,
        "qkv took {span} cycles, closed form {expected} ({:.2} %)",
        100.0 * err
    );
}

#[test]
fn dense_dense_attention_matches_the_closed_form() {
    // scores per head: 8 x 8 passes of ceil(dh / L) = ceil(64/8) = 8 cycles; 12 heads.
    // P.V per head: 8 row tiles x 4 column tiles (dh = 64) of ceil(s / L) = 16 cycles.
    let r = run("sta", bert(1, "2:4"), FAST_DRAM);
    assert_eq!(op(&r, 0, "scores").busy_cycles, 12 * 8 * 8 * 8);
    assert_eq!(op(&r, 0, "pv").busy_cycles, 12 * 8 * 4 * 16);
}

#[test]
fn one_to_eight_is_starved_by_the_activation_window() {
    // 2:8: L*M/N = 32 <= A: 8 MACs/cycle, nnz = 768/8*2 = 192, 24 cycles a pass.
    // 1:8: L*M/N = 64 > A = 32: starved to A*N/M = 4 MACs/cycle, nnz = 96, 24 cycles a pass.
    // With A = 64, 1:8 runs at L = 8 MACs/cycle: 12 cycles a pass.
    let busy = |pattern: &str, sets: &[&str]| {
        let mut all = FAST_DRAM.to_vec();
        all.extend_from_slice(sets);
        op(&run("sta", bert(1, pattern), &all), 0, "qkv").busy_cycles
    };
    let passes = 8 * 144;
    assert_eq!(busy("2:8", &[]), passes * 24);
    assert_eq!(
        busy("1:8", &[]),
        passes * 24,
        "1:8 must be no faster than 2:8 at A = 32"
    );
    assert_eq!(busy("1:8", &["pe_array.window=64"]), passes * 12);
}

#[test]
fn sparsity_speeds_up_the_whole_model_and_the_dense_engine_does_not() {
    let dense = run("sta", bert(2, "dense"), &[]);
    let sparse = run("sta", bert(2, "2:4"), &[]);
    let no_muxes = run("dense", bert(2, "2:4"), &[]);
    assert!(
        sparse.total_cycles < dense.total_cycles * 7 / 10,
        "{} vs {}",
        sparse.total_cycles,
        dense.total_cycles
    );
    // Without index muxes, 2:4 weights are stored and computed dense.
    let ratio = no_muxes.total_cycles as f64 / dense.total_cycles as f64;
    assert!(
        (ratio - 1.0).abs() < 0.01,
        "dense engine with 2:4 vs dense: {ratio:.3}"
    );
    assert!(r_macs_equal(&sparse, &no_muxes));
}

fn r_macs_equal(a: &Report, b: &Report) -> bool {
    a.dense_macs == b.dense_macs
}

#[test]
fn the_fused_softmax_beats_the_offchip_round_trip() {
    let fused = run("sta", bert(2, "2:4"), &[]);
    let offchip = run("sta-offchip-softmax", bert(2, "2:4"), &[]);
    assert!(offchip.total_cycles > fused.total_cycles);
    // The round trip writes and reads every score: s*s*2 bytes per head, 12 heads, 2 layers.
    let scores = 128 * 128 * 2 * 12 * 2;
    assert_eq!(
        offchip.dram.bytes_written - fused.dram.bytes_written,
        scores
    );
    assert_eq!(offchip.dram.bytes_read - fused.dram.bytes_read, scores);
}

#[test]
fn the_per_op_breakdown_adds_up_to_the_total() {
    let r = run("sta", bert(2, "2:4"), &[]);
    let ops: u64 = r
        .layers
        .iter()
        .flat_map(|l| &l.ops)
        .map(|o| o.critical_cycles)
        .sum();
    let layers: u64 = r.layers.iter().map(|l| l.critical_cycles).sum();
    assert_eq!(ops, r.total_cycles);
    assert_eq!(layers, r.total_cycles);
    // MACs are the workload's: 2 layers of BERT-base, 2:4 halves the linear layers' MACs.
    let linear = 128 * 768 * (3 * 768 + 768 + 2 * 3072);
    let attention = 2 * 12 * 128 * 128 * 64;
    assert_eq!(r.dense_macs, 2 * (linear + attention));
    assert_eq!(r.macs, 2 * (linear / 2 + attention));
}

#[test]
fn one_inference_reads_each_compressed_weight_once_when_activations_fit() {
    // MiniLM-L6 at s=32: every layer input fits a 256 KiB bank (32 x 1536 x 2 = 96 KiB).
    let args = WorkloadArgs {
        model: Some("minilm-l6".into()),
        seq: Some(32),
        pattern: Some("2:4".into()),
        ..WorkloadArgs::default()
    };
    let r = run("sta", args, &[]);
    // Compressed bytes (STA.md): ceil(K/M) * N * Nout * (16 + 2) / 8 per matrix.
    let c = |k: u64, n: u64| k.div_ceil(4) * 2 * n * 18 / 8;
    let per_layer = c(384, 3 * 384) + c(384, 384) + c(384, 1536) + c(1536, 384);
    assert_eq!(r.weight_bytes_planned, 6 * per_layer);
    assert!(r.dram.bytes_read >= 6 * per_layer);
}

#[test]
fn a_dram_bound_run_moves_data_at_the_rate_the_dram_sustains() {
    // A 64 x 64 array (16x the compute) on one DDR4-2400 channel: memory sets the pace.
    // (At 32 x 32 the out-of-order controller leaves compute and DRAM waits level.)
    let r = run(
        "sta",
        bert(1, "dense"),
        &["pe_array.rows=64", "pe_array.cols=64"],
    );
    // The average includes the attention phases, which are not memory-bound; the DRAM
    // sustains about 95 % of peak on a stream (tests/it/dram.rs).
    let frac = r.dram.avg_gbps / r.dram.peak_gbps;
    assert!(
        frac > 0.8,
        "average {:.2} GB/s of {:.2} peak",
        r.dram.avg_gbps,
        r.dram.peak_gbps
    );
    assert!(
        r.pe_time.dram_cycles > r.pe_time.busy_cycles,
        "{:?}",
        r.pe_time
    );
}

#[test]
fn runs_are_deterministic() {
    let a = serde_json::to_string(&run("sta-small", WorkloadArgs::default(), &[])).unwrap();
    let b = serde_json::to_string(&run("sta-small", WorkloadArgs::default(), &[])).unwrap();
    assert_eq!(a, b);
}

#[test]
fn decoder_attention_is_causal() {
    let args = |model: &str| WorkloadArgs {
        model: Some(model.into()),
        seq: Some(128),
        layers: Some(1),
        pattern: Some("2:4".into()),
        ..WorkloadArgs::default()
    };
    let enc = run("sta", args("bert-base"), FAST_DRAM);
    let dec = run("sta", args("gpt2-small"), FAST_DRAM);
    // Causal: sum over rows of (i+1) keys = s(s+1)/2 per head and per dh.
    assert_eq!(op(&dec, 0, "scores").macs, 12 * 128 * 129 / 2 * 64);
    assert!(op(&dec, 0, "scores").busy_cycles < op(&enc, 0, "scores").busy_cycles);
    assert!(op(&dec, 0, "pv").busy_cycles < op(&enc, 0, "pv").busy_cycles);
}
