//! Hardened inputs of `run`, `check` and `graph`: sizes refused before they are allocated,
//! physical ranges, checked simulated time, runs that say what they simulated, and error
//! messages that name the key, the limit and the flag.

use std::process::{Command, Output};

use stasim::topology::Origin;

use crate::support::{load_text, tmp_dir};

fn stasim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(args)
        .output()
        .expect("the stasim binary runs")
}

/// Runs stasim, expects exit `code` and no panic; returns stdout and stderr.
fn expect(args: &[&str], code: i32) -> (String, String) {
    let o = stasim(args);
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !err.contains("panicked"),
        "stasim {args:?} panicked:\n{err}"
    );
    assert_eq!(o.status.code(), Some(code), "stasim {args:?}:\n{err}");
    (out, err)
}

#[test]
fn a_batch_of_2_pow_63_is_refused_naming_the_flag_and_the_limit() {
    let (_, err) = expect(&["run", "--batch", "9223372036854775807"], 2);
    assert!(
        err.contains("`batch` = 9223372036854775807 is above the limit of 65536"),
        "{err}"
    );
    assert!(err.contains("command line `--batch`"), "{err}");
    let (_, err) = expect(&["run", "--batch", "100000"], 2);
    assert!(err.contains("above the limit of 65536"), "{err}");
    let (_, err) = expect(&["run", "--seq", "9223372036854775807"], 2);
    assert!(
        err.contains("`seq` = 9223372036854775807 is above the limit"),
        "{err}"
    );
    let (_, err) = expect(&["run", "--layers=-9223372036854775808"], 2);
    assert!(err.contains("must be at least 1"), "{err}");
}

#[test]
fn a_sequence_too_long_to_plan_is_refused_before_planning() {
    // s = 100000 on a 16 x 16 array: 6250^2 score tiles per head, 5.7e9 passes in all (at
    // least: P.V's reduction over 100000 keys is cut into chunks too).
    let (_, err) = expect(&["run", "--seq", "100000"], 2);
    let tiles = 100_000u64.div_ceil(16);
    let per_layer = tiles * (2304 / 16 + 768 / 16 + 3072 / 16 + 768 / 16)
        + 12 * (tiles * tiles + tiles * (64 / 16));
    let said: u64 = err
        .split("up to ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{err}"));
    assert!(said >= per_layer * 12, "{said} < {}: {err}", per_layer * 12);
    assert!(
        err.contains("PE passes, more than the limit of 4294967296"),
        "{err}"
    );
    assert!(err.contains("--seq"), "{err}");
}

#[test]
fn clocks_outside_1_khz_to_100_ghz_are_refused() {
    for bad in ["1e-9", "0.0009", "100001", "-5"] {
        let (_, err) = expect(&["check", "sta", "--set", &format!("clock_mhz={bad}")], 2);
        assert!(
            err.contains("from 0.001 (1 kHz) to 100000 (100 GHz)"),
            "{err}"
        );
    }
    let (_, err) = expect(&["check", "sta", "--set", "clock_mhz=.inf"], 2);
    assert!(err.contains("clock_mhz"), "{err}");
    let (_, err) = expect(&["check", "sta", "--set", "pe_array.clock_mhz=1e-9"], 2);
    assert!(err.contains("modules.pe_array.clock_mhz"), "{err}");
    expect(&["check", "sta", "--set", "clock_mhz=0.001"], 0);
    expect(&["check", "sta", "--set", "clock_mhz=100000"], 0);
}

#[test]
fn simulated_time_that_overflows_ends_the_run_with_exit_1() {
    // Ten tokens held 2^32 cycles of 1 ms each: 4.3e18 ps per token, past 2^62 ps by the
    // second token. Before, the times wrapped and the run reported nonsense with exit 0.
    let (out, err) = expect(
        &[
            "run",
            "pipeline",
            "--set",
            "clock_mhz=0.001",
            "--set",
            "source.count=10",
            "--set",
            "S4.service_cycles=4294967296",
        ],
        1,
    );
    assert!(out.is_empty(), "{out}");
    assert!(err.contains("simulated time overflowed"), "{err}");
    assert!(err.contains("2^62 ps"), "{err}");
    // One cycle more than the largest cycle count is an input error.
    let (_, err) = expect(
        &["check", "pipeline", "--set", "S4.service_cycles=4294967297"],
        2,
    );
    assert!(err.contains("0..=4294967296"), "{err}");
}

#[test]
fn a_trace_window_past_the_end_of_time_is_refused() {
    let dir = tmp_dir("inputs", "window");
    let vcd = dir.join("w.vcd");
    let (_, err) = expect(
        &[
            "run",
            "pipeline",
            "--set",
            "source.count=10",
            "--vcd",
            vcd.to_str().unwrap(),
            "--trace-window",
            "0..18446744073709551615",
        ],
        2,
    );
    assert!(
        err.contains("reach past the end of simulated time"),
        "{err}"
    );
    let (_, err) = expect(&["run", "pipeline", "--trace-window", "0..300days"], 2);
    assert!(err.contains("--trace-window"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_topology_without_a_controller_says_what_ran() {
    let (out, _) = expect(&["run", "pipeline", "--set", "source.count=100"], 0);
    assert!(
        out.contains("`pipeline` has no controller, so no workload ran"),
        "{out}"
    );
    assert!(!out.contains("bert-base") && !out.contains("MACs"), "{out}");
    // 100 tokens through stages of 1..5 ns: the last leaves S4 at 5 * 100 + 10 ns.
    assert!(
        out.contains("simulated end      510 ns (510 cycles at 1000.000 MHz)"),
        "{out}"
    );
    assert!(out.contains("received=100"), "{out}");
    let (json, _) = expect(
        &["run", "pipeline", "--set", "source.count=100", "--json"],
        0,
    );
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(v.get("workload").is_none(), "{json}");
    assert_eq!(v["end_ps"], 510_000);
    assert_eq!(v["links"].as_array().unwrap().len(), 6);
    assert_eq!(v["links"][0]["sent"], 100);
    assert_eq!(v["modules"][6]["stats"]["received"], 100);
    for flag in [
        &["--seq", "5"][..],
        &["--model", "bert-base"],
        &["--pattern", "2:4"],
        &["--functional"],
    ] {
        let mut args = vec!["run", "pipeline"];
        args.extend_from_slice(flag);
        let (_, err) = expect(&args, 2);
        assert!(
            err.contains("has no controller, so it runs no workload"),
            "{err}"
        );
        assert!(err.contains(flag[0]), "{err}");
    }
}

#[test]
fn the_dram_clock_follows_its_preset() {
    let (out, _) = expect(&["check", "sta"], 0);
    assert!(
        out.contains("dram             dram           1200.480 MHz"),
        "{out}"
    );
    let (out, _) = expect(&["check", "sta", "--set", "dram.preset=ddr4-3200"], 0);
    assert!(
        out.contains("dram             dram           1600.000 MHz"),
        "{out}"
    );
    // 1 MHz used to make the runs 63 % slower while the report kept 19.2 GB/s peak.
    let (_, err) = expect(&["run", "--set", "dram.clock_mhz=1"], 2);
    assert!(
        err.contains("`dram.clock_mhz` = 1 disagrees with its parameters"),
        "{err}"
    );
    assert!(err.contains("period 833 ps"), "{err}");
    assert!(err.contains("or give `1200`"), "{err}");
    // Repeating the preset's clock is fine.
    expect(&["check", "sta", "--set", "dram.clock_mhz=1200"], 0);
    let (_, err) = expect(
        &[
            "check",
            "sta",
            "--set",
            "dram.preset=ddr4-3200",
            "--set",
            "dram.clock_mhz=1200",
        ],
        2,
    );
    assert!(err.contains("or give `1600`"), "{err}");
}

#[test]
fn a_dram_smaller_than_the_model_is_refused() {
    // 256 rows x 16 banks x 2 ranks x 8 KiB = 64 MiB; BERT-base 2:4 needs about 112 MiB.
    let (_, err) = expect(&["check", "sta", "--set", "dram.rows=256"], 2);
    assert!(err.contains("but `dram` holds 67108864"), "{err}");
    assert!(err.contains("modules.dram"), "{err}");
    assert!(err.contains("raise `dram.rows`"), "{err}");
    let (_, err) = expect(&["run", "--set", "dram.rows=256"], 2);
    assert!(err.contains("holds 67108864"), "{err}");
    expect(&["check", "sta", "--set", "dram.rows=1024"], 0);
}

#[test]
fn energies_that_could_overflow_are_refused() {
    for set in [
        "energy.mac_pj=1e300",
        "energy.dram_pj_per_byte=1e7",
        "energy.static_mw=1e300",
        "pe_array.static_mw=1e300",
    ] {
        let (_, err) = expect(&["check", "sta", "--set", set], 2);
        assert!(err.contains("0..=1000000"), "{set}: {err}");
    }
    expect(&["check", "sta", "--set", "energy.mac_pj=1000000"], 0);
}

#[test]
fn a_pattern_class_named_twice_and_a_member_without_checkpoint_are_refused() {
    let (_, err) = expect(
        &[
            "run",
            "--pattern",
            "qkv=2:8,qkv=1:8,proj=2:4,ffn1=2:4,ffn2=2:4",
        ],
        2,
    );
    assert!(err.contains("layer class `qkv` is named twice"), "{err}");
    let (_, err) = expect(&["run", "--member", "2:4"], 2);
    assert!(err.contains("--member 2:4 needs --checkpoint"), "{err}");
}

const BASE: &str = "clock_mhz: 1000
modules:
  source: {kind: source, count: 10}
  sink: {kind: sink}
links:
  - {from: source.out, to: sink.in}
";

#[test]
fn repeated_kind_and_energy_keys_are_errors_at_the_second() {
    let y = BASE.replace("{kind: sink}", "{kind: sink, kind: source}");
    let e = load_text(&y, &[]).unwrap_err();
    assert_eq!(e.message, "`kind` of `sink` is given twice");
    assert_eq!(e.key, "modules.sink.kind");
    assert!(
        matches!(
            e.origin,
            Origin::File {
                line: 4,
                column: 22,
                ..
            }
        ),
        "{e}"
    );
    assert!(e.hint.as_deref().unwrap().contains("test.yaml:4:10"), "{e}");
    let y = format!("{BASE}energy:\n  mac_pj: 1\n  mac_pj: 2\n");
    let e = load_text(&y, &[]).unwrap_err();
    assert_eq!(e.message, "energy entry `mac_pj` is given twice");
    assert_eq!(e.key, "energy.mac_pj");
    assert!(
        matches!(
            e.origin,
            Origin::File {
                line: 9,
                column: 3,
                ..
            }
        ),
        "{e}"
    );
    // `--set` replaces an entry rather than adding a second one.
    let y = format!("{BASE}energy:\n  mac_pj: 1\n");
    let t = load_text(&y, &["energy.mac_pj=2", "sink.kind=sink"]).unwrap();
    assert_eq!(t.energy.mac_pj, 2.0);
}

#[test]
fn type_errors_name_the_key_and_the_value_found() {
    let y = BASE.replace("to: sink.in}", "to: sink.in, depth: 1.5}");
    let e = load_text(&y, &[]).unwrap_err();
    assert_eq!(
        e.message,
        "bad value for `links[0].depth`: expected a whole number from -2^63 to 2^63-1, found `1.5`"
    );
    assert_eq!(e.key, "links[0].depth");
    assert!(
        matches!(
            e.origin,
            Origin::File {
                line: 6,
                column: 44,
                ..
            }
        ),
        "{e}"
    );
    let y = format!("{BASE}workload: {{seq: [1, 2]}}\n");
    let e = load_text(&y, &[]).unwrap_err();
    assert!(e.message.starts_with("bad value for `workload.seq`"), "{e}");
    assert!(e.message.ends_with("found a list"), "{e}");
    let y = BASE.replace("clock_mhz: 1000", "clock_mhz: fast");
    let e = load_text(&y, &[]).unwrap_err();
    assert_eq!(
        e.message,
        "bad value for `clock_mhz`: expected a number, found `fast`"
    );
}

#[test]
fn a_huge_line_is_echoed_around_the_column_only() {
    let dir = tmp_dir("inputs", "longline");
    let path = dir.join("long.yaml");
    // A 4 MB value on one line, the error at its end.
    let y = BASE.replace(
        "count: 10",
        &format!("count: 10, note{}: 1", "x".repeat(4 << 20)),
    );
    std::fs::write(&path, y).unwrap();
    let (_, err) = expect(&["check", path.to_str().unwrap()], 2);
    assert!(err.len() < 3_000, "{} bytes on stderr", err.len());
    assert!(err.contains('…'), "{err}");
    assert!(err.contains("long.yaml:3:"), "{err}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_yaml_budget_error_names_the_limit() {
    let mut y = String::from(BASE);
    for _ in 0..130_000 {
        y.push_str("  - {from: a.out, to: b.in}\n");
    }
    let e = load_text(&y, &[]).unwrap_err();
    assert_eq!(
        e.message,
        "the file has more than 250000 values (YAML nodes), the YAML reader's limit (`max_nodes`)"
    );
}

#[test]
fn models_lists_the_range_of_every_clock_and_static_power() {
    let (out, _) = expect(&["models"], 0);
    assert!(
        out.contains("a number in 0.001..=100000; default: the topology's clock_mhz"),
        "{out}"
    );
    assert!(out.contains("static power of this instance (energy report); a number in 0..=1000000"));
    assert!(
        out.contains("follows from its parameters (the preset's command clock)"),
        "{out}"
    );
    assert!(
        out.contains("an integer in 0..=4294967296; default 1"),
        "{out}"
    );
}

#[test]
fn a_functional_run_too_large_to_hold_is_refused_before_allocating() {
    // BERT-large: 24 x (4 x 1024^2 + 2 x 1024 x 4096) = 302 M weights, above 2^27.
    let (_, err) = expect(&["run", "--functional", "--model", "bert-large"], 2);
    assert!(err.contains("more than the limit of 134217728"), "{err}");
    assert!(err.contains("lower --layers"), "{err}");
}

#[test]
fn an_endless_topology_file_is_refused_not_read_until_memory_ends() {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_stasim"))
        .args(["check", "/dev/zero"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("longer than 16 MiB"), "{err}");
}
