//! The channels' next decision edges, kept as a tournament tree so the earliest one is at
//! hand: leaf `c` holds `(edge, c)` (`u64::MAX`: nothing to decide), each inner node the
//! smaller of its two children, so the root is the earliest edge, ties to the lower
//! channel. Setting one channel's edge costs `log2(channels)` comparisons, reading the
//! earliest none (one channel: the root is its leaf).

/// Next decision edge (tCK) per channel.
#[derive(Clone, Debug)]
pub struct Ticks {
    /// Leaves from `size` on; node `i`'s children are `2i` and `2i + 1`.
    tree: Vec<(u64, u32)>,
    size: usize,
}

impl Ticks {
    /// `channels` channels with nothing to decide.
    pub fn new(channels: usize) -> Ticks {
        let size = channels.max(1).next_power_of_two();
        let mut tree = vec![(u64::MAX, u32::MAX); 2 * size];
        for c in 0..size {
            tree[size + c] = (u64::MAX, c as u32);
        }
        for i in (1..size).rev() {
            tree[i] = tree[2 * i].min(tree[2 * i + 1]);
        }
        Ticks { tree, size }
    }

    /// Channel `c` next decides at edge `t` (`u64::MAX`: never).
    #[inline(always)]
    pub fn set(&mut self, c: usize, t: u64) {
        let mut i = self.size + c;
        if self.tree[i].0 == t {
            return;
        }
        self.tree[i] = (t, c as u32);
        while i > 1 {
            i /= 2;
            self.tree[i] = self.tree[2 * i].min(self.tree[2 * i + 1]);
        }
    }

    /// The earliest decision: (edge, channel), ties to the lower channel.
    #[inline]
    pub fn first(&self) -> Option<(u64, usize)> {
        let (t, c) = self.tree[1];
        (t != u64::MAX).then_some((t, c as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earliest_edge_wins_and_ties_go_to_the_lower_channel() {
        let mut t = Ticks::new(5);
        assert_eq!(t.first(), None);
        t.set(3, 40);
        t.set(4, 30);
        assert_eq!(t.first(), Some((30, 4)));
        t.set(1, 30);
        assert_eq!(t.first(), Some((30, 1)));
        t.set(1, u64::MAX);
        t.set(4, u64::MAX);
        assert_eq!(t.first(), Some((40, 3)));
        let mut one = Ticks::new(1);
        one.set(0, 7);
        assert_eq!(one.first(), Some((7, 0)));
        one.set(0, u64::MAX);
        assert_eq!(one.first(), None);
    }
}
