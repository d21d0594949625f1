//! Observer hooks: how traces and reports watch a run without the modules knowing.
//!
//! A simulation has at most one observer (a fan-out observer can hold several). With none
//! attached, every hook costs one well-predicted branch and no value is built.

use super::engine::ActorId;
use super::link::{LinkId, LinkSpec};
use super::time::SimTime;

/// The value of a probed signal.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum ProbeValue {
    /// A flag, e.g. busy.
    Bool(bool),
    /// An integer, e.g. the operation index.
    Int(i64),
    /// A real, e.g. utilisation or bandwidth.
    Real(f64),
    /// A short static label, e.g. an operation name.
    Label(&'static str),
}

/// Watches a run. Every method has an empty default.
pub trait Observer<M>: Send {
    /// Called once before the first event with the actor names and link specs.
    fn on_start(&mut self, _actors: &[String], _links: &[LinkSpec]) {}
    /// `msg` entered `link` at `now`; it becomes visible to the receiver at `visible_at`.
    fn on_send(&mut self, _now: SimTime, _link: LinkId, _msg: &M, _visible_at: SimTime) {}
    /// `msg` left `link` at `now`.
    fn on_recv(&mut self, _now: SimTime, _link: LinkId, _msg: &M) {}
    /// The run ended at `end` (called by whoever ran the simulation, after `run`); an
    /// observer that writes files finishes them here and reports failures.
    fn on_end(&mut self, _end: SimTime) -> Result<(), String> {
        Ok(())
    }
    /// Like [`Observer::on_probe`] for one of a numbered family of signals (`bank` 0..31,
    /// `ch_inflight` 0..3, ...). By default the index is dropped.
    fn on_probe_indexed(
        &mut self,
        now: SimTime,
        actor: ActorId,
        signal: &'static str,
        _index: u32,
        value: ProbeValue,
    ) {
        self.on_probe(now, actor, signal, value);
    }
    /// Actor `actor` changed its signal `signal` to `value` at `now`.
    fn on_probe(
        &mut self,
        _now: SimTime,
        _actor: ActorId,
        _signal: &'static str,
        _value: ProbeValue,
    ) {
    }
}
