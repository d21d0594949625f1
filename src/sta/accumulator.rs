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
//! # Parameters
//! `lanes`.

use super::unit::{Routing, Service, TileUnit};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, LinkId};
use crate::txn::{Dest, Tile, Transaction, TxnType, Via};

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
    params: &[ParamSpec {
        name: "lanes",
        ty: ParamType::Int { min: 1, max: 65536 },
        default: ParamDefault::Int(32),
        unit: "elements/cycle",
        doc: "elements finished per cycle",
    }],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(TileUnit::new(
        args.port("psum")?,
        AccRouting {
            lanes: args.params.u64("lanes")?,
            to_softmax: args.opt_port("to_softmax"),
            to_vector: args.opt_port("to_vector"),
            to_out: args.opt_port("to_out"),
            to_ab: args.opt_port("to_ab"),
            functional: args.functional.cloned(),
        },
    )))
}

/// An `accumulator` instance.
pub type Accumulator = TileUnit<AccRouting>;

/// The accumulator's rules: `ceil(E / lanes)` cycles a tile, routed by its `via` and `dest`.
pub struct AccRouting {
    lanes: u64,
    to_softmax: Option<LinkId>,
    to_vector: Option<LinkId>,
    to_out: Option<LinkId>,
    to_ab: Option<LinkId>,
    /// Functional runs: adds biases and rounds to the value format.
    functional: Option<crate::functional::Shared>,
}

impl Routing for AccRouting {
    fn service(&self, mut t: Tile) -> Service {
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
            cycles: u64::from(t.elems).div_ceil(self.lanes),
            op: t.op,
            out: Tile {
                elem_bytes: t.value_bytes,
                ..t
            },
            port,
        }
    }
}
