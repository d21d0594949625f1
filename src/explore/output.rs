//! The explorer's outputs in its folder: `points.csv` (every measured candidate),
//! `frontier.csv` (the frontier, fastest first), `explore.json` (settings, options,
//! frontier, the comparison with the uniform patterns) and the chart `frontier.png` /
//! `.svg`; and the text summary it prints. Every file is written atomically.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::{Outcome, Settings};

/// The CSV header shared by `points.csv` and `frontier.csv`.
const HEADER: &str = "stage,qkv,proj,ffn1,ffn2,value_bits,latency_us,perplexity,predicted_latency_us,predicted_perplexity,frontier";

fn row(o: &Outcome, i: usize) -> String {
    let p = &o.points[i];
    let pat = o.patterns(i);
    let (pl, pp) = p.predicted.map_or((String::new(), String::new()), |m| {
        (m.latency_us.to_string(), m.perplexity.to_string())
    });
    format!(
        "{},{},{},{},{},{},{},{},{pl},{pp},{}",
        p.stage.name(),
        pat.qkv,
        pat.proj,
        pat.ffn1,
        pat.ffn2,
        p.value_bits,
        p.measured.latency_us,
        p.measured.perplexity,
        u8::from(o.frontier.contains(&i))
    )
}

/// Writes the CSVs, the JSON and the chart into `dir` (created); returns the files.
pub fn write(o: &Outcome, s: &Settings, dir: &Path) -> Result<Vec<PathBuf>, String> {
    crate::io::create_folder(dir).map_err(|e| e.to_string())?;
    let csv = |rows: &mut dyn Iterator<Item = usize>| {
        let mut t = format!("{HEADER}\n");
        for i in rows {
            t.push_str(&row(o, i));
            t.push('\n');
        }
        t
    };
    let mut files = Vec::new();
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), String> {
        let path = dir.join(name);
        crate::io::write_atomic(&path, bytes).map_err(|e| e.to_string())?;
        files.push(path);
        Ok(())
    };
    put("points.csv", csv(&mut (0..o.points.len())).as_bytes())?;
    put(
        "frontier.csv",
        csv(&mut o.frontier.iter().copied()).as_bytes(),
    )?;
    let point = |i: usize| {
        let p = &o.points[i];
        serde_json::json!({
            "patterns": o.patterns(i).list(),
            "value_bits": p.value_bits,
            "stage": p.stage.name(),
            "latency_us": p.measured.latency_us,
            "perplexity": p.measured.perplexity,
        })
    };
    let against: Vec<_> = o
        .against_uniform()
        .into_iter()
        .map(|(u, best)| {
            serde_json::json!({
                "uniform": point(u),
                "best_mixed_at_least_as_fast": best.map(point),
            })
        })
        .collect();
    let j = serde_json::json!({
        "gguf": s.gguf.display().to_string(),
        "files": s.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        "options": o.options.iter().map(|(p, f)| serde_json::json!({
            "pattern": p.to_string(), "file": f.display().to_string()
        })).collect::<Vec<_>>(),
        "evaluation": {"text": "evaluation", "tokens": s.tokens, "window": s.window},
        "decode_step": {"context": s.context, "batch": s.batch},
        "budget": s.budget,
        "value_bits": o.value_bits,
        "measured": o.points.len(),
        "candidates": o.candidates(),
        "frontier": o.frontier.iter().map(|&i| point(i)).collect::<Vec<_>>(),
        "against_uniform": against,
    });
    put(
        "explore.json",
        (serde_json::to_string_pretty(&j).unwrap_or_default() + "\n").as_bytes(),
    )?;
    files.extend(crate::plot::frontier::write(o, dir)?);
    Ok(files)
}

/// The summary printed at the end: the frontier and the comparison with uniform patterns.
pub fn summary(o: &Outcome) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{} of {} candidates measured ({} options per class: {}; values of {} bits); frontier of {} points, fastest first:",
        o.points.len(),
        o.candidates(),
        o.options.len(),
        o.options
            .iter()
            .map(|(p, _)| p.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        o.value_bits
            .iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
        o.frontier.len()
    );
    let _ = writeln!(
        t,
        "  {:<8} {:<8} {:<8} {:<8} {:>4} {:>12} {:>12}  stage",
        "qkv", "proj", "ffn1", "ffn2", "bits", "latency us", "perplexity"
    );
    for &i in &o.frontier {
        let p = o.patterns(i);
        let m = o.points[i].measured;
        let _ = writeln!(
            t,
            "  {:<8} {:<8} {:<8} {:<8} {:>4} {:>12.1} {:>12.3}  {}",
            p.qkv.to_string(),
            p.proj.to_string(),
            p.ffn1.to_string(),
            p.ffn2.to_string(),
            o.points[i].value_bits,
            m.latency_us,
            m.perplexity,
            o.points[i].stage.name()
        );
    }
    let _ = writeln!(t, "against the uniform patterns:");
    for (u, best) in o.against_uniform() {
        let mu = o.points[u].measured;
        let _ = write!(
            t,
            "  uniform {:<12} {:>9.1} us, perplexity {:>12.3}: ",
            o.name(u),
            mu.latency_us,
            mu.perplexity
        );
        let _ = match best {
            Some(b) => {
                let mb = o.points[b].measured;
                writeln!(
                    t,
                    "best mixed point at least as fast {} ({:.1} us, perplexity {:.3}, {:.2}x {})",
                    o.name(b),
                    mb.latency_us,
                    mb.perplexity,
                    if mb.perplexity <= mu.perplexity {
                        mu.perplexity / mb.perplexity
                    } else {
                        mb.perplexity / mu.perplexity
                    },
                    if mb.perplexity <= mu.perplexity {
                        "lower"
                    } else {
                        "higher"
                    }
                )
            }
            None => writeln!(t, "no mixed point measured is at least as fast"),
        };
    }
    t
}
