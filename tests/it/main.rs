//! Integration tests, one binary: `cargo test --release`.

mod accounting;
mod benches;
mod cli;
mod completions;
mod dram;
mod energy;
mod functional;
mod fuzz_checkpoints;
mod inputs;
mod kernel;
mod mutation;
mod offchip;
mod outputs;
mod pipeline;
mod prune;
mod readme;
mod skips;
mod sta;
mod stanm;
mod support;
mod sweep;
mod sweep_charts;
mod sweep_mutation;
mod topology;
mod trace;
mod workload_defaults;
