//! The STA accelerator's modules, one file each (header: what it models, ports, timing
//! equations, parameters), plus the controller's planner and per-op accounting.

pub mod account;
pub mod accumulator;
pub mod buffer;
pub mod controller;
pub mod dram;
pub mod out_buffer;
pub mod pe_array;
pub mod softmax;
pub mod unit;
pub mod vector;
