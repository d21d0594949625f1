//! Integration tests, one binary: `cargo test --release`.

mod cli;
mod dram;
mod energy;
mod functional;
mod fuzz_checkpoints;
mod kernel;
mod pipeline;
mod prune;
mod sta;
mod stanm;
mod support;
mod sweep;
mod sweep_charts;
mod topology;
mod trace;
