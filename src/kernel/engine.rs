//! The engine: owns actors, links and the event queue, and runs the simulation.
//!
//! The run loop pops events in `(time, seq)` order and hands each to its actor with a
//! [`Ctx`]. A run ends when no event is left: it succeeded if no actor reports pending work
//! and no link holds a transaction, and is a [`SimError::Deadlock`] otherwise. An event
//! later than the time limit ends the run with [`SimError::TimeLimit`]; one at or past the
//! end of simulated time ([`SimTime::HORIZON`]) with [`SimError::TimeOverflow`]. These
//! errors name the blocked modules and the full links.

use super::actor::{Actor, Stat};
use super::error::{BlockedModule, SimError, StuckState};
use super::link::{Link, LinkId, LinkSpec, LinkStats, Message};
use super::observer::{Observer, ProbeValue};
use super::queue::{EventKind, EventQueue};
use super::time::{Clock, Cycles, SimTime};

/// Index of an actor within a simulation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ActorId(pub u32);

const RX_IDLE: u8 = 0;
/// The receiver found the link empty; the next send schedules a `Readable`.
const RX_ARMED: u8 = 1;
/// A `Readable` is already scheduled.
const RX_SCHEDULED: u8 = 2;

/// Kernel state reachable from a [`Ctx`]: everything but the actors themselves.
pub struct Core<M> {
    queue: EventQueue,
    links: Vec<Link<M>>,
    specs: Vec<LinkSpec>,
    observer: Option<Box<dyn Observer<M>>>,
}

/// What an actor sees while it handles an event.
pub struct Ctx<'a, M> {
    core: &'a mut Core<M>,
    me: u32,
    clock: Clock,
}

impl<M: Message> Ctx<'_, M> {
    /// The current simulated time.
    #[inline]
    pub fn now(&self) -> SimTime {
        SimTime::from_ps(self.core.queue.now())
    }

    /// Time of the earliest event still pending for any actor (`None`: none). Nothing can
    /// reach this actor before it, so an actor may compute its own state up to (not
    /// including) that time without waking for each step.
    pub fn next_event_time(&mut self) -> Option<SimTime> {
        self.core.queue.peek_time().map(SimTime::from_ps)
    }

    /// This actor's clock domain.
    #[inline]
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// Whole cycles of this actor's clock elapsed so far.
    pub fn now_cycles(&self) -> Cycles {
        self.clock.cycles_at(self.now())
    }

    /// This actor's index.
    pub fn me(&self) -> ActorId {
        ActorId(self.me)
    }

    /// Schedules `on_wake(tag)` after `delay`.
    #[inline]
    pub fn wake_in(&mut self, delay: SimTime, tag: u64) {
        let t = self.core.queue.now().saturating_add(delay.as_ps());
        self.core.queue.push(t, self.me, EventKind::Wake(tag));
    }

    /// Schedules `on_wake(tag)` after `cycles` of this actor's clock.
    #[inline]
    pub fn wake_in_cycles(&mut self, cycles: Cycles, tag: u64) {
        let delay = self.clock.cycles(cycles);
        self.wake_in(delay, tag);
    }

    /// Schedules `on_wake(tag)` at time `t` (or now, if `t` is in the past).
    pub fn wake_at(&mut self, t: SimTime, tag: u64) {
        let t = t.as_ps().max(self.core.queue.now());
        self.core.queue.push(t, self.me, EventKind::Wake(tag));
    }

    /// Whether a send on `link` would succeed now. If not, this actor gets
    /// `on_writable(link)` when a slot frees.
    pub fn can_send(&mut self, link: LinkId) -> bool {
        let l = &mut self.core.links[link.0 as usize];
        if l.is_full() {
            l.tx_waiting = true;
            false
        } else {
            true
        }
    }

    /// Asks for `on_writable(link)` the next time the receiver takes a transaction from
    /// `link` (an output of this actor), whether or not the link is full: a sender that must
    /// know when its transactions are consumed (a buffer releasing a bank) uses it.
    pub fn notify_on_take(&mut self, link: LinkId) {
        let l = &mut self.core.links[link.0 as usize];
        debug_assert_eq!(l.src, self.me, "watch on a link this actor does not drive");
        if !l.queue.is_empty() {
            l.tx_waiting = true;
        }
    }

    /// Sends `msg` on `link` (an output of this actor). If the link is full the message is
    /// handed back and this actor gets `on_writable(link)` when a slot frees.
    #[inline(always)]
    pub fn try_send(&mut self, link: LinkId, msg: M) -> Result<(), M> {
        let now = self.core.queue.now();
        let idx = link.0 as usize;
        let l = &mut self.core.links[idx];
        debug_assert_eq!(l.src, self.me, "send on a link this actor does not drive");
        if l.is_full() {
            l.tx_waiting = true;
            l.stats.full_events += 1;
            return Err(msg);
        }
        // Sizes matter only to links of finite width (serialisation); skip the call otherwise.
        let visible_at = if l.has_width() {
            let bytes = msg.size_bytes();
            l.stats.bytes += bytes;
            l.arrival_time(now, bytes)
        } else {
            l.arrival_time(now, 0)
        };
        l.stats.sent += 1;
        if let Some(obs) = self.core.observer.as_mut() {
            obs.on_send(
                SimTime::from_ps(now),
                link,
                &msg,
                SimTime::from_ps(visible_at),
            );
        }
        let was_empty = l.queue.is_empty();
        l.queue.push_back((visible_at, msg));
        let occ = l.queue.len() as u32;
        if occ > l.stats.max_occupancy {
            l.stats.max_occupancy = occ;
        }
        if was_empty && l.rx_state == RX_ARMED {
            l.rx_state = RX_SCHEDULED;
            let dst = l.dst;
            self.core
                .queue
                .push(visible_at, dst, EventKind::Readable(link.0));
        }
        Ok(())
    }

    /// Takes the oldest visible transaction from `link` (an input of this actor). If there is
    /// none, this actor gets `on_readable(link)` when one becomes visible.
    #[inline(always)]
    pub fn try_recv(&mut self, link: LinkId) -> Option<M> {
        let now = self.core.queue.now();
        let idx = link.0 as usize;
        let l = &mut self.core.links[idx];
        debug_assert_eq!(l.dst, self.me, "receive on a link this actor does not read");
        match l.queue.front() {
            Some(&(visible_at, _)) if visible_at <= now => {
                let (_, msg) = l.queue.pop_front()?;
                if l.tx_waiting {
                    l.tx_waiting = false;
                    let src = l.src;
                    self.core.queue.push(now, src, EventKind::Writable(link.0));
                }
                if let Some(obs) = self.core.observer.as_mut() {
                    obs.on_recv(SimTime::from_ps(now), link, &msg);
                }
                Some(msg)
            }
            Some(&(visible_at, _)) => {
                if l.rx_state != RX_SCHEDULED {
                    l.rx_state = RX_SCHEDULED;
                    self.core
                        .queue
                        .push(visible_at, self.me, EventKind::Readable(link.0));
                }
                None
            }
            None => {
                if l.rx_state == RX_IDLE {
                    l.rx_state = RX_ARMED;
                }
                None
            }
        }
    }

    /// The oldest visible transaction on `link`, left in place. Arms `on_readable` like
    /// [`Ctx::try_recv`] when there is none.
    pub fn peek(&mut self, link: LinkId) -> Option<&M> {
        let now = self.core.queue.now();
        let idx = link.0 as usize;
        let l = &mut self.core.links[idx];
        let visible = match l.queue.front() {
            Some(&(visible_at, _)) if visible_at <= now => true,
            Some(&(visible_at, _)) => {
                if l.rx_state != RX_SCHEDULED {
                    l.rx_state = RX_SCHEDULED;
                    self.core
                        .queue
                        .push(visible_at, self.me, EventKind::Readable(link.0));
                }
                false
            }
            None => {
                if l.rx_state == RX_IDLE {
                    l.rx_state = RX_ARMED;
                }
                false
            }
        };
        if visible {
            self.core.links[idx].queue.front().map(|(_, m)| m)
        } else {
            None
        }
    }

    /// Transactions currently held by `link` (visible or in flight).
    pub fn occupancy(&self, link: LinkId) -> usize {
        self.core.links[link.0 as usize].queue.len()
    }

    /// Reports a change of one of this actor's observable signals (busy, current op, ...).
    /// Costs one branch when no observer is attached.
    #[inline]
    pub fn probe(&mut self, signal: &'static str, value: ProbeValue) {
        let now = self.now();
        if let Some(obs) = self.core.observer.as_mut() {
            obs.on_probe(now, ActorId(self.me), signal, value);
        }
    }

    /// Reports a change of signal number `index` of the family `signal` (e.g. `bank` 5).
    pub fn probe_indexed(&mut self, signal: &'static str, index: u32, value: ProbeValue) {
        let now = self.now();
        if let Some(obs) = self.core.observer.as_mut() {
            obs.on_probe_indexed(now, ActorId(self.me), signal, index, value);
        }
    }

    /// Whether an observer is attached (to skip building expensive probe values).
    pub fn observed(&self) -> bool {
        self.core.observer.is_some()
    }
}

/// What the run loop touches per event: 24 bytes (names live apart, in `names`).
struct Slot<M> {
    clock: Clock,
    actor: Box<dyn Actor<M>>,
}

/// How a successful run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunSummary {
    /// Time of the last event handled.
    pub end_time: SimTime,
    /// Events handled.
    pub events: u64,
}

/// A simulation: actors, the links between them, and the event queue.
pub struct Simulation<M> {
    actors: Vec<Slot<M>>,
    names: Vec<String>,
    core: Core<M>,
    time_limit: SimTime,
    events: u64,
    started: bool,
}

impl<M: Message> Default for Simulation<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Message> Simulation<M> {
    /// An empty simulation with no time limit.
    pub fn new() -> Self {
        Simulation {
            actors: Vec::new(),
            names: Vec::new(),
            core: Core {
                queue: EventQueue::new(),
                links: Vec::new(),
                specs: Vec::new(),
                observer: None,
            },
            time_limit: SimTime::MAX,
            events: 0,
            started: false,
        }
    }

    /// Adds an actor in clock domain `clock`; actors are initialised in this order.
    pub fn add_actor(
        &mut self,
        name: impl Into<String>,
        clock: Clock,
        actor: Box<dyn Actor<M>>,
    ) -> ActorId {
        self.names.push(name.into());
        self.actors.push(Slot { clock, actor });
        ActorId(self.actors.len() as u32 - 1)
    }

    /// Adds a link. `spec.src` and `spec.dst` are actor indices, which may be added later
    /// (actors need their link ids to be built); they are checked when the run starts.
    pub fn add_link(&mut self, spec: LinkSpec) -> LinkId {
        assert!(spec.depth >= 1, "link depth must be at least 1");
        self.core.links.push(Link::new(&spec));
        self.core.specs.push(spec);
        LinkId(self.core.links.len() as u32 - 1)
    }

    /// Ends the run with [`SimError::TimeLimit`] if an event falls after `limit`.
    pub fn set_time_limit(&mut self, limit: SimTime) {
        self.time_limit = limit;
    }

    /// Attaches an observer; it sees every send, receive and probe from now on.
    pub fn set_observer(&mut self, observer: Box<dyn Observer<M>>) {
        self.core.observer = Some(observer);
    }

    /// Detaches and returns the observer.
    pub fn take_observer(&mut self) -> Option<Box<dyn Observer<M>>> {
        self.core.observer.take()
    }

    /// Number of actors.
    pub fn actor_count(&self) -> usize {
        self.actors.len()
    }

    /// Name of actor `id`.
    pub fn actor_name(&self, id: ActorId) -> &str {
        &self.names[id.0 as usize]
    }

    /// Static description of every link, in creation order.
    pub fn link_specs(&self) -> impl Iterator<Item = &LinkSpec> {
        self.core.specs.iter()
    }

    /// Counters of link `id`.
    pub fn link_stats(&self, id: LinkId) -> &LinkStats {
        &self.core.links[id.0 as usize].stats
    }

    /// The concrete actor `id`, if it exposes itself (see [`Actor::as_any`]).
    pub fn actor_any(&self, id: ActorId) -> Option<&dyn std::any::Any> {
        self.actors[id.0 as usize].actor.as_any()
    }

    /// The concrete actor `id`, mutably, if it exposes itself (see [`Actor::as_any_mut`]).
    pub fn actor_any_mut(&mut self, id: ActorId) -> Option<&mut dyn std::any::Any> {
        self.actors[id.0 as usize].actor.as_any_mut()
    }

    /// Statistics of actor `id`.
    pub fn actor_stats(&self, id: ActorId) -> Vec<Stat> {
        self.actors[id.0 as usize].actor.stats()
    }

    /// Runs until no event is left, or an error.
    pub fn run(&mut self) -> Result<RunSummary, SimError> {
        let n = self.actors.len() as u32;
        if let Some(bad) = self.core.specs.iter().find(|l| l.src >= n || l.dst >= n) {
            return Err(SimError::BadWiring(format!(
                "link `{}` names an actor that does not exist",
                bad.name
            )));
        }
        if !self.started {
            self.started = true;
            if let Some(obs) = self.core.observer.as_mut() {
                obs.on_start(&self.names, &self.core.specs);
            }
            for (i, slot) in self.actors.iter_mut().enumerate() {
                let mut ctx = Ctx {
                    core: &mut self.core,
                    me: i as u32,
                    clock: slot.clock,
                };
                slot.actor.init(&mut ctx);
            }
        }
        // One comparison per event covers both the limit and the horizon.
        let limit = self.time_limit.as_ps().min(SimTime::HORIZON.as_ps() - 1);
        let mut last_time = self.core.queue.now();
        while let Some(ev) = self.core.queue.pop() {
            if ev.time > limit {
                let state = Box::new(self.stuck_state(SimTime::from_ps(last_time)));
                return Err(if ev.time > self.time_limit.as_ps() {
                    SimError::TimeLimit(state)
                } else {
                    SimError::TimeOverflow(state)
                });
            }
            last_time = ev.time;
            self.events += 1;
            let slot = &mut self.actors[ev.target as usize];
            let mut ctx = Ctx {
                core: &mut self.core,
                me: ev.target,
                clock: slot.clock,
            };
            match ev.kind {
                EventKind::Wake(tag) => slot.actor.on_wake(&mut ctx, tag),
                EventKind::Readable(link) => {
                    ctx.core.links[link as usize].rx_state = RX_IDLE;
                    slot.actor.on_readable(&mut ctx, LinkId(link));
                }
                EventKind::Writable(link) => slot.actor.on_writable(&mut ctx, LinkId(link)),
            }
        }
        let state = self.stuck_state(SimTime::from_ps(last_time));
        if state.blocked.is_empty() && state.undelivered.is_empty() {
            Ok(RunSummary {
                end_time: SimTime::from_ps(last_time),
                events: self.events,
            })
        } else {
            Err(SimError::Deadlock(Box::new(state)))
        }
    }

    /// Who is blocked on what, for error messages.
    fn stuck_state(&self, time: SimTime) -> StuckState {
        let mut blocked = Vec::new();
        for (i, (slot, name)) in self.actors.iter().zip(&self.names).enumerate() {
            let mut reasons: Vec<String> = slot.actor.pending_work().into_iter().collect();
            for (l, spec) in self.core.links.iter().zip(&self.core.specs) {
                if l.src == i as u32 && l.tx_waiting {
                    reasons.push(format!("blocked sending on `{}`", spec.name));
                }
            }
            if !reasons.is_empty() {
                blocked.push(BlockedModule {
                    module: name.clone(),
                    reason: reasons.join("; "),
                });
            }
        }
        let links = || self.core.links.iter().zip(&self.core.specs);
        let full_links = links()
            .filter(|(l, _)| l.is_full())
            .map(|(l, s)| format!("{} ({}/{})", s.name, l.queue.len(), s.depth))
            .collect();
        let undelivered = links()
            .filter(|(l, _)| !l.queue.is_empty())
            .map(|(l, s)| format!("{} ({} waiting)", s.name, l.queue.len()))
            .collect();
        StuckState {
            time,
            blocked,
            full_links,
            undelivered,
        }
    }
}
