//! Integration tests, one binary: `cargo test --release`.

mod cli;
mod dram;
mod energy;
mod functional;
mod inputs;
mod kernel;
mod mutation;
mod pipeline;
mod prune;
mod sta;
mod support;
mod sweep;
mod sweep_charts;
mod topology;
mod trace;
