//! The crate's top-level error: bad input (exit code 2) or a failed simulation (exit 1).

use crate::kernel::SimError;
use crate::topology::InputError;

/// Anything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is wrong: a file, a flag, a value.
    #[error("{0}")]
    Input(InputError),
    /// The simulation ran and failed (deadlock, time limit).
    #[error("simulation failed: {0}")]
    Sim(#[from] SimError),
    /// The run could not write its results (a trace file failed mid-run).
    #[error("error: the run could not write its output: {0}")]
    Output(String),
    /// A functional run computed values outside the tolerance.
    #[error("functional check failed: {0}")]
    Check(String),
    /// The command ran and did not produce what it should (a sweep whose points all
    /// failed, an interrupted sweep).
    #[error("error: {0}")]
    Failed(String),
}

impl From<InputError> for Error {
    fn from(e: InputError) -> Self {
        Error::Input(e)
    }
}

impl Error {
    /// Process exit code: 2 for bad input, 1 for a failed simulation or command.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input(_) => 2,
            Error::Sim(_) | Error::Output(_) | Error::Check(_) | Error::Failed(_) => 1,
        }
    }
}
