//! The common core of units that serve tiles one at a time (accumulator, vector unit):
//! take the oldest tile from the inputs, work on it for a number of cycles, then hand it to
//! an output port; while the output link is full the unit holds the tile and takes no more.

use super::account::{OpLogs, Stall, Waiting};
use crate::kernel::{Ctx, Cycles, LinkId, ProbeValue};
use crate::txn::{Tile, Transaction};

/// What a unit does with one tile.
pub struct Service {
    /// Cycles of work.
    pub cycles: u64,
    /// Op the work is charged to.
    pub op: u32,
    /// The tile as it leaves; `None` when the unit keeps what it served (the accumulator
    /// holding a partial sum until the tile's last K chunk).
    pub out: Option<Tile>,
    /// Output port; `None` when the route's port is not connected (the unit then holds the
    /// tile, and the run ends in a deadlock that names the missing port).
    pub port: Option<LinkId>,
    /// A copy of the tile for a second tensor (a fused chain that stores twice) and its
    /// port, handed downstream before `out`.
    pub also: Option<(Tile, Option<LinkId>)>,
}

/// Serves tiles one at a time.
#[derive(Default)]
pub struct TileServer {
    inputs: Vec<LinkId>,
    /// Tile in service, finished at the pending wake-up.
    busy: Option<Service>,
    /// Tile finished but not yet accepted downstream.
    blocked: Option<(Service, Waiting)>,
    /// Per-op accounting.
    pub logs: OpLogs,
    /// Tiles served.
    pub tiles: u64,
}

impl TileServer {
    /// A server reading `inputs` in order of preference.
    pub fn new(inputs: Vec<LinkId>) -> Self {
        TileServer {
            inputs,
            ..TileServer::default()
        }
    }

    /// Makes progress: delivers a finished tile, then starts the next one. `plan` decides
    /// the service of a tile.
    pub fn step(&mut self, ctx: &mut Ctx<'_, Transaction>, plan: &mut impl FnMut(Tile) -> Service) {
        if !self.deliver(ctx) || self.busy.is_some() {
            return;
        }
        let inputs = std::mem::take(&mut self.inputs);
        let next = inputs.iter().find_map(|&l| match ctx.try_recv(l) {
            Some(Transaction::Tile(t)) => Some(*t),
            _ => None,
        });
        self.inputs = inputs;
        self.serve(ctx, next, plan);
    }

    /// Starts serving `next` (when idle and a tile is given; the caller keeps it until
    /// [`Self::idle`]); makes progress on a finished tile first. Units with their own
    /// input stage (the vector unit's operand reads) call this instead of [`Self::step`].
    pub fn step_with(
        &mut self,
        ctx: &mut Ctx<'_, Transaction>,
        next: &mut dyn FnMut() -> Option<Tile>,
        plan: &mut impl FnMut(Tile) -> Service,
    ) {
        if !self.deliver(ctx) || self.busy.is_some() {
            return;
        }
        let t = next();
        self.serve(ctx, t, plan);
    }

    /// Whether a new tile would start now.
    pub fn idle(&self) -> bool {
        self.busy.is_none() && self.blocked.is_none()
    }

    fn serve(
        &mut self,
        ctx: &mut Ctx<'_, Transaction>,
        next: Option<Tile>,
        plan: &mut impl FnMut(Tile) -> Service,
    ) {
        let Some(t) = next else {
            ctx.probe("busy", ProbeValue::Bool(false));
            return;
        };
        let now = ctx.now().as_ps();
        let s = plan(t);
        let end = ctx.now() + ctx.clock().cycles(Cycles(s.cycles));
        self.logs.work(s.op, now, end.as_ps(), 0);
        self.tiles += 1;
        ctx.probe("op", ProbeValue::Int(i64::from(s.op)));
        self.busy = Some(s);
        ctx.probe("busy", ProbeValue::Bool(true));
        ctx.wake_at(end, 0);
    }

    /// Hands a finished tile downstream; false while the output link is full (or the
    /// route's port is missing), so no new tile may start.
    fn deliver(&mut self, ctx: &mut Ctx<'_, Transaction>) -> bool {
        let now = ctx.now().as_ps();
        if let Some((mut s, w)) = self.blocked.take() {
            if let Some((copy, port)) = s.also.take() {
                let sent = match port {
                    Some(p) => ctx.try_send(p, Transaction::Tile(Box::new(copy))),
                    None => Err(Transaction::Tile(Box::new(copy))),
                };
                if let Err(Transaction::Tile(copy)) = sent {
                    s.also = Some((*copy, port));
                    self.blocked = Some((s, w));
                    return false;
                }
            }
            if let Some(out) = s.out.take() {
                let Some(port) = s.port else {
                    self.blocked = Some((
                        Service {
                            out: Some(out),
                            ..s
                        },
                        w,
                    ));
                    return false;
                };
                if let Err(t) = ctx.try_send(port, Transaction::Tile(Box::new(out))) {
                    let Transaction::Tile(out) = t else {
                        return false;
                    };
                    self.blocked = Some((
                        Service {
                            out: Some(*out),
                            ..s
                        },
                        w,
                    ));
                    return false;
                }
            }
            w.close(&mut self.logs, now);
        }
        true
    }

    /// The service ended (call from `on_wake`).
    pub fn finish(
        &mut self,
        ctx: &mut Ctx<'_, Transaction>,
        plan: &mut impl FnMut(Tile) -> Service,
    ) {
        self.end_service(ctx);
        self.step(ctx, plan);
    }

    /// The service ended: the tile waits to be handed downstream.
    pub fn end_service(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        if let Some(s) = self.busy.take() {
            let w = Waiting {
                op: s.op,
                why: Stall::Downstream,
                since_ps: ctx.now().as_ps(),
            };
            self.blocked = Some((s, w));
        }
    }

    /// Describes unfinished work for deadlock reports.
    pub fn pending(&self) -> Option<String> {
        match (&self.busy, &self.blocked) {
            (Some(s), _) => Some(format!("serving a tile of op {}", s.op)),
            (_, Some((s, _))) if s.port.is_none() => Some(format!(
                "holding a tile of op {}: the output port for its route ({}) is not connected",
                s.op,
                s.out
                    .as_ref()
                    .map_or_else(String::new, |o| format!("{:?} to {:?}", o.via, o.dest))
            )),
            (_, Some((s, _))) => Some(format!("holding a finished tile of op {}", s.op)),
            _ => None,
        }
    }
}

/// How a tile unit treats each tile: its service time, the op it is charged to, and where
/// the tile goes next.
pub trait Routing: Send + 'static {
    /// The service of tile `t`.
    fn service(&mut self, t: Tile) -> Service;

    /// Statistics of the unit's own state, beside the tiles served.
    fn stats(&self) -> Vec<crate::kernel::Stat> {
        Vec::new()
    }

    /// Work the unit still holds at the end of a run (for deadlock reports).
    fn pending(&self) -> Option<String> {
        None
    }
}

/// A module that serves tiles one at a time with a [`TileServer`], as its [`Routing`] says
/// (the accumulator and the vector unit).
pub struct TileUnit<R> {
    /// The serving core.
    pub server: TileServer,
    /// The module's own rules.
    pub routing: R,
}

impl<R: Routing> TileUnit<R> {
    /// A unit reading `input`.
    pub fn new(input: LinkId, routing: R) -> Self {
        TileUnit {
            server: TileServer::new(vec![input]),
            routing,
        }
    }

    fn run(&mut self, ctx: &mut Ctx<'_, Transaction>, finish: bool) {
        let routing = &mut self.routing;
        let mut plan = |t: Tile| routing.service(t);
        if finish {
            self.server.finish(ctx, &mut plan);
        } else {
            self.server.step(ctx, &mut plan);
        }
    }
}

impl<R: Routing> crate::kernel::Actor<Transaction> for TileUnit<R> {
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
        self.server.pending().or_else(|| self.routing.pending())
    }
    fn stats(&self) -> Vec<crate::kernel::Stat> {
        let mut s = vec![("tiles", crate::kernel::StatValue::U64(self.server.tiles))];
        s.extend(self.routing.stats());
        s
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
}

impl<R: Routing> super::account::Accounted for TileUnit<R> {
    fn op_logs(&self) -> &OpLogs {
        &self.server.logs
    }
}
