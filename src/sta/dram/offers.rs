//! The offers of one channel's scheduler: each bank with bursts of the served direction
//! offers one command with its earliest legal time (see `scheduler.rs`).
//!
//! The offers are kept in two lists, column commands and row commands (ACT, PRE), because
//! the commands move different offers: a column command moves every column offer (the data
//! bus, tCCD_S/L, tRTRS) and no row offer; an ACT moves the ACT offers of its rank (tRRD,
//! tFAW) and no column offer; a PRE moves only its own bank. Each list caches the earliest
//! legal time of its offers (recomputed when a change may have raised it), so a decision
//! touches the list its command moved, not every waiting bank. Each bank's place (list and
//! index) is kept, so replacing its offer costs no search.
//!
//! A column offer also keeps its bank's own bound (`floor`: ACT + tRCD, which only an ACT
//! of the bank moves) and its rank and bank group, so the update after a column command
//! recomputes each column offer from the bounds that command moved (`Device::col_bus` and
//! the rank and group spacing), and a row hit followed by another row hit of the same bank
//! only changes its offer's command and key ([`Offers::rekey`]).
//!
//! The choice among offers ([`Offers::best`]: the lowest key among those legal at `t`) and
//! the earliest time ([`Offers::earliest`]) do not depend on the lists' order, which may
//! change as offers move.

/// A command a bank offers.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(super) enum Cmd {
    Act,
    Pre,
    /// Column command for the burst at this index of the bank's queue.
    Col(u32),
}

/// One bank's offer.
#[derive(Copy, Clone, Debug)]
pub(super) struct Offer {
    pub bank: u32,
    pub cmd: Cmd,
    /// Priority, lower first: prefetch bit, not-a-hit bit, age.
    pub key: u64,
    /// Earliest legal time, tCK.
    pub earliest: u64,
    /// Its bank's rank and bank group (over the channel).
    pub rank: u32,
    pub group: u32,
    /// A column command: its bank's own bound on `earliest`, which other banks' commands
    /// leave alone (`Device::col_floor`).
    pub floor: u64,
}

/// The list of column commands.
pub(super) const COL: usize = 0;
/// The list of row commands (ACT, PRE).
pub(super) const ROW: usize = 1;

fn list_of(cmd: Cmd) -> usize {
    match cmd {
        Cmd::Col(_) => COL,
        Cmd::Act | Cmd::Pre => ROW,
    }
}

/// The offers of a channel, at most one per bank.
pub(super) struct Offers {
    lists: [Vec<Offer>; 2],
    /// Per bank: its offer's list and index there (`None`: no offer).
    pos: Vec<Option<(usize, u32)>>,
    /// Per list: the earliest legal time of its offers (`u64::MAX`: none), `None` when a
    /// change may have raised it.
    min: [Option<u64>; 2],
}

impl Offers {
    /// No offers, for a channel of `banks` banks.
    pub fn new(banks: usize) -> Offers {
        Offers {
            lists: [Vec::new(), Vec::new()],
            pos: vec![None; banks],
            min: [Some(u64::MAX); 2],
        }
    }

    /// Drops every offer.
    pub fn clear(&mut self) {
        for l in &self.lists {
            for o in l {
                self.pos[o.bank as usize] = None;
            }
        }
        self.lists[COL].clear();
        self.lists[ROW].clear();
        self.min = [Some(u64::MAX); 2];
    }

    /// Sets bank `o.bank`'s offer to `o` (replacing the one it had).
    pub fn set(&mut self, o: Offer) {
        let l = list_of(o.cmd);
        match self.pos[o.bank as usize] {
            Some((old, i)) if old == l => {
                let i = i as usize;
                let before = self.lists[l][i].earliest;
                self.lists[l][i] = o;
                self.min[l] = match self.min[l] {
                    Some(m) if o.earliest <= m => Some(o.earliest),
                    Some(m) if before > m => Some(m),
                    _ => None,
                };
            }
            other => {
                if other.is_some() {
                    self.remove(o.bank);
                }
                self.pos[o.bank as usize] = Some((l, self.lists[l].len() as u32));
                self.lists[l].push(o);
                self.min[l] = self.min[l].map(|m| m.min(o.earliest));
            }
        }
    }

    /// Gives bank `bank`'s column offer (it has one) another column command and key, its
    /// earliest time left for [`Offers::update`] of the column list to set.
    pub fn rekey(&mut self, bank: u32, cmd: Cmd, key: u64) {
        debug_assert!(matches!(cmd, Cmd::Col(_)));
        if let Some((l, i)) = self.pos[bank as usize] {
            debug_assert_eq!(l, COL);
            let o = &mut self.lists[l][i as usize];
            o.cmd = cmd;
            o.key = key;
        }
    }

    /// Drops bank `bank`'s offer, if it has one.
    pub fn remove(&mut self, bank: u32) {
        let Some((l, i)) = self.pos[bank as usize].take() else {
            return;
        };
        let gone = self.lists[l].swap_remove(i as usize);
        if let Some(moved) = self.lists[l].get(i as usize) {
            self.pos[moved.bank as usize] = Some((l, i));
        }
        if self.min[l] == Some(gone.earliest) {
            self.min[l] = None;
        }
    }

    /// Gives every offer of list `l` the earliest time `f` returns for it (`None`: keep
    /// it), and recomputes the list's earliest.
    pub fn update(&mut self, l: usize, mut f: impl FnMut(&Offer) -> Option<u64>) {
        let mut m = u64::MAX;
        for o in &mut self.lists[l] {
            if let Some(e) = f(o) {
                o.earliest = e;
            }
            m = m.min(o.earliest);
        }
        self.min[l] = Some(m);
    }

    /// The offers' earliest legal time (`u64::MAX`: no offer).
    pub fn earliest(&mut self) -> u64 {
        for l in [COL, ROW] {
            if self.min[l].is_none() {
                let m = self.lists[l].iter().map(|o| o.earliest).min();
                self.min[l] = Some(m.unwrap_or(u64::MAX));
            }
        }
        self.min[COL]
            .unwrap_or(u64::MAX)
            .min(self.min[ROW].unwrap_or(u64::MAX))
    }

    /// The offer with the lowest key among those legal at `t`.
    pub fn best(&self, t: u64) -> Option<Offer> {
        let mut best: Option<&Offer> = None;
        for l in [COL, ROW] {
            if self.min[l].is_some_and(|m| m > t) {
                continue;
            }
            for o in &self.lists[l] {
                if o.earliest <= t && best.is_none_or(|b| o.key < b.key) {
                    best = Some(o);
                }
            }
        }
        best.copied()
    }

    /// Every offer, in no particular order.
    #[cfg(any(debug_assertions, test))]
    pub fn iter(&self) -> impl Iterator<Item = &Offer> {
        self.lists[COL].iter().chain(&self.lists[ROW])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(bank: u32, cmd: Cmd, key: u64, earliest: u64) -> Offer {
        Offer {
            bank,
            cmd,
            key,
            earliest,
            rank: 0,
            group: 0,
            floor: earliest,
        }
    }

    #[test]
    fn offers_move_between_lists_and_keep_their_earliest_time() {
        let mut s = Offers::new(4);
        s.set(offer(0, Cmd::Col(0), 5, 10));
        s.set(offer(1, Cmd::Act, 3, 7));
        s.set(offer(2, Cmd::Pre, 9, 4));
        assert_eq!(s.earliest(), 4);
        assert_eq!(s.best(7).map(|o| o.bank), Some(1), "lowest key legal at 7");
        assert_eq!(s.best(3).map(|o| o.bank), None);
        // Bank 2's PRE issued: it now offers an ACT, later.
        s.set(offer(2, Cmd::Act, 9, 20));
        assert_eq!(s.earliest(), 7);
        // Bank 1's ACT issued: it now offers a column command (moves to the other list).
        s.set(offer(1, Cmd::Col(0), 3, 12));
        assert_eq!(s.earliest(), 10);
        s.update(COL, |o| (o.bank == 0).then_some(15));
        assert_eq!(s.earliest(), 12);
        s.remove(1);
        s.remove(3);
        assert_eq!(s.earliest(), 15);
        let mut banks: Vec<u32> = s.iter().map(|o| o.bank).collect();
        banks.sort();
        assert_eq!(banks, vec![0, 2]);
        s.clear();
        assert_eq!(s.earliest(), u64::MAX);
        assert!(s.best(u64::MAX).is_none());
    }
}
