//! `dram`: main memory — channels, ranks, bank groups, banks, rows of a JEDEC standard
//! (DDR4, DDR5, LPDDR5, HBM2, HBM3; `standards.rs`), a configurable address mapping
//! (`mapping.rs`), and an out-of-order FR-FCFS controller per channel (`scheduler.rs`) over
//! the device's timing state (`device.rs`). This file is the module kind and its front end.
//!
//! # Ports
//! `in0`..`in5` (mem_req, optional) and `out0`..`out5` (mem_resp, optional): a request that
//! arrives on `inK` is answered on `outK` (its id echoed), once, when all of its bursts are
//! done (reads: last data beat delivered; writes: last data beat written).
//!
//! # Front end
//! A request is split into bursts of `bus_bytes x BL` bytes (64 B on DDR4 x64 and DDR5 x32;
//! 32 B on LPDDR5 x16, HBM2 and HBM3 pseudo-channels), decoded by the mapping and queued in
//! its channel's read or write queue (`read_queue`, `write_queue` bursts; 0 = `queue_depth`)
//! as room allows, the ports taken round robin, one burst at a time. A request marked
//! `prefetch` enters only when no demand burst can, and only into the first half of the read
//! queue; the scheduler serves demand bursts before prefetch ones (and prefetch reads never
//! hold a write drain back), so prefetching never takes room or turns from a demand request.
//! A burst leaves its queue when its column command issues.
//!
//! # Timing
//! Commands issue on the edges of the preset's command clock (`tCK`): the module's clock is
//! the preset's, so `clock_mhz` cannot be set to anything else. A burst arriving at `t` can
//! have its first command on the first edge at or after `t` (no extra arrival cycle): an idle
//! read of a closed bank is answered `tRCD + CL + nBL` after that edge (DDR4-2400: 36 tCK =
//! 29.988 ns). The constraints and their bookkeeping are in `device.rs`, the choice of
//! command in `scheduler.rs`, refresh per rank (all ranks at the same time, or staggered by
//! `tREFI / ranks`).
//!
//! # Parameters
//! `preset`, `channels` (HBM: pseudo-channels), `ranks`, `bank_groups`, `banks_per_group`,
//! `rows`, `row_bytes`, `bus_bytes` (0 = the preset's organisation), `mapping`,
//! `queue_depth`, `read_queue`, `write_queue`, `write_high`, `write_low`, `policy`,
//! `page_policy`, `refresh`, `refresh_ranks`.
//!
//! # Statistics (sums over channels)
//! `reads`, `writes` (bursts), `bytes_read`, `bytes_written`, `row_hits`, `row_misses` (bank
//! closed), `row_conflicts` (another row open), `activates`, `precharges`, `refreshes`,
//! `bus_busy_ps`, `requests_completed`, `last_done_ps`, `peak_gbps`.

pub mod device;
pub mod mapping;
mod offers;
mod ring;
pub mod scheduler;
pub mod standards;
mod ticks;

use std::collections::{BTreeMap, BinaryHeap, VecDeque};

use self::ticks::Ticks;

use self::device::{Device, Timing};
use self::mapping::{Mapping, Sizes};
use self::scheduler::{Burst, Channel, Issued, Notes, Policy};
use self::standards::Standard;
use crate::component::{BuildArgs, Dir, ModuleSpec, ParamDefault, ParamSpec, ParamType, PortSpec};
use crate::kernel::{Actor, Ctx, LinkId, ProbeValue, SimTime, Stat, StatValue};
use crate::txn::{MemReq, MemResp, Transaction, TxnType};

/// Requester ports.
pub const PORTS: usize = 6;
/// Wake-up tags with this bit deliver a trace note.
const NOTE_TAG: u64 = 1 << 63;

const fn port(name: &'static str, dir: Dir, txn: TxnType, doc: &'static str) -> PortSpec {
    PortSpec::new(name, dir, txn, true, doc)
}

/// The `dram` module kind.
pub const SPEC: ModuleSpec = ModuleSpec {
    kind: "dram",
    summary: "main memory (DDR4/5, LPDDR5, HBM2/3): banks, rows, address mapping, out-of-order FR-FCFS controller, refresh, JEDEC timings",
    ports: &[
        port("in0", Dir::In, TxnType::MemReq, "requests from requester 0"),
        port(
            "out0",
            Dir::Out,
            TxnType::MemResp,
            "responses to requester 0",
        ),
        port("in1", Dir::In, TxnType::MemReq, "requests from requester 1"),
        port(
            "out1",
            Dir::Out,
            TxnType::MemResp,
            "responses to requester 1",
        ),
        port("in2", Dir::In, TxnType::MemReq, "requests from requester 2"),
        port(
            "out2",
            Dir::Out,
            TxnType::MemResp,
            "responses to requester 2",
        ),
        port("in3", Dir::In, TxnType::MemReq, "requests from requester 3"),
        port(
            "out3",
            Dir::Out,
            TxnType::MemResp,
            "responses to requester 3",
        ),
        port("in4", Dir::In, TxnType::MemReq, "requests from requester 4"),
        port(
            "out4",
            Dir::Out,
            TxnType::MemResp,
            "responses to requester 4",
        ),
        port("in5", Dir::In, TxnType::MemReq, "requests from requester 5"),
        port(
            "out5",
            Dir::Out,
            TxnType::MemResp,
            "responses to requester 5",
        ),
    ],
    params: &[
        ParamSpec {
            name: "preset",
            ty: ParamType::Choice(standards::PRESET_NAMES),
            default: ParamDefault::Str("ddr4-2400"),
            unit: "",
            doc: "memory standard and speed bin (timings and organisation in src/sta/dram/standards.rs); sets the clock",
        },
        ParamSpec::int(
            "channels",
            1,
            128,
            1,
            "channels",
            "independent channels (HBM: pseudo-channels; power of two)",
        ),
        ParamSpec::int(
            "ranks",
            0,
            8,
            0,
            "ranks",
            "ranks per channel (power of two; 0 = the preset's: DDR4 2, others 1)",
        ),
        ParamSpec::int(
            "bank_groups",
            0,
            16,
            0,
            "groups",
            "bank groups per rank (power of two; 0 = the preset's)",
        ),
        ParamSpec::int(
            "banks_per_group",
            0,
            16,
            0,
            "banks",
            "banks per bank group (power of two; 0 = the preset's)",
        ),
        ParamSpec::int(
            "rows",
            0,
            1 << 20,
            0,
            "rows",
            "rows per bank (power of two; 0 = the preset's)",
        ),
        ParamSpec::int(
            "row_bytes",
            0,
            1 << 16,
            0,
            "bytes",
            "page size per rank (power of two; 0 = the preset's, DDR4: 8 x8 devices x 1 KiB)",
        ),
        ParamSpec::int(
            "bus_bytes",
            0,
            64,
            0,
            "bytes",
            "data bus width per channel (0 = the preset's: DDR4 8 = x64)",
        ),
        ParamSpec {
            name: "mapping",
            ty: ParamType::Text {
                what: "an address mapping: `stasim` (rorabacobgch), `RoBaRaCoCh`, `ChRaBaRoCo`, or six two-letter fields most significant first (ro ch ra bg ba co), e.g. `rochrababgco`",
            },
            default: ParamDefault::Str(mapping::DEFAULT),
            unit: "",
            doc: "address mapping, most significant field first (src/sta/dram/mapping.rs)",
        },
        ParamSpec::int(
            "queue_depth",
            1,
            1024,
            32,
            "bursts",
            "entries of the read queue and of the write queue per channel",
        ),
        ParamSpec::int(
            "read_queue",
            0,
            1024,
            0,
            "bursts",
            "read queue entries per channel (0 = queue_depth)",
        ),
        ParamSpec::int(
            "write_queue",
            0,
            1024,
            0,
            "bursts",
            "write queue entries per channel (0 = queue_depth)",
        ),
        ParamSpec {
            name: "write_high",
            ty: ParamType::Float { min: 0.0, max: 1.0 },
            default: ParamDefault::Float(0.5),
            unit: "of the write queue",
            doc: "a write drain starts when this share of the write queue waits (or no demand read does)",
        },
        ParamSpec {
            name: "write_low",
            ty: ParamType::Float { min: 0.0, max: 1.0 },
            default: ParamDefault::Float(0.125),
            unit: "of the write queue",
            doc: "a write drain stops when no more than this share waits (while demand reads wait)",
        },
        ParamSpec {
            name: "policy",
            ty: ParamType::Choice(&["fr-fcfs", "fcfs"]),
            default: ParamDefault::Str("fr-fcfs"),
            unit: "",
            doc: "scheduling: oldest ready row hit, else oldest ready command (fr-fcfs), or oldest only (fcfs)",
        },
        ParamSpec {
            name: "page_policy",
            ty: ParamType::Choice(&["open", "close"]),
            default: ParamDefault::Str("open"),
            unit: "",
            doc: "open: rows stay open; close: auto-precharge when no waiting burst hits the row",
        },
        ParamSpec {
            name: "refresh",
            ty: ParamType::Bool,
            default: ParamDefault::Bool(true),
            unit: "",
            doc: "model all-bank refresh (tRFC every tREFI per rank); false for an ablation",
        },
        ParamSpec {
            name: "refresh_ranks",
            ty: ParamType::Choice(&["together", "staggered"]),
            default: ParamDefault::Str("together"),
            unit: "",
            doc: "ranks refresh at the same time, or staggered by tREFI / ranks",
        },
    ],
    build,
    fixed_clock: Some(command_clock),
};

/// The DRAM's clock: the command clock of its preset (tCK, e.g. 833 ps = 1200 MHz for
/// DDR4-2400). Its links' latencies count these cycles.
fn command_clock(params: &crate::component::Params) -> Result<crate::kernel::Clock, String> {
    let s = standard(params)?;
    crate::kernel::Clock::from_period_ps(s.tck_ps)
        .ok_or_else(|| format!("preset `{}` has no clock period", s.name))
}

fn standard(params: &crate::component::Params) -> Result<&'static Standard, String> {
    let preset = params.str("preset")?;
    standards::preset(preset).ok_or_else(|| format!("unknown DRAM preset `{preset}`"))
}

/// Parameter `name`, or the preset's `default` when it is 0; it must be a power of two.
fn pow2_or(args: &BuildArgs<'_>, name: &str, default: u64) -> Result<u64, String> {
    let v = match args.params.u64(name)? {
        0 => default,
        v => v,
    };
    if v.is_power_of_two() {
        Ok(v)
    } else {
        Err(format!(
            "`{name}` = {v} must be a power of two (the address mapping slices bits)"
        ))
    }
}

fn build(args: &BuildArgs<'_>) -> Result<Box<dyn Actor<Transaction>>, String> {
    let s = standard(args.params)?;
    let bus_bytes = match args.params.u64("bus_bytes")? {
        0 => s.bus_bytes,
        v => v,
    };
    let geo = Geometry {
        channels: pow2_or(args, "channels", 1)?,
        ranks: pow2_or(args, "ranks", s.ranks)?,
        bank_groups: pow2_or(args, "bank_groups", s.bank_groups)?,
        banks_per_group: pow2_or(args, "banks_per_group", s.banks_per_group)?,
        rows: pow2_or(args, "rows", s.rows)?,
        row_bytes: pow2_or(args, "row_bytes", s.row_bytes)?,
        burst_bytes: bus_bytes * s.burst_beats,
    };
    if !geo.burst_bytes.is_power_of_two() || geo.row_bytes < geo.burst_bytes {
        return Err(format!(
            "`bus_bytes` x BL{} = {} must be a power of two no larger than `row_bytes` = {}",
            s.burst_beats, geo.burst_bytes, geo.row_bytes
        ));
    }
    if geo.channels > 128 {
        // `Dram::touched` keeps a bit per channel.
        return Err(format!("`channels` = {} is more than 128", geo.channels));
    }
    let map = Mapping::parse(args.params.str("mapping")?, &geo.sizes())?;
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
    let depth = args.params.u64("queue_depth")? as usize;
    let or_depth = |v: u64| if v == 0 { depth } else { v as usize };
    let read_queue = or_depth(args.params.u64("read_queue")?);
    let write_queue = or_depth(args.params.u64("write_queue")?);
    let (hi, lo) = (
        args.params.f64("write_high")?,
        args.params.f64("write_low")?,
    );
    if lo >= hi {
        return Err(format!(
            "`write_low` = {lo} must be below `write_high` = {hi} (a drain runs from high down to low)"
        ));
    }
    let policy = Policy {
        fr_fcfs: args.params.str("policy")? == "fr-fcfs",
        close_page: args.params.str("page_policy")? == "close",
        write_high: ((hi * write_queue as f64).ceil() as usize).max(1),
        write_low: (lo * write_queue as f64).floor() as usize,
    };
    let refresh = args.params.bool("refresh")?;
    let staggered = args.params.str("refresh_ranks")? == "staggered";
    let channels = (0..geo.channels)
        .map(|_| {
            let dev = Device::new(
                Timing::of(s),
                geo.ranks as usize,
                geo.bank_groups as usize,
                geo.banks_per_group as usize,
                refresh,
                staggered,
            );
            Channel::new(dev, policy.clone())
        })
        .collect();
    let banks_per_channel = (geo.ranks * geo.bank_groups * geo.banks_per_group) as u32;
    let geo_channels = geo.channels as usize;
    Ok(Box::new(Dram {
        std: s,
        geo,
        map,
        ports,
        channels,
        read_queue,
        write_queue,
        requests: Vec::new(),
        free_slots: Vec::new(),
        next_port: 0,
        seq: 0,
        completions: BinaryHeap::new(),
        wakes: Vec::new(),
        touched: 0,
        ticks: Ticks::new(geo_channels),
        empty: 0,
        heads: [Head::default(); PORTS],
        known: 0,
        prefetch_known: 0,
        write_known: 0,
        admit_wanted: false,
        admit_at_ps: None,
        admit_edge: 0,
        completed: 0,
        last_done_ps: 0,
        bytes_timeline: super::account::Timeline::default(),
        banks_per_channel,
        observed: false,
        notes: Vec::new(),
        pending_notes: BTreeMap::new(),
        next_note: 0,
        inflight: 0,
        bytes_done: 0,
        ch_done: Vec::new(),
    }))
}

/// The ports of the set `ports` (a bit per port), lowest first.
#[inline]
fn ports_in(ports: u32) -> impl Iterator<Item = usize> {
    let mut rest = ports;
    std::iter::from_fn(move || {
        (rest != 0).then(|| {
            let k = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            k
        })
    })
}

/// The first port of the set `ports` (a bit per port, not empty) at or after `k`, round
/// robin.
#[inline]
fn next_port_in(ports: u32, k: usize) -> usize {
    let later = ports >> k << k;
    if later != 0 {
        later.trailing_zeros() as usize
    } else {
        ports.trailing_zeros() as usize
    }
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

impl Geometry {
    /// The field sizes for the address mapping.
    pub fn sizes(&self) -> Sizes {
        Sizes {
            channels: self.channels,
            ranks: self.ranks,
            bank_groups: self.bank_groups,
            banks_per_group: self.banks_per_group,
            rows: self.rows,
            columns: self.row_bytes / self.burst_bytes,
            burst_bytes: self.burst_bytes,
        }
    }

    /// Bytes the memory holds.
    pub fn capacity_bytes(&self) -> u64 {
        self.channels
            * self.ranks
            * self.bank_groups
            * self.banks_per_group
            * self.rows
            * self.row_bytes
    }
}

struct PortState {
    input: LinkId,
    output: LinkId,
    /// Request being split: (slot, next byte address, end address).
    split: Option<(u32, u64, u64)>,
    responses: VecDeque<MemResp>,
}

/// The next burst of a port, decoded: its row (bits 0-31), bank within the channel (32-47;
/// at most 8 x 16 x 16), channel (48-55; at most 128), write (56) and prefetch (57) bits.
/// One word, so it is written and read whole: a head is read right after the admission
/// that decoded it, and a read spanning several narrower stores would wait for them.
#[derive(Copy, Clone, Debug, Default)]
struct Head(u64);

impl Head {
    fn new(channel: u32, bank: u32, row: u32, write: bool, prefetch: bool) -> Head {
        debug_assert!(channel < 1 << 8 && bank < 1 << 16);
        Head(
            u64::from(row)
                | u64::from(bank) << 32
                | u64::from(channel) << 48
                | u64::from(write) << 56
                | u64::from(prefetch) << 57,
        )
    }
    fn row(self) -> u32 {
        self.0 as u32
    }
    fn bank(self) -> u32 {
        (self.0 >> 32) as u16 as u32
    }
    fn channel(self) -> u32 {
        (self.0 >> 48) as u8 as u32
    }
    fn write(self) -> bool {
        self.0 >> 56 & 1 == 1
    }
    fn prefetch(self) -> bool {
        self.0 >> 57 & 1 == 1
    }
}

#[derive(Clone, Debug)]
struct Request {
    port: u32,
    req: MemReq,
    /// Bursts whose column command has not issued yet.
    left: u64,
    /// Latest end of its bursts' data, ps.
    done_ps: u64,
}

/// A trace note due at a later time.
#[derive(Copy, Clone, Debug)]
enum Note {
    /// Bank (global index) opened a row (>= 0) or closed (-1).
    Bank(u32, i64),
    /// A burst of this channel finished its data.
    Done(u32),
}

/// State of a `dram` instance.
pub struct Dram {
    std: &'static Standard,
    geo: Geometry,
    map: Mapping,
    ports: Vec<PortState>,
    channels: Vec<Channel>,
    read_queue: usize,
    write_queue: usize,
    requests: Vec<Option<Request>>,
    free_slots: Vec<u32>,
    next_port: usize,
    /// Bursts admitted so far (their age).
    seq: u64,
    /// Requests whose last burst is placed: (done ps, request id order, slot), earliest first.
    completions: BinaryHeap<std::cmp::Reverse<(u64, u64, u32)>>,
    /// Scheduler wake-ups outstanding (a few).
    wakes: Vec<u64>,
    /// Ports whose link was empty when last looked at (until it signals readable), a bit
    /// each; such a port has no request being split either.
    empty: u32,
    /// Per port: its next burst, decoded, where `known` has the port's bit.
    heads: [Head; PORTS],
    /// Ports whose next burst is decoded in `heads` (else: look at the link).
    known: u32,
    /// The ports of `known` whose head is a prefetch.
    prefetch_known: u32,
    /// The ports of `known` whose head is a write.
    write_known: u32,
    /// Every channel's next decision edge (tCK), the earliest at hand.
    ticks: Ticks,
    /// Channels bursts entered since they were last settled.
    /// (A bit per channel: `channels` is at most 128.)
    touched: u128,
    /// A request arrived: look at the ports.
    admit_wanted: bool,
    /// A decision ahead of now freed room a request on its link can take: admit then.
    admit_at_ps: Option<u64>,
    /// Clock edge (tCK) bursts admitted now arrive at.
    admit_edge: u64,
    completed: u64,
    last_done_ps: u64,
    /// Bytes moved, by time of the burst's last beat.
    bytes_timeline: super::account::Timeline,
    banks_per_channel: u32,
    /// An observer is attached: record trace notes.
    observed: bool,
    notes: Notes,
    pending_notes: BTreeMap<u64, Note>,
    next_note: u64,
    /// Bursts issued and not yet done (traces only).
    inflight: i64,
    /// Bytes done (traces only).
    bytes_done: u64,
    /// Bytes done per channel (traces only).
    ch_done: Vec<u64>,
}

impl Dram {
    /// Bytes the memory holds: channels x ranks x bank groups x banks x rows x row bytes.
    pub fn capacity_bytes(&self) -> u64 {
        self.geo.capacity_bytes()
    }

    /// The geometry, for messages.
    pub fn geometry(&self) -> &Geometry {
        &self.geo
    }

    /// The address mapping.
    pub fn mapping(&self) -> &Mapping {
        &self.map
    }

    /// The memory standard.
    pub fn standard(&self) -> &'static Standard {
        self.std
    }

    /// Bytes moved by time.
    pub fn bytes_timeline(&self) -> &super::account::Timeline {
        &self.bytes_timeline
    }

    /// Pulls requests from the ports (round robin) into the channel queues: demand requests
    /// first; prefetches only into the first half of a read queue. Returns whether any
    /// burst entered.
    ///
    /// Each pass goes round the ports from `next_port`, one burst per port and turn, until
    /// every port has failed once; the next pass (and call) starts after the last port that
    /// admitted. A port that failed is not asked again in its pass: admissions only take
    /// room and leave the other ports' heads alone, so it would fail again; for the same
    /// reason a port whose head does not fit at the start of a pass is never asked. The
    /// prefetch pass starts with the ports whose head is a prefetch (the demand pass
    /// admitted or refused the others for good).
    ///
    /// `maybe`: the ports whose head may fit. Every other port's head is known not to fit
    /// (so it is not looked at): after an admission every port's head is known not to fit
    /// (each port failed its last turn), and a column command then frees room in one queue
    /// only, so the ports [`Dram::waiting_for`] its direction are all that can fit.
    fn admit(&mut self, ctx: &mut Ctx<'_, Transaction>, maybe: u32) -> bool {
        let n = self.ports.len();
        let all = (1u32 << n) - 1;
        let mut any = false;
        // Ports that admitted: their heads changed, so they may fit the prefetch pass.
        let mut admitted = 0u32;
        for prefetch in [false, true] {
            // The demand pass left the head of every port it looked at known (each port's
            // last turn failed), and refused the demand heads for good: the prefetch pass
            // looks at the known prefetch heads among them only.
            let look = if prefetch {
                self.prefetch_known & (maybe | admitted)
            } else {
                maybe & !self.empty & all
            };
            if look == 0 {
                break;
            }
            #[cfg(debug_assertions)]
            self.check_unfit(look, prefetch);
            // Ports that would fail their first turn are left out from the start: a port's
            // head changes only when it admits, and room only shrinks during a pass.
            let mut fit = 0u32;
            for k in ports_in(look) {
                if self.head(ctx, k) && self.fits(k, prefetch) {
                    fit |= 1 << k;
                }
            }
            // `fit` holds exactly the ports whose turn would admit: after each admission the
            // ports still in it are asked again (the room shrank, and the admitting port has
            // a new head), and those that would fail leave it, as their turn would remove
            // them; so every turn admits.
            let mut k = self.next_port;
            while fit != 0 {
                k = next_port_in(fit, k);
                if !self.admit_port(ctx, k) {
                    fit &= !(1 << k);
                    continue;
                }
                any = true;
                admitted |= 1 << k;
                k = if k + 1 == n { 0 } else { k + 1 };
                self.next_port = k;
                for j in ports_in(fit) {
                    if !self.takes(ctx, j, prefetch) {
                        fit &= !(1 << j);
                    }
                }
            }
        }
        any
    }

    /// Whether port `k`'s turn in a pass (`prefetch`: the prefetch pass) would admit a burst:
    /// it has a head, of demand unless in the prefetch pass, and the head fits its queue.
    #[inline]
    fn takes(&mut self, ctx: &mut Ctx<'_, Transaction>, k: usize, prefetch: bool) -> bool {
        if !self.head(ctx, k) {
            return false;
        }
        let h = self.heads[k];
        (prefetch || !h.prefetch()) && self.room(&h)
    }

    /// Debug builds: no port left out of an admission pass (outside `look`) could take a
    /// burst in it.
    #[cfg(debug_assertions)]
    fn check_unfit(&self, look: u32, prefetch: bool) {
        let prefetch_known = ports_in(self.known)
            .filter(|&k| self.heads[k].prefetch())
            .fold(0, |set, k| set | 1 << k);
        assert_eq!(
            self.prefetch_known, prefetch_known,
            "prefetch heads out of step"
        );
        let write_known = ports_in(self.known)
            .filter(|&k| self.heads[k].write())
            .fold(0, |set, k| set | 1 << k);
        assert_eq!(self.write_known, write_known, "write heads out of step");
        for k in 0..self.ports.len() {
            if look >> k & 1 == 1 || self.empty >> k & 1 == 1 {
                continue;
            }
            assert!(
                self.known >> k & 1 == 1,
                "port {k}'s head is unknown but it was left out of an admission pass"
            );
            assert!(
                !self.fits(k, prefetch),
                "port {k}'s head fits but it was left out of an admission pass"
            );
        }
    }

    /// Whether port `k`'s known head is of the pass (`prefetch`) and fits its queue.
    #[inline]
    fn fits(&self, k: usize, prefetch: bool) -> bool {
        let h = &self.heads[k];
        h.prefetch() == prefetch && self.room(h)
    }

    /// Whether port `k`'s next burst is known (decoded into `heads[k]` once); false: no
    /// request waiting.
    #[inline]
    fn head(&mut self, ctx: &mut Ctx<'_, Transaction>, k: usize) -> bool {
        if self.known >> k & 1 == 1 {
            true
        } else if self.empty >> k & 1 == 1 {
            false
        } else {
            self.decode_head(ctx, k)
        }
    }

    /// [`Dram::head`] when it is not known yet.
    #[cold]
    fn decode_head(&mut self, ctx: &mut Ctx<'_, Transaction>, k: usize) -> bool {
        let bb = self.geo.burst_bytes;
        let (addr, write, prefetch) = match self.ports[k].split {
            Some((slot, addr, _)) => match &self.requests[slot as usize] {
                Some(r) => (addr, r.req.write, r.req.prefetch),
                None => return false,
            },
            None => match ctx.peek(self.ports[k].input) {
                Some(Transaction::MemReq(r)) => (r.addr / bb * bb, r.write, r.prefetch),
                _ => {
                    self.empty |= 1 << k;
                    return false;
                }
            },
        };
        self.heads[k] = self.decode(addr, write, prefetch);
        self.known |= 1 << k;
        self.prefetch_known |= u32::from(prefetch) << k;
        self.write_known |= u32::from(write) << k;
        true
    }

    /// The burst at byte address `addr`, decoded.
    #[inline]
    fn decode(&self, addr: u64, write: bool, prefetch: bool) -> Head {
        let p = self.map.decode(addr);
        let per_group = self.geo.banks_per_group as u32;
        let bank = (p.rank * self.geo.bank_groups as u32 + p.bank_group) * per_group + p.bank;
        Head::new(p.channel, bank, p.row, write, prefetch)
    }

    /// Admits port `k`'s next burst, known to be taken ([`Dram::takes`]: room is checked
    /// before a request is taken off its link, so a full queue leaves it there and the
    /// requester sees back-pressure). False if the request has gone from the link.
    fn admit_port(&mut self, ctx: &mut Ctx<'_, Transaction>, k: usize) -> bool {
        let h = self.heads[k];
        let c = h.channel() as usize;
        let bb = self.geo.burst_bytes;
        if self.ports[k].split.is_none() {
            let Some(Transaction::MemReq(req)) = ctx.try_recv(self.ports[k].input) else {
                return false;
            };
            let first = req.addr / bb * bb;
            let end = req.addr + req.bytes.max(1);
            let r = Request {
                port: k as u32,
                req: *req,
                left: (end - first).div_ceil(bb),
                done_ps: 0,
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
        let b = Burst {
            slot,
            seq: self.seq,
            row: h.row(),
            bank: h.bank(),
            write: h.write(),
            prefetch: h.prefetch(),
        };
        self.seq += 1;
        self.channels[c].push(b, self.admit_edge);
        self.touched |= 1 << c;
        // The request's next burst, if any, is the port's next head (decoded now, as the
        // next look at the port would).
        let next = addr + bb;
        if next < end {
            self.heads[k] = self.decode(next, h.write(), h.prefetch());
            self.ports[k].split = Some((slot, next, end));
        } else {
            self.known &= !(1 << k);
            self.prefetch_known &= !(1 << k);
            self.write_known &= !(1 << k);
            self.ports[k].split = None;
        }
        true
    }

    /// The ports whose next burst may be waiting for room in a read queue (`write` false)
    /// or a write queue: a known head of that direction (of any channel: a port whose head
    /// does not fit is left out of an admission at its first look), or not known yet.
    fn waiting_for(&self, write: bool) -> u32 {
        let all = (1u32 << self.ports.len()) - 1;
        let of_direction = if write {
            self.write_known
        } else {
            self.known & !self.write_known
        };
        of_direction | (!self.known & !self.empty & all)
    }

    /// Recomputes the next decision of every channel bursts entered.
    fn settle(&mut self) {
        while self.touched != 0 {
            let c = self.touched.trailing_zeros() as usize;
            self.touched &= self.touched - 1;
            self.channels[c].settle();
            self.queue_tick(c);
        }
    }

    /// Books a column command of channel `c`.
    /// Returns the time its request is done, when this was the request's last burst.
    fn issued(&mut self, ctx: &mut Ctx<'_, Transaction>, c: usize, i: Issued) -> Option<u64> {
        let bb = self.geo.burst_bytes;
        let done_ps = i.done * self.std.tck_ps;
        self.bytes_timeline.add(done_ps, bb);
        if self.observed {
            self.inflight += 1;
            ctx.probe("inflight", ProbeValue::Int(self.inflight));
            self.note(ctx, done_ps, Note::Done(c as u32));
        }
        let slot = i.slot as usize;
        let r = self.requests[slot].as_mut()?;
        r.left -= 1;
        r.done_ps = r.done_ps.max(done_ps);
        if r.left == 0 {
            let key = (r.done_ps, r.req.id, slot as u32);
            self.completions.push(std::cmp::Reverse(key));
            return Some(r.done_ps);
        }
        None
    }

    fn note(&mut self, ctx: &mut Ctx<'_, Transaction>, at_ps: u64, n: Note) {
        let id = self.next_note;
        self.next_note += 1;
        self.pending_notes.insert(id, n);
        ctx.wake_at(SimTime::from_ps(at_ps), NOTE_TAG | id);
    }

    /// Runs the channels' decisions in time order (ties: lower channel first), admitting
    /// bursts as room frees: every decision due by now, then, when `ahead`, the decisions
    /// before the next event of any actor and before the next response (nothing can arrive
    /// before them, so they are the ones a wake-up per decision would make). A decision
    /// ahead of now that frees room a request still on its link could take stops the run:
    /// the request is taken at that time (a wake-up), as it would be without running ahead.
    fn schedule(&mut self, ctx: &mut Ctx<'_, Transaction>, ahead: bool) {
        let tck = self.std.tck_ps;
        let now_ps = ctx.now().as_ps();
        let mut horizon_ps = if ahead {
            let next_event = ctx.next_event_time().map_or(u64::MAX, |t| t.as_ps());
            let next_done = self.completions.peek().map_or(u64::MAX, |r| r.0.0);
            next_event.min(next_done)
        } else {
            now_ps + 1
        };
        loop {
            let Some((t, c)) = self.next_decision() else {
                return;
            };
            if t.saturating_mul(tck) >= horizon_ps {
                return;
            }
            let notes = self.observed.then_some(&mut self.notes);
            let decided = self.channels[c].decide(t, notes);
            self.queue_tick(c);
            let Some(i) = decided else {
                self.flush_notes(ctx, c);
                continue;
            };
            self.flush_notes(ctx, c);
            let done = self.issued(ctx, c, i);
            if ahead && let Some(d) = done {
                horizon_ps = horizon_ps.min(d);
            }
            let maybe = self.waiting_for(i.write);
            if maybe == 0 {
                continue;
            }
            if t * tck > now_ps && self.pop_could_fit(ctx, maybe) {
                self.admit_at_ps = Some(t * tck);
                return;
            }
            self.admit_edge = t;
            if self.admit(ctx, maybe) {
                self.settle();
            }
        }
    }

    /// The earliest pending decision: (edge, channel), ties to the lower channel.
    fn next_decision(&self) -> Option<(u64, usize)> {
        self.ticks.first()
    }

    /// Records channel `c`'s next decision edge.
    #[inline]
    fn queue_tick(&mut self, c: usize) {
        self.ticks.set(c, self.channels[c].next_tick);
    }

    /// Whether a request still on its link, of a port in `maybe` (the others' heads are
    /// known not to fit), would fit its queue now.
    fn pop_could_fit(&mut self, ctx: &mut Ctx<'_, Transaction>, maybe: u32) -> bool {
        ports_in(maybe & !self.empty).any(|k| {
            self.ports[k].split.is_none() && self.head(ctx, k) && self.room(&self.heads[k])
        })
    }

    /// Whether burst `h` fits its channel's queue.
    fn room(&self, h: &Head) -> bool {
        let ch = &self.channels[h.channel() as usize];
        if h.write() {
            ch.writes < self.write_queue
        } else if h.prefetch() {
            ch.reads() < self.read_queue.div_ceil(2)
        } else {
            ch.reads() < self.read_queue
        }
    }

    /// Turns bank notes of channel `c` into probes now or wake-ups later.
    #[inline]
    fn flush_notes(&mut self, ctx: &mut Ctx<'_, Transaction>, c: usize) {
        if !self.notes.is_empty() {
            self.flush_notes_now(ctx, c);
        }
    }

    fn flush_notes_now(&mut self, ctx: &mut Ctx<'_, Transaction>, c: usize) {
        let now = ctx.now().as_ps();
        for (t, bank, value) in std::mem::take(&mut self.notes) {
            let t = t * self.std.tck_ps;
            let global = c as u32 * self.banks_per_channel + bank;
            if t <= now {
                ctx.probe_indexed("bank", global, ProbeValue::Int(value));
            } else {
                self.note(ctx, t, Note::Bank(global, value));
            }
        }
    }

    /// Answers every request done by now.
    fn complete(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        while let Some(&std::cmp::Reverse((t, _, slot))) = self.completions.peek() {
            if t > now {
                break;
            }
            self.completions.pop();
            if let Some(r) = self.requests[slot as usize].take() {
                self.free_slots.push(slot);
                self.completed += 1;
                self.last_done_ps = t;
                self.ports[r.port as usize].responses.push_back(MemResp {
                    id: r.req.id,
                    bytes: r.req.bytes,
                    write: r.req.write,
                });
            }
        }
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

    /// Wakes at the next decision or completion.
    fn arm(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        let next_tick = self.next_decision().map(|(t, _)| t * self.std.tck_ps);
        let next_done = self.completions.peek().map(|r| r.0.0);
        let want = next_tick
            .into_iter()
            .chain(next_done)
            .chain(self.admit_at_ps)
            .min()
            .unwrap_or(u64::MAX);
        if want == u64::MAX {
            return;
        }
        let want = want.max(now + 1);
        if self.wakes.iter().all(|&w| w > want) {
            self.wakes.push(want);

            ctx.wake_at(SimTime::from_ps(want), 0);
        }
    }

    fn step(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.observed = ctx.observed();
        let now = ctx.now().as_ps();
        if self.admit_wanted || self.admit_at_ps.is_some_and(|t| t <= now) {
            self.admit_wanted = false;
            self.admit_at_ps = None;
            self.admit_edge = now.div_ceil(self.std.tck_ps);
            self.admit(ctx, u32::MAX);
            self.settle();
        }
        self.schedule(ctx, false);
        self.complete(ctx);
        self.flush_responses(ctx);
        // Traced runs wake for every decision, so probes carry their times.
        if !self.observed && self.admit_at_ps.is_none() {
            self.schedule(ctx, true);
        }
        self.arm(ctx);
    }

    fn total(&self, f: impl Fn(&scheduler::Stats) -> u64) -> u64 {
        self.channels.iter().map(|c| f(&c.stats)).sum()
    }

    fn on_note(&mut self, ctx: &mut Ctx<'_, Transaction>, id: u64) {
        match self.pending_notes.remove(&id) {
            Some(Note::Bank(bank, value)) => {
                ctx.probe_indexed("bank", bank, ProbeValue::Int(value));
            }
            Some(Note::Done(c)) => {
                let bb = self.geo.burst_bytes;
                self.inflight -= 1;
                self.bytes_done += bb;
                ctx.probe("inflight", ProbeValue::Int(self.inflight));
                ctx.probe("bytes_done", ProbeValue::Int(self.bytes_done as i64));
                if self.channels.len() > 1 {
                    self.ch_done.resize(self.channels.len(), 0);
                    self.ch_done[c as usize] += bb;
                    let v = self.ch_done[c as usize] as i64;
                    ctx.probe_indexed("ch_bytes_done", c, ProbeValue::Int(v));
                }
            }
            None => {}
        }
    }
}

impl Actor<Transaction> for Dram {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.admit_wanted = true;
        self.step(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, link: LinkId) {
        self.admit_wanted = true;
        for (k, p) in self.ports.iter().enumerate() {
            if p.input == link {
                self.empty &= !(1 << k);
            }
        }
        self.step(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.flush_responses(ctx);
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, tag: u64) {
        if tag & NOTE_TAG != 0 {
            self.on_note(ctx, tag & !NOTE_TAG);
            return;
        }
        let now = ctx.now().as_ps();
        self.wakes.retain(|&w| w > now);
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
        let bb = self.geo.burst_bytes;
        vec![
            ("requests_completed", StatValue::U64(self.completed)),
            ("reads", StatValue::U64(self.total(|s| s.reads))),
            ("writes", StatValue::U64(self.total(|s| s.writes))),
            ("bytes_read", StatValue::U64(self.total(|s| s.reads) * bb)),
            (
                "bytes_written",
                StatValue::U64(self.total(|s| s.writes) * bb),
            ),
            ("row_hits", StatValue::U64(self.total(|s| s.row_hits))),
            ("row_misses", StatValue::U64(self.total(|s| s.row_misses))),
            (
                "row_conflicts",
                StatValue::U64(self.total(|s| s.row_conflicts)),
            ),
            ("activates", StatValue::U64(self.total(|s| s.activates))),
            ("precharges", StatValue::U64(self.total(|s| s.precharges))),
            ("refreshes", StatValue::U64(self.total(|s| s.refreshes))),
            (
                "bus_busy_ps",
                StatValue::U64(self.total(|s| s.busy_cycles) * self.std.tck_ps),
            ),
            ("last_done_ps", StatValue::U64(self.last_done_ps)),
            (
                "peak_gbps",
                StatValue::F64(
                    self.std
                        .peak_gbps(self.geo.burst_bytes / self.std.burst_beats)
                        * self.geo.channels as f64,
                ),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::{next_port_in, ports_in};

    #[test]
    fn the_next_port_in_a_set_is_found_round_robin_from_k() {
        // Ports 1, 3 and 4 of 6.
        let set = 0b01_1010;
        let firsts: Vec<usize> = (0..6).map(|k| next_port_in(set, k)).collect();
        assert_eq!(firsts, vec![1, 1, 3, 3, 4, 1]);
        assert_eq!(next_port_in(0b1, 5), 0);
    }

    #[test]
    fn the_ports_of_a_set_are_listed_lowest_first() {
        assert_eq!(ports_in(0b01_1010).collect::<Vec<_>>(), vec![1, 3, 4]);
        assert_eq!(ports_in(0).count(), 0);
        assert_eq!(ports_in(1 << 31).collect::<Vec<_>>(), vec![31]);
    }
}
