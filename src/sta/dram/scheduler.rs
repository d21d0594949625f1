//! The command scheduler of one DRAM channel: per-bank read and write queues, write drain
//! between watermarks, and FR-FCFS command selection, event-driven.
//!
//! # Queues
//! Bursts wait in the channel's read queue or write queue (depths set by the front end),
//! each kept as per-bank queues in arrival order. The channel serves one direction at a
//! time: reads, until `write_high` writes wait (or no demand read does); then writes until
//! no more than `write_low` wait (while demand reads wait).
//!
//! # Selection (each DRAM clock edge)
//! Each bank with bursts of the served direction offers one command: a column command for
//! its oldest burst to the open row (a row hit); else, with another row open and no hit
//! waiting, a PRE; else (closed) an ACT for its oldest burst. Demand bursts count as older
//! than any prefetch burst. Of the commands whose every constraint (see `device.rs`) is met
//! at the edge, the scheduler issues the oldest row hit, else the oldest command; one
//! command per edge (the command bus). `fcfs` drops the row-hit preference and the
//! reordering within a bank (each bank offers its oldest burst's command).
//!
//! # Event-driven
//! The offered commands and their earliest legal times are recomputed only when the state
//! changed (a command issued, a burst arrived, a refresh, a direction switch). When nothing
//! is legal at an edge, the next decision is at the first edge at which the earliest offered
//! command becomes legal: idle and waiting stretches cost nothing. A bank's command choice
//! is kept across arrivals too (a new burst is the youngest, so it takes the choice only as
//! the first row hit or the first demand burst of its class), and an arrival that leaves
//! the choice as it was leaves the offers and the next decision alone. A column command
//! keeps the other direction's choice of its bank (the row stays open).
//!
//! The command choices (`core*`) and `push` are inlined into their callers: a choice or a
//! burst built field by field and returned through a stack slot is read back whole, and a
//! wide read of narrower stores just made waits for them to land (about a tenth of a
//! default run's time before they were inlined).
//!
//! # Page policy
//! `open`: rows stay open until a conflict or refresh. `close`: a column command with no
//! other burst to its row waiting closes the bank at its earliest PRE (auto-precharge).

use super::device::{At, CLOSED, Device};
use super::offers::{COL, Cmd, Offer, Offers, ROW};
use super::ring::Ring;

/// One burst waiting in a queue.
#[derive(Copy, Clone, Debug)]
pub struct Burst {
    /// Front-end request slot.
    pub slot: u32,
    /// Admission order (age).
    pub seq: u64,
    /// Row.
    pub row: u32,
    /// Bank within the channel.
    pub bank: u32,
    /// Write (else read).
    pub write: bool,
    /// Of a prefetch request (served after demand bursts).
    pub prefetch: bool,
}

/// What a bank's last ACT/PRE was for: the next column command there counts as a miss or
/// conflict.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Opened {
    Hit,
    Miss,
    Conflict,
}

/// A bank's choice of command, kept until its queue or open row changes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
struct Core {
    cmd: Cmd,
    key: u64,
}

/// Statistics of one channel.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Read bursts.
    pub reads: u64,
    /// Write bursts.
    pub writes: u64,
    /// Column commands to an already open row.
    pub row_hits: u64,
    /// Column commands that needed an ACT of a closed bank.
    pub row_misses: u64,
    /// Column commands that needed a PRE of another row first.
    pub row_conflicts: u64,
    /// ACT commands.
    pub activates: u64,
    /// PRE commands (explicit and auto-precharge; refresh's not counted).
    pub precharges: u64,
    /// All-bank refreshes.
    pub refreshes: u64,
    /// Data-bus busy time, tCK.
    pub busy_cycles: u64,
}

/// A column command the scheduler issued: what the front end books of it.
#[derive(Copy, Clone, Debug)]
pub struct Issued {
    /// The burst's front-end request slot.
    pub slot: u32,
    /// The burst's admission order.
    pub seq: u64,
    /// A write (else a read).
    pub write: bool,
    /// End of its data burst, tCK.
    pub done: u64,
}

/// Scheduling options.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Row hits first (FR-FCFS) or strictly oldest first.
    pub fr_fcfs: bool,
    /// Close-page (auto-precharge when no hit waits).
    pub close_page: bool,
    /// Waiting writes that start a drain.
    pub write_high: usize,
    /// Waiting writes at which a drain stops.
    pub write_low: usize,
}

/// Bank-state changes for traces: (time tCK, bank within the channel, open row or -1).
pub type Notes = Vec<(u64, u32, i64)>;

/// One bank's queues and scheduling state.
struct BankQueues {
    /// Read queue, write queue.
    queues: [Ring<Burst>; 2],
    /// Per direction: its command choice, `None` when stale.
    cores: [Option<Core>; 2],
    opened: Opened,
}

/// One channel: device state, queues and the scheduler.
pub struct Channel {
    /// Banks, ranks, bus.
    pub dev: Device,
    policy: Policy,
    /// Per bank: its queues and command choices.
    per_bank: Vec<BankQueues>,
    /// Banks with a non-empty queue, per direction.
    active: [Vec<u32>; 2],
    /// Queued demand reads, prefetch reads, writes.
    pub demand_reads: usize,
    /// Queued prefetch reads.
    pub prefetch_reads: usize,
    /// Queued writes.
    pub writes: usize,
    write_mode: bool,
    /// Earliest edge for the next command (command bus).
    cmd_free: u64,
    /// Next decision edge (u64::MAX: nothing to do).
    pub next_tick: u64,
    /// Latest arrival since the last decision, ps.
    arrived: u64,
    /// Earliest legal time of the offers bursts arriving since `settle` changed.
    arrived_min: u64,
    offers: Offers,
    /// The offers are stale.
    dirty: bool,
    /// Direction the offers were made for.
    offered_write: bool,
    /// Statistics.
    pub stats: Stats,
}

impl Channel {
    /// An idle channel.
    pub fn new(dev: Device, policy: Policy) -> Channel {
        let n = dev.banks.len();
        Channel {
            dev,
            policy,
            per_bank: (0..n)
                .map(|_| BankQueues {
                    queues: [Ring::default(), Ring::default()],
                    cores: [None, None],
                    opened: Opened::Hit,
                })
                .collect(),
            active: [Vec::new(), Vec::new()],
            demand_reads: 0,
            prefetch_reads: 0,
            writes: 0,
            write_mode: false,
            cmd_free: 0,
            next_tick: u64::MAX,
            arrived: 0,
            arrived_min: u64::MAX,
            offers: Offers::new(n),
            dirty: true,
            offered_write: false,
            stats: Stats::default(),
        }
    }

    /// Queued reads (demand and prefetch).
    pub fn reads(&self) -> usize {
        self.demand_reads + self.prefetch_reads
    }

    /// Queues `b`, arrived at edge `now` (tCK; all times here count tCK from 0).
    #[inline(always)]
    pub fn push(&mut self, b: Burst, now: u64) {
        let d = usize::from(b.write);
        let q = &mut self.per_bank[b.bank as usize].queues[d];
        if q.is_empty() {
            self.active[d].push(b.bank);
        }
        q.push_back(b);
        let i = q.len() - 1;
        // The bank's command is kept unless `b` takes its place. An offer whose command
        // stays is still right (the device did not change), and `next_tick` already counts
        // its earliest time, so only a changed command needs a new offer.
        let mut changed = true;
        if let Some(c) = self.per_bank[b.bank as usize].cores[d] {
            let kept = self.core_after_push(c, &b, i);
            debug_assert_eq!(kept, self.core(b.bank, b.write), "core kept after a push");
            changed = kept != c;
            self.per_bank[b.bank as usize].cores[d] = Some(kept);
        }
        match (b.write, b.prefetch) {
            (true, _) => self.writes += 1,
            (false, false) => self.demand_reads += 1,
            (false, true) => self.prefetch_reads += 1,
        }
        self.arrived = self.arrived.max(now);
        if changed && !self.dirty && b.write == self.offered_write {
            // Only this bank's offer can change.
            let e = self.offer_bank(b.bank, b.write);
            self.arrived_min = self.arrived_min.min(e);
        }
    }

    /// After bursts arrived: brings the offers and the next decision edge up to date.
    pub fn settle(&mut self) {
        let write = self.serve_writes();
        let from = self.arrived;
        if self.dirty || write != self.offered_write {
            let e = self.make_offers(write);
            self.set_next(e, from);
        } else if self.arrived_min != u64::MAX {
            let at = self.arrived_min.max(self.cmd_free).max(from);
            self.next_tick = self.next_tick.min(at);
        }
        self.arrived_min = u64::MAX;
    }

    /// Recomputes bank `bank`'s offer for direction `write` (the offered one); returns its
    /// earliest legal time.
    fn offer_bank(&mut self, bank: u32, write: bool) -> u64 {
        let o = self.offer(bank, write);
        self.offers.set(o);
        o.earliest
    }

    /// Sets `next_tick`: the first edge not before `from` or the command bus at which an
    /// offer is legal, given `earliest`, the offers' earliest legal time (`u64::MAX`: no
    /// offer).
    fn set_next(&mut self, earliest: u64, from: u64) {
        self.next_tick = match earliest {
            u64::MAX => u64::MAX,
            e => e.max(self.cmd_free).max(from),
        };
    }

    /// The offers' earliest legal time (`u64::MAX`: no offer).
    fn earliest_offer(&mut self) -> u64 {
        self.offers.earliest()
    }

    /// Whether writes are served now (updating the drain state).
    fn serve_writes(&mut self) -> bool {
        let p = &self.policy;
        self.write_mode = if self.write_mode {
            self.writes > p.write_low || self.demand_reads == 0
        } else {
            self.writes >= p.write_high || self.demand_reads == 0
        };
        self.write_mode && self.writes > 0
    }

    /// The oldest burst of `q` (demand before prefetch) matching `f`.
    fn oldest(q: &Ring<Burst>, f: impl Fn(&Burst) -> bool) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, b) in q.iter().enumerate() {
            if f(b) {
                if !b.prefetch {
                    return Some(i);
                }
                best.get_or_insert(i);
            }
        }
        best
    }

    fn key(b: &Burst, hit: bool) -> u64 {
        (u64::from(b.prefetch) << 63) | (u64::from(!hit) << 62) | b.seq
    }

    /// The command bank `bank` offers for direction `write` (its queue is not empty).
    #[inline(always)]
    fn core(&self, bank: u32, write: bool) -> Core {
        let d = usize::from(write);
        let q = &self.per_bank[bank as usize].queues[d];
        let open = self.dev.banks[bank as usize].open_row;
        let row_cmd = if open == CLOSED { Cmd::Act } else { Cmd::Pre };
        if self.policy.fr_fcfs {
            let hit = if open == CLOSED {
                None
            } else {
                Self::oldest(q, |b| b.row == open)
            };
            match hit {
                Some(i) => Core {
                    cmd: Cmd::Col(i as u32),
                    key: Self::key(&q[i], true),
                },
                None => {
                    let i = Self::oldest(q, |_| true).unwrap_or(0);
                    Core {
                        cmd: row_cmd,
                        key: Self::key(&q[i], false),
                    }
                }
            }
        } else {
            let i = Self::oldest(q, |_| true).unwrap_or(0);
            Core {
                cmd: if q[i].row == open {
                    Cmd::Col(i as u32)
                } else {
                    row_cmd
                },
                key: Self::key(&q[i], false),
            }
        }
    }

    /// [`Channel::core`] after `b` joined the back of its bank's queue (at index `i`), from
    /// the choice before (`old`). `b` is the youngest burst, so it is chosen only where it
    /// is the first of a better class: the first row hit (FR-FCFS, no hit waited), or a
    /// demand burst where only prefetch bursts of its class waited (the key's top bit).
    #[inline(always)]
    fn core_after_push(&self, old: Core, b: &Burst, i: usize) -> Core {
        let open = self.dev.banks[b.bank as usize].open_row;
        let hit = open != CLOSED && b.row == open;
        let old_prefetch = old.key >> 63 == 1;
        let demand_first = old_prefetch && !b.prefetch;
        let col = Core {
            cmd: Cmd::Col(i as u32),
            key: Self::key(b, self.policy.fr_fcfs),
        };
        match old.cmd {
            Cmd::Col(_) if self.policy.fr_fcfs => {
                if hit && demand_first {
                    col
                } else {
                    old
                }
            }
            _ if self.policy.fr_fcfs && hit => col,
            _ if demand_first => {
                if hit {
                    col
                } else {
                    Core {
                        cmd: if open == CLOSED { Cmd::Act } else { Cmd::Pre },
                        key: Self::key(b, false),
                    }
                }
            }
            _ => old,
        }
    }

    /// [`Channel::core`] (FR-FCFS, open page) of a bank whose row hit at index `i` just
    /// issued (and left the queue; `prefetch`: it was a prefetch burst), without a scan of
    /// the whole queue in the common case. The issued burst was the oldest hit of its class:
    /// no demand hit sat before `i`, and when it was a prefetch, no demand hit anywhere and
    /// no prefetch hit before `i`. So the next demand hit, if any, is the first at or after
    /// `i`; else the oldest prefetch hit: before `i` (only after a demand burst), else the
    /// first after. With no hit left, the full rule picks the row command.
    #[inline(always)]
    fn core_after_col(&self, bank: u32, write: bool, i: usize, prefetch: bool) -> Core {
        let q = &self.per_bank[bank as usize].queues[usize::from(write)];
        let open = self.dev.banks[bank as usize].open_row;
        // Most often the burst after the issued one is the next demand hit.
        if let Some(b) = q.get(i)
            && b.row == open
            && !b.prefetch
        {
            return Core {
                cmd: Cmd::Col(i as u32),
                key: Self::key(b, true),
            };
        }
        let mut first_prefetch = None;
        for (j, b) in q.iter_from(i) {
            if b.row == open {
                if !b.prefetch {
                    return Core {
                        cmd: Cmd::Col(j as u32),
                        key: Self::key(b, true),
                    };
                }
                first_prefetch.get_or_insert(j);
            }
        }
        let earlier = if prefetch {
            None
        } else {
            (0..i.min(q.len())).find(|&j| q[j].row == open)
        };
        match earlier.or(first_prefetch) {
            Some(j) => Core {
                cmd: Cmd::Col(j as u32),
                key: Self::key(&q[j], true),
            },
            None => self.core(bank, write),
        }
    }

    /// Bank `bank`'s offer for direction `write`: its command (kept while its queue and row
    /// stay) and the command's earliest legal time.
    fn offer(&mut self, bank: u32, write: bool) -> Offer {
        let d = usize::from(write);
        let core = match self.per_bank[bank as usize].cores[d] {
            Some(c) => {
                debug_assert_eq!(c, self.core(bank, write), "kept command of bank {bank}");
                c
            }
            None => {
                let c = self.core(bank, write);
                self.per_bank[bank as usize].cores[d] = Some(c);
                c
            }
        };
        let a = self.dev.at(bank as usize);
        let (earliest, floor) = match core.cmd {
            Cmd::Act => (self.dev.earliest_act(a), 0),
            Cmd::Pre => (self.dev.earliest_pre(a), 0),
            Cmd::Col(_) => {
                let floor = self.dev.col_floor(a, write);
                let bus = self.dev.col_bus(write);
                (self.dev.earliest_col_in(&bus, a, floor), floor)
            }
        };
        Offer {
            bank,
            cmd: core.cmd,
            key: core.key,
            earliest,
            rank: a.rank as u32,
            group: a.group as u32,
            floor,
        }
    }

    /// Recomputes every bank's offer for direction `write`; returns their earliest legal
    /// time.
    fn make_offers(&mut self, write: bool) -> u64 {
        let d = usize::from(write);
        self.offers.clear();
        for k in 0..self.active[d].len() {
            let o = self.offer(self.active[d][k], write);
            self.offers.set(o);
        }
        self.dirty = false;
        self.offered_write = write;
        self.offers.earliest()
    }

    /// After offer `issued` issued, with the direction unchanged: recomputes only the offers
    /// its command can move (see `device.rs`): its own bank's (dropped when its queue
    /// emptied; after a row hit followed by another, only its command and key change, as
    /// the bank's own bound stays); after a column command, every column offer (the data bus and the rank and
    /// bank-group column spacing); after an ACT, the ACT offers of its rank (tRRD, tFAW).
    /// A PRE moves only its own bank. The other banks keep their queues and rows, so their
    /// commands and keys stay. Returns the offers' earliest legal time.
    fn update_offers(&mut self, issued: Offer, write: bool) -> u64 {
        let x = issued.bank;
        let d = usize::from(write);
        let next_col = match (issued.cmd, self.per_bank[x as usize].cores[d]) {
            (Cmd::Col(_), Some(c)) if matches!(c.cmd, Cmd::Col(_)) => Some(c),
            _ => None,
        };
        if self.per_bank[x as usize].queues[d].is_empty() {
            self.offers.remove(x);
        } else if let Some(c) = next_col {
            // Another row hit after a row hit: the same list and the bank's own bound (no
            // ACT), its earliest time set with the other column offers' below.
            self.offers.rekey(x, c.cmd, c.key);
        } else {
            let o = self.offer(x, write);
            self.offers.set(o);
        }
        let dev = &self.dev;
        match issued.cmd {
            Cmd::Col(_) => {
                let bus = dev.col_bus(write);
                self.offers.update(COL, |o| {
                    let a = At {
                        bank: o.bank as usize,
                        rank: o.rank as usize,
                        group: o.group as usize,
                    };
                    Some(dev.earliest_col_in(&bus, a, o.floor))
                })
            }
            Cmd::Act => {
                let rank = dev.at(x as usize).rank;
                self.offers.update(ROW, |o| {
                    let a = dev.at(o.bank as usize);
                    (o.bank != x && o.cmd == Cmd::Act && a.rank == rank)
                        .then(|| dev.earliest_act(a))
                });
            }
            Cmd::Pre => {}
        }
        self.offers.earliest()
    }

    /// Debug builds: the offers equal a full recomputation (in any order).
    #[cfg(debug_assertions)]
    fn check_offers(&mut self) {
        let key = |o: &Offer| (o.bank, o.key, o.earliest, format!("{:?}", o.cmd));
        let mut have: Vec<_> = self.offers.iter().map(key).collect();
        let kept = std::mem::replace(&mut self.offers, Offers::new(self.per_bank.len()));
        let write = self.offered_write;
        self.make_offers(write);
        let mut want: Vec<_> = self.offers.iter().map(key).collect();
        self.offers = kept;
        have.sort();
        want.sort();
        assert_eq!(
            have, want,
            "incrementally updated offers differ from a full recomputation"
        );
    }

    /// Decides at edge `t` (tCK, `t == self.next_tick`): applies due refreshes, issues at most one
    /// command, and sets `next_tick`. Returns the column command issued, if any.
    pub fn decide(&mut self, t: u64, notes: Option<&mut Notes>) -> Option<Issued> {
        let mut notes = notes;
        if self.dev.next_refresh() <= t {
            let n = self.dev.refresh_due(t, |at, bank| {
                if let Some(v) = notes.as_deref_mut() {
                    v.push((at, bank as u32, -1));
                }
            });
            self.stats.refreshes += n;
            for b in &mut self.per_bank {
                b.cores = [None, None];
            }
            self.dirty = true;
        }
        let write = self.serve_writes();
        if self.reads() + self.writes == 0 {
            self.next_tick = u64::MAX;
            return None;
        }
        let remade = (self.dirty || write != self.offered_write).then(|| self.make_offers(write));
        let best = self.offers.best(t);
        let issued = best.and_then(|o| self.issue(o, t, write, notes));
        let earliest = match best {
            Some(o) => {
                self.cmd_free = t + 1;
                let e = if self.serve_writes() == write {
                    self.update_offers(o, write)
                } else {
                    self.make_offers(!write)
                };
                #[cfg(debug_assertions)]
                self.check_offers();
                e
            }
            None => remade.unwrap_or_else(|| self.earliest_offer()),
        };
        debug_assert_eq!(earliest, self.earliest_offer(), "earliest offer kept");
        self.set_next(earliest, t + 1);
        issued
    }

    fn issue(
        &mut self,
        o: Offer,
        t: u64,
        write: bool,
        notes: Option<&mut Notes>,
    ) -> Option<Issued> {
        let bank = o.bank as usize;
        let a = self.dev.at(bank);
        let d = usize::from(write);
        // An ACT or PRE changes the open row, which both directions' commands depend on; a
        // column command changes only its own queue (and the row, when it auto-precharges).
        self.per_bank[bank].cores[d] = None;
        if !matches!(o.cmd, Cmd::Col(_)) || self.policy.close_page {
            self.per_bank[bank].cores = [None, None];
        }
        match o.cmd {
            Cmd::Act => {
                let q = &self.per_bank[bank].queues[d];
                let row = q[Self::oldest(q, |_| true).unwrap_or(0)].row;
                self.dev.act(a, row, t);
                if self.per_bank[bank].opened == Opened::Hit {
                    self.per_bank[bank].opened = Opened::Miss;
                }
                self.stats.activates += 1;
                if let Some(v) = notes {
                    v.push((t, o.bank, i64::from(row)));
                }
                None
            }
            Cmd::Pre => {
                self.dev.pre(a, t);
                self.per_bank[bank].opened = Opened::Conflict;
                self.stats.precharges += 1;
                if let Some(v) = notes {
                    v.push((t, o.bank, -1));
                }
                None
            }
            Cmd::Col(i) => {
                let q = &mut self.per_bank[bank].queues[d];
                let b = q.remove(i as usize)?;
                if self.per_bank[bank].queues[d].is_empty() {
                    if let Some(k) = self.active[d].iter().position(|&x| x == o.bank) {
                        self.active[d].swap_remove(k);
                    }
                } else if self.policy.fr_fcfs && !self.policy.close_page {
                    let next = self.core_after_col(o.bank, write, i as usize, b.prefetch);
                    debug_assert_eq!(next, self.core(o.bank, write), "core after a column");
                    self.per_bank[bank].cores[d] = Some(next);
                }
                match (b.write, b.prefetch) {
                    (true, _) => self.writes -= 1,
                    (false, false) => self.demand_reads -= 1,
                    (false, true) => self.prefetch_reads -= 1,
                }
                let done = self.dev.col(a, write, t);
                let s = &mut self.stats;
                match std::mem::replace(&mut self.per_bank[bank].opened, Opened::Hit) {
                    Opened::Hit => s.row_hits += 1,
                    Opened::Miss => s.row_misses += 1,
                    Opened::Conflict => s.row_conflicts += 1,
                }
                if write {
                    s.writes += 1;
                } else {
                    s.reads += 1;
                }
                s.busy_cycles += self.dev.t.burst;
                if self.policy.close_page {
                    let row = b.row;
                    let pending = self.per_bank[bank]
                        .queues
                        .iter()
                        .any(|q| q.iter().any(|w| w.row == row));
                    if !pending {
                        let at = self.dev.earliest_pre(a);
                        self.dev.pre(a, at);
                        self.stats.precharges += 1;
                        if let Some(v) = notes {
                            v.push((at, o.bank, -1));
                        }
                    }
                }
                Some(Issued {
                    slot: b.slot,
                    seq: b.seq,
                    write: b.write,
                    done,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::device::Timing;
    use super::super::standards::DDR4_2400;
    use super::*;

    fn channel(write_high: usize, write_low: usize) -> Channel {
        let dev = Device::new(Timing::of(&DDR4_2400), 1, 4, 4, false, false);
        Channel::new(
            dev,
            Policy {
                fr_fcfs: true,
                close_page: false,
                write_high,
                write_low,
            },
        )
    }

    fn burst(seq: u64, bank: u32, row: u32, write: bool) -> Burst {
        Burst {
            slot: seq as u32,
            seq,
            row,
            bank,
            write,
            prefetch: false,
        }
    }

    /// Runs the channel dry; returns the bursts in the order their column commands issued.
    fn drain(ch: &mut Channel) -> Vec<u64> {
        ch.settle();
        let mut order = Vec::new();
        while ch.next_tick != u64::MAX {
            if let Some(i) = ch.decide(ch.next_tick, None) {
                order.push(i.seq);
            }
        }
        order
    }

    #[test]
    fn reads_go_first_until_writes_reach_the_high_watermark() {
        let mut ch = channel(3, 1);
        ch.push(burst(0, 0, 0, true), 0);
        ch.push(burst(1, 1, 0, false), 0);
        ch.push(burst(2, 2, 0, true), 0);
        // Two writes wait (below 3): the younger read goes first.
        assert_eq!(drain(&mut ch), vec![1, 0, 2]);
        let mut ch = channel(2, 1);
        ch.push(burst(0, 0, 0, true), 0);
        ch.push(burst(1, 1, 0, false), 0);
        ch.push(burst(2, 2, 0, true), 0);
        // Two writes reach the watermark: drain down to 1 first, then the read.
        assert_eq!(drain(&mut ch), vec![0, 1, 2]);
    }

    #[test]
    fn an_open_row_hit_overtakes_an_older_burst_to_another_row() {
        let mut ch = channel(8, 2);
        ch.push(burst(0, 0, 5, false), 0);
        assert_eq!(drain(&mut ch), vec![0]);
        // Row 5 of bank 0 is open: the younger hit goes before the older conflict.
        ch.push(burst(1, 0, 6, false), 100);
        ch.push(burst(2, 0, 5, false), 100);
        assert_eq!(drain(&mut ch), vec![2, 1]);
        assert_eq!(ch.stats.row_hits, 1);
        assert_eq!(ch.stats.row_conflicts, 1);
        assert_eq!(ch.stats.row_misses, 1);
    }

    #[test]
    fn a_command_choice_kept_across_pushes_equals_a_rescan_of_the_queue() {
        // Random bursts (few banks and rows, so hits, conflicts and prefetch/demand mixes
        // are common) pushed between decisions; after every push into a bank whose choice
        // was kept, it must equal `core`'s scan of the whole queue. Both policies.
        let rounds = if cfg!(debug_assertions) {
            3_000
        } else {
            30_000
        };
        for fr_fcfs in [true, false] {
            let mut ch = channel(6, 2);
            ch.policy.fr_fcfs = fr_fcfs;
            let mut rng = crate::rng::SplitMix64::new(7);
            let (mut seq, mut checked) = (0, 0);
            for _ in 0..rounds {
                if rng.below(3) == 0 && ch.next_tick != u64::MAX {
                    ch.decide(ch.next_tick, None);
                    continue;
                }
                let mut b = burst(seq, rng.below(4) as u32, rng.below(3) as u32, false);
                b.write = rng.below(4) == 0;
                b.prefetch = !b.write && rng.below(3) == 0;
                seq += 1;
                let kept = ch.per_bank[b.bank as usize].cores[usize::from(b.write)].is_some();
                ch.push(b, ch.next_tick.min(seq));
                if kept {
                    let have = ch.per_bank[b.bank as usize].cores[usize::from(b.write)];
                    assert_eq!(have, Some(ch.core(b.bank, b.write)), "after burst {seq}");
                    checked += 1;
                }
                ch.settle();
            }
            assert!(checked > rounds / 10, "only {checked} kept choices checked");
            drain(&mut ch);
            assert_eq!(ch.reads() + ch.writes, 0);
        }
    }

    #[test]
    fn demand_bursts_go_before_older_prefetches() {
        let mut ch = channel(8, 2);
        let mut p = burst(0, 0, 0, false);
        p.prefetch = true;
        ch.push(p, 0);
        ch.push(burst(1, 4, 0, false), 0);
        assert_eq!(drain(&mut ch), vec![1, 0]);
    }
}
