//! The canonical traces of the README's "DRAM fidelity" section, written deterministically
//! (`stasim dram --gen CASE --out FILE`; `scripts/dram-traces.sh` writes all five).
//!
//! | case | requests | addresses |
//! |---|---|---|
//! | `idle-read` | 1 read | `0x0` |
//! | `sequential-reads` | 1,000,000 reads | `64 k` |
//! | `random-reads` | 200,000 reads | uniform 64-byte lines of the first 1 GiB (SplitMix64, `--seed`, default 1) |
//! | `bank-rows` | 20,000 reads | `row * row_stride_bytes`, a random row of 65,536 each time, never the row before |
//! | `sequential-mixed` | 1,000,000 requests | `64 k`, request `k` a write when `k mod 3 = 2` |
//!
//! `bank-rows` stays in one bank (channel 0, rank 0, bank group 0, bank 0) when every
//! address bit at and above `row_stride_bytes` is a row bit: with the default 2^18 (256 KiB)
//! that holds for DDR4 x64, two ranks of 16 banks and 8 KiB pages under any mapping that
//! puts the row on top (the model's `row:rank:bank:column:bankgroup:channel`, Ramulator's
//! `RoBaRaCoCh`); give the mapping's row stride otherwise.

use std::io::Write;
use std::path::Path;

use super::trace::{Format, LINE_BYTES};
use crate::error::Error;
use crate::rng::SplitMix64;

/// A canonical trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Case {
    /// One read, to an idle DRAM.
    IdleRead,
    /// Sequential 64-byte reads.
    SequentialReads,
    /// Uniform random reads over 1 GiB.
    RandomReads,
    /// Random rows of one bank.
    BankRows,
    /// Sequential requests, every third a write.
    SequentialMixed,
}

impl Case {
    /// Every case, in the README's order.
    pub const ALL: [Case; 5] = [
        Case::IdleRead,
        Case::SequentialReads,
        Case::RandomReads,
        Case::BankRows,
        Case::SequentialMixed,
    ];

    /// Its name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Case::IdleRead => "idle-read",
            Case::SequentialReads => "sequential-reads",
            Case::RandomReads => "random-reads",
            Case::BankRows => "bank-rows",
            Case::SequentialMixed => "sequential-mixed",
        }
    }

    /// The case called `name`.
    pub fn from_name(name: &str) -> Option<Case> {
        Case::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Its request count in the README.
    pub fn default_count(self) -> u64 {
        match self {
            Case::IdleRead => 1,
            Case::SequentialReads | Case::SequentialMixed => 1_000_000,
            Case::RandomReads => 200_000,
            Case::BankRows => 20_000,
        }
    }
}

/// Bytes the random reads cover: 1 GiB.
pub const RANDOM_REGION_BYTES: u64 = 1 << 30;
/// Rows `bank-rows` draws from.
pub const BANK_ROWS: u64 = 65_536;
/// Default bytes between two rows of one bank (see the module header).
pub const DEFAULT_ROW_STRIDE_BYTES: u64 = 1 << 18;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenArgs {
    /// The case.
    pub case: Case,
    /// Requests (default: the case's).
    pub count: Option<u64>,
    /// Seed of the random cases.
    pub seed: u64,
    /// Format to write.
    pub format: Format,
    /// Bytes between rows of one bank (`bank-rows`).
    pub row_stride_bytes: u64,
}

impl GenArgs {
    /// The case with its README defaults (seed 1, `rw` format).
    pub fn new(case: Case) -> Self {
        GenArgs {
            case,
            count: None,
            seed: 1,
            format: Format::ReadWrite,
            row_stride_bytes: DEFAULT_ROW_STRIDE_BYTES,
        }
    }
}

/// The requests of a case, in order: `(address, write)`.
pub fn requests(args: &GenArgs) -> impl Iterator<Item = (u64, bool)> + use<> {
    let case = args.case;
    let n = args.count.unwrap_or(case.default_count());
    let stride = args.row_stride_bytes;
    let mut rng = SplitMix64::new(args.seed);
    let mut last_row = u64::MAX;
    (0..n).map(move |k| match case {
        Case::IdleRead => (0, false),
        Case::SequentialReads => (k * LINE_BYTES, false),
        Case::SequentialMixed => (k * LINE_BYTES, k % 3 == 2),
        Case::RandomReads => (
            rng.below(RANDOM_REGION_BYTES / LINE_BYTES) * LINE_BYTES,
            false,
        ),
        Case::BankRows => {
            let mut row = rng.below(BANK_ROWS);
            while row == last_row {
                row = rng.below(BANK_ROWS);
            }
            last_row = row;
            (row * stride, false)
        }
    })
}

/// Writes the trace of `args` to `out`; returns the requests written.
pub fn write_trace(args: &GenArgs, out: &mut impl Write) -> std::io::Result<u64> {
    let mut n = 0;
    writeln!(
        out,
        "# stasim canonical trace `{}`, seed {} ({} format)",
        args.case.name(),
        args.seed,
        args.format.name()
    )?;
    for (addr, write) in requests(args) {
        // No cycle constraint in DRAMsim3's format: every request at cycle 0 is offered as
        // fast as the controller accepts it, as in the other formats.
        args.format.write_line(out, addr, write, 0)?;
        n += 1;
    }
    Ok(n)
}

/// Writes the trace of `args` to `path` atomically; returns the requests written.
pub fn generate(args: &GenArgs, path: &Path) -> Result<u64, Error> {
    let mut f = crate::io::AtomicFile::create(path)?;
    let n = write_trace(args, &mut f).map_err(|e| f.error(e))?;
    f.commit()?;
    Ok(n)
}
