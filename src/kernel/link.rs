//! Links: bounded, timed channels from one actor's output port to another's input port.
//!
//! A link has
//! - a **depth** `D` (transactions it holds, counting those still in flight): a send into a
//!   full link fails and the sender is told, in simulated time, when a slot frees (like a full
//!   `sc_fifo`); blocking and unblocking cost no simulated time;
//! - a **latency** `lat` (cycles of the sender's clock) before a sent transaction is visible;
//! - a **width** `W` (bytes per sender cycle, 0 = unlimited): a transaction of `B` bytes
//!   occupies the link for `ceil(B / W)` cycles, and transactions on one link serialise.
//!
//! Timing of a send at time `t` (`P` = sender clock period):
//! `start = max(t, busy_until)`, `busy_until = start + ceil(B/W)*P`,
//! `visible_at = busy_until + lat*P` (with `W = 0`: `visible_at = t + lat*P`).

use std::collections::VecDeque;

use super::time::SimTime;

/// Index of a link within a simulation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkId(pub u32);

/// What a transaction must tell the kernel about itself.
pub trait Message {
    /// Size on the wire in bytes (used by links with a finite width).
    fn size_bytes(&self) -> u64;
}

/// Static description of a link, given when it is created.
#[derive(Clone, Debug)]
pub struct LinkSpec {
    /// Human-readable name, e.g. `s0.out -> F1 -> s1.in`.
    pub name: String,
    /// Sending actor index.
    pub src: u32,
    /// Receiving actor index.
    pub dst: u32,
    /// Capacity in transactions (>= 1).
    pub depth: u32,
    /// Latency in sender cycles.
    pub latency_cycles: u64,
    /// Bytes per sender cycle; 0 means unlimited.
    pub width_bytes: u64,
    /// Sender clock period.
    pub period: SimTime,
}

/// Counters of one link, for reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Transactions sent.
    pub sent: u64,
    /// Bytes sent (counted on links of finite width only).
    pub bytes: u64,
    /// Highest occupancy seen.
    pub max_occupancy: u32,
    /// Failed sends (the sender found the link full).
    pub full_events: u64,
}

/// Run-time state of a link: only what the hot path touches, kept in one small record
/// (the name and other cold fields stay in [`LinkSpec`], stored apart).
pub(crate) struct Link<M> {
    pub queue: VecDeque<(u64, M)>,
    pub depth: usize,
    pub src: u32,
    pub dst: u32,
    pub busy_until_ps: u64,
    latency_ps: u64,
    width_bytes: u64,
    period_ps: u64,
    /// The sender found the link full and waits for a slot.
    pub tx_waiting: bool,
    /// Receiver notification state (see `engine`).
    pub rx_state: u8,
    pub stats: LinkStats,
}

impl<M: Message> Link<M> {
    pub fn new(spec: &LinkSpec) -> Self {
        Link {
            queue: VecDeque::with_capacity(spec.depth.min(1024) as usize),
            depth: spec.depth as usize,
            src: spec.src,
            dst: spec.dst,
            busy_until_ps: 0,
            latency_ps: spec.latency_cycles.saturating_mul(spec.period.as_ps()),
            width_bytes: spec.width_bytes,
            period_ps: spec.period.as_ps(),
            tx_waiting: false,
            rx_state: 0,
            stats: LinkStats::default(),
        }
    }

    /// Whether the link serialises by size (finite width).
    #[inline]
    pub fn has_width(&self) -> bool {
        self.width_bytes != 0
    }

    #[inline]
    pub fn is_full(&self) -> bool {
        self.queue.len() >= self.depth
    }

    /// Time (ps) at which a transaction of `bytes` sent at `now` becomes visible; updates
    /// the serialisation state.
    #[inline]
    pub fn arrival_time(&mut self, now: u64, bytes: u64) -> u64 {
        // Saturating: a time past the horizon ends the run (see `time`), never wraps.
        if self.width_bytes == 0 {
            return now.saturating_add(self.latency_ps);
        }
        let start = now.max(self.busy_until_ps);
        let beats = bytes.div_ceil(self.width_bytes);
        self.busy_until_ps = start.saturating_add(beats.saturating_mul(self.period_ps));
        self.busy_until_ps.saturating_add(self.latency_ps)
    }
}
