//! Integration tests, one binary: `cargo test --release`.

mod cli;
mod kernel;
mod pipeline;
mod support;
mod topology;
