//! Every module kind a topology may instantiate.

use crate::component::ModuleSpec;
use crate::{blocks, sta};

/// All module kinds, in the order `stasim models` lists them.
pub static KINDS: &[&ModuleSpec] = &[
    &blocks::source::SPEC,
    &blocks::stage::SPEC,
    &blocks::sink::SPEC,
    &blocks::traffic::SPEC,
    &sta::dram::SPEC,
    &sta::buffer::WEIGHT_SPEC,
    &sta::buffer::ACT_SPEC,
    &sta::pe_array::SPEC,
    &sta::accumulator::SPEC,
    &sta::softmax::SPEC,
    &sta::vector::SPEC,
    &sta::out_buffer::SPEC,
    &sta::controller::SPEC,
];

/// The kind called `name`.
pub fn kind(name: &str) -> Option<&'static ModuleSpec> {
    KINDS.iter().copied().find(|k| k.kind == name)
}

/// Names of all kinds.
pub fn kind_names() -> Vec<&'static str> {
    KINDS.iter().map(|k| k.kind).collect()
}
