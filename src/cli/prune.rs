//! `stasim prune CHECKPOINT --pattern 2:4 [--family 4:8,2:8,1:8] [--method M] --out FILE` (a
//! safetensors encoder checkpoint, or a Llama-family decoder's GGUF), and
//! `stasim prune --verify FILE [CHECKPOINT]`.
//!
//! A GGUF is pruned layer by layer on the calibration text by default
//! ([`stasim::eval::calibrate`]): `--method wanda|sparsegpt` choose by the activations, and the
//! report's relative errors are on the real activations for every method;
//! `--error-inputs seeded` keeps magnitude's one-tensor-at-a-time prune with the error on
//! seeded uniform inputs. A safetensors encoder (MiniLM) is pruned that way by default with
//! `--method magnitude`, and layer by layer on the calibration text's sentences with
//! `--method wanda|sparsegpt` (or `--error-inputs calibration`): `--calibration-tokens` is
//! then the most the sentences taken total (`--calibration-window` is a decoder's).

use std::io::Write;
use std::path::PathBuf;

use stasim::Error;
use stasim::gguf::prune::Calibrated;
use stasim::io::OutputError;
use stasim::workload::calibrated::Method;
use stasim::workload::stanm::{PruneError, PruneReport, Scheme, prune_checkpoint, verify};
use stasim::workload::{Pattern, Patterns};

/// Arguments of `prune`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The safetensors checkpoint or decoder GGUF (with --verify: the safetensors source to
    /// compare against, optional).
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
    /// How the kept weights are chosen (wanda and sparsegpt calibrate on real text).
    #[arg(long, value_enum, default_value = "magnitude")]
    pub method: Method,
    /// Inputs of the report's relative error: the calibration text's activations (the
    /// default for a GGUF decoder, and for an encoder with wanda or sparsegpt) or seeded
    /// uniform inputs (magnitude only; an encoder's default with magnitude).
    #[arg(long, value_enum)]
    pub error_inputs: Option<ErrorInputs>,
    /// Calibration tokens (a decoder: a whole number of windows of --calibration-window is
    /// used; an encoder: the first calibration sentences while they total at most this).
    #[arg(long, default_value_t = 2048)]
    pub calibration_tokens: usize,
    /// Tokens a calibration sequence (decoders; an encoder's sequences are sentences).
    #[arg(long, default_value_t = 512)]
    pub calibration_window: usize,
}

/// The inputs the report's relative error is measured on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ErrorInputs {
    /// The activations of the calibration text, each layer's from the pruned layers before.
    Calibration,
    /// Seeded uniform inputs in [-1, 1).
    Seeded,
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

/// The calibrated prune `a` asks for (`None`: magnitude on seeded inputs, one tensor at a
/// time); wanda and sparsegpt need calibration inputs.
fn calibration(a: &Args, gguf: bool) -> Result<Option<Calibrated>, Error> {
    let inputs = a
        .error_inputs
        .unwrap_or(if gguf || a.method != Method::Magnitude {
            ErrorInputs::Calibration
        } else {
            ErrorInputs::Seeded
        });
    match inputs {
        ErrorInputs::Seeded if a.method != Method::Magnitude => Err(super::arg_error(
            format!(
                "--method {} chooses weights by the calibration activations",
                a.method.name()
            ),
            "--error-inputs",
            "drop --error-inputs seeded (it goes with --method magnitude)",
        )),
        ErrorInputs::Seeded => Ok(None),
        ErrorInputs::Calibration => {
            if gguf && (a.calibration_window < 2 || a.calibration_tokens < a.calibration_window) {
                return Err(super::arg_error(
                    format!(
                        "--calibration-tokens {} --calibration-window {}: at least one window of 2 or more tokens",
                        a.calibration_tokens, a.calibration_window
                    ),
                    "--calibration-tokens",
                    "e.g. --calibration-tokens 2048 --calibration-window 512",
                ));
            }
            let longest = *stasim::eval::text::SENTENCE_TOKENS.end();
            if !gguf && a.calibration_tokens < longest {
                return Err(super::arg_error(
                    format!(
                        "--calibration-tokens {}: an encoder calibrates on whole sentences of up to {longest} tokens",
                        a.calibration_tokens
                    ),
                    "--calibration-tokens",
                    format!("give {longest} or more, e.g. --calibration-tokens 2048"),
                ));
            }
            Ok(Some(Calibrated {
                method: a.method,
                tokens: a.calibration_tokens,
                window: a.calibration_window,
                text_dir: stasim::eval::text::default_dir(),
            }))
        }
    }
}

/// Writes the prune report's table to `w`.
fn print(w: &mut impl Write, r: &PruneReport) -> std::io::Result<()> {
    writeln!(
        w,
        "{:<52} {:>10} {:>24} {:>10} {:>8} {:>9}",
        "tensor", "dense MB", "member MB (densest first)", "family MB", "kept |w|", "rel.error"
    )?;
    let mb = |b: u64| b as f64 / 1e6;
    for t in &r.tensors {
        let members: Vec<String> = t
            .members
            .iter()
            .map(|m| format!("{:.3}", mb(m.bytes)))
            .collect();
        let Some(first) = t.members.last() else {
            continue;
        };
        writeln!(
            w,
            "{:<52} {:>10.3} {:>24} {:>10.3} {:>7.1}% {:>9.4}",
            t.name,
            mb(t.dense_bytes),
            members.join(" "),
            mb(t.family_bytes),
            100.0 * first.kept_magnitude,
            first.rel_error
        )?;
    }
    let dense: u64 = r.tensors.iter().map(|t| t.dense_bytes).sum();
    let family: u64 = r.tensors.iter().map(|t| t.family_bytes).sum();
    let n = r.tensors.iter().map(|t| t.members.len()).min().unwrap_or(0);
    writeln!(
        w,
        "\ntotal over {} pruned weights ({} tensors kept dense):",
        r.tensors.len(),
        r.dense_tensors
    )?;
    writeln!(w, "  dense (16-bit)          {:>10.3} MB", mb(dense))?;
    let mean = |f: &dyn Fn(&stasim::workload::stanm::TensorReport) -> f64| {
        r.tensors.iter().map(f).sum::<f64>() / r.tensors.len().max(1) as f64
    };
    for j in 0..n {
        let bytes: u64 = r.tensors.iter().map(|t| t.members[j].bytes).sum();
        writeln!(
            w,
            "  member {:<8}         {:>10.3} MB  ({:.2}x smaller), kept |w| {:.1} %, mean rel. error {:.4}",
            r.tensors[0].members[j].pattern,
            mb(bytes),
            dense as f64 / bytes.max(1) as f64,
            100.0 * mean(&|t| t.members[j].kept_magnitude),
            mean(&|t| t.members[j].rel_error)
        )?;
        let alone: Option<Vec<f64>> = r
            .tensors
            .iter()
            .map(|t| t.members[j].independent_rel_error)
            .collect();
        if let Some(alone) = alone {
            writeln!(
                w,
                "                                      pruned alone from the dense weights: mean rel. error {:.4}",
                alone.iter().sum::<f64>() / alone.len().max(1) as f64
            )?;
        }
    }
    if n > 1 {
        let separate: u64 = r
            .tensors
            .iter()
            .flat_map(|t| &t.members)
            .map(|m| m.bytes)
            .sum();
        writeln!(
            w,
            "  family stored as one    {:>10.3} MB  (members stored separately: {:.3} MB)",
            mb(family),
            mb(separate)
        )?;
    }
    writeln!(w, "  output file             {:>10.3} MB", mb(r.file_bytes))
}

/// Writes to stdout through `f`; a failed write (`> /dev/full`, a closed terminal) is an
/// output error naming stdout, not a panic.
fn to_stdout(
    f: impl FnOnce(&mut std::io::StdoutLock<'_>) -> std::io::Result<()>,
) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    f(&mut out).and_then(|()| out.flush()).map_err(|e| {
        OutputError {
            path: PathBuf::from("stdout"),
            message: e.to_string(),
        }
        .into()
    })
}

/// Runs `prune`.
pub fn run(a: &Args) -> Result<(), Error> {
    let input = |msg: String, arg: &str, gguf: bool| {
        super::arg_error(
            msg,
            arg,
            if gguf {
                "check the file: a GGUF of a Llama-family decoder (llama, mistral, qwen2) with \
                 F32, F16, BF16, Q8_0, Q4_0 or Q4_1 tensors"
            } else {
                "check the file: a safetensors checkpoint of a BERT-style encoder, or a \
                 Llama-family GGUF"
            },
        )
    };
    if let Some(file) = &a.verify {
        let r = verify(file, a.checkpoint.as_deref()).map_err(|m| {
            super::arg_error(
                m,
                &file.display().to_string(),
                "give a .stanm file written by `stasim prune` (and its source checkpoint)",
            )
        })?;
        to_stdout(|out| {
            if a.json {
                return writeln!(
                    out,
                    "{}",
                    serde_json::to_string_pretty(&r).unwrap_or_default()
                );
            }
            writeln!(
                out,
                "{}: {} pruned weights, {} members decoded",
                file.display(),
                r.pruned,
                r.members
            )?;
            match (&r.bit_exact_against_source, &r.mismatch) {
                (Some(true), _) => writeln!(
                    out,
                    "  every member matches a fresh pruning of the source bit for bit"
                ),
                (Some(false), m) => writeln!(
                    out,
                    "  MISMATCH against a fresh pruning of the source: {}",
                    m.as_deref().unwrap_or("")
                ),
                (None, _) => writeln!(out, "  (give the source checkpoint to compare bit for bit)"),
            }
        })?;
        return match (&r.mismatch, &a.checkpoint) {
            (Some(m), Some(src)) => Err(Error::Check(format!(
                "`{}` does not match its source `{}`: {m}",
                file.display(),
                src.display()
            ))),
            _ => Ok(()),
        };
    }
    let Some(src) = &a.checkpoint else {
        return Err(super::arg_error(
            "no checkpoint given",
            "prune",
            "stasim prune CHECKPOINT.safetensors --pattern 2:4 (or model.gguf)",
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
    // A folder, or a folder that does not exist, is refused before the checkpoint is read.
    stasim::io::check_output_path(&out).map_err(|e| {
        super::arg_error(
            e.to_string(),
            "--out",
            "give the path of a file in an existing folder",
        )
    })?;
    stasim::io::remove_temporaries_on_signals();
    let t0 = std::time::Instant::now();
    let gguf = stasim::gguf::prune::is_gguf(src);
    let calibrated = calibration(a, gguf)?;
    // Progress on stderr; a failing stderr only loses the progress.
    let mut progress = |l: usize| {
        let _ = writeln!(
            std::io::stderr(),
            "  layer {} pruned ({:.1} s)",
            l + 1,
            t0.elapsed().as_secs_f64()
        );
    };
    let pruned = if gguf {
        stasim::gguf::prune::prune_gguf(
            src,
            &scheme,
            &out,
            a.seed,
            calibrated.as_ref(),
            &mut progress,
        )
    } else if let Some(c) = &calibrated {
        stasim::eval::calibrate::prune_encoder_checkpoint(
            src,
            &scheme,
            &out,
            a.seed,
            c,
            &mut progress,
        )
    } else {
        prune_checkpoint(src, &scheme, &out, a.seed)
    };
    let r = pruned.map_err(|e| match e {
        PruneError::Input(m) => input(m, &src.display().to_string(), gguf),
        PruneError::Output(o) => o.into(),
    })?;
    let wall_s = t0.elapsed().as_secs_f64();
    to_stdout(|w| {
        if a.json {
            writeln!(
                w,
                "{}",
                serde_json::to_string_pretty(&r).unwrap_or_default()
            )
        } else {
            print(w, &r)?;
            writeln!(w, "  wrote {} in {wall_s:.2} s", out.display())
        }
    })
}
