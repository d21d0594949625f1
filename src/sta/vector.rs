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

use super::account::{Accounted, OpLogs};
use super::unit::{Service, TileServer};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, Stat, StatValue};
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
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(VectorUnit {
        server: TileServer::new(vec![args.port("in")?]),
        lanes: args.params.u64("lanes")?,
        to_out: args.opt_port("to_out"),
        to_ab: args.opt_port("to_ab"),
    }))
}

/// State of a `vector` instance.
pub struct VectorUnit {
    server: TileServer,
    lanes: u64,
    to_out: Option<LinkId>,
    to_ab: Option<LinkId>,
}

impl VectorUnit {
    fn run(&mut self, ctx: &mut Ctx<'_, Transaction>, finish: bool) {
        let lanes = self.lanes;
        let (to_out, to_ab) = (self.to_out, self.to_ab);
        let plan = |t: Tile| {
            let (op, passes) = match t.via {
                Via::Vector { op, passes } => (op, u64::from(passes)),
                _ => (t.op, 1),
            };
            let port = match t.dest {
                Dest::Dram { .. } => to_out,
                Dest::OnChip => to_ab,
            };
            Service {
                cycles: passes * u64::from(t.elems).div_ceil(lanes),
                op,
                out: Tile {
                    via: Via::Direct,
                    op,
                    ..t
                },
                port,
            }
        };
        if finish {
            self.server.finish(ctx, &plan);
        } else {
            self.server.step(ctx, &plan);
        }
    }
}

impl Actor<Transaction> for VectorUnit {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.run(ctx, false);
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, _tag: u64) {
        self.run(ctx, true);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.run(ctx, false);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.run(ctx, false);
    }
    fn pending_work(&self) -> Option<String> {
        self.server.pending()
    }
    fn stats(&self) -> Vec<Stat> {
        vec![("tiles", StatValue::U64(self.server.tiles))]
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl Accounted for VectorUnit {
    fn op_logs(&self) -> &OpLogs {
        &self.server.logs
    }
}
