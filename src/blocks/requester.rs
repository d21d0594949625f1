//! A memory requester: the part of the `mem_traffic` generator and of trace replay that
//! offers requests to a memory and measures what it answers. What to ask for comes from a
//! [`RequestStream`] (a pattern, a trace file); this actor only times and counts.
//!
//! - Requests are offered in order, each at its `not_before_ps` or later, at least
//!   `interval_ps` after the previous offer, while fewer than `outstanding` are unanswered
//!   and the request link has room: a full memory queue blocks the stream.
//! - Arrival: when the memory takes a request from the link (the kernel tells the sender,
//!   `notify_on_take`; the requests still in the link are the newest ones, so
//!   `sent - occupancy` of them have been taken), the statistics ([`MemStats`]) start its
//!   latency there.
//! - Memory: a request is kept only while it is in flight (in a slot; its id is the slot's
//!   number, which the memory echoes); the stream is pulled one request at a time.

use std::collections::VecDeque;

use super::mem_stats::MemStats;
use crate::kernel::{Actor, Ctx, LinkId, SimTime, Stat, StatValue};
use crate::txn::{MemReq, Transaction};

/// One request to offer.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Byte address.
    pub addr: u64,
    /// Bytes.
    pub bytes: u64,
    /// A write (else a read).
    pub write: bool,
    /// Earliest time to offer it, ps (0: as soon as possible).
    pub not_before_ps: u64,
}

/// Where a requester's requests come from.
pub trait RequestStream: Send + 'static {
    /// The next request, or `None` when there is none left (or the stream failed; the
    /// stream keeps the reason).
    fn next_request(&mut self) -> Option<Request>;
}

/// A request in flight.
#[derive(Copy, Clone, Debug)]
struct Flight {
    write: bool,
    bytes: u64,
    issue_ps: u64,
    /// Arrival at the memory (`None` while still in the link).
    arrival_ps: Option<u64>,
}

/// Wake-up tag of a delayed offer.
const OFFER: u64 = 0;

/// How a requester offers its stream.
#[derive(Copy, Clone, Debug)]
pub struct Pacing {
    /// Most requests unanswered at once.
    pub outstanding: u64,
    /// Least time between two offers, ps.
    pub interval_ps: u64,
}

/// The requester actor over a stream `S`.
pub struct Requester<S: RequestStream> {
    req: LinkId,
    resp: LinkId,
    pacing: Pacing,
    stream: S,
    /// The next request, pulled from the stream but not yet sent.
    next: Option<Request>,
    /// The stream has ended.
    exhausted: bool,
    issued: u64,
    /// Ids sent but not yet taken by the memory, oldest first.
    untaken: VecDeque<u64>,
    /// Requests in flight by id (slot); `None` for a free slot.
    slots: Vec<Option<Flight>>,
    /// Free slots.
    free: Vec<u64>,
    in_flight: u64,
    last_offer_ps: Option<u64>,
    /// A wake-up for a delayed offer is scheduled at this time.
    wake_at_ps: Option<u64>,
    completed: u64,
    first_issue_ps: Option<u64>,
    latency_sum_ps: u64,
    latency_max_ps: u64,
    stats: MemStats,
}

impl<S: RequestStream> Requester<S> {
    /// A requester on links `req` (requests out) and `resp` (responses in).
    pub fn new(req: LinkId, resp: LinkId, pacing: Pacing, stream: S) -> Self {
        Requester {
            req,
            resp,
            pacing,
            stream,
            next: None,
            exhausted: false,
            issued: 0,
            untaken: VecDeque::new(),
            slots: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            last_offer_ps: None,
            wake_at_ps: None,
            completed: 0,
            first_issue_ps: None,
            latency_sum_ps: 0,
            latency_max_ps: 0,
            stats: MemStats::default(),
        }
    }

    /// The stream (after a run: its counts, or why it stopped).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// What was measured.
    pub fn mem_stats(&self) -> &MemStats {
        &self.stats
    }

    /// Requests sent.
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Records the arrivals of requests the memory took since the last look.
    fn note_takes(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        if self.untaken.is_empty() {
            return;
        }
        let now = ctx.now().as_ps();
        let still = ctx.occupancy(self.req);
        while self.untaken.len() > still {
            let Some(id) = self.untaken.pop_front() else {
                break;
            };
            if let Some(Some(f)) = self.slots.get_mut(id as usize) {
                f.arrival_ps = Some(now);
            }
            self.stats.arrived(now);
        }
        if !self.untaken.is_empty() {
            ctx.notify_on_take(self.req);
        }
    }

    fn offer(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        loop {
            if self.in_flight >= self.pacing.outstanding {
                return;
            }
            if self.next.is_none() && !self.exhausted {
                self.next = self.stream.next_request();
                self.exhausted = self.next.is_none();
            }
            let Some(r) = self.next else {
                return;
            };
            let mut at = r.not_before_ps;
            if let Some(last) = self.last_offer_ps {
                at = at.max(last.saturating_add(self.pacing.interval_ps));
            }
            if at > now {
                if self.wake_at_ps != Some(at) {
                    self.wake_at_ps = Some(at);
                    ctx.wake_at(SimTime::from_ps(at), OFFER);
                }
                return;
            }
            if !ctx.can_send(self.req) {
                return;
            }
            let id = match self.free.last() {
                Some(&slot) => slot,
                None => self.slots.len() as u64,
            };
            let msg = MemReq {
                id,
                addr: r.addr,
                bytes: r.bytes,
                write: r.write,
                prefetch: false,
            };
            if ctx
                .try_send(self.req, Transaction::MemReq(Box::new(msg)))
                .is_err()
            {
                return;
            }
            self.next = None;
            self.issued += 1;
            self.first_issue_ps.get_or_insert(now);
            self.last_offer_ps = Some(now);
            let flight = Flight {
                write: r.write,
                bytes: r.bytes,
                issue_ps: now,
                arrival_ps: None,
            };
            if self.free.pop().is_some() {
                self.slots[id as usize] = Some(flight);
            } else {
                self.slots.push(Some(flight));
            }
            self.in_flight += 1;
            self.untaken.push_back(id);
            ctx.notify_on_take(self.req);
        }
    }

    fn receive(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        let now = ctx.now().as_ps();
        while let Some(msg) = ctx.try_recv(self.resp) {
            let Transaction::MemResp(r) = msg else {
                continue;
            };
            let Some(f) = self.slots.get_mut(r.id as usize).and_then(Option::take) else {
                continue;
            };
            self.free.push(r.id);
            self.in_flight -= 1;
            let lat = now - f.issue_ps;
            self.latency_sum_ps = self.latency_sum_ps.saturating_add(lat);
            self.latency_max_ps = self.latency_max_ps.max(lat);
            self.completed += 1;
            // A response before the take was seen (a memory answering at once): it arrived now.
            let arrival = f.arrival_ps.unwrap_or(now);
            self.stats.answered(f.write, f.bytes, arrival, now);
        }
    }
}

impl<S: RequestStream> Actor<Transaction> for Requester<S> {
    fn init(&mut self, ctx: &mut Ctx<'_, Transaction>) {
        self.offer(ctx);
        let _ = ctx.try_recv(self.resp); // arm the response notification
    }
    fn on_wake(&mut self, ctx: &mut Ctx<'_, Transaction>, _tag: u64) {
        self.wake_at_ps = None;
        self.note_takes(ctx);
        self.offer(ctx);
    }
    fn on_readable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.note_takes(ctx);
        self.receive(ctx);
        self.offer(ctx);
    }
    fn on_writable(&mut self, ctx: &mut Ctx<'_, Transaction>, _link: LinkId) {
        self.note_takes(ctx);
        self.offer(ctx);
    }
    fn pending_work(&self) -> Option<String> {
        let open = self.in_flight;
        (open > 0 || self.next.is_some()).then(|| {
            format!(
                "{open} requests not yet answered{}",
                if self.next.is_some() {
                    ", more waiting to be offered"
                } else {
                    ""
                }
            )
        })
    }
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        Some(self)
    }
    fn stats(&self) -> Vec<Stat> {
        let mut v = vec![
            ("issued", StatValue::U64(self.issued)),
            ("completed", StatValue::U64(self.completed)),
            (
                "first_issue_ps",
                StatValue::U64(self.first_issue_ps.unwrap_or(0)),
            ),
            ("last_resp_ps", StatValue::U64(self.stats.last_done_ps)),
            ("latency_sum_ps", StatValue::U64(self.latency_sum_ps)),
            ("latency_max_ps", StatValue::U64(self.latency_max_ps)),
        ];
        v.extend(self.stats.stats());
        v
    }
}
