//! The data plane of a functional run: the memory image of every stored tensor, and the
//! arithmetic each unit applies to the tiles it serves (see the module above for the
//! equations).
//!
//! Tensors, per layer and batch element (`s` rows): `qkv` (`s x 3d`), `p` (softmax output,
//! `h*s x s`, head-major), `context` (`s x d`, heads side by side), `add_ln1` (`s x d`),
//! `gelu` (`s x f`), `add_ln2` (`s x d`, the layer's output and the next layer's input).
//! The model input is `s x d` per batch element, seeded `U(-sqrt 3, sqrt 3)` rounded to f16.

use super::reference::Reference;
use super::weights::{LayerWeights, ModelWeights};
use super::{FunctionalReport, LN_EPS, TensorError, gelu, to_f16};
use crate::model::{Role, TensorKind, VectorOp};
use crate::txn::{Pass, Tile, TileValues, Via};
use crate::workload::{Op, Workload};

/// The tensors a layer stores (discriminants index [`KINDS`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Q, K, V side by side.
    Qkv,
    /// Softmax output.
    P,
    /// P·V of every head.
    Context,
    /// LayerNorm(proj + input).
    AddLn1,
    /// GELU(ffn1).
    Gelu,
    /// LayerNorm(ffn2 + add_ln1): the layer output.
    AddLn2,
}

/// Every kind, in layer order.
pub const KINDS: [Kind; 6] = [
    Kind::Qkv,
    Kind::P,
    Kind::Context,
    Kind::AddLn1,
    Kind::Gelu,
    Kind::AddLn2,
];

impl Kind {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Qkv => "qkv",
            Kind::P => "p",
            Kind::Context => "context",
            Kind::AddLn1 => "add_ln1",
            Kind::Gelu => "gelu",
            Kind::AddLn2 => "add_ln2",
        }
    }

    /// The stored tensor of the IR's `t` (`None` for the layer input, which is the model
    /// input or the previous layer's output).
    fn of(t: TensorKind) -> Option<Kind> {
        Some(match t {
            TensorKind::Input => return None,
            TensorKind::Qkv => Kind::Qkv,
            TensorKind::P => Kind::P,
            TensorKind::Context => Kind::Context,
            TensorKind::Hidden => Kind::AddLn1,
            TensorKind::Ffn => Kind::Gelu,
            TensorKind::Output => Kind::AddLn2,
        })
    }
}

/// Shapes of one run.
#[derive(Copy, Clone, Debug)]
pub struct Dims {
    /// Sequence length.
    pub s: usize,
    /// Batch.
    pub b: usize,
    /// Hidden size.
    pub d: usize,
    /// Heads.
    pub h: usize,
    /// Head size.
    pub dh: usize,
    /// FFN size.
    pub f: usize,
    /// Layers simulated.
    pub layers: usize,
    /// Causal attention.
    pub causal: bool,
}

impl Dims {
    /// From a workload.
    pub fn of(w: &Workload) -> Dims {
        Dims {
            s: w.seq as usize,
            b: w.batch as usize,
            d: w.model.hidden as usize,
            h: w.model.heads as usize,
            dh: w.head_dim() as usize,
            f: w.model.ffn as usize,
            layers: w.layers as usize,
            causal: w.model.causal,
        }
    }

    /// `(rows, cols)` of a tensor of `kind`.
    pub fn shape(&self, kind: Kind) -> (usize, usize) {
        match kind {
            Kind::Qkv => (self.s, 3 * self.d),
            Kind::P => (self.h * self.s, self.s),
            Kind::Gelu => (self.s, self.f),
            Kind::Context | Kind::AddLn1 | Kind::AddLn2 => (self.s, self.d),
        }
    }

    /// Index of tensor `(layer, kind, batch)` in a flat list.
    pub fn index(&self, layer: usize, kind: Kind, batch: usize) -> usize {
        (layer * KINDS.len() + kind as usize) * self.b + batch
    }
}

/// One tensor of the memory image.
struct Tensor {
    cols: usize,
    v: Vec<f32>,
    /// Columns committed so far, per row (LayerNorm runs when a row is complete).
    done: Vec<usize>,
}

/// The memory image and the units' arithmetic.
pub struct DataPlane {
    dims: Dims,
    weights: ModelWeights,
    ops: Vec<Op>,
    seed: u64,
    source: String,
    /// Model input per batch element, `s x d`.
    input: Vec<Vec<f32>>,
    tensors: Vec<Tensor>,
}

impl DataPlane {
    /// A data plane for workload `w` with `weights`; `seed` makes the input.
    pub fn new(
        w: &Workload,
        weights: ModelWeights,
        seed: u64,
        source: String,
    ) -> Result<DataPlane, String> {
        let dims = Dims::of(w);
        if w.value_bits != 16 {
            return Err(format!(
                "functional runs model 16-bit (f16) values; this workload has value_bits = {}",
                w.value_bits
            ));
        }
        if weights.layers.len() < dims.layers {
            return Err(format!(
                "the weights have {} layers, the run {}",
                weights.layers.len(),
                dims.layers
            ));
        }
        for (i, lw) in weights.layers.iter().take(dims.layers).enumerate() {
            let (d, f) = (dims.d, dims.f);
            for (name, lin, out, k) in [
                ("qkv", &lw.qkv, 3 * d, d),
                ("proj", &lw.proj, d, d),
                ("ffn1", &lw.ffn1, f, d),
                ("ffn2", &lw.ffn2, d, f),
            ] {
                if (lin.out, lin.k) != (out, k) || lin.bias.len() != out {
                    return Err(format!(
                        "layer {i} `{name}`: weights are {} x {} (bias {}), the model needs {out} x {k}",
                        lin.out,
                        lin.k,
                        lin.bias.len()
                    ));
                }
            }
            if lw.ln1.gamma.len() != d || lw.ln2.gamma.len() != d {
                return Err(format!("layer {i}: LayerNorm parameters are not {d} long"));
            }
        }
        let input = (0..dims.b)
            .map(|b| {
                crate::workload::stanm::inputs(dims.s, dims.d, seed ^ (0x5EED_0000 + b as u64))
                    .into_iter()
                    .map(|u| to_f16(u * 3f32.sqrt()))
                    .collect()
            })
            .collect();
        let mut tensors = Vec::new();
        for _layer in 0..dims.layers {
            for kind in KINDS {
                let (rows, cols) = dims.shape(kind);
                for _ in 0..dims.b {
                    tensors.push(Tensor {
                        cols,
                        v: vec![f32::NAN; rows * cols],
                        done: vec![0; rows],
                    });
                }
            }
        }
        Ok(DataPlane {
            dims,
            weights,
            ops: w.ops(),
            seed,
            source,
            input,
            tensors,
        })
    }

    /// The shapes.
    pub fn dims(&self) -> Dims {
        self.dims
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
        &self.input[b]
    }

    fn t(&self, layer: usize, kind: Kind, b: usize) -> &Tensor {
        &self.tensors[self.dims.index(layer, kind, b)]
    }

    /// The values of tensor `t` of `layer` for batch element `b`.
    fn tensor_of(&self, layer: usize, t: TensorKind, b: usize) -> &[f32] {
        match Kind::of(t) {
            Some(kind) => &self.t(layer, kind, b).v,
            None => self.layer_input(layer, b),
        }
    }

    /// The input of `layer` for batch element `b`.
    fn layer_input(&self, layer: usize, b: usize) -> &[f32] {
        if layer == 0 {
            &self.input[b]
        } else {
            &self.t(layer - 1, Kind::AddLn2, b).v
        }
    }

    fn op(&self, id: u32) -> &Op {
        &self.ops[id as usize]
    }

    fn layer(&self, op: &Op) -> &LayerWeights {
        &self.weights.layers[op.layer as usize]
    }

    /// The PE array's output tile for pass `p`, from operands in the memory image.
    pub fn pass(&self, p: &Pass) -> Box<TileValues> {
        let op = self.op(p.op);
        let l = op.layer as usize;
        let Dims { d, h, dh, s, .. } = self.dims;
        let (rows, cols) = (p.rows as usize, p.cols as usize);
        let (r0, c0) = (p.row0 as usize, p.col0 as usize);
        let mut v = Vec::with_capacity(rows * cols);
        // This pass's chunk of the reduction.
        let ks = p.k0 as usize..(p.k0 + p.k) as usize;
        match op.role {
            Role::Scores | Role::Pv => {
                let (b, hd) = (p.inst as usize / h, p.inst as usize % h);
                let qkv = &self.t(l, Kind::Qkv, b).v;
                let col =
                    |row: usize, part: usize, i: usize| qkv[row * 3 * d + part * d + hd * dh + i];
                if op.role == Role::Scores {
                    for r in r0..r0 + rows {
                        for key in c0..c0 + cols {
                            v.push(ks.clone().map(|i| col(r, 0, i) * col(key, 1, i)).sum());
                        }
                    }
                } else {
                    let pm = &self.t(l, Kind::P, b).v;
                    for r in r0..r0 + rows {
                        let prow = &pm[(hd * s + r) * s..(hd * s + r + 1) * s];
                        for c in c0..c0 + cols {
                            v.push(ks.clone().map(|key| prow[key] * col(key, 2, c)).sum());
                        }
                    }
                }
            }
            Role::Linear { class } => {
                let b = p.inst as usize;
                let lin = self.layer(op).linear(class);
                let act = self.tensor_of(l, op.input.unwrap_or(TensorKind::Input), b);
                let k = lin.k;
                for r in r0..r0 + rows {
                    let a = &act[r * k..(r + 1) * k];
                    for c in c0..c0 + cols {
                        v.push(lin.mac(c, a, ks.clone()));
                    }
                }
            }
            // The PE array runs matmuls only.
            Role::Softmax | Role::Vector { .. } => {}
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
        let bias = op.linear_class().map(|c| &self.layer(op).linear(c).bias);
        let cols = data.cols as usize;
        for (i, x) in data.v.iter_mut().enumerate() {
            let b = bias.map_or(0.0, |b| b[data.col0 as usize + i % cols]);
            *x = to_f16(*x + b);
        }
    }

    /// The softmax unit on one row block (the tiles of one row tile, all its key columns).
    pub fn softmax(&self, block: &mut [Tile]) {
        let Some(first) = block.first().and_then(|t| t.data.as_deref()) else {
            return;
        };
        let (rows, row0) = (first.rows as usize, first.row0 as usize);
        let scale = 1.0 / (self.dims.dh as f32).sqrt();
        let causal = self.dims.causal;
        for r in 0..rows {
            let row = row0 + r;
            let masked = |key: usize| causal && key > row;
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

    /// The vector unit: GELU, or the residual add before LayerNorm (`vop` is the vector op).
    pub fn vector(&self, t: &mut Tile) {
        let Via::Vector { op: vop, .. } = t.via else {
            return;
        };
        let op = self.op(vop);
        let l = op.layer as usize;
        let Some(data) = t.data.as_deref_mut() else {
            return;
        };
        let (cols, r0, c0) = (data.cols as usize, data.row0 as usize, data.col0 as usize);
        let b = data.inst as usize;
        let d = self.dims.d;
        match op.role {
            Role::Vector {
                op: VectorOp::AddLayerNorm,
            } => {
                // The residual add; LayerNorm follows when the row is committed whole.
                let res = self.tensor_of(l, op.residual.unwrap_or(TensorKind::Input), b);
                for (i, x) in data.v.iter_mut().enumerate() {
                    *x += res[(r0 + i / cols) * d + c0 + i % cols];
                }
            }
            Role::Vector { op: VectorOp::Gelu } => {
                for x in data.v.iter_mut() {
                    *x = to_f16(gelu(f64::from(*x)) as f32);
                }
            }
            _ => {}
        }
    }

    /// Commits a tile that reached the activation buffer or DRAM to the memory image.
    pub fn commit(&mut self, t: &Tile) {
        let Some(data) = t.data.as_deref() else {
            return;
        };
        let op = &self.ops[t.op as usize];
        let Some(kind) = op.output.and_then(Kind::of) else {
            return;
        };
        let l = op.layer as usize;
        let Dims { h, s, dh, .. } = self.dims;
        let (b, row_base, col_base) = match kind {
            Kind::P => {
                let (b, hd) = (data.inst as usize / h, data.inst as usize % h);
                (b, hd * s, 0)
            }
            Kind::Context => {
                let (b, hd) = (data.inst as usize / h, data.inst as usize % h);
                (b, 0, hd * dh)
            }
            _ => (data.inst as usize, 0, 0),
        };
        let idx = self.dims.index(l, kind, b);
        let ln = match kind {
            Kind::AddLn1 => Some(&self.weights.layers[l].ln1),
            Kind::AddLn2 => Some(&self.weights.layers[l].ln2),
            _ => None,
        };
        let tensor = &mut self.tensors[idx];
        let (rows, cols) = (data.rows as usize, data.cols as usize);
        for r in 0..rows {
            let row = row_base + data.row0 as usize + r;
            let at = row * tensor.cols + col_base + data.col0 as usize;
            tensor.v[at..at + cols].copy_from_slice(&data.v[r * cols..(r + 1) * cols]);
            tensor.done[row] += cols;
            if let Some(norm) = ln
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

    /// Compares the memory image with the f64 reference.
    pub fn report(&self, tolerance: f64) -> FunctionalReport {
        let reference = Reference::compute(self);
        let mut tensors = Vec::new();
        let mut output = Acc::default();
        for l in 0..self.dims.layers {
            for kind in KINDS {
                let mut acc = Acc::default();
                for b in 0..self.dims.b {
                    let sim = &self.t(l, kind, b).v;
                    let exact = reference.tensor(l, kind, b);
                    if kind == Kind::P && self.dims.causal {
                        // Keys after the query are masked: tiles wholly above the diagonal
                        // are never computed (and never read), so only `key <= row` counts.
                        let s = self.dims.s;
                        for (i, (srow, erow)) in sim.chunks(s).zip(exact.chunks(s)).enumerate() {
                            let visible = i % s + 1;
                            acc.add(&srow[..visible], &erow[..visible]);
                        }
                        continue;
                    }
                    acc.add(sim, exact);
                    if l + 1 == self.dims.layers && kind == Kind::AddLn2 {
                        output.add(sim, exact);
                    }
                }
                tensors.push(acc.finish(format!("L{l}.{}", kind.name())));
            }
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
