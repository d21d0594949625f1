//! The controller's planner: tiles every operation of a workload to the buffers and the PE
//! array, picks loop orders, places tensors in DRAM or on chip, and records dependencies.
//!
//! # Tiling
//! A pass computes one `R x C` output tile over the full reduction `K`. A column tile's
//! weights (`K x C`, compressed) must fit one weight-buffer bank and a row tile's activations
//! (`R x K`) one activation-buffer bank, else the plan fails ("buffer too small for one
//! tile"). Column tiles are grouped into weight *blocks* as large as a bank holds.
//!
//! # Loop order (fewest DRAM bytes for the buffers at hand)
//! - Input on chip, or small enough for one activation bank: *weights outer* —
//!   `for block { load W; for row tile { for column tile in block: pass } }`. The input is
//!   read from DRAM at most once and every compressed weight exactly once.
//! - Input too large for a bank: *activations outer* — the input is cut into row blocks that
//!   fit a bank; `for row block { load A; for block { load W; ... } }`: the input is read
//!   once, the weights once per row block.
//!
//! # Placement
//! QKV outputs go to DRAM (read back per head as K, V and Q operands). Attention runs head
//! by head, software-pipelined by one head (`scores(h+1)` is issued before `pv(h)`), with
//! scores routed through the softmax to the activation buffer and P·V's output (the context)
//! kept on chip. Other outputs stay on chip when the tensor fits one activation bank (and is
//! not the model's output), else go to DRAM. Consumers wait for producers by counting tiles
//! that arrived on chip (per source: accumulator, softmax, vector unit) or DRAM writes done.
//!
//! Causal attention (decoders) skips score tiles entirely above the diagonal and shortens
//! P·V's reduction to the keys a row tile can see.

use crate::sta::pe_array::Engine;
use crate::txn::{Dest, Fetch, Pass, Via};
use crate::workload::{Op, Pattern, Workload};

/// Buffer and engine sizes the planner works with.
#[derive(Clone, Debug)]
pub struct Hardware {
    /// The PE array.
    pub engine: Engine,
    /// Weight-buffer bank, bytes.
    pub wb_bank_bytes: u64,
    /// Activation-buffer bank, bytes.
    pub ab_bank_bytes: u64,
}

/// The command streams of a whole run, in order.
#[derive(Clone, Debug, Default)]
pub struct Plan {
    /// Orders to the weight buffer.
    pub wb: Vec<Fetch>,
    /// Orders to the activation buffer.
    pub ab: Vec<Fetch>,
    /// Passes of the PE array.
    pub pe: Vec<Pass>,
    /// The operations (index = op id used in every command).
    pub ops: Vec<Op>,
    /// DRAM bytes the plan reads as layer weights (compressed; K and V not included).
    pub weight_bytes: u64,
    /// DRAM bytes the plan places tensors in: addresses `0..footprint_bytes`.
    pub footprint_bytes: u64,
}

/// Where an operand comes from.
#[derive(Clone, Debug)]
enum Src {
    /// DRAM at `addr`, after `after_writes` DRAM writes.
    Dram { addr: u64, after_writes: u64 },
    /// On chip, from fill source `src`; row tile `i` needs `after[min(i, len-1)]` fills.
    OnChip { src: u8, after: Vec<u64> },
}

/// Fill sources counted by the activation buffer (its `fill_acc`, `fill_sm`, `fill_vec`).
pub const FILL_ACC: u8 = 0;
/// Fills from the softmax.
pub const FILL_SM: u8 = 1;
/// Fills from the vector unit.
pub const FILL_VEC: u8 = 2;

struct MatMul {
    op: u32,
    /// Instance of the op (batch, or `batch * heads + head`).
    inst: u32,
    rows: u64,
    k: u64,
    cols: u64,
    pattern: Pattern,
    weight: Src,
    act: Src,
    via: Via,
    dest_dram: Option<u64>,
    causal: Causal,
    /// The stationary operand is a layer's weights (counted in `Plan::weight_bytes`), not
    /// K or V.
    weights: bool,
}

/// Which causal mask applies to a matmul.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Causal {
    /// None.
    No,
    /// Scores: row `i` sees keys `0..=i` (tiles above the diagonal skipped).
    Scores,
    /// P·V: row `i` sums over keys `0..=i` (reduction cut at the tile's last row).
    Pv,
}

struct Planner<'a> {
    hw: &'a Hardware,
    vb: u64,
    plan: Plan,
    fills: [u64; 3],
    writes: u64,
    next_addr: u64,
    /// Fill counts after each row tile of the last matmul (for per-row dependencies).
    row_fills: Vec<u64>,
}

impl Planner<'_> {
    fn alloc(&mut self, bytes: u64) -> u64 {
        let a = self.next_addr;
        self.next_addr += bytes.div_ceil(4096) * 4096;
        a
    }

    /// The pattern the engine actually runs.
    fn effective(&self, p: Pattern) -> Pattern {
        if self.hw.engine.sparse {
            p
        } else {
            Pattern::DENSE
        }
    }

    fn fetch(&self, op: u32, src: &Src, row_tile: usize, bytes: u64, first: bool) -> Fetch {
        match src {
            Src::Dram { addr, after_writes } => Fetch {
                op,
                bytes: if first { bytes } else { 0 },
                addr: *addr,
                from_dram: first,
                after_fills: 0,
                fill_src: 0,
                after_writes: *after_writes,
            },
            Src::OnChip { src, after } => Fetch {
                op,
                bytes: 0,
                addr: 0,
                from_dram: false,
                after_fills: after.get(row_tile).or(after.last()).copied().unwrap_or(0),
                fill_src: *src,
                after_writes: 0,
            },
        }
    }

    fn matmul(&mut self, m: MatMul) -> Result<(), String> {
        let e = &self.hw.engine;
        let (r, c) = (e.rows, e.cols);
        let vb = self.vb;
        let vbits = vb * 8;
        let p = self.effective(m.pattern);
        let ct_n = m.cols.div_ceil(c);
        let rt_n = m.rows.div_ceil(r);
        let col_bytes = |ct: u64| p.stored_bytes(m.k, (m.cols - ct * c).min(c), vbits);
        let tile_bytes = col_bytes(0);
        if tile_bytes > self.hw.wb_bank_bytes {
            return Err(format!(
                "weight buffer too small for one tile: a {} x {c} weight tile ({p}) needs {tile_bytes} bytes, a bank holds {}",
                m.k, self.hw.wb_bank_bytes
            ));
        }
        let row_bytes = r.min(m.rows) * m.k * vb;
        if row_bytes > self.hw.ab_bank_bytes {
            return Err(format!(
                "activation buffer too small for one tile: a {} x {} activation tile needs {row_bytes} bytes, a bank holds {}",
                r.min(m.rows),
                m.k,
                self.hw.ab_bank_bytes
            ));
        }
        // Weight blocks: consecutive column tiles that fit one bank.
        // A block is stored contiguously: its size is that of all its columns at once.
        let mut blocks: Vec<(u64, u64, u64)> = Vec::new(); // (first ct, end ct, bytes)
        let block_bytes =
            |first: u64, end: u64| p.stored_bytes(m.k, (end * c).min(m.cols) - first * c, vbits);
        let mut ct = 0;
        while ct < ct_n {
            let start = ct;
            while ct < ct_n && block_bytes(start, ct + 1) <= self.hw.wb_bank_bytes {
                ct += 1;
            }
            blocks.push((start, ct, block_bytes(start, ct)));
        }
        let input_bytes = m.rows * m.k * vb;
        let act_fits = matches!(m.act, Src::OnChip { .. }) || input_bytes <= self.hw.ab_bank_bytes;
        // Row blocks: all rows when the input fits, else as many row tiles as a bank holds.
        let rb_tiles = if act_fits {
            rt_n
        } else {
            (self.hw.ab_bank_bytes / (r * m.k * vb)).max(1)
        };
        let weight_addr = match m.weight {
            Src::Dram { addr, .. } => addr,
            Src::OnChip { .. } => 0,
        };
        let after_writes_w = match m.weight {
            Src::Dram { after_writes, .. } => after_writes,
            Src::OnChip { .. } => 0,
        };
        self.row_fills.clear();
        let mut tile_index = 0u64;
        let mut rb = 0;
        while rb < rt_n {
            let rb_end = (rb + rb_tiles).min(rt_n);
            let rb_bytes = (rb * r..(rb_end * r).min(m.rows)).count() as u64 * m.k * vb;
            let act_src = match &m.act {
                Src::Dram { addr, after_writes } => Src::Dram {
                    addr: addr + rb * r * m.k * vb,
                    after_writes: *after_writes,
                },
                other => other.clone(),
            };
            let mut first_act = true;
            let mut w_offset = 0;
            for &(b_start, b_end, b_bytes) in &blocks {
                self.plan.wb.push(Fetch {
                    op: m.op,
                    bytes: b_bytes,
                    addr: weight_addr + w_offset,
                    from_dram: true,
                    after_fills: 0,
                    fill_src: 0,
                    after_writes: after_writes_w,
                });
                if m.weights {
                    self.plan.weight_bytes += b_bytes;
                }
                w_offset += b_bytes;
                let mut first_pass_of_block = true;
                for rt in rb..rb_end {
                    let row0 = rt * r;
                    let rows_used = (m.rows - row0).min(r);
                    let last_row = row0 + rows_used - 1;
                    // Causal: columns (keys) after the tile's last row are masked out.
                    let ct_last = if m.causal == Causal::Scores {
                        (last_row / c).min(b_end.saturating_sub(1))
                    } else {
                        b_end.saturating_sub(1)
                    };
                    let k_pass = if m.causal == Causal::Pv {
                        last_row + 1
                    } else {
                        m.k
                    };
                    self.plan
                        .ab
                        .push(self.fetch(m.op, &act_src, rt as usize, rb_bytes, first_act));
                    first_act = false;
                    let mut first_of_row = true;
                    for ct in b_start..=ct_last.max(b_start) {
                        if ct > ct_last {
                            break;
                        }
                        let col0 = ct * c;
                        let cols_used = (m.cols - col0).min(c);
                        let macs = if m.causal == Causal::No {
                            m.pattern.useful_macs(rows_used, k_pass, cols_used)
                        } else if m.causal == Causal::Scores {
                            // scores: row i sees keys 0..=i
                            (row0..=last_row)
                                .map(|i| (i + 1).min(col0 + cols_used).saturating_sub(col0))
                                .sum::<u64>()
                                * m.k
                        } else {
                            // P·V: row i sums over keys 0..=i
                            (row0..=last_row).map(|i| i + 1).sum::<u64>() * cols_used
                        };
                        let dest = match m.dest_dram {
                            Some(a) => Dest::Dram {
                                addr: a + tile_index * r * c * vb,
                            },
                            None => Dest::OnChip,
                        };
                        tile_index += 1;
                        self.plan.pe.push(Pass {
                            op: m.op,
                            inst: m.inst,
                            row0: row0 as u32,
                            col0: col0 as u32,
                            new_weight: first_pass_of_block,
                            new_act: first_of_row,
                            rows: rows_used as u32,
                            cols: cols_used as u32,
                            k: k_pass,
                            n: p.n,
                            m: p.m,
                            weight_bytes: p.stored_bytes(k_pass, cols_used, vbits),
                            act_bytes: rows_used * k_pass * vb,
                            macs,
                            value_bytes: vb as u8,
                            act_from_softmax: matches!(m.act, Src::OnChip { src: FILL_SM, .. }),
                            group_end: ct == ct_last,
                            via: m.via,
                            dest,
                        });
                        first_pass_of_block = false;
                        first_of_row = false;
                        match (dest, m.via) {
                            (Dest::Dram { .. }, _) => self.writes += 1,
                            (Dest::OnChip, Via::Softmax { .. }) => {
                                self.fills[FILL_SM as usize] += 1
                            }
                            (Dest::OnChip, Via::Vector { .. }) => {
                                self.fills[FILL_VEC as usize] += 1
                            }
                            (Dest::OnChip, Via::Direct) => self.fills[FILL_ACC as usize] += 1,
                        }
                    }
                    self.row_fills.push(self.fills[FILL_SM as usize]);
                }
            }
            rb = rb_end;
        }
        Ok(())
    }
}

/// Most PE passes a plan may hold (2^23, about 0.8 GB of commands with their fetches): the
/// planner builds every command before the run starts.
pub const MAX_PASSES: u128 = 1 << 23;

/// An upper bound of the PE passes [`plan`] emits: `ceil(rows / R) * ceil(cols / C)` per
/// matmul instance (causal attention skips some), computed without overflow.
pub fn passes_bound(w: &Workload, hw: &Hardware) -> u128 {
    let (r, c) = (hw.engine.rows.max(1), hw.engine.cols.max(1));
    let tiles = |rows: u64, cols: u64| {
        u128::from(rows.div_ceil(r)).saturating_mul(u128::from(cols.div_ceil(c)))
    };
    let (s, b, h) = (w.seq, u128::from(w.batch), u128::from(w.model.heads));
    let (d, f, dh) = (w.model.hidden, w.model.ffn, w.head_dim());
    let per_instance = tiles(s, d.saturating_mul(3))
        .saturating_add(tiles(s, d))
        .saturating_add(tiles(s, f))
        .saturating_add(tiles(s, d));
    let per_head = tiles(s, s).saturating_add(tiles(s, dh));
    per_instance
        .saturating_mul(b)
        .saturating_add(per_head.saturating_mul(b).saturating_mul(h))
        .saturating_mul(u128::from(w.layers))
}

/// Plans a whole workload (at most [`MAX_PASSES`] passes; `w` must be valid, see
/// [`Workload::validate`]).
pub fn plan(w: &Workload, hw: &Hardware) -> Result<Plan, String> {
    let e = &hw.engine;
    let passes = passes_bound(w, hw);
    if passes > MAX_PASSES {
        return Err(format!(
            "the run needs up to {passes} PE passes, more than the limit of {MAX_PASSES} (the planner holds every command in memory); lower the workload (seq {}, batch {}, layers {}: --seq, --batch, --layers or the `workload:` block) or use a larger PE array (`pe_array.rows` = {}, `pe_array.cols` = {})",
            w.seq, w.batch, w.layers, e.rows, e.cols
        ));
    }
    if e.sparse {
        for layer in 0..w.layers {
            let ps = w.patterns_of(layer);
            for (class, p) in [
                ("qkv", ps.qkv),
                ("proj", ps.proj),
                ("ffn1", ps.ffn1),
                ("ffn2", ps.ffn2),
            ] {
                if !p.is_dense() && !e.supported_m.contains(&u64::from(p.m)) {
                    return Err(format!(
                        "pattern {p} of `{class}` (layer {layer}) needs M = {}, but the PE array supports M in {:?} (`pe_array.supported_m`)",
                        p.m, e.supported_m
                    ));
                }
            }
        }
    }
    let ops = w.ops();
    let vb = w.value_bits / 8;
    let mut pl = Planner {
        hw,
        vb,
        plan: Plan::default(),
        fills: [0; 3],
        writes: 0,
        next_addr: 0,
        row_fills: Vec::new(),
    };
    let (s, b) = (w.seq, w.batch);
    let (d, h, f, dh) = (w.model.hidden, w.model.heads, w.model.ffn, w.head_dim());
    let fits = |bytes: u64| bytes <= hw.ab_bank_bytes;
    let input_addr = pl.alloc(b * s * d * vb);
    let mut x: Vec<Src> = (0..b)
        .map(|i| Src::Dram {
            addr: input_addr + i * s * d * vb,
            after_writes: 0,
        })
        .collect();
    let per_layer = 10;
    for layer in 0..w.layers {
        let lp = w.patterns_of(layer);
        let base = (layer * per_layer) as u32;
        let op = |name: &str| {
            base + ops[base as usize..base as usize + per_layer as usize]
                .iter()
                .position(|o| o.name == name)
                .unwrap_or(0) as u32
        };
        let last_layer = layer + 1 == w.layers;
        // QKV projection -> DRAM.
        let wq = pl.alloc(lp.qkv.stored_bytes(d, 3 * d, w.value_bits));
        let qkv_addr = pl.alloc(b * s * 3 * d * vb);
        for (i, xi) in x.iter().enumerate() {
            pl.matmul(MatMul {
                op: op("qkv"),
                inst: i as u32,
                rows: s,
                k: d,
                cols: 3 * d,
                pattern: lp.qkv,
                weight: Src::Dram {
                    addr: wq,
                    after_writes: 0,
                },
                act: xi.clone(),
                via: Via::Direct,
                dest_dram: Some(qkv_addr + i as u64 * s * 3 * d * vb),
                causal: Causal::No,
                weights: true,
            })?;
        }
        let qkv_written = pl.writes;
        // Attention, head by head, pipelined by one head.
        let heads: Vec<(u64, u64)> = (0..b)
            .flat_map(|bi| (0..h).map(move |hi| (bi, hi)))
            .collect();
        let mut p_rows: Vec<Vec<u64>> = Vec::new();
        let (op_scores, op_sm, op_pv) = (op("scores"), op("softmax"), op("pv"));
        let head_addr = |bi: u64, part: u64, hi: u64| {
            qkv_addr + bi * s * 3 * d * vb + (part * d + hi * dh) * s * vb
        };
        for i in 0..=heads.len() {
            if let Some(&(bi, hi)) = heads.get(i) {
                pl.matmul(MatMul {
                    op: op_scores,
                    inst: (bi * h + hi) as u32,
                    rows: s,
                    k: dh,
                    cols: s,
                    pattern: Pattern::DENSE,
                    weight: Src::Dram {
                        addr: head_addr(bi, 1, hi),
                        after_writes: qkv_written,
                    },
                    act: Src::Dram {
                        addr: head_addr(bi, 0, hi),
                        after_writes: qkv_written,
                    },
                    via: Via::Softmax { op: op_sm },
                    dest_dram: None,
                    causal: if w.model.causal {
                        Causal::Scores
                    } else {
                        Causal::No
                    },
                    weights: false,
                })?;
                p_rows.push(pl.row_fills.clone());
            }
            if i >= 1 {
                let (bi, hi) = heads[i - 1];
                pl.matmul(MatMul {
                    op: op_pv,
                    inst: (bi * h + hi) as u32,
                    rows: s,
                    k: s,
                    cols: dh,
                    pattern: Pattern::DENSE,
                    weight: Src::Dram {
                        addr: head_addr(bi, 2, hi),
                        after_writes: qkv_written,
                    },
                    act: Src::OnChip {
                        src: FILL_SM,
                        after: p_rows[i - 1].clone(),
                    },
                    via: Via::Direct,
                    dest_dram: None,
                    causal: if w.model.causal {
                        Causal::Pv
                    } else {
                        Causal::No
                    },
                    weights: false,
                })?;
            }
        }
        let context = Src::OnChip {
            src: FILL_ACC,
            after: vec![pl.fills[FILL_ACC as usize]],
        };
        // Output projection + residual + LayerNorm; FFN up + GELU; FFN down + residual + LN.
        let stages: [(&str, &str, u64, u64, Pattern, u32, bool); 3] = [
            ("proj", "add_ln1", d, d, lp.proj, 3, false),
            ("ffn1", "gelu", d, f, lp.ffn1, 1, false),
            ("ffn2", "add_ln2", f, d, lp.ffn2, 3, last_layer),
        ];
        let mut input: Vec<Src> = vec![context; b as usize];
        for (name, vname, k, cols, pattern, passes, to_dram) in stages {
            let waddr = pl.alloc(pattern.stored_bytes(k, cols, w.value_bits));
            let out_bytes = b * s * cols * vb;
            let on_chip = !to_dram && fits(out_bytes);
            let out_addr = pl.alloc(out_bytes);
            for (i, src) in input.iter().enumerate() {
                pl.matmul(MatMul {
                    op: op(name),
                    inst: i as u32,
                    rows: s,
                    k,
                    cols,
                    pattern,
                    weight: Src::Dram {
                        addr: waddr,
                        after_writes: 0,
                    },
                    act: src.clone(),
                    via: Via::Vector {
                        op: op(vname),
                        passes,
                    },
                    dest_dram: (!on_chip).then_some(out_addr + i as u64 * s * cols * vb),
                    causal: Causal::No,
                    weights: true,
                })?;
            }
            input = (0..b)
                .map(|i| {
                    if on_chip {
                        Src::OnChip {
                            src: FILL_VEC,
                            after: vec![pl.fills[FILL_VEC as usize]],
                        }
                    } else {
                        Src::Dram {
                            addr: out_addr + i * s * cols * vb,
                            after_writes: pl.writes,
                        }
                    }
                })
                .collect();
        }
        x = input;
    }
    pl.plan.ops = ops;
    pl.plan.footprint_bytes = pl.next_addr;
    Ok(pl.plan)
}
