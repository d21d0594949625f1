//! Per-operation accounting shared by the STA modules: when each module first and last
//! worked on an op, how long it was busy, and why it waited. Reports read these logs after
//! the run (through `Actor::as_any`); nothing here affects timing.

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

/// Modules whose per-op logs a report can read.
pub trait Accounted {
    /// The module's per-op logs.
    fn op_logs(&self) -> &OpLogs;
}

/// Amounts bucketed by time (fixed buckets of `bucket_ps`), for charts over time.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    bucket_ps: u64,
    values: Vec<u64>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new(TIMELINE_BUCKET_PS)
    }
}

/// Bucket width of module timelines: 1 us.
pub const TIMELINE_BUCKET_PS: u64 = 1_000_000;

impl Timeline {
    /// Empty, with buckets of `bucket_ps`.
    pub fn new(bucket_ps: u64) -> Self {
        Timeline {
            bucket_ps: bucket_ps.max(1),
            values: Vec::new(),
        }
    }

    /// Adds `amount` at time `t_ps`.
    pub fn add(&mut self, t_ps: u64, amount: u64) {
        let i = (t_ps / self.bucket_ps) as usize;
        if self.values.len() <= i {
            self.values.resize(i + 1, 0);
        }
        self.values[i] += amount;
    }

    /// Adds `amount` spread evenly over `[start_ps, end_ps)` (integer shares; the remainder
    /// goes to the last bucket, so the total is exact).
    pub fn add_spread(&mut self, start_ps: u64, end_ps: u64, amount: u64) {
        if end_ps <= start_ps {
            self.add(start_ps, amount);
            return;
        }
        let span = end_ps - start_ps;
        let mut t = start_ps;
        let mut given = 0;
        while t < end_ps {
            let edge = ((t / self.bucket_ps) + 1) * self.bucket_ps;
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
