//! `vector`: the vector ops fused to a matmul (residual add, LayerNorm, GELU, ...), on
//! finished tiles.
//!
//! # Ports
//! `in` (tile, in) from the accumulator; `to_out` (tile, out, optional) to the output
//! buffer; `to_ab` (tile, out, optional) kept on chip; `mem_req` / `mem_resp` (optional)
//! the DRAM, for second operands that are not on chip.
//!
//! # Timing
//! `lanes` elements a cycle per pass over the data: a tile of `E` elements routed with
//! `passes = P` takes `P * ceil(E / lanes)` cycles (the passes of every op of the chain:
//! GELU 1, residual add + LayerNorm 3, ...; see [`crate::model::VectorOp`]). Tiles are
//! served in arrival order; row statistics accumulate across a row's tiles, so no extra
//! wait for whole rows is modelled. A tile whose second operand (a residual, a gate) lies
//! in DRAM waits for one read of that tile's bytes; up to `operand_tiles` tiles are taken
//! from `in` ahead of service, so their reads overlap the work on earlier tiles. A chain
//! that stores twice (a pre-norm layer's residual stream beside its normalisation) sends
//! each tile to both tensors: the copy first, then the tile (no extra cycles; the second
//! write costs its link and buffer time).
//!
//! # Parameters
//! `lanes`, `operand_tiles`.

use std::collections::VecDeque;

use super::account::{Accounted, OpLogs};
use super::unit::{Service, TileServer};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, Stat, StatValue};
use crate::txn::{Dest, MemReq, Tile, Transaction, TxnType, Via};

/// The `vector` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "vector",
    summary: "fused vector ops (residual add, LayerNorm, GELU, ...), `lanes` elements a cycle per pass",
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
        PortSpec {
            name: "mem_req",
            dir: Dir::Out,
            txn: TxnType::MemReq,
            optional: true,
            doc: "DRAM reads of second operands not on chip",
        },
        PortSpec {
            name: "mem_resp",
            dir: Dir::In,
            txn: TxnType::MemResp,
            optional: true,
            doc: "their data",
        },
    ],
    params: &[
        ParamSpec {
            name: "lanes",
            ty: ParamType::Int { min: 1, max: 65536 },
            default: ParamDefault::Int(32),
            unit: "elements/cycle",
            doc: "elements per cycle per pass",
        },
        ParamSpec {
            name: "operand_tiles",
            ty: ParamType::Int { min: 1, max: 1024 },
            default: ParamDefault::Int(4),
            unit: "tiles",
            doc: "tiles taken ahead of service, their DRAM operands read meanwhile",
        },
    ],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let (mem_req, mem_resp) = (args.opt_port("mem_req"), args.opt_port("mem_resp"));
    let mem = match (mem_req, mem_resp) {
        (Some(q), Some(r)) => Some((q, r)),
        (None, None) => None,
        _ => return Err("ports `mem_req` and `mem_resp` must be connected together".into()),
    };
    Ok(Box::new(VectorUnit {
        input: args.port("in")?,
        server: TileServer::new(Vec::new()),
        routing: VecRouting {
            lanes: args.params.u64("lanes")?,
            to_out: args.opt_port("to_out"),
            to_ab: args.opt_port("to_ab"),
            functional: args.functional.cloned(),
        },
        mem,
        ahead: args.params.u64("operand_tiles")? as usize,
        taken: VecDeque::new(),
        unsent: VecDeque::new(),
        next_id: 0,
        operand_reads: 0,
        operand_bytes: 0,
    }))
}

/// A `vector` instance: an input stage that reads second operands from DRAM, and the
/// serving core.
pub struct VectorUnit {
    input: LinkId,
    /// The serving core.
    pub server: TileServer,
    routing: VecRouting,
    /// `(mem_req, mem_resp)`.
    mem: Option<(LinkId, LinkId)>,
    /// Tiles taken ahead of service, at most.
    ahead: usize,
    /// Tiles taken from `in`, in order, with the id of their outstanding read.
    taken: VecDeque<(Tile, Option<u64>)>,
    /// Reads not yet accepted by the DRAM link.
    unsent: VecDeque<MemReq>,
    next_id: u64,
    operand_reads: u64,
    operand_bytes: u64,
}

impl VectorUnit {
    fn run(&mut self, ctx: &mut Ctx<'_, Transaction>, finished: bool) {
        if finished {
            self.server.end_service(ctx);
        }
        if let Some((_, resp)) = self.mem {
            while let Some(Transaction::MemResp(r)) = ctx.try_recv(resp) {
                if let Some(e) = self.taken.iter_mut().find(|e| e.1 == Some(r.id)) {
                    e.1 = None;
                }
            }
        }
        self.intake(ctx);
        let taken = &mut self.taken;
        let routing = &mut self.routing;
        let mut next = || match taken.front() {
            Some((_, None)) => taken.pop_front().map(|e| e.0),
            _ => None,
        };
        self.server
            .step_with(ctx, &mut next, &mut |t| routing.service(t));
        // A tile that left the input stage made room for the next one.
        self.intake(ctx);
    }

    /// Takes tiles from `in` while there is room ahead of service, and sends the DRAM
    /// reads of their operands.
    fn intake(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        while self.taken.len() < self.ahead {
            let Some(Transaction::Tile(t)) = ctx.try_recv(self.input) else {
                break;
            };
            let read = match (t.via, self.mem) {
                (
                    Via::Vector {
                        op,
                        operand: Some(addr),
                        ..
                    },
                    Some(_),
                ) => {
                    let id = self.next_id;
                    self.next_id += 1;
                    let bytes = u64::from(t.elems) * u64::from(t.value_bytes);
                    self.unsent.push_back(MemReq {
                        id,
                        addr,
                        bytes,
                        write: false,
                        prefetch: false,
                    });
                    self.operand_reads += 1;
                    self.operand_bytes += bytes;
                    self.server.logs.dram_bytes(op, bytes);
                    Some(id)
                }
                // No DRAM port: the tile waits forever and the deadlock report says why.
                (
                    Via::Vector {
                        operand: Some(_), ..
                    },
                    None,
                ) => Some(u64::MAX),
                _ => None,
            };
            self.taken.push_back((*t, read));
        }
        if let Some((req, _)) = self.mem {
            while let Some(r) = self.unsent.pop_front() {
                if let Err(Transaction::MemReq(r)) =
                    ctx.try_send(req, Transaction::MemReq(Box::new(r)))
                {
                    self.unsent.push_front(*r);
                    break;
                }
            }
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
        if let Some((t, Some(id))) = self.taken.front() {
            return Some(if *id == u64::MAX {
                format!(
                    "a tile of op {} needs its second operand from DRAM, but ports `mem_req`/`mem_resp` are not connected",
                    t.op
                )
            } else {
                format!(
                    "a tile of op {} waits for its second operand from DRAM",
                    t.op
                )
            });
        }
        self.server.pending().or_else(|| {
            (!self.taken.is_empty())
                .then(|| format!("{} tiles taken, not served", self.taken.len()))
        })
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("tiles", StatValue::U64(self.server.tiles)),
            ("operand_reads", StatValue::U64(self.operand_reads)),
            ("operand_bytes", StatValue::U64(self.operand_bytes)),
        ]
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

/// The vector unit's rules: `passes * ceil(E / lanes)` cycles a tile, charged to the vector
/// op named in the tile's route, then to DRAM or on chip.
pub struct VecRouting {
    lanes: u64,
    to_out: Option<LinkId>,
    to_ab: Option<LinkId>,
    /// Functional runs: the element-wise part of every op of the chain.
    functional: Option<crate::functional::Shared>,
}

impl VecRouting {
    fn service(&mut self, mut t: Tile) -> Service {
        if let Some(f) = &self.functional {
            crate::functional::lock(f).vector(&mut t);
        }
        let (op, passes, store) = match t.via {
            Via::Vector {
                op, passes, store, ..
            } => (op, u64::from(passes), store),
            _ => (t.op, 1, t.op),
        };
        let port_of = |dest: Dest| match dest {
            Dest::Dram { .. } => self.to_out,
            Dest::OnChip => self.to_ab,
        };
        let port = port_of(t.dest);
        let also = match t.via {
            Via::Vector {
                also: Some((store, dest)),
                ..
            } => Some((
                Tile {
                    via: Via::Direct,
                    op: store,
                    dest,
                    ..t.clone()
                },
                port_of(dest),
            )),
            _ => None,
        };
        Service {
            cycles: passes * u64::from(t.elems).div_ceil(self.lanes),
            op,
            out: Some(Tile {
                via: Via::Direct,
                op: store,
                ..t
            }),
            port,
            also,
        }
    }
}
