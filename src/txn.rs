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
    /// A prefetch: data wanted later than anything another requester waits for now. The
    /// DRAM serves other requests first, so prefetching further ahead never delays them.
    pub prefetch: bool,
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

/// Where a finished output tile goes after the accumulator.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// Straight to its destination.
    Direct,
    /// Through the softmax unit (attention scores); `op` is the softmax op's index.
    Softmax {
        /// Index of the softmax op (for accounting).
        op: u32,
    },
    /// Through the vector unit; `passes` over the data; `op` is the vector op's index.
    Vector {
        /// Index of the vector op (for accounting).
        op: u32,
        /// Passes over each element (GELU 1, residual add + LayerNorm 3).
        passes: u32,
        /// The op whose output the finished tile is (the chain's last op that stores).
        store: u32,
        /// The DRAM address of this tile's second operand (a residual or a gate that is
        /// not on chip): the vector unit reads the tile's bytes there before serving it.
        /// `None` when the operand is on chip or the chain takes none.
        operand: Option<u64>,
        /// A second tensor the chain stores (the value before its last, row-wise ops: a
        /// pre-norm layer's residual stream beside its normalisation): the vector op that
        /// stores it and where this tile of it goes.
        also: Option<(u32, Dest)>,
    },
}

/// The final destination of an output tile.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Dest {
    /// Stays on chip in the activation buffer (a fill).
    OnChip,
    /// Written to DRAM at this byte address.
    Dram {
        /// Byte address.
        addr: u64,
    },
}

/// An order to a buffer: fill one bank (a *load*) with an operand block for the PE array,
/// either by reading `bytes` from DRAM at `addr` (`from_dram`) or from data already on chip,
/// once at least `after_fills` tiles have arrived on chip and `after_writes` DRAM writes have
/// completed. The block is made of `parts` consecutive parts (one weight column tile or one
/// activation row tile each): each part is its own DRAM request and is offered to the PE
/// array as soon as it (and every part before it) has arrived, so a pass waits only for the
/// part it reads, never for the whole bank.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// Op index (for accounting).
    pub op: u32,
    /// Bytes to read from DRAM (0 when on chip).
    pub bytes: u64,
    /// Parts of the block (>= 1).
    pub parts: u32,
    /// Bytes of every part but the last (the last gets the rest of `bytes`).
    pub part_bytes: u64,
    /// DRAM address distance from one part to the next.
    pub part_stride: u64,
    /// DRAM byte address.
    pub addr: u64,
    /// Whether the operand comes from DRAM.
    pub from_dram: bool,
    /// On-chip fills that must have arrived first ...
    pub after_fills: u64,
    /// ... counted on this fill source (0 accumulator, 1 softmax, 2 vector unit).
    pub fill_src: u8,
    /// DRAM writes that must have completed first (read-after-write through DRAM).
    pub after_writes: u64,
}

/// One part of a buffer bank's block, arrived and offered to the PE array. Parts travel in
/// order: `load` counts the buffer's loads from 0, `part` the parts of that load.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Operand {
    /// Op index.
    pub op: u32,
    /// The load (bank fill) this part belongs to, counted from 0 per buffer.
    pub load: u32,
    /// Index of the part within its load.
    pub part: u32,
    /// Bank read bandwidth, bytes per cycle.
    pub read_bytes_per_cycle: u32,
}

/// One pass of the PE array: an `rows x cols` output tile over the reduction chunk
/// `k0 .. k0 + k` (the whole reduction when the tile fits its banks; else one K chunk whose
/// partial sums the accumulator adds up).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    /// Op index.
    pub op: u32,
    /// Instance of the op (batch index, or `batch * heads + head` for attention).
    pub inst: u32,
    /// First output row of the tile within the instance's output.
    pub row0: u32,
    /// First output column of the tile within the instance's output.
    pub col0: u32,
    /// Take the next weight operand first.
    pub new_weight: bool,
    /// Take the next activation operand first.
    pub new_act: bool,
    /// The part of the current weight load this pass reads.
    pub w_part: u32,
    /// The part of the current activation load this pass reads.
    pub a_part: u32,
    /// First index of the reduction chunk.
    pub k0: u64,
    /// First chunk of this output tile (the accumulator starts a partial sum).
    pub first_chunk: bool,
    /// Last chunk of this output tile (the accumulator finishes and routes it).
    pub last_chunk: bool,
    /// Output rows used (<= R).
    pub rows: u32,
    /// Output columns used (<= C).
    pub cols: u32,
    /// Reduction length of this pass (the chunk's).
    pub k: u64,
    /// Pattern N (N == M: dense).
    pub n: u32,
    /// Pattern M.
    pub m: u32,
    /// Weight bytes read from the weight buffer during the pass.
    pub weight_bytes: u64,
    /// Activation bytes read from the activation buffer during the pass.
    pub act_bytes: u64,
    /// Useful MACs of the pass.
    pub macs: u64,
    /// Bytes per output value once finished (2 for 16-bit, 1 for 8-bit).
    pub value_bytes: u8,
    /// The activation operand is the softmax's output (P): waiting for it is a softmax stall.
    pub act_from_softmax: bool,
    /// Last tile of a row block (softmax can start on those rows).
    pub group_end: bool,
    /// Route of the output tile.
    pub via: Via,
    /// Destination of the output tile.
    pub dest: Dest,
}

/// The real values of a tile, carried only in functional runs (`stasim run --functional`):
/// where the tile sits in its op's output and its `rows x cols` values, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct TileValues {
    /// Instance of the op (as in [`Pass::inst`]).
    pub inst: u32,
    /// First row within the instance's output.
    pub row0: u32,
    /// First column within the instance's output.
    pub col0: u32,
    /// Rows.
    pub rows: u32,
    /// Columns.
    pub cols: u32,
    /// Values, row-major.
    pub v: Vec<f32>,
}

/// A finished (or partial-sum) output tile travelling between units.
#[derive(Clone, Debug, PartialEq)]
pub struct Tile {
    /// Op index of the matmul that produced it.
    pub op: u32,
    /// Instance, first row and first column of the tile within the op's output (the
    /// accumulator keys partial sums by them).
    pub at: (u32, u32, u32),
    /// First K chunk of the tile (starts a partial sum).
    pub first_chunk: bool,
    /// Last K chunk of the tile (the tile is finished after it).
    pub last_chunk: bool,
    /// Rows.
    pub rows: u32,
    /// Elements.
    pub elems: u32,
    /// Bytes per element on this hop (4 for partial sums, value width after).
    pub elem_bytes: u8,
    /// Bytes per finished value.
    pub value_bytes: u8,
    /// Last tile of a row block.
    pub group_end: bool,
    /// Route.
    pub via: Via,
    /// Destination.
    pub dest: Dest,
    /// Real values (functional runs only; `None` in timing-only runs).
    pub data: Option<Box<TileValues>>,
}

/// A completion signal (a DRAM write done).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Signal {
    /// Op index.
    pub op: u32,
}

/// Anything that travels on a link. Variants larger than a [`Token`] are boxed: links store
/// transactions inline, and a 24-byte enum keeps the kernel's hot path fast (a 56-byte one
/// cost 30 % on the pipeline benchmark). The `u64` tag makes the enum three machine words,
/// moved as whole words (a narrower tag caused store-forwarding stalls on the hot path).
#[derive(Clone, Debug, PartialEq)]
#[repr(u64)]
pub enum Transaction {
    /// A [`Token`].
    Token(Token),
    /// A [`MemReq`].
    MemReq(Box<MemReq>),
    /// A [`MemResp`].
    MemResp(Box<MemResp>),
    /// A [`Fetch`].
    Fetch(Box<Fetch>),
    /// An [`Operand`].
    Operand(Operand),
    /// A [`Pass`].
    Pass(Box<Pass>),
    /// A [`Tile`].
    Tile(Box<Tile>),
    /// A [`Signal`].
    Signal(Signal),
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
    /// [`Transaction::Fetch`].
    Fetch,
    /// [`Transaction::Operand`].
    Operand,
    /// [`Transaction::Pass`].
    Pass,
    /// [`Transaction::Tile`].
    Tile,
    /// [`Transaction::Signal`].
    Signal,
}

impl TxnType {
    /// The name used in `stasim models` and in error messages.
    pub fn name(self) -> &'static str {
        match self {
            TxnType::Token => "token",
            TxnType::MemReq => "mem_req",
            TxnType::MemResp => "mem_resp",
            TxnType::Fetch => "fetch",
            TxnType::Operand => "operand",
            TxnType::Pass => "pass",
            TxnType::Tile => "tile",
            TxnType::Signal => "signal",
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
            Transaction::Fetch(_) => TxnType::Fetch,
            Transaction::Operand(_) => TxnType::Operand,
            Transaction::Pass(_) => TxnType::Pass,
            Transaction::Tile(_) => TxnType::Tile,
            Transaction::Signal(_) => TxnType::Signal,
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
            Transaction::Fetch(x) => write!(f, "fetch for op {} ({} B)", x.op, x.bytes),
            Transaction::Operand(x) => write!(f, "operand of op {}", x.op),
            Transaction::Pass(x) => write!(f, "pass of op {}", x.op),
            Transaction::Tile(x) => write!(f, "tile of op {} ({} elements)", x.op, x.elems),
            Transaction::Signal(x) => write!(f, "signal of op {}", x.op),
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
            Transaction::Tile(t) => u64::from(t.elems) * u64::from(t.elem_bytes),
            Transaction::Fetch(_)
            | Transaction::Operand(_)
            | Transaction::Pass(_)
            | Transaction::Signal(_) => 16,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transactions_stay_small() {
        // Links store transactions inline; keep the common case compact.
        assert!(
            std::mem::size_of::<Transaction>() <= 24,
            "{}",
            std::mem::size_of::<Transaction>()
        );
    }
}
