//! Greedy generation with a Llama-family decoder in the f64 reference: the prefill of each
//! sequence's prompt, then decode steps of one token a sequence with a KV cache, every run
//! the graph the simulator would run ([`crate::functional::reference`] over the prefill's
//! and each decode step's lowering), no tiling and no rounding.
//!
//! Token `0` of each sequence is the argmax of the prefill's logits (the last prompt
//! position), token `t` the argmax of decode step `t`'s (ties: the lower id); `G` tokens take
//! `G - 1` decode steps. The cache after the prefill is each layer's rotated K and the V of
//! the prompt; each step appends its token's (the data plane's layout, [`super::KvCache`]).
//!
//! [`EngineGeneration`] is the record of the same generation with values through the
//! simulated engine (`stasim run --functional --generate G`, [`crate::run::functional_generation`]):
//! the prefill, then `G` decode steps, each fed the token the engine's logits chose and the
//! KV cache the engine's run before left, each checked against the f64 reference of that run
//! (from the same inputs); its tokens are the prefill's argmax and each step's (`G + 1`).

use serde::Serialize;

use super::FunctionalReport;
use super::reference::Reference;
use super::weights::ModelWeights;
use super::wiring::{CacheF64, Wiring};
use crate::workload::{Phase, Workload};

/// What [`generate`] computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Generated {
    /// Per sequence, the logits of the last prompt position (`V` values).
    pub prefill_logits: Vec<Vec<f64>>,
    /// Per sequence, the greedy tokens.
    pub tokens: Vec<Vec<u32>>,
    /// Per decode step and sequence, the logits (`V` values).
    pub step_logits: Vec<Vec<Vec<f64>>>,
}

/// One run of an [`EngineGeneration`].
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EngineRun {
    /// `prefill` or `step t`.
    pub run: String,
    /// Tokens in the KV cache before the run (0 for the prefill).
    pub context: u64,
    /// Simulated cycles of the run.
    pub cycles: u64,
    /// The run's check against the reference.
    pub functional: FunctionalReport,
}

/// A generation with values through the engine (module header).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct EngineGeneration {
    /// Where the weights came from.
    pub weights: String,
    /// Tolerance on each run's output (logits) relative error.
    pub tolerance: f64,
    /// Per sequence, the prompt's token ids (seeded).
    pub prompts: Vec<Vec<u32>>,
    /// Per sequence, the greedy tokens: the prefill's, then each decode step's.
    pub tokens: Vec<Vec<u32>>,
    /// The prefill and every decode step.
    pub runs: Vec<EngineRun>,
    /// Whether every run passed.
    pub passed: bool,
}

/// The index of the largest value (the first of equal ones).
pub fn argmax(v: &[f64]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// One reference run of `w` (its phase) on `tokens` and an f64 cache: the logits per
/// sequence and the cache after it.
fn step(
    w: &Workload,
    weights: &ModelWeights,
    tokens: &[Vec<u32>],
    cache: Option<CacheF64>,
) -> Result<(Vec<Vec<f64>>, CacheF64), String> {
    let dec = weights
        .decoder
        .as_ref()
        .ok_or("generation needs a decoder's weights")?;
    dec.check(w)?;
    let g = w.graph();
    let wiring = Wiring::new(w, &g);
    let initial = wiring.decoder_inputs_f64(&g, dec, tokens, cache)?;
    let r = Reference::run(&g, &wiring, weights, initial);
    let out = g.output().ok_or("the graph has no output")?;
    let cols = g.tensor(out).cols as usize;
    let logits = r
        .instances(out)
        .iter()
        .flat_map(|i| i.chunks_exact(cols).map(<[f64]>::to_vec))
        .collect();
    let cache = wiring.kv_columns(&g, |t, b| r.instances(t)[b].clone());
    Ok((logits, cache))
}

/// Greedy generation of `new_tokens` tokens a sequence after `prompts` (one prompt a
/// sequence, all the same length), for the model, layers and patterns of `w` (its `seq`,
/// `batch` and `phase` are set here), in the f64 reference.
pub fn generate(
    w: &Workload,
    weights: &ModelWeights,
    prompts: &[Vec<u32>],
    new_tokens: usize,
) -> Result<Generated, String> {
    let p = prompts.first().map_or(0, Vec::len);
    if p == 0 || prompts.iter().any(|s| s.len() != p) {
        return Err("generation needs prompts of one length, at least one token".into());
    }
    let mut w = w.clone();
    (w.seq, w.batch, w.phase) = (p as u64, prompts.len() as u64, Phase::Prefill);
    let (prefill_logits, mut cache) = step(&w, weights, prompts, None)?;
    let mut tokens: Vec<Vec<u32>> = prefill_logits.iter().map(|l| vec![argmax(l)]).collect();
    let mut step_logits = Vec::new();
    for t in 1..new_tokens {
        w.phase = Phase::Decode {
            context: (p + t - 1) as u64,
        };
        let last: Vec<Vec<u32>> = tokens.iter().map(|s| vec![s[t - 1]]).collect();
        let (logits, next) = step(&w, weights, &last, Some(cache))?;
        for (s, l) in tokens.iter_mut().zip(&logits) {
            s.push(argmax(l));
        }
        step_logits.push(logits);
        cache = next;
    }
    if new_tokens == 0 {
        tokens.iter_mut().for_each(Vec::clear);
    }
    Ok(Generated {
        prefill_logits,
        tokens,
        step_logits,
    })
}
