//! `mem_traffic`: a memory-traffic generator that drives a `dram` (or any mem_req sink).
//!
//! Ports: `req` (mem_req out), `resp` (mem_resp in).
//!
//! Issues `requests` requests of `bytes` bytes, keeping at most `outstanding` in flight.
//! Addresses: `sequential` (`start + k*bytes`), `stride` (`start + k*stride_bytes`), or
//! `random` (uniform over `region_bytes`, aligned to `bytes`, xorshift64 seeded by `seed`),
//! all wrapped into `region_bytes`. Records each request's latency (issue to response).
//!
//! Parameters: `pattern`, `requests`, `bytes`, `outstanding`, `start_addr`, `stride_bytes`,
//! `region_bytes`, `write`, `seed`.

use std::collections::BTreeMap;

use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, Stat, StatValue};
use crate::txn::{MemReq, Transaction, TxnType};

/// The `mem_traffic` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "mem_traffic",
    summary: "memory traffic generator: sequential, strided or random requests, latency stats",
    ports: &[
        PortSpec {
            name: "req",
            dir: Dir::Out,
            txn: TxnType::MemReq,
            optional: false,
            doc: "requests",
        },
        PortSpec {
            name: "resp",
            dir: Dir::In,
            txn: TxnType::MemResp,
            optional: false,
            doc: "responses",
        },
    ],
    params: &[
        ParamSpec {
            name: "pattern",
            ty: ParamType::Choice(&["sequential", "stride", "random"]),
            default: ParamDefault::Str("sequential"),
            unit: "",
            doc: "address pattern",
        },
        ParamSpec::int(
            "requests",
            0,
            1 << 40,
            1000,
            "requests",
            "requests to issue",
        ),
        ParamSpec::int("bytes", 1, 1 << 30, 64, "bytes", "size of each request"),
        ParamSpec::int(
            "outstanding",
            1,
            1 << 20,
            16,
            "requests",
            "most requests in flight",
        ),
        ParamSpec::int("start_addr", 0, 1 << 50, 0, "bytes", "first address"),
        ParamSpec::int(
            "stride_bytes",
            0,
            1 << 40,
            64,
            "bytes",
            "address step of the `stride` pattern",
        ),
        ParamSpec::int(
            "region_bytes",
            64,
            1 << 50,
            1 << 30,
            "bytes",
            "addresses wrap into [start, start + region)",
        ),
        ParamSpec {
            name: "write",
            ty: ParamType::Bool,
            default: ParamDefault::Bool(false),
            unit: "",
            doc: "issue writes instead of reads",
        },
        ParamSpec::int("seed", 0, i64::MAX, 1, "", "seed of the `random` pattern"),
    ],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let p = args.params;
    Ok(Box::new(Traffic {
        req: args.port("req")?,
        resp: args.port("resp")?,
        pattern: match p.str("pattern")? {
            "sequential" => Pattern::Sequential,
            "stride" => Pattern::Stride,
            _ => Pattern::Random,
        },
        requests: p.u64("requests")?,
        bytes: p.u64("bytes")?,
        outstanding: p.u64("outstanding")?,
        start: p.u64("start_addr")?,
        stride: p.u64("stride_bytes")?,
        region: p.u64("region_bytes")?,
        write: p.bool("write")?,
        rng: p.u64("seed")?.max(1),
        issued: 0,
        in_flight: BTreeMap::new(),
        completed: 0,
        first_issue_ps: None,
        last_resp_ps: 0,
        latency_sum_ps: 0,
        latency_max_ps: 0,
    }))
}

enum Pattern {
    Sequential,
    Stride,
    Random,
}

/// State of a `mem_traffic` instance.
pub struct Traffic {
    req: LinkId,
    resp: LinkId,
    pattern: Pattern,
    requests: u64,
    bytes: u64,
    outstanding: u64,
    start: u64,
    stride: u64,
    region: u64,
    write: bool,
    rng: u64,
    issued: u64,
    /// id -> issue time, ps.
    in_flight: BTreeMap<u64, u64>,
    completed: u64,
    first_issue_ps: Option<u64>,
    last_resp_ps: u64,
    latency_sum_ps: u64,
    latency_max_ps: u64,
}

impl Traffic {
    fn addr(&mut self, k: u64) -> u64 {
        let offset = match self.pattern {
            Pattern::Sequential => k * self.bytes,
            Pattern::Stride => k * self.stride,
            Pattern::Random => {
                // xorshift64
                self.rng ^= self.rng << 13;
                self.rng ^= self.rng >> 7;
                self.rng ^= self.rng << 17;
                self.rng % (self.region / self.bytes).max(1) * self.bytes
            }
        };
        self.start + offset % self.region
    }

    fn issue(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        while self.issued < self.requests && (self.in_flight.len() as u64) < self.outstanding {
            if !ctx.can_send(self.req) {
                return;
            }
            let k = self.issued;
            let addr = self.addr(k);
            let req = MemReq {
                id: k,
                addr,
                bytes: self.bytes,
                write: self.write,
                prefetch: false,
            };
            if ctx
                .try_send(self.req, Transaction::MemReq(Box::new(req)))
                .is_err()
            {
                return;
            }
            let now = ctx.now().as_ps();
            self.first_issue_ps.get_or_insert(now);
            self.in_flight.insert(k, now);
            self.issued += 1;
        }
    }
}

impl Actor<Transaction> for Traffic {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.issue(ctx);
        let _ = ctx.try_recv(self.resp); // arm the response notification
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        let now = ctx.now().as_ps();
        while let Some(Transaction::MemResp(r)) = ctx.try_recv(self.resp) {
            if let Some(t0) = self.in_flight.remove(&r.id) {
                let lat = now - t0;
                self.latency_sum_ps = self.latency_sum_ps.saturating_add(lat);
                self.latency_max_ps = self.latency_max_ps.max(lat);
            }
            self.completed += 1;
            self.last_resp_ps = now;
        }
        self.issue(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.issue(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        (self.completed < self.requests).then(|| {
            format!(
                "{} of {} requests not yet answered",
                self.requests - self.completed,
                self.requests
            )
        })
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("completed", StatValue::U64(self.completed)),
            (
                "first_issue_ps",
                StatValue::U64(self.first_issue_ps.unwrap_or(0)),
            ),
            ("last_resp_ps", StatValue::U64(self.last_resp_ps)),
            ("latency_sum_ps", StatValue::U64(self.latency_sum_ps)),
            ("latency_max_ps", StatValue::U64(self.latency_max_ps)),
        ]
    }
}
