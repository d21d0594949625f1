//! Generic building blocks, usable in any topology: a token [`source`], a fixed-latency
//! [`stage`], a checking [`sink`], and a memory-traffic generator ([`traffic`]). The pipeline benchmark is built from them.

pub mod sink;
pub mod source;
pub mod stage;
pub mod traffic;
