//! VCD output (IEEE 1364 value change dump), opened by GTKWave and Surfer.
//!
//! Layout: a scope per module instance (named as in the topology) with its probed signals
//! (`busy` as a 1-bit wire, `op` and counters as 64-bit integers, rates as reals), a scope
//! `links` with the occupancy of every link, and for the DRAM a derived real `gbps`
//! (bandwidth over the last microsecond). Timescale 1 ps. A value is written only when it
//! changes. Op indices of `op` signals are listed in the header comment, and so are the
//! codes of the PE array's `state` (idle, computing, waiting for DRAM, a buffer, the
//! softmax, the accumulator; see [`EngineState`]). With string signals on, each `op` has an
//! `op_name` beside it and each `state` a `state_name` (`computing`, `wait_dram`, ...).
//!
//! Signals are discovered as they first change, so the body streams to a scratch file
//! beside the output and the header is written in front of it when the run ends, into the
//! output's [`AtomicFile`] (renamed into place once complete). With a trace window, changes
//! before the window only update the writer's state; the values in force at the window
//! start are dumped there.
//!
//! Scope names are module names with every character outside `[A-Za-z0-9_]` replaced by
//! `_`; names that would then collide (`a b` and `a_b`, or a module called `links`) get a
//! suffix `_2`, `_3`, ... in topology order, so every module keeps a scope of its own.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use rustc_hash::FxHashMap;

use super::{Record, TraceInfo, TraceWriter};
use crate::io::{AtomicFile, OutputError, TempFile};
use crate::kernel::{LinkSpec, ProbeValue};
use crate::sta::account::EngineState;

#[derive(Copy, Clone, Debug, PartialEq)]
enum Kind {
    Wire,
    Int,
    Real,
    Str,
}

struct Signal {
    scope: String,
    name: String,
    kind: Kind,
    id: String,
    last: Option<Value>,
}

/// A signal's value as the VCD writes it (bits and integers without building text).
#[derive(Clone, Debug, PartialEq)]
enum Value {
    /// A 1-bit wire.
    Bit(bool),
    /// An integer vector, written in binary.
    Int(u64),
    /// Anything else, as its VCD text (`r1.5`, `sname`).
    Text(String),
}

/// How the records of one probe (module, signal, index) are written, found once per probe:
/// the VCD signal it sets (`None`: not dumped), its string companion, its derived rate.
#[derive(Copy, Clone, Debug, Default)]
struct Route {
    dump: Option<usize>,
    companion: Option<usize>,
    /// The derived bandwidth signal's name (of a cumulative byte counter).
    rate_name: Option<&'static str>,
    rate: Option<usize>,
}

/// A probe's identity: module, signal name (by address and length: the names are
/// `'static` literals, so one name is one address in practice; two copies of one name get
/// two routes to the one signal the name's text finds), index.
type ProbeKey = (u32, usize, usize, u32);

fn probe_key(actor: u32, signal: &'static str, index: u32) -> ProbeKey {
    (actor, signal.as_ptr() as usize, signal.len(), index)
}

/// Bandwidth derived from a module's cumulative `bytes_done` probe.
struct Rate {
    t0_ps: u64,
    bytes0: i64,
    signal: usize,
}

/// Streams a VCD file.
pub struct VcdWriter {
    out: AtomicFile,
    body_file: TempFile,
    body: BufWriter<File>,
    header_comment: String,
    modules: Vec<String>,
    signals: Vec<Signal>,
    by_probe: BTreeMap<(u32, &'static str, u32), usize>,
    /// Each probe's route, by [`ProbeKey`] (no string comparison per record).
    routes: FxHashMap<ProbeKey, Route>,
    by_link: Vec<Option<usize>>,
    rates: Vec<Rate>,
    /// Index in `rates` of each (module, index) counter.
    rate_of: BTreeMap<(u32, u32), usize>,
    time_written: Option<u64>,
    window: (u64, u64),
    in_window: bool,
    /// Operation names, for `op_name` string signals (empty: none written).
    op_names: Vec<String>,
    all_op_names: Vec<String>,
}

fn id_code(mut n: usize) -> String {
    let mut s = String::new();
    loop {
        s.push((b'!' + (n % 94) as u8) as char);
        n /= 94;
        if n == 0 {
            return s;
        }
    }
}

/// VCD scope names for `modules`: sanitised, unique, and never the `links` scope.
fn scope_names(modules: &[String]) -> Vec<String> {
    let mut taken: BTreeSet<String> = BTreeSet::from(["links".to_owned()]);
    modules
        .iter()
        .map(|m| {
            let base = sanitize(m);
            let mut name = base.clone();
            let mut k = 2;
            while !taken.insert(name.clone()) {
                name = format!("{base}_{k}");
                k += 1;
            }
            name
        })
        .collect()
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The derived bandwidth signal of a cumulative byte counter, if `signal` is one.
fn rate_name(signal: &str) -> Option<&'static str> {
    match signal {
        "bytes_done" => Some("gbps"),
        "ch_bytes_done" => Some("ch_gbps"),
        _ => None,
    }
}

/// One microsecond: the window of the derived bandwidth, ps.
const RATE_WINDOW_PS: u64 = 1_000_000;

impl VcdWriter {
    /// Opens `path` (visible once finished), keeping only `[start, end]` ps.
    pub fn create(
        path: &Path,
        info: &TraceInfo,
        keep: &[bool],
        links: &[LinkSpec],
        window: Option<(u64, u64)>,
    ) -> Result<VcdWriter, OutputError> {
        let out = AtomicFile::create(path)?;
        let (body_file, file) = out.scratch("body").map_err(|e| out.error(e))?;
        let mut w = VcdWriter {
            out,
            body_file,
            body: BufWriter::with_capacity(1 << 20, file),
            header_comment: format!(
                "stasim trace; engine clock period {} ps; pe_array state codes: {}; op indices: {}",
                info.period_ps,
                EngineState::ALL
                    .iter()
                    .map(|s| format!("{}={}", s.code(), s.name()))
                    .collect::<Vec<_>>()
                    .join(" "),
                info.ops
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{i}={n}"))
                    .collect::<Vec<_>>()
                    .join(" ")
            ),
            modules: scope_names(&info.modules),
            signals: Vec::new(),
            by_probe: BTreeMap::new(),
            routes: FxHashMap::default(),
            by_link: vec![None; links.len()],
            rates: Vec::new(),
            rate_of: BTreeMap::new(),
            time_written: None,
            window: window.unwrap_or((0, u64::MAX)),
            in_window: window.is_none_or(|w| w.0 == 0),
            op_names: Vec::new(),
            // String values end at white space.
            all_op_names: info
                .ops
                .iter()
                .map(|n| n.replace(char::is_whitespace, "_"))
                .collect(),
        };
        for (i, l) in links.iter().enumerate() {
            if keep[l.src as usize] && keep[l.dst as usize] {
                let name = sanitize(&l.name.replace(" -> ", "__"));
                w.by_link[i] = Some(w.declare("links".into(), name, Kind::Int));
            }
        }
        Ok(w)
    }

    /// Also write an `op_name` string beside every `op` signal.
    pub fn op_names(&mut self, on: bool) {
        self.op_names = if on {
            std::mem::take(&mut self.all_op_names)
        } else {
            Vec::new()
        };
    }

    fn declare(&mut self, scope: String, name: String, kind: Kind) -> usize {
        let id = id_code(self.signals.len());
        self.signals.push(Signal {
            scope,
            name,
            kind,
            id,
            last: None,
        });
        self.signals.len() - 1
    }

    fn probe_signal(&mut self, actor: u32, signal: &'static str, index: u32, kind: Kind) -> usize {
        if let Some(&i) = self.by_probe.get(&(actor, signal, index)) {
            return i;
        }
        let scope = self
            .modules
            .get(actor as usize)
            .cloned()
            .unwrap_or_else(|| format!("m{actor}"));
        let name = if index == super::NO_INDEX {
            signal.to_owned()
        } else {
            format!("{signal}{index}")
        };
        let i = self.declare(scope, name, kind);
        self.by_probe.insert((actor, signal, index), i);
        i
    }

    /// The route of a probe seen for the first time (its value of kind `kind`): the VCD
    /// signal it sets, declared now. `bytes_done` (cumulative) only feeds the derived
    /// `gbps`, and `tile` / `tile_end` only the Perfetto tile spans: they are not dumped.
    fn route(&mut self, actor: u32, signal: &'static str, index: u32, kind: Kind) -> Route {
        let dumped = !matches!(signal, "bytes_done" | "ch_bytes_done" | "tile" | "tile_end");
        let route = Route {
            dump: dumped.then(|| self.probe_signal(actor, signal, index, kind)),
            rate_name: rate_name(signal),
            ..Route::default()
        };
        self.routes.insert(probe_key(actor, signal, index), route);
        route
    }

    fn encode(kind: Kind, v: ProbeValue) -> Option<Value> {
        match (kind, v) {
            (Kind::Wire, ProbeValue::Bool(b)) => Some(Value::Bit(b)),
            (Kind::Int, ProbeValue::Int(i)) => Some(Value::Int(i as u64)),
            (Kind::Real, ProbeValue::Real(x)) => Some(Value::Text(format!("r{x}"))),
            _ => None,
        }
    }

    /// Sets signal `i` to `v` at `t_ps`, writing it if it changed and is in the window.
    fn set(&mut self, i: usize, v: Value, t_ps: u64) -> std::io::Result<()> {
        let s = &mut self.signals[i];
        if s.last.as_ref() == Some(&v) {
            return Ok(());
        }
        s.last = Some(v);
        if !self.in_window {
            return Ok(());
        }
        self.write_value(i, t_ps)
    }

    fn write_value(&mut self, i: usize, t_ps: u64) -> std::io::Result<()> {
        if self.time_written != Some(t_ps) {
            writeln!(self.body, "#{t_ps}")?;
            self.time_written = Some(t_ps);
        }
        let s = &self.signals[i];
        match &s.last {
            Some(Value::Bit(b)) => writeln!(self.body, "{}{}", u8::from(*b), s.id),
            Some(Value::Int(n)) => {
                // `b` and the binary digits, without the formatting machinery.
                let mut buf = [0u8; 65];
                let digits = (64 - n.leading_zeros()).max(1) as usize;
                buf[0] = b'b';
                for k in 0..digits {
                    buf[digits - k] = b'0' + ((n >> k) & 1) as u8;
                }
                self.body.write_all(&buf[..=digits])?;
                writeln!(self.body, " {}", s.id)
            }
            Some(Value::Text(v)) => writeln!(self.body, "{v} {}", s.id),
            None if s.kind == Kind::Wire => writeln!(self.body, "x{}", s.id),
            None => writeln!(self.body, "x {}", s.id),
        }
    }

    /// Entering the window: dump every known value at the window start.
    fn enter_window(&mut self) -> std::io::Result<()> {
        self.in_window = true;
        for i in 0..self.signals.len() {
            if self.signals[i].last.is_some() {
                self.write_value(i, self.window.0)?;
            }
        }
        Ok(())
    }

    /// Ends the body at `end_ps` and writes header + body into the output.
    fn write_tail(&mut self, end_ps: u64) -> std::io::Result<()> {
        if !self.in_window {
            self.enter_window()?;
        }
        writeln!(
            self.body,
            "#{}",
            end_ps
                .min(self.window.1)
                .max(self.time_written.unwrap_or(0))
        )?;
        self.body.flush()?;
        let out = &mut self.out;
        writeln!(out, "$date stasim run $end")?;
        writeln!(out, "$version stasim {} $end", env!("CARGO_PKG_VERSION"))?;
        writeln!(out, "$comment {} $end", self.header_comment)?;
        writeln!(out, "$timescale 1ps $end")?;
        writeln!(out, "$scope module stasim $end")?;
        let mut scopes: Vec<&str> = Vec::new();
        for s in &self.signals {
            if !scopes.contains(&s.scope.as_str()) {
                scopes.push(&s.scope);
            }
        }
        for scope in scopes {
            writeln!(out, "$scope module {scope} $end")?;
            for s in self.signals.iter().filter(|s| s.scope == scope) {
                let (ty, width) = match s.kind {
                    Kind::Wire => ("wire", 1),
                    Kind::Int => ("integer", 64),
                    Kind::Real => ("real", 64),
                    Kind::Str => ("string", 1),
                };
                writeln!(out, "$var {ty} {width} {} {} $end", s.id, s.name)?;
            }
            writeln!(out, "$upscope $end")?;
        }
        writeln!(out, "$upscope $end")?;
        writeln!(out, "$enddefinitions $end")?;
        let mut body = File::open(self.body_file.path())?;
        std::io::copy(&mut body, out)?;
        Ok(())
    }
}

impl TraceWriter for VcdWriter {
    fn record(&mut self, r: &Record) -> std::io::Result<()> {
        let t = r.time_ps();
        if t > self.window.1 {
            return Ok(());
        }
        if !self.in_window && t >= self.window.0 {
            self.enter_window()?;
        }
        match *r {
            Record::Occupancy { link, count, .. } => {
                if let Some(i) = self.by_link.get(link as usize).copied().flatten() {
                    self.set(i, Value::Int(u64::from(count)), t)?;
                }
            }
            Record::Probe {
                actor,
                signal,
                index,
                value,
                ..
            } => {
                let kind = match value {
                    ProbeValue::Bool(_) => Kind::Wire,
                    ProbeValue::Int(_) => Kind::Int,
                    ProbeValue::Real(_) => Kind::Real,
                    ProbeValue::Label(_) => return Ok(()),
                };
                let key = probe_key(actor, signal, index);
                let mut route = match self.routes.get(&key) {
                    Some(r) => *r,
                    None => self.route(actor, signal, index, kind),
                };
                if let Some(i) = route.dump
                    && let Some(v) = Self::encode(self.signals[i].kind, value)
                {
                    self.set(i, v, t)?;
                }
                // String companions (with `op_names` on): `op` -> `op_name`, `state` ->
                // `state_name`.
                if let (ProbeValue::Int(code), false) = (value, self.op_names.is_empty()) {
                    let named = match signal {
                        "op" => Some((
                            "op_name",
                            self.op_names
                                .get(code as usize)
                                .cloned()
                                .unwrap_or_else(|| format!("op{code}")),
                        )),
                        "state" => Some((
                            "state_name",
                            EngineState::from_code(code)
                                .map_or_else(|| format!("state{code}"), |s| s.name().to_owned()),
                        )),
                        _ => None,
                    };
                    if let Some((name_signal, name)) = named {
                        let i = match route.companion {
                            Some(i) => i,
                            None => {
                                let i = self.probe_signal(actor, name_signal, index, Kind::Str);
                                route.companion = Some(i);
                                self.routes.insert(key, route);
                                i
                            }
                        };
                        self.set(i, Value::Text(format!("s{name}")), t)?;
                    }
                }
                // Cumulative byte counters become bandwidths: `bytes_done` -> `gbps`,
                // `ch_bytes_done` N -> `ch_gbpsN`.
                if let (ProbeValue::Int(bytes), Some(rate_name)) = (value, route.rate_name) {
                    let k = match route.rate {
                        Some(k) => k,
                        None => {
                            let gbps = self.probe_signal(actor, rate_name, index, Kind::Real);
                            let k = *self.rate_of.entry((actor, index)).or_insert_with(|| {
                                self.rates.push(Rate {
                                    t0_ps: 0,
                                    bytes0: 0,
                                    signal: gbps,
                                });
                                self.rates.len() - 1
                            });
                            route.rate = Some(k);
                            self.routes.insert(key, route);
                            k
                        }
                    };
                    let rate = &mut self.rates[k];
                    if t >= rate.t0_ps + RATE_WINDOW_PS {
                        let g =
                            (bytes - rate.bytes0) as f64 / ((t - rate.t0_ps) as f64 * 1e-12) / 1e9;
                        rate.t0_ps = t;
                        rate.bytes0 = bytes;
                        let sig = rate.signal;
                        self.set(sig, Value::Text(format!("r{g:.3}")), t)?;
                    }
                }
            }
        }
        Ok(())
    }

    fn path(&self) -> &Path {
        self.out.path()
    }

    fn finish(mut self: Box<Self>, end_ps: u64) -> Result<(), OutputError> {
        self.write_tail(end_ps).map_err(|e| self.out.error(e))?;
        self.out.commit()
    }
}
