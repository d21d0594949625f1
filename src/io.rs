//! The one way stasim writes an output file.
//!
//! Every writer (report, CSV, VCD, Perfetto, charts, `.stanm`, sweep files) goes through
//! [`AtomicFile`] or [`write_atomic`], so every output obeys the same rules:
//!
//! - **A regular file (or a new name) is replaced atomically.** Bytes go to a temporary file
//!   in the target's own folder, named `NAME.PID-RANDOM.partial` (unique per process and per
//!   file, created with `O_EXCL`), which is flushed, synced and renamed over the target only
//!   when complete. Two runs writing the same path never share a temporary file, and the
//!   final file is always wholly one run's. A failure (or a drop without
//!   [`AtomicFile::commit`]) removes the temporary; the old file stays untouched.
//! - **A symlink is followed**: its final target is replaced atomically, the link stays.
//! - **A device, FIFO or socket is written directly** (`/dev/null`, `/dev/stdout`, a named
//!   pipe): never renamed over, never removed.
//! - **A folder given as a file path is refused** ([`check_output_path`] says so before a
//!   run starts).
//! - **Interrupted runs clean up**: after [`remove_temporaries_on_signals`], SIGINT and
//!   SIGTERM remove every live temporary file of the process before it dies of the signal.
//!
//! Errors are [`OutputError`]s, which name the file; they become [`crate::Error::Output`]
//! (exit code 1, like a failed run).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, Once};

/// An output file could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot write `{}`: {message}", path.display())]
pub struct OutputError {
    /// The path as the user named it.
    pub path: PathBuf,
    /// What went wrong.
    pub message: String,
}

impl OutputError {
    fn new(path: &Path, message: impl Into<String>) -> OutputError {
        OutputError {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

impl From<OutputError> for crate::Error {
    fn from(e: OutputError) -> Self {
        crate::Error::Output(e.to_string())
    }
}

/// Where the bytes of an output end up.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// A regular file (existing or not) at this resolved path: write a temporary, rename.
    Replace(PathBuf),
    /// A device, FIFO or socket: open and write in place.
    Direct,
}

/// Longest chain of symlinks followed (Linux's own limit is 40).
const MAX_SYMLINK_HOPS: usize = 40;

/// Resolves `path` to where its bytes must go; refuses folders.
fn destination(path: &Path) -> Result<Destination, OutputError> {
    let mut current = path.to_owned();
    for _ in 0..MAX_SYMLINK_HOPS {
        let meta = match std::fs::symlink_metadata(&current) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Destination::Replace(current));
            }
            Err(e) => return Err(OutputError::new(path, e.to_string())),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            let link =
                std::fs::read_link(&current).map_err(|e| OutputError::new(path, e.to_string()))?;
            current = match current.parent() {
                Some(dir) if link.is_relative() => dir.join(link),
                _ => link,
            };
            continue;
        }
        if kind.is_dir() {
            return Err(OutputError::new(path, "it is a folder, not a file"));
        }
        if kind.is_file() {
            return Ok(Destination::Replace(current));
        }
        return Ok(Destination::Direct);
    }
    Err(OutputError::new(path, "too many levels of symbolic links"))
}

/// Checks, before a run starts, that `path` can be an output file: not a folder, and in a
/// folder that exists. Returns the error a write would give, so a run that could not save
/// its results is refused before it spends any time.
pub fn check_output_path(path: &Path) -> Result<(), OutputError> {
    if path.as_os_str().is_empty() {
        return Err(OutputError::new(path, "the file name is empty"));
    }
    match destination(path)? {
        Destination::Direct => Ok(()),
        Destination::Replace(target) => {
            let dir = folder_of(&target);
            match std::fs::metadata(&dir) {
                Ok(m) if m.is_dir() => Ok(()),
                Ok(_) => Err(OutputError::new(
                    path,
                    format!("`{}` is not a folder", dir.display()),
                )),
                Err(_) => Err(OutputError::new(
                    path,
                    format!("the folder `{}` does not exist", dir.display()),
                )),
            }
        }
    }
}

/// The folder a file lives in (`.` for a bare name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    }
}

/// Creates `dir` and its parents for outputs, naming it in the error.
pub fn create_folder(dir: &Path) -> Result<(), OutputError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| OutputError::new(dir, format!("cannot create the folder: {e}")))
}

/// Live temporary files of this process, removed on SIGINT / SIGTERM.
static LIVE: Mutex<BTreeMap<u64, PathBuf>> = Mutex::new(BTreeMap::new());
/// Ids of temporary files (also part of their names).
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn live() -> std::sync::MutexGuard<'static, BTreeMap<u64, PathBuf>> {
    // A panic while holding the lock leaves the map valid: keep using it.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A random 64-bit value for temporary names (std's per-process random hash keys, mixed
/// with the time and a counter: no extra dependency, never the same twice in a process).
fn random_part(id: u64) -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(id);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    h.write_u64(now);
    h.finish()
}

/// A uniquely named scratch file beside `near`, removed when dropped (and on SIGINT /
/// SIGTERM once [`remove_temporaries_on_signals`] was called).
#[derive(Debug)]
pub struct TempFile {
    id: u64,
    path: PathBuf,
    keep: bool,
}

impl TempFile {
    /// Creates `NAME.PID-RANDOM.TAG` in the folder of `near` (exclusively: never an existing
    /// file), returning it with an open handle.
    pub fn create_beside(near: &Path, tag: &str) -> std::io::Result<(TempFile, File)> {
        let dir = folder_of(near);
        let name = near
            .file_name()
            .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
        loop {
            let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
            let path = dir.join(format!(
                ".{name}.{}-{:016x}.{tag}",
                std::process::id(),
                random_part(id)
            ));
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => {
                    live().insert(id, path.clone());
                    return Ok((
                        TempFile {
                            id,
                            path,
                            keep: false,
                        },
                        file,
                    ));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// Where the scratch file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the scratch file to `target` (same folder); it is no longer removed.
    fn rename_to(mut self, target: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.path, target)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        live().remove(&self.id);
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An output file being written: a buffered [`Write`] that becomes visible at `path` only
/// on [`AtomicFile::commit`]. Dropping it uncommitted leaves `path` as it was.
#[derive(Debug)]
pub struct AtomicFile {
    path: PathBuf,
    out: BufWriter<File>,
    /// `Some` for a file replaced by rename; `None` for a device or FIFO written in place.
    replace: Option<(TempFile, PathBuf)>,
}

impl AtomicFile {
    /// Opens an output for `path` (see the module header for what each kind of path gets).
    pub fn create(path: &Path) -> Result<AtomicFile, OutputError> {
        let err = |e: std::io::Error| OutputError::new(path, e.to_string());
        match destination(path)? {
            Destination::Direct => {
                let file = OpenOptions::new().write(true).open(path).map_err(err)?;
                Ok(AtomicFile {
                    path: path.to_owned(),
                    out: BufWriter::with_capacity(1 << 16, file),
                    replace: None,
                })
            }
            Destination::Replace(target) => {
                let (tmp, file) = TempFile::create_beside(&target, "partial").map_err(err)?;
                Ok(AtomicFile {
                    path: path.to_owned(),
                    out: BufWriter::with_capacity(1 << 16, file),
                    replace: Some((tmp, target)),
                })
            }
        }
    }

    /// The path as given to [`AtomicFile::create`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Flushes, syncs and renames the file into place.
    pub fn commit(self) -> Result<(), OutputError> {
        let path = self.path;
        let err = |e: std::io::Error| OutputError::new(&path, e.to_string());
        let file = self.out.into_inner().map_err(|e| err(e.into_error()))?;
        match self.replace {
            None => Ok(()),
            Some((tmp, target)) => {
                file.sync_all().map_err(err)?;
                drop(file);
                tmp.rename_to(&target).map_err(err)
            }
        }
    }

    /// A scratch file for a writer that needs one (the VCD body): beside the target when the
    /// target is a file, in the system's temporary folder when it is a device or FIFO.
    pub fn scratch(&self, tag: &str) -> std::io::Result<(TempFile, File)> {
        match &self.replace {
            Some((_, target)) => TempFile::create_beside(target, tag),
            None => TempFile::create_beside(&std::env::temp_dir().join("stasim"), tag),
        }
    }

    /// A write error on this file, naming it.
    pub fn error(&self, e: std::io::Error) -> OutputError {
        OutputError::new(&self.path, e.to_string())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.out.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.out.write_all(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Writes `bytes` to `path` atomically (see [`AtomicFile`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), OutputError> {
    let mut f = AtomicFile::create(path)?;
    f.write_all(bytes).map_err(|e| f.error(e))?;
    f.commit()
}

/// The largest text input stasim reads (a topology or sweep file), bytes.
pub const MAX_TEXT_INPUT_BYTES: usize = 16 << 20;

/// Reads a UTF-8 text input of at most [`MAX_TEXT_INPUT_BYTES`] (and one byte more, to tell
/// a file at the limit from a longer one), so `/dev/zero` or a huge file is refused instead
/// of read until memory runs out. The error says why, without the path.
pub fn read_text_input(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|f| {
            f.take(MAX_TEXT_INPUT_BYTES as u64 + 1)
                .read_to_end(&mut bytes)
        })
        .map_err(|e| e.to_string())?;
    if bytes.len() > MAX_TEXT_INPUT_BYTES {
        return Err(format!(
            "it is longer than {} MiB, the limit for a text input",
            MAX_TEXT_INPUT_BYTES >> 20
        ));
    }
    String::from_utf8(bytes).map_err(|e| format!("it is not UTF-8 text ({e})"))
}

/// From now on SIGINT and SIGTERM remove this process's live temporary files, then end the
/// process as the signal would have (so a shell sees "killed by SIGINT"). For commands that
/// do not handle these signals themselves (`run`, `prune`); idempotent.
pub fn remove_temporaries_on_signals() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        let spawned = std::thread::Builder::new()
            .name("stasim-signals".into())
            .spawn(move || {
                if let Some(sig) = signals.forever().next() {
                    let paths: Vec<PathBuf> = live().values().cloned().collect();
                    for p in paths {
                        let _ = std::fs::remove_file(p);
                    }
                    let _ = signal_hook::low_level::emulate_default_handler(sig);
                    std::process::exit(128 + sig);
                }
            });
        drop(spawned);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp_dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("stasim-io-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_dropped_file_leaves_the_old_one_and_no_temporary() {
        let d = tmp_dir("drop");
        let p = d.join("r.json");
        std::fs::write(&p, "old").unwrap();
        let mut f = AtomicFile::create(&p).unwrap();
        f.write_all(b"half").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(entries(&d), ["r.json"]);
    }

    #[test]
    fn commit_replaces_and_the_temporary_is_unique() {
        let d = tmp_dir("commit");
        let p = d.join("r.json");
        let mut a = AtomicFile::create(&p).unwrap();
        let mut b = AtomicFile::create(&p).unwrap();
        assert_eq!(entries(&d).len(), 2, "two writers, two temporaries");
        a.write_all(b"aaaa").unwrap();
        b.write_all(b"bb").unwrap();
        a.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "aaaa");
        b.commit().unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "bb");
        assert_eq!(entries(&d), ["r.json"]);
    }

    #[test]
    fn a_symlink_is_followed_and_kept() {
        let d = tmp_dir("link");
        let real = d.join("real.txt");
        std::fs::write(&real, "old").unwrap();
        let link = d.join("link.txt");
        std::os::unix::fs::symlink("real.txt", &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&real).unwrap(), "new");
        // A dangling link gets its target created.
        let dangling = d.join("dangling.txt");
        std::os::unix::fs::symlink("made.txt", &dangling).unwrap();
        write_atomic(&dangling, b"x").unwrap();
        assert_eq!(std::fs::read_to_string(d.join("made.txt")).unwrap(), "x");
        assert!(
            std::fs::symlink_metadata(&dangling)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn a_fifo_is_written_in_place() {
        let d = tmp_dir("fifo");
        let fifo = d.join("pipe");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_atomic(&fifo, b"through the pipe").unwrap();
        assert_eq!(reader.join().unwrap(), b"through the pipe");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        use std::os::unix::fs::FileTypeExt;
        assert!(kind.is_fifo(), "the FIFO is still a FIFO");
        assert_eq!(entries(&d), ["pipe"]);
    }

    #[test]
    fn a_device_is_never_replaced() {
        write_atomic(Path::new("/dev/null"), b"nothing").unwrap();
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::symlink_metadata("/dev/null").unwrap().file_type();
        assert!(kind.is_char_device());
    }

    #[test]
    fn folders_and_missing_folders_are_refused_up_front() {
        let d = tmp_dir("dir");
        let e = check_output_path(&d).unwrap_err();
        assert!(e.to_string().contains("it is a folder"), "{e}");
        assert!(AtomicFile::create(&d).is_err());
        let e = check_output_path(&d.join("no/such/file.json")).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        check_output_path(&d.join("fine.json")).unwrap();
        check_output_path(Path::new("/dev/null")).unwrap();
        assert_eq!(entries(&d), Vec::<String>::new());
    }
}
