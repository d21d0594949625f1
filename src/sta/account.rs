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

/// Amounts bucketed by time, for charts over time: buckets of `bucket_ps`, at most
/// [`TIMELINE_MAX_BUCKETS`] of them. A time past the last bucket doubles the width (merging
/// neighbours) until it fits, so memory stays bounded however long the simulated run.
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
        }
    }

    /// Adds `amount` at time `t_ps`.
    pub fn add(&mut self, t_ps: u64, amount: u64) {
        self.cover(t_ps);
        let i = (t_ps / self.bucket_ps) as usize;
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
    fn a_timeline_of_a_short_run_keeps_1_us_buckets() {
        let mut t = Timeline::default();
        t.add_spread(0, 3_000_000, 30);
        assert_eq!(t.bucket_ps(), 1_000_000);
        assert_eq!(t.values(), &[10, 10, 10]);
    }
}
