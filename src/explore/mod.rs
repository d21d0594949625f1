//! The accuracy-latency explorer (`stasim explore`): per-class N:M choices for a decoder,
//! each scored by its simulated decode-step latency on an STA topology and by its
//! perplexity on the held-out text, and the frontier of the two.
//!
//! - **Options** ([`sources`]): dense and the patterns of uniformly pruned `.stanm` files
//!   of the model (made by `stasim prune`, e.g. SparseGPT at 2:4, 4:8, 2:8, ...). A candidate
//!   gives each class (qkv, proj, ffn1 = gate and up, ffn2 = down) one option; its model is
//!   composed from the options' models (an approximation: see [`sources`]).
//! - **Latency**: the decode step of one token at context `context` (batch `batch`),
//!   simulated whole on the topology with the candidate's patterns (`total_time_us`, the
//!   number `stasim run --checkpoint FILE --context C --pattern qkv=..,proj=..,ffn1=..,ffn2=..`
//!   prints).
//! - **Quality**: perplexity of the composed model on the first `tokens` tokens of the
//!   evaluation text in windows of `window` (as `stasim eval`).
//! - **Value bits**: each width of `value_bits` (16, the stored f16 values, and e.g. 8) is
//!   searched as a whole: its latency is simulated with the workload's `value_bits` (every
//!   tensor's bytes), its perplexity evaluated with weights and activations rounded to that
//!   fixed point ([`crate::eval::forward::Model::with_value_bits`]). The frontier is over
//!   the points of every width.
//! - **Search** ([`search`]): probes, an additive surrogate, refinement of its frontier.
//! - **Caches** ([`cache`]): latencies and perplexities by pattern, in the output folder,
//!   keyed by what they depend on, so a second run re-measures nothing it has measured.
//! - **Verification**: every frontier point is simulated and evaluated again from scratch
//!   (no cache) and must give the recorded values bit for bit.

pub mod cache;
pub mod output;
pub mod search;
pub mod sources;

use std::path::{Path, PathBuf};
use std::time::Instant;

use self::cache::Cache;
use self::search::{Choice, Measured, Point};
use self::sources::Sources;
use crate::Error;
use crate::eval::text::{self, Split};
use crate::eval::tokenizer::ByteBpe;
use crate::run::{WorkloadArgs, resolve_workload, simulate};
use crate::sweep::hash::StableHash;
use crate::topology::Topology;
use crate::workload::{Pattern, Patterns, Workload};

/// What an explorer run is given.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The dense GGUF (its tokeniser too).
    pub gguf: PathBuf,
    /// Pruned `.stanm` files of it.
    pub files: Vec<PathBuf>,
    /// Only these sparse patterns (default every member of the files).
    pub only: Option<Vec<Pattern>>,
    /// Evaluation tokens.
    pub tokens: usize,
    /// Tokens a window.
    pub window: usize,
    /// Decode-step context (tokens cached).
    pub context: u64,
    /// Batch.
    pub batch: u64,
    /// Refinement measurements at most (per value width).
    pub budget: usize,
    /// Value widths searched, each as a whole (16: the stored values; 8: 8-bit fixed point).
    pub value_bits: Vec<u32>,
    /// Folder of the text (`scripts/fetch-text.sh`).
    pub text_dir: PathBuf,
    /// Folder of the caches (`None`: none kept).
    pub cache_dir: Option<PathBuf>,
}

/// What measures a choice: its options, the topology, the evaluation tokens.
struct Scorer {
    sources: Sources,
    topo: Topology,
    /// The decode step's workload (patterns replaced per candidate).
    step: Workload,
    ids: Vec<u32>,
    window: usize,
}

impl Scorer {
    fn simulate(&self, c: Choice, bits: u32) -> Result<f64, Error> {
        let mut w = self.step.clone();
        w.patterns = self.sources.patterns(c);
        w.value_bits = u64::from(bits);
        Ok(simulate(&self.topo, &w, None, None, None)?
            .report
            .total_time_us)
    }

    fn evaluate(&self, c: Choice, bits: u32) -> Result<f64, Error> {
        let mut m = self.sources.model(c).map_err(Error::Failed)?;
        if bits != 16 {
            m = m.with_value_bits(bits).map_err(Error::Failed)?;
        }
        Ok(m.perplexity(&self.ids, self.window)
            .map_err(Error::Failed)?
            .0)
    }
}

/// A loaded explorer: what measures, and the caches of what it measured.
pub struct Explorer {
    scorer: Scorer,
    value_bits: Vec<u32>,
    latency: Cache,
    quality: Cache,
}

/// A finished search.
pub struct Outcome {
    /// Each option's pattern and file.
    pub options: Vec<(Pattern, PathBuf)>,
    /// Every measured point, in the order measured.
    pub points: Vec<Point>,
    /// Indices into `points` of the frontier, fastest first.
    pub frontier: Vec<usize>,
    /// The value widths searched.
    pub value_bits: Vec<u32>,
    /// Values the caches gave (latencies, perplexities) instead of measuring.
    pub cached: (usize, usize),
    /// Wall seconds of the search.
    pub wall_s: f64,
}

impl Outcome {
    /// The per-class patterns of point `i`.
    pub fn patterns(&self, i: usize) -> Patterns {
        Patterns::from_classes(self.points[i].choice.map(|o| self.options[o].0))
    }

    /// Point `i` as a user names it: its patterns ([`Patterns`]' display), and its value bits
    /// when not 16 (`2:8 8-bit`).
    pub fn name(&self, i: usize) -> String {
        match self.points[i].value_bits {
            16 => self.patterns(i).to_string(),
            b => format!("{} {b}-bit", self.patterns(i)),
        }
    }

    /// Candidates of the search space: per-class choices times value widths.
    pub fn candidates(&self) -> usize {
        self.options.len().pow(4) * self.value_bits.len()
    }

    /// Whether point `i` gives every class one pattern.
    pub fn is_uniform(&self, i: usize) -> bool {
        let c = self.points[i].choice;
        c.iter().all(|&o| o == c[0])
    }

    /// For each uniform point (dense excluded; of every value width), in option order, wider
    /// values first: it and the best mixed point (of any width) measured that is at least as
    /// fast (lowest perplexity; `None` if none is).
    pub fn against_uniform(&self) -> Vec<(usize, Option<usize>)> {
        let mut v: Vec<(usize, Option<usize>)> = (0..self.points.len())
            .filter(|&i| self.is_uniform(i) && self.points[i].choice[0] != 0)
            .map(|u| {
                let lat = self.points[u].measured.latency_us;
                let best = (0..self.points.len())
                    .filter(|&j| !self.is_uniform(j) && self.points[j].measured.latency_us <= lat)
                    .min_by(|&a, &b| {
                        let (pa, pb) = (self.points[a].measured, self.points[b].measured);
                        pa.perplexity.total_cmp(&pb.perplexity).then(a.cmp(&b))
                    });
                (u, best)
            })
            .collect();
        v.sort_by_key(|&(u, _)| {
            let p = &self.points[u];
            (p.choice[0], std::cmp::Reverse(p.value_bits))
        });
        v
    }
}

/// An FNV hash of a file's bytes (for cache fingerprints).
fn file_hash(path: &Path) -> Result<String, String> {
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    Ok(StableHash::new().bytes(&bytes).hex())
}

impl Explorer {
    /// Loads the options of `s` on topology `topo` (its text `topo_text`, for the cache).
    pub fn new(
        s: &Settings,
        topo: Topology,
        topo_text: &str,
        progress: &dyn Fn(&str),
    ) -> Result<Explorer, Error> {
        let input = |m: String| {
            Error::from(
                crate::topology::InputError::new(
                    m,
                    crate::topology::Origin::CommandLine("explore".into()),
                    "",
                )
                .with_hint("stasim explore GGUF --from PRUNED.stanm [--from ...]"),
            )
        };
        let width_ok = |b: &u32| crate::workload::VALUE_BITS.contains(&u64::from(*b));
        let once = |i: usize| !s.value_bits[..i].contains(&s.value_bits[i]);
        if s.value_bits.is_empty()
            || !s.value_bits.iter().all(width_ok)
            || !(0..s.value_bits.len()).all(once)
        {
            return Err(input(format!(
                "value bits {:?}: the simulator's values are 16 or 8 bits; give each at most once",
                s.value_bits
            )));
        }
        let bpe = ByteBpe::from_gguf_file(&s.gguf)?;
        let t = text::load(&s.text_dir, Split::Evaluation).map_err(input)?;
        let ids = bpe.encode(&t);
        if s.window < 2 || s.tokens < 2 || s.tokens > ids.len() {
            return Err(input(format!(
                "--tokens {} --window {}: the evaluation text has {} tokens; give 2 <= --tokens <= {} and --window >= 2",
                s.tokens,
                s.window,
                ids.len(),
                ids.len()
            )));
        }
        let sources =
            Sources::load(&topo, &s.gguf, &s.files, s.only.as_deref(), progress).map_err(input)?;
        let args = WorkloadArgs {
            checkpoint: s.files.first().cloned(),
            context: Some(s.context as i64),
            batch: Some(s.batch as i64),
            ..WorkloadArgs::default()
        };
        let mut step = resolve_workload(&topo, &args)?;
        step.per_layer.clear();
        let version = env!("CARGO_PKG_VERSION");
        let mut lh = StableHash::new();
        lh.field(topo_text).field(&format!("{step:?}"));
        let mut qh = StableHash::new();
        qh.field(&file_hash(&s.gguf).map_err(input)?);
        for f in &s.files {
            qh.field(&file_hash(f).map_err(input)?);
        }
        qh.field(&t)
            .u64(s.tokens as u64)
            .u64(s.window as u64)
            .field(&format!("{:?}", s.only));
        let open = |name: &str, fp: String| {
            Cache::open(s.cache_dir.as_ref().map(|d| d.join(name)).as_deref(), &fp)
        };
        Ok(Explorer {
            value_bits: s.value_bits.clone(),
            latency: open(
                "latency-cache.csv",
                format!("# stasim {version} explore latency {}", lh.hex()),
            ),
            quality: open(
                "perplexity-cache.csv",
                format!("# stasim {version} explore perplexity {}", qh.hex()),
            ),
            scorer: Scorer {
                sources,
                topo,
                step,
                ids: ids[..s.tokens].to_vec(),
                window: s.window,
            },
        })
    }

    /// The options: each pattern and its file.
    pub fn options(&self) -> Vec<(Pattern, PathBuf)> {
        self.scorer
            .sources
            .options
            .iter()
            .map(|o| (o.pattern, o.file.clone()))
            .collect()
    }

    /// The decode step of choice `c` with `bits`-bit values, simulated (no cache):
    /// microseconds.
    pub fn simulate(&self, c: Choice, bits: u32) -> Result<f64, Error> {
        self.scorer.simulate(c, bits)
    }

    /// The perplexity of choice `c`'s model with `bits`-bit values (no cache).
    pub fn evaluate(&self, c: Choice, bits: u32) -> Result<f64, Error> {
        self.scorer.evaluate(c, bits)
    }

    /// The caches' key of `c` at `bits`: its per-class list, and `,bits=B` unless 16.
    fn key(&self, c: Choice, bits: u32) -> String {
        let list = self.scorer.sources.patterns(c).list();
        match bits {
            16 => list,
            b => format!("{list},bits={b}"),
        }
    }

    /// Measures `c` at `bits`, from the caches when they hold it; says whether each came
    /// from one.
    fn measure(&mut self, c: Choice, bits: u32) -> Result<(Measured, bool, bool), Error> {
        let key = self.key(c, bits);
        let s = &self.scorer;
        let (lat, lc) = self.latency.get_or_measure(&key, || s.simulate(c, bits))?;
        let (ppl, qc) = self.quality.get_or_measure(&key, || s.evaluate(c, bits))?;
        Ok((
            Measured {
                latency_us: lat,
                perplexity: ppl,
            },
            lc,
            qc,
        ))
    }

    /// Runs the search of every value width, each with at most `budget` refinement
    /// measurements.
    pub fn search(&mut self, budget: usize, progress: &dyn Fn(&str)) -> Result<Outcome, Error> {
        let t0 = Instant::now();
        let options = self.scorer.sources.options.len();
        let mut cached = (0, 0);
        let mut done = 0usize;
        let mut points = Vec::new();
        for bits in self.value_bits.clone() {
            if self.value_bits.len() > 1 {
                progress(&format!("{bits}-bit values:"));
            }
            let this = &mut *self;
            let mut measure = |cs: &[Choice]| -> Result<Vec<Measured>, Error> {
                let mut v = Vec::with_capacity(cs.len());
                for &c in cs {
                    let t = Instant::now();
                    let (m, lc, qc) = this.measure(c, bits)?;
                    cached.0 += usize::from(lc);
                    cached.1 += usize::from(qc);
                    done += 1;
                    progress(&format!(
                        "  [{done}] {}: {:.1} us, perplexity {:.3}{}",
                        this.key(c, bits),
                        m.latency_us,
                        m.perplexity,
                        if lc && qc {
                            " (cached)".to_owned()
                        } else {
                            format!(" ({:.1} s)", t.elapsed().as_secs_f64())
                        }
                    ));
                    v.push(m);
                }
                // Keep what was measured even if a later batch fails or is interrupted.
                this.latency.save().map_err(Error::Output)?;
                this.quality.save().map_err(Error::Output)?;
                Ok(v)
            };
            points.extend(search::run(options, budget, bits, &mut measure, progress)?);
        }
        let ms: Vec<Measured> = points.iter().map(|p| p.measured).collect();
        let frontier = search::pareto(&ms);
        Ok(Outcome {
            options: self.options(),
            value_bits: self.value_bits.clone(),
            points,
            frontier,
            cached,
            wall_s: t0.elapsed().as_secs_f64(),
        })
    }

    /// Simulates and evaluates every frontier point of `o` again, without the caches;
    /// returns the points whose values differ from the recorded ones (with the new values).
    pub fn verify(
        &self,
        o: &Outcome,
        progress: &dyn Fn(&str),
    ) -> Result<Vec<(usize, Measured)>, Error> {
        let mut bad = Vec::new();
        for &i in &o.frontier {
            let (c, bits) = (o.points[i].choice, o.points[i].value_bits);
            let m = Measured {
                latency_us: self.simulate(c, bits)?,
                perplexity: self.evaluate(c, bits)?,
            };
            let rec = o.points[i].measured;
            let same = m.latency_us.to_bits() == rec.latency_us.to_bits()
                && m.perplexity.to_bits() == rec.perplexity.to_bits();
            progress(&format!(
                "  verified {}: {:.1} us, perplexity {:.3}{}",
                self.key(c, bits),
                m.latency_us,
                m.perplexity,
                if same { "" } else { "  DIFFERS" }
            ));
            if !same {
                bad.push((i, m));
            }
        }
        Ok(bad)
    }
}
