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

use super::account::{Accounted, OpLogs};
use super::unit::{Service, TileServer};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, Stat, StatValue};
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
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(Accumulator {
        server: TileServer::new(vec![args.port("psum")?]),
        lanes: args.params.u64("lanes")?,
        to_softmax: args.opt_port("to_softmax"),
        to_vector: args.opt_port("to_vector"),
        to_out: args.opt_port("to_out"),
        to_ab: args.opt_port("to_ab"),
    }))
}

/// State of an `accumulator` instance.
pub struct Accumulator {
    server: TileServer,
    lanes: u64,
    to_softmax: Option<LinkId>,
    to_vector: Option<LinkId>,
    to_out: Option<LinkId>,
    to_ab: Option<LinkId>,
}

impl Accumulator {
    fn run(&mut self, ctx: &mut Ctx<'_, Transaction>, finish: bool) {
        let lanes = self.lanes;
        let ports = (self.to_softmax, self.to_vector, self.to_out, self.to_ab);
        let plan = |t: Tile| {
            let port = match (t.via, t.dest) {
                (Via::Softmax { .. }, _) => ports.0,
                (Via::Vector { .. }, _) => ports.1,
                (Via::Direct, Dest::Dram { .. }) => ports.2,
                (Via::Direct, Dest::OnChip) => ports.3,
            };
            Service {
                cycles: u64::from(t.elems).div_ceil(lanes),
                op: t.op,
                out: Tile {
                    elem_bytes: t.value_bytes,
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

impl Actor<Transaction> for Accumulator {
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

impl Accounted for Accumulator {
    fn op_logs(&self) -> &OpLogs {
        &self.server.logs
    }
}
