//! Integration tests, one binary: `cargo test --release`.

mod cli;
mod dram;
mod energy;
mod functional;
mod kernel;
mod outputs;
mod pipeline;
mod prune;
mod sta;
mod support;
mod sweep;
mod sweep_charts;
mod sweep_mutation;
mod topology;
mod trace;
