//! `sink`: consumes every transaction as soon as it is visible and checks the stream.
//!
//! Ports: `in` (token).
//!
//! Timing: always ready; a token is taken at the instant it becomes visible. The sink
//! counts tokens, checks that ids arrive as 0, 1, 2, ..., XORs the payloads into a checksum
//! and records the time of the last arrival.
//!
//! Parameters: none.

use crate::component::{BuildArgs, Dir, ModuleSpec, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, SimTime, Stat, StatValue};
use crate::txn::{Transaction, TxnType};

/// The `sink` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "sink",
    summary: "consumes tokens at once, checks their order and records the last arrival",
    ports: &[PortSpec {
        name: "in",
        dir: Dir::In,
        txn: TxnType::Token,
        optional: false,
        doc: "tokens to consume",
    }],
    params: &[],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(Sink {
        input: args.port("in")?,
        received: 0,
        in_order: true,
        checksum: 0,
        last_arrival: SimTime::ZERO,
    }))
}

/// State of a `sink` instance.
pub struct Sink {
    input: LinkId,
    received: u64,
    in_order: bool,
    checksum: u64,
    last_arrival: SimTime,
}

impl Sink {
    fn drain(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        while let Some(x) = ctx.try_recv(self.input) {
            let Transaction::Token(t) = x else {
                continue; // the port type admits tokens only
            };
            if t.id != self.received {
                self.in_order = false;
            }
            self.received += 1;
            self.checksum ^= t.payload;
            self.last_arrival = ctx.now();
        }
    }
}

impl Actor<Transaction> for Sink {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.drain(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.drain(ctx);
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("received", StatValue::U64(self.received)),
            ("in_order", StatValue::Bool(self.in_order)),
            ("checksum", StatValue::U64(self.checksum)),
            ("last_arrival_ps", StatValue::U64(self.last_arrival.as_ps())),
        ]
    }
}
