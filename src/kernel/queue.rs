//! The event queue: events ordered by `(time, scheduling sequence)`.
//!
//! Two structures hold pending events:
//! - a binary min-heap for events in the future, keyed by `(time, seq)` (see
//!   [`EventQueue`] for its replace-top refinement);
//! - a FIFO for events scheduled *at the current time* (zero-delay hand-offs, the common
//!   case of a blocked module being woken), which skips the heap's `O(log n)`.
//!
//! The order is exactly `(time, seq)`: an event sitting in the heap with `time == now` was
//! scheduled before time reached `now`, so its sequence number is smaller than that of any
//! event in the FIFO (all pushed while `now` was current). [`EventQueue::pop`] therefore
//! drains heap events at `now` before the FIFO, and both in scheduling order.

/// What an event asks of its target actor.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A self-scheduled wake-up carrying the actor's tag.
    Wake(u64),
    /// Data became available on an input link (index) the actor was waiting on.
    Readable(u32),
    /// Space became available on an output link (index) the actor was blocked on.
    Writable(u32),
}

/// One event handed to the run loop.
#[derive(Copy, Clone, Debug)]
pub struct Event {
    /// Simulated time in ps.
    pub time: u64,
    /// Index of the target actor.
    pub target: u32,
    /// What to do.
    pub kind: EventKind,
}

/// Compact form of `(target, kind)`: 16 bytes, two whole words (`meta` = target in the low
/// 32 bits, kind code above: 0 wake, 1 readable, 2 writable; `arg` = tag or link index).
/// Whole-word fields matter: an entry assembled from narrower stores and then copied with one
/// 16-byte load stalls store forwarding, which once cost a fifth of the pipeline benchmark.
#[derive(Copy, Clone, Debug)]
struct Slot {
    meta: u64,
    arg: u64,
}

impl Slot {
    #[inline(always)]
    fn new(target: u32, kind: EventKind) -> Slot {
        let (code, arg) = match kind {
            EventKind::Wake(tag) => (0u64, tag),
            EventKind::Readable(l) => (1, u64::from(l)),
            EventKind::Writable(l) => (2, u64::from(l)),
        };
        Slot {
            meta: u64::from(target) | code << 32,
            arg,
        }
    }

    #[inline(always)]
    fn event(self, time: u64) -> Event {
        let kind = match self.meta >> 32 {
            0 => EventKind::Wake(self.arg),
            1 => EventKind::Readable(self.arg as u32),
            _ => EventKind::Writable(self.arg as u32),
        };
        Event {
            time,
            target: self.meta as u32,
            kind,
        }
    }
}

/// A future event in the heap: 32 bytes.
#[derive(Copy, Clone, Debug)]
struct Timed {
    time: u64,
    /// Scheduling sequence number: ties at equal time run in this order.
    seq: u64,
    meta: u64,
    arg: u64,
}

#[inline(always)]
fn key_of(time: u64, seq: u64) -> u128 {
    ((time as u128) << 64) | seq as u128
}

#[inline(always)]
fn key(e: &Timed) -> u128 {
    key_of(e.time, e.seq)
}

/// Pending events of one simulation.
///
/// The heap is a plain binary min-heap on `(time, seq)` with one refinement, *replace-top*:
/// the event being handled stays at the root until the next `pop`; if its handler schedules
/// a future event (a module starting its next service period, the common case), that event
/// replaces the root with one sift-down instead of a pop plus a push.
#[derive(Default)]
pub struct EventQueue {
    heap: Vec<Timed>,
    /// The root is the event being handled and is yet to be removed.
    root_stale: bool,
    /// Zero-delay events at `now`, taken from `fifo_head` on; both reset when drained.
    now_fifo: Vec<Slot>,
    fifo_head: usize,
    next_seq: u64,
    now: u64,
}

impl EventQueue {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Current time (the time of the last popped event), in ps.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// Schedules `kind` for `target` at `time` (ps, not before now).
    ///
    /// Always inlined: called out of line, `kind` travels through memory as two 4-byte
    /// stores read back as one 8-byte load, a store-forwarding stall (11 % of the pipeline
    /// benchmark).
    #[inline(always)]
    pub fn push(&mut self, time: u64, target: u32, kind: EventKind) {
        debug_assert!(time >= self.now, "event scheduled in the past");
        let slot = Slot::new(target, kind);
        if time == self.now {
            self.now_fifo.push(slot);
        } else {
            self.push_timed(time, slot);
        }
    }

    /// Schedules a future event (the heap path).
    #[inline]
    fn push_timed(&mut self, time: u64, slot: Slot) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if self.root_stale {
            // The root is the event being handled (time == now < time): overwrite it.
            self.root_stale = false;
            self.sift_down(time, seq, slot);
        } else {
            self.sift_up(time, seq, slot);
        }
    }

    /// Appends the event and moves it up to its place. The entry is written once, field by
    /// field, where it ends (see [`Slot`] on store forwarding).
    #[inline(always)]
    fn sift_up(&mut self, time: u64, seq: u64, slot: Slot) {
        let mut i = self.heap.len();
        self.heap.push(Timed {
            time,
            seq,
            meta: slot.meta,
            arg: slot.arg,
        });
        let end = i;
        let k = key_of(time, seq);
        while i > 0 {
            let parent = (i - 1) / 2;
            if key(&self.heap[parent]) <= k {
                break;
            }
            self.heap[i] = self.heap[parent];
            i = parent;
        }
        if i != end {
            self.put(i, time, seq, slot);
        }
    }

    #[inline(always)]
    fn put(&mut self, i: usize, time: u64, seq: u64, slot: Slot) {
        let e = &mut self.heap[i];
        e.time = time;
        e.seq = seq;
        e.meta = slot.meta;
        e.arg = slot.arg;
    }

    /// Puts the event at the root (overwriting it) and moves it down to its place.
    #[inline]
    fn sift_down(&mut self, time: u64, seq: u64, slot: Slot) {
        let n = self.heap.len();
        let mut i = 0;
        let k = key_of(time, seq);
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && key(&self.heap[right]) < key(&self.heap[left]) {
                right
            } else {
                left
            };
            if key(&self.heap[child]) >= k {
                break;
            }
            self.heap[i] = self.heap[child];
            i = child;
        }
        self.put(i, time, seq, slot);
    }

    /// Removes a stale root left by the previous `pop`.
    #[inline]
    fn settle(&mut self) {
        if self.root_stale {
            self.root_stale = false;
            let last = self.heap.pop();
            if let Some(last) = last
                && !self.heap.is_empty()
            {
                let slot = Slot {
                    meta: last.meta,
                    arg: last.arg,
                };
                self.sift_down(last.time, last.seq, slot);
            }
        }
    }

    /// Time of the next event without removing it.
    pub fn peek_time(&mut self) -> Option<u64> {
        self.settle();
        match self.heap.first() {
            Some(h) if h.time == self.now => Some(self.now),
            top => {
                if self.fifo_head == self.now_fifo.len() {
                    top.map(|h| h.time)
                } else {
                    Some(self.now)
                }
            }
        }
    }

    /// Removes the next event in `(time, seq)` order and advances the current time to it.
    #[inline]
    pub fn pop(&mut self) -> Option<Event> {
        self.settle();
        let fifo_empty = self.fifo_head == self.now_fifo.len();
        if let Some(&top) = self.heap.first()
            && (top.time == self.now || fifo_empty)
        {
            self.root_stale = true;
            self.now = top.time;
            let slot = Slot {
                meta: top.meta,
                arg: top.arg,
            };
            return Some(slot.event(top.time));
        }
        if fifo_empty {
            return None;
        }
        let slot = self.now_fifo[self.fifo_head];
        self.fifo_head += 1;
        if self.fifo_head == self.now_fifo.len() {
            self.now_fifo.clear();
            self.fifo_head = 0;
        }
        Some(slot.event(self.now))
    }

    /// Number of pending events.
    pub fn len(&self) -> usize {
        self.heap.len() - usize::from(self.root_stale) + self.now_fifo.len() - self.fifo_head
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tag(e: Event) -> u64 {
        match e.kind {
            EventKind::Wake(t) => t,
            _ => unreachable!(),
        }
    }

    #[test]
    fn equal_time_events_pop_in_scheduling_order() {
        let mut q = EventQueue::new();
        q.push(10, 0, EventKind::Wake(1));
        q.push(5, 0, EventKind::Wake(2));
        q.push(10, 0, EventKind::Wake(3));
        q.push(5, 0, EventKind::Wake(4));
        let order: Vec<u64> = std::iter::from_fn(|| q.pop()).map(tag).collect();
        assert_eq!(order, vec![2, 4, 1, 3]);
    }

    #[test]
    fn heap_events_at_now_precede_zero_delay_events_scheduled_later() {
        let mut q = EventQueue::new();
        q.push(10, 0, EventKind::Wake(1));
        q.push(10, 0, EventKind::Wake(2));
        let first = q.pop().unwrap();
        assert_eq!(tag(first), 1);
        // While handling event 1 at t=10, a zero-delay event is scheduled: it must run after
        // event 2, which was scheduled earlier for the same time.
        q.push(10, 0, EventKind::Wake(3));
        assert_eq!(tag(q.pop().unwrap()), 2);
        assert_eq!(tag(q.pop().unwrap()), 3);
        assert!(q.pop().is_none());
    }
}
