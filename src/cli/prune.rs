//! `stasim prune CHECKPOINT --pattern 2:4 [--family 4:8,2:8,1:8] --out FILE`, and
//! `stasim prune --verify FILE [CHECKPOINT]`.

use std::path::PathBuf;

use stasim::Error;
use stasim::workload::stanm::{PruneReport, Scheme, prune_checkpoint, verify};
use stasim::workload::{Pattern, Patterns};

/// Arguments of `prune`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The safetensors checkpoint (with --verify: the source to compare against, optional).
    pub checkpoint: Option<PathBuf>,
    /// N:M pattern for every linear weight, or per class: qkv=..,proj=..,ffn1=..,ffn2=..
    #[arg(long, default_value = "2:4")]
    pub pattern: String,
    /// A nested family of one M, e.g. 4:8,2:8,1:8 (overrides --pattern).
    #[arg(long, value_delimiter = ',')]
    pub family: Option<Vec<String>>,
    /// Output file (default: CHECKPOINT's stem + pattern + `.stanm`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Read a .stanm file back, decode every member, and with CHECKPOINT compare bit for bit.
    #[arg(long, value_name = "FILE")]
    pub verify: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Seed of the random inputs of the reconstruction error.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn scheme(a: &Args) -> Result<Scheme, Error> {
    let bad = |msg: String, arg: &str| {
        super::arg_error(
            msg,
            arg,
            "patterns are N:M with 1 <= N <= M, M >= 2 (e.g. 2:4)",
        )
    };
    if let Some(list) = &a.family {
        let mut fam: Vec<Pattern> = list
            .iter()
            .map(|p| Pattern::parse(p).map_err(|m| bad(m, "--family")))
            .collect::<Result<_, _>>()?;
        fam.sort_by_key(|p| std::cmp::Reverse(p.n));
        fam.dedup();
        if fam.iter().any(|p| p.is_dense() || p.m != fam[0].m) {
            return Err(bad(
                "a family's members must all be sparse with the same M".into(),
                "--family",
            ));
        }
        return Ok(Scheme::Family(fam));
    }
    let p = Patterns::parse(&a.pattern).map_err(|m| bad(m, "--pattern"))?;
    if p.all().iter().any(|x| x.is_dense()) {
        return Err(bad("dense is not a pruning pattern".into(), "--pattern"));
    }
    Ok(Scheme::Patterns(p))
}

fn print(r: &PruneReport) {
    println!(
        "{:<52} {:>10} {:>24} {:>10} {:>8} {:>9}",
        "tensor", "dense MB", "member MB (densest first)", "family MB", "kept |w|", "rel.error"
    );
    let mb = |b: u64| b as f64 / 1e6;
    for t in &r.tensors {
        let members: Vec<String> = t
            .members
            .iter()
            .map(|m| format!("{:.3}", mb(m.bytes)))
            .collect();
        let first = &t.members[t.members.len() - 1];
        println!(
            "{:<52} {:>10.3} {:>24} {:>10.3} {:>7.1}% {:>9.4}",
            t.name,
            mb(t.dense_bytes),
            members.join(" "),
            mb(t.family_bytes),
            100.0 * first.kept_magnitude,
            first.rel_error
        );
    }
    let dense: u64 = r.tensors.iter().map(|t| t.dense_bytes).sum();
    let family: u64 = r.tensors.iter().map(|t| t.family_bytes).sum();
    let n = r.tensors.first().map_or(0, |t| t.members.len());
    println!(
        "\ntotal over {} pruned weights ({} tensors kept dense):",
        r.tensors.len(),
        r.dense_tensors
    );
    println!("  dense (16-bit)          {:>10.3} MB", mb(dense));
    for j in 0..n {
        let bytes: u64 = r.tensors.iter().map(|t| t.members[j].bytes).sum();
        let err: f64 = r
            .tensors
            .iter()
            .map(|t| t.members[j].rel_error)
            .sum::<f64>()
            / r.tensors.len().max(1) as f64;
        let kept: f64 = r
            .tensors
            .iter()
            .map(|t| t.members[j].kept_magnitude)
            .sum::<f64>()
            / r.tensors.len().max(1) as f64;
        println!(
            "  member {:<8}         {:>10.3} MB  ({:.2}x smaller), kept |w| {:.1} %, mean rel. error {:.4}",
            r.tensors[0].members[j].pattern,
            mb(bytes),
            dense as f64 / bytes.max(1) as f64,
            100.0 * kept,
            err
        );
    }
    if n > 1 {
        let separate: u64 = r
            .tensors
            .iter()
            .flat_map(|t| &t.members)
            .map(|m| m.bytes)
            .sum();
        println!(
            "  family stored as one    {:>10.3} MB  (members stored separately: {:.3} MB)",
            mb(family),
            mb(separate)
        );
    }
    println!("  output file             {:>10.3} MB", mb(r.file_bytes));
}

/// Runs `prune`.
pub fn run(a: &Args) -> Result<(), Error> {
    let input = |msg: String, arg: &str| {
        super::arg_error(
            msg,
            arg,
            "check the file: a safetensors checkpoint of a BERT-style encoder",
        )
    };
    if let Some(file) = &a.verify {
        let r = verify(file, a.checkpoint.as_deref())
            .map_err(|m| input(m, &file.display().to_string()))?;
        if a.json {
            println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
        } else {
            println!(
                "{}: {} pruned weights, {} members decoded",
                file.display(),
                r.pruned,
                r.members
            );
            match r.bit_exact_against_source {
                Some(true) => {
                    println!("  every member matches a fresh pruning of the source bit for bit")
                }
                Some(false) => println!("  MISMATCH against a fresh pruning of the source"),
                None => println!("  (give the source checkpoint to compare bit for bit)"),
            }
        }
        return if r.bit_exact_against_source == Some(false) {
            Err(Error::Output(format!(
                "{} does not match its source",
                file.display()
            )))
        } else {
            Ok(())
        };
    }
    let Some(src) = &a.checkpoint else {
        return Err(super::arg_error(
            "no checkpoint given",
            "prune",
            "stasim prune CHECKPOINT.safetensors --pattern 2:4",
        ));
    };
    let scheme = scheme(a)?;
    let out = a.out.clone().unwrap_or_else(|| {
        let stem = src
            .file_stem()
            .map_or_else(|| "model".into(), |s| s.to_string_lossy().into_owned());
        let tag = match &scheme {
            Scheme::Family(f) => f
                .iter()
                .map(|p| format!("{}of{}", p.n, p.m))
                .collect::<Vec<_>>()
                .join("-"),
            Scheme::Patterns(_) => a.pattern.replace(':', "of").replace([',', '='], "_"),
        };
        PathBuf::from(format!("{stem}.{tag}.stanm"))
    });
    let t0 = std::time::Instant::now();
    let r = prune_checkpoint(src, &scheme, &out, a.seed)
        .map_err(|m| input(m, &src.display().to_string()))?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        print(&r);
        println!(
            "  wrote {} in {:.2} s",
            out.display(),
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
