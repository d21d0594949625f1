//! Memory standards: JEDEC timings (in cycles of the command clock tCK) and the default
//! organisation of each DRAM preset the `dram` module offers.
//!
//! # Source
//! Ramulator 2 (github.com/CMU-SAFARI/ramulator2, commit c5b1c3a), `python/ramulator/dram/*.py`
//! (`timing_presets`, `org_presets` and the `_resolve_*` JEDEC tables of each standard):
//!
//! | preset | Ramulator 2 timing / org | tCK ps | nBL | CL | CWL | RCD rd/wr | RP | RAS | RC | WR | RTP | CCD S/L (wr S/L) | RRD S/L | FAW | WTR S/L | RTW | RTRS | RFC ns | REFI ns |
//! |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
//! | ddr4-2400 | `DDR4_2400R`, `DDR4_8Gb_x8` | 833 | 4 | 16 | 12 | 16/16 | 16 | 39 | 55 | 18 | 9 | 4/6 | 4/6 | 26 | 3/9 | 10 | 2 | 350 | 7800 |
//! | ddr4-3200 | `DDR4_3200AA`, `DDR4_8Gb_x8` | 625 | 4 | 22 | 16 | 22/22 | 22 | 52 | 74 | 24 | 12 | 4/8 | 4/8 | 34 | 4/12 | 12 | 2 | 350 | 7800 |
//! | ddr5-4800 | `DDR5_4800AN`, `DDR5_16Gb_x8` | 416 | 8 | 34 | 32 | 34/34 | 34 | 77 | 111 | 72 | 18 | 8/12 (8/48) | 8/12 | 48 | 6/24 | 14 | 2 | 295 | 3900 |
//! | lpddr5-6400 | `LPDDR5_6400`, `LPDDR5_16Gb_x16` | 1250 | 2 | 17 | 9 | 15/15 | 15 | 34 | 49 | 28 | 8 | 2/4 | 4/4 | 16 | 5/12 | 12 | 2 | 280 | 3906 |
//! | hbm2-2000 | `HBM2_2000Mbps`, `HBM2_2Gb` | 1000 | 2 | 14 | 5 | 14/12 | 14 | 34 | 48 | 16 | 5 | 2/4 | 4/4 | 15 | 6/8 | 13 | 2 | 160 | 3900 |
//! | hbm3-6400 | `HBM3_6400Mbps`, `HBM3_16Gb_8hi` | 625 | 2 | 20 | 10 | 31/15 | 26 | 45 | 72 | 33 | 9 | 2/4 | 4/5 | 24 | 7/10 | 20 | 1 | 350 | 3900 |
//!
//! Derived entries follow Ramulator 2's formulas: RTW (read to write, same rank, command to
//! command) = `CL + nBL + 2 - CWL` (DDR5: `+ 2` more; HBM3: its `nRTW`); RTRS (rank-to-rank
//! switch on the data bus) = Ramulator's `nCS` (HBM3: `nCCDR - nBL` between stack IDs);
//! RRD/FAW/RFC/REFI from the `_resolve_*` tables for the org's density and width.
//! LPDDR5's WTR_L is `nWTRL + nBL_max - nBL_min` (Ramulator: `CWL + nBL_max + nWTRL`).
//! Two deliberate differences: DDR4's tRFC is JESD79-4's 350 ns for 8 Gb (STA.md; Ramulator
//! 2's table says 360 ns), and HBM3's stack IDs are folded into rows (one rank, 2x rows).
//!
//! # Organisation
//! `bus_bytes` is the data bus of one channel (HBM: one pseudo-channel, which this model
//! treats as a channel with its own banks and data bus); one burst moves
//! `bus_bytes x burst_beats` bytes in `nBL` tCK: 64 B on DDR4 (x64, BL8) and DDR5 (x32
//! sub-channel, BL16), 32 B on LPDDR5 (x16, BL16), HBM2 (x64 pseudo-channel, BL4) and HBM3
//! (x32 pseudo-channel, BL8). Peak per channel = burst bytes / (nBL x tCK): 19.2, 25.6, 38.5,
//! 12.8, 16.0 and 25.6 GB/s.

/// Timings (tCK cycles unless the name says otherwise) and default organisation of one
/// memory standard's speed bin.
#[derive(Clone, Debug, PartialEq)]
pub struct Standard {
    /// Preset name (`ddr4-2400`, ...).
    pub name: &'static str,
    /// Command clock period, ps.
    pub tck_ps: u64,
    /// Data-bus cycles of one burst (nBL).
    pub nbl: u64,
    /// Beats (transfers) per burst (the burst length BL).
    pub burst_beats: u64,
    /// CAS latency: RD to first data.
    pub cl: u64,
    /// CAS write latency: WR to first data.
    pub cwl: u64,
    /// ACT to RD.
    pub rcd: u64,
    /// ACT to WR.
    pub rcd_wr: u64,
    /// PRE to ACT.
    pub rp: u64,
    /// ACT to PRE.
    pub ras: u64,
    /// ACT to ACT, same bank.
    pub rc: u64,
    /// Write recovery: end of write data to PRE.
    pub wr: u64,
    /// RD to PRE.
    pub rtp: u64,
    /// Column to column, other bank group (reads; writes on DDR4).
    pub ccd_s: u64,
    /// Column to column, same bank group (reads; writes on DDR4).
    pub ccd_l: u64,
    /// WR to WR, other bank group.
    pub ccd_s_wr: u64,
    /// WR to WR, same bank group.
    pub ccd_l_wr: u64,
    /// ACT to ACT, other bank group, same rank.
    pub rrd_s: u64,
    /// ACT to ACT, same bank group.
    pub rrd_l: u64,
    /// Four-activate window per rank.
    pub faw: u64,
    /// End of write data to RD, other bank group (same rank).
    pub wtr_s: u64,
    /// End of write data to RD, same bank group.
    pub wtr_l: u64,
    /// RD to WR, same rank (read-to-write turnaround), command to command.
    pub rtw: u64,
    /// Idle data-bus cycles between bursts of different ranks.
    pub rtrs: u64,
    /// All-bank refresh time, ps.
    pub rfc_ps: u64,
    /// Average refresh interval, ps.
    pub refi_ps: u64,
    /// Default data bus width of one channel, bytes.
    pub bus_bytes: u64,
    /// Default ranks per channel.
    pub ranks: u64,
    /// Default bank groups per rank.
    pub bank_groups: u64,
    /// Default banks per bank group.
    pub banks_per_group: u64,
    /// Default rows per bank.
    pub rows: u64,
    /// Default page size per rank (row bytes across the rank's devices).
    pub row_bytes: u64,
}

/// DDR4-2400R, 8 Gb x8 devices on a x64 channel, 2 ranks (STA.md's reference DRAM).
pub const DDR4_2400: Standard = Standard {
    name: "ddr4-2400",
    tck_ps: 833,
    nbl: 4,
    burst_beats: 8,
    cl: 16,
    cwl: 12,
    rcd: 16,
    rcd_wr: 16,
    rp: 16,
    ras: 39,
    rc: 55,
    wr: 18,
    rtp: 9,
    ccd_s: 4,
    ccd_l: 6,
    ccd_s_wr: 4,
    ccd_l_wr: 6,
    rrd_s: 4,
    rrd_l: 6,
    faw: 26,
    wtr_s: 3,
    wtr_l: 9,
    rtw: 16 + 4 + 2 - 12,
    rtrs: 2,
    rfc_ps: 350_000,
    refi_ps: 7_800_000,
    bus_bytes: 8,
    ranks: 2,
    bank_groups: 4,
    banks_per_group: 4,
    rows: 65_536,
    row_bytes: 8_192,
};

/// DDR4-3200AA, 8 Gb x8 devices on a x64 channel, 2 ranks.
pub const DDR4_3200: Standard = Standard {
    name: "ddr4-3200",
    tck_ps: 625,
    cl: 22,
    cwl: 16,
    rcd: 22,
    rcd_wr: 22,
    rp: 22,
    ras: 52,
    rc: 74,
    wr: 24,
    rtp: 12,
    ccd_l: 8,
    ccd_l_wr: 8,
    rrd_l: 8,
    faw: 34,
    wtr_s: 4,
    wtr_l: 12,
    rtw: 22 + 4 + 2 - 16,
    ..DDR4_2400
};

/// DDR5-4800AN, 16 Gb x8 devices on one x32 sub-channel (BL16: 64 B), 1 rank.
pub const DDR5_4800: Standard = Standard {
    name: "ddr5-4800",
    tck_ps: 416,
    nbl: 8,
    burst_beats: 16,
    cl: 34,
    cwl: 32,
    rcd: 34,
    rcd_wr: 34,
    rp: 34,
    ras: 77,
    rc: 111,
    wr: 72,
    rtp: 18,
    ccd_s: 8,
    ccd_l: 12,
    ccd_s_wr: 8,
    ccd_l_wr: 48,
    rrd_s: 8,
    rrd_l: 12,
    faw: 48,
    wtr_s: 6,
    wtr_l: 24,
    rtw: 34 + 8 + 2 - 32 + 2,
    rtrs: 2,
    rfc_ps: 295_000,
    refi_ps: 3_900_000,
    bus_bytes: 4,
    ranks: 1,
    bank_groups: 8,
    banks_per_group: 4,
    rows: 65_536,
    row_bytes: 4_096,
};

/// LPDDR5-6400 (bank-group mode, BL16), 16 Gb x16 channel, 1 rank.
pub const LPDDR5_6400: Standard = Standard {
    name: "lpddr5-6400",
    tck_ps: 1250,
    nbl: 2,
    burst_beats: 16,
    cl: 17,
    cwl: 9,
    rcd: 15,
    rcd_wr: 15,
    rp: 15,
    ras: 34,
    rc: 49,
    wr: 28,
    rtp: 8,
    ccd_s: 2,
    ccd_l: 4,
    ccd_s_wr: 2,
    ccd_l_wr: 4,
    rrd_s: 4,
    rrd_l: 4,
    faw: 16,
    wtr_s: 5,
    wtr_l: 10 + 4 - 2,
    rtw: 17 + 2 + 2 - 9,
    rtrs: 2,
    rfc_ps: 280_000,
    refi_ps: 3_906_000,
    bus_bytes: 2,
    ranks: 1,
    bank_groups: 4,
    banks_per_group: 4,
    rows: 65_536,
    row_bytes: 2_048,
};

/// HBM2 at 2 Gb/s per pin: one x64 pseudo-channel (BL4: 32 B), 2 Gb per pseudo-channel.
pub const HBM2_2000: Standard = Standard {
    name: "hbm2-2000",
    tck_ps: 1000,
    nbl: 2,
    burst_beats: 4,
    cl: 14,
    cwl: 5,
    rcd: 14,
    rcd_wr: 12,
    rp: 14,
    ras: 34,
    rc: 48,
    wr: 16,
    rtp: 5,
    ccd_s: 2,
    ccd_l: 4,
    ccd_s_wr: 2,
    ccd_l_wr: 4,
    rrd_s: 4,
    rrd_l: 4,
    faw: 15,
    wtr_s: 6,
    wtr_l: 8,
    rtw: 14 + 2 + 2 - 5,
    rtrs: 2,
    rfc_ps: 160_000,
    refi_ps: 3_900_000,
    bus_bytes: 8,
    ranks: 1,
    bank_groups: 4,
    banks_per_group: 4,
    rows: 16_384,
    row_bytes: 1_024,
};

/// HBM3 at 6.4 Gb/s per pin: one x32 pseudo-channel (BL8: 32 B), 16 Gb 8-high stack.
pub const HBM3_6400: Standard = Standard {
    name: "hbm3-6400",
    tck_ps: 625,
    nbl: 2,
    burst_beats: 8,
    cl: 20,
    cwl: 10,
    rcd: 31,
    rcd_wr: 15,
    rp: 26,
    ras: 45,
    rc: 72,
    wr: 33,
    rtp: 9,
    ccd_s: 2,
    ccd_l: 4,
    ccd_s_wr: 2,
    ccd_l_wr: 4,
    rrd_s: 4,
    rrd_l: 5,
    faw: 24,
    wtr_s: 7,
    wtr_l: 10,
    rtw: 20,
    rtrs: 1,
    rfc_ps: 350_000,
    refi_ps: 3_900_000,
    bus_bytes: 4,
    ranks: 1,
    bank_groups: 4,
    banks_per_group: 4,
    rows: 32_768,
    row_bytes: 1_024,
};

/// Every preset.
pub const ALL: &[&Standard] = &[
    &DDR4_2400,
    &DDR4_3200,
    &DDR5_4800,
    &LPDDR5_6400,
    &HBM2_2000,
    &HBM3_6400,
];

/// Names of the presets, for `stasim models` and validation.
pub const PRESET_NAMES: &[&str] = &[
    "ddr4-2400",
    "ddr4-3200",
    "ddr5-4800",
    "lpddr5-6400",
    "hbm2-2000",
    "hbm3-6400",
];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Standard> {
    ALL.iter().copied().find(|s| s.name == name)
}

impl Standard {
    /// `cycles` of tCK in ps.
    pub fn ps(&self, cycles: u64) -> u64 {
        cycles * self.tck_ps
    }
    /// Data-bus time of one burst, ps.
    pub fn burst_ps(&self) -> u64 {
        self.ps(self.nbl)
    }
    /// Peak bandwidth of one channel with a `bus_bytes`-wide data bus, GB/s.
    pub fn peak_gbps(&self, bus_bytes: u64) -> f64 {
        (bus_bytes * self.burst_beats) as f64 / (self.burst_ps() as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preset_names_list_every_standard_once() {
        assert_eq!(PRESET_NAMES.len(), ALL.len());
        for (n, s) in PRESET_NAMES.iter().zip(ALL) {
            assert_eq!(*n, s.name);
            assert_eq!(preset(n), Some(*s));
        }
    }

    #[test]
    fn peaks_are_pin_rate_times_width() {
        // Pin rate (Gb/s) x data pins / 8 = GB/s per channel.
        let cases = [
            (&DDR4_2400, 2.4 * 64.0 / 8.0),
            (&DDR4_3200, 3.2 * 64.0 / 8.0),
            (&DDR5_4800, 4.8 * 32.0 / 8.0),
            (&LPDDR5_6400, 6.4 * 16.0 / 8.0),
            (&HBM2_2000, 2.0 * 64.0 / 8.0),
            (&HBM3_6400, 6.4 * 32.0 / 8.0),
        ];
        for (s, want) in cases {
            let got = s.peak_gbps(s.bus_bytes);
            // tCK is rounded down to whole ps (416 for 416.7): within 0.2 %.
            assert!(
                (got - want).abs() / want < 0.002,
                "{}: {got} vs {want}",
                s.name
            );
        }
    }

    #[test]
    fn row_cycle_covers_activate_and_precharge() {
        for s in ALL {
            assert!(s.rc >= s.ras + s.rp - 1, "{}", s.name);
            assert!(s.ras >= s.rcd, "{}", s.name);
            assert!(s.ccd_l >= s.ccd_s && s.rrd_l >= s.rrd_s, "{}", s.name);
            assert!(s.row_bytes >= s.bus_bytes * s.burst_beats, "{}", s.name);
        }
    }
}
