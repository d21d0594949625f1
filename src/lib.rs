//! # stasim
//!
//! A discrete-event simulator of STA, the N:M sparse Transformer accelerator of Fang, Zhou
//! and Wang (TVLSI 2022). Modules are actors exchanging timestamped transactions over
//! bounded, timed links; a YAML topology wires them into a petgraph graph.
//!
//! ## Dependency rule
//!
//! - [`kernel`] knows nothing about accelerators: time, events, actors, links, observers.
//! - [`txn`] and [`component`] describe transactions and module kinds; they use `kernel`.
//! - [`workload`] is plain data: model presets, N:M patterns; [`model`] is the IR every
//!   architecture is lowered into (typed ops and the tensors they read and write).
//! - [`plan`], the controller's planner, turns a `workload` into jobs, tiles and command
//!   streams (`txn`) for the engine's geometry.
//! - [`blocks`] and the accelerator modules in [`sta`] depend on `kernel`, `txn`,
//!   `component` (and the controller on `plan`).
//! - [`topology`] assembles modules from YAML; it depends on all of the above.
//! - [`report`] only reads a finished simulation; [`run`] orchestrates one run; [`replay`]
//!   runs a request trace through a `dram` alone (a topology with a supplied requester).
//! - [`rng`] (SplitMix64, the one seeded generator) depends on nothing.
//! - the `stasim` binary (`cli`) sits on top.
//!
//! ## Example
//!
//! ```
//! use stasim::topology::{self, Source};
//!
//! let src = Source::read("pipeline").unwrap(); // a built-in topology
//! let set = topology::SetOverride::parse("source.count=100").unwrap();
//! let topo = topology::load(&src, &[set]).unwrap();
//! let mut sim = topo.build().unwrap();
//! let summary = sim.run().unwrap();
//! // BENCH.md: the last token reaches the sink at 5T + 10 ns.
//! assert_eq!(summary.end_time.as_ps(), (5 * 100 + 10) * 1_000);
//! ```

pub mod bench;
pub mod blocks;
pub mod component;
pub mod energy;
pub mod error;
pub mod eval;
pub mod explore;
pub mod functional;
pub mod generate;
pub mod gguf;
pub mod io;
pub mod kernel;
pub mod model;
pub mod plan;
pub mod plot;
pub mod replay;
pub mod report;
pub mod rng;
pub mod run;
pub mod sta;
pub mod sweep;
pub mod topology;
pub mod trace;
pub mod txn;
pub mod workload;

pub use error::Error;
