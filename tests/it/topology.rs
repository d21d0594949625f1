//! Topology validation: every error with its exact message, line, column, key and hint.

use stasim::topology::{Origin, dot};

use crate::support::{load_ok, load_text};

const GOOD: &str = "clock_mhz: 1000
modules:
  source: {kind: source, count: 10}
  s0: {kind: stage, service_cycles: 2}
  sink: {kind: sink}
links:
  - {from: source.out, to: s0.in, depth: 4}
  - {from: s0.out, to: sink.in}
";

/// Loads `yaml` (with overrides), expects an error, and checks it.
fn expect_err(
    yaml: &str,
    sets: &[&str],
    message: &str,
    at: Option<(u32, u32)>,
    key: &str,
    hint: &str,
) {
    let err = match load_text(yaml, sets) {
        Ok(_) => panic!("expected an error `{message}`"),
        Err(e) => e,
    };
    assert_eq!(err.message, message, "full error:\n{err}");
    match (at, &err.origin) {
        (Some((l, c)), Origin::File { line, column, path }) => {
            assert_eq!((*line, *column), (l, c), "location of `{message}`");
            assert_eq!(path, "test.yaml");
        }
        (None, Origin::CommandLine(_)) => {}
        (want, got) => panic!("origin {got:?}, wanted {want:?} for `{message}`"),
    }
    assert_eq!(err.key, key, "key of `{message}`");
    let h = err.hint.clone().unwrap_or_default();
    assert!(h.contains(hint), "hint `{h}` should contain `{hint}`");
    // The rendering shows the place and, for file errors, the offending line.
    let text = err.to_string();
    assert!(text.starts_with(&format!("error: {message}\n")), "{text}");
    if let Some((l, c)) = at {
        assert!(text.contains(&format!("test.yaml:{l}:{c}")), "{text}");
    }
}

#[test]
fn a_valid_topology_loads_into_a_graph() {
    let t = load_ok(GOOD);
    assert_eq!(t.modules.len(), 3);
    assert_eq!(t.links.len(), 2);
    assert_eq!(t.graph.node_count(), 3);
    assert_eq!(t.graph.edge_count(), 2);
    assert_eq!(t.links[1].depth, 2, "default depth");
    let d = dot::to_dot(&t);
    assert!(d.starts_with("digraph \"test\" {"), "{d}");
    assert!(
        d.contains("\"source\" -> \"s0\" [label=\"out -> in\\ndepth 4\"];"),
        "{d}"
    );
}

#[test]
fn unknown_kind_is_named_with_the_closest_kind() {
    let y = GOOD.replace("kind: stage", "kind: stag");
    expect_err(
        &y,
        &[],
        "unknown module kind `stag` for `s0`",
        Some((4, 14)),
        "modules.s0.kind",
        "did you mean `stage`?",
    );
}

#[test]
fn missing_kind_is_an_error() {
    let y = GOOD.replace("{kind: sink}", "{}");
    expect_err(
        &y,
        &[],
        "module `sink` has no `kind`",
        Some((5, 3)),
        "modules.sink",
        "add `kind:`",
    );
}

#[test]
fn unknown_parameter_is_an_error_with_a_suggestion() {
    let y = GOOD.replace("service_cycles: 2", "service_cyclez: 2");
    expect_err(
        &y,
        &[],
        "unknown parameter `service_cyclez` on `s0` (kind `stage`)",
        Some((4, 21)),
        "modules.s0.service_cyclez",
        "did you mean `service_cycles`?",
    );
}

#[test]
fn out_of_range_and_mistyped_parameters_are_errors() {
    let y = GOOD.replace("count: 10", "count: -3");
    expect_err(
        &y,
        &[],
        "bad value for `source.count`: -3 is out of range; expected an integer in 0..=9223372036854775807",
        Some((3, 33)),
        "modules.source.count",
        "number of tokens to emit",
    );
    let y = GOOD.replace("service_cycles: 2", "service_cycles: fast");
    expect_err(
        &y,
        &[],
        "bad value for `s0.service_cycles`: expected an integer in 0..=4294967296, found `fast`",
        Some((4, 37)),
        "modules.s0.service_cycles",
        "(cycles)",
    );
}

#[test]
fn unknown_port_lists_the_ports_of_that_direction() {
    let y = GOOD.replace("to: sink.in}", "to: sink.inn}");
    expect_err(
        &y,
        &[],
        "unknown port `inn` on `sink` (kind `sink`)",
        Some((8, 24)),
        "links[1].to",
        "did you mean `in`?",
    );
}

#[test]
fn unknown_module_in_a_link_is_an_error() {
    let y = GOOD.replace("from: s0.out", "from: s1.out");
    expect_err(
        &y,
        &[],
        "unknown module `s1`",
        Some((8, 12)),
        "links[1].from",
        "did you mean `s0`?",
    );
}

#[test]
fn malformed_endpoint_is_an_error() {
    let y = GOOD.replace("from: s0.out", "from: s0");
    expect_err(
        &y,
        &[],
        "`s0` is not of the form `instance.port`",
        Some((8, 12)),
        "links[1].from",
        "e.g.",
    );
}

#[test]
fn link_direction_must_run_from_an_output_to_an_input() {
    let y = GOOD.replace("{from: s0.out, to: sink.in}", "{from: sink.in, to: s0.out}");
    expect_err(
        &y,
        &[],
        "port `sink.in` is an input, but `links[1].from` needs an output",
        Some((8, 12)),
        "links[1].from",
        "swap them?",
    );
}

#[test]
fn unconnected_port_is_an_error() {
    let y = GOOD.replace("  - {from: s0.out, to: sink.in}\n", "");
    expect_err(
        &y,
        &[],
        "port `s0.out` (output, `token`) is not connected",
        Some((4, 3)),
        "modules.s0",
        "add a link with `from: s0.out`",
    );
}

#[test]
fn a_port_connected_twice_is_an_error() {
    let y = format!("{GOOD}  - {{from: s0.out, to: sink.in}}\n");
    expect_err(
        &y,
        &[],
        "port `s0.out` is connected twice",
        Some((9, 12)),
        "links[2].from",
        "test.yaml:8:5",
    );
}

#[test]
fn duplicate_module_names_are_an_error() {
    let y = GOOD.replace(
        "  sink: {kind: sink}\n",
        "  sink: {kind: sink}\n  s0: {kind: sink}\n",
    );
    expect_err(
        &y,
        &[],
        "module `s0` is defined twice",
        Some((6, 3)),
        "modules.s0",
        "test.yaml:4:3",
    );
}

#[test]
fn zero_latency_loops_are_refused_and_latency_breaks_them() {
    let ring = "clock_mhz: 100
modules:
  a: {kind: stage}
  b: {kind: stage}
links:
  - {from: a.out, to: b.in}
  - {from: b.out, to: a.in}
";
    expect_err(
        ring,
        &[],
        "links with zero latency close a loop through `a`, `b`",
        Some((6, 5)),
        "links",
        "latency_cycles: 1",
    );
    let broken = ring.replace(
        "{from: b.out, to: a.in}",
        "{from: b.out, to: a.in, latency_cycles: 1}",
    );
    let t = load_ok(&broken);
    // A ring with no tokens in it finishes at once with nothing pending.
    let summary = t.build().unwrap().run().unwrap();
    assert_eq!(summary.events, 0);
}

#[test]
fn link_fields_are_range_checked() {
    let y = GOOD.replace("depth: 4", "depth: 0");
    expect_err(
        &y,
        &[],
        "`links[0].depth` = 0 is out of range",
        Some((7, 42)),
        "links[0].depth",
        "1..=16777216",
    );
}

#[test]
fn unknown_keys_are_errors_not_warnings() {
    let y = format!("{GOOD}extra: 1\n");
    expect_err(
        &y,
        &[],
        "unknown field `extra`, expected one of name, description, clock_mhz, modules, links, workload, energy",
        Some((9, 1)),
        "extra",
        "stasim models",
    );
    let y = GOOD.replace("depth: 4}", "depth: 4, colour: red}");
    let err = load_text(&y, &[]).unwrap_err();
    assert!(err.message.starts_with("unknown field `colour`"), "{err}");
    assert_eq!(err.key, "links[0].colour");
}

#[test]
fn yaml_syntax_and_type_errors_have_locations() {
    let y = GOOD.replace("clock_mhz: 1000", "clock_mhz: fast");
    let err = load_text(&y, &[]).unwrap_err();
    assert!(
        matches!(
            err.origin,
            Origin::File {
                line: 1,
                column: 12,
                ..
            }
        ),
        "{err}"
    );
    let y = GOOD.replace("  sink: {kind: sink}", "  sink: {kind: sink");
    let err = load_text(&y, &[]).unwrap_err();
    assert!(
        matches!(err.origin, Origin::File { line, .. } if line >= 5),
        "{err}"
    );
}

#[test]
fn bad_clock_is_an_error() {
    expect_err(
        &GOOD.replace("clock_mhz: 1000", "clock_mhz: 0"),
        &[],
        "`clock_mhz` = 0 is not a valid clock frequency",
        Some((1, 12)),
        "clock_mhz",
        "MHz",
    );
}

#[test]
fn set_overrides_go_through_the_same_validation() {
    let t = load_text(GOOD, &["s0.service_cycles=7", "clock_mhz=500"]).unwrap();
    assert_eq!(t.modules[1].params.int("service_cycles"), Ok(7));
    assert_eq!(t.clock.period().as_ps(), 2_000);
    expect_err(
        GOOD,
        &["s0.service_cycles=-1"],
        "bad value for `s0.service_cycles`: -1 is out of range; expected an integer in 0..=4294967296",
        None,
        "modules.s0.service_cycles",
        "cycles",
    );
}

#[test]
fn set_on_an_unknown_key_is_an_error() {
    expect_err(
        GOOD,
        &["s0.bogus=1"],
        "unknown parameter `bogus` on `s0` (kind `stage`)",
        None,
        "modules.s0.bogus",
        "service_cycles",
    );
    expect_err(
        GOOD,
        &["s9.service_cycles=1"],
        "`--set` names an unknown module `s9`",
        None,
        "s9.service_cycles",
        "did you mean `s0`?",
    );
    expect_err(
        GOOD,
        &["a.b.c=1"],
        "unknown key `a.b.c`",
        None,
        "a.b.c",
        "INSTANCE.PARAM",
    );
    let err = stasim::topology::SetOverride::parse("s0.service_cycles").unwrap_err();
    assert_eq!(err.message, "`--set` expects KEY=VALUE");
}
