//! DDR4 timing presets (JEDEC JESD79-4 speed bins), in clock cycles of the DRAM command
//! clock `tCK`, plus the refresh times in nanoseconds.
//!
//! | preset | tCK | CL-RCD-RP | RAS | RC | CCD_S/L | RRD_S/L | FAW | WR | RTP | CWL | WTR_S/L | RFC | REFI |
//! |---|---|---|---|---|---|---|---|---|---|---|---|---|---|
//! | ddr4-2400 | 0.833 ns | 16-16-16 | 39 | 55 | 4/6 | 4/6 | 26 | 18 | 9 | 12 | 3/9 | 350 ns | 7.8 us |
//! | ddr4-3200 | 0.625 ns | 22-22-22 | 52 | 74 | 4/8 | 4/8 | 34 | 24 | 12 | 16 | 4/12 | 350 ns | 7.8 us |
//!
//! (DDR4-3200 values not given in STA.md — RRD, FAW, WR, RTP, CWL, WTR — are the JEDEC
//! 3200AA bin for 8 Gb x8 devices with 1 KiB pages.) Burst length 8: a burst occupies the
//! data bus `BL/2 = 4` tCK and moves `8 * bus_bytes` bytes (64 B on a x64 channel).

/// Timing parameters of one DDR4 speed bin.
#[derive(Clone, Debug, PartialEq)]
pub struct Ddr4Timing {
    /// Preset name.
    pub name: &'static str,
    /// Command clock period in ps (exact to the JEDEC ns value).
    pub tck_ps: u64,
    /// CAS latency (RD to first data), cycles.
    pub cl: u64,
    /// ACT to RD/WR, cycles.
    pub rcd: u64,
    /// PRE to ACT, cycles.
    pub rp: u64,
    /// ACT to PRE, cycles.
    pub ras: u64,
    /// ACT to ACT same bank, cycles.
    pub rc: u64,
    /// Column to column, different bank group, cycles.
    pub ccd_s: u64,
    /// Column to column, same bank group, cycles.
    pub ccd_l: u64,
    /// ACT to ACT, different bank group, cycles.
    pub rrd_s: u64,
    /// ACT to ACT, same bank group, cycles.
    pub rrd_l: u64,
    /// Four-activate window, cycles.
    pub faw: u64,
    /// Write recovery (end of write data to PRE), cycles.
    pub wr: u64,
    /// RD to PRE, cycles.
    pub rtp: u64,
    /// CAS write latency (WR to first data), cycles.
    pub cwl: u64,
    /// End of write data to RD, different bank group, cycles.
    pub wtr_s: u64,
    /// End of write data to RD, same bank group, cycles.
    pub wtr_l: u64,
    /// Refresh cycle time, ns.
    pub rfc_ns: u64,
    /// Average refresh interval, ns.
    pub refi_ns: u64,
    /// Burst length in beats.
    pub burst_length: u64,
}

/// DDR4-2400 (STA.md's reference DRAM).
pub const DDR4_2400: Ddr4Timing = Ddr4Timing {
    name: "ddr4-2400",
    tck_ps: 833,
    cl: 16,
    rcd: 16,
    rp: 16,
    ras: 39,
    rc: 55,
    ccd_s: 4,
    ccd_l: 6,
    rrd_s: 4,
    rrd_l: 6,
    faw: 26,
    wr: 18,
    rtp: 9,
    cwl: 12,
    wtr_s: 3,
    wtr_l: 9,
    rfc_ns: 350,
    refi_ns: 7_800,
    burst_length: 8,
};

/// DDR4-3200.
pub const DDR4_3200: Ddr4Timing = Ddr4Timing {
    name: "ddr4-3200",
    tck_ps: 625,
    cl: 22,
    rcd: 22,
    rp: 22,
    ras: 52,
    rc: 74,
    ccd_s: 4,
    ccd_l: 8,
    rrd_s: 4,
    rrd_l: 8,
    faw: 34,
    wr: 24,
    rtp: 12,
    cwl: 16,
    wtr_s: 4,
    wtr_l: 12,
    rfc_ns: 350,
    refi_ns: 7_800,
    burst_length: 8,
};

/// Names of the presets, for `stasim models` and validation.
pub const PRESET_NAMES: &[&str] = &["ddr4-2400", "ddr4-3200"];

/// The preset called `name`.
pub fn preset(name: &str) -> Option<&'static Ddr4Timing> {
    match name {
        "ddr4-2400" => Some(&DDR4_2400),
        "ddr4-3200" => Some(&DDR4_3200),
        _ => None,
    }
}

impl Ddr4Timing {
    /// `cycles` of tCK in ps.
    pub fn ps(&self, cycles: u64) -> u64 {
        cycles * self.tck_ps
    }
    /// Data-bus time of one burst (BL/2 cycles, double data rate), ps.
    pub fn burst_ps(&self) -> u64 {
        self.ps(self.burst_length / 2)
    }
    /// Peak bandwidth of one channel with a `bus_bytes`-wide data bus, GB/s.
    pub fn peak_gbps(&self, bus_bytes: u64) -> f64 {
        // Two transfers per tCK.
        2.0 * bus_bytes as f64 / (self.tck_ps as f64 / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddr4_2400_x64_peaks_at_19_2_gbps() {
        let p = DDR4_2400.peak_gbps(8);
        assert!((p - 19.2).abs() < 0.05, "{p}");
        assert_eq!(DDR4_2400.rc, DDR4_2400.ras + DDR4_2400.rp);
    }
}
