//! The STA accelerator's modules, one file each (header: what it models, ports, timing
//! equations, parameters).

pub mod ddr4;
pub mod dram;
