//! Sweep results: one record per point, written as `results.json` and `results.csv`, and the
//! merge of shards.
//!
//! A point's report is the `stasim run --json` output of its child process, kept byte for
//! byte in `points/NNNN.json` (identical to the same run done by hand) and embedded in
//! `results.json`. The CSV has one row per point: its index, every varied setting, the
//! status and the headline numbers (for a topology without a controller: when the run
//! ended and every module's statistics), and the first line of a failed point's error.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::io::{OutputError, write_atomic};

/// What happened to one point.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct PointResult {
    /// Position in the sweep.
    pub index: usize,
    /// Varied settings, in order.
    pub params: Vec<(String, String)>,
    /// `ok`, `failed` (the run exited non-zero, or the point is infeasible) or `timeout`.
    pub status: String,
    /// The run's exit code, if it exited; 2 (bad input) for an infeasible point, which
    /// does not run.
    pub exit_code: Option<i32>,
    /// The run's error message (its stderr), for failed points; for an infeasible point,
    /// why its design cannot run, as `stasim run` says it.
    pub error: Option<String>,
    /// Wall seconds of the run (not deterministic).
    pub wall_s: f64,
    /// The run's report (`stasim run --json`).
    pub report: Option<serde_json::Value>,
}

/// A sweep's results file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// Sweep name.
    pub sweep: String,
    /// Points in the whole sweep.
    pub points_total: usize,
    /// The sweep's content hash ([`crate::sweep::Sweep::hash`]); empty in results written
    /// before there was one.
    #[serde(default)]
    pub sweep_hash: String,
    /// The shard these results cover (`I/N`), `all`, or `merged` (points of several
    /// shards: `sweep merge`, or a second shard run into the same folder).
    pub shard: String,
    /// Whether the sweep was interrupted (Ctrl-C) before every point ran.
    pub interrupted: bool,
    /// The base design's value of each varied key (what charts hold fixed).
    #[serde(default)]
    pub reference: Vec<(String, String)>,
    /// Finished points, by index.
    pub points: Vec<PointResult>,
}

fn num(r: &serde_json::Value, path: &[&str]) -> String {
    let mut v = r;
    for k in path {
        match v.get(k) {
            Some(x) => v = x,
            None => return String::new(),
        }
    }
    v.as_f64().map_or_else(String::new, |x| format!("{x}"))
}

/// Headline columns of the CSV: (name, path in the report).
const COLUMNS: [(&str, &[&str]); 8] = [
    ("latency_us", &["total_time_us"]),
    ("total_cycles", &["total_cycles"]),
    ("pe_utilization", &["pe_utilization"]),
    ("dram_avg_gbps", &["dram", "avg_gbps"]),
    ("dram_bytes_read", &["dram", "bytes_read"]),
    ("energy_uj", &["energy", "total_uj"]),
    ("avg_power_w", &["energy", "avg_power_w"]),
    ("gops_per_w_dense", &["energy", "gops_per_w_dense"]),
];

/// Whether `report` is the record of a run that simulated no workload (a topology without a
/// controller, [`crate::report::plain::PlainReport`]): it lists modules and has no workload.
pub fn is_plain(report: &serde_json::Value) -> bool {
    report.get("workload").is_none() && report.get("modules").is_some_and(|m| m.is_array())
}

/// Headline columns of a run without a workload: (name, path in its report).
const PLAIN_COLUMNS: [(&str, &[&str]); 3] = [
    ("latency_us", &["total_time_us"]),
    ("total_cycles", &["total_cycles"]),
    ("events", &["events"]),
];

/// `(module, statistic)` of every numeric module statistic in the plain reports of
/// `points`, in first-appearance order.
fn plain_stats(points: &[PointResult]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for r in points.iter().filter_map(|p| p.report.as_ref()) {
        let modules = r.get("modules").and_then(|m| m.as_array());
        for m in modules.into_iter().flatten() {
            let name = m.get("name").and_then(|n| n.as_str()).unwrap_or_default();
            let stats = m.get("stats").and_then(|s| s.as_object());
            for (k, v) in stats.into_iter().flatten() {
                let col = (name.to_owned(), k.clone());
                if v.is_number() && !out.contains(&col) {
                    out.push(col);
                }
            }
        }
    }
    out
}

/// A plain report's value of statistic `stat` of module `module`, as CSV text.
fn plain_stat(r: &serde_json::Value, module: &str, stat: &str) -> String {
    r.get("modules")
        .and_then(|m| m.as_array())
        .and_then(|ms| {
            ms.iter()
                .find(|m| m.get("name").and_then(|n| n.as_str()) == Some(module))
        })
        .and_then(|m| m.get("stats")?.get(stat)?.as_f64())
        .map_or_else(String::new, |x| format!("{x}"))
}

/// A CSV field, quoted when it holds a comma, a quote or a line break.
pub(crate) fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

impl Results {
    /// The CSV text. A sweep of a topology without a controller (every finished point's
    /// report is plain) has the plain headline columns and every module statistic
    /// (`module.stat`) instead of the workload's.
    pub fn csv(&self) -> String {
        let mut reports = self
            .points
            .iter()
            .filter_map(|p| p.report.as_ref())
            .peekable();
        let plain = reports.peek().is_some() && reports.all(is_plain);
        let headline: &[(&str, &[&str])] = if plain { &PLAIN_COLUMNS } else { &COLUMNS };
        let stats = if plain {
            plain_stats(&self.points)
        } else {
            Vec::new()
        };
        let mut keys: Vec<&str> = Vec::new();
        for p in &self.points {
            for (k, _) in &p.params {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
        let mut out = String::from("index");
        for k in &keys {
            out.push(',');
            out.push_str(&csv_field(k));
        }
        out.push_str(",status");
        for (c, _) in headline {
            out.push(',');
            out.push_str(c);
        }
        for (m, k) in &stats {
            out.push(',');
            out.push_str(&csv_field(&format!("{m}.{k}")));
        }
        out.push_str(",error\n");
        for p in &self.points {
            out.push_str(&p.index.to_string());
            for k in &keys {
                out.push(',');
                let v = p.params.iter().find(|(pk, _)| pk == k).map_or("", |x| &x.1);
                out.push_str(&csv_field(v));
            }
            out.push(',');
            out.push_str(&p.status);
            for (_, path) in headline {
                out.push(',');
                if let Some(r) = &p.report {
                    out.push_str(&num(r, path));
                }
            }
            for (m, k) in &stats {
                out.push(',');
                if let Some(r) = &p.report {
                    out.push_str(&plain_stat(r, m, k));
                }
            }
            out.push(',');
            let first_line = p
                .error
                .as_deref()
                .and_then(|e| e.lines().next())
                .unwrap_or("");
            out.push_str(&csv_field(first_line));
            out.push('\n');
        }
        out
    }

    /// Writes `results.json` and `results.csv` into `dir`, each atomically
    /// ([`crate::io::write_atomic`]).
    pub fn write(&self, dir: &Path) -> Result<(), OutputError> {
        let file = dir.join("results.json");
        let json = serde_json::to_string_pretty(self).map_err(|e| OutputError {
            path: file.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&file, format!("{json}\n").as_bytes())?;
        write_atomic(&dir.join("results.csv"), self.csv().as_bytes())
    }

    /// Reads `dir/results.json`.
    pub fn read(dir: &Path) -> Result<Results, String> {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
        serde_json::from_str(&text)
            .map_err(|e| format!("`{}` is not sweep results: {e}", path.display()))
    }

    /// Joins shard results of one sweep, each with where it came from (named in errors):
    /// the same sweep (name, size and content hash), no point twice.
    pub fn merge(parts: Vec<(String, Results)>) -> Result<Results, String> {
        let (from, first) = parts.first().ok_or("nothing to merge")?;
        let (from, sweep, total) = (from.clone(), first.sweep.clone(), first.points_total);
        let (hash, reference) = (first.sweep_hash.clone(), first.reference.clone());
        let mut points: Vec<(PointResult, String)> = Vec::new();
        let mut interrupted = false;
        for (at, r) in parts {
            if r.sweep != sweep || r.points_total != total {
                return Err(format!(
                    "cannot merge sweep `{}` ({} points, in `{at}`) with `{sweep}` ({total} \
                     points, in `{from}`)",
                    r.sweep, r.points_total
                ));
            }
            if r.sweep_hash.is_empty() {
                return Err(format!(
                    "`{at}` records no sweep hash (written by an older stasim), so it cannot \
                     be checked to be a shard of this sweep: run that shard again"
                ));
            }
            if r.sweep_hash != hash {
                return Err(format!(
                    "`{at}` and `{from}` hold different sweeps under one name, `{sweep}` \
                     ({total} points): their settings differ (sweep hash {} against {hash})",
                    r.sweep_hash
                ));
            }
            if let Some(p) = r.points.iter().find(|p| p.index >= total) {
                return Err(format!(
                    "`{at}` holds point {} of a sweep of {total} points (points are 0 to {})",
                    p.index,
                    total.saturating_sub(1)
                ));
            }
            interrupted |= r.interrupted;
            points.extend(r.points.into_iter().map(|p| (p, at.clone())));
        }
        points.sort_by_key(|(p, _)| p.index);
        if let Some(w) = points.windows(2).find(|w| w[0].0.index == w[1].0.index) {
            return Err(format!(
                "point {} appears in `{}` and in `{}` (the same shard twice?)",
                w[0].0.index, w[0].1, w[1].1
            ));
        }
        let points = points.into_iter().map(|(p, _)| p).collect();
        Ok(Results {
            sweep,
            points_total: total,
            sweep_hash: hash,
            shard: "merged".into(),
            interrupted,
            reference,
            points,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(hash: &str, indices: &[usize]) -> Results {
        Results {
            sweep: "s".into(),
            points_total: 3,
            sweep_hash: hash.into(),
            shard: "0/2".into(),
            interrupted: false,
            reference: Vec::new(),
            points: indices
                .iter()
                .map(|&index| PointResult {
                    index,
                    params: Vec::new(),
                    status: "ok".into(),
                    exit_code: Some(0),
                    error: None,
                    wall_s: 0.0,
                    report: None,
                })
                .collect(),
        }
    }

    #[test]
    fn merge_joins_shards_of_one_sweep_and_refuses_the_rest() {
        let ok = Results::merge(vec![
            ("a".into(), shard("h", &[0, 2])),
            ("b".into(), shard("h", &[1])),
        ]);
        assert_eq!(
            ok.unwrap()
                .points
                .iter()
                .map(|p| p.index)
                .collect::<Vec<_>>(),
            [0, 1, 2]
        );
        let cases = [
            (
                vec![shard("h", &[0]), shard("g", &[1])],
                "hold different sweeps",
            ),
            (
                vec![shard("h", &[0]), shard("", &[1])],
                "records no sweep hash",
            ),
            (
                vec![shard("h", &[0, 1]), shard("h", &[1])],
                "point 1 appears in `a` and in `b`",
            ),
            // More points than the sweep has (a folder edited by hand).
            (
                vec![shard("h", &[0]), shard("h", &[3, 4, 5, 6])],
                "holds point 3 of a sweep of 3",
            ),
        ];
        for (parts, msg) in cases {
            let named = parts
                .into_iter()
                .zip(["a", "b"])
                .map(|(r, n)| (n.to_string(), r));
            let err = Results::merge(named.collect()).unwrap_err();
            assert!(err.contains(msg), "{err}");
        }
    }
}
