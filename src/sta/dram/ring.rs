//! A bank's burst queue: a growable ring buffer whose capacity is a power of two, so the
//! slot of the `i`-th element is `(head + i) & (capacity - 1)` (one mask, no wrap test), in
//! arrival order. The scheduler reads it by index (the `i`-th oldest burst), appends at the
//! back and removes anywhere (a row hit overtaking older bursts): a removal shifts the
//! shorter side by one slot, so the order of the others stays.
//!
//! It replaced `std::collections::VecDeque`, whose indexing tests for the wrap and whose
//! range iteration splits into two slices: about 5 % of a default run's instructions.

use std::ops::Index;

/// A queue of `T` in arrival order.
#[derive(Clone, Debug)]
pub struct Ring<T: Copy> {
    /// Slots; the length is 0 or a power of two.
    buf: Vec<T>,
    /// Slot of the oldest element.
    head: usize,
    len: usize,
}

impl<T: Copy> Default for Ring<T> {
    fn default() -> Self {
        Ring {
            buf: Vec::new(),
            head: 0,
            len: 0,
        }
    }
}

impl<T: Copy> Ring<T> {
    /// Elements queued.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is queued.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    fn slot(&self, i: usize) -> usize {
        (self.head + i) & (self.buf.len() - 1)
    }

    /// The `i`-th oldest element, if there are more than `i`.
    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        (i < self.len).then(|| &self.buf[self.slot(i)])
    }

    /// Appends `x` (the youngest).
    #[inline]
    pub fn push_back(&mut self, x: T) {
        if self.len == self.buf.len() {
            self.grow(x);
        }
        let s = self.slot(self.len);
        self.buf[s] = x;
        self.len += 1;
    }

    /// Doubles the capacity (at least 4 slots), the elements moved to slots `0..len`; `fill`
    /// fills the new slots.
    #[cold]
    fn grow(&mut self, fill: T) {
        let cap = (self.buf.len() * 2).max(4);
        let mut buf = Vec::with_capacity(cap);
        buf.extend((0..self.len).map(|i| self.buf[self.slot(i)]));
        buf.resize(cap, fill);
        self.buf = buf;
        self.head = 0;
    }

    /// Removes and returns the `i`-th oldest element, if there are more than `i`.
    #[inline]
    pub fn remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let x = self.buf[self.slot(i)];
        if i < self.len / 2 {
            // The older side moves one slot towards the back.
            for j in (0..i).rev() {
                let (from, to) = (self.slot(j), self.slot(j + 1));
                self.buf[to] = self.buf[from];
            }
            self.head = self.slot(1);
        } else {
            for j in i..self.len - 1 {
                let (from, to) = (self.slot(j + 1), self.slot(j));
                self.buf[to] = self.buf[from];
            }
        }
        self.len -= 1;
        Some(x)
    }

    /// The elements from the `i`-th oldest on, with their indices.
    #[inline]
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = (usize, &T)> {
        (i..self.len).map(move |j| (j, &self.buf[self.slot(j)]))
    }

    /// The elements, oldest first.
    #[inline]
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.iter_from(0).map(|(_, x)| x)
    }
}

impl<T: Copy> Index<usize> for Ring<T> {
    type Output = T;

    #[inline]
    fn index(&self, i: usize) -> &T {
        assert!(i < self.len, "index {i} of a queue of {}", self.len);
        &self.buf[self.slot(i)]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    #[test]
    fn a_ring_keeps_the_order_of_a_vecdeque_under_pushes_and_removals_anywhere() {
        let mut rng = crate::rng::SplitMix64::new(3);
        let (mut ring, mut want) = (Ring::default(), VecDeque::new());
        for n in 0..20_000u32 {
            if rng.below(5) < 3 || want.is_empty() {
                ring.push_back(n);
                want.push_back(n);
            } else {
                let i = rng.below(want.len() as u64 + 1) as usize;
                assert_eq!(ring.remove(i), want.remove(i), "remove({i})");
            }
            assert_eq!(ring.len(), want.len());
            assert!(ring.iter().eq(want.iter()));
            let i = rng.below(want.len() as u64 + 1) as usize;
            assert_eq!(ring.get(i), want.get(i));
            assert!(
                ring.iter_from(i)
                    .map(|(_, x)| x)
                    .eq(want.range(i.min(want.len())..))
            );
        }
        assert!(ring.buf.len().is_power_of_two());
    }
}
