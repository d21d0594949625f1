//! A fast f32 forward pass of a BERT-style encoder (written for sentence-transformers'
//! all-MiniLM-L6-v2: 6 layers, hidden 384, 12 heads, FFN 1536) and its sentence embedding,
//! for calibrating and evaluating a pruned MiniLM. The weights come dense from the
//! safetensors checkpoint, or from a `.stanm` that `stasim prune` made of it (the chosen
//! family member's slots expanded to dense, exactly; every other tensor as the file keeps it).
//!
//! One sentence is one sequence of `s` token ids `t_p` (with `[CLS]` first and `[SEP]` last),
//! no padding, so every position sees every other (the attention mask is all ones). With
//! `E_word`, `E_pos` and `E_type` the embedding tables and `x` the hidden states `[s x d]`:
//!
//! ```text
//! x_p     = LN_emb((E_word[t_p] + E_type[0]) + E_pos[p])        positions p = 0..s-1
//! per layer (h heads of dh = d / h):
//! [Q K V] = x Wqkv^T + b
//! ctx_j   = softmax(Q_j K_j^T / sqrt(dh)) V_j                   bidirectional, head by head
//! x       = LN_1(x + ctx Wo^T + bo)
//! x       = LN_2(x + GELU(x W1^T + b1) W2^T + b2)              GELU(u) = u/2 (1 + erf(u/√2))
//! LN(x)   = (x - mean(x)) / sqrt(var(x) + 1e-12) * gamma + beta, by row (mean and biased
//!           variance in f64)
//! e       = mean_p x_p / max(||mean_p x_p||_2, 1e-12)          mean pooling over all s tokens,
//!                                                               then L2 normalisation
//! ```
//!
//! (sentence-transformers' Transformer, Pooling(mean) and Normalize modules; the pooler and
//! the token-type rows but the first are unused). The quality signal of a pruned encoder is
//! the cosine `cos(e, e') = e.e' / sqrt((e.e)(e'.e'))` (f64 sums) of its embedding `e'` of a
//! sentence to the dense model's `e`: exactly 1 when the bits are equal.
//!
//! The linears are [`Dense`] products (the decoder's fixed summation order and two threads);
//! the attention is the decoder's ([`super::forward`]) without the causal mask. Sentences
//! are run in batches of whole sentences of at most [`BATCH_TOKENS`] tokens (the linears see
//! every token of a batch at once); each row's arithmetic does not depend on the batch, so
//! the embeddings are the same bits however the sentences are batched.

use std::path::Path;

use super::forward::{Dense, Hook, LayerAccess, Site, Sites, attention};
use crate::functional::weights::{Named, Norm, encoder_layers};
use crate::functional::{LN_EPS, gelu};
use crate::workload::Pattern;
use crate::workload::stanm::{
    StoredTensor, StoredTensors, is_stanm, read_checkpoint_tensors, read_tensors_where,
};

/// Most tokens a batch of sentences holds (the FFN's activations of a batch are
/// `BATCH_TOKENS x ffn` f32: 25 MB for MiniLM).
pub const BATCH_TOKENS: usize = 4096;

/// An encoder's sizes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Vocabulary (rows of the word embedding).
    pub vocab: usize,
    /// Positions (rows of the position embedding): the longest sentence.
    pub positions: usize,
    /// Hidden size `d`.
    pub hidden: usize,
    /// Heads `h`.
    pub heads: usize,
    /// FFN size.
    pub ffn: usize,
    /// Layers.
    pub layers: usize,
}

impl std::fmt::Display for Shape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "vocabulary {}, positions {}, hidden {}, heads {}, FFN {}, layers {}",
            self.vocab, self.positions, self.hidden, self.heads, self.ffn, self.layers
        )
    }
}

/// One encoder layer, dense.
struct Layer {
    qkv: Dense,
    proj: Dense,
    ln1: Norm,
    ffn1: Dense,
    ffn2: Dense,
    ln2: Norm,
}

impl Sites for Layer {
    fn linears(&mut self, site: Site) -> Vec<&mut Dense> {
        match site {
            Site::Qkv => vec![&mut self.qkv],
            Site::OProj => vec![&mut self.proj],
            Site::GateUp => vec![&mut self.ffn1],
            Site::Down => vec![&mut self.ffn2],
        }
    }
}

/// A BERT-style encoder with dense f32 weights.
pub struct Encoder {
    /// `E_word`, `vocab x d`.
    word: Vec<f32>,
    /// `E_pos`, `positions x d`.
    position: Vec<f32>,
    /// `E_type[0]`, `d`.
    token_type: Vec<f32>,
    emb_norm: Norm,
    layers: Vec<Layer>,
    /// Each layer's tensor name prefix (`encoder.layer.{i}.`, after a model prefix if any).
    prefixes: Vec<String>,
    shape: Shape,
}

/// `x` LayerNormed by row with `n` (mean and biased variance in f64, eps [`LN_EPS`]).
fn layer_norm(x: &mut [f32], n: &Norm) {
    let d = n.gamma.len();
    for row in x.chunks_exact_mut(d) {
        let mean = row.iter().map(|&v| f64::from(v)).sum::<f64>() / d as f64;
        let var = row
            .iter()
            .map(|&v| (f64::from(v) - mean) * (f64::from(v) - mean))
            .sum::<f64>()
            / d as f64;
        let inv = 1.0 / (var + LN_EPS).sqrt();
        for ((v, g), b) in row.iter_mut().zip(&n.gamma).zip(&n.beta) {
            *v = ((f64::from(*v) - mean) * inv * f64::from(*g) + f64::from(*b)) as f32;
        }
    }
}

impl Encoder {
    /// The encoder of `path`: a safetensors checkpoint (dense), or a `.stanm` pruned from one
    /// (`member`: the family member, default the densest). Errors name the file.
    pub fn from_file(path: &Path, member: Option<Pattern>) -> Result<Encoder, String> {
        let tensors = if is_stanm(path) {
            read_tensors_where(path, member, |_| true)?
        } else if let Some(m) = member {
            return Err(format!(
                "`{}`: a member ({m}) is chosen in a pruned .stanm family; this is not a .stanm",
                path.display()
            ));
        } else {
            read_checkpoint_tensors(path)?
        };
        Encoder::from_tensors(path, tensors)
    }

    /// The encoder of decoded tensors ([`read_tensors_where`], [`read_checkpoint_tensors`]) of the
    /// file `path` (for messages).
    pub fn from_tensors(path: &Path, t: StoredTensors) -> Result<Encoder, String> {
        let named = |m: String| format!("`{}`: {m}", path.display());
        if t.shape.decoder.is_some() {
            return Err(named(
                "a decoder's weights; the encoder pass needs a BERT-style encoder".into(),
            ));
        }
        let (d, heads, ffn) = (
            t.shape.hidden as usize,
            t.shape.heads as usize,
            t.shape.ffn as usize,
        );
        let mut by_name: Named = t
            .tensors
            .into_iter()
            .map(|(name, shape, t)| (name, (shape, t)))
            .collect();
        let (weights, prefixes) = encoder_layers(path, &mut by_name, t.shape.layers)?;
        let model = prefixes
            .first()
            .and_then(|p| p.strip_suffix("encoder.layer.0."))
            .ok_or_else(|| named("no layer 0".into()))?
            .to_owned();
        let mut table = |what: &str, min_rows: usize| -> Result<(usize, Vec<f32>), String> {
            let name = format!("{model}embeddings.{what}");
            match by_name.remove(&name) {
                Some((shape, StoredTensor::Dense(v)))
                    if shape.len() == 2 && shape[1] == d && shape[0] >= min_rows =>
                {
                    Ok((shape[0], v))
                }
                Some((shape, StoredTensor::Dense(v))) if shape.len() == 1 && shape[0] == d => {
                    Ok((1, v))
                }
                Some((shape, _)) => Err(named(format!(
                    "`{name}` is {shape:?}; the encoder needs a floating-point table of {min_rows} or more rows of the hidden size {d}"
                ))),
                None => Err(named(format!(
                    "no `{name}` (the encoder needs its embeddings)"
                ))),
            }
        };
        let (vocab, word) = table("word_embeddings.weight", 1)?;
        let (positions, position) = table("position_embeddings.weight", 1)?;
        let (_, types) = table("token_type_embeddings.weight", 1)?;
        let (_, gamma) = table("LayerNorm.weight", 1)?;
        let (_, beta) = table("LayerNorm.bias", 1)?;
        if gamma.len() != d || beta.len() != d {
            return Err(named(format!(
                "`{model}embeddings.LayerNorm` is not of the hidden size {d}"
            )));
        }
        let mut layers = Vec::with_capacity(weights.len());
        for (i, l) in weights.into_iter().enumerate() {
            let fits = l.qkv.out == 3 * d
                && l.qkv.k == d
                && l.proj.k == d
                && l.ffn1.k == d
                && l.ffn1.out == ffn
                && l.ffn2.out == d
                && l.ffn2.k == ffn;
            if !fits || heads == 0 || !d.is_multiple_of(heads) {
                return Err(named(format!(
                    "layer {i}: its linears are not those of hidden {d}, {heads} heads, FFN {ffn}"
                )));
            }
            layers.push(Layer {
                qkv: Dense::of(&l.qkv),
                proj: Dense::of(&l.proj),
                ln1: l.ln1,
                ffn1: Dense::of(&l.ffn1),
                ffn2: Dense::of(&l.ffn2),
                ln2: l.ln2,
            });
        }
        let shape = Shape {
            vocab,
            positions,
            hidden: d,
            heads,
            ffn,
            layers: layers.len(),
        };
        Ok(Encoder {
            word,
            position,
            token_type: types[..d].to_vec(),
            emb_norm: Norm { gamma, beta },
            layers,
            prefixes,
            shape,
        })
    }

    /// The sizes.
    pub fn shape(&self) -> Shape {
        self.shape
    }

    /// Layers.
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Layer `li`'s tensor name prefix as the checkpoint names it (`encoder.layer.{li}.`).
    pub fn prefix(&self, li: usize) -> &str {
        &self.prefixes[li]
    }

    /// The normalised embedding rows `[n x d]` of the sentences `seqs` (each one sequence),
    /// concatenated: the input of the first layer. An empty sentence, one longer than the
    /// positions or a token outside the vocabulary is an error.
    pub fn embed(&self, seqs: &[Vec<u32>]) -> Result<Vec<f32>, String> {
        let d = self.shape.hidden;
        let rows: usize = seqs.iter().map(Vec::len).sum();
        let mut x = Vec::with_capacity(rows * d);
        for (i, s) in seqs.iter().enumerate() {
            if s.is_empty() || s.len() > self.shape.positions {
                return Err(format!(
                    "sentence {i} has {} tokens; the encoder takes 1 to {}",
                    s.len(),
                    self.shape.positions
                ));
            }
            for (p, &t) in s.iter().enumerate() {
                let t = t as usize;
                if t >= self.shape.vocab {
                    return Err(format!(
                        "token {t} is outside the vocabulary of {}",
                        self.shape.vocab
                    ));
                }
                let (w, pos) = (
                    &self.word[t * d..(t + 1) * d],
                    &self.position[p * d..(p + 1) * d],
                );
                x.extend(
                    w.iter()
                        .zip(&self.token_type)
                        .zip(pos)
                        .map(|((w, ty), p)| (w + ty) + p),
                );
            }
        }
        layer_norm(&mut x, &self.emb_norm);
        Ok(x)
    }

    /// Runs layer `li` over the hidden states `x` of sentences of `lens` tokens (`[n x d]`,
    /// `n` their sum), calling `hook` before each group of linears is applied (layer by layer
    /// calibration: a hook that prunes sees inputs from the layers and linears it pruned
    /// before).
    pub fn layer_with(
        &mut self,
        li: usize,
        x: &mut [f32],
        lens: &[usize],
        hook: &mut Hook<'_>,
    ) -> Result<(), String> {
        if li >= self.layers.len() {
            return Err(format!(
                "layer {li} asked, the encoder has {}",
                self.layers.len()
            ));
        }
        let mut layer = self.layers.remove(li);
        let r = self.layer(&mut layer, x, lens, hook);
        self.layers.insert(li, layer);
        r
    }

    fn layer<L: LayerAccess<Layer>>(
        &self,
        mut l: L,
        x: &mut [f32],
        lens: &[usize],
        hook: &mut Hook<'_>,
    ) -> Result<(), String> {
        let d = self.shape.hidden;
        let rows: usize = lens.iter().sum();
        if x.len() != rows * d || lens.contains(&0) {
            return Err(format!(
                "{} values are not the rows of sentences of {lens:?} tokens of {d}",
                x.len()
            ));
        }
        let h = self.shape.heads;
        l.hook(hook, Site::Qkv, x, rows)?;
        let qkv = l.get().qkv.apply(x, rows);
        let mut ctx = Vec::with_capacity(rows * d);
        let mut at = 0;
        for &s in lens {
            let seq = &qkv[at * 3 * d..(at + s) * 3 * d];
            ctx.extend(attention(seq, s, [h, h, d / h], false));
            at += s;
        }
        l.hook(hook, Site::OProj, &ctx, rows)?;
        let proj = l.get().proj.apply(&ctx, rows);
        x.iter_mut().zip(&proj).for_each(|(a, b)| *a += b);
        layer_norm(x, &l.get().ln1);
        l.hook(hook, Site::GateUp, x, rows)?;
        let act: Vec<f32> = l
            .get()
            .ffn1
            .apply(x, rows)
            .into_iter()
            .map(|u| gelu(f64::from(u)) as f32)
            .collect();
        l.hook(hook, Site::Down, &act, rows)?;
        let down = l.get().ffn2.apply(&act, rows);
        x.iter_mut().zip(&down).for_each(|(a, b)| *a += b);
        layer_norm(x, &l.get().ln2);
        Ok(())
    }

    /// The sentence embedding of each of `seqs` (module header): `d` values of norm 1 (or 0
    /// for a sentence whose pooled state is 0).
    pub fn sentence_embeddings(&self, seqs: &[Vec<u32>]) -> Result<Vec<Vec<f32>>, String> {
        let mut out = Vec::with_capacity(seqs.len());
        let mut start = 0;
        while start < seqs.len() {
            // Whole sentences up to BATCH_TOKENS (at least one).
            let mut end = start + 1;
            let mut tokens = seqs[start].len();
            while end < seqs.len() && tokens + seqs[end].len() <= BATCH_TOKENS {
                tokens += seqs[end].len();
                end += 1;
            }
            let batch = &seqs[start..end];
            let lens: Vec<usize> = batch.iter().map(Vec::len).collect();
            let mut x = self.embed(batch)?;
            for l in &self.layers {
                self.layer(l, &mut x, &lens, &mut |_, _, _, _| Ok(()))?;
            }
            out.extend(pool(&x, &lens, self.shape.hidden));
            start = end;
        }
        Ok(out)
    }
}

/// Mean pooling of each sentence's rows of `x` (`lens` tokens each, `d` wide; sums in f64 in
/// row order), then L2 normalisation (`v / max(||v||, 1e-12)`).
pub fn pool(x: &[f32], lens: &[usize], d: usize) -> Vec<Vec<f32>> {
    let mut out = Vec::with_capacity(lens.len());
    let mut at = 0;
    for &s in lens {
        let mut m = vec![0.0f64; d];
        for row in x[at * d..(at + s) * d].chunks_exact(d) {
            for (a, &v) in m.iter_mut().zip(row) {
                *a += f64::from(v);
            }
        }
        m.iter_mut().for_each(|v| *v /= s as f64);
        let norm = m.iter().map(|v| v * v).sum::<f64>().sqrt().max(1e-12);
        out.push(m.iter().map(|v| (v / norm) as f32).collect());
        at += s;
    }
    out
}

/// `a.b / sqrt((a.a)(b.b))`, sums in f64 in order (0 when either is zero): exactly 1 for
/// equal nonzero vectors.
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let (mut ab, mut aa, mut bb) = (0.0f64, 0.0f64, 0.0f64);
    for (&x, &y) in a.iter().zip(b) {
        let (x, y) = (f64::from(x), f64::from(y));
        ab += x * y;
        aa += x * x;
        bb += y * y;
    }
    if aa == 0.0 || bb == 0.0 {
        return 0.0;
    }
    ab / (aa * bb).sqrt()
}

/// The cosines of a pruned encoder's sentence embeddings to the dense one's.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CosineStats {
    /// Sentences.
    pub sentences: usize,
    /// Mean cosine.
    pub mean: f64,
    /// Smallest cosine.
    pub min: f64,
    /// 10th percentile (nearest rank: the `ceil(n / 10)`-th smallest).
    pub p10: f64,
}

/// The cosine of each of `pruned` to the same sentence's `dense` embedding, summarised;
/// `None` without sentences.
pub fn compare(dense: &[Vec<f32>], pruned: &[Vec<f32>]) -> Option<CosineStats> {
    let mut cos: Vec<f64> = dense
        .iter()
        .zip(pruned)
        .map(|(a, b)| cosine(a, b))
        .collect();
    if cos.is_empty() {
        return None;
    }
    let mean = cos.iter().sum::<f64>() / cos.len() as f64;
    cos.sort_by(f64::total_cmp);
    Some(CosineStats {
        sentences: cos.len(),
        mean,
        min: cos[0],
        p10: crate::generate::quantile(&cos, 0.1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cosine_of_a_vector_with_itself_is_exactly_one() {
        let v: Vec<f32> = (0..384)
            .map(|i| ((i * 7919) % 1000) as f32 / 997.0 - 0.5)
            .collect();
        assert_eq!(cosine(&v, &v), 1.0);
        let w: Vec<f32> = v.iter().map(|x| -x).collect();
        assert_eq!(cosine(&v, &w), -1.0);
        assert_eq!(cosine(&v, &vec![0.0; 384]), 0.0);
        // Orthogonal: (1, 1) and (1, -1).
        assert_eq!(cosine(&[1.0, 1.0], &[1.0, -1.0]), 0.0);
    }

    #[test]
    fn the_comparison_gives_mean_min_and_the_nearest_rank_10th_percentile() {
        // Twelve sentences in d = 2: cosines cos(k * 0.1) for k = 0..12 (e against itself
        // rotated), so the smallest is cos(1.1) and the 2nd smallest (ceil(12 / 10) = 2) cos(1.0).
        let dense: Vec<Vec<f32>> = (0..12).map(|_| vec![1.0, 0.0]).collect();
        let pruned: Vec<Vec<f32>> = (0..12)
            .map(|k| {
                let a = k as f64 * 0.1;
                vec![a.cos() as f32, a.sin() as f32]
            })
            .collect();
        let s = compare(&dense, &pruned).unwrap();
        let want: Vec<f64> = (0..12).map(|k| cosine(&[1.0, 0.0], &pruned[k])).collect();
        assert_eq!(s.sentences, 12);
        assert!((s.mean - want.iter().sum::<f64>() / 12.0).abs() < 1e-15);
        assert_eq!(s.min, want[11]);
        assert_eq!(s.p10, want[10]);
        assert!((s.p10 - 1.0f64.cos()).abs() < 1e-7);
        assert_eq!(compare(&[], &[]), None);
    }

    #[test]
    fn pooling_is_the_normalised_mean_of_each_sentence() {
        // Two sentences of d = 2: rows (1, 0), (3, 4) -> mean (2, 2) -> (1, 1)/sqrt 2; and
        // one row (0, -5) -> (0, -1).
        let x = [1.0, 0.0, 3.0, 4.0, 0.0, -5.0];
        let e = pool(&x, &[2, 1], 2);
        let r = std::f32::consts::FRAC_1_SQRT_2;
        assert_eq!(e, vec![vec![r, r], vec![0.0, -1.0]]);
    }

    #[test]
    fn layer_norm_gives_zero_mean_and_unit_variance_before_the_affine() {
        let n = Norm {
            gamma: vec![2.0; 4],
            beta: vec![1.0; 4],
        };
        // Row 1 2 3 4: mean 2.5, variance 1.25.
        let mut x = vec![1.0f32, 2.0, 3.0, 4.0];
        layer_norm(&mut x, &n);
        let s = 1.0 / 1.25f64.sqrt();
        for (v, z) in x.iter().zip([-1.5, -0.5, 0.5, 1.5]) {
            assert!((f64::from(*v) - (2.0 * z * s + 1.0)).abs() < 1e-6, "{v}");
        }
    }
}
