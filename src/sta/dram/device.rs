//! Device state of one DRAM channel: banks (open row, earliest ACT / PRE / RD / WR), ranks
//! (ACT spacing, the four-activate window, column spacing, refresh) and the data bus, with
//! the JEDEC checks as "earliest legal time" functions and the updates each command makes.
//!
//! Every constraint is kept as the earliest time the next command of a kind may issue, so a
//! check is a handful of `max`es (no history is scanned):
//! - ACT: `>= PRE + tRP`, `>= ACT(bank) + tRC`, `>= ACT(rank) + tRRD_S`, `>= ACT(bank group)
//!   + tRRD_L`, `>=` the fourth-last ACT of the rank `+ tFAW`, and after the rank's refresh.
//! - PRE: `>= ACT + tRAS`, `>= RD + tRTP`, `>= WR + tCWL + nBL + tWR`.
//! - RD: `>= ACT + tRCD`, `>= RD/WR(rank) + tCCD_S`, `>= RD(bank group) + tCCD_L`, `>= WR(rank)
//!   + tCWL + nBL + tWTR_S`, `>= WR(bank group) + tCWL + nBL + tWTR_L`.
//! - WR: `>= ACT + tRCD_WR`, `>= WR(rank) + tCCD_S_WR`, `>= WR(bank group) + tCCD_L_WR`,
//!   `>= RD(rank) + RTW` (read-to-write turnaround).
//! - data bus: a burst's data (`CL` or `CWL` after its command, `nBL` long) starts no earlier
//!   than the end of the previous burst, plus `tRTRS` when the rank changes.
//! - refresh (all-bank, per rank): due every `tREFI`; the rank's open banks precharge at
//!   their earliest PRE (not before the due time), REF follows `tRP` later (and `>= ACT +
//!   tRC`), and the rank takes no ACT until `REF + tRFC`.
//!
//! A column command's bound splits into the bank's own (`col_floor`, moved only by an ACT of
//! the bank) and the shared ones (rank and bank-group spacing, data bus: `col_bus`), which
//! every column command moves: the scheduler keeps the first per offer and recomputes only
//! the second after a column command (`earliest_col_in`).

use super::standards::Standard;

/// "No row open".
pub const CLOSED: u32 = u32::MAX;

/// The standard's timings in tCK (refresh times rounded up to whole cycles), precomputed.
/// Every time in this module counts tCK from 0.
#[derive(Clone, Debug)]
pub struct Timing {
    /// Command clock period, ps.
    pub tck_ps: u64,
    /// Data-bus time of one burst.
    pub burst: u64,
    cl: u64,
    cwl: u64,
    rcd: u64,
    rcd_wr: u64,
    rp: u64,
    ras: u64,
    rc: u64,
    rtp: u64,
    /// WR to PRE: tCWL + nBL + tWR.
    wr_to_pre: u64,
    ccd_s: u64,
    ccd_l: u64,
    ccd_s_wr: u64,
    ccd_l_wr: u64,
    rrd_s: u64,
    rrd_l: u64,
    faw: u64,
    /// WR to RD: tCWL + nBL + tWTR_S / _L.
    wr_to_rd_s: u64,
    wr_to_rd_l: u64,
    rtw: u64,
    rtrs: u64,
    /// All-bank refresh time.
    pub rfc: u64,
    /// Refresh interval.
    pub refi: u64,
}

impl Timing {
    /// The timings of `s` in tCK.
    pub fn of(s: &Standard) -> Timing {
        let p = |c: u64| c;
        Timing {
            tck_ps: s.tck_ps,
            burst: p(s.nbl),
            cl: p(s.cl),
            cwl: p(s.cwl),
            rcd: p(s.rcd),
            rcd_wr: p(s.rcd_wr),
            rp: p(s.rp),
            ras: p(s.ras),
            rc: p(s.rc),
            rtp: p(s.rtp),
            wr_to_pre: p(s.cwl + s.nbl + s.wr),
            ccd_s: p(s.ccd_s),
            ccd_l: p(s.ccd_l),
            ccd_s_wr: p(s.ccd_s_wr),
            ccd_l_wr: p(s.ccd_l_wr),
            rrd_s: p(s.rrd_s),
            rrd_l: p(s.rrd_l),
            faw: p(s.faw),
            wr_to_rd_s: p(s.cwl + s.nbl + s.wtr_s),
            wr_to_rd_l: p(s.cwl + s.nbl + s.wtr_l),
            rtw: p(s.rtw),
            rtrs: p(s.rtrs),
            rfc: s.rfc_ps.div_ceil(s.tck_ps),
            refi: s.refi_ps.div_ceil(s.tck_ps),
        }
    }
}

/// One bank.
#[derive(Clone, Debug)]
pub struct Bank {
    /// Open row, or [`CLOSED`].
    pub open_row: u32,
    act_ok: u64,
    pre_ok: u64,
    rd_ok: u64,
    wr_ok: u64,
}

#[derive(Clone, Debug, Default)]
struct Group {
    act_ok: u64,
    rd_ok: u64,
    wr_ok: u64,
}

/// One rank.
#[derive(Clone, Debug)]
struct Rank {
    act_ok: u64,
    /// Earliest ACT by tFAW for each of the last four ACTs (ring, `faw_next` oldest).
    faw_ok: [u64; 4],
    faw_next: usize,
    rd_ok: u64,
    wr_ok: u64,
    next_refresh: u64,
}

/// The banks, ranks and data bus of one channel.
#[derive(Clone, Debug)]
pub struct Device {
    /// Timings in ps.
    pub t: Timing,
    /// Banks, rank-major then bank group then bank.
    pub banks: Vec<Bank>,
    ranks: Vec<Rank>,
    /// Bank groups of all ranks, rank-major.
    groups: Vec<Group>,
    /// Where each bank sits.
    ats: Vec<At>,
    banks_per_rank: usize,
    bus_free: u64,
    bus_rank: u32,
    /// Earliest due refresh over the ranks (u64::MAX: refresh off).
    next_refresh: u64,
}

/// The data bus's bound on the next RD or WR, by rank ([`Device::col_bus`]).
pub struct ColBus {
    /// The rank of the last burst on the bus (`u32::MAX`: none yet).
    rank: u32,
    /// Bound for a command of that rank.
    same: u64,
    /// Bound for a command of another rank (`tRTRS` later).
    other: u64,
    write: bool,
}

/// Where a bank sits: (rank, bank group).
#[derive(Copy, Clone, Debug)]
pub struct At {
    /// Bank index within the channel.
    pub bank: usize,
    /// Rank.
    pub rank: usize,
    /// Bank group, numbered over the channel (rank-major).
    pub group: usize,
}

impl Device {
    /// A channel of `ranks x groups x banks_per_group` closed banks; with `refresh`, rank `r`
    /// is first due at `tREFI` (together) or `tREFI x (1 + r / ranks)` (staggered).
    pub fn new(
        t: Timing,
        ranks: usize,
        groups: usize,
        banks_per_group: usize,
        refresh: bool,
        staggered: bool,
    ) -> Device {
        let bank = Bank {
            open_row: CLOSED,
            act_ok: 0,
            pre_ok: 0,
            rd_ok: 0,
            wr_ok: 0,
        };
        let ranks: Vec<Rank> = (0..ranks)
            .map(|r| Rank {
                act_ok: 0,
                faw_ok: [0; 4],
                faw_next: 0,
                rd_ok: 0,
                wr_ok: 0,
                next_refresh: if !refresh {
                    u64::MAX
                } else if staggered {
                    t.refi + t.refi * r as u64 / ranks as u64
                } else {
                    t.refi
                },
            })
            .collect();
        let next_refresh = ranks
            .iter()
            .map(|r| r.next_refresh)
            .min()
            .unwrap_or(u64::MAX);
        let n = ranks.len() * groups * banks_per_group;
        let ats = (0..n)
            .map(|bank| At {
                bank,
                rank: bank / (groups * banks_per_group),
                group: bank / banks_per_group,
            })
            .collect();
        Device {
            banks: vec![bank; n],
            groups: vec![Group::default(); ranks.len() * groups],
            ats,
            banks_per_rank: groups * banks_per_group,
            ranks,
            t,
            bus_free: 0,
            bus_rank: u32::MAX,
            next_refresh,
        }
    }

    /// The rank and bank group of bank `bank`.
    #[inline]
    pub fn at(&self, bank: usize) -> At {
        self.ats[bank]
    }

    /// Earliest legal ACT in bank `a`.
    #[inline]
    pub fn earliest_act(&self, a: At) -> u64 {
        let r = &self.ranks[a.rank];
        self.banks[a.bank]
            .act_ok
            .max(r.act_ok)
            .max(self.groups[a.group].act_ok)
            .max(r.faw_ok[r.faw_next])
    }

    /// Earliest legal PRE of bank `a`.
    #[inline]
    pub fn earliest_pre(&self, a: At) -> u64 {
        self.banks[a.bank].pre_ok
    }

    /// Earliest legal RD (`write` false) or WR in bank `a`, data bus included.
    #[inline]
    pub fn earliest_col(&self, a: At, write: bool) -> u64 {
        self.earliest_col_in(&self.col_bus(write), a, self.col_floor(a, write))
    }

    /// The bank's own bound on its next RD or WR (ACT + tRCD / tRCD_WR): only an ACT of the
    /// bank moves it.
    #[inline]
    pub fn col_floor(&self, a: At, write: bool) -> u64 {
        let b = &self.banks[a.bank];
        if write { b.wr_ok } else { b.rd_ok }
    }

    /// [`Device::earliest_col`] of bank `a` whose own bound ([`Device::col_floor`]) is
    /// `floor`, the data bus's bound taken from `bus` ([`Device::col_bus`]): every column
    /// command moves the bus, rank and bank-group bounds, and no bank's own bound, so these
    /// are all an update of the other banks' column commands needs.
    #[inline]
    pub fn earliest_col_in(&self, bus: &ColBus, a: At, floor: u64) -> u64 {
        let (r, g) = (&self.ranks[a.rank], &self.groups[a.group]);
        let (rank, group) = if bus.write {
            (r.wr_ok, g.wr_ok)
        } else {
            (r.rd_ok, g.rd_ok)
        };
        let bus = if a.rank as u32 == bus.rank {
            bus.same
        } else {
            bus.other
        };
        floor.max(group).max(rank).max(bus)
    }

    /// The data bus's bound on RDs (`write` false) or WRs: a burst's data starts after the
    /// previous one's end, `tRTRS` later when the rank changes.
    #[inline]
    pub fn col_bus(&self, write: bool) -> ColBus {
        let lat = if write { self.t.cwl } else { self.t.cl };
        let same = self.bus_free.saturating_sub(lat);
        let other = if self.bus_rank == u32::MAX {
            same
        } else {
            (self.bus_free + self.t.rtrs).saturating_sub(lat)
        };
        ColBus {
            rank: self.bus_rank,
            same,
            other,
            write,
        }
    }

    /// ACT of `row` in bank `a` at `t`.
    pub fn act(&mut self, a: At, row: u32, t: u64) {
        let tm = &self.t;
        let b = &mut self.banks[a.bank];
        b.open_row = row;
        b.rd_ok = t + tm.rcd;
        b.wr_ok = t + tm.rcd_wr;
        b.pre_ok = b.pre_ok.max(t + tm.ras);
        b.act_ok = t + tm.rc;
        let g = &mut self.groups[a.group];
        g.act_ok = g.act_ok.max(t + tm.rrd_l);
        let r = &mut self.ranks[a.rank];
        r.act_ok = r.act_ok.max(t + tm.rrd_s);
        r.faw_ok[r.faw_next] = t + tm.faw;
        r.faw_next = (r.faw_next + 1) % 4;
    }

    /// PRE of bank `a` at `t`.
    pub fn pre(&mut self, a: At, t: u64) {
        let b = &mut self.banks[a.bank];
        b.open_row = CLOSED;
        b.act_ok = b.act_ok.max(t + self.t.rp);
    }

    /// RD or WR in bank `a` at `t`; returns the end of its data burst.
    pub fn col(&mut self, a: At, write: bool, t: u64) -> u64 {
        let tm = &self.t;
        let r = &mut self.ranks[a.rank];
        let g = &mut self.groups[a.group];
        let data = if write {
            r.wr_ok = r.wr_ok.max(t + tm.ccd_s_wr);
            r.rd_ok = r.rd_ok.max(t + tm.wr_to_rd_s);
            g.wr_ok = g.wr_ok.max(t + tm.ccd_l_wr);
            g.rd_ok = g.rd_ok.max(t + tm.wr_to_rd_l);
            let b = &mut self.banks[a.bank];
            b.pre_ok = b.pre_ok.max(t + tm.wr_to_pre);
            t + tm.cwl
        } else {
            r.rd_ok = r.rd_ok.max(t + tm.ccd_s);
            r.wr_ok = r.wr_ok.max(t + tm.rtw);
            g.rd_ok = g.rd_ok.max(t + tm.ccd_l);
            let b = &mut self.banks[a.bank];
            b.pre_ok = b.pre_ok.max(t + tm.rtp);
            t + tm.cl
        };
        let end = data + tm.burst;
        self.bus_free = end;
        self.bus_rank = a.rank as u32;
        end
    }

    /// Earliest refresh due on this channel.
    #[inline]
    pub fn next_refresh(&self) -> u64 {
        self.next_refresh
    }

    /// Applies every refresh due by `t`; `closed(time, bank)` hears of each bank a refresh
    /// precharges. Returns how many refreshes were applied.
    pub fn refresh_due(&mut self, t: u64, mut closed: impl FnMut(u64, usize)) -> u64 {
        let mut n = 0;
        while self.next_refresh <= t {
            for r in 0..self.ranks.len() {
                while self.ranks[r].next_refresh <= t {
                    self.refresh_rank(r, &mut closed);
                    n += 1;
                }
            }
            self.next_refresh = self
                .ranks
                .iter()
                .map(|r| r.next_refresh)
                .min()
                .unwrap_or(u64::MAX);
        }
        n
    }

    fn refresh_rank(&mut self, r: usize, closed: &mut impl FnMut(u64, usize)) {
        let due = self.ranks[r].next_refresh;
        let range = r * self.banks_per_rank..(r + 1) * self.banks_per_rank;
        let banks = &mut self.banks[range.clone()];
        let pre = banks
            .iter()
            .filter(|b| b.open_row != CLOSED)
            .map(|b| b.pre_ok.max(due))
            .max();
        let mut start = due;
        if let Some(p) = pre {
            start = p + self.t.rp;
            for (i, b) in banks.iter().enumerate() {
                if b.open_row != CLOSED {
                    closed(p, range.start + i);
                }
            }
        }
        // REF waits for tRP after each PRE and tRC after each ACT (both in `act_ok`).
        let refresh = banks.iter().map(|b| b.act_ok).max().unwrap_or(0).max(start);
        let end = refresh + self.t.rfc;
        for b in banks.iter_mut() {
            b.open_row = CLOSED;
            b.act_ok = b.act_ok.max(end);
        }
        self.ranks[r].next_refresh += self.t.refi;
    }
}

#[cfg(test)]
mod tests {
    use super::super::standards::DDR4_2400;
    use super::*;

    fn device(staggered: bool) -> Device {
        Device::new(Timing::of(&DDR4_2400), 2, 4, 4, true, staggered)
    }

    #[test]
    fn ranks_refresh_together_or_half_an_interval_apart() {
        // tREFI = 7.8 us = 9364 tCK of 833 ps (rounded up).
        let refi = 7_800_000u64.div_ceil(833);
        let mut together = device(false);
        assert_eq!(together.refresh_due(refi - 1, |_, _| {}), 0);
        assert_eq!(together.refresh_due(refi, |_, _| {}), 2);
        let mut staggered = device(true);
        assert_eq!(staggered.refresh_due(refi, |_, _| {}), 1);
        assert_eq!(staggered.refresh_due(refi + refi / 2 - 1, |_, _| {}), 0);
        assert_eq!(staggered.refresh_due(refi + refi / 2, |_, _| {}), 1);
    }

    #[test]
    fn a_refresh_precharges_open_banks_and_blocks_activates_for_trfc() {
        let mut d = device(false);
        let a = d.at(0);
        d.act(a, 7, 0);
        let refi = 7_800_000u64.div_ceil(833);
        let mut closed = Vec::new();
        d.refresh_due(refi, |t, b| closed.push((t, b)));
        // PRE at the due time (tRAS long past), REF tRP later, then tRFC (350 ns = 421 tCK).
        assert_eq!(closed, vec![(refi, 0)]);
        assert_eq!(d.banks[0].open_row, CLOSED);
        assert_eq!(d.earliest_act(a), refi + 16 + 350_000u64.div_ceil(833));
        // The other rank was idle: REF at the due time.
        assert_eq!(d.earliest_act(d.at(16)), refi + 350_000u64.div_ceil(833));
    }

    #[test]
    fn column_commands_switching_rank_leave_trtrs_on_the_bus() {
        let mut d = device(false);
        let (a, b) = (d.at(0), d.at(16));
        d.act(a, 0, 0);
        d.act(b, 0, 1);
        let rd = d.earliest_col(a, false);
        assert_eq!(rd, 16);
        let end = d.col(a, false, rd);
        assert_eq!(end, 16 + 16 + 4);
        // Other rank: its data may start tRTRS (2) after the end of the first burst.
        assert_eq!(d.earliest_col(b, false) + 16, end + 2);
        // Same rank, other bank group: tCCD_S = 4 (data back to back).
        assert_eq!(d.earliest_col(d.at(4), false), 16 + 4);
    }
}
