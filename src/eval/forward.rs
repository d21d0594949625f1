//! A fast f32 forward pass of a Llama-family decoder over whole token sequences, for
//! calibration and evaluation (the simulator's own functional reference is f64 and walks
//! the IR op by op; this one is the model's arithmetic written out, with the weights dense).
//!
//! Per layer, with `x` the residual stream `[s x d]` of a sequence of `s` tokens:
//!
//! ```text
//! xn      = RMSNorm(x) * g_attn              RMSNorm(x) = x / sqrt(mean(x^2) + eps), by row
//! [Q K V] = xn Wqkv^T + b                    h query heads, hkv key/value heads of dh
//! Q, K    rotated: pair (i, i + dh/2) of a head at position p by p * theta^(-2i / dh)
//! ctx_j   = softmax(Q_j K_g^T / sqrt(dh), causal) V_g     g = j / (h / hkv)
//! x       = x + ctx Wo^T
//! hn      = RMSNorm(x) * g_ffn
//! x       = x + (SiLU(hn Wgate^T) * (hn Wup^T)) Wdown^T
//! logits  = (RMSNorm(x) * g_final) E^T       E: the lm_head (the embedding when tied)
//! ```
//!
//! Perplexity ([`Model::perplexity`]) over a token stream cut into windows of `n` tokens:
//! each window is a sequence of its own, and every token but a window's first is predicted
//! from those before it in the window, `ppl = exp(-mean log softmax(logits_{t-1})[token_t])`
//! (log-softmax in f64).
//!
//! The embedding row of each token is the input. Every product `y = x W^T` sums each dot
//! product in 8 lanes (lane `j` takes the `k` with `k mod 8 = j`, in order) and then adds the
//! lanes in order: a fixed order of summation, so the same weights and tokens give the same
//! bits on every machine (the compiler may vectorise the lanes, never reorder them). Rows of
//! the product are split between two threads, each computing whole rows the same way, 16
//! rows at a time against each weight row (a weight row is read once per 16 tokens).
//!
//! Value bits ([`Model::with_value_bits`]): at 16 the weights are as stored (f16 values) and
//! activations f32. Below 16, the weights, lm_head and embedding are rounded to symmetric
//! fixed point with a scale per row, and as the pass runs every linear's input is rounded per
//! token and Q, K, V (after rotation) per token and head ([`super::quant`]).

use super::super::functional::llama_weights::LlamaWeights;
use super::super::functional::weights::Linear;
use super::super::workload::Workload;
use super::quant;
use std::sync::Arc;

/// A dense linear `y = x W^T + b`, `W` row-major `[out x k]`.
#[derive(Clone)]
pub struct Dense {
    /// Outputs.
    pub out: usize,
    /// Inputs.
    pub k: usize,
    /// `W`, `out x k`.
    pub w: Vec<f32>,
    /// `b`, `out`.
    pub bias: Vec<f32>,
}

/// Where a calibration hook sees a block's linear inputs ([`Model::layer_with`], and an
/// encoder's [`super::encoder::Encoder::layer_with`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site {
    /// Q, K and V (concatenated), on the block's input (a decoder's attention RMSNorm output;
    /// an encoder's layer input).
    Qkv,
    /// The output projection, on the attention context.
    OProj,
    /// The FFN's first linears: a decoder's SwiGLU gate and up on the FFN RMSNorm's output;
    /// an encoder's up on the post-attention LayerNorm's output.
    GateUp,
    /// The FFN down projection, on `SiLU(gate) * up` (an encoder's: on `GELU(up)`).
    Down,
}

/// A calibration hook: `hook(site, inputs, rows, linears)` sees the `rows x k` inputs of the
/// linears of `site` before they are applied, and may rewrite their weights.
pub type Hook<'a> = dyn FnMut(Site, &[f32], usize, &mut [&mut Dense]) -> Result<(), String> + 'a;

impl Dense {
    /// The linear of `W` (`out x k`) and `b`.
    pub fn new(out: usize, k: usize, w: Vec<f32>, bias: Vec<f32>) -> Dense {
        Dense { out, k, w, bias }
    }

    /// The dense form of a stored linear (its slots expanded, exactly).
    pub(crate) fn of(l: &Linear) -> Dense {
        Dense {
            out: l.out,
            k: l.k,
            w: l.dense(),
            bias: l.bias.clone(),
        }
    }

    /// `x W^T + b` for `x` of `rows x k`.
    pub fn apply(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut y = vec![0.0f32; rows * self.out];
        let half = rows.div_ceil(2) * self.out;
        let (a, b) = y.split_at_mut(half.min(rows * self.out));
        // Blocks of rows go over `W` once a block, so each weight row is read from memory
        // once per `ROWS` rows of `x` (the pass is bound by weight bytes otherwise).
        const ROWS: usize = 16;
        let run = |ys: &mut [f32], row0: usize| {
            for (b, yb) in ys.chunks_mut(ROWS * self.out).enumerate() {
                let first = row0 + b * ROWS;
                let n = yb.len() / self.out;
                for j in 0..self.out {
                    let wj = &self.w[j * self.k..(j + 1) * self.k];
                    for r in 0..n {
                        let xr = &x[(first + r) * self.k..(first + r + 1) * self.k];
                        yb[r * self.out + j] = dot(xr, wj) + self.bias[j];
                    }
                }
            }
        };
        std::thread::scope(|s| {
            s.spawn(|| run(a, 0));
            run(b, rows.div_ceil(2));
        });
        y
    }
}

/// `sum a_i b_i` in 8 lanes, then the lanes in order.
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for j in 0..8 {
            lanes[j] += x[j] * y[j];
        }
    }
    for (j, (x, y)) in ra.iter().zip(rb).enumerate() {
        lanes[j] += x * y;
    }
    lanes.iter().sum()
}

/// `x / sqrt(mean(x^2) + eps) * g`, row by row.
fn rms_norm(x: &[f32], g: &[f32], eps: f32) -> Vec<f32> {
    let d = g.len();
    let mut y = x.to_vec();
    for row in y.chunks_mut(d) {
        let ms = dot(row, row) / d as f32;
        let inv = 1.0 / (ms + eps).sqrt();
        for (v, s) in row.iter_mut().zip(g) {
            *v *= inv * s;
        }
    }
    y
}

/// A block whose linears a calibration hook may see and rewrite, by site (a decoder's
/// [`Layer`] here, an encoder's in [`super::encoder`]).
pub(crate) trait Sites {
    /// The linears of `site`, in the order they are applied.
    fn linears(&mut self, site: Site) -> Vec<&mut Dense>;
}

/// A block as a pass sees it: read-only for evaluation (`&L`), writable for a hook (`&mut L`).
pub(crate) trait LayerAccess<L> {
    /// The block.
    fn get(&self) -> &L;
    /// Shows `hook` the inputs `x` (`rows x k`) of `site`'s linears (nothing when read-only).
    fn hook(
        &mut self,
        hook: &mut Hook<'_>,
        site: Site,
        x: &[f32],
        rows: usize,
    ) -> Result<(), String>;
}

impl<L> LayerAccess<L> for &L {
    fn get(&self) -> &L {
        self
    }
    fn hook(&mut self, _: &mut Hook<'_>, _: Site, _: &[f32], _: usize) -> Result<(), String> {
        Ok(())
    }
}

impl<L: Sites> LayerAccess<L> for &mut L {
    fn get(&self) -> &L {
        self
    }
    fn hook(
        &mut self,
        hook: &mut Hook<'_>,
        site: Site,
        x: &[f32],
        rows: usize,
    ) -> Result<(), String> {
        hook(site, x, rows, &mut self.linears(site))
    }
}

impl Sites for Layer {
    fn linears(&mut self, site: Site) -> Vec<&mut Dense> {
        match site {
            Site::Qkv => vec![Arc::make_mut(&mut self.qkv)],
            Site::OProj => vec![Arc::make_mut(&mut self.o_proj)],
            Site::GateUp => vec![Arc::make_mut(&mut self.gate), Arc::make_mut(&mut self.up)],
            Site::Down => vec![Arc::make_mut(&mut self.down)],
        }
    }
}

/// A block; its linears are shared between the models [`Model::mixed`] composes (a hook
/// that rewrites one gets its own copy first).
struct Layer {
    attn_norm: Vec<f32>,
    qkv: Arc<Dense>,
    o_proj: Arc<Dense>,
    ffn_norm: Vec<f32>,
    gate: Arc<Dense>,
    up: Arc<Dense>,
    down: Arc<Dense>,
}

/// A Llama-family decoder with dense f32 weights.
pub struct Model {
    layers: Vec<Layer>,
    final_norm: Vec<f32>,
    embedding: Arc<Vec<f32>>,
    lm_head: Arc<Dense>,
    d: usize,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
    eps: f32,
    theta: f64,
    /// Bits of the values the linears see (16: as stored, f16 weights, f32 activations;
    /// fewer: weights and inputs rounded to that fixed point, see [`Model::with_value_bits`]).
    value_bits: u32,
}

impl Model {
    /// The model of `w` (its first `layers` layers) with `heads` query heads and `kv_heads`
    /// key/value heads of `head_dim`.
    pub fn new(
        w: &LlamaWeights,
        layers: usize,
        heads: usize,
        kv_heads: usize,
        head_dim: usize,
    ) -> Result<Model, String> {
        let d = w.embedding.k;
        if heads == 0
            || kv_heads == 0
            || !heads.is_multiple_of(kv_heads)
            || !head_dim.is_multiple_of(2)
        {
            return Err(format!(
                "{heads} query heads over {kv_heads} key/value heads of {head_dim}: the heads must divide and the head size be even"
            ));
        }
        if layers > w.layers.len() {
            return Err(format!(
                "{layers} layers asked, the weights have {}",
                w.layers.len()
            ));
        }
        let layers = w.layers[..layers]
            .iter()
            .map(|l| Layer {
                attn_norm: l.attn_norm.clone(),
                qkv: Arc::new(Dense::of(&l.qkv)),
                o_proj: Arc::new(Dense::of(&l.o_proj)),
                ffn_norm: l.ffn_norm.clone(),
                gate: Arc::new(Dense::of(&l.gate)),
                up: Arc::new(Dense::of(&l.up)),
                down: Arc::new(Dense::of(&l.down)),
            })
            .collect();
        let embedding = Dense::of(&w.embedding);
        let lm_head = w.lm_head.as_ref().map(Dense::of);
        Ok(Model {
            layers,
            final_norm: w.final_norm.clone(),
            embedding: Arc::new(embedding.w.clone()),
            lm_head: Arc::new(lm_head.unwrap_or(embedding)),
            d,
            heads,
            kv_heads,
            head_dim,
            eps: w.eps as f32,
            theta: w.rope_theta,
            value_bits: 16,
        })
    }

    /// The model of `w` (its layers and decoder shape) from weights `weights`.
    pub fn of_workload(weights: &LlamaWeights, w: &Workload) -> Result<Model, String> {
        let dec = w.model.decoder.as_ref().ok_or_else(|| {
            format!(
                "`{}` is not a decoder: the forward pass needs one",
                w.model.name
            )
        })?;
        Model::new(
            weights,
            w.layers as usize,
            w.model.heads as usize,
            dec.kv_heads as usize,
            dec.head_dim as usize,
        )
    }

    /// The model of the Llama-family GGUF at `path` for workload `w` (its first `w.layers`
    /// layers), read straight into dense f32: one copy of the weights is all that is held.
    pub fn from_gguf(path: &std::path::Path, w: &Workload) -> Result<Model, String> {
        let dec = crate::functional::llama_weights::decoder_of(w)?;
        let (d, f) = (w.model.hidden as usize, w.model.ffn as usize);
        let (h, hkv, dh) = (
            w.model.heads as usize,
            dec.kv_heads as usize,
            dec.head_dim as usize,
        );
        let mut layers = Vec::new();
        let t = crate::functional::llama_weights::read_gguf_dense(path, w, &mut |_, b| {
            let zero = |n: usize| vec![0.0f32; n];
            layers.push(Layer {
                attn_norm: b.attn_norm,
                qkv: Arc::new(Dense::new((h + 2 * hkv) * dh, d, b.qkv, b.qkv_bias)),
                o_proj: Arc::new(Dense::new(d, h * dh, b.o_proj, zero(d))),
                ffn_norm: b.ffn_norm,
                gate: Arc::new(Dense::new(f, d, b.gate, zero(f))),
                up: Arc::new(Dense::new(f, d, b.up, zero(f))),
                down: Arc::new(Dense::new(d, f, b.down, zero(d))),
            });
            Ok(())
        })?;
        let v = t.vocab;
        let lm_head = match t.lm_head {
            Some(head) => Dense::new(v, d, head, vec![0.0; v]),
            None => Dense::new(v, d, t.embedding.clone(), vec![0.0; v]),
        };
        Ok(Model {
            layers,
            final_norm: t.final_norm,
            embedding: Arc::new(t.embedding),
            lm_head: Arc::new(lm_head),
            d,
            heads: h,
            kv_heads: hkv,
            head_dim: dh,
            eps: t.eps as f32,
            theta: t.rope_theta,
            value_bits: 16,
        })
    }

    /// A model of the same shape as every one of `models` whose blocks take each class of
    /// linears from one of them (shared, not copied): `pick[c]` indexes `models` for class
    /// `c` in the order Q/K/V, output projection, gate and up, down (the simulator's qkv,
    /// proj, ffn1, ffn2); the embedding, norms and lm_head come from `models[base]`. An error when the shapes
    /// differ or an index is out of range.
    pub fn mixed(models: &[&Model], pick: [usize; 4], base: usize) -> Result<Model, String> {
        let get = |i: usize| {
            models
                .get(i)
                .copied()
                .ok_or_else(|| format!("model {i} of {} asked for", models.len()))
        };
        let b = get(base)?;
        let [qkv, o, gate_up, down] = pick.map(get);
        let [qkv, o, gate_up, down] = [qkv?, o?, gate_up?, down?];
        let shape = |x: &Model| (x.layers.len(), x.d, x.heads, x.kv_heads, x.head_dim);
        if [qkv, o, gate_up, down]
            .iter()
            .any(|m| shape(m) != shape(b) || m.lm_head.out != b.lm_head.out)
        {
            return Err("the models mixed have different shapes".into());
        }
        let layers = (0..b.layers.len())
            .map(|i| Layer {
                attn_norm: b.layers[i].attn_norm.clone(),
                qkv: qkv.layers[i].qkv.clone(),
                o_proj: o.layers[i].o_proj.clone(),
                ffn_norm: b.layers[i].ffn_norm.clone(),
                gate: gate_up.layers[i].gate.clone(),
                up: gate_up.layers[i].up.clone(),
                down: down.layers[i].down.clone(),
            })
            .collect();
        Ok(Model {
            layers,
            final_norm: b.final_norm.clone(),
            embedding: b.embedding.clone(),
            lm_head: b.lm_head.clone(),
            ..*b
        })
    }

    /// Whether `other` holds the same embedding, norms and lm_head as this model, bit for
    /// bit (its linears may differ).
    pub fn same_tables(&self, other: &Model) -> bool {
        let same = |a: &[f32], b: &[f32]| {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
        };
        self.layers.len() == other.layers.len()
            && same(&self.embedding, &other.embedding)
            && same(&self.final_norm, &other.final_norm)
            && same(&self.lm_head.w, &other.lm_head.w)
            && self
                .layers
                .iter()
                .zip(&other.layers)
                .all(|(a, b)| same(&a.attn_norm, &b.attn_norm) && same(&a.ffn_norm, &b.ffn_norm))
    }

    /// This model on a datapath of `bits`-bit values ([`super::quant`]): every stored table
    /// the PE array reads (the linears' weights, lm_head, the embedding) rounded row by row
    /// (a scale per output row), and, as the pass runs, every linear's input rounded per
    /// token and Q, K and V per token and head (the KV cache at `bits`). Norms, softmax,
    /// biases and sums stay f32 (the vector unit and the accumulator). 16 is the model as
    /// stored (f16 weights); 2..16 round; anything else is an error.
    pub fn with_value_bits(&self, bits: u32) -> Result<Model, String> {
        if !(2..=16).contains(&bits) {
            return Err(format!("{bits}-bit values: give 2 to 16"));
        }
        let round = |d: &Arc<Dense>| {
            if bits == 16 {
                return d.clone();
            }
            Arc::new(Dense {
                out: d.out,
                k: d.k,
                w: quant::rounded_rows(&d.w, d.k, bits),
                bias: d.bias.clone(),
            })
        };
        let layers = self
            .layers
            .iter()
            .map(|l| Layer {
                attn_norm: l.attn_norm.clone(),
                qkv: round(&l.qkv),
                o_proj: round(&l.o_proj),
                ffn_norm: l.ffn_norm.clone(),
                gate: round(&l.gate),
                up: round(&l.up),
                down: round(&l.down),
            })
            .collect();
        let embedding = if bits == 16 {
            self.embedding.clone()
        } else {
            Arc::new(quant::rounded_rows(&self.embedding, self.d, bits))
        };
        Ok(Model {
            layers,
            final_norm: self.final_norm.clone(),
            embedding,
            lm_head: round(&self.lm_head),
            value_bits: bits,
            ..*self
        })
    }

    /// `x` (rows of `k`) as the datapath holds it: rounded to `value_bits` per row.
    fn values(&self, mut x: Vec<f32>, k: usize) -> Vec<f32> {
        if self.value_bits < 16 {
            quant::round_rows(&mut x, k, self.value_bits);
        }
        x
    }

    /// Layers.
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Vocabulary size.
    pub fn vocab(&self) -> usize {
        self.lm_head.out
    }

    /// The embedding rows `[n x d]` of `tokens`.
    pub fn embed(&self, tokens: &[u32]) -> Result<Vec<f32>, String> {
        let d = self.d;
        let mut x = Vec::with_capacity(tokens.len() * d);
        for &t in tokens {
            let t = t as usize;
            if t >= self.vocab() {
                return Err(format!(
                    "token {t} is outside the vocabulary of {}",
                    self.vocab()
                ));
            }
            x.extend_from_slice(&self.embedding[t * d..(t + 1) * d]);
        }
        Ok(x)
    }

    /// The logits `[s x V]` of every position of `tokens` (each sees itself and those before).
    pub fn logits(&self, tokens: &[u32]) -> Result<Vec<f32>, String> {
        let s = tokens.len();
        let mut x = self.embed(tokens)?;
        for l in &self.layers {
            self.layer(l, &mut x, s, &mut |_, _, _, _| Ok(()))?;
        }
        let xn = self.values(rms_norm(&x, &self.final_norm, self.eps), self.d);
        Ok(self.lm_head.apply(&xn, s))
    }

    /// Runs layer `li` over the residual stream `x` of sequences of `s` tokens each
    /// (`[n x d]`, `n` a multiple of `s`), calling `hook` before each group of linears is
    /// applied (layer by layer calibration: a hook that prunes sees inputs from the layers
    /// and linears it pruned before).
    pub fn layer_with(
        &mut self,
        li: usize,
        x: &mut [f32],
        s: usize,
        hook: &mut Hook<'_>,
    ) -> Result<(), String> {
        let mut layer = self.layers.remove(li);
        let r = self.layer(&mut layer, x, s, hook);
        self.layers.insert(li, layer);
        r
    }

    fn layer<L: LayerAccess<Layer>>(
        &self,
        mut l: L,
        x: &mut [f32],
        s: usize,
        hook: &mut Hook<'_>,
    ) -> Result<(), String> {
        let rows = x.len() / self.d;
        if s == 0 || !rows.is_multiple_of(s) {
            return Err(format!("{rows} rows are not whole sequences of {s}"));
        }
        let xn = self.values(rms_norm(x, &l.get().attn_norm, self.eps), self.d);
        l.hook(hook, Site::Qkv, &xn, rows)?;
        let mut qkv = l.get().qkv.apply(&xn, rows);
        let width = l.get().qkv.out;
        let mut ctx = Vec::with_capacity(rows * self.heads * self.head_dim);
        for seq in qkv.chunks_mut(s * width) {
            self.rotate(seq, s);
            if self.value_bits < 16 {
                quant::round_rows(seq, self.head_dim, self.value_bits);
            }
            ctx.extend(attention(
                seq,
                s,
                [self.heads, self.kv_heads, self.head_dim],
                true,
            ));
        }
        let ctx = self.values(ctx, self.heads * self.head_dim);
        l.hook(hook, Site::OProj, &ctx, rows)?;
        let proj = l.get().o_proj.apply(&ctx, rows);
        x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);
        let hn = self.values(rms_norm(x, &l.get().ffn_norm, self.eps), self.d);
        l.hook(hook, Site::GateUp, &hn, rows)?;
        let (g, u) = (l.get().gate.apply(&hn, rows), l.get().up.apply(&hn, rows));
        let act: Vec<f32> = g
            .iter()
            .zip(&u)
            .map(|(g, u)| g / (1.0 + (-g).exp()) * u)
            .collect();
        let act = self.values(act, l.get().down.k);
        l.hook(hook, Site::Down, &act, rows)?;
        let down = l.get().down.apply(&act, rows);
        x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
        Ok(())
    }

    /// Perplexity of `tokens` cut into windows of `window` tokens (a last, shorter window
    /// counts too if it predicts anything), with the number of tokens predicted.
    pub fn perplexity(&self, tokens: &[u32], window: usize) -> Result<(f64, usize), String> {
        if window < 2 {
            return Err(format!(
                "a window of {window} tokens predicts nothing: give 2 or more"
            ));
        }
        let v = self.vocab();
        let (mut nll, mut n) = (0.0f64, 0usize);
        for w in tokens.chunks(window).filter(|w| w.len() > 1) {
            let logits = self.logits(w)?;
            for t in 1..w.len() {
                let row = &logits[(t - 1) * v..t * v];
                let max = f64::from(row.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x)));
                let sum: f64 = row.iter().map(|&x| (f64::from(x) - max).exp()).sum();
                nll -= f64::from(row[w[t] as usize]) - max - sum.ln();
                n += 1;
            }
        }
        if n == 0 {
            return Err("no token to predict: give at least two".into());
        }
        Ok(((nll / n as f64).exp(), n))
    }

    /// Rotates the Q and K heads of `qkv` (`s` rows of `(h + 2 hkv) dh`) by position.
    fn rotate(&self, qkv: &mut [f32], s: usize) {
        let (dh, half) = (self.head_dim, self.head_dim / 2);
        let width = (self.heads + 2 * self.kv_heads) * dh;
        let rotated = self.heads + self.kv_heads;
        let freqs: Vec<f64> = (0..half)
            .map(|i| self.theta.powf(-2.0 * i as f64 / dh as f64))
            .collect();
        for p in 0..s {
            let row = &mut qkv[p * width..(p + 1) * width];
            for head in row[..rotated * dh].chunks_mut(dh) {
                for (i, f) in freqs.iter().enumerate() {
                    let (sin, cos) = (p as f64 * f).sin_cos();
                    let (a, b) = (head[i], head[i + half]);
                    head[i] = a * cos as f32 - b * sin as f32;
                    head[i + half] = a * sin as f32 + b * cos as f32;
                }
            }
        }
    }
}

/// Grouped-query attention over one sequence of `s` rows of `[Q K V]` (`(h + 2 hkv) dh`
/// each, heads `[h, hkv, dh]`): the context `[s x h dh]`. With `causal`, position `t` sees
/// positions `0..=t`; else every position of the sequence.
pub(crate) fn attention(qkv: &[f32], s: usize, heads: [usize; 3], causal: bool) -> Vec<f32> {
    let [h, hkv, dh] = heads;
    let width = (h + 2 * hkv) * dh;
    let group = h / hkv;
    let scale = 1.0 / (dh as f32).sqrt();
    let mut ctx = vec![0.0f32; s * h * dh];
    let mut p = vec![0.0f32; s];
    for j in 0..h {
        let g = j / group;
        let (k0, v0) = ((h + g) * dh, (h + hkv + g) * dh);
        for t in 0..s {
            let seen = if causal { t + 1 } else { s };
            let q = &qkv[t * width + j * dh..t * width + (j + 1) * dh];
            let mut max = f32::NEG_INFINITY;
            for (u, pu) in p[..seen].iter_mut().enumerate() {
                *pu = dot(q, &qkv[u * width + k0..u * width + k0 + dh]) * scale;
                max = max.max(*pu);
            }
            let mut sum = 0.0f32;
            for pu in &mut p[..seen] {
                *pu = (*pu - max).exp();
                sum += *pu;
            }
            let out = &mut ctx[t * h * dh + j * dh..t * h * dh + (j + 1) * dh];
            for (u, pu) in p[..seen].iter().enumerate() {
                let v = &qkv[u * width + v0..u * width + v0 + dh];
                for (o, vv) in out.iter_mut().zip(v) {
                    *o += pu / sum * vv;
                }
            }
        }
    }
    ctx
}
