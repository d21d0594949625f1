//! Transactions: what travels on links, and the port types that say which may go where.
//!
//! Every link of one simulation carries [`Transaction`]; a port declares the one variant it
//! accepts ([`TxnType`]), and the topology refuses a link between ports of different types.

use crate::kernel::Message;

/// A numbered token: the transaction of the pipeline benchmark and of generic test blocks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Sequence number, 0-based.
    pub id: u64,
    /// Opaque payload (the benchmark uses `id XOR 0xA5A5A5A5A5A5A5A5`).
    pub payload: u64,
}

/// A memory request: read or write `bytes` bytes at byte address `addr`. The DRAM splits it
/// into bursts itself and answers with one [`MemResp`] when every burst is done.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemReq {
    /// Requester-chosen id, echoed in the response.
    pub id: u64,
    /// Byte address.
    pub addr: u64,
    /// Length in bytes (>= 1).
    pub bytes: u64,
    /// Write (true) or read (false).
    pub write: bool,
}

/// The answer to a [`MemReq`]: read data delivered, or write committed.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MemResp {
    /// The request's id.
    pub id: u64,
    /// The request's length in bytes.
    pub bytes: u64,
    /// Whether it was a write.
    pub write: bool,
}

/// Anything that travels on a link.
#[derive(Clone, Debug, PartialEq)]
pub enum Transaction {
    /// A [`Token`].
    Token(Token),
    /// A [`MemReq`].
    MemReq(MemReq),
    /// A [`MemResp`].
    MemResp(MemResp),
}

/// The type of a port: which [`Transaction`] variant it carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnType {
    /// [`Transaction::Token`].
    Token,
    /// [`Transaction::MemReq`].
    MemReq,
    /// [`Transaction::MemResp`].
    MemResp,
}

impl TxnType {
    /// The name used in `stasim models` and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            TxnType::Token => "token",
            TxnType::MemReq => "mem_req",
            TxnType::MemResp => "mem_resp",
        }
    }
}

impl Transaction {
    /// The port type this transaction belongs to.
    pub fn txn_type(&self) -> TxnType {
        match self {
            Transaction::Token(_) => TxnType::Token,
            Transaction::MemReq(_) => TxnType::MemReq,
            Transaction::MemResp(_) => TxnType::MemResp,
        }
    }
}

impl std::fmt::Display for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transaction::Token(t) => write!(f, "token #{}", t.id),
            Transaction::MemReq(r) => write!(
                f,
                "{} request #{} ({} B at {:#x})",
                if r.write { "write" } else { "read" },
                r.id,
                r.bytes,
                r.addr
            ),
            Transaction::MemResp(r) => write!(f, "memory response #{} ({} B)", r.id, r.bytes),
        }
    }
}

impl Message for Transaction {
    fn size_bytes(&self) -> u64 {
        match self {
            Transaction::Token(_) => 16,
            // A request carries a header; write data travels with it.
            Transaction::MemReq(r) => 16 + if r.write { r.bytes } else { 0 },
            Transaction::MemResp(r) => 16 + if r.write { 0 } else { r.bytes },
        }
    }
}
