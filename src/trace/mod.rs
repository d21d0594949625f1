//! Waveform-like traces of a run: VCD (GTKWave, Surfer) and Perfetto / Chrome JSON.
//!
//! A [`TraceObserver`] turns the kernel's observer hooks into compact records and hands
//! them, in batches, through a bounded crossbeam channel to a writer thread that streams
//! the files to disk: memory stays flat however long the run (the channel holds at most
//! `CHANNEL_BATCHES` batches; a slow disk slows the simulation rather than filling RAM).
//!
//! Files are written through [`crate::io::AtomicFile`] and renamed into place when
//! complete, so a failed run never leaves a file that looks complete. A write error (disk
//! full, ...) is remembered by the writer, which keeps draining the channel so the
//! simulation never blocks on it, and is reported, naming the file, when the run ends.

pub mod perfetto;
pub mod vcd;

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use crate::io::OutputError;

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::kernel::{ActorId, LinkId, LinkSpec, Observer, ProbeValue, SimTime};
use crate::txn::Transaction;

/// Records per batch sent to the writer.
const BATCH: usize = 8192;
/// Batches the channel holds.
const CHANNEL_BATCHES: usize = 16;

/// What to trace.
#[derive(Clone, Debug, Default)]
pub struct TraceOptions {
    /// VCD output file.
    pub vcd: Option<PathBuf>,
    /// Perfetto / Chrome trace JSON output file.
    pub perfetto: Option<PathBuf>,
    /// Keep only `[start, end]` (simulated time).
    pub window: Option<(SimTime, SimTime)>,
    /// Keep only these module instances (and the links between kept modules).
    pub modules: Option<Vec<String>>,
    /// Add `op_name` string signals to the VCD (a VCD extension Surfer reads; GTKWave may not).
    pub vcd_strings: bool,
}

/// One traced change.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Record {
    /// A module's signal changed.
    Probe {
        /// Time, ps.
        t_ps: u64,
        /// Module index.
        actor: u32,
        /// Signal name.
        signal: &'static str,
        /// Index within a numbered family of signals, or [`NO_INDEX`].
        index: u32,
        /// New value.
        value: ProbeValue,
    },
    /// A link's occupancy changed.
    Occupancy {
        /// Time, ps.
        t_ps: u64,
        /// Link index.
        link: u32,
        /// Transactions held.
        count: u32,
    },
}

impl Record {
    /// Time of the record, ps.
    pub fn time_ps(&self) -> u64 {
        match self {
            Record::Probe { t_ps, .. } | Record::Occupancy { t_ps, .. } => *t_ps,
        }
    }
}

/// The `index` of a probe that is not part of a numbered family.
pub const NO_INDEX: u32 = u32::MAX;

/// Static facts the writers need: names and what each op is called.
#[derive(Clone, Debug, Default)]
pub struct TraceInfo {
    /// Module instance names (index = actor id).
    pub modules: Vec<String>,
    /// Link names (index = link id).
    pub links: Vec<String>,
    /// Operation names (index = op id), e.g. `L0.qkv`.
    pub ops: Vec<String>,
    /// Engine clock period, ps (for the VCD comment).
    pub period_ps: u64,
}

/// A streaming output format. Dropping a writer without [`TraceWriter::finish`] removes
/// its temporary files and leaves the target as it was.
pub trait TraceWriter: Send {
    /// Writes one record (records arrive in time order).
    fn record(&mut self, r: &Record) -> std::io::Result<()>;
    /// The output file, as the user named it.
    fn path(&self) -> &Path;
    /// Completes the file at simulated time `end_ps` and renames it into place.
    fn finish(self: Box<Self>, end_ps: u64) -> Result<(), OutputError>;
}

enum Msg {
    Batch(Vec<Record>),
    End(u64),
}

/// The observer: filters, batches and ships records to the writer thread.
pub struct TraceObserver {
    tx: Option<Sender<Msg>>,
    buf: Vec<Record>,
    occupancy: Vec<u32>,
    keep_actor: Vec<bool>,
    keep_link: Vec<bool>,
    window: Option<(u64, u64)>,
    writer: Option<JoinHandle<Result<(), String>>>,
}

impl TraceObserver {
    /// Opens the outputs (checking they can be created) and starts the writer thread.
    /// `links` are the simulation's link specs (to filter links by kept modules).
    pub fn start(
        opts: &TraceOptions,
        info: TraceInfo,
        links: &[LinkSpec],
    ) -> Result<TraceObserver, String> {
        if let Some((a, b)) = opts.window
            && a > b
        {
            return Err(format!("trace window starts after it ends ({a} > {b})"));
        }
        let keep_actor: Vec<bool> = match &opts.modules {
            None => vec![true; info.modules.len()],
            Some(names) => {
                for n in names {
                    if !info.modules.contains(n) {
                        let all: Vec<&str> = info.modules.iter().map(String::as_str).collect();
                        return Err(format!(
                            "--trace-modules names an unknown module `{n}`; {}",
                            crate::topology::error::suggestion(n, &all, "modules")
                        ));
                    }
                }
                info.modules.iter().map(|m| names.contains(m)).collect()
            }
        };
        let keep_link = links
            .iter()
            .map(|l| keep_actor[l.src as usize] && keep_actor[l.dst as usize])
            .collect();
        let window = opts.window.map(|(a, b)| (a.as_ps(), b.as_ps()));
        let mut writers: Vec<Box<dyn TraceWriter>> = Vec::new();
        if let Some(p) = &opts.vcd {
            let mut w = vcd::VcdWriter::create(p, &info, &keep_actor, links, window)
                .map_err(|e| e.to_string())?;
            w.op_names(opts.vcd_strings);
            writers.push(Box::new(w));
        }
        if let Some(p) = &opts.perfetto {
            let w = perfetto::PerfettoWriter::create(p, &info, &keep_actor, window)
                .map_err(|e| e.to_string())?;
            writers.push(Box::new(w));
        }
        let (tx, rx) = bounded::<Msg>(CHANNEL_BATCHES);
        let writer = std::thread::Builder::new()
            .name("stasim-trace".into())
            .spawn(move || write_loop(rx, writers))
            .map_err(|e| format!("cannot start the trace writer thread: {e}"))?;
        Ok(TraceObserver {
            tx: Some(tx),
            buf: Vec::with_capacity(BATCH),
            occupancy: vec![0; links.len()],
            keep_actor,
            keep_link,
            window,
            writer: Some(writer),
        })
    }

    #[inline]
    fn push(&mut self, r: Record) {
        if let Some((_, end)) = self.window
            && r.time_ps() > end
        {
            return;
        }
        self.buf.push(r);
        if self.buf.len() >= BATCH {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let batch = std::mem::replace(&mut self.buf, Vec::with_capacity(BATCH));
        if let Some(tx) = &self.tx
            && tx.send(Msg::Batch(batch)).is_err()
        {
            // The writer is gone; its error is reported by `on_end`.
            self.tx = None;
        }
    }
}

fn write_loop(rx: Receiver<Msg>, mut writers: Vec<Box<dyn TraceWriter>>) -> Result<(), String> {
    let mut failure: Option<OutputError> = None;
    for msg in rx.iter() {
        match msg {
            Msg::Batch(batch) => {
                if failure.is_some() {
                    continue; // keep draining so the simulation never blocks
                }
                // Records before the window still reach the writers, which keep them as
                // state (values in force at the window start) and leave them out of the files.
                'records: for r in &batch {
                    for w in &mut writers {
                        if let Err(e) = w.record(r) {
                            failure = Some(OutputError {
                                path: w.path().to_owned(),
                                message: e.to_string(),
                            });
                            break 'records;
                        }
                    }
                }
            }
            Msg::End(end_ps) => {
                if let Some(f) = failure {
                    return Err(f.to_string()); // dropping the writers removes their temporaries
                }
                for w in writers {
                    w.finish(end_ps).map_err(|e| e.to_string())?;
                }
                return Ok(());
            }
        }
    }
    Err(failure.map_or_else(
        || "the run ended before the trace was finished".into(),
        |f| f.to_string(),
    ))
}

impl Observer<Transaction> for TraceObserver {
    fn on_send(&mut self, now: SimTime, link: LinkId, _msg: &Transaction, _visible_at: SimTime) {
        let i = link.0 as usize;
        self.occupancy[i] += 1;
        if self.keep_link[i] {
            self.push(Record::Occupancy {
                t_ps: now.as_ps(),
                link: link.0,
                count: self.occupancy[i],
            });
        }
    }

    fn on_recv(&mut self, now: SimTime, link: LinkId, _msg: &Transaction) {
        let i = link.0 as usize;
        self.occupancy[i] = self.occupancy[i].saturating_sub(1);
        if self.keep_link[i] {
            self.push(Record::Occupancy {
                t_ps: now.as_ps(),
                link: link.0,
                count: self.occupancy[i],
            });
        }
    }

    fn on_probe(&mut self, now: SimTime, actor: ActorId, signal: &'static str, value: ProbeValue) {
        self.on_probe_indexed(now, actor, signal, NO_INDEX, value);
    }

    fn on_probe_indexed(
        &mut self,
        now: SimTime,
        actor: ActorId,
        signal: &'static str,
        index: u32,
        value: ProbeValue,
    ) {
        if self.keep_actor[actor.0 as usize] {
            self.push(Record::Probe {
                t_ps: now.as_ps(),
                actor: actor.0,
                signal,
                index,
                value,
            });
        }
    }

    fn on_end(&mut self, end: SimTime) -> Result<(), String> {
        self.flush();
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::End(end.as_ps()));
        }
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("the trace writer thread failed".into()),
            None => Ok(()),
        }
    }
}

impl Drop for TraceObserver {
    fn drop(&mut self) {
        // A run that failed before `on_end`: close the channel so the writer removes its
        // partial files, and wait for it.
        self.tx = None;
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
