//! Per-operation accounting shared by the STA modules: when each module first and last
//! worked on an op, how long it was busy, and why it waited. Reports read these logs after
//! the run (through `Actor::as_any`); nothing here affects timing.
//!
//! The PE array (the engine) also keeps an [`EngineClock`]: at every moment of the run it is
//! in exactly one [`EngineState`] (computing, waiting for one thing, or idle), so its states
//! partition the run and their times add up to the run's length exactly.

/// Why a module was waiting instead of working.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stall {
    /// Waiting for DRAM data (a buffer load, a write, the off-chip softmax round trip).
    Dram,
    /// Waiting for an operand from a buffer (PE array) or for on-chip data to arrive.
    Buffer,
    /// Waiting for the softmax unit's rows (the PE array's P operand).
    Softmax,
    /// Waiting for a downstream unit to take its output (back-pressure).
    Downstream,
}

/// One module's record of one op.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OpLog {
    /// First activity, ps.
    pub first_ps: Option<u64>,
    /// End of the last activity, ps.
    pub last_ps: u64,
    /// Time spent working, ps.
    pub busy_ps: u64,
    /// Useful MACs retired.
    pub macs: u64,
    /// DRAM bytes moved for this op by this module.
    pub dram_bytes: u64,
    /// On-chip SRAM bytes read for this op by this module.
    pub sram_read_bytes: u64,
    /// On-chip SRAM bytes written for this op by this module.
    pub sram_write_bytes: u64,
    /// Waiting for DRAM, ps.
    pub stall_dram_ps: u64,
    /// Waiting for a buffer, ps.
    pub stall_buffer_ps: u64,
    /// Waiting for softmax rows, ps.
    pub stall_softmax_ps: u64,
    /// Blocked by a full downstream link, ps.
    pub stall_downstream_ps: u64,
    /// Start of the first wait recorded with [`OpLogs::wait`], ps (a module holding the op
    /// while it waits for its inputs is working on it, so the op's span starts there).
    pub first_wait_ps: Option<u64>,
}

impl OpLog {
    /// First activity or wait, ps.
    pub fn first_seen_ps(&self) -> Option<u64> {
        match (self.first_ps, self.first_wait_ps) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Waits of every kind, ps.
    pub fn stall_ps(&self) -> u64 {
        self.stall_dram_ps + self.stall_buffer_ps + self.stall_softmax_ps + self.stall_downstream_ps
    }
}

/// Logs of every op, for one module.
#[derive(Clone, Debug, Default)]
pub struct OpLogs {
    logs: Vec<OpLog>,
}

impl OpLogs {
    fn at(&mut self, op: u32) -> &mut OpLog {
        let i = op as usize;
        if self.logs.len() <= i {
            self.logs.resize(i + 1, OpLog::default());
        }
        &mut self.logs[i]
    }

    /// Records work on `op` over `[start_ps, end_ps)` with `macs` useful MACs.
    pub fn work(&mut self, op: u32, start_ps: u64, end_ps: u64, macs: u64) {
        let l = self.at(op);
        l.first_ps = Some(l.first_ps.map_or(start_ps, |f| f.min(start_ps)));
        l.last_ps = l.last_ps.max(end_ps);
        l.busy_ps += end_ps.saturating_sub(start_ps);
        l.macs += macs;
    }

    /// Records `bytes` of DRAM traffic for `op`.
    pub fn dram_bytes(&mut self, op: u32, bytes: u64) {
        self.at(op).dram_bytes += bytes;
    }

    /// Records SRAM traffic for `op`.
    pub fn sram(&mut self, op: u32, read: u64, write: u64) {
        let l = self.at(op);
        l.sram_read_bytes += read;
        l.sram_write_bytes += write;
    }

    /// Records a wait of `ps` on `op` for `why`.
    pub fn stall(&mut self, op: u32, why: Stall, ps: u64) {
        if ps == 0 {
            return;
        }
        let l = self.at(op);
        match why {
            Stall::Dram => l.stall_dram_ps += ps,
            Stall::Buffer => l.stall_buffer_ps += ps,
            Stall::Softmax => l.stall_softmax_ps += ps,
            Stall::Downstream => l.stall_downstream_ps += ps,
        }
    }

    /// Records a wait on `op` for `why` over `[start_ps, end_ps)`: a stall that also marks
    /// when the module first held the op.
    pub fn wait(&mut self, op: u32, why: Stall, start_ps: u64, end_ps: u64) {
        let l = self.at(op);
        l.first_wait_ps = Some(l.first_wait_ps.map_or(start_ps, |f| f.min(start_ps)));
        self.stall(op, why, end_ps.saturating_sub(start_ps));
    }

    /// The log of `op`, if any.
    pub fn get(&self, op: u32) -> Option<&OpLog> {
        self.logs.get(op as usize)
    }
}

/// A wait in progress: started at `since_ps` for `op`, for `why`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// Op waited for.
    pub op: u32,
    /// Reason.
    pub why: Stall,
    /// Start, ps.
    pub since_ps: u64,
}

impl Waiting {
    /// Closes the wait at `now_ps`, charging it to `logs`.
    pub fn close(self, logs: &mut OpLogs, now_ps: u64) {
        logs.stall(self.op, self.why, now_ps.saturating_sub(self.since_ps));
    }
}

/// At most one wait in progress, as modules that stall on one thing at a time keep it.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct WaitSlot(Option<Waiting>);

impl WaitSlot {
    /// Starts waiting (no-op if already waiting).
    pub fn begin(&mut self, op: u32, why: Stall, now_ps: u64) {
        if self.0.is_none() {
            self.0 = Some(Waiting {
                op,
                why,
                since_ps: now_ps,
            });
        }
    }

    /// Ends the wait, if any, charging it to `logs`.
    pub fn end(&mut self, logs: &mut OpLogs, now_ps: u64) {
        if let Some(w) = self.0.take() {
            w.close(logs, now_ps);
        }
    }
}

/// What the engine is doing. Every moment of a run is in exactly one state.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EngineState {
    /// No pass to work on (the controller has not issued one).
    Idle,
    /// Computing a pass (its compute and operand reads).
    Computing,
    /// Holding a pass that cannot start, for this reason.
    Waiting(Stall),
}

impl EngineState {
    /// Every state, in code order.
    pub const ALL: [EngineState; 6] = [
        EngineState::Idle,
        EngineState::Computing,
        EngineState::Waiting(Stall::Dram),
        EngineState::Waiting(Stall::Buffer),
        EngineState::Waiting(Stall::Softmax),
        EngineState::Waiting(Stall::Downstream),
    ];

    /// The value of the VCD `state` signal: 0 idle, 1 computing, 2 waiting for DRAM, 3 for
    /// a buffer, 4 for the softmax, 5 for the accumulator.
    pub fn code(self) -> i64 {
        match self {
            EngineState::Idle => 0,
            EngineState::Computing => 1,
            EngineState::Waiting(Stall::Dram) => 2,
            EngineState::Waiting(Stall::Buffer) => 3,
            EngineState::Waiting(Stall::Softmax) => 4,
            EngineState::Waiting(Stall::Downstream) => 5,
        }
    }

    /// The state of a [`EngineState::code`].
    pub fn from_code(code: i64) -> Option<EngineState> {
        EngineState::ALL.into_iter().find(|s| s.code() == code)
    }

    /// A one-word name (VCD string values): `idle`, `computing`, `wait_dram`,
    /// `wait_buffer`, `wait_softmax`, `wait_accumulator`.
    pub fn name(self) -> &'static str {
        match self {
            EngineState::Idle => "idle",
            EngineState::Computing => "computing",
            EngineState::Waiting(Stall::Dram) => "wait_dram",
            EngineState::Waiting(Stall::Buffer) => "wait_buffer",
            EngineState::Waiting(Stall::Softmax) => "wait_softmax",
            EngineState::Waiting(Stall::Downstream) => "wait_accumulator",
        }
    }

    /// How a reader is told (summary, trace spans).
    pub fn label(self) -> &'static str {
        match self {
            EngineState::Idle => "idle (no pass)",
            EngineState::Computing => "computing",
            EngineState::Waiting(Stall::Dram) => "waiting for DRAM",
            EngineState::Waiting(Stall::Buffer) => "waiting for a buffer",
            EngineState::Waiting(Stall::Softmax) => "waiting for the softmax",
            EngineState::Waiting(Stall::Downstream) => "waiting for the accumulator",
        }
    }
}

/// The engine's state over time. Each stretch between two changes is charged to the state
/// it was in: a wait to the op whose pass waited (in the module's [`OpLogs`], with
/// [`OpLogs::wait`]), idle and computing to totals kept here (the module records each
/// pass's work itself, with [`OpLogs::work`]). Time never runs backwards, so the stretches
/// tile the run without gaps or overlaps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineClock {
    state: EngineState,
    op: u32,
    since_ps: u64,
    idle_ps: u64,
    computing_ps: u64,
}

impl Default for EngineClock {
    fn default() -> Self {
        EngineClock {
            state: EngineState::Idle,
            op: 0,
            since_ps: 0,
            idle_ps: 0,
            computing_ps: 0,
        }
    }
}

impl EngineClock {
    /// Enters `state` (on `op`; ignored when idle) at `t_ps`, charging the stretch since the
    /// last change to the state left. Returns whether the state changed (not just its op).
    pub fn enter(&mut self, logs: &mut OpLogs, state: EngineState, op: u32, t_ps: u64) -> bool {
        let op = if state == EngineState::Idle { 0 } else { op };
        if (state, op) == (self.state, self.op) {
            return false;
        }
        debug_assert!(t_ps >= self.since_ps, "engine time ran backwards");
        let t_ps = t_ps.max(self.since_ps);
        match self.state {
            EngineState::Idle => self.idle_ps += t_ps - self.since_ps,
            EngineState::Computing => self.computing_ps += t_ps - self.since_ps,
            EngineState::Waiting(why) => logs.wait(self.op, why, self.since_ps, t_ps),
        }
        let changed = state != self.state;
        (self.state, self.op, self.since_ps) = (state, op, t_ps);
        changed
    }

    /// The current state.
    pub fn state(&self) -> EngineState {
        self.state
    }

    /// Time idle up to `end_ps` (the open stretch counts if the engine is idle), ps.
    pub fn idle_ps(&self, end_ps: u64) -> u64 {
        self.idle_ps + self.open_ps(EngineState::Idle, end_ps)
    }

    /// Time computing up to `end_ps`, ps.
    pub fn computing_ps(&self, end_ps: u64) -> u64 {
        self.computing_ps + self.open_ps(EngineState::Computing, end_ps)
    }

    fn open_ps(&self, state: EngineState, end_ps: u64) -> u64 {
        if self.state == state {
            end_ps.saturating_sub(self.since_ps)
        } else {
            0
        }
    }
}

/// Modules whose per-op logs a report can read.
pub trait Accounted {
    /// The module's per-op logs.
    fn op_logs(&self) -> &OpLogs;
}

/// Amounts bucketed by time, for charts over time: buckets of `bucket_ps`, at most
/// [`TIMELINE_MAX_BUCKETS`] of them. A time past the last bucket doubles the width (merging
/// neighbours) until it fits, so memory stays bounded however long the simulated run.
#[derive(Clone, Debug)]
pub struct Timeline {
    bucket_ps: u64,
    values: Vec<u64>,
    /// The last bucket added to: its start, ps, and index (most adds land there again, and
    /// finding it costs no division).
    last_start_ps: u64,
    last_index: usize,
}

impl PartialEq for Timeline {
    /// Equal buckets (the cache of the last one added to does not count).
    fn eq(&self, other: &Self) -> bool {
        self.bucket_ps == other.bucket_ps && self.values == other.values
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new(TIMELINE_BUCKET_PS)
    }
}

/// Bucket width of module timelines: 1 us (wider for runs longer than about 1 s).
pub const TIMELINE_BUCKET_PS: u64 = 1_000_000;

/// Most buckets a timeline holds (8 MiB); a run of up to 1.05 simulated seconds keeps 1 us.
pub const TIMELINE_MAX_BUCKETS: u64 = 1 << 20;

impl Timeline {
    /// Empty, with buckets of `bucket_ps`.
    pub fn new(bucket_ps: u64) -> Self {
        Timeline {
            bucket_ps: bucket_ps.max(1),
            values: Vec::new(),
            last_start_ps: u64::MAX,
            last_index: 0,
        }
    }

    /// Doubles the bucket width until time `t_ps` falls into one of the buckets.
    fn cover(&mut self, t_ps: u64) {
        while t_ps / self.bucket_ps >= TIMELINE_MAX_BUCKETS {
            let merged: Vec<u64> = self
                .values
                .chunks(2)
                .map(|pair| pair.iter().fold(0u64, |a, &b| a.saturating_add(b)))
                .collect();
            self.values = merged;
            self.bucket_ps = self.bucket_ps.saturating_mul(2);
            self.last_start_ps = u64::MAX;
        }
    }

    /// Adds `amount` at time `t_ps`.
    #[inline]
    pub fn add(&mut self, t_ps: u64, amount: u64) {
        let i = match t_ps.checked_sub(self.last_start_ps) {
            Some(d) if d < self.bucket_ps => self.last_index,
            _ => {
                self.cover(t_ps);
                let i = t_ps / self.bucket_ps;
                self.last_start_ps = i * self.bucket_ps;
                self.last_index = i as usize;
                i as usize
            }
        };
        if self.values.len() <= i {
            self.values.resize(i + 1, 0);
        }
        self.values[i] = self.values[i].saturating_add(amount);
    }

    /// Adds `amount` spread evenly over `[start_ps, end_ps)` (integer shares; the remainder
    /// goes to the last bucket, so the total is exact).
    pub fn add_spread(&mut self, start_ps: u64, end_ps: u64, amount: u64) {
        if end_ps <= start_ps {
            self.add(start_ps, amount);
            return;
        }
        self.cover(end_ps - 1);
        let span = end_ps - start_ps;
        let mut t = start_ps;
        let mut given = 0;
        while t < end_ps {
            let edge = ((t / self.bucket_ps) + 1).saturating_mul(self.bucket_ps);
            let next = edge.min(end_ps);
            let share = if next == end_ps {
                amount - given
            } else {
                (u128::from(amount) * u128::from(next - t) / u128::from(span)) as u64
            };
            self.add(t, share);
            given += share;
            t = next;
        }
    }

    /// Bucket width, ps.
    pub fn bucket_ps(&self) -> u64 {
        self.bucket_ps
    }

    /// Amount per bucket.
    pub fn values(&self) -> &[u64] {
        &self.values
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_keeps_its_bucket_count_bounded_and_its_total_exact() {
        let mut t = Timeline::default();
        t.add(500_000, 3); // bucket 0 at 1 us
        // 2^62 ps later: the width doubles until that fits into 2^20 buckets.
        t.add_spread(1 << 40, 1 << 62, 1_000_000);
        t.add(u64::MAX, 1);
        assert!(t.values().len() as u64 <= TIMELINE_MAX_BUCKETS);
        assert!(t.bucket_ps() >= u64::MAX / TIMELINE_MAX_BUCKETS);
        assert_eq!(t.values().iter().sum::<u64>(), 3 + 1_000_000 + 1);
        // The early amount shares the first (now very wide) bucket with the start of the spread.
        assert!(t.values()[0] >= 3);
    }

    #[test]
    fn engine_states_tile_the_run_and_charge_waits_to_their_op() {
        let (mut logs, mut c) = (OpLogs::default(), EngineClock::default());
        // idle 0..10, wait for DRAM on op 3 10..25, for a buffer 25..30, compute 30..50,
        // op 4 computing back to back 50..60 (no state change), accumulator 60..61, idle.
        assert!(c.enter(&mut logs, EngineState::Waiting(Stall::Dram), 3, 10));
        assert!(c.enter(&mut logs, EngineState::Waiting(Stall::Buffer), 3, 25));
        assert!(c.enter(&mut logs, EngineState::Computing, 3, 30));
        assert!(!c.enter(&mut logs, EngineState::Computing, 4, 50));
        assert!(c.enter(&mut logs, EngineState::Waiting(Stall::Downstream), 4, 60));
        assert!(c.enter(&mut logs, EngineState::Idle, 7, 61));
        assert!(!c.enter(&mut logs, EngineState::Idle, 9, 70));
        let l3 = logs.get(3).unwrap();
        assert_eq!((l3.stall_dram_ps, l3.stall_buffer_ps), (15, 5));
        assert_eq!(l3.first_wait_ps, Some(10));
        assert_eq!(l3.first_seen_ps(), Some(10));
        assert_eq!(logs.get(4).unwrap().stall_downstream_ps, 1);
        assert_eq!(c.computing_ps(100), 30);
        assert_eq!(c.idle_ps(100), 10 + 39);
        let waits: u64 = [3, 4]
            .iter()
            .map(|&o| logs.get(o).unwrap().stall_ps())
            .sum();
        assert_eq!(c.idle_ps(100) + c.computing_ps(100) + waits, 100);
        for s in EngineState::ALL {
            assert_eq!(EngineState::from_code(s.code()), Some(s));
        }
    }

    #[test]
    fn a_timeline_of_a_short_run_keeps_1_us_buckets() {
        let mut t = Timeline::default();
        t.add_spread(0, 3_000_000, 30);
        assert_eq!(t.bucket_ps(), 1_000_000);
        assert_eq!(t.values(), &[10, 10, 10]);
    }
}
