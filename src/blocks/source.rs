//! `source`: emits `count` numbered tokens, one every `interval_cycles`.
//!
//! Ports: `out` (token).
//!
//! Timing: token `k` is put at time `t_k`; then the source waits `interval_cycles` before
//! putting token `k+1` (no wait after the last). A put into a full link blocks until a slot
//! frees and completes at that instant, so `t_{k+1} = t_k' + interval` where `t_k'` is the
//! time put `k` completed. Token `k` carries `payload = k XOR 0xA5A5A5A5A5A5A5A5`.
//!
//! Parameters: `count` (tokens), `interval_cycles` (cycles of the module's clock).

use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, Cycles, LinkId, ProbeValue, SimTime, Stat, StatValue};
use crate::txn::{Token, Transaction, TxnType};

/// XOR mask of the benchmark payloads.
pub const PAYLOAD_XOR: u64 = 0xA5A5_A5A5_A5A5_A5A5;

/// The `source` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "source",
    summary: "emits numbered tokens at a fixed interval, blocking while its output is full",
    ports: &[PortSpec {
        name: "out",
        dir: Dir::Out,
        txn: TxnType::Token,
        optional: false,
        doc: "tokens, in order of their id",
    }],
    params: &[
        ParamSpec {
            name: "count",
            ty: ParamType::Int {
                min: 0,
                max: i64::MAX,
            },
            default: ParamDefault::Int(1000),
            unit: "tokens",
            doc: "number of tokens to emit",
        },
        ParamSpec {
            name: "interval_cycles",
            ty: ParamType::Int {
                min: 0,
                max: crate::component::MAX_CYCLES,
            },
            default: ParamDefault::Int(1),
            unit: "cycles",
            doc: "wait after each completed put (none after the last)",
        },
    ],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(Source {
        out: args.port("out")?,
        count: args.params.u64("count")?,
        interval: Cycles(args.params.u64("interval_cycles")?),
        next: 0,
        last_put: SimTime::ZERO,
    }))
}

/// State of a `source` instance.
pub struct Source {
    out: LinkId,
    count: u64,
    interval: Cycles,
    next: u64,
    last_put: SimTime,
}

impl Source {
    fn emit(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        while self.next < self.count {
            let k = self.next;
            let tok = Transaction::Token(Token {
                id: k,
                payload: k ^ PAYLOAD_XOR,
            });
            if ctx.try_send(self.out, tok).is_err() {
                return; // on_writable resumes
            }
            self.last_put = ctx.now();
            self.next += 1;
            if self.next == self.count {
                ctx.probe("busy", ProbeValue::Bool(false));
                return;
            }
            if self.interval.0 > 0 {
                ctx.wake_in_cycles(self.interval, 0);
                return;
            }
        }
    }
}

impl Actor<Transaction> for Source {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        ctx.probe("busy", ProbeValue::Bool(self.count > 0));
        self.emit(ctx);
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, _tag: u64) {
        self.emit(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.emit(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        (self.next < self.count).then(|| {
            format!(
                "{} of {} tokens not yet sent",
                self.count - self.next,
                self.count
            )
        })
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("sent", StatValue::U64(self.next)),
            ("last_put_ps", StatValue::U64(self.last_put.as_ps())),
        ]
    }
}
