//! `accumulator`: finishes the PE array's output tiles — adds partial sums, the bias, and
//! the `1/sqrt(dh)` scale of attention scores — and routes each finished tile.
//!
//! # Ports
//! `psum` (tile, in) from the PE array; out (tile, each optional): `to_softmax` (attention
//! scores), `to_vector` (tiles needing GELU or residual + LayerNorm), `to_out` (to DRAM
//! through the output buffer), `to_ab` (kept on chip as the next op's input).
//!
//! # Timing
//! `lanes` elements a cycle: a tile of `E` elements takes `ceil(E / lanes)` cycles (16 x 16
//! with 32 lanes: 8 cycles, the shortest dense pass of the reference design). Tiles are
//! served in order; a full output link holds the tile and back-pressures the PE array.
//!
//! # K chunks
//! When the planner splits the reduction into chunks, each chunk's pass sends a partial-sum
//! tile. The first chunk's tile is stored (32-bit partial sums), every later one is added to
//! it (the same `ceil(E / lanes)` cycles: read, add, write back), and only the tile of the
//! last chunk is finished (bias, scale, rounding) and routed on. The partial tiles held at
//! once never exceed `psum_bytes` (the planner sizes its output blocks to it; the most held
//! is reported as `max_psum_bytes`).
//!
//! # Parameters
//! `lanes`, `psum_bytes`.

use super::unit::{Routing, Service, TileUnit};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, LinkId};
use crate::txn::{Dest, Tile, TileValues, Transaction, TxnType, Via};

/// The `accumulator` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "accumulator",
    summary: "adds partial sums, bias and scale; routes finished tiles",
    ports: &[
        PortSpec {
            name: "psum",
            dir: Dir::In,
            txn: TxnType::Tile,
            optional: false,
            doc: "partial-sum tiles from the PE array",
        },
        PortSpec::new(
            "to_softmax",
            Dir::Out,
            TxnType::Tile,
            true,
            "attention scores",
        ),
        PortSpec::new(
            "to_vector",
            Dir::Out,
            TxnType::Tile,
            true,
            "tiles for GELU or residual + LayerNorm",
        ),
        PortSpec::new(
            "to_out",
            Dir::Out,
            TxnType::Tile,
            true,
            "tiles written to DRAM",
        ),
        PortSpec::new("to_ab", Dir::Out, TxnType::Tile, true, "tiles kept on chip"),
    ],
    params: &[
        ParamSpec {
            name: "lanes",
            ty: ParamType::Int { min: 1, max: 65536 },
            default: ParamDefault::Int(32),
            unit: "elements/cycle",
            doc: "elements finished per cycle",
        },
        ParamSpec {
            name: "psum_bytes",
            ty: ParamType::Int {
                min: 4,
                max: 1 << 30,
            },
            default: ParamDefault::Int(DEFAULT_PSUM_BYTES as i64),
            unit: "bytes",
            doc: "partial-sum storage for tiles split into K chunks (32-bit sums)",
        },
    ],
    build,
    fixed_clock: None,
};

/// Default partial-sum storage: 64 KiB, 64 tiles of 16 x 16 32-bit sums (a quarter of one
/// activation bank of the reference design).
pub const DEFAULT_PSUM_BYTES: u64 = 64 * 1024;

/// Bytes of one partial sum.
pub const PSUM_BYTES_PER_VALUE: u64 = 4;

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(TileUnit::new(
        args.port("psum")?,
        AccRouting {
            partial: std::collections::HashMap::new(),
            held_bytes: 0,
            max_held_bytes: 0,
            lanes: args.params.u64("lanes")?,
            to_softmax: args.opt_port("to_softmax"),
            to_vector: args.opt_port("to_vector"),
            to_out: args.opt_port("to_out"),
            to_ab: args.opt_port("to_ab"),
            functional: args.functional.cloned(),
        },
    )))
}

/// An output tile: (op, (instance, first row, first column)).
type TileKey = (u32, (u32, u32, u32));

/// An `accumulator` instance.
pub type Accumulator = TileUnit<AccRouting>;

/// The accumulator's rules: `ceil(E / lanes)` cycles a tile, routed by its `via` and `dest`.
pub struct AccRouting {
    /// Partial sums of tiles whose last K chunk has not arrived, by (op, instance, row,
    /// column); values only in functional runs.
    partial: std::collections::HashMap<TileKey, Option<Box<TileValues>>>,
    held_bytes: u64,
    max_held_bytes: u64,
    lanes: u64,
    to_softmax: Option<LinkId>,
    to_vector: Option<LinkId>,
    to_out: Option<LinkId>,
    to_ab: Option<LinkId>,
    /// Functional runs: adds biases and rounds to the value format.
    functional: Option<crate::functional::Shared>,
}

impl AccRouting {
    /// Most partial-sum bytes held at once.
    pub fn max_psum_bytes(&self) -> u64 {
        self.max_held_bytes
    }

    /// Adds the partial sums held for `t`'s output tile into `t` (and forgets them).
    fn take_partial(&mut self, t: &mut Tile) {
        if let Some(held) = self.partial.remove(&(t.op, t.at)) {
            self.held_bytes -= u64::from(t.elems) * PSUM_BYTES_PER_VALUE;
            if let (Some(held), Some(data)) = (held, t.data.as_deref_mut()) {
                for (x, h) in data.v.iter_mut().zip(&held.v) {
                    *x += h;
                }
            }
        }
    }
}

impl Routing for AccRouting {
    fn stats(&self) -> Vec<crate::kernel::Stat> {
        vec![(
            "max_psum_bytes",
            crate::kernel::StatValue::U64(self.max_held_bytes),
        )]
    }

    fn pending(&self) -> Option<String> {
        (!self.partial.is_empty()).then(|| {
            format!(
                "{} partial-sum tiles waiting for their last K chunk",
                self.partial.len()
            )
        })
    }

    fn service(&mut self, mut t: Tile) -> Service {
        let cycles = u64::from(t.elems).div_ceil(self.lanes);
        if !t.first_chunk {
            self.take_partial(&mut t);
        }
        if !t.last_chunk {
            // A partial sum: keep it until the tile's next chunk.
            self.held_bytes += u64::from(t.elems) * PSUM_BYTES_PER_VALUE;
            self.max_held_bytes = self.max_held_bytes.max(self.held_bytes);
            self.partial.insert((t.op, t.at), t.data.take());
            return Service {
                cycles,
                op: t.op,
                out: None,
                port: None,
                also: None,
            };
        }
        if let Some(f) = &self.functional {
            crate::functional::lock(f).accumulate(&mut t);
        }
        let port = match (t.via, t.dest) {
            (Via::Softmax { .. }, _) => self.to_softmax,
            (Via::Vector { .. }, _) => self.to_vector,
            (Via::Direct, Dest::Dram { .. }) => self.to_out,
            (Via::Direct, Dest::OnChip) => self.to_ab,
        };
        Service {
            cycles,
            op: t.op,
            out: Some(Tile {
                elem_bytes: t.value_bytes,
                ..t
            }),
            port,
            also: None,
        }
    }
}
