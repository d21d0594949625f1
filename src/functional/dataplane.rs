//! The data plane of a functional run: the memory image of every stored tensor of the
//! model's graph ([`crate::model::Graph`]), and the arithmetic each unit applies to the tiles
//! it serves (see the module above for the equations). An encoder's input (`s x d` per batch
//! element) is seeded `U(-sqrt 3, sqrt 3)` rounded to f16. A decoder's inputs are its token
//! ids' embedding rows (`input`), their RMSNorm with layer 0's `attn_norm` (`input_norm`,
//! rounded to f16: the lookup is done at setup) and, in a decode step, each layer's KV cache
//! (rows `0..context` from the caller, [`DecoderInputs`]; seeded tokens and a seeded cache
//! when none is given). Every other tensor starts as NaN.
//!
//! **The KV cache append.** In a decode step the cache tensor's row `context` (the new token)
//! is this step's K and V: when a row of the `qkv` tensor is complete (its rotary applied),
//! its K and V columns (`h dh ..`) are committed to that row of the cache instance of the
//! row's sequence, at the same simulated time (the write the timing run makes).

use super::reference::Reference;
use super::weights::{Linear, ModelWeights, Norm};
use super::wiring::{KvCache, Wiring, dest, kv_at, p_at, q_at, row_op};
use super::{FunctionalReport, LN_EPS, TensorError, gelu, to_f16};
use crate::model::{Graph, Role, TensorId, VectorOp};
use crate::txn::{Pass, Tile, TileValues, Via};
use crate::workload::{Op, Phase, Workload};

/// A decoder run's inputs: each sequence's token ids (a prefill: `seq` of them; a decode
/// step: one) and, in a decode step, the KV cache of the `context` tokens before.
#[derive(Clone, Debug)]
pub struct DecoderInputs {
    /// Token ids per sequence.
    pub tokens: Vec<Vec<u32>>,
    /// The cache (decode steps only).
    pub cache: Option<KvCache>,
}

/// One instance of one tensor of the memory image.
struct Tensor {
    cols: usize,
    v: Vec<f32>,
    /// Columns committed so far, per row (row-wise vector ops run when a row is complete).
    done: Vec<usize>,
}

/// The memory image and the units' arithmetic.
pub struct DataPlane {
    graph: Graph,
    wiring: Wiring,
    weights: ModelWeights,
    seed: u64,
    source: String,
    /// `tensors[t][instance]`.
    tensors: Vec<Vec<Tensor>>,
}

/// `silu(x) = x * sigmoid(x)`.
pub(crate) fn silu(x: f64) -> f64 {
    x / (1.0 + (-x).exp())
}

impl DataPlane {
    /// A data plane for workload `w` with `weights`; `seed` makes the input (a decoder's
    /// tokens, and in a decode step its cache).
    pub fn new(
        w: &Workload,
        weights: ModelWeights,
        seed: u64,
        source: String,
    ) -> Result<DataPlane, String> {
        DataPlane::with_inputs(w, weights, seed, source, None)
    }

    /// A data plane for decoder workload `w` with the given tokens and cache (`None`: seeded
    /// from `seed`, as [`DataPlane::new`]).
    pub fn with_inputs(
        w: &Workload,
        weights: ModelWeights,
        seed: u64,
        source: String,
        inputs: Option<DecoderInputs>,
    ) -> Result<DataPlane, String> {
        if w.value_bits != 16 {
            return Err(format!(
                "functional runs model 16-bit (f16) values; this workload has value_bits = {}",
                w.value_bits
            ));
        }
        let graph = w.graph();
        let layers = w.layers as usize;
        if weights.decoder.is_none() && weights.layers.len() < layers {
            return Err(format!(
                "the weights have {} layers, the run {}",
                weights.layers.len(),
                layers
            ));
        }
        let wiring = Wiring::new(w, &graph);
        if let Some(dec) = &weights.decoder {
            dec.check(w)?;
        } else if w.model.decoder.is_some() {
            return Err("a Llama-family decoder needs decoder weights".into());
        }
        for (j, o) in graph.ops.iter().enumerate() {
            let Some(class) = o.linear_class() else {
                continue;
            };
            let Some(lin) = wiring.linear(&weights, &graph, j) else {
                return Err(format!(
                    "layer {} `{}`: the weights do not hold this {class:?} layer",
                    o.layer, o.name
                ));
            };
            if (lin.out as u64, lin.k as u64) != (o.cols, o.k) || lin.bias.len() as u64 != o.cols {
                return Err(format!(
                    "layer {} `{}`: weights are {} x {} (bias {}), the model needs {} x {}",
                    o.layer,
                    o.name,
                    lin.out,
                    lin.k,
                    lin.bias.len(),
                    o.cols,
                    o.k
                ));
            }
        }
        if weights.decoder.is_none() {
            for (i, lw) in weights.layers.iter().take(layers).enumerate() {
                let d = w.model.hidden as usize;
                if lw.ln1.gamma.len() != d || lw.ln2.gamma.len() != d {
                    return Err(format!("layer {i}: LayerNorm parameters are not {d} long"));
                }
            }
        }
        let initial = match &weights.decoder {
            Some(dec) => {
                let inputs = match inputs {
                    Some(i) => i,
                    None => seeded_inputs(w, &wiring, dec.vocab(), seed),
                };
                Some(wiring.decoder_inputs(&graph, dec, &inputs)?)
            }
            None => None,
        };
        let mut tensors = Vec::with_capacity(graph.tensors.len());
        for (t, tensor) in graph.tensors.iter().enumerate() {
            let (rows, cols) = (tensor.rows as usize, tensor.cols as usize);
            let instances =
                (0..tensor.instances)
                    .map(|b| {
                        // The model input (tensor 0) is seeded; everything else starts unwritten.
                        let given = initial.as_ref().and_then(|i| i[t].as_ref()).map(
                            |v: &Vec<Vec<f64>>| {
                                v[b as usize].iter().map(|&x| to_f16(x as f32)).collect()
                            },
                        );
                        let v = if let Some(v) = given {
                            v
                        } else if t == 0 && initial.is_none() {
                            crate::workload::stanm::inputs(rows, cols, seed ^ (0x5EED_0000 + b))
                                .into_iter()
                                .map(|u| to_f16(u * 3f32.sqrt()))
                                .collect()
                        } else {
                            vec![f32::NAN; rows * cols]
                        };
                        Tensor {
                            cols,
                            v,
                            done: vec![0; rows],
                        }
                    })
                    .collect();
            tensors.push(instances);
        }
        Ok(DataPlane {
            graph,
            wiring,
            weights,
            seed,
            source,
            tensors,
        })
    }

    /// The weights, giving the data plane up (a generation moves them to its next run).
    pub fn into_weights(self) -> ModelWeights {
        self.weights
    }

    /// The model's graph.
    pub fn graph(&self) -> &Graph {
        &self.graph
    }

    /// The weights.
    pub fn weights(&self) -> &ModelWeights {
        &self.weights
    }

    /// Replaces the weights the reference is computed from, keeping the memory image (tests
    /// use it to show that a run checked against other weights fails).
    pub fn with_weights(&mut self, weights: ModelWeights) -> &mut Self {
        self.weights = weights;
        self
    }

    /// The model input of batch element `b`.
    pub fn input(&self, b: usize) -> &[f32] {
        &self.tensors[0][b].v
    }

    /// The values of instance `b` of tensor `t`.
    fn values(&self, t: TensorId, b: usize) -> &[f32] {
        &self.tensors[t.0 as usize][b].v
    }

    fn op(&self, id: u32) -> &Op {
        &self.graph.ops[id as usize]
    }

    /// The weights of linear op `j`.
    fn linear(&self, j: u32) -> Option<&Linear> {
        self.wiring.linear(&self.weights, &self.graph, j as usize)
    }

    /// The wiring of the graph.
    pub(crate) fn wiring(&self) -> &Wiring {
        &self.wiring
    }

    /// The values of every instance of tensor `t` (the memory image).
    pub fn tensor_values(&self, t: TensorId) -> Vec<&[f32]> {
        self.tensors[t.0 as usize]
            .iter()
            .map(|x| x.v.as_slice())
            .collect()
    }

    /// The KV cache after the run: each layer's K and V of the prompt (a prefill) or of the
    /// context and this step's token (a decode step).
    pub fn kv_cache(&self) -> KvCache {
        self.wiring
            .kv_cache(&self.graph, |t, b| self.tensors[t.0 as usize][b].v.clone())
    }

    /// The logits after the run, one row of `V` per sequence (NaN where not computed).
    pub fn logits(&self) -> Vec<Vec<f32>> {
        let Some(out) = self.graph.output() else {
            return Vec::new();
        };
        let cols = self.graph.tensor(out).cols as usize;
        self.tensors[out.0 as usize]
            .iter()
            .flat_map(|t| t.v.chunks_exact(cols).map(<[f32]>::to_vec))
            .collect()
    }

    /// The layer normalisation `op` applies.
    pub(crate) fn norm<'w>(weights: &'w ModelWeights, op: &Op) -> &'w Norm {
        let lw = &weights.layers[op.layer as usize];
        if op.norm == 0 { &lw.ln1 } else { &lw.ln2 }
    }

    /// The PE array's output tile for pass `p`, from operands in the memory image.
    pub fn pass(&self, p: &Pass) -> Box<TileValues> {
        let op = self.op(p.op);
        let (rows, cols) = (p.rows as usize, p.cols as usize);
        let (r0, c0) = (p.row0 as usize, p.col0 as usize);
        let mut v = Vec::with_capacity(rows * cols);
        // This pass's chunk of the reduction.
        let ks = p.k0 as usize..(p.k0 + p.k) as usize;
        match (op.role, op.attention, op.input, op.kv) {
            (Role::Scores | Role::Pv, Some(a), Some(x), Some(kv)) => {
                let inst = p.inst as usize;
                let (kb, kcol) = kv_at(op, &a, inst);
                let kvt = &self.tensors[kv.tensor.0 as usize][kb];
                let kv_row = |row: usize| &kvt.v[row * kvt.cols + kcol..];
                if op.role == Role::Scores {
                    for r in r0..r0 + rows {
                        let (qb, qrow, qcol) = q_at(op, &a, inst, r);
                        let xt = &self.tensors[x.tensor.0 as usize][qb];
                        let q = &xt.v[qrow * xt.cols + qcol..];
                        for key in c0..c0 + cols {
                            let k = kv_row(key);
                            v.push(ks.clone().map(|i| q[i] * k[i]).sum());
                        }
                    }
                } else {
                    for r in r0..r0 + rows {
                        let (pb, prow) = p_at(op, &a, inst, r);
                        let xt = &self.tensors[x.tensor.0 as usize][pb];
                        let prow = &xt.v[prow * xt.cols..(prow + 1) * xt.cols];
                        for c in c0..c0 + cols {
                            v.push(ks.clone().map(|key| prow[key] * kv_row(key)[c]).sum());
                        }
                    }
                }
            }
            // (`new` refused a graph with a linear layer these weights do not hold.)
            (Role::Linear { .. }, _, Some(x), _) if let Some(lin) = self.linear(p.op) => {
                let act = self.values(x.tensor, p.inst as usize);
                let k = lin.k;
                let base = x.row0 as usize;
                for r in r0..r0 + rows {
                    let a = &act[(base + r) * k..(base + r + 1) * k];
                    for c in c0..c0 + cols {
                        v.push(lin.mac(c, a, ks.clone()));
                    }
                }
            }
            // The PE array runs matmuls only.
            _ => {}
        }
        Box::new(TileValues {
            inst: p.inst,
            row0: p.row0,
            col0: p.col0,
            rows: p.rows,
            cols: p.cols,
            v,
        })
    }

    /// The accumulator: `+ bias` for linear layers, then rounding to f16.
    pub fn accumulate(&self, t: &mut Tile) {
        let op = self.op(t.op);
        let Some(data) = t.data.as_deref_mut() else {
            return;
        };
        let bias = op
            .linear_class()
            .and_then(|_| self.linear(t.op))
            .map(|l| &l.bias);
        let cols = data.cols as usize;
        for (i, x) in data.v.iter_mut().enumerate() {
            let b = bias.map_or(0.0, |b| b[data.col0 as usize + i % cols]);
            *x = to_f16(*x + b);
        }
    }

    /// The softmax unit on one row block (the tiles of one row tile, all its key columns).
    pub fn softmax(&self, block: &mut [Tile]) {
        let Some(first) = block.first() else {
            return;
        };
        let Some(a) = self.op(first.op).attention else {
            return;
        };
        let Some(data) = first.data.as_deref() else {
            return;
        };
        let (rows, row0) = (data.rows as usize, data.row0 as usize);
        let scale = 1.0 / (a.head_dim as f32).sqrt();
        for r in 0..rows {
            let row = row0 + r;
            let masked = |key: usize| a.causal && key > row;
            let mut max = f32::NEG_INFINITY;
            let mut each = |f: &mut dyn FnMut(usize, &mut f32)| {
                for t in block.iter_mut() {
                    if let Some(d) = t.data.as_deref_mut() {
                        let (cols, col0) = (d.cols as usize, d.col0 as usize);
                        for c in 0..cols {
                            f(col0 + c, &mut d.v[r * cols + c]);
                        }
                    }
                }
            };
            each(&mut |key, x| {
                if !masked(key) {
                    max = max.max(*x * scale);
                }
            });
            let mut sum = 0.0f32;
            each(&mut |key, x| {
                *x = if masked(key) {
                    0.0
                } else {
                    (*x * scale - max).exp()
                };
                sum += *x;
            });
            each(&mut |_, x| *x = to_f16(*x / sum));
        }
    }

    /// The vector unit: the element-wise part of every op of the chain the tile's route
    /// names (`Via::Vector { op }`: the chain's first op), in order. Row-wise parts
    /// (LayerNorm's statistics) run when the row is committed whole.
    pub fn vector(&self, t: &mut Tile) {
        let Via::Vector { op: first, .. } = t.via else {
            return;
        };
        let Some(data) = t.data.as_deref_mut() else {
            return;
        };
        let (cols, r0, c0) = (data.cols as usize, data.row0 as usize, data.col0 as usize);
        let b = data.inst as usize;
        let matmul = first as usize - 1;
        for j in self.graph.chain(matmul) {
            let op = &self.graph.ops[j];
            let Some(vop) = op.vector_op() else { continue };
            let operand = op.operand.map(|r| &self.tensors[r.0 as usize][b]);
            let r_at =
                |i: usize| operand.map_or(0.0, |o| o.v[(r0 + i / cols) * o.cols + c0 + i % cols]);
            for (i, x) in data.v.iter_mut().enumerate() {
                *x = match vop {
                    // The residual add in f32; LayerNorm follows at commit.
                    VectorOp::Add | VectorOp::AddLayerNorm => *x + r_at(i),
                    VectorOp::Mul => to_f16(*x * r_at(i)),
                    VectorOp::Gelu => to_f16(gelu(f64::from(*x)) as f32),
                    VectorOp::Silu => to_f16(silu(f64::from(*x)) as f32),
                    VectorOp::SiluMul => to_f16(silu(f64::from(r_at(i))) as f32 * *x),
                    VectorOp::LayerNorm | VectorOp::RmsNorm | VectorOp::Rotary => *x,
                };
            }
        }
    }

    /// The first op of the fused chain op `j` belongs to (`j` itself when it is not a
    /// vector op).
    fn chain_start(&self, j: usize) -> usize {
        let mut k = j;
        while k > 0
            && self.graph.ops[k].vector_op().is_some()
            && self.graph.ops[k - 1].vector_op().is_some()
        {
            k -= 1;
        }
        k
    }

    /// Commits a tile that reached the activation buffer or DRAM to the memory image:
    /// rounded to f16, or, when the chain up to the storing op has a row-wise op (LayerNorm,
    /// RMSNorm, rotary), that op applied once the row is complete, then rounded. A completed
    /// row of a decode step's `qkv` appends its K and V to the cache (module header).
    pub fn commit(&mut self, t: &Tile) {
        let Some(data) = t.data.as_deref() else {
            return;
        };
        // A tile's op is the op whose output it is (the vector unit names the storing op).
        let j = t.op as usize;
        let op = &self.graph.ops[j];
        let Some(out) = op.output else {
            return;
        };
        // A row-wise op of the chain up to the storing op runs once the row is complete.
        let row_wise = row_op(&self.graph.ops[self.chain_start(j)..=j]).cloned();
        let (rows, cols) = (data.rows as usize, data.cols as usize);
        let mut completed = Vec::new();
        for r in 0..rows {
            let (b, row, col) = dest(op, data.inst as usize, data.row0 as usize + r);
            let tensor = &mut self.tensors[out.0 as usize][b];
            let at = row * tensor.cols + col + data.col0 as usize;
            let src = &data.v[r * cols..(r + 1) * cols];
            let dst = &mut tensor.v[at..at + cols];
            if row_wise.is_some() {
                dst.copy_from_slice(src);
            } else {
                for (d, &x) in dst.iter_mut().zip(src) {
                    *d = to_f16(x);
                }
            }
            tensor.done[row] += cols;
            if tensor.done[row] == tensor.cols {
                completed.push((b, row));
            }
        }
        for (b, row) in completed {
            if let Some(o) = &row_wise {
                self.finish_row(o, out, b, row);
            }
            if let Some((cache, cb, crow, k0)) = self.wiring.append(out, row) {
                let src = &self.tensors[out.0 as usize][b];
                let kv = src.v[row * src.cols + k0..(row + 1) * src.cols].to_vec();
                let dst = &mut self.tensors[cache.0 as usize][cb];
                let at = crow * dst.cols;
                dst.v[at..at + dst.cols].copy_from_slice(&kv);
                dst.done[crow] = dst.cols;
            }
        }
    }

    /// The row-wise op `o` on row `row` of instance `b` of tensor `out`, rounded to f16:
    /// LayerNorm and RMSNorm in f32, the rotary in f64 (its angles a table of the unit).
    fn finish_row(&mut self, o: &Op, out: TensorId, b: usize, row: usize) {
        let vop = o.vector_op();
        let ln = matches!(vop, Some(VectorOp::LayerNorm | VectorOp::AddLayerNorm))
            .then(|| Self::norm(&self.weights, o).clone());
        let gamma = match (vop, &self.weights.decoder) {
            (Some(VectorOp::RmsNorm), Some(dec)) => Some(self.wiring.rms_gamma(dec, o).to_vec()),
            _ => None,
        };
        let eps = self.wiring.eps();
        let pos = self.wiring.position(row);
        let tensor = &mut self.tensors[out.0 as usize][b];
        let x = &mut tensor.v[row * tensor.cols..(row + 1) * tensor.cols];
        if let Some(norm) = ln {
            let n = x.len() as f32;
            let mean = x.iter().sum::<f32>() / n;
            let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
            let inv = 1.0 / (var + LN_EPS as f32).sqrt();
            for (j, v) in x.iter_mut().enumerate() {
                *v = to_f16((*v - mean) * inv * norm.gamma[j] + norm.beta[j]);
            }
        } else if let Some(gamma) = gamma {
            let ms = x.iter().map(|v| v * v).sum::<f32>() / x.len() as f32;
            let inv = 1.0 / (ms + eps as f32).sqrt();
            for (v, g) in x.iter_mut().zip(gamma) {
                *v = to_f16(*v * inv * g);
            }
        } else if vop == Some(VectorOp::Rotary) {
            let mut r: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
            self.wiring.rotate(&mut r, pos);
            for (v, y) in x.iter_mut().zip(r) {
                *v = to_f16(y as f32);
            }
        }
    }

    /// Compares the memory image with the f64 reference, tensor by tensor.
    pub fn report(&self, tolerance: f64) -> FunctionalReport {
        let reference = Reference::compute(self);
        let model_out = self.graph.output();
        // Causal P: keys after the query are masked, never computed (nor read).
        let mut causal_rows = vec![None; self.graph.tensors.len()];
        for o in &self.graph.ops {
            if let (Role::Softmax, Some(a), Some(t)) = (o.role, o.attention, o.output)
                && a.causal
            {
                causal_rows[t.0 as usize] = Some(o.rows as usize);
            }
        }
        let mut tensors = Vec::new();
        let mut output = Acc::default();
        for (id, tensor) in self.graph.tensors.iter().enumerate().skip(1) {
            let mut acc = Acc::default();
            for b in 0..tensor.instances as usize {
                let sim = &self.tensors[id][b];
                let exact = reference.tensor(TensorId(id as u32), b);
                if let Some(s) = causal_rows[id] {
                    for (i, (srow, erow)) in sim
                        .v
                        .chunks(sim.cols)
                        .zip(exact.chunks(sim.cols))
                        .enumerate()
                    {
                        let visible = i % s + 1;
                        acc.add(&srow[..visible], &erow[..visible]);
                    }
                    continue;
                }
                acc.add(&sim.v, exact);
                if model_out == Some(TensorId(id as u32)) {
                    output.add(&sim.v, exact);
                }
            }
            tensors.push(acc.finish(tensor.name()));
        }
        let out = output.finish("output".into());
        FunctionalReport {
            weights: self.source.clone(),
            seed: self.seed,
            tolerance,
            output_max_abs_error: out.max_abs_error,
            output_rel_error: out.rel_error,
            passed: out.non_finite == 0 && out.rel_error <= tolerance,
            tensors,
        }
    }
}

/// Running error sums.
#[derive(Default)]
struct Acc {
    values: u64,
    max_abs: f64,
    diff2: f64,
    ref2: f64,
    non_finite: u64,
}

impl Acc {
    fn add(&mut self, sim: &[f32], exact: &[f64]) {
        for (&a, &e) in sim.iter().zip(exact) {
            self.values += 1;
            if !a.is_finite() {
                self.non_finite += 1;
                continue;
            }
            let diff = f64::from(a) - e;
            self.max_abs = self.max_abs.max(diff.abs());
            self.diff2 += diff * diff;
            self.ref2 += e * e;
        }
    }

    fn finish(self, name: String) -> TensorError {
        let rel = if self.non_finite > 0 {
            f64::INFINITY
        } else if self.ref2 > 0.0 {
            (self.diff2 / self.ref2).sqrt()
        } else {
            self.diff2.sqrt()
        };
        TensorError {
            name,
            values: self.values,
            max_abs_error: if self.non_finite > 0 {
                f64::INFINITY
            } else {
                self.max_abs
            },
            rel_error: rel,
            non_finite: self.non_finite,
        }
    }
}

/// Seeded token ids of a decoder run of `w`: `U{0..V}` per sequence and position (a
/// prefill's `seq` a sequence, a decode step's one).
pub fn seeded_tokens(w: &Workload, vocab: usize, seed: u64) -> Vec<Vec<u32>> {
    let (seqs, per_seq) = match w.phase {
        Phase::Prefill => (w.batch as usize, w.seq as usize),
        Phase::Decode { .. } => (w.batch as usize, 1),
    };
    (0..seqs)
        .map(|b| {
            crate::workload::stanm::inputs(1, per_seq, seed ^ (0x70C0_0000 + b as u64))
                .into_iter()
                .map(|u| (((u + 1.0) / 2.0 * vocab as f32) as usize).min(vocab - 1) as u32)
                .collect()
        })
        .collect()
}

/// Seeded decoder inputs for `w`: its [`seeded_tokens`], and in a decode step a cache of
/// `U(-sqrt 3, sqrt 3)` values rounded to f16.
fn seeded_inputs(w: &Workload, wiring: &Wiring, vocab: usize, seed: u64) -> DecoderInputs {
    let tokens = seeded_tokens(w, vocab, seed);
    let cache = match w.phase {
        Phase::Prefill => None,
        Phase::Decode { context } => {
            let g = w.graph();
            let shape = wiring.kv_cache(&g, |t, _| {
                vec![0.0f32; (g.tensor(t).rows * g.tensor(t).cols) as usize]
            });
            let c = context as usize;
            let values = shape
                .values
                .iter()
                .enumerate()
                .map(|(l, seqs)| {
                    seqs.iter()
                        .enumerate()
                        .map(|(b, full)| {
                            let n = full.len() / (c + 1) * c;
                            let s = seed ^ (0xCAC4_0000 + (l as u64) * 4096 + b as u64);
                            crate::workload::stanm::inputs(1, n, s)
                                .into_iter()
                                .map(|u| to_f16(u * 3f32.sqrt()))
                                .collect()
                        })
                        .collect()
                })
                .collect();
            Some(KvCache { tokens: c, values })
        }
    };
    DecoderInputs { tokens, cache }
}
