//! N:M pruning of a weight matrix and its compressed storage (STA.md, "N:M sparsity").
//!
//! A PyTorch linear weight is stored `[out, in]`; STA's `W[K x Nout]` is its transpose, so
//! groups of `M` run along `in` (K) within each output row. Rule: keep the `N` largest `|w|`
//! of each group, ties to the lower index; a short last group keeps `min(N, its length)`.
//! A family (one M, falling N) is pruned by inheritance: the densest member from the dense
//! weights, each sparser member from the member before it, so masks are nested.
//!
//! Storage of one member, per output row, per group: `N` value slots (f16) and `N` position
//! indices of `ceil(log2 M)` bits, bit-packed LSB first; slots of a short last group beyond
//! its kept count are padding (value 0, index 0) and are skipped on decode. Storage of a
//! family: the densest member's values and indices, plus per slot a tag of `ceil(log2 F)`
//! bits: the index (sparsest = 0) of the sparsest member that keeps that weight. Member `j`
//! is the slots with `tag <= j`.

use super::nm::Pattern;

/// Kept positions of one member: for each row, for each group, the kept indices within the
/// group in ascending order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mask {
    /// Rows (output features).
    pub rows: usize,
    /// Reduction length (input features).
    pub k: usize,
    /// Pattern.
    pub pattern: Pattern,
    /// `kept[row * groups + g]`: kept offsets within group `g`, ascending (`u32`: a group
    /// of `M` >= 256 has offsets beyond a byte).
    pub kept: Vec<Vec<u32>>,
}

impl Mask {
    /// Groups per row.
    pub fn groups(&self) -> usize {
        self.k.div_ceil(self.pattern.m as usize)
    }

    /// Whether `(row, col)` is kept.
    pub fn keeps(&self, row: usize, col: usize) -> bool {
        let m = self.pattern.m as usize;
        self.kept[row * self.groups() + col / m].contains(&((col % m) as u32))
    }
}

/// Chooses the kept offsets of one group: the `n` with the largest `score` among
/// `candidates` (offsets within the group), ties to the lower offset; returned ascending.
pub fn choose(score: &[f64], candidates: &[u32], n: usize) -> Vec<u32> {
    let mut c: Vec<u32> = candidates.to_vec();
    // Sort by score descending, then offset ascending: a total, deterministic order.
    c.sort_by(|&a, &b| {
        score[b as usize]
            .total_cmp(&score[a as usize])
            .then(a.cmp(&b))
    });
    c.truncate(n);
    c.sort_unstable();
    c
}

/// Prunes `w` (`rows x k`, row-major) to `pattern` by magnitude `|w|`, or, with `from`, a
/// sparser member of a family from the previous member's mask (inheritance).
pub fn prune(w: &[f32], rows: usize, k: usize, pattern: Pattern, from: Option<&Mask>) -> Mask {
    prune_scored(w, rows, k, pattern, from, &|_, v| f64::from(v.abs()))
}

/// [`prune`] with the ranking `score(column, w)` in place of `|w|` (Wanda's `|w| ||X_j||`,
/// [`super::calibrated`]): the `N` largest scores of each group are kept.
pub fn prune_scored(
    w: &[f32],
    rows: usize,
    k: usize,
    pattern: Pattern,
    from: Option<&Mask>,
    score: &dyn Fn(usize, f32) -> f64,
) -> Mask {
    let m = pattern.m as usize;
    let groups = k.div_ceil(m);
    let mut kept = Vec::with_capacity(rows * groups);
    let mut scores = Vec::with_capacity(m);
    for r in 0..rows {
        for g in 0..groups {
            let start = g * m;
            let len = m.min(k - start);
            scores.clear();
            scores.extend((0..len).map(|o| score(start + o, w[r * k + start + o])));
            // `len <= M`, a u32.
            let all: Vec<u32> = (0..len as u32).collect();
            let candidates = from.map_or(all, |f| f.kept[r * groups + g].clone());
            kept.push(choose(&scores, &candidates, (pattern.n as usize).min(len)));
        }
    }
    Mask {
        rows,
        k,
        pattern,
        kept,
    }
}

/// Prunes a family (patterns of one M, sorted densest first) by inheritance; returns masks
/// densest first.
pub fn prune_family(w: &[f32], rows: usize, k: usize, family: &[Pattern]) -> Vec<Mask> {
    let mut out: Vec<Mask> = Vec::with_capacity(family.len());
    for &p in family {
        let next = prune(w, rows, k, p, out.last());
        out.push(next);
    }
    out
}

/// `w` with everything outside `mask` set to zero, values rounded to f16 as stored.
pub fn apply(w: &[f32], mask: &Mask) -> Vec<f32> {
    let mut out = vec![0.0f32; w.len()];
    let m = mask.pattern.m as usize;
    let groups = mask.groups();
    for r in 0..mask.rows {
        for g in 0..groups {
            for &o in &mask.kept[r * groups + g] {
                let c = g * m + o as usize;
                out[r * mask.k + c] = half::f16::from_f32(w[r * mask.k + c]).to_f32();
            }
        }
    }
    out
}

/// Bits of an index of a group of `m`: `ceil(log2 m)`.
pub fn index_bits(m: u32) -> u32 {
    32 - (m.max(2) - 1).leading_zeros()
}

/// Appends `value`'s low `bits` bits, LSB first.
struct BitWriter {
    bytes: Vec<u8>,
    used: u64,
}

impl BitWriter {
    fn new() -> Self {
        BitWriter {
            bytes: Vec::new(),
            used: 0,
        }
    }
    fn put(&mut self, value: u32, bits: u32) {
        for b in 0..bits {
            if self.used.is_multiple_of(8) {
                self.bytes.push(0);
            }
            let bit = ((value >> b) & 1) as u8;
            if let Some(last) = self.bytes.last_mut() {
                *last |= bit << (self.used % 8);
            }
            self.used += 1;
        }
    }
}

/// Reads values written by [`BitWriter`].
pub struct BitReader<'a> {
    bytes: &'a [u8],
    pos: u64,
}

impl<'a> BitReader<'a> {
    /// Reads from `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        BitReader { bytes, pos: 0 }
    }
    /// The next `bits` bits, or `None` past the end.
    pub fn get(&mut self, bits: u32) -> Option<u32> {
        let mut v = 0;
        for b in 0..bits {
            let byte = *self.bytes.get((self.pos / 8) as usize)?;
            v |= u32::from((byte >> (self.pos % 8)) & 1) << b;
            self.pos += 1;
        }
        Some(v)
    }
}

/// The compressed form of one weight matrix (one member, or a family).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Packed {
    /// f16 values, little endian, `rows * groups * N` slots.
    pub values: Vec<u8>,
    /// Packed indices, `ceil(log2 M)` bits a slot.
    pub indices: Vec<u8>,
    /// Packed family tags, `ceil(log2 F)` bits a slot (empty for a single member).
    pub tags: Vec<u8>,
}

/// Packs `masks` (a family, densest first; or one member) of `w`.
pub fn pack(w: &[f32], masks: &[Mask]) -> Packed {
    let dense = &masks[0];
    let m = dense.pattern.m as usize;
    let n = dense.pattern.n as usize;
    let groups = dense.groups();
    let ib = index_bits(dense.pattern.m);
    let fam = masks.len();
    let tb = if fam > 1 { index_bits(fam as u32) } else { 0 };
    let mut values = Vec::with_capacity(dense.rows * groups * n * 2);
    let mut idx = BitWriter::new();
    let mut tags = BitWriter::new();
    for r in 0..dense.rows {
        for g in 0..groups {
            let kept = &dense.kept[r * groups + g];
            for slot in 0..n {
                let (v, o) = match kept.get(slot) {
                    Some(&o) => (w[r * dense.k + g * m + o as usize], o),
                    None => (0.0, 0),
                };
                values.extend_from_slice(&half::f16::from_f32(v).to_le_bytes());
                idx.put(o, ib);
                if tb > 0 {
                    // Sparsest member keeping it: masks are densest first, so scan from the end.
                    let col = g * m + o as usize;
                    let t = (0..fam)
                        .rev()
                        .find(|&j| kept.get(slot).is_some() && masks[j].keeps(r, col))
                        .map_or(fam - 1, |j| fam - 1 - j);
                    tags.put(t as u32, tb);
                }
            }
        }
    }
    Packed {
        values,
        indices: idx.bytes,
        tags: tags.bytes,
    }
}

/// Decodes member `member` (0 = sparsest of the family; a single member is 0) of a packed
/// `rows x k` matrix whose densest pattern is `dense` and family size `fam`, as a dense
/// `rows x k` matrix (the caller bounds `rows * k`: the packed form may be much smaller).
pub fn unpack(
    p: &Packed,
    rows: usize,
    k: usize,
    dense: Pattern,
    fam: usize,
    member: usize,
) -> Result<Vec<f32>, String> {
    let (m, n) = (dense.m as usize, dense.n as usize);
    let groups = k.div_ceil(m);
    let slots = unpack_slots(p, rows, k, dense, fam, member, n)?;
    let cells = rows
        .checked_mul(k)
        .ok_or_else(|| format!("a {rows} x {k} matrix overflows the address space"))?;
    let mut out = vec![0.0f32; cells];
    // Padding slots are (+0.0, 0) and `out` is +0.0 already: only other bit patterns are written.
    for (i, &(v, o)) in slots.iter().enumerate() {
        if v.to_bits() != 0 {
            let (r, g) = (i / (groups * n), i / n % groups);
            out[r * k + g * m + o as usize] = v;
        }
    }
    Ok(out)
}

/// Slots stored for a `rows x k` matrix of densest pattern `dense`: `rows * ceil(k/M) * N`,
/// or an error when that overflows.
pub fn slot_count(rows: usize, k: usize, dense: Pattern) -> Result<usize, String> {
    rows.checked_mul(k.div_ceil(dense.m as usize))
        .and_then(|x| x.checked_mul(dense.n as usize))
        .ok_or_else(|| format!("{rows} x {k} with {dense} has more slots than can be addressed"))
}

/// The stored slots of member `member` as the PE array's index multiplexers see them: per
/// row, per group, `n` pairs `(value, offset within the group)`: the member's kept weights in
/// ascending offset, then padding `(0.0, 0)`. `n` is the member's N.
pub fn unpack_slots(
    p: &Packed,
    rows: usize,
    k: usize,
    dense: Pattern,
    fam: usize,
    member: usize,
    n: usize,
) -> Result<Vec<(f32, u32)>, String> {
    if n > dense.n as usize {
        return Err(format!(
            "a member keeps N = {n}, more than the densest N = {}",
            dense.n
        ));
    }
    // Sizes first: the allocations below are then at most the slots the data holds.
    check_sizes(p, rows, k, dense, fam)?;
    let groups = k.div_ceil(dense.m as usize);
    let mut out = vec![(0.0f32, 0u32); rows * groups * n];
    let mut filled = vec![0usize; rows * groups];
    let mut overflow = None;
    for_each_slot(p, rows, k, dense, fam, |r, g, slot| {
        if let Some((v, o, t)) = slot
            && t <= member
        {
            let c = &mut filled[r * groups + g];
            if *c < n {
                out[(r * groups + g) * n + *c] = (v, o);
                *c += 1;
            } else {
                overflow = Some((r, g));
            }
        }
    })?;
    match overflow {
        Some((r, g)) => Err(format!(
            "row {r}, group {g} keeps more than N = {n} weights for this member"
        )),
        None => Ok(out),
    }
}

/// Checks that the values, indices and tags of `p` have the sizes a `rows x k` matrix of
/// densest pattern `dense` in a family of `fam` needs; returns the index and tag widths.
fn check_sizes(
    p: &Packed,
    rows: usize,
    k: usize,
    dense: Pattern,
    fam: usize,
) -> Result<(u32, u32), String> {
    let ib = index_bits(dense.m);
    let tb = if fam > 1 {
        index_bits(u32::try_from(fam).map_err(|_| format!("a family of {fam} members"))?)
    } else {
        0
    };
    let slots = slot_count(rows, k, dense)? as u64;
    let need = |bits: u32| slots.checked_mul(u64::from(bits)).map(|b| b.div_ceil(8));
    for (what, have, want) in [
        ("values", p.values.len(), slots.checked_mul(2)),
        ("indices", p.indices.len(), need(ib)),
        ("tags", p.tags.len(), need(tb)),
    ] {
        if Some(have as u64) != want {
            return Err(match want {
                Some(w) => format!("{what} hold {have} bytes, expected {w}"),
                None => format!("{what}: the size for {slots} slots overflows"),
            });
        }
    }
    Ok((ib, tb))
}

/// Walks every stored slot in file order, calling `f(row, group, slot)` with `Some((value,
/// offset, tag))` for a real slot and `None` for padding of a short last group. Checks the
/// sizes of the three parts, that offsets lie in their group and ascend, and that tags name
/// a member.
fn for_each_slot(
    p: &Packed,
    rows: usize,
    k: usize,
    dense: Pattern,
    fam: usize,
    mut f: impl FnMut(usize, usize, Option<(f32, u32, usize)>),
) -> Result<(), String> {
    let m = dense.m as usize;
    let n = dense.n as usize;
    let groups = k.div_ceil(m);
    let (ib, tb) = check_sizes(p, rows, k, dense, fam)?;
    let mut idx = BitReader::new(&p.indices);
    let mut tags = BitReader::new(&p.tags);
    for r in 0..rows {
        for g in 0..groups {
            let len = m.min(k - g * m);
            let mut last: Option<usize> = None;
            for slot in 0..n {
                let s = (r * groups + g) * n + slot;
                let v = half::f16::from_le_bytes([p.values[2 * s], p.values[2 * s + 1]]).to_f32();
                let o = idx.get(ib).ok_or("index data is truncated")? as usize;
                let t = if tb > 0 {
                    tags.get(tb).ok_or("tag data is truncated")? as usize
                } else {
                    0
                };
                if slot >= n.min(len) {
                    f(r, g, None); // padding of a short last group
                    continue;
                }
                if o >= len || last.is_some_and(|l| o <= l) {
                    return Err(format!(
                        "index {o} in row {r}, group {g} is out of range or out of order \
                         (a group of {len} keeps ascending offsets)"
                    ));
                }
                if t >= fam {
                    return Err(format!(
                        "tag {t} in row {r}, group {g} names no member of a family of {fam}"
                    ));
                }
                last = Some(o);
                f(r, g, Some((v, o as u32, t)));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Pattern {
        Pattern::parse(s).unwrap()
    }

    #[test]
    fn keeps_the_largest_with_ties_to_the_lower_index() {
        let w = [
            0.5, -2.0, 2.0, 0.1, /* next group */ 1.0, 1.0, 1.0, 1.0,
        ];
        let m = prune(&w, 1, 8, pat("2:4"), None);
        assert_eq!(m.kept, vec![vec![1, 2], vec![0, 1]]);
    }

    #[test]
    fn a_short_last_group_keeps_min_n_len() {
        let w = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = prune(&w, 1, 6, pat("3:4"), None);
        assert_eq!(m.kept, vec![vec![1, 2, 3], vec![0, 1]]);
    }

    #[test]
    fn pack_and_unpack_round_trip_a_family() {
        let w: Vec<f32> = (0..3 * 20)
            .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
            .collect();
        let fam = [pat("4:8"), pat("2:8"), pat("1:8")];
        let masks = prune_family(&w, 3, 20, &fam);
        let p = pack(&w, &masks);
        for (j, mask) in masks.iter().enumerate() {
            let member = fam.len() - 1 - j; // 0 = sparsest
            let got = unpack(&p, 3, 20, fam[0], fam.len(), member).unwrap();
            assert_eq!(got, apply(&w, mask), "member {}", fam[j]);
        }
    }
}
