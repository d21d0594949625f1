//! The per-action energy table and what a run's counted actions cost.
//!
//! `energy = MACs * mac_pj(value width) + SRAM bytes read * sram_read_pj_per_byte + SRAM
//! bytes written * sram_write_pj_per_byte + DRAM bytes * dram_pj_per_byte + activates *
//! dram_activate_pj + (static_mw + sum of the modules' static_mw) * time`.
//!
//! Defaults, and where they come from (all are assumptions of this project, to be replaced
//! by numbers for a given technology in the topology's `energy:` block):
//! - `mac_pj` 1.5 pJ: a multiply-accumulate at 16-bit values, after M. Horowitz,
//!   "Computing's energy problem", ISSCC 2014 (45 nm: FP16 multiply 1.1 pJ + add 0.4 pJ).
//! - `mac_pj_8bit` 0.3 pJ: at 8-bit values, same source (8-bit integer multiply 0.2 pJ +
//!   32-bit integer accumulate 0.1 pJ).
//! - `sram_read_pj_per_byte`, `sram_write_pj_per_byte` 5 pJ/B: between Horowitz's 32 KB
//!   (20 pJ per 64-bit access) and 1 MB (100 pJ) SRAM figures, for 128-256 KiB banks.
//! - `dram_pj_per_byte` 120 pJ/B: about 15 pJ/bit for DDR4 including I/O (the order
//!   reported for DDR4 in M. O'Connor et al., "Fine-Grained DRAM", MICRO 2017).
//! - `dram_activate_pj` 1,000 pJ: about 1 nJ per activate-precharge pair of a x64 DDR4 rank
//!   (order of magnitude of Micron's DDR4 power calculations).
//! - `static_mw` 500 mW: static power not given to a module (an assumption for the device
//!   static power of a large FPGA; set 0 to report dynamic energy only). Each module may
//!   also have its own `static_mw` (a parameter every module kind takes, default 0: an
//!   ASIC's per-block leakage), reported per module.

use serde::Serialize;

/// Energy per action.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyTable {
    /// Per useful multiply-accumulate at 16-bit values, pJ.
    pub mac_pj: f64,
    /// Per useful multiply-accumulate at 8-bit values, pJ.
    pub mac_pj_8bit: f64,
    /// Per byte read from on-chip SRAM, pJ.
    pub sram_read_pj_per_byte: f64,
    /// Per byte written to on-chip SRAM, pJ.
    pub sram_write_pj_per_byte: f64,
    /// Per byte moved to or from DRAM, pJ.
    pub dram_pj_per_byte: f64,
    /// Per DRAM activate (with its precharge), pJ.
    pub dram_activate_pj: f64,
    /// Static power not given to a module, mW.
    pub static_mw: f64,
}

impl Default for EnergyTable {
    fn default() -> Self {
        EnergyTable {
            mac_pj: 1.5,
            mac_pj_8bit: 0.3,
            sram_read_pj_per_byte: 5.0,
            sram_write_pj_per_byte: 5.0,
            dram_pj_per_byte: 120.0,
            dram_activate_pj: 1000.0,
            static_mw: 500.0,
        }
    }
}

/// Largest energy of one action, pJ (1 uJ). With this bound (and static power of at most
/// 1 kW), every energy a run can count stays finite.
pub const MAX_ACTION_PJ: f64 = 1e6;

/// The keys of the `energy:` block, with their units.
pub const KEYS: &[(&str, &str)] = &[
    ("mac_pj", "pJ per MAC at 16-bit values"),
    ("mac_pj_8bit", "pJ per MAC at 8-bit values"),
    ("sram_read_pj_per_byte", "pJ per byte"),
    ("sram_write_pj_per_byte", "pJ per byte"),
    ("dram_pj_per_byte", "pJ per byte"),
    ("dram_activate_pj", "pJ per activate"),
    ("static_mw", "mW"),
];

impl EnergyTable {
    /// Sets `key` to `value`; `Err` names the known keys.
    pub fn set(&mut self, key: &str, value: f64) -> Result<(), String> {
        let slot = match key {
            "mac_pj" => &mut self.mac_pj,
            "mac_pj_8bit" => &mut self.mac_pj_8bit,
            "sram_read_pj_per_byte" => &mut self.sram_read_pj_per_byte,
            "sram_write_pj_per_byte" => &mut self.sram_write_pj_per_byte,
            "dram_pj_per_byte" => &mut self.dram_pj_per_byte,
            "dram_activate_pj" => &mut self.dram_activate_pj,
            "static_mw" => &mut self.static_mw,
            _ => {
                let names: Vec<&str> = KEYS.iter().map(|k| k.0).collect();
                return Err(crate::topology::error::suggestion(
                    key,
                    &names,
                    "energy keys",
                ));
            }
        };
        let max = if key == "static_mw" {
            crate::component::STATIC_MW_MAX
        } else {
            MAX_ACTION_PJ
        };
        if !(0.0..=max).contains(&value) {
            return Err(format!(
                "`{key}` = {value} is out of range; expected a number in 0..={max} ({})",
                KEYS.iter().find(|k| k.0 == key).map_or("", |k| k.1)
            ));
        }
        *slot = value;
        Ok(())
    }
}

/// Counted actions.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Actions {
    /// Useful MACs.
    pub macs: u64,
    /// SRAM bytes read.
    pub sram_read_bytes: u64,
    /// SRAM bytes written.
    pub sram_write_bytes: u64,
    /// DRAM bytes moved.
    pub dram_bytes: u64,
    /// DRAM activates.
    pub activates: u64,
}

/// Energy of counted actions by kind, pJ.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Breakdown {
    /// MACs.
    pub mac_pj: f64,
    /// SRAM reads and writes.
    pub sram_pj: f64,
    /// DRAM transfers and activates.
    pub dram_pj: f64,
}

impl Breakdown {
    /// Sum, pJ.
    pub fn total_pj(&self) -> f64 {
        self.mac_pj + self.sram_pj + self.dram_pj
    }
}

impl EnergyTable {
    /// Energy of one MAC at `value_bits`-bit values (8 or 16), pJ.
    pub fn mac_pj_at(&self, value_bits: u64) -> f64 {
        if value_bits <= 8 {
            self.mac_pj_8bit
        } else {
            self.mac_pj
        }
    }

    /// Dynamic energy of `a`, MACs at `value_bits`-bit values.
    pub fn dynamic(&self, a: &Actions, value_bits: u64) -> Breakdown {
        Breakdown {
            mac_pj: a.macs as f64 * self.mac_pj_at(value_bits),
            sram_pj: a.sram_read_bytes as f64 * self.sram_read_pj_per_byte
                + a.sram_write_bytes as f64 * self.sram_write_pj_per_byte,
            dram_pj: a.dram_bytes as f64 * self.dram_pj_per_byte
                + a.activates as f64 * self.dram_activate_pj,
        }
    }

    /// Static energy of the power not given to a module, over `seconds`, pJ.
    pub fn static_pj(&self, seconds: f64) -> f64 {
        static_pj(self.static_mw, seconds)
    }
}

/// Energy of `mw` milliwatts over `seconds`, pJ.
pub fn static_pj(mw: f64, seconds: f64) -> f64 {
    mw * 1e-3 * seconds * 1e12
}
