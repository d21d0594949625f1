//! `stage`: takes one transaction, holds it for `service_cycles`, then passes it on.
//!
//! Ports: `in` (token), `out` (token).
//!
//! Timing: `loop { x = get(in); wait service_cycles; put(out, x) }`. The stage holds `x`
//! while serving and while blocked on the put, and takes the next transaction only after
//! the put completed; gets and puts block in zero simulated time.
//!
//! Parameters: `service_cycles` (cycles of the module's clock).

use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, Cycles, LinkId, ProbeValue, Stat, StatValue};
use crate::txn::{Transaction, TxnType};

/// The `stage` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "stage",
    summary: "holds each token for a fixed service time, one at a time",
    ports: &[
        PortSpec {
            name: "in",
            dir: Dir::In,
            txn: TxnType::Token,
            optional: false,
            doc: "tokens to serve",
        },
        PortSpec {
            name: "out",
            dir: Dir::Out,
            txn: TxnType::Token,
            optional: false,
            doc: "served tokens, in arrival order",
        },
    ],
    params: &[ParamSpec {
        name: "service_cycles",
        ty: ParamType::Int {
            min: 0,
            max: crate::component::MAX_CYCLES,
        },
        default: ParamDefault::Int(1),
        unit: "cycles",
        doc: "time each token is held before it is put on `out`",
    }],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    Ok(Box::new(Stage {
        input: args.port("in")?,
        output: args.port("out")?,
        service: Cycles(args.params.u64("service_cycles")?),
        held: None,
        serving: false,
        served: 0,
    }))
}

/// State of a `stage` instance.
pub struct Stage {
    input: LinkId,
    output: LinkId,
    service: Cycles,
    /// The transaction being served or waiting to be put.
    held: Option<Transaction>,
    /// A wake-up for the end of service is pending.
    serving: bool,
    served: u64,
}

impl Stage {
    /// Takes the next transaction if idle.
    #[inline]
    fn take(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        if self.held.is_some() {
            return;
        }
        if let Some(x) = ctx.try_recv(self.input) {
            self.held = Some(x);
            self.serving = true;
            ctx.probe("busy", ProbeValue::Bool(true));
            ctx.wake_in_cycles(self.service, 0);
        }
    }

    /// Puts the served transaction; on success takes the next one.
    #[inline]
    fn forward(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let Some(x) = self.held.take() else { return };
        match ctx.try_send(self.output, x) {
            Ok(()) => {
                self.served += 1;
                ctx.probe("busy", ProbeValue::Bool(false));
                self.take(ctx);
            }
            Err(x) => self.held = Some(x), // on_writable resumes
        }
    }
}

impl Actor<Transaction> for Stage {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.take(ctx);
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, _tag: u64) {
        self.serving = false;
        self.forward(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.take(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        if !self.serving {
            self.forward(ctx);
        }
    }
    fn pending_work(&self) -> Option<String> {
        self.held.as_ref().map(|x| format!("holding {x}"))
    }
    fn stats(&self) -> Vec<Stat> {
        vec![("served", StatValue::U64(self.served))]
    }
}
