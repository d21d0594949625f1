//! The actor trait: what every simulated module implements.
//!
//! An actor reacts to three kinds of event, each handled at a simulated instant with a
//! [`Ctx`](super::Ctx) through which it reads the time, receives from its input links, sends
//! on its output links and schedules its own wake-ups:
//! - [`Actor::init`] once at time 0, in the order actors were added;
//! - [`Actor::on_wake`] for a wake-up it scheduled itself (with the tag it chose);
//! - [`Actor::on_readable`] when an input link it found empty now has a transaction;
//! - [`Actor::on_writable`] when an output link it found full now has a free slot.
//!
//! Notifications are *level hints*: an actor may get one for a link it has since drained, so
//! it always tries `try_recv` / `try_send` and handles failure (which re-arms the hint).

use super::engine::Ctx;
use super::link::LinkId;

/// A statistic an actor exposes after (or during) a run.
#[derive(Clone, Debug, PartialEq)]
pub enum StatValue {
    /// A count or an integer quantity.
    U64(u64),
    /// A real quantity.
    F64(f64),
    /// A flag.
    Bool(bool),
}

/// One named statistic, e.g. `("received", StatValue::U64(10))`. Units belong in the name
/// (`last_arrival_ps`).
pub type Stat = (&'static str, StatValue);

/// A simulated module.
pub trait Actor<M>: Send {
    /// Called once at time 0.
    fn init(&mut self, _ctx: &mut Ctx<'_, M>) {}
    /// A wake-up scheduled by this actor fired.
    fn on_wake(&mut self, _ctx: &mut Ctx<'_, M>, _tag: u64) {}
    /// A transaction is available on `link` (an input of this actor).
    fn on_readable(&mut self, _ctx: &mut Ctx<'_, M>, _link: LinkId) {}
    /// A slot freed on `link` (an output of this actor) after a failed send.
    fn on_writable(&mut self, _ctx: &mut Ctx<'_, M>, _link: LinkId) {}
    /// Work this actor still has to do, if any, in words (`"holding tx 17 for F3"`).
    /// The kernel calls it when no event is left: an actor with pending work then means a
    /// deadlock.
    fn pending_work(&self) -> Option<String> {
        None
    }
    /// Statistics for reports.
    fn stats(&self) -> Vec<Stat> {
        Vec::new()
    }
    /// The concrete module, for report builders that know its type (`None` by default).
    fn as_any(&self) -> Option<&dyn std::any::Any> {
        None
    }
    /// The concrete module, mutably, for settings resolved after every module is built and
    /// before the run starts (a DRAM area placed after the planned tensors; `None` by
    /// default).
    fn as_any_mut(&mut self) -> Option<&mut dyn std::any::Any> {
        None
    }
}
