//! Generic building blocks, usable in any topology: a token [`source`], a fixed-latency
//! [`stage`], a checking [`sink`], and a memory-traffic generator ([`traffic`]) built on a
//! memory [`requester`] and its statistics ([`mem_stats`], shared with trace replay). The
//! pipeline benchmark is built from them.

pub mod mem_stats;
pub mod requester;
pub mod sink;
pub mod source;
pub mod stage;
pub mod traffic;
