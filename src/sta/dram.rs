//! `dram`: DDR4 main memory — channels, ranks, bank groups, banks, rows; open-page policy;
//! an FR-FCFS request queue; all-bank refresh; JEDEC timing constraints.
//!
//! # Ports
//! `in0`..`in5` (mem_req, optional) and `out0`..`out5` (mem_resp, optional): a request that
//! arrives on `inK` is answered on `outK`, once, when all of its bursts are done (reads: last
//! data beat delivered; writes: last data beat written).
//!
//! # Address mapping (most to least significant)
//! `row : rank : bank : column : bank group : channel : burst offset`. The low bits interleave
//! channels, then bank groups, so a sequential stream spreads over channels and bank groups
//! (column commands `tCCD_S` apart) and stays in one open row per bank for
//! `row_bytes / burst_bytes` bursts. All counts must be powers of two.
//!
//! # Scheduling (per channel)
//! A request is split into bursts of `BL * bus_bytes` bytes (64 B on x64), which enter the
//! channel's queue of `queue_depth` entries as room allows, the ports taken round robin;
//! a request marked `prefetch` enters only when no demand burst can and only into the first
//! half of the queue, so prefetching never takes room or turns from a demand request. Whenever fewer than `lookahead`
//! bursts are in flight, the scheduler picks one: reads first, with writes held back and
//! drained in batches (from 16 waiting writes down to 4, or whenever no demand read
//! waits), and within that direction demand bursts before prefetch ones, each by
//! **FR-FCFS**: the oldest burst whose row is open (a row hit) first, else the oldest burst. Its commands are then placed at the earliest
//! times that satisfy every constraint, never before the decision:
//! - row conflict: `PRE >= max(ACT + tRAS, RD + tRTP, WR data end + tWR)`, `ACT >= PRE + tRP`;
//! - every ACT: `>= ACT(same bank) + tRC`, `>= ACT(same rank) + tRRD_S/L` (other/same bank
//!   group), and at most four ACTs per rank in any `tFAW`;
//! - column command: `>= ACT + tRCD`; `>= previous column + tCCD_S/L`; a read `>= write
//!   data end + tWTR_S/L`; data starts `tCL` (read) or `tCWL` (write) after the command, and
//!   the data bus is shared by reads and writes, with a 2-tCK bubble when direction changes;
//! - burst: data occupies the bus `BL/2` tCK. Unloaded read from a closed bank:
//!   `tRCD + tCL + BL/2` = 36 tCK = 30.0 ns on DDR4-2400.
//! - refresh: every `tREFI` each rank precharges all banks and is blocked for `tRFC`.
//!
//! Activate-ahead: after issuing, the scheduler opens the rows of waiting bursts in banks
//! with no pending row hit (PRE + ACT as early as legal), as a controller with a command
//! queue does while earlier bursts hold the data bus. ACTs and column commands are each
//! placed in order, so constraints between them are exact; the command bus (one command per
//! tCK) is not modelled.
//!
//! # Parameters
//! `preset` (ddr4-2400 | ddr4-3200), `channels`, `ranks`, `bank_groups`, `banks_per_group`,
//! `rows`, `row_bytes` (page per rank), `bus_bytes` (8 for x64), `queue_depth`, `lookahead`,
//! `policy` (fr-fcfs | fcfs), `refresh`.

use std::collections::VecDeque;

use super::ddr4::{self, Ddr4Timing};
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, ProbeValue, SimTime, Stat, StatValue};
use crate::txn::{MemReq, MemResp, Transaction, TxnType};

/// Requester ports.
pub const PORTS: usize = 6;
/// Wake-up tags with this bit deliver a bank-state change to the trace.
const NOTE_TAG: u64 = 1 << 63;
/// Waiting writes that start a write drain.
const WRITE_HIGH: usize = 16;
/// Waiting writes at which a drain stops (while reads wait).
const WRITE_LOW: usize = 4;

/// The `dram` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "dram",
    summary: "DDR4 main memory: banks, rows, open page, FR-FCFS queue, refresh, JEDEC timings",
    ports: &[
        PortSpec::new(
            "in0",
            Dir::In,
            TxnType::MemReq,
            true,
            "requests from requester 0",
        ),
        PortSpec::new(
            "out0",
            Dir::Out,
            TxnType::MemResp,
            true,
            "responses to requester 0",
        ),
        PortSpec::new(
            "in1",
            Dir::In,
            TxnType::MemReq,
            true,
            "requests from requester 1",
        ),
        PortSpec::new(
            "out1",
            Dir::Out,
            TxnType::MemResp,
            true,
            "responses to requester 1",
        ),
        PortSpec::new(
            "in2",
            Dir::In,
            TxnType::MemReq,
            true,
            "requests from requester 2",
        ),
        PortSpec::new(
            "out2",
            Dir::Out,
            TxnType::MemResp,
            true,
            "responses to requester 2",
        ),
        PortSpec::new(
            "in3",
            Dir::In,
            TxnType::MemReq,
            true,
            "requests from requester 3",
        ),
        PortSpec::new(
            "out3",
            Dir::Out,
            TxnType::MemResp,
            true,
            "responses to requester 3",
        ),
        PortSpec::new(
            "in4",
            Dir::In,
            TxnType::MemReq,
            true,
            "requests from requester 4",
        ),
        PortSpec::new(
            "out4",
            Dir::Out,
            TxnType::MemResp,
            true,
            "responses to requester 4",
        ),
        PortSpec::new(
            "in5",
            Dir::In,
            TxnType::MemReq,
            true,
            "requests from requester 5",
        ),
        PortSpec::new(
            "out5",
            Dir::Out,
            TxnType::MemResp,
            true,
            "responses to requester 5",
        ),
    ],
    params: &[
        ParamSpec {
            name: "preset",
            ty: ParamType::Choice(ddr4::PRESET_NAMES),
            default: ParamDefault::Str("ddr4-2400"),
            unit: "",
            doc: "DDR4 speed bin (timings in src/sta/ddr4.rs)",
        },
        ParamSpec::int(
            "channels",
            1,
            64,
            1,
            "channels",
            "independent channels (power of two)",
        ),
        ParamSpec::int(
            "ranks",
            1,
            8,
            2,
            "ranks",
            "ranks per channel (power of two)",
        ),
        ParamSpec::int(
            "bank_groups",
            1,
            4,
            4,
            "groups",
            "bank groups per rank (power of two)",
        ),
        ParamSpec::int(
            "banks_per_group",
            1,
            8,
            4,
            "banks",
            "banks per bank group (power of two)",
        ),
        ParamSpec::int(
            "rows",
            1,
            1 << 20,
            65_536,
            "rows",
            "rows per bank (power of two)",
        ),
        ParamSpec::int(
            "row_bytes",
            512,
            1 << 16,
            8_192,
            "bytes",
            "page size per rank: 8 x8 devices x 1 KiB",
        ),
        ParamSpec::int(
            "bus_bytes",
            1,
            64,
            8,
            "bytes",
            "data bus width per channel (8 = x64)",
        ),
        ParamSpec::int(
            "queue_depth",
            1,
            1024,
            32,
            "bursts",
            "request queue per channel (waiting + in flight)",
        ),
        ParamSpec::int(
            "lookahead",
            1,
            1024,
            8,
            "bursts",
            "bursts in flight per channel",
        ),
        ParamSpec {
            name: "policy",
            ty: ParamType::Choice(&["fr-fcfs", "fcfs"]),
            default: ParamDefault::Str("fr-fcfs"),
            unit: "",
            doc: "scheduling: row hits first then oldest (fr-fcfs), or oldest only (fcfs)",
        },
        ParamSpec {
            name: "refresh",
            ty: ParamType::Bool,
            default: ParamDefault::Bool(true),
            unit: "",
            doc: "model all-bank refresh (tRFC every tREFI); false for an ablation",
        },
    ],
    build,
    fixed_clock: Some(command_clock),
};

/// The DRAM's clock: the command clock of its preset (tCK, e.g. 833 ps = 1200 MHz for
/// DDR4-2400). Its links' latencies count these cycles.
fn command_clock(params: &crate::component::Params) -> Result<crate::kernel::Clock, String> {
    let preset = params.str("preset")?;
    let timing = ddr4::preset(preset).ok_or_else(|| format!("unknown DRAM preset `{preset}`"))?;
    crate::kernel::Clock::from_period_ps(timing.tck_ps)
        .ok_or_else(|| format!("preset `{preset}` has no clock period"))
}

fn pow2(args: &BuildArgs<'_>, name: &str) -> Result<u64, String> {
    let v = args.params.u64(name)?;
    if v.is_power_of_two() {
        Ok(v)
    } else {
        Err(format!(
            "`{name}` = {v} must be a power of two (the address mapping slices bits)"
        ))
    }
}

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let preset = args.params.str("preset")?;
    let timing = ddr4::preset(preset).ok_or_else(|| format!("unknown DRAM preset `{preset}`"))?;
    let geo = Geometry {
        channels: pow2(args, "channels")?,
        ranks: pow2(args, "ranks")?,
        bank_groups: pow2(args, "bank_groups")?,
        banks_per_group: pow2(args, "banks_per_group")?,
        rows: pow2(args, "rows")?,
        row_bytes: pow2(args, "row_bytes")?,
        burst_bytes: args.params.u64("bus_bytes")? * timing.burst_length,
    };
    if !geo.burst_bytes.is_power_of_two() || geo.row_bytes < geo.burst_bytes {
        return Err("`bus_bytes` x 8 must be a power of two no larger than `row_bytes`".into());
    }
    let mut ports = Vec::new();
    for k in 0..PORTS {
        let i = args.opt_port(&format!("in{k}"));
        let o = args.opt_port(&format!("out{k}"));
        if i.is_some() != o.is_some() {
            return Err(format!(
                "ports `in{k}` and `out{k}` must be connected together"
            ));
        }
        if let (Some(i), Some(o)) = (i, o) {
            ports.push(PortState {
                input: i,
                output: o,
                split: None,
                responses: VecDeque::new(),
            });
        }
    }
    let queue_depth = args.params.u64("queue_depth")? as usize;
    let lookahead = (args.params.u64("lookahead")? as usize).min(queue_depth);
    let mut dram = Dram::new(timing, geo, ports, queue_depth, lookahead);
    dram.fr_fcfs = args.params.str("policy")? == "fr-fcfs";
    if !args.params.bool("refresh")? {
        for ch in &mut dram.channels {
            for r in &mut ch.ranks {
                r.next_refresh_ps = u64::MAX;
            }
        }
    }
    Ok(Box::new(dram))
}

/// Sizes of the memory system.
#[derive(Clone, Debug)]
pub struct Geometry {
    /// Channels.
    pub channels: u64,
    /// Ranks per channel.
    pub ranks: u64,
    /// Bank groups per rank.
    pub bank_groups: u64,
    /// Banks per bank group.
    pub banks_per_group: u64,
    /// Rows per bank.
    pub rows: u64,
    /// Page size per rank, bytes.
    pub row_bytes: u64,
    /// Bytes per burst.
    pub burst_bytes: u64,
}

/// Where one burst goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Channel.
    pub channel: u32,
    /// Rank.
    pub rank: u32,
    /// Bank group.
    pub bank_group: u32,
    /// Bank within its group.
    pub bank: u32,
    /// Row.
    pub row: u32,
}

impl Geometry {
    /// Decodes a byte address with the mapping `row:rank:bank:column:bankgroup:channel:offset`.
    pub fn decode(&self, addr: u64) -> Place {
        let mut a = addr / self.burst_bytes;
        let channel = a % self.channels;
        a /= self.channels;
        let bank_group = a % self.bank_groups;
        a /= self.bank_groups;
        a /= self.row_bytes / self.burst_bytes; // column
        let bank = a % self.banks_per_group;
        a /= self.banks_per_group;
        let rank = a % self.ranks;
        a /= self.ranks;
        Place {
            channel: channel as u32,
            rank: rank as u32,
            bank_group: bank_group as u32,
            bank: bank as u32,
            row: (a % self.rows) as u32,
        }
    }

    /// Bytes between two addresses that map to the same bank and the next row.
    pub fn row_stride_bytes(&self) -> u64 {
        self.burst_bytes
            * self.channels
            * self.bank_groups
            * (self.row_bytes / self.burst_bytes)
            * self.banks_per_group
            * self.ranks
    }
}

#[derive(Clone, Debug, Default)]
struct Bank {
    open_row: Option<u32>,
    /// Time of the last ACT, ps.
    act_ps: u64,
    /// Earliest PRE, ps.
    next_pre_ps: u64,
    /// Earliest ACT, ps.
    next_act_ps: u64,
}

#[derive(Clone, Debug, Default)]
struct Rank {
    /// The last four ACT times (for tFAW), oldest first.
    recent_acts: VecDeque<u64>,
    last_act: Option<(u64, u32)>,
    next_refresh_ps: u64,
    blocked_until_ps: u64,
}

#[derive(Copy, Clone, Debug)]
struct Burst {
    req: u32,
    place: Place,
    write: bool,
    /// Of a prefetch request (served after demand bursts).
    prefetch: bool,
    /// Its row was opened ahead of time by `prepare`.
    prepared: bool,
}

#[derive(Clone, Debug)]
struct Column {
    at_ps: u64,
    rank: u32,
    bank_group: u32,
    write: bool,
}

#[derive(Clone, Debug, Default)]
struct ChannelStats {
    bytes_read: u64,
    bytes_written: u64,
    row_hits: u64,
    row_misses: u64,
    row_conflicts: u64,
    activates: u64,
    refreshes: u64,
    busy_ps: u64,
    /// Bytes of bursts whose last beat has passed (for traces).
    bytes_completed: u64,
}

struct Channel {
    waiting: VecDeque<Burst>,
    in_flight: usize,
    banks: Vec<Bank>,
    ranks: Vec<Rank>,
    last_col: Option<Column>,
    /// End of the last write burst: (time, rank, bank group).
    last_write_end: Option<(u64, u32, u32)>,
    bus_free_ps: u64,
    /// Draining writes (see `pick`).
    write_mode: bool,
    stats: ChannelStats,
}

struct PortState {
    input: LinkId,
    output: LinkId,
    /// Request being split: (slot, next byte address, end address).
    split: Option<(u32, u64, u64)>,
    responses: VecDeque<MemResp>,
}

#[derive(Clone, Debug)]
struct Request {
    port: u32,
    req: MemReq,
    remaining: u64,
}

/// State of a `dram` instance.
pub struct Dram {
    t: &'static Ddr4Timing,
    geo: Geometry,
    ports: Vec<PortState>,
    channels: Vec<Channel>,
    queue_depth: usize,
    lookahead: usize,
    requests: Vec<Option<Request>>,
    free_slots: Vec<u32>,
    next_port: usize,
    /// Row hits first (true) or strictly oldest first.
    fr_fcfs: bool,
    completed: u64,
    last_done_ps: u64,
    /// Bytes moved, by time of the burst's last beat.
    bytes_timeline: super::account::Timeline,
    /// Bursts in flight over all channels (probed as `inflight`).
    inflight: i64,
    /// Bytes moved so far (probed as `bytes_done`; traces derive bandwidth from it).
    bytes_done: u64,
    /// Banks per channel (for global bank numbers in traces).
    banks_per_channel: usize,
    /// An observer is attached: record bank-state changes.
    observed: bool,
    /// Bank-state changes placed by the scheduler: (time ps, global bank, open row or -1).
    notes: Vec<(u64, u32, i64)>,
    /// Changes waiting for their time: wake-up id -> (bank, value).
    pending_notes: std::collections::BTreeMap<u64, (u32, i64)>,
    next_note: u64,
}

impl Dram {
    fn new(
        t: &'static Ddr4Timing,
        geo: Geometry,
        ports: Vec<PortState>,
        queue_depth: usize,
        lookahead: usize,
    ) -> Self {
        let banks = (geo.ranks * geo.bank_groups * geo.banks_per_group) as usize;
        let channels = (0..geo.channels)
            .map(|_| Channel {
                waiting: VecDeque::new(),
                in_flight: 0,
                banks: vec![Bank::default(); banks],
                ranks: (0..geo.ranks)
                    .map(|_| Rank {
                        next_refresh_ps: t.refi_ns * 1000,
                        ..Rank::default()
                    })
                    .collect(),
                last_col: None,
                last_write_end: None,
                bus_free_ps: 0,
                write_mode: false,
                stats: ChannelStats::default(),
            })
            .collect();
        Dram {
            t,
            geo,
            ports,
            channels,
            queue_depth,
            lookahead,
            requests: Vec::new(),
            free_slots: Vec::new(),
            next_port: 0,
            fr_fcfs: true,
            completed: 0,
            last_done_ps: 0,
            bytes_timeline: super::account::Timeline::default(),
            inflight: 0,
            bytes_done: 0,
            banks_per_channel: banks,
            observed: false,
            notes: Vec::new(),
            pending_notes: std::collections::BTreeMap::new(),
            next_note: 0,
        }
    }

    fn bank_index(&self, p: &Place) -> usize {
        ((p.rank as u64 * self.geo.bank_groups + p.bank_group as u64) * self.geo.banks_per_group
            + p.bank as u64) as usize
    }

    /// Pulls requests from the ports (round robin) and splits them into channel queues:
    /// demand requests first; prefetches only into the first half of a channel's queue, so
    /// a later demand burst always finds room.
    fn admit(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let n = self.ports.len();
        for prefetch in [false, true] {
            let mut idle_ports = 0;
            let mut k = self.next_port;
            while n > 0 && idle_ports < n {
                let progressed = self.admit_port(ctx, k, prefetch);
                idle_ports = if progressed { 0 } else { idle_ports + 1 };
                k = (k + 1) % n;
            }
            self.next_port = k;
        }
    }

    /// Whether port `k`'s next request is a prefetch (`None`: no request).
    fn head_is_prefetch(&mut self, ctx: &mut Ctx<'_, Transaction>, k: usize) -> Option<bool> {
        match self.ports[k].split {
            Some((slot, _, _)) => Some(
                self.requests[slot as usize]
                    .as_ref()
                    .is_some_and(|r| r.req.prefetch),
            ),
            None => match ctx.peek(self.ports[k].input) {
                Some(Transaction::MemReq(r)) => Some(r.prefetch),
                _ => None,
            },
        }
    }

    /// Admits one burst from port `k` if it can (a prefetch only when `prefetch`); returns
    /// whether it did.
    fn admit_port(&mut self, ctx: &mut Ctx<'_, Transaction>, k: usize, prefetch: bool) -> bool {
        let is_prefetch = match self.head_is_prefetch(ctx, k) {
            None => return false,
            Some(p) => p,
        };
        if is_prefetch && !prefetch {
            return false;
        }
        if self.ports[k].split.is_none() {
            let Some(Transaction::MemReq(req)) = ctx.try_recv(self.ports[k].input) else {
                return false;
            };
            let bb = self.geo.burst_bytes;
            let first = req.addr / bb * bb;
            let end = req.addr + req.bytes.max(1);
            let bursts = (end - first).div_ceil(bb);
            let r = Request {
                port: k as u32,
                req: *req,
                remaining: bursts,
            };
            let slot = match self.free_slots.pop() {
                Some(s) => {
                    self.requests[s as usize] = Some(r);
                    s
                }
                None => {
                    self.requests.push(Some(r));
                    self.requests.len() as u32 - 1
                }
            };
            self.ports[k].split = Some((slot, first, end));
        }
        let Some((slot, addr, end)) = self.ports[k].split else {
            return false;
        };
        let place = self.geo.decode(addr);
        let ch = &mut self.channels[place.channel as usize];
        let room = if is_prefetch {
            self.queue_depth.div_ceil(2)
        } else {
            self.queue_depth
        };
        if ch.waiting.len() + ch.in_flight >= room {
            return false;
        }
        let write = self.requests[slot as usize]
            .as_ref()
            .is_some_and(|r| r.req.write);
        ch.waiting.push_back(Burst {
            req: slot,
            place,
            write,
            prefetch: is_prefetch,
            prepared: false,
        });
        let next = addr + self.geo.burst_bytes;
        self.ports[k].split = (next < end).then_some((slot, next, end));
        true
    }

    /// Traces channel `c`'s bursts in flight (with one channel, `inflight` already says it).
    fn probe_channel(&self, ctx: &mut Ctx<'_, Transaction>, c: usize) {
        if self.channels.len() > 1 {
            let n = self.channels[c].in_flight as i64;
            ctx.probe_indexed("ch_inflight", c as u32, ProbeValue::Int(n));
        }
    }

    /// Starts bursts on every channel while the lookahead allows.
    fn issue(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        for c in 0..self.channels.len() {
            while self.channels[c].in_flight < self.lookahead
                && !self.channels[c].waiting.is_empty()
            {
                let pick = self.pick(c);
                let Some(b) = self.channels[c].waiting.remove(pick) else {
                    break;
                };
                let done = self.place_burst(c, &b, now);
                self.channels[c].in_flight += 1;
                self.probe_channel(ctx, c);
                self.inflight += 1;
                ctx.probe("inflight", ProbeValue::Int(self.inflight));
                ctx.wake_at(
                    SimTime::from_ps(done),
                    ((c as u64) << 32) | u64::from(b.req),
                );
            }
            self.prepare(c, now);
        }
    }

    /// Read/write batching, then FR-FCFS within the batch: reads go first; writes wait in
    /// the queue until `WRITE_HIGH` of them are waiting (or no read is), then drain until
    /// `WRITE_LOW` remain. Within the chosen direction: the oldest row hit, else the oldest
    /// (FCFS policy: the oldest of the direction).
    fn pick(&mut self, c: usize) -> usize {
        let writes = self.channels[c].waiting.iter().filter(|b| b.write).count();
        // Prefetch reads never hold writes back (a write may be what a requester waits for).
        let demand_reads = self.channels[c]
            .waiting
            .iter()
            .filter(|b| !b.write && !b.prefetch)
            .count();
        let ch = &mut self.channels[c];
        if ch.write_mode {
            ch.write_mode = writes > WRITE_LOW || demand_reads == 0;
        } else {
            ch.write_mode = writes >= WRITE_HIGH || demand_reads == 0;
        }
        let want_write = ch.write_mode && writes > 0;
        let ch = &self.channels[c];
        // Demand bursts before prefetches; within each, FR-FCFS.
        for prefetch in [false, true] {
            let in_class = |b: &Burst| b.write == want_write && b.prefetch == prefetch;
            if self.fr_fcfs
                && let Some(i) = ch.waiting.iter().position(|b| {
                    in_class(b) && ch.banks[self.bank_index(&b.place)].open_row == Some(b.place.row)
                })
            {
                return i;
            }
            if let Some(i) = ch.waiting.iter().position(in_class) {
                return i;
            }
        }
        0
    }

    /// Applies every refresh of `rank` due by `t`.
    fn refresh(&mut self, c: usize, rank: u32, t: u64) {
        let t_rp = self.t.ps(self.t.rp);
        let rfc = self.t.rfc_ns * 1000;
        let refi = self.t.refi_ns * 1000;
        let per_rank = (self.geo.bank_groups * self.geo.banks_per_group) as usize;
        let ch = &mut self.channels[c];
        let banks = &mut ch.banks[rank as usize * per_rank..(rank as usize + 1) * per_rank];
        let r = &mut ch.ranks[rank as usize];
        while r.next_refresh_ps <= t {
            let mut start = r.next_refresh_ps.max(r.blocked_until_ps);
            if banks.iter().any(|b| b.open_row.is_some()) {
                let pre = banks
                    .iter()
                    .filter(|b| b.open_row.is_some())
                    .map(|b| b.next_pre_ps)
                    .max()
                    .unwrap_or(0);
                start = start.max(pre) + t_rp;
            }
            let end = start.max(banks.iter().map(|b| b.next_act_ps).max().unwrap_or(0)) + rfc;
            for (i, b) in banks.iter_mut().enumerate() {
                if self.observed && b.open_row.is_some() {
                    let global = (c * self.banks_per_channel + rank as usize * per_rank + i) as u32;
                    self.notes.push((start.saturating_sub(t_rp), global, -1));
                }
                b.open_row = None;
                b.next_act_ps = b.next_act_ps.max(end);
            }
            r.blocked_until_ps = end;
            r.next_refresh_ps += refi;
            ch.stats.refreshes += 1;
        }
    }

    /// Opens `p.row` in its bank (PRE if another row is open, then ACT) at the earliest legal
    /// time not before `start`; returns the ACT time.
    fn activate(&mut self, c: usize, p: &Place, start: u64) -> u64 {
        let t = self.t;
        let bi = self.bank_index(p);
        let ch = &mut self.channels[c];
        let bank = &ch.banks[bi];
        let global = (c * self.banks_per_channel + bi) as u32;
        let mut act = if bank.open_row.is_some() {
            ch.stats.row_conflicts += 1;
            let pre = start.max(bank.next_pre_ps);
            if self.observed {
                self.notes.push((pre, global, -1));
            }
            pre + t.ps(t.rp)
        } else {
            ch.stats.row_misses += 1;
            start
        };
        act = act.max(bank.next_act_ps);
        let rank = &mut ch.ranks[p.rank as usize];
        if let Some((last, bg)) = rank.last_act {
            let rrd = if bg == p.bank_group { t.rrd_l } else { t.rrd_s };
            act = act.max(last + t.ps(rrd));
        }
        if rank.recent_acts.len() == 4 {
            act = act.max(rank.recent_acts[0] + t.ps(t.faw));
            rank.recent_acts.pop_front();
        }
        rank.recent_acts.push_back(act);
        rank.last_act = Some((act, p.bank_group));
        ch.stats.activates += 1;
        if self.observed {
            self.notes.push((act, global, i64::from(p.row)));
        }
        let bank = &mut ch.banks[bi];
        bank.open_row = Some(p.row);
        bank.act_ps = act;
        bank.next_pre_ps = act + t.ps(t.ras);
        bank.next_act_ps = act + t.ps(t.rc);
        act
    }

    /// Activate-ahead: for each waiting burst whose bank has another row open (or none) and
    /// no waiting burst that would hit the open row, opens its row now, as a controller with
    /// a command queue does while earlier bursts use the data bus.
    fn prepare(&mut self, c: usize, now: u64) {
        for i in 0..self.channels[c].waiting.len() {
            let b = self.channels[c].waiting[i];
            if b.prepared {
                continue;
            }
            let bi = self.bank_index(&b.place);
            let open = self.channels[c].banks[bi].open_row;
            if open == Some(b.place.row) {
                continue;
            }
            let pending_hit = open.is_some()
                && self.channels[c].waiting.iter().any(|w| {
                    w.place.row == open.unwrap_or(u32::MAX) && self.bank_index(&w.place) == bi
                });
            if pending_hit {
                continue;
            }
            self.refresh(c, b.place.rank, now);
            let start = now.max(self.channels[c].ranks[b.place.rank as usize].blocked_until_ps);
            self.activate(c, &b.place, start);
            self.channels[c].waiting[i].prepared = true;
        }
    }

    /// Places the commands of burst `b` on channel `c` (decided at `now`); returns the time its
    /// last data beat is on the bus.
    fn place_burst(&mut self, c: usize, b: &Burst, now: u64) -> u64 {
        let t = self.t;
        let p = b.place;
        let horizon = now.max(self.channels[c].bus_free_ps);
        self.refresh(c, p.rank, horizon);
        let bi = self.bank_index(&p);
        let start = now.max(self.channels[c].ranks[p.rank as usize].blocked_until_ps);
        let col_ready = if self.channels[c].banks[bi].open_row == Some(p.row) {
            if !b.prepared {
                self.channels[c].stats.row_hits += 1;
            }
            self.channels[c].banks[bi].act_ps + t.ps(t.rcd)
        } else {
            self.activate(c, &p, start) + t.ps(t.rcd)
        };
        let ch = &mut self.channels[c];
        let mut col = start.max(col_ready);
        if let Some(last) = &ch.last_col {
            let same = last.rank == p.rank && last.bank_group == p.bank_group;
            col = col.max(last.at_ps + t.ps(if same { t.ccd_l } else { t.ccd_s }));
        }
        if !b.write
            && let Some((wend, rank, bg)) = ch.last_write_end
        {
            let same = rank == p.rank && bg == p.bank_group;
            col = col.max(wend + t.ps(if same { t.wtr_l } else { t.wtr_s }));
        }
        let latency = t.ps(if b.write { t.cwl } else { t.cl });
        let turnaround = match &ch.last_col {
            Some(last) if last.write != b.write => t.ps(2),
            _ => 0,
        };
        col = col.max((ch.bus_free_ps + turnaround).saturating_sub(latency));
        let data_start = col + latency;
        let data_end = data_start + t.burst_ps();
        ch.last_col = Some(Column {
            at_ps: col,
            rank: p.rank,
            bank_group: p.bank_group,
            write: b.write,
        });
        ch.bus_free_ps = data_end;
        ch.stats.busy_ps += t.burst_ps();
        let bank = &mut ch.banks[bi];
        if b.write {
            bank.next_pre_ps = bank.next_pre_ps.max(data_end + t.ps(t.wr));
            ch.last_write_end = Some((data_end, p.rank, p.bank_group));
            ch.stats.bytes_written += self.geo.burst_bytes;
        } else {
            bank.next_pre_ps = bank.next_pre_ps.max(col + t.ps(t.rtp));
            ch.stats.bytes_read += self.geo.burst_bytes;
        }
        data_end
    }

    fn flush_responses(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        for p in &mut self.ports {
            while let Some(r) = p.responses.front().copied() {
                if ctx
                    .try_send(p.output, Transaction::MemResp(Box::new(r)))
                    .is_err()
                {
                    break;
                }
                p.responses.pop_front();
            }
        }
    }

    fn step(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.observed = ctx.observed();
        self.admit(ctx);
        self.issue(ctx);
        self.flush_responses(ctx);
        // Bank-state changes happen at command times the scheduler placed ahead of now;
        // a trace sees them at those times through wake-ups (only when observed).
        for (t, bank, value) in std::mem::take(&mut self.notes) {
            let id = self.next_note;
            self.next_note += 1;
            self.pending_notes.insert(id, (bank, value));
            ctx.wake_at(SimTime::from_ps(t), NOTE_TAG | id);
        }
    }

    fn total(&self, f: impl Fn(&ChannelStats) -> u64) -> u64 {
        self.channels.iter().map(|c| f(&c.stats)).sum()
    }
}

impl Dram {
    /// Bytes the memory holds: channels x ranks x bank groups x banks x rows x row bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.geo.row_stride_bytes() * self.geo.rows
    }

    /// The geometry, for messages.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }
}

impl Dram {
    /// Bytes moved by time.
    pub fn bytes_timeline(&self) -> &super::account::Timeline {
        &self.bytes_timeline
    }
}

impl Actor<Transaction> for Dram {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.step(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.step(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.flush_responses(ctx);
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, tag: u64) {
        if tag & NOTE_TAG != 0 {
            if let Some((bank, value)) = self.pending_notes.remove(&(tag & !NOTE_TAG)) {
                ctx.probe_indexed("bank", bank, ProbeValue::Int(value));
            }
            return;
        }
        let c = (tag >> 32) as usize;
        let slot = (tag & 0xffff_ffff) as usize;
        self.channels[c].in_flight -= 1;
        self.probe_channel(ctx, c);
        self.bytes_timeline
            .add(ctx.now().as_ps(), self.geo.burst_bytes);
        self.bytes_done += self.geo.burst_bytes;
        ctx.probe("bytes_done", ProbeValue::Int(self.bytes_done as i64));
        self.channels[c].stats.bytes_completed += self.geo.burst_bytes;
        if self.channels.len() > 1 {
            let done = self.channels[c].stats.bytes_completed as i64;
            ctx.probe_indexed("ch_bytes_done", c as u32, ProbeValue::Int(done));
        }
        self.inflight -= 1;
        ctx.probe("inflight", ProbeValue::Int(self.inflight));
        let mut finished = None;
        if let Some(r) = self.requests[slot].as_mut() {
            r.remaining -= 1;
            if r.remaining == 0 {
                finished = self.requests[slot].take();
            }
        }
        if let Some(r) = finished {
            self.free_slots.push(slot as u32);
            self.completed += 1;
            self.last_done_ps = ctx.now().as_ps();
            self.ports[r.port as usize].responses.push_back(MemResp {
                id: r.req.id,
                bytes: r.req.bytes,
                write: r.req.write,
            });
        }
        self.step(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        let open = self.requests.iter().filter(|r| r.is_some()).count();
        let unsent: usize = self.ports.iter().map(|p| p.responses.len()).sum();
        (open + unsent > 0)
            .then(|| format!("{open} requests in progress, {unsent} responses not yet delivered"))
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn stats(&self) -> Vec<Stat> {
        vec![
            ("requests_completed", StatValue::U64(self.completed)),
            ("bytes_read", StatValue::U64(self.total(|s| s.bytes_read))),
            (
                "bytes_written",
                StatValue::U64(self.total(|s| s.bytes_written)),
            ),
            ("row_hits", StatValue::U64(self.total(|s| s.row_hits))),
            ("row_misses", StatValue::U64(self.total(|s| s.row_misses))),
            (
                "row_conflicts",
                StatValue::U64(self.total(|s| s.row_conflicts)),
            ),
            ("activates", StatValue::U64(self.total(|s| s.activates))),
            ("refreshes", StatValue::U64(self.total(|s| s.refreshes))),
            ("bus_busy_ps", StatValue::U64(self.total(|s| s.busy_ps))),
            ("last_done_ps", StatValue::U64(self.last_done_ps)),
            (
                "peak_gbps",
                StatValue::F64(
                    self.t.peak_gbps(self.geo.burst_bytes / self.t.burst_length)
                        * self.geo.channels as f64,
                ),
            ),
        ]
    }
}
