//! The data plane of a functional run: the memory image of every stored tensor of the
//! model's graph ([`crate::model::Graph`]), and the arithmetic each unit applies to the tiles
//! it serves (see the module above for the equations). The model input (`s x d` per batch
//! element) is seeded `U(-sqrt 3, sqrt 3)` rounded to f16; every other tensor starts as NaN.

use super::reference::Reference;
use super::weights::{LayerWeights, ModelWeights, Norm};
use super::{FunctionalReport, LN_EPS, TensorError, gelu, to_f16};
use crate::model::{Graph, Role, TensorId, VectorOp};
use crate::txn::{Pass, Tile, TileValues, Via};
use crate::workload::{Op, Workload};

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

/// The vector ops a functional run computes (RMSNorm and rotary embeddings come with the
/// Llama family's weights).
fn computed(v: VectorOp) -> bool {
    !matches!(v, VectorOp::RmsNorm | VectorOp::Rotary)
}

impl DataPlane {
    /// A data plane for workload `w` with `weights`; `seed` makes the input.
    pub fn new(
        w: &Workload,
        weights: ModelWeights,
        seed: u64,
        source: String,
    ) -> Result<DataPlane, String> {
        if w.value_bits != 16 {
            return Err(format!(
                "functional runs model 16-bit (f16) values; this workload has value_bits = {}",
                w.value_bits
            ));
        }
        let graph = w.graph();
        let layers = w.layers as usize;
        if weights.layers.len() < layers {
            return Err(format!(
                "the weights have {} layers, the run {}",
                weights.layers.len(),
                layers
            ));
        }
        for o in &graph.ops {
            if let Some(v) = o.vector_op()
                && !computed(v)
            {
                return Err(format!(
                    "layer {} `{}`: functional runs do not compute {v:?} yet",
                    o.layer, o.name
                ));
            }
            let Some(class) = o.linear_class() else {
                continue;
            };
            let Some(lin) = weights.layers[o.layer as usize].linear(class) else {
                return Err(format!(
                    "layer {} `{}`: functional runs do not compute a decoder's lm_head yet",
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
        for (i, lw) in weights.layers.iter().take(layers).enumerate() {
            let d = w.model.hidden as usize;
            if lw.ln1.gamma.len() != d || lw.ln2.gamma.len() != d {
                return Err(format!("layer {i}: LayerNorm parameters are not {d} long"));
            }
        }
        let mut tensors = Vec::with_capacity(graph.tensors.len());
        for (t, tensor) in graph.tensors.iter().enumerate() {
            let (rows, cols) = (tensor.rows as usize, tensor.cols as usize);
            let instances = (0..tensor.instances)
                .map(|b| {
                    // The model input (tensor 0) is seeded; everything else starts unwritten.
                    let v = if t == 0 {
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
            weights,
            seed,
            source,
            tensors,
        })
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

    fn layer(&self, op: &Op) -> &LayerWeights {
        &self.weights.layers[op.layer as usize]
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
                let heads = a.heads as usize;
                let (b, hd) = (p.inst as usize / heads, p.inst as usize % heads);
                let dh = a.head_dim as usize;
                let kvh = a.kv_head(hd as u64) as usize;
                let kvt = &self.tensors[kv.tensor.0 as usize][b];
                let kv_at =
                    |row: usize, i: usize| kvt.v[row * kvt.cols + kv.col0 as usize + kvh * dh + i];
                let xt = &self.tensors[x.tensor.0 as usize][b];
                if op.role == Role::Scores {
                    let q_at =
                        |row: usize, i: usize| xt.v[row * xt.cols + x.col0 as usize + hd * dh + i];
                    for r in r0..r0 + rows {
                        for key in c0..c0 + cols {
                            v.push(ks.clone().map(|i| q_at(r, i) * kv_at(key, i)).sum());
                        }
                    }
                } else {
                    // P rows of head `hd` are stacked after the earlier heads' rows.
                    let s = op.rows as usize;
                    for r in r0..r0 + rows {
                        let at = (hd * s + r) * xt.cols;
                        let prow = &xt.v[at..at + xt.cols];
                        for c in c0..c0 + cols {
                            v.push(ks.clone().map(|key| prow[key] * kv_at(key, c)).sum());
                        }
                    }
                }
            }
            // (`new` refused a graph with a linear layer these weights do not hold.)
            (Role::Linear { class }, _, Some(x), _)
                if let Some(lin) = self.layer(op).linear(class) =>
            {
                let act = self.values(x.tensor, p.inst as usize);
                let k = lin.k;
                for r in r0..r0 + rows {
                    let a = &act[r * k..(r + 1) * k];
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
            .and_then(|c| self.layer(op).linear(c))
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

    /// Commits a tile that reached the activation buffer or DRAM to the memory image.
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
        // A LayerNorm of the chain up to the storing op runs once the row is complete.
        let norm = (self.chain_start(j)..=j)
            .map(|i| &self.graph.ops[i])
            .find(|o| {
                matches!(
                    o.vector_op(),
                    Some(VectorOp::LayerNorm | VectorOp::AddLayerNorm)
                )
            })
            .map(|o| Self::norm(&self.weights, o).clone());
        let (b, row_base, col_base) = op.out_at(u64::from(data.inst));
        let tensor = &mut self.tensors[out.0 as usize][b as usize];
        let (rows, cols) = (data.rows as usize, data.cols as usize);
        for r in 0..rows {
            let row = row_base as usize + data.row0 as usize + r;
            let at = row * tensor.cols + col_base as usize + data.col0 as usize;
            tensor.v[at..at + cols].copy_from_slice(&data.v[r * cols..(r + 1) * cols]);
            tensor.done[row] += cols;
            if let Some(norm) = &norm
                && tensor.done[row] == tensor.cols
            {
                let x = &mut tensor.v[row * tensor.cols..(row + 1) * tensor.cols];
                let n = x.len() as f32;
                let mean = x.iter().sum::<f32>() / n;
                let var = x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
                let inv = 1.0 / (var + LN_EPS as f32).sqrt();
                for (j, v) in x.iter_mut().enumerate() {
                    *v = to_f16((*v - mean) * inv * norm.gamma[j] + norm.beta[j]);
                }
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
