//! Generic building blocks, usable in any topology: a token [`source`], a fixed-latency
//! [`stage`], and a checking [`sink`]. The pipeline benchmark is built from them.

pub mod sink;
pub mod source;
pub mod stage;
