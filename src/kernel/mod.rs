//! The discrete-event kernel. It knows nothing about accelerators.
//!
//! - [`time`]: simulated time in integer picoseconds, cycles and clock domains;
//! - [`queue`]: the event queue, ordered by `(time, scheduling sequence)`;
//! - [`link`]: bounded, timed channels between actors (depth, latency, width);
//! - [`actor`]: the trait modules implement;
//! - [`engine`]: the simulation and the context an actor sees;
//! - [`observer`]: hooks for traces and reports;
//! - [`error`]: deadlock and time-limit errors.

pub mod actor;
pub mod engine;
pub mod error;
pub mod link;
pub mod observer;
pub mod queue;
pub mod time;

pub use actor::{Actor, Stat, StatValue};
pub use engine::{ActorId, Ctx, RunSummary, Simulation};
pub use error::{BlockedModule, SimError, StuckState};
pub use link::{LinkId, LinkSpec, LinkStats, Message};
pub use observer::{Observer, ProbeValue};
pub use time::{Clock, Cycles, SimTime};
