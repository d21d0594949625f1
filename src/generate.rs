//! Generation with a decoder: the prefill of the prompt, then `G` decode steps of one token
//! per sequence, each a run of its own (a step needs the token the one before sampled, so
//! nothing of one step overlaps the next). Step `t` attends to the `P + t` cached tokens and
//! itself. GPT-2 generates through its pre-LN decoder lowering ([`crate::model::gpt2`]),
//! prefill included; a sequence holds at most its 1024 learned positions (`P + G <= 1024`).
//!
//! Each run is simulated independently, so steps run on all cores at once (a fixed order of
//! assembly keeps the report byte-identical for any number of threads), and only a small
//! [`StepReport`] is kept of each: memory does not grow with the steps beyond those.
//!
//! # Numbers
//! - TTFT = the prefill's latency (`P` tokens of every sequence, and the first token's
//!   logits); TPOT = a decode step's latency (mean, p50 and last over the steps);
//!   tokens/s = `B / mean TPOT`.
//! - The **byte ledger** of a step splits its DRAM bytes (read and written): weight values
//!   `nnz x vb` and indices `nnz x ceil(log2 M) / 8` of every linear layer's loads, the
//!   lm_head's weights, KV read (each attention instance's `keys x dh x vb` of K and of V),
//!   KV write (`2 hkv dh vb` a token a layer: this step's K and V columns), and activations
//!   (everything else the run moved: Q, context, spills, residuals, logits).
//! - An op's **bound** is what the PE array spent most of the op's cycles on: computing, or
//!   waiting for DRAM, a buffer, the softmax or the accumulator; a vector or softmax op is
//!   bound by its unit.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde::Serialize;

use crate::error::Error;
use crate::model::{LinearClass, Role};
use crate::report::{OpReport, Report};
use crate::topology::Topology;
use crate::workload::{Phase, Workload};

/// What to generate.
#[derive(Copy, Clone, Debug)]
pub struct Generation {
    /// Decode steps after the prefill.
    pub generate: u64,
    /// Simulation threads (at least 1).
    pub threads: usize,
}

/// Where a step's DRAM bytes went.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Ledger {
    /// Linear layers' weight values.
    pub weight_values: u64,
    /// Linear layers' weight position indices.
    pub weight_indices: u64,
    /// The lm_head's weights.
    pub lm_head: u64,
    /// Cached K and V read by attention.
    pub kv_read: u64,
    /// This run's K and V written.
    pub kv_write: u64,
    /// Everything else.
    pub activations: u64,
}

impl Ledger {
    /// All bytes.
    pub fn total(&self) -> u64 {
        self.weight_values
            + self.weight_indices
            + self.lm_head
            + self.kv_read
            + self.kv_write
            + self.activations
    }
}

/// One op of a step, summed over the layers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OpBound {
    /// Op name (`qkv`, `down`, ...).
    pub name: String,
    /// Cycles it moved the finish line, over all layers.
    pub critical_cycles: u64,
    /// What bound it (see the module header).
    pub bound: &'static str,
    /// DRAM bytes it moved.
    pub dram_bytes: u64,
}

/// The prefill or one decode step.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StepReport {
    /// Tokens in the KV cache before the run (0 for the prefill).
    pub context: u64,
    /// Latency, engine cycles.
    pub cycles: u64,
    /// Latency, microseconds.
    pub time_us: f64,
    /// DRAM bytes read and written.
    pub dram_bytes: u64,
    /// The bytes by class.
    pub ledger: Ledger,
    /// PE utilisation.
    pub pe_utilization: f64,
}

/// Summary statistics of the decode steps' latencies, ms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Tpot {
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// First step.
    pub first_ms: f64,
    /// Last step.
    pub last_ms: f64,
}

/// A whole generation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GenerationReport {
    /// Topology name.
    pub topology: String,
    /// The prefill's workload (model, prompt length as `seq`, batch, patterns).
    pub workload: Workload,
    /// Decode steps.
    pub generate: u64,
    /// KV cache bytes a token a layer (`2 hkv dh vb`).
    pub kv_bytes_per_token_layer: u64,
    /// Time to first token (the prefill), ms.
    pub ttft_ms: f64,
    /// Decode step latency (`None` without decode steps).
    pub tpot: Option<Tpot>,
    /// Generated tokens a second over the decode steps (all sequences).
    pub tokens_per_s: Option<f64>,
    /// The prefill.
    pub prefill: StepReport,
    /// Every decode step, in order.
    pub steps: Vec<StepReport>,
    /// The last run's ops (the last decode step, else the prefill), summed over layers.
    pub last_ops: Vec<OpBound>,
}

/// What the PE array can spend an op's cycles on, in the order ties are broken.
const STATES: [&str; 5] = ["compute", "DRAM", "buffer", "softmax", "accumulator"];

/// `o`'s PE-array cycles by [`STATES`].
fn states(o: &OpReport) -> [u64; 5] {
    [
        o.pe_busy_cycles(),
        o.stall_dram_cycles,
        o.stall_buffer_cycles,
        o.stall_softmax_cycles,
        o.stall_downstream_cycles,
    ]
}

/// The bound of an op of `role` whose PE-array cycles are `cycles` (see the module header):
/// the largest state (the first on a tie), or its unit when the PE array never ran it.
fn bound_of(role: Role, cycles: [u64; 5]) -> &'static str {
    if cycles.iter().all(|&c| c == 0) {
        return match role {
            Role::Softmax => "softmax",
            Role::Vector { .. } => "vector unit",
            _ => "compute",
        };
    }
    let k = (0..STATES.len())
        .max_by_key(|&k| (cycles[k], STATES.len() - k))
        .unwrap_or(0);
    STATES[k]
}

/// What bound `o` (see the module header).
pub fn bound(o: &OpReport) -> &'static str {
    bound_of(o.role, states(o))
}

/// The byte ledger of a run of `w` whose report is `r`.
pub fn ledger(w: &Workload, r: &Report) -> Ledger {
    let vb = w.value_bits / 8;
    let mut l = Ledger::default();
    for o in w.graph().ops {
        match o.role {
            Role::Linear {
                class: LinearClass::LmHead,
            } => l.lm_head += o.k * o.cols * vb * o.instances,
            Role::Linear { class } => {
                let nnz = o.pattern.nnz_per_column(o.k) * o.cols * o.instances;
                l.weight_values += nnz * vb;
                l.weight_indices += (nnz * o.pattern.index_bits()).div_ceil(8);
                if class == LinearClass::Qkv
                    && let Some(dec) = &w.model.decoder
                {
                    // The K and V columns of every row: the cache append.
                    l.kv_write += o.rows * o.instances * 2 * dec.kv_heads * dec.head_dim * vb;
                }
            }
            Role::Scores | Role::Pv => {
                let keys = if o.role == Role::Scores { o.cols } else { o.k };
                let dh = o.attention.map_or(0, |a| a.head_dim);
                l.kv_read += keys * dh * vb * o.instances;
            }
            _ => {}
        }
    }
    let total = r.dram.bytes_read + r.dram.bytes_written;
    l.activations = total.saturating_sub(l.total());
    l
}

/// The step summary of a run.
fn step_report(w: &Workload, r: &Report) -> StepReport {
    StepReport {
        context: match w.phase {
            Phase::Prefill => 0,
            Phase::Decode { context } => context,
        },
        cycles: r.total_cycles,
        time_us: r.total_time_us,
        dram_bytes: r.dram.bytes_read + r.dram.bytes_written,
        ledger: ledger(w, r),
        pe_utilization: r.pe_utilization,
    }
}

/// The ops of `r` summed over its layers, in first-seen order.
fn op_bounds(r: &Report) -> Vec<OpBound> {
    let mut out: Vec<(OpBound, Role, [u64; 5])> = Vec::new();
    for o in r.layers.iter().flat_map(|l| &l.ops) {
        let i = out
            .iter()
            .position(|(b, ..)| b.name == o.name)
            .unwrap_or_else(|| {
                let b = OpBound {
                    name: o.name.clone(),
                    critical_cycles: 0,
                    bound: "",
                    dram_bytes: 0,
                };
                out.push((b, o.role, [0; 5]));
                out.len() - 1
            });
        let (b, _, sums) = &mut out[i];
        b.critical_cycles += o.critical_cycles;
        b.dram_bytes += o.dram_bytes;
        for (s, c) in sums.iter_mut().zip(states(o)) {
            *s += c;
        }
    }
    out.into_iter()
        .map(|(mut b, role, sums)| {
            // The bound of the sum: the same rule over the summed cycles.
            b.bound = bound_of(role, sums);
            b
        })
        .collect()
}

/// `p`-quantile (nearest rank) of sorted `v`: its `ceil(p n)`-th smallest (at least the
/// first).
pub(crate) fn quantile(v: &[f64], p: f64) -> f64 {
    let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Runs the prefill of `prefill` (its `seq` is the prompt) and `g.generate` decode steps on
/// `topo`; `progress` is told of every finished run (the prefill is run 0).
pub fn run(
    topo: &Topology,
    prefill: &Workload,
    g: Generation,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<GenerationReport, Error> {
    // GPT-2 generates with its pre-LN decoder lowering, the prefill included (its lm_head
    // for the first token); a plain GPT-2 prefill run stays post-LN.
    let gpt2 = crate::model::gpt2::as_decoder(&prefill.model).map(|model| Workload {
        model,
        ..prefill.clone()
    });
    let prefill = gpt2.as_ref().unwrap_or(prefill);
    let input_error = |m: String| {
        Error::Input(
            crate::topology::InputError::new(
                m,
                crate::topology::Origin::CommandLine("--generate".into()),
                "",
            )
            .with_hint("lower --prompt, --generate or --batch"),
        )
    };
    let Some(dec) = &prefill.model.decoder else {
        return Err(Error::Input(crate::topology::InputError::new(
            format!(
                "--generate needs a decoder; `{}` is an encoder",
                prefill.model.name
            ),
            crate::topology::Origin::CommandLine("--generate".into()),
            "",
        ).with_hint("use a decoder: gpt2-small, smollm2-135m, qwen2.5-0.5b, llama-3.2-1b, llama-3.1-8b, or --model config.json")));
    };
    let kv_bytes_per_token_layer = 2 * dec.kv_heads * dec.head_dim * prefill.value_bits / 8;
    let steps: Vec<Workload> = (0..g.generate)
        .map(|t| Workload {
            phase: Phase::Decode {
                context: prefill.seq + t,
            },
            ..prefill.clone()
        })
        .collect();
    for w in std::iter::once(prefill).chain(&steps) {
        w.validate().map_err(input_error)?;
    }
    let runs: Vec<&Workload> = std::iter::once(prefill).chain(&steps).collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    type Slot = Option<Result<(StepReport, Option<Vec<OpBound>>), Error>>;
    let results: Mutex<Vec<Slot>> = Mutex::new((0..runs.len()).map(|_| None).collect());
    let last = runs.len() - 1;
    let worker = || {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(w) = runs.get(i) else { break };
            let out = crate::run::simulate(topo, w, None, None, None).map(|o| {
                let bounds = (i == last).then(|| op_bounds(&o.report));
                (step_report(w, &o.report), bounds)
            });
            let failed = out.is_err();
            if let Ok(mut r) = results.lock() {
                r[i] = Some(out);
            }
            progress(done.fetch_add(1, Ordering::Relaxed) as u64 + 1);
            if failed {
                // Stop handing out runs: the first error is reported.
                next.store(runs.len(), Ordering::Relaxed);
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..g.threads.max(1).min(runs.len()) {
            s.spawn(worker);
        }
        worker();
    });
    let results = results
        .into_inner()
        .map_err(|_| Error::Failed("a simulation thread panicked".into()))?;
    let mut reports = Vec::with_capacity(results.len());
    let mut last_ops = Vec::new();
    for r in results {
        match r {
            Some(Ok((step, bounds))) => {
                if let Some(b) = bounds {
                    last_ops = b;
                }
                reports.push(step);
            }
            Some(Err(e)) => return Err(e),
            None => return Err(Error::Failed("a decode step did not run".into())),
        }
    }
    let prefill_report = reports.remove(0);
    let ms: Vec<f64> = reports.iter().map(|s| s.time_us / 1e3).collect();
    let tpot = (!ms.is_empty()).then(|| Tpot {
        mean_ms: ms.iter().sum::<f64>() / ms.len() as f64,
        p50_ms: {
            let mut sorted = ms.clone();
            sorted.sort_by(f64::total_cmp);
            quantile(&sorted, 0.5)
        },
        first_ms: ms[0],
        last_ms: ms[ms.len() - 1],
    });
    Ok(GenerationReport {
        topology: topo.name.clone(),
        workload: prefill.clone(),
        generate: g.generate,
        kv_bytes_per_token_layer,
        ttft_ms: prefill_report.time_us / 1e3,
        tokens_per_s: tpot
            .as_ref()
            .map(|t| prefill.batch as f64 / (t.mean_ms / 1e3)),
        tpot,
        prefill: prefill_report,
        steps: reports,
        last_ops,
    })
}
