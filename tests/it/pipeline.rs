//! The pipeline benchmark of BENCH.md against its closed forms and against an independent
//! max-plus recurrence (no event queue, no actors).

use stasim::bench::run_pipeline;
use stasim::topology::Source;

/// Blocking-after-service tandem line, computed token by token:
/// - `a[k]`: time tx_k enters F0: `a[k] = max(a[k-1] + 1, g[0][k-4])` (`a[0] = 0`);
/// - `g[s][k]`: time stage s takes tx_k: `max(put time into F_s, d[s][k-1])`;
/// - `d[s][k]`: time stage s puts tx_k into F_{s+1}: `max(g[s][k] + (s+1), g[s+1][k-4])`
///   (a slot frees when the token 4 places ahead is taken);
/// - the sink takes tx_k the instant it is put: `g[5][k] = d[4][k]`.
///
/// Returns `(sim_end_ns, source_last_put_ns)`.
fn max_plus(t: usize) -> (u64, u64) {
    const STAGES: usize = 5;
    const DEPTH: usize = 4;
    let mut a = vec![0u64; t];
    let mut g = vec![vec![0u64; t]; STAGES + 1];
    let mut d = vec![vec![0u64; t]; STAGES];
    for k in 0..t {
        let ready = if k == 0 { 0 } else { a[k - 1] + 1 };
        a[k] = if k >= DEPTH {
            ready.max(g[0][k - DEPTH])
        } else {
            ready
        };
        for s in 0..STAGES {
            let arrive = if s == 0 { a[k] } else { d[s - 1][k] };
            let free = if k == 0 { 0 } else { d[s][k - 1] };
            g[s][k] = arrive.max(free);
            let done = g[s][k] + (s as u64 + 1);
            // g[s+1][k-4] is already known: it belongs to an earlier token.
            d[s][k] = if k >= DEPTH {
                done.max(g[s + 1][k - DEPTH])
            } else {
                done
            };
        }
        g[STAGES][k] = d[STAGES - 1][k];
    }
    (g[STAGES][t - 1], a[t - 1])
}

fn simulate(t: u64) -> stasim::bench::PipelineResult {
    let src = Source::read("pipeline").unwrap();
    let r = run_pipeline(&src, t, &[], None).unwrap();
    assert!(r.ok, "sink saw a wrong count, order or checksum for T={t}");
    assert_eq!(r.received, t);
    r
}

#[test]
fn small_pipelines_match_the_max_plus_recurrence() {
    for t in (1..=60).chain([97, 256]) {
        let r = simulate(t);
        assert_eq!(
            (r.sim_end_ns, r.source_last_put_ns),
            max_plus(t as usize),
            "T={t}"
        );
    }
}

#[test]
fn hand_computed_small_cases() {
    // T=1: the token passes 1+2+3+4+5 = 15 ns of service with no waiting.
    let r = simulate(1);
    assert_eq!((r.sim_end_ns, r.source_last_put_ns), (15, 0));
    // T=2: tx1 enters at 1 ns and trails tx0 by the bottleneck: S4 frees at 15, so tx1,
    // ready at S4 at 1+10 = 11, waits; it leaves S4 at 15+5 = 20.
    let r = simulate(2);
    assert_eq!((r.sim_end_ns, r.source_last_put_ns), (20, 1));
}

#[test]
fn large_pipelines_match_the_closed_forms() {
    for t in [41u64, 100, 1_000, 20_000] {
        let r = simulate(t);
        assert_eq!(r.sim_end_ns, 5 * t + 10, "sim_end_ns for T={t}");
        assert_eq!(
            r.source_last_put_ns,
            5 * t - 115,
            "source_last_put_ns for T={t}"
        );
    }
}

#[test]
fn the_recurrence_itself_agrees_with_bench_md() {
    // Guards the oracle: BENCH.md's closed forms for T >= 41.
    for t in [41usize, 50, 500] {
        assert_eq!(max_plus(t), (5 * t as u64 + 10, 5 * t as u64 - 115));
    }
}
