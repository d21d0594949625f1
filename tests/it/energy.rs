//! The energy model from arithmetic: counted actions times the table.

use stasim::report::Report;
use stasim::run::{WorkloadArgs, resolve_workload, simulate};
use stasim::topology::{self, SetOverride, Source};

fn run(sets: &[&str]) -> Report {
    run_on(Source::read("sta-small").unwrap(), sets)
}

fn run_on(src: Source, sets: &[&str]) -> Report {
    let sets: Vec<SetOverride> = sets
        .iter()
        .map(|s| SetOverride::parse(s).unwrap())
        .collect();
    let t = topology::load(&src, &sets).unwrap_or_else(|e| panic!("{e}"));
    let w = resolve_workload(&t, &WorkloadArgs::default()).unwrap();
    simulate(&t, &w, None, None, None).unwrap().report
}

/// pJ of `mw` milliwatts over `seconds`.
fn static_pj(mw: f64, seconds: f64) -> f64 {
    mw * 1e-3 * seconds * 1e12
}

#[test]
fn energy_is_the_counted_actions_times_the_table() {
    let r = run(&[]);
    let (e, t, a) = (&r.energy, &r.energy.table, &r.energy.actions);
    assert_eq!(a.macs, r.macs);
    assert_eq!(a.dram_bytes, r.dram.bytes_read + r.dram.bytes_written);
    assert_eq!(a.activates, r.dram.activates);
    assert!(a.sram_read_bytes > 0 && a.sram_write_bytes > 0);
    let seconds = r.total_time_us * 1e-6;
    let expect_pj = a.macs as f64 * t.mac_pj
        + a.sram_read_bytes as f64 * t.sram_read_pj_per_byte
        + a.sram_write_bytes as f64 * t.sram_write_pj_per_byte
        + a.dram_bytes as f64 * t.dram_pj_per_byte
        + a.activates as f64 * t.dram_activate_pj
        + static_pj(t.static_mw, seconds);
    assert!(
        (e.total_uj * 1e6 - expect_pj).abs() <= 1e-9 * expect_pj,
        "{} vs {expect_pj}",
        e.total_uj * 1e6
    );
    assert!((e.avg_power_w - expect_pj * 1e-12 / seconds).abs() < 1e-9);
    let gops_w = 2.0 * r.dense_macs as f64 / 1e9 / (expect_pj * 1e-12);
    assert!((e.gops_per_w_dense - gops_w).abs() < 1e-6 * gops_w);
    // Per-op dynamic energy plus the DRAM's activates is the dynamic total, except that ops
    // are charged the bytes they requested while the total counts the bursts the DRAM moved:
    // sta-small's 4 x 4 tiles are 32-byte writes, each costing a whole 64-byte burst.
    let per_op: f64 = r
        .layers
        .iter()
        .flat_map(|l| &l.ops)
        .map(|o| o.energy_pj)
        .sum();
    let dynamic = e.dynamic.mac_pj + e.dynamic.sram_pj + e.dynamic.dram_pj;
    let activates = a.activates as f64 * t.dram_activate_pj;
    // Ops are charged the bytes they requested while the total counts the bursts the DRAM
    // moved: sta-small's 4 x 4 tiles are 32-byte writes (and 32-byte residual reads by the
    // vector unit), each costing a whole 64-byte burst.
    assert!(
        per_op + activates <= dynamic * (1.0 + 1e-12),
        "{per_op} + {activates} vs {dynamic}"
    );
    assert!(
        per_op + activates >= 0.93 * dynamic,
        "{per_op} + {activates} vs {dynamic}"
    );
    // How the modules share it: tests/it/accounting.rs.
}

#[test]
fn doubling_the_table_doubles_the_energy() {
    let base = run(&[]);
    let t = &base.energy.table;
    let doubled = run(&[
        &format!("energy.mac_pj={}", 2.0 * t.mac_pj),
        &format!(
            "energy.sram_read_pj_per_byte={}",
            2.0 * t.sram_read_pj_per_byte
        ),
        &format!(
            "energy.sram_write_pj_per_byte={}",
            2.0 * t.sram_write_pj_per_byte
        ),
        &format!("energy.dram_pj_per_byte={}", 2.0 * t.dram_pj_per_byte),
        &format!("energy.dram_activate_pj={}", 2.0 * t.dram_activate_pj),
        &format!("energy.static_mw={}", 2.0 * t.static_mw),
        &format!("energy.mac_pj_8bit={}", 2.0 * t.mac_pj_8bit),
    ]);
    assert_eq!(
        doubled.total_cycles, base.total_cycles,
        "energy must not change timing"
    );
    let ratio = doubled.energy.total_uj / base.energy.total_uj;
    assert!((ratio - 2.0).abs() < 1e-12, "{ratio}");
}

#[test]
fn each_module_has_its_own_static_power() {
    let base = run(&[]);
    let r = run(&[
        "energy.static_mw=40",
        "pe_array.static_mw=120",
        "weight_buffer.static_mw=30.5",
    ]);
    assert_eq!(
        r.total_cycles, base.total_cycles,
        "energy must not change timing"
    );
    let seconds = r.total_time_us * 1e-6;
    let e = &r.energy;
    let of = |name: &str| e.per_module.iter().find(|m| m.module == name).unwrap();
    assert!((of("pe_array").static_pj - static_pj(120.0, seconds)).abs() < 1e-6);
    assert!((of("weight_buffer").static_pj - static_pj(30.5, seconds)).abs() < 1e-6);
    assert_eq!(of("controller").static_pj, 0.0);
    // Every module is listed, in topology order, and the total static energy is the
    // table's unattributed part plus the modules'.
    let names: Vec<&str> = e.per_module.iter().map(|m| m.module.as_str()).collect();
    assert_eq!(names[..3], ["controller", "dram", "weight_buffer"]);
    let expect = static_pj(40.0 + 120.0 + 30.5, seconds);
    assert!(
        (e.static_pj - expect).abs() < 1e-9 * expect,
        "{} vs {expect}",
        e.static_pj
    );
    let dynamic = e.dynamic.mac_pj + e.dynamic.sram_pj + e.dynamic.dram_pj;
    assert!((e.total_uj * 1e6 - (dynamic + expect)).abs() < 1e-9 * (dynamic + expect));
    // A bad value is an input error naming the module.
    let err = topology::load(
        &Source::read("sta-small").unwrap(),
        &[SetOverride::parse("pe_array.static_mw=-3").unwrap()],
    )
    .unwrap_err();
    assert_eq!(err.message, "bad value for `pe_array.static_mw`: -3");
}

#[test]
fn mac_energy_follows_the_value_width() {
    let text = std::fs::read_to_string("topologies/sta-small.yaml").unwrap();
    assert!(text.contains("value_bits: 16"));
    let eight = Source {
        path: "sta-small-8bit.yaml".into(),
        text: text.replace("value_bits: 16", "value_bits: 8"),
    };
    let r = run_on(eight, &[]);
    assert_eq!(r.workload.value_bits, 8);
    let t = &r.energy.table;
    assert_eq!(r.energy.dynamic.mac_pj, r.macs as f64 * t.mac_pj_8bit);
    let r16 = run(&[]);
    assert_eq!(r16.energy.dynamic.mac_pj, r16.macs as f64 * t.mac_pj);
    assert!(t.mac_pj_8bit < t.mac_pj);
}

#[test]
fn bad_energy_entries_are_input_errors() {
    let e = topology::load(
        &Source::read("sta-small").unwrap(),
        &[SetOverride::parse("energy.mac_p=1").unwrap()],
    )
    .unwrap_err();
    assert_eq!(e.message, "bad energy entry `mac_p`");
    assert!(
        e.hint
            .as_deref()
            .unwrap_or("")
            .contains("did you mean `mac_pj`?"),
        "{e}"
    );
    let e = topology::load(
        &Source::read("sta-small").unwrap(),
        &[SetOverride::parse("energy.mac_pj=-1").unwrap()],
    )
    .unwrap_err();
    assert!(
        e.hint.as_deref().unwrap_or("").contains("in 0..=1000000"),
        "{e}"
    );
}
