//! Simulated time and clock domains.
//!
//! Time is an integer number of **picoseconds** ([`SimTime`]); it is used both for instants
//! and for durations. A [`Clock`] converts [`Cycles`] of one clock domain into time, so that
//! modules at 200 MHz and a DRAM at 1200 MHz share one simulation.
//!
//! A clock's period is `round(1e6 / f_MHz)` ps: 200 MHz is exactly 5,000 ps; 1,200 MHz is
//! 833 ps (0.04 % fast against 833.33 ps). A period may also be given exactly in ps.
//! Clocks run from [`Clock::MIN_MHZ`] (1 kHz) to [`Clock::MAX_MHZ`] (100 GHz).
//!
//! # Overflow
//! Simulated time ends at the [`SimTime::HORIZON`], 2^62 ps (about 53 simulated days). Sums
//! and products of times saturate instead of wrapping, and the engine ends a run whose next
//! event lies at or past the horizon with [`super::SimError::TimeOverflow`]. Every single
//! duration a topology can ask for (cycle counts and latencies of at most 2^32 cycles, times
//! a period of at most 1 ms) is below 2^62 ps, so a time before the horizon plus any one
//! duration never wraps a `u64`.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in, or a span of, simulated time in picoseconds.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(u64);

impl SimTime {
    /// Time zero, when every simulation starts.
    pub const ZERO: SimTime = SimTime(0);
    /// The largest representable time (about 213 simulated days); saturated sums end here.
    pub const MAX: SimTime = SimTime(u64::MAX);
    /// The end of simulated time: 2^62 ps, about 53 days. A run that reaches it fails
    /// ([`super::SimError::TimeOverflow`]); durations parsed from text must be below it.
    pub const HORIZON: SimTime = SimTime(1 << 62);

    /// A time of `ps` picoseconds.
    pub const fn from_ps(ps: u64) -> Self {
        SimTime(ps)
    }
    /// A time of `ns` nanoseconds.
    pub const fn from_ns(ns: u64) -> Self {
        SimTime(ns * 1_000)
    }
    /// A time of `us` microseconds.
    pub const fn from_us(us: u64) -> Self {
        SimTime(us * 1_000_000)
    }
    /// Picoseconds.
    pub const fn as_ps(self) -> u64 {
        self.0
    }
    /// Nanoseconds, as a real number.
    pub fn as_ns_f64(self) -> f64 {
        self.0 as f64 / 1e3
    }
    /// Microseconds, as a real number.
    pub fn as_us_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// Parses a duration with a unit: `250ps`, `10ns`, `5us`, `2.5ms`, `1s` (spaces allowed).
    pub fn parse(text: &str) -> Result<SimTime, String> {
        let t = text.trim();
        let split = t
            .find(|c: char| c.is_ascii_alphabetic())
            .ok_or_else(|| format!("`{text}` has no unit; write e.g. `5us` (ps, ns, us, ms, s)"))?;
        let (num, unit) = t.split_at(split);
        let x: f64 = num
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a number", num.trim()))?;
        let scale = match unit.trim() {
            "ps" => 1.0,
            "ns" => 1e3,
            "us" => 1e6,
            "ms" => 1e9,
            "s" => 1e12,
            u => return Err(format!("unknown time unit `{u}`; use ps, ns, us, ms or s")),
        };
        let ps = x * scale;
        if !ps.is_finite() || ps < 0.0 || ps >= SimTime::HORIZON.0 as f64 {
            return Err(format!(
                "`{text}` is not a duration between 0 and 2^62 ps (about 53 days, the end of simulated time)"
            ));
        }
        Ok(SimTime(ps.round() as u64))
    }

    /// Sum that stops at [`SimTime::MAX`] instead of wrapping.
    pub const fn saturating_add(self, other: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(other.0))
    }

    /// Whether this time lies at or past the [`SimTime::HORIZON`].
    pub const fn past_horizon(self) -> bool {
        self.0 >= SimTime::HORIZON.0
    }
}

/// Saturating (see the module's "Overflow").
impl Add for SimTime {
    type Output = SimTime;
    #[inline]
    fn add(self, rhs: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(rhs.0))
    }
}

/// Saturating (see the module's "Overflow").
impl AddAssign for SimTime {
    #[inline]
    fn add_assign(&mut self, rhs: SimTime) {
        self.0 = self.0.saturating_add(rhs.0);
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimTime) -> SimTime {
        SimTime(self.0 - rhs.0)
    }
}

impl fmt::Display for SimTime {
    /// Picks a readable unit: `1.5 us`, `250 ns`, `833 ps`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ps = self.0;
        if ps >= 1_000_000_000 {
            write!(f, "{:.3} ms", ps as f64 / 1e9)
        } else if ps >= 1_000_000 {
            write!(f, "{:.3} us", ps as f64 / 1e6)
        } else if ps >= 1_000 && ps.is_multiple_of(1_000) {
            write!(f, "{} ns", ps / 1_000)
        } else if ps >= 1_000 {
            write!(f, "{:.3} ns", ps as f64 / 1e3)
        } else {
            write!(f, "{ps} ps")
        }
    }
}

/// A number of cycles of some clock domain.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cycles(pub u64);

/// Saturating.
impl Add for Cycles {
    type Output = Cycles;
    fn add(self, rhs: Cycles) -> Cycles {
        Cycles(self.0.saturating_add(rhs.0))
    }
}

impl fmt::Display for Cycles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} cycles", self.0)
    }
}

/// A clock domain: converts between cycles and time.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Clock {
    period_ps: u64,
}

impl Clock {
    /// The slowest clock, MHz (1 kHz: a period of 1 ms).
    pub const MIN_MHZ: f64 = 1e-3;
    /// The fastest clock, MHz (100 GHz: a period of 10 ps).
    pub const MAX_MHZ: f64 = 1e5;

    /// A clock of `mhz` megahertz; the period is rounded to whole picoseconds.
    /// Returns `None` for a frequency that is not finite or outside
    /// [`Clock::MIN_MHZ`]..=[`Clock::MAX_MHZ`].
    pub fn from_mhz(mhz: f64) -> Option<Clock> {
        if !(Clock::MIN_MHZ..=Clock::MAX_MHZ).contains(&mhz) {
            return None;
        }
        let period_ps = (1e6 / mhz).round() as u64;
        (period_ps > 0).then_some(Clock { period_ps })
    }

    /// A clock with an exact period in picoseconds (`None` for 0).
    pub const fn from_period_ps(period_ps: u64) -> Option<Clock> {
        if period_ps == 0 {
            None
        } else {
            Some(Clock { period_ps })
        }
    }

    /// The period.
    pub const fn period(self) -> SimTime {
        SimTime(self.period_ps)
    }

    /// Frequency in MHz implied by the (rounded) period.
    pub fn mhz(self) -> f64 {
        1e6 / self.period_ps as f64
    }

    /// The duration of `c` cycles (saturating at [`SimTime::MAX`], past the horizon).
    #[inline]
    pub const fn cycles(self, c: Cycles) -> SimTime {
        SimTime(c.0.saturating_mul(self.period_ps))
    }

    /// The duration of `c` cycles, `None` if it reaches the [`SimTime::HORIZON`].
    pub const fn cycles_checked(self, c: Cycles) -> Option<SimTime> {
        match c.0.checked_mul(self.period_ps) {
            Some(ps) if ps < SimTime::HORIZON.0 => Some(SimTime(ps)),
            _ => None,
        }
    }

    /// Whole cycles elapsed at time `t` (rounded down).
    pub const fn cycles_at(self, t: SimTime) -> Cycles {
        Cycles(t.0 / self.period_ps)
    }

    /// Cycles needed to cover a duration `t` (rounded up).
    pub const fn cycles_ceil(self, t: SimTime) -> Cycles {
        Cycles(t.0.div_ceil(self.period_ps))
    }

    /// The first clock edge at or after `t` (saturating).
    pub const fn next_edge(self, t: SimTime) -> SimTime {
        SimTime(t.0.div_ceil(self.period_ps).saturating_mul(self.period_ps))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_periods_round_to_picoseconds() {
        assert_eq!(
            Clock::from_mhz(200.0).unwrap().period(),
            SimTime::from_ps(5_000)
        );
        assert_eq!(
            Clock::from_mhz(1200.0).unwrap().period(),
            SimTime::from_ps(833)
        );
        assert!(Clock::from_mhz(0.0).is_none());
        assert!(Clock::from_mhz(f64::NAN).is_none());
    }

    #[test]
    fn clocks_run_from_1_khz_to_100_ghz() {
        assert_eq!(
            Clock::from_mhz(1e-3).unwrap().period(),
            SimTime::from_ps(1_000_000_000)
        );
        assert_eq!(Clock::from_mhz(1e5).unwrap().period(), SimTime::from_ps(10));
        for bad in [1e-9, 9.99e-4, 1.0001e5, 1e6, f64::INFINITY, -1.0] {
            assert!(Clock::from_mhz(bad).is_none(), "{bad} MHz");
        }
    }

    #[test]
    fn time_arithmetic_saturates_instead_of_wrapping() {
        let near = SimTime::from_ps(u64::MAX - 5);
        assert_eq!(near + SimTime::from_ps(10), SimTime::MAX);
        let c = Clock::from_mhz(1e-3).unwrap();
        assert_eq!(c.cycles(Cycles(u64::MAX / 2)), SimTime::MAX);
        assert!(c.cycles(Cycles(1 << 40)).past_horizon());
        assert_eq!(c.cycles_checked(Cycles(1 << 40)), None);
        // 2^32 cycles of the slowest clock stay below the horizon.
        assert_eq!(
            c.cycles_checked(Cycles(1 << 32)),
            Some(SimTime::from_ps((1 << 32) * 1_000_000_000))
        );
        assert!(SimTime::parse("4611686s").is_ok());
        assert!(
            SimTime::parse("4611687s").is_err(),
            "2^62 ps is 4611686.018 s"
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(SimTime::parse("5us"), Ok(SimTime::from_us(5)));
        assert_eq!(SimTime::parse(" 2.5 ns"), Ok(SimTime::from_ps(2_500)));
        assert_eq!(
            SimTime::parse("1s"),
            Ok(SimTime::from_ps(1_000_000_000_000))
        );
        assert!(SimTime::parse("5").is_err());
        assert!(SimTime::parse("5 parsecs").is_err());
        assert!(SimTime::parse("-1ns").is_err());
    }

    #[test]
    fn cycles_convert_both_ways() {
        let c = Clock::from_mhz(200.0).unwrap();
        assert_eq!(c.cycles(Cycles(3)), SimTime::from_ns(15));
        assert_eq!(c.cycles_at(SimTime::from_ps(14_999)), Cycles(2));
        assert_eq!(c.cycles_ceil(SimTime::from_ps(10_001)), Cycles(3));
        assert_eq!(
            c.next_edge(SimTime::from_ps(10_001)),
            SimTime::from_ps(15_000)
        );
        assert_eq!(
            c.next_edge(SimTime::from_ps(10_000)),
            SimTime::from_ps(10_000)
        );
    }
}
