//! Perfetto / Chrome trace-event JSON (JSON array format), opened by ui.perfetto.dev and
//! chrome://tracing.
//!
//! One track (thread) per module instance; a complete event (`"ph":"X"`) per stretch of
//! work on one operation (a module's `busy` and `op` signals); for the PE array, a second
//! track with a span per tile (one pass) and a third with a span per wait (its `state`
//! signal: "waiting for DRAM", ...; see [`EngineState`]); DRAM bandwidth as a counter
//! track (`"ph":"C"`, GB/s over each microsecond, from the DRAM's `bytes_done`). Times are
//! microseconds with picosecond precision. Events stream into the output's [`AtomicFile`],
//! renamed into place when the run ends. Every name is written as a JSON string by
//! `serde_json` (any module or op name, newlines and quotes included, stays valid JSON).

use std::io::Write;
use std::path::Path;

use super::{Record, TraceInfo, TraceWriter};
use crate::io::{AtomicFile, OutputError};
use crate::kernel::ProbeValue;
use crate::sta::account::EngineState;

#[derive(Clone, Default)]
struct Track {
    /// Start of the tile (PE pass) in progress.
    tile_since: Option<u64>,
    /// The tile track's name was written.
    tile_track: bool,
    /// The wait in progress and its start (from the `state` signal).
    wait_since: Option<(EngineState, u64)>,
    /// The state track's name was written.
    state_track: bool,
    busy_since: Option<u64>,
    op: Option<i64>,
    bytes0: i64,
    t0_ps: u64,
}

/// Streams a Chrome trace JSON file.
pub struct PerfettoWriter {
    out: AtomicFile,
    /// Operation names, already JSON string literals.
    ops: Vec<String>,
    names: Vec<String>,
    tracks: Vec<Track>,
    window: (u64, u64),
}

/// Thread ids of tile tracks: this plus the module index.
const TILE_TRACK_BASE: usize = 1000;
/// Thread ids of state (wait) tracks: this plus the module index.
const STATE_TRACK_BASE: usize = 2000;

fn us(ps: u64) -> String {
    format!("{}.{:06}", ps / 1_000_000, ps % 1_000_000)
}

/// `s` as a JSON string literal, quotes included.
fn json_str(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

impl PerfettoWriter {
    /// Creates `path` (as `path.partial` until finished), keeping only `[start, end]` ps.
    pub fn create(
        path: &Path,
        info: &TraceInfo,
        keep: &[bool],
        window: Option<(u64, u64)>,
    ) -> Result<PerfettoWriter, OutputError> {
        let mut w = PerfettoWriter {
            out: AtomicFile::create(path)?,
            ops: info.ops.iter().map(|n| json_str(n)).collect(),
            names: info.modules.clone(),
            tracks: vec![Track::default(); info.modules.len()],
            window: window.unwrap_or((0, u64::MAX)),
        };
        let mut head = String::from(
            "[\n{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":1,\"args\":{\"name\":\"stasim\"}}",
        );
        for (i, m) in info.modules.iter().enumerate() {
            if keep[i] {
                head.push_str(&format!(
                    ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{i},\"args\":{{\"name\":{}}}}}",
                    json_str(m)
                ));
            }
        }
        w.out
            .write_all(head.as_bytes())
            .map_err(|e| w.out.error(e))?;
        Ok(w)
    }

    /// Emits the span of `actor` that ends at `t_ps`, clipped to the window.
    fn close_span(&mut self, actor: usize, t_ps: u64) -> std::io::Result<()> {
        let tr = &mut self.tracks[actor];
        let Some(start) = tr.busy_since.take() else {
            return Ok(());
        };
        let (a, b) = (start.max(self.window.0), t_ps.min(self.window.1));
        if b <= a {
            return Ok(());
        }
        let name = tr
            .op
            .and_then(|o| self.ops.get(o as usize))
            .map_or("\"busy\"", String::as_str);
        write!(
            self.out,
            ",\n{{\"name\":{name},\"cat\":\"op\",\"ph\":\"X\",\"pid\":1,\"tid\":{actor},\"ts\":{},\"dur\":{}}}",
            us(a),
            us(b - a)
        )
    }
}

impl PerfettoWriter {
    /// Emits a span named `name` on the extra track `tid` of `actor` (named `actor`'s name
    /// and `track` when first used, as `*named` records), clipped to the window.
    #[allow(clippy::too_many_arguments)]
    fn side_span(
        out: &mut AtomicFile,
        window: (u64, u64),
        tid: usize,
        track: String,
        named: &mut bool,
        name: &str,
        cat: &str,
        (start, end): (u64, u64),
    ) -> std::io::Result<()> {
        let (s, e) = (start.max(window.0), end.min(window.1));
        if e <= s {
            return Ok(());
        }
        if !*named {
            *named = true;
            write!(
                out,
                ",\n{{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":1,\"tid\":{tid},\"args\":{{\"name\":{}}}}}",
                json_str(&track)
            )?;
        }
        write!(
            out,
            ",\n{{\"name\":{name},\"cat\":\"{cat}\",\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{},\"dur\":{}}}",
            us(s),
            us(e - s)
        )
    }

    /// Closes the wait of `actor` in progress at `t_ps`, if any.
    fn close_wait(&mut self, actor: usize, t_ps: u64) -> std::io::Result<()> {
        let Some((state, since)) = self.tracks[actor].wait_since.take() else {
            return Ok(());
        };
        let track = format!("{} waits", self.names[actor]);
        Self::side_span(
            &mut self.out,
            self.window,
            STATE_TRACK_BASE + actor,
            track,
            &mut self.tracks[actor].state_track,
            &json_str(state.label()),
            "wait",
            (since, t_ps),
        )
    }
}

impl TraceWriter for PerfettoWriter {
    fn record(&mut self, r: &Record) -> std::io::Result<()> {
        let Record::Probe {
            t_ps,
            actor,
            signal,
            index: super::NO_INDEX,
            value,
        } = *r
        else {
            return Ok(());
        };
        let a = actor as usize;
        if a >= self.tracks.len() {
            return Ok(());
        }
        match (signal, value) {
            ("busy", ProbeValue::Bool(true)) if self.tracks[a].busy_since.is_none() => {
                self.tracks[a].busy_since = Some(t_ps);
            }
            ("busy", ProbeValue::Bool(false)) => self.close_span(a, t_ps)?,
            ("op", ProbeValue::Int(op)) if self.tracks[a].op != Some(op) => {
                // A new operation starts a new span.
                if self.tracks[a].busy_since.is_some() {
                    self.close_span(a, t_ps)?;
                    self.tracks[a].busy_since = Some(t_ps);
                }
                self.tracks[a].op = Some(op);
            }
            ("tile", ProbeValue::Int(_)) => self.tracks[a].tile_since = Some(t_ps),
            ("tile_end", ProbeValue::Int(op)) => {
                if let Some(start) = self.tracks[a].tile_since.take() {
                    // Tiles go on their own track, below the module's op spans.
                    let name = self
                        .ops
                        .get(op as usize)
                        .map_or_else(|| "\"tile\"".to_owned(), Clone::clone);
                    let track = format!("{} tiles", self.names[a]);
                    Self::side_span(
                        &mut self.out,
                        self.window,
                        TILE_TRACK_BASE + a,
                        track,
                        &mut self.tracks[a].tile_track,
                        &name,
                        "tile",
                        (start, t_ps),
                    )?;
                }
            }
            ("state", ProbeValue::Int(code)) => {
                // Waits go on a track of their own; computing shows as the op spans.
                self.close_wait(a, t_ps)?;
                if let Some(s @ EngineState::Waiting(_)) = EngineState::from_code(code) {
                    self.tracks[a].wait_since = Some((s, t_ps));
                }
            }
            ("bytes_done", ProbeValue::Int(bytes)) => {
                let tr = &mut self.tracks[a];
                if t_ps >= tr.t0_ps + 1_000_000 {
                    let gbps =
                        (bytes - tr.bytes0) as f64 / ((t_ps - tr.t0_ps) as f64 * 1e-12) / 1e9;
                    let t0 = tr.t0_ps;
                    tr.t0_ps = t_ps;
                    tr.bytes0 = bytes;
                    if t0 >= self.window.0 && t0 <= self.window.1 {
                        write!(
                            self.out,
                            ",\n{{\"name\":\"DRAM bandwidth\",\"ph\":\"C\",\"pid\":1,\"ts\":{},\"args\":{{\"GB/s\":{gbps:.3}}}}}",
                            us(t0)
                        )?;
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn path(&self) -> &Path {
        self.out.path()
    }

    fn finish(mut self: Box<Self>, end_ps: u64) -> Result<(), OutputError> {
        let mut close = || -> std::io::Result<()> {
            for a in 0..self.tracks.len() {
                self.close_span(a, end_ps)?;
                self.close_wait(a, end_ps)?;
            }
            self.out.write_all(b"\n]\n")
        };
        close().map_err(|e| self.out.error(e))?;
        self.out.commit()
    }
}
