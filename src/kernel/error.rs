//! Errors that end a simulation run (exit code 1 at the command line).

use std::fmt;

use super::time::SimTime;

/// One module that could not finish, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockedModule {
    /// Instance name.
    pub module: String,
    /// What it waits for.
    pub reason: String,
}

/// A snapshot of what is stuck, taken when a run ends badly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StuckState {
    /// Simulated time of the last event handled.
    pub time: SimTime,
    /// Modules with unfinished work or a blocked send.
    pub blocked: Vec<BlockedModule>,
    /// Links at capacity, as `name (occupancy/depth)`.
    pub full_links: Vec<String>,
    /// Links still holding transactions, as `name (n waiting)`.
    pub undelivered: Vec<String>,
}

impl fmt::Display for StuckState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "at simulated time {} ({} ps)",
            self.time,
            self.time.as_ps()
        )?;
        if self.blocked.is_empty() {
            writeln!(f, "  blocked modules: none")?;
        } else {
            writeln!(f, "  blocked modules:")?;
            for b in &self.blocked {
                writeln!(f, "    {}: {}", b.module, b.reason)?;
            }
        }
        if self.full_links.is_empty() {
            writeln!(f, "  full links: none")?;
        } else {
            writeln!(f, "  full links:")?;
            for l in &self.full_links {
                writeln!(f, "    {l}")?;
            }
        }
        if !self.undelivered.is_empty() {
            writeln!(f, "  links with undelivered transactions:")?;
            for l in &self.undelivered {
                writeln!(f, "    {l}")?;
            }
        }
        Ok(())
    }
}

/// Why a run failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No event is left but work remains.
    #[error("deadlock: no event is left but work remains, {0}")]
    Deadlock(Box<StuckState>),
    /// The simulated-time limit was reached first.
    #[error("time limit reached before the run finished, {0}")]
    TimeLimit(Box<StuckState>),
    /// An event fell at or past the end of simulated time ([`SimTime::HORIZON`]).
    #[error(
        "simulated time overflowed: an event was scheduled at or past 2^62 ps (about 53 days), the end of simulated time; slow clocks or long latencies multiply into it, {0}"
    )]
    TimeOverflow(Box<StuckState>),
    /// A link refers to an actor that was never added (a bug in the caller).
    #[error("bad wiring: {0}")]
    BadWiring(String),
}
