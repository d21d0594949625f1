//! Results-folder locks, so a folder belongs to one sweep at a time.
//!
//! A sweep or a merge holds `DIR/sweep.lock` exclusively while it writes `DIR`; a command
//! that only reads a results folder (a merge's inputs, `sweep plot`) holds it shared, so it
//! never reads a folder that a running sweep is still writing. The locks are the kernel's
//! (`flock` on Unix, through `std::fs::File::try_lock`): they go away with the process
//! however it ends, even SIGKILL, so a stale lock file never blocks anyone. The file itself
//! stays in the folder (removing it would race with the next sweep taking it).

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::Error;
use crate::topology::{InputError, Origin};

/// Name of the lock file in a results folder.
pub const LOCK_FILE: &str = "sweep.lock";

/// A held lock on a results folder; released when dropped.
#[derive(Debug)]
pub struct FolderLock {
    _file: Option<File>,
    /// The folder.
    pub dir: PathBuf,
}

fn busy(dir: &Path, message: String, hint: &str) -> Error {
    InputError::new(message, Origin::CommandLine(dir.display().to_string()), "")
        .with_hint(format!(
            "{hint} (the lock is `{}`; it is released when that process ends)",
            dir.join(LOCK_FILE).display()
        ))
        .into()
}

/// What to do when the filesystem cannot lock at all (some network filesystems): go on,
/// saying so, rather than make sweeps impossible there.
fn unlockable(dir: &Path, e: &std::io::Error) {
    eprintln!(
        "warning: cannot lock `{}` ({e}); going on without a lock: do not run two sweeps \
         into this folder at once",
        dir.join(LOCK_FILE).display()
    );
}

/// Refuses an output folder path that names something other than a folder (exit 2).
pub fn check_folder_path(dir: &Path) -> Result<(), Error> {
    if dir.as_os_str().is_empty() {
        return Err(InputError::new(
            "the output folder is an empty path",
            Origin::CommandLine("--out \"\"".into()),
            "",
        )
        .with_hint("give a folder, e.g. --out results/mine (`.` for this one)")
        .into());
    }
    if dir.exists() && !dir.is_dir() {
        return Err(InputError::new(
            format!("`{}` is a file, not a results folder", dir.display()),
            Origin::CommandLine(dir.display().to_string()),
            "",
        )
        .with_hint("give a folder (new, or one this sweep wrote) as --out")
        .into());
    }
    Ok(())
}

impl FolderLock {
    /// Takes `dir`'s lock for writing (creating `dir` and the lock file). A folder another
    /// sweep or merge holds is an input error (exit 2) naming it.
    pub fn exclusive(dir: &Path) -> Result<FolderLock, Error> {
        check_folder_path(dir)?;
        crate::io::create_folder(dir)?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| Error::Output(format!("cannot create `{}`: {e}", path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(busy(
                    dir,
                    format!(
                        "results folder `{}` is in use: another sweep holds it",
                        dir.display()
                    ),
                    "wait for that sweep (or merge) to end, or give another --out",
                ));
            }
            Err(TryLockError::Error(e)) => unlockable(dir, &e),
        }
        Ok(FolderLock {
            _file: Some(file),
            dir: dir.to_owned(),
        })
    }

    /// Takes `dir`'s lock for reading, if `dir` has a lock file (folders written before
    /// locks existed have none). A folder a sweep is writing is an input error (exit 2).
    pub fn shared(dir: &Path) -> Result<FolderLock, Error> {
        let path = dir.join(LOCK_FILE);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(_) => {
                return Ok(FolderLock {
                    _file: None,
                    dir: dir.to_owned(),
                });
            }
        };
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(busy(
                    dir,
                    format!(
                        "results folder `{}` is being written: another sweep holds it",
                        dir.display()
                    ),
                    "wait for that sweep to end, then read its results",
                ));
            }
            Err(TryLockError::Error(e)) => unlockable(dir, &e),
        }
        Ok(FolderLock {
            _file: Some(file),
            dir: dir.to_owned(),
        })
    }
}
