//! Request traces: reading them line by line (memory does not grow with the trace), with
//! the format detected per file from its first request line.
//!
//! | format | a line | as in |
//! |---|---|---|
//! | `rw` | `R 0xADDR` or `W 0xADDR` | this project |
//! | `ramulator` | `LD 0xADDR` or `ST 0xADDR` | Ramulator 2's read/write trace |
//! | `dramsim3` | `0xADDR READ CYCLE` or `0xADDR WRITE CYCLE` | DRAMsim3's trace |
//!
//! Each line is one request for the 64-byte line holding `ADDR` (hexadecimal, `0x` first;
//! the address is aligned down to 64 bytes). `CYCLE` (decimal) is a DRAM command-clock
//! cycle: the request is offered at that cycle or later. Blank lines and lines starting
//! with `#` are skipped; every other line must be in the file's format. A bad line is an
//! input error at `FILE:LINE:COLUMN` with a hint; a line longer than [`MAX_LINE_BYTES`] is
//! refused, and no more than `MAX_LINE_BYTES + 1` bytes of any line are ever held.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use crate::topology::{InputError, Origin};

/// Bytes of one request: a 64-byte line.
pub const LINE_BYTES: u64 = 64;
/// Longest line accepted, bytes.
pub const MAX_LINE_BYTES: usize = 4096;

/// A trace format.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// `R 0xADDR` / `W 0xADDR`.
    ReadWrite,
    /// Ramulator's `LD 0xADDR` / `ST 0xADDR`.
    Ramulator,
    /// DRAMsim3's `0xADDR READ|WRITE CYCLE`.
    DramSim3,
}

impl Format {
    /// The format's name (`rw`, `ramulator`, `dramsim3`).
    pub fn name(self) -> &'static str {
        match self {
            Format::ReadWrite => "rw",
            Format::Ramulator => "ramulator",
            Format::DramSim3 => "dramsim3",
        }
    }

    /// All formats.
    pub const ALL: [Format; 3] = [Format::ReadWrite, Format::Ramulator, Format::DramSim3];

    /// The format called `name`.
    pub fn from_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Writes one request in this format (`cycle` only in DRAMsim3's).
    pub fn write_line(
        self,
        out: &mut impl std::io::Write,
        addr: u64,
        write: bool,
        cycle: u64,
    ) -> std::io::Result<()> {
        match (self, write) {
            (Format::ReadWrite, false) => writeln!(out, "R {addr:#x}"),
            (Format::ReadWrite, true) => writeln!(out, "W {addr:#x}"),
            (Format::Ramulator, false) => writeln!(out, "LD {addr:#x}"),
            (Format::Ramulator, true) => writeln!(out, "ST {addr:#x}"),
            (Format::DramSim3, false) => writeln!(out, "{addr:#x} READ {cycle}"),
            (Format::DramSim3, true) => writeln!(out, "{addr:#x} WRITE {cycle}"),
        }
    }
}

/// One request of a trace.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct TraceRequest {
    /// Address of its 64-byte line.
    pub addr: u64,
    /// A write (else a read).
    pub write: bool,
    /// The DRAM cycle it is offered at, if the format gives one.
    pub cycle: Option<u64>,
}

const ANY_FORMAT: &str = "a request line is `R 0xADDR`, `W 0xADDR`, `LD 0xADDR`, `ST 0xADDR` or `0xADDR READ|WRITE CYCLE` (one format per file; `#` starts a comment line)";

/// Reads a trace file request by request.
pub struct TraceReader {
    path: String,
    reader: BufReader<Box<dyn Read + Send>>,
    buf: Vec<u8>,
    line: u32,
    format: Option<(Format, u32)>,
    requests: u64,
    writes: u64,
    max_cycle: u64,
}

/// Tokens looked at on a line: a request has at most three, a fourth is an error.
const MAX_TOKENS: usize = 4;

/// The whitespace-separated tokens of `line` as byte ranges, at most [`MAX_TOKENS`] of them,
/// and how many there are (up to `MAX_TOKENS`).
fn split(line: &[u8]) -> ([(usize, usize); MAX_TOKENS], usize) {
    let mut toks = [(0, 0); MAX_TOKENS];
    let mut n = 0;
    let mut i = 0;
    while n < MAX_TOKENS {
        while i < line.len() && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= line.len() {
            break;
        }
        let start = i;
        while i < line.len() && !line[i].is_ascii_whitespace() {
            i += 1;
        }
        toks[n] = (start, i);
        n += 1;
    }
    (toks, n)
}

/// Parses `0x...` hexadecimal.
fn parse_hex(text: &[u8]) -> Result<u64, String> {
    let digits = match text {
        [b'0', b'x' | b'X', rest @ ..] if !rest.is_empty() => rest,
        _ => return Err("is not a hexadecimal address".into()),
    };
    let mut v: u64 = 0;
    for &c in digits {
        let d = HEX[usize::from(c)];
        if d > 15 {
            return Err("is not a hexadecimal address".into());
        }
        if v >> 60 != 0 {
            return Err("does not fit in 64 bits".into());
        }
        v = (v << 4) | u64::from(d);
    }
    Ok(v)
}

/// The value of each hexadecimal digit; 255 for any other byte.
static HEX: [u8; 256] = {
    let mut t = [255u8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

/// Parses a decimal cycle count.
fn parse_decimal(text: &[u8]) -> Result<u64, String> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return Err("is not a cycle number (decimal digits)".into());
    }
    let mut v: u64 = 0;
    for &c in text {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(u64::from(c - b'0')))
            .ok_or("does not fit in 64 bits")?;
    }
    Ok(v)
}

impl TraceReader {
    /// Opens `path` (`-` is standard input).
    pub fn open(path: &str) -> Result<TraceReader, InputError> {
        let input: Box<dyn Read + Send> = if path == "-" {
            Box::new(std::io::stdin())
        } else {
            let f = File::open(path).map_err(|e| {
                InputError::new(
                    format!("cannot read trace `{path}`: {e}"),
                    Origin::CommandLine(format!("--trace {path}")),
                    "",
                )
                .with_hint("give a trace file: one request per line, e.g. `R 0x1f40`")
            })?;
            if f.metadata().is_ok_and(|m| m.is_dir()) {
                return Err(InputError::new(
                    format!("trace `{path}` is a folder"),
                    Origin::CommandLine(format!("--trace {path}")),
                    "",
                )
                .with_hint("give a trace file: one request per line, e.g. `R 0x1f40`"));
            }
            Box::new(f)
        };
        Ok(TraceReader {
            path: path.to_owned(),
            reader: BufReader::with_capacity(1 << 16, input),
            buf: Vec::with_capacity(128),
            line: 0,
            format: None,
            requests: 0,
            writes: 0,
            max_cycle: u64::MAX,
        })
    }

    /// Refuses cycles above `max` (those past the end of simulated time).
    pub fn with_max_cycle(mut self, max: u64) -> Self {
        self.max_cycle = max;
        self
    }

    /// The format, once the first request line has been read.
    pub fn format(&self) -> Option<Format> {
        self.format.map(|(f, _)| f)
    }

    /// Requests read so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Writes among them.
    pub fn writes(&self) -> u64 {
        self.writes
    }

    /// The file as given.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn error(&self, column: usize, message: String, hint: &str) -> InputError {
        let text = String::from_utf8_lossy(&self.buf);
        let line = text.trim_end_matches(['\n', '\r']);
        // Columns count characters.
        let column = String::from_utf8_lossy(&self.buf[..(column - 1).min(self.buf.len())])
            .chars()
            .count()
            + 1;
        InputError::new(
            message,
            Origin::File {
                path: self.path.clone(),
                line: self.line,
                column: column as u32,
            },
            "",
        )
        .with_hint(hint)
        .with_line_text(line)
    }

    /// Reads the next line, without its `\n`, into `buf` (at most `MAX_LINE_BYTES + 1`
    /// bytes of it: a longer line is an error); false at the end of the file.
    fn read_line(&mut self) -> Result<bool, InputError> {
        let mut any = false;
        loop {
            let avail = match self.reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(InputError::new(
                        format!("cannot read trace `{}`: {e}", self.path),
                        Origin::File {
                            path: self.path.clone(),
                            line: self.line.saturating_add(1),
                            column: 1,
                        },
                        "",
                    ));
                }
            };
            if avail.is_empty() {
                return Ok(any);
            }
            any = true;
            let room = (MAX_LINE_BYTES + 1).saturating_sub(self.buf.len());
            match avail.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.buf.extend_from_slice(&avail[..i.min(room)]);
                    self.reader.consume(i + 1);
                    return Ok(true);
                }
                None => {
                    let n = avail.len();
                    self.buf.extend_from_slice(&avail[..n.min(room)]);
                    self.reader.consume(n);
                }
            }
        }
    }

    /// The next request, `None` at the end of the file.
    pub fn next_request(&mut self) -> Result<Option<TraceRequest>, InputError> {
        loop {
            self.buf.clear();
            if !self.read_line()? {
                return Ok(None);
            }
            self.line = self.line.saturating_add(1);
            if self.buf.last() == Some(&b'\r') {
                self.buf.pop();
            }
            if self.buf.len() > MAX_LINE_BYTES {
                self.buf.truncate(MAX_LINE_BYTES);
                return Err(self.error(
                    MAX_LINE_BYTES,
                    format!("line longer than {MAX_LINE_BYTES} bytes"),
                    "is this a trace? one request per line, e.g. `R 0x1f40`",
                ));
            }
            let (toks, n) = split(&self.buf);
            if n == 0 || self.buf[toks[0].0] == b'#' {
                continue;
            }
            let req = self.parse_line(&toks[..n])?;
            self.requests += 1;
            self.writes += u64::from(req.write);
            return Ok(Some(req));
        }
    }

    fn text(&self, tok: (usize, usize)) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.buf[tok.0..tok.1])
    }

    fn detect(&self, toks: &[(usize, usize)]) -> Result<Format, InputError> {
        let first = toks[0];
        match &self.buf[first.0..first.1] {
            b"R" | b"W" => Ok(Format::ReadWrite),
            b"LD" | b"ST" => Ok(Format::Ramulator),
            [b'0', b'x' | b'X', ..] => match toks.get(1) {
                Some(&t) if matches!(&self.buf[t.0..t.1], b"READ" | b"WRITE") => {
                    Ok(Format::DramSim3)
                }
                Some(&t) => Err(self.error(
                    t.0 + 1,
                    format!("`{}` is not `READ` or `WRITE`", self.text(t)),
                    ANY_FORMAT,
                )),
                None => Err(self.error(
                    self.buf.len() + 1,
                    "missing `READ` or `WRITE` after the address".into(),
                    ANY_FORMAT,
                )),
            },
            _ => Err(self.error(
                first.0 + 1,
                format!("`{}` does not start a request", self.text(first)),
                ANY_FORMAT,
            )),
        }
    }

    fn parse_line(&mut self, toks: &[(usize, usize)]) -> Result<TraceRequest, InputError> {
        let (format, since) = match self.format {
            Some(f) => f,
            None => {
                let f = self.detect(toks)?;
                self.format = Some((f, self.line));
                (f, self.line)
            }
        };
        let same = || {
            format!(
                "this file is in the `{}` format (detected on line {since}): every request line is {}",
                format.name(),
                match format {
                    Format::ReadWrite => "`R 0xADDR` or `W 0xADDR`",
                    Format::Ramulator => "`LD 0xADDR` or `ST 0xADDR`",
                    Format::DramSim3 => "`0xADDR READ CYCLE` or `0xADDR WRITE CYCLE`",
                }
            )
        };
        // Token positions of the operation, the address and the cycle; what each is called.
        let (op_i, addr_i, cycle_i, names): (usize, usize, Option<usize>, &[&str]) = match format {
            Format::ReadWrite | Format::Ramulator => (0, 1, None, &["a request", "the address"]),
            Format::DramSim3 => (
                1,
                0,
                Some(2),
                &["the address", "`READ` or `WRITE`", "the cycle"],
            ),
        };
        if toks.len() < names.len() {
            let after = match toks.last() {
                Some(&t) => format!(" after `{}`", self.text(t)),
                None => String::new(),
            };
            return Err(self.error(
                self.buf.len() + 1,
                format!("missing {}{after}", names[toks.len()]),
                &same(),
            ));
        }
        if let Some(&extra) = toks.get(names.len()) {
            return Err(self.error(
                extra.0 + 1,
                format!(
                    "unexpected `{}` at the end of the request",
                    self.text(extra)
                ),
                &same(),
            ));
        }
        let op = toks[op_i];
        let write = match (format, &self.buf[op.0..op.1]) {
            (Format::ReadWrite, b"R")
            | (Format::Ramulator, b"LD")
            | (Format::DramSim3, b"READ") => false,
            (Format::ReadWrite, b"W")
            | (Format::Ramulator, b"ST")
            | (Format::DramSim3, b"WRITE") => true,
            _ => {
                return Err(self.error(
                    op.0 + 1,
                    format!("`{}` is not a request of this file's format", self.text(op)),
                    &same(),
                ));
            }
        };
        let at = toks[addr_i];
        let addr = parse_hex(&self.buf[at.0..at.1]).map_err(|m| {
            self.error(
                at.0 + 1,
                format!("`{}` {m}", self.text(at)),
                "an address is `0x` followed by hexadecimal digits, e.g. `0x1f40`",
            )
        })?;
        let cycle = match cycle_i.map(|i| toks[i]) {
            None => None,
            Some(ct) => {
                let c = parse_decimal(&self.buf[ct.0..ct.1]).map_err(|m| {
                    self.error(
                        ct.0 + 1,
                        format!("`{}` {m}", self.text(ct)),
                        "DRAMsim3's third field is the DRAM cycle at which the request is issued, e.g. `0x1f40 READ 120`",
                    )
                })?;
                if c > self.max_cycle {
                    return Err(self.error(
                        ct.0 + 1,
                        format!(
                            "cycle {c} is past the end of simulated time (the last is cycle {})",
                            self.max_cycle
                        ),
                        "cycles count the DRAM command clock from 0",
                    ));
                }
                Some(c)
            }
        };
        Ok(TraceRequest {
            addr: addr / LINE_BYTES * LINE_BYTES,
            write,
            cycle,
        })
    }
}
