//! Functional mode (`stasim run --functional`): real values through the simulated STA,
//! checked against an f64 reference.
//!
//! In a timing run transactions carry sizes only. In a functional run every output tile also
//! carries its values ([`crate::txn::TileValues`]) from the PE array through the
//! accumulator, the softmax or the vector unit, to the activation buffer (a fill) or the
//! output buffer (a DRAM write); there it is *committed* to the run's memory image: on chip
//! when the fill arrives, in DRAM when the write completes. The PE array reads a pass's
//! operands from the memory image when the pass starts, i.e. once the buffers have delivered
//! them in simulated time. The image starts as NaN, so a consumer scheduled before its
//! producer's tiles were committed reads NaN and fails the check: the values check the
//! controller's dependencies, not only the arithmetic. Values never change timing: the same
//! events happen at the same times with and without `--functional` (tested).
//!
//! Arithmetic, value format f16 (STA.md):
//! - PE array ([`weights::Linear::mac`]): for every group of `M` inputs, each of the `N`
//!   stored weights times the activation its index multiplexer selects, `a[g*M + offset]`;
//!   products and the adder tree in f32. Scores use `K` and P·V uses `V` as the stationary
//!   operand, dense.
//! - accumulator: `+ bias` (linear layers), rounded to f16.
//! - softmax: per row of a row block, `x / sqrt(dh)`, causal mask, max, `exp`, sum,
//!   normalise in f32, rounded to f16.
//! - vector unit: GELU (`x * (1 + erf(x / sqrt 2)) / 2`) rounded to f16; residual add in f32,
//!   then LayerNorm (`eps = 1e-12`) of each row once all its columns are committed, rounded
//!   to f16 (a modelling shortcut: the unit's row statistics are applied at commit). The
//!   Llama family's ops the same way: `silu(gate) * up` rounded to f16; RMSNorm (`x /
//!   sqrt(mean(x^2) + eps) * gamma`, the model's eps, in f32) and the rotary embedding
//!   (rotate-half pairs, [`wiring`]; angles in f64) of a row once it is complete, rounded
//!   to f16; a residual stored beside its norm (a pre-norm chain) rounded to f16.
//!
//! Decoders ([`llama_weights`]): a prefill of token ids or a decode step with a KV cache
//! ([`DecoderInputs`], [`KvCache`]); the logits and the cache after a run come from
//! [`DataPlane::logits`] and [`DataPlane::kv_cache`], so a caller chains prefill and decode
//! steps through the simulator. [`generate`] runs greedy generation in the f64 reference
//! alone.
//!
//! The reference ([`reference`]) computes the same network in f64 from the same stored
//! weights (f16 values, so both sides use identical weights) and the same seeded input.

pub mod dataplane;
pub mod generate;
pub mod llama_weights;
pub mod reference;
pub mod weights;
pub mod wiring;

use std::sync::{Arc, Mutex};

use serde::Serialize;

pub use dataplane::{DataPlane, DecoderInputs};
pub use generate::{EngineGeneration, EngineRun, Generated, generate};
pub use wiring::KvCache;

/// The data plane as the modules of one simulation share it.
pub type Shared = Arc<Mutex<DataPlane>>;

/// Locks the data plane (a panic elsewhere cannot poison values that are only read back).
pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, DataPlane> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// Default tolerance on the model output's relative error `||y - y_ref||_F / ||y_ref||_F`.
///
/// f16 has a unit roundoff of `2^-11 ~ 4.9e-4`; a layer rounds six stored tensors (QKV, P,
/// context, two LayerNorm outputs, GELU; a decoder's eight: QKV after rotary, P, context,
/// residual, two RMSNorm outputs, gate, SwiGLU) and the norms renormalise, so errors stay a
/// few times `2^-11` per layer (SmolLM2's logits: 7e-4 after 2 layers). `1e-2` (20 unit roundoffs) holds a few layers with a margin while
/// a single wrong index, bias, mask or dependency gives errors of order 1.
pub const DEFAULT_TOLERANCE: f64 = 1e-2;

/// Error of one stored tensor (summed over batch and heads).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TensorError {
    /// `L{layer}.{tensor}`: `qkv`, `p` (softmax output), `context`, `add_ln1`, `gelu`,
    /// `add_ln2` (the layer's output); a decoder's `input_norm`, `qkv`, `kv_cache`, `p`,
    /// `context`, `h1`, `h1n`, `gate`, `act`, `input`, `final_norm`, `logits`.
    pub name: String,
    /// Values compared.
    pub values: u64,
    /// `max |sim - ref|`.
    pub max_abs_error: f64,
    /// `||sim - ref||_F / ||ref||_F`.
    pub rel_error: f64,
    /// Values that are not finite in the simulation (NaN: read or compared before written).
    pub non_finite: u64,
}

/// What a functional run found.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct FunctionalReport {
    /// Where the weights came from (`seeded (seed N)` or the `.stanm` path).
    pub weights: String,
    /// Seed of the input (and of seeded weights).
    pub seed: u64,
    /// Tolerance on the output's relative error.
    pub tolerance: f64,
    /// Max `|y - y_ref|` over the model output (last layer's `add_ln2`, a decoder's logits).
    pub output_max_abs_error: f64,
    /// `||y - y_ref||_F / ||y_ref||_F` over the model output.
    pub output_rel_error: f64,
    /// Whether the output is finite and within the tolerance.
    pub passed: bool,
    /// Every stored tensor, in layer order.
    pub tensors: Vec<TensorError>,
}

/// Rounds to the value format (f16).
#[inline]
pub fn to_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// `erf(x)`, from Numerical Recipes' Chebyshev `erfc` (fractional error < 1.2e-7, far below
/// the f16 unit roundoff; the reference uses the same function).
pub fn erf(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let erfc = t * poly.exp();
    if x >= 0.0 { 1.0 - erfc } else { erfc - 1.0 }
}

/// GELU, erf form (BERT's).
pub fn gelu(x: f64) -> f64 {
    0.5 * x * (1.0 + erf(x / std::f64::consts::SQRT_2))
}

/// LayerNorm epsilon (BERT's).
pub const LN_EPS: f64 = 1e-12;
