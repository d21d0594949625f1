//! `vector`: residual add, LayerNorm and GELU on finished tiles.
//!
//! # Ports
//! `in` (tile, in) from the accumulator; `to_out` (tile, out, optional) to the output
//! buffer; `to_ab` (tile, out, optional) kept on chip.
//!
//! # Timing
//! `lanes` elements a cycle per pass over the data: a tile of `E` elements routed with
//! `passes = P` takes `P * ceil(E / lanes)` cycles (GELU: 1 pass; residual add + LayerNorm:
//! 3 passes — add, statistics, normalise). Tiles are processed as they arrive; LayerNorm's
//! statistics accumulate across a row's tiles, so no extra wait for whole rows is modelled.
//!
//! # Parameters
//! `lanes`.

use super::unit::{Routing, Service, TileUnit};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, LinkId};
use crate::txn::{Dest, Tile, Transaction, TxnType, Via};

/// The `vector` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "vector",
    summary: "residual add, LayerNorm and GELU, `lanes` elements a cycle per pass",
    ports: &[
        PortSpec {
            name: "in",
            dir: Dir::In,
            txn: TxnType::Tile,
            optional: false,
            doc: "tiles from the accumulator",
        },
        PortSpec {
            name: "to_out",
            dir: Dir::Out,
            txn: TxnType::Tile,
            optional: true,
            doc: "tiles written to DRAM",
        },
        PortSpec {
            name: "to_ab",
            dir: Dir::Out,
            txn: TxnType::Tile,
            optional: true,
            doc: "tiles kept on chip",
        },
    ],
    params: &[ParamSpec {
        name: "lanes",
        ty: ParamType::Int { min: 1, max: 65536 },
        default: ParamDefault::Int(32),
        unit: "elements/cycle",
        doc: "elements per cycle per pass",
    }],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(TileUnit::new(
        args.port("in")?,
        VecRouting {
            lanes: args.params.u64("lanes")?,
            to_out: args.opt_port("to_out"),
            to_ab: args.opt_port("to_ab"),
            functional: args.functional.cloned(),
        },
    )))
}

/// A `vector` instance.
pub type VectorUnit = TileUnit<VecRouting>;

/// The vector unit's rules: `passes * ceil(E / lanes)` cycles a tile, charged to the vector
/// op named in the tile's route, then to DRAM or on chip.
pub struct VecRouting {
    lanes: u64,
    to_out: Option<LinkId>,
    to_ab: Option<LinkId>,
    /// Functional runs: GELU, or the residual add before LayerNorm.
    functional: Option<crate::functional::Shared>,
}

impl Routing for VecRouting {
    fn service(&mut self, mut t: Tile) -> Service {
        if let Some(f) = &self.functional {
            crate::functional::lock(f).vector(&mut t);
        }
        let (op, passes) = match t.via {
            Via::Vector { op, passes } => (op, u64::from(passes)),
            _ => (t.op, 1),
        };
        let port = match t.dest {
            Dest::Dram { .. } => self.to_out,
            Dest::OnChip => self.to_ab,
        };
        Service {
            cycles: passes * u64::from(t.elems).div_ceil(self.lanes),
            op,
            out: Some(Tile {
                via: Via::Direct,
                op,
                ..t
            }),
            port,
        }
    }
}
