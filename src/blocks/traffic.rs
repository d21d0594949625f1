//! `mem_traffic`: a memory-traffic generator that drives a `dram` (or any mem_req sink).
//!
//! Ports: `req` (mem_req out), `resp` (mem_resp in).
//!
//! Issues `requests` requests of `bytes` bytes, keeping at most `outstanding` unanswered.
//! Addresses: `sequential` (`start + k*bytes`), `stride` (`start + k*stride_bytes`), or
//! `random` (uniform over `region_bytes`, aligned to `bytes`, from a SplitMix64 generator
//! seeded by `seed`: the same seed gives the same addresses everywhere), all wrapped into
//! `[start, start + region_bytes)`.
//!
//! Reads and writes: `mix: [R, W]` makes R of every R + W requests reads and W writes;
//! `mix_order: interleaved` puts request k's direction at position `k mod (R+W)` (reads
//! first: `[2, 1]` makes every third request a write), `random` draws it (a write with
//! probability `W/(R+W)`, from the same generator). `write: true` is `mix: [0, 1]`.
//!
//! Rate: with `interval_ps` > 0, request k is offered at `k * interval_ps` or later (a fixed
//! rate; a full memory queue delays it, later requests keep their slots); 0 offers as fast
//! as the link and `outstanding` allow.
//!
//! Statistics (`src/blocks/mem_stats.rs`, the same code as `stasim dram --trace`): reads,
//! writes, bytes, first arrival at the memory, last response, bandwidth, read latency from
//! arrival to response (mean, p50, p99, max), plus the issue-to-response `latency_sum_ps` /
//! `latency_max_ps` of every request.
//!
//! Parameters: `pattern`, `requests`, `bytes`, `outstanding`, `start_addr`, `stride_bytes`,
//! `region_bytes`, `write`, `mix`, `mix_order`, `interval_ps`, `seed`.

use super::requester::{Pacing, Request, RequestStream, Requester};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::Actor;
use crate::rng::SplitMix64;
use crate::txn::{Transaction, TxnType};

/// The `mem_traffic` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "mem_traffic",
    summary: "memory traffic generator: sequential, strided or random requests, read:write mix, fixed rate, latency and bandwidth stats",
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
            doc: "address pattern (random: SplitMix64, uniform over region_bytes)",
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
            doc: "issue writes only (the same as mix: [0, 1])",
        },
        ParamSpec {
            name: "mix",
            ty: ParamType::IntList {
                min: 0,
                max: 1 << 20,
            },
            default: ParamDefault::IntList(&[1, 0]),
            unit: "requests",
            doc: "[reads, writes]: R of every R + W requests read, W write",
        },
        ParamSpec {
            name: "mix_order",
            ty: ParamType::Choice(&["interleaved", "random"]),
            default: ParamDefault::Str("interleaved"),
            unit: "",
            doc: "which requests write: position k mod (R+W) (reads first), or drawn at random",
        },
        ParamSpec::int(
            "interval_ps",
            0,
            1 << 40,
            0,
            "ps",
            "offer request k at k * interval (a fixed rate) or later; 0: as fast as accepted",
        ),
        ParamSpec::int(
            "seed",
            0,
            i64::MAX,
            1,
            "",
            "seed of the random pattern and random mix",
        ),
    ],
    build,
    fixed_clock: None,
};

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let p = args.params;
    let mix = p.int_list("mix")?;
    let [reads, writes] = mix[..] else {
        return Err(format!(
            "`mix` needs two numbers, [reads, writes]; found {} of them",
            mix.len()
        ));
    };
    if reads + writes == 0 {
        return Err("`mix` = [0, 0] gives no request a direction; use e.g. [1, 0]".into());
    }
    let write_only = p.bool("write")?;
    if write_only && (reads, writes) != (1, 0) {
        return Err("give either `write: true` or `mix`, not both".into());
    }
    let (reads, writes) = if write_only {
        (0, 1)
    } else {
        (reads as u64, writes as u64)
    };
    let pattern = Pattern {
        kind: match p.str("pattern")? {
            "sequential" => Kind::Sequential,
            "stride" => Kind::Stride,
            _ => Kind::Random,
        },
        requests: p.u64("requests")?,
        bytes: p.u64("bytes")?,
        start: p.u64("start_addr")?,
        stride: p.u64("stride_bytes")?,
        region: p.u64("region_bytes")?,
        reads,
        writes,
        random_mix: p.str("mix_order")? == "random",
        interval_ps: p.u64("interval_ps")?,
        rng: SplitMix64::new(p.u64("seed")?),
        k: 0,
    };
    let pacing = Pacing {
        outstanding: p.u64("outstanding")?,
        interval_ps: 0,
    };
    Ok(Box::new(Requester::new(
        args.port("req")?,
        args.port("resp")?,
        pacing,
        pattern,
    )))
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Kind {
    Sequential,
    Stride,
    Random,
}

/// The request stream of a `mem_traffic` instance.
#[derive(Clone, Debug)]
pub struct Pattern {
    kind: Kind,
    requests: u64,
    bytes: u64,
    start: u64,
    stride: u64,
    region: u64,
    reads: u64,
    writes: u64,
    random_mix: bool,
    interval_ps: u64,
    rng: SplitMix64,
    k: u64,
}

impl RequestStream for Pattern {
    fn next_request(&mut self) -> Option<Request> {
        if self.k >= self.requests {
            return None;
        }
        let k = self.k;
        self.k += 1;
        let offset = match self.kind {
            Kind::Sequential => k.wrapping_mul(self.bytes),
            Kind::Stride => k.wrapping_mul(self.stride),
            Kind::Random => self.rng.below((self.region / self.bytes).max(1)) * self.bytes,
        };
        let cycle = self.reads + self.writes;
        let slot = if self.random_mix {
            self.rng.below(cycle)
        } else {
            k % cycle
        };
        Some(Request {
            addr: self.start + offset % self.region,
            bytes: self.bytes,
            write: slot >= self.reads,
            not_before_ps: k.saturating_mul(self.interval_ps),
        })
    }
}
