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

/// Anything that travels on a link.
#[derive(Clone, Debug, PartialEq)]
pub enum Transaction {
    /// A [`Token`].
    Token(Token),
}

/// The type of a port: which [`Transaction`] variant it carries.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TxnType {
    /// [`Transaction::Token`].
    Token,
}

impl TxnType {
    /// The name used in `stasim models` and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            TxnType::Token => "token",
        }
    }
}

impl Transaction {
    /// The port type this transaction belongs to.
    pub fn txn_type(&self) -> TxnType {
        match self {
            Transaction::Token(_) => TxnType::Token,
        }
    }
}

impl std::fmt::Display for Transaction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transaction::Token(t) => write!(f, "token #{}", t.id),
        }
    }
}

impl Message for Transaction {
    fn size_bytes(&self) -> u64 {
        match self {
            Transaction::Token(_) => 16,
        }
    }
}
