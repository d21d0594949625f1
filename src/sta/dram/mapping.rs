//! Address mapping: which bits of a byte address select the channel, rank, bank group, bank,
//! row and column of a burst.
//!
//! A mapping is written DRAMsim3-style, most significant field first, two letters a field:
//! `ro` row, `ch` channel, `ra` rank, `bg` bank group, `ba` bank, `co` column (each exactly
//! once); below them sit the burst-offset bits. Named presets:
//!
//! | name | string | from |
//! |---|---|---|
//! | `stasim` (default) | `rorabacobgch` | stasim's first mapping: channels, then bank groups interleave at burst granularity |
//! | `RoBaRaCoCh` | `robabgracoch` | Ramulator 2 `RoBaRaCoCh` (bank = bank group + bank) |
//! | `ChRaBaRoCo` | `chrabgbaroco` | Ramulator 2 `ChRaBaRoCo` |
//! | `rochrababgco` | itself | DRAMsim3's default |
//!
//! The default keeps a sequential stream on one open row per bank for `row_bytes /
//! burst_bytes` bursts per bank while consecutive bursts alternate bank groups (column
//! commands `tCCD_S` apart instead of `tCCD_L`) and stay in one rank (no `tRTRS` bubbles):
//! that is what the engine's streaming weight and activation fetches need. All field sizes
//! are powers of two; decoding is shifts and masks.

/// The fields of an address, in the order of [`Mapping::fields`] indices.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Field {
    /// Channel.
    Channel,
    /// Rank.
    Rank,
    /// Bank group.
    BankGroup,
    /// Bank within its group.
    Bank,
    /// Row.
    Row,
    /// Column (in bursts).
    Column,
}

const CODES: [(&str, Field); 6] = [
    ("ch", Field::Channel),
    ("ra", Field::Rank),
    ("bg", Field::BankGroup),
    ("ba", Field::Bank),
    ("ro", Field::Row),
    ("co", Field::Column),
];

/// Named mapping presets: (name, DRAMsim3-style string).
pub const PRESETS: &[(&str, &str)] = &[
    ("stasim", "rorabacobgch"),
    ("RoBaRaCoCh", "robabgracoch"),
    ("ChRaBaRoCo", "chrabgbaroco"),
];

/// The default mapping.
pub const DEFAULT: &str = "stasim";

/// Where one burst goes.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Place {
    /// Channel.
    pub channel: u32,
    /// Rank.
    pub rank: u32,
    /// Bank group.
    pub bank_group: u32,
    /// Bank within its group.
    pub bank: u32,
    /// Row.
    pub row: u32,
    /// Column, in bursts.
    pub column: u32,
}

/// Sizes of every field (powers of two) and the burst size.
#[derive(Clone, Debug)]
pub struct Sizes {
    /// Channels.
    pub channels: u64,
    /// Ranks per channel.
    pub ranks: u64,
    /// Bank groups per rank.
    pub bank_groups: u64,
    /// Banks per bank group.
    pub banks_per_group: u64,
    /// Rows per bank.
    pub rows: u64,
    /// Bursts per row.
    pub columns: u64,
    /// Bytes per burst.
    pub burst_bytes: u64,
}

impl Sizes {
    fn of(&self, f: Field) -> u64 {
        match f {
            Field::Channel => self.channels,
            Field::Rank => self.ranks,
            Field::BankGroup => self.bank_groups,
            Field::Bank => self.banks_per_group,
            Field::Row => self.rows,
            Field::Column => self.columns,
        }
    }
}

/// A parsed mapping: for each field, its shift and mask.
#[derive(Clone, Debug)]
pub struct Mapping {
    /// The DRAMsim3-style string.
    pub text: String,
    offset_bits: u32,
    /// (shift, mask) per field, indexed like [`CODES`].
    slices: [(u32, u64); 6],
}

/// `f`'s index in [`CODES`] (the enum's order).
fn index(f: Field) -> usize {
    f as usize
}

impl Mapping {
    /// Parses `spec` (a preset name or a 12-letter string) for `sizes` (every size a power
    /// of two).
    pub fn parse(spec: &str, sizes: &Sizes) -> Result<Mapping, String> {
        let text = PRESETS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(spec))
            .map_or(spec, |(_, s)| s)
            .to_ascii_lowercase();
        let hint = || {
            format!(
                "`mapping` = `{spec}`: expected one of {} or six two-letter fields, most significant first, each of ro ch ra bg ba co once (e.g. `rochrababgco`)",
                PRESETS
                    .iter()
                    .map(|(n, _)| format!("`{n}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        if text.len() != 12 || !text.is_ascii() {
            return Err(hint());
        }
        let mut order = Vec::new();
        for k in 0..6 {
            let code = &text[2 * k..2 * k + 2];
            let Some(&(_, f)) = CODES.iter().find(|(c, _)| *c == code) else {
                return Err(hint());
            };
            if order.contains(&f) {
                return Err(hint());
            }
            order.push(f);
        }
        let mut slices = [(0u32, 0u64); 6];
        let mut shift = 0;
        for &f in order.iter().rev() {
            let n = sizes.of(f);
            slices[index(f)] = (shift, n - 1);
            shift += n.trailing_zeros();
        }
        Ok(Mapping {
            text,
            offset_bits: sizes.burst_bytes.trailing_zeros(),
            slices,
        })
    }

    #[inline]
    fn get(&self, a: u64, f: Field) -> u32 {
        let (shift, mask) = self.slices[index(f)];
        ((a >> shift) & mask) as u32
    }

    /// Decodes a byte address (bits above the mapped ones wrap).
    #[inline]
    pub fn decode(&self, addr: u64) -> Place {
        let a = addr >> self.offset_bits;
        Place {
            channel: self.get(a, Field::Channel),
            rank: self.get(a, Field::Rank),
            bank_group: self.get(a, Field::BankGroup),
            bank: self.get(a, Field::Bank),
            row: self.get(a, Field::Row),
            column: self.get(a, Field::Column),
        }
    }

    /// The byte address of `p` (the inverse of [`Mapping::decode`]).
    pub fn encode(&self, p: &Place) -> u64 {
        let parts = [
            (Field::Channel, p.channel),
            (Field::Rank, p.rank),
            (Field::BankGroup, p.bank_group),
            (Field::Bank, p.bank),
            (Field::Row, p.row),
            (Field::Column, p.column),
        ];
        let a = parts.iter().fold(0u64, |a, &(f, v)| {
            let (shift, mask) = self.slices[index(f)];
            a | ((u64::from(v) & mask) << shift)
        });
        a << self.offset_bits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_field_codes_follow_the_field_order() {
        for (k, (_, f)) in CODES.iter().enumerate() {
            assert_eq!(index(*f), k, "{f:?}");
        }
    }

    fn sizes() -> Sizes {
        Sizes {
            channels: 2,
            ranks: 2,
            bank_groups: 4,
            banks_per_group: 4,
            rows: 65_536,
            columns: 128,
            burst_bytes: 64,
        }
    }

    #[test]
    fn default_mapping_is_row_rank_bank_column_bankgroup_channel() {
        let m = Mapping::parse(DEFAULT, &sizes()).unwrap();
        // Written out with divisions, as the first stasim mapping did.
        for addr in [
            0u64,
            64,
            128,
            4096,
            1 << 20,
            0x0012_3456_78c0,
            0x00de_adbe_ef00,
        ] {
            let mut a = addr / 64;
            let channel = a % 2;
            a /= 2;
            let bg = a % 4;
            a /= 4;
            let column = a % 128;
            a /= 128;
            let bank = a % 4;
            a /= 4;
            let rank = a % 2;
            a /= 2;
            let want = Place {
                channel: channel as u32,
                rank: rank as u32,
                bank_group: bg as u32,
                bank: bank as u32,
                row: (a % 65_536) as u32,
                column: column as u32,
            };
            assert_eq!(m.decode(addr), want, "{addr:#x}");
            assert_eq!(
                m.encode(&want),
                addr % (2 * 2 * 4 * 4 * 65_536 * 128 * 64) / 64 * 64
            );
        }
    }

    #[test]
    fn ramulator_robaracoch_puts_the_column_above_the_channel() {
        let m = Mapping::parse("RoBaRaCoCh", &sizes()).unwrap();
        assert_eq!(m.decode(64).channel, 1);
        assert_eq!(m.decode(128).column, 1);
        assert_eq!(m.decode(128 * 128).rank, 1);
        assert_eq!(m.decode(128 * 128 * 2).bank_group, 1);
        assert_eq!(m.decode(128 * 128 * 2 * 4).bank, 1);
        assert_eq!(m.decode(128 * 128 * 2 * 4 * 4).row, 1);
    }

    #[test]
    fn chrabaroco_puts_the_channel_on_top() {
        let m = Mapping::parse("chrabgbaroco", &sizes()).unwrap();
        let top = 64 * 128 * 65_536 * 4 * 4 * 2;
        assert_eq!(m.decode(top).channel, 1);
        assert_eq!(m.decode(64 * 128).row, 1);
        assert_eq!(m.decode(64).column, 1);
    }

    #[test]
    fn a_bad_mapping_string_is_refused_with_the_accepted_forms() {
        for bad in ["", "rochrababg", "rochrababgxx", "rorochbabgco", "stasimx"] {
            let e = Mapping::parse(bad, &sizes()).unwrap_err();
            assert!(e.contains("each of ro ch ra bg ba co once"), "{bad}: {e}");
        }
    }
}
