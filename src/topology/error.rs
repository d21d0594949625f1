//! Input errors: what is wrong, where (file, line, column, key path), and a hint.
//!
//! Rendered as
//! ```text
//! error: unknown port `psum_ot` on `acc` (kind `accumulator`)
//!   --> topologies/x.yaml:12:11
//!    |
//! 12 |     to: acc.psum_ot
//!    |         ^
//!    = key: links[3].to
//!    = hint: expected one of `psum_in`, `tile_out`
//! ```

use std::fmt;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A file, 1-based line and column.
    File {
        /// Path as given.
        path: String,
        /// Line, 1-based.
        line: u32,
        /// Column, 1-based.
        column: u32,
    },
    /// A command-line argument such as `--set pe_array.rows=32`.
    CommandLine(String),
    /// Nowhere in particular (a built-in default).
    Builtin,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line, column } => write!(f, "{path}:{line}:{column}"),
            Origin::CommandLine(arg) => write!(f, "command line `{arg}`"),
            Origin::Builtin => write!(f, "built-in default"),
        }
    }
}

/// A problem with the input (exit code 2). Small (one pointer) so `Result`s stay cheap;
/// the fields are read through `Deref`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError(Box<InputErrorDetails>);

/// The fields of an [`InputError`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputErrorDetails {
    /// What is wrong.
    pub message: String,
    /// Where.
    pub origin: Origin,
    /// Key path, e.g. `links[3].to` or `modules.pe_array.rows`.
    pub key: String,
    /// What to do about it.
    pub hint: Option<String>,
    /// The source line (at most [`SOURCE_WIDTH`] characters around the column, clipped
    /// with `…`), for a caret display.
    pub source_line: Option<String>,
    /// Characters of `source_line` before the caret.
    pub source_caret: usize,
}

/// Most characters of a source line an error shows (a window around the column).
pub const SOURCE_WIDTH: usize = 120;

/// The window of `line` shown for an error at 1-based `column`: at most [`SOURCE_WIDTH`]
/// characters around it, with `…` where it was cut; returns it and the caret's offset.
fn clip_line(line: &str, column: u32) -> (String, usize) {
    let col = (column as usize).saturating_sub(1);
    let len = line.chars().count();
    if len <= SOURCE_WIDTH {
        return (line.to_owned(), col.min(len));
    }
    let col = col.min(len);
    let start = col.saturating_sub(SOURCE_WIDTH / 2).min(len - SOURCE_WIDTH);
    let end = start + SOURCE_WIDTH;
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.extend(line.chars().skip(start).take(SOURCE_WIDTH));
    if end < len {
        out.push('…');
    }
    (out, col - start + usize::from(start > 0))
}

/// Most characters of a message or hint (longer ones, which quote huge values, are cut in
/// the middle).
pub const TEXT_WIDTH: usize = 1_000;

/// `text` cut to at most `max` characters, with `…` in place of the middle.
pub fn clip(text: &str, max: usize) -> String {
    let n = text.chars().count();
    if n <= max {
        return text.to_owned();
    }
    let tail = max / 4;
    let head = max - tail - 1;
    let mut out: String = text.chars().take(head).collect();
    out.push('…');
    out.extend(text.chars().skip(n - tail));
    out
}

impl InputError {
    /// An error at `origin` about `key`.
    pub fn new(message: impl Into<String>, origin: Origin, key: impl Into<String>) -> Self {
        let origin = match origin {
            Origin::CommandLine(arg) => Origin::CommandLine(clip(&arg, SOURCE_WIDTH)),
            other => other,
        };
        InputError(Box::new(InputErrorDetails {
            message: clip(&message.into(), TEXT_WIDTH),
            origin,
            key: clip(&key.into(), SOURCE_WIDTH),
            hint: None,
            source_line: None,
            source_caret: 0,
        }))
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(clip(&hint.into(), TEXT_WIDTH));
        self
    }

    /// Fills in the source line from the file text, if the origin is in that file.
    pub fn with_source(self, text: &str) -> Self {
        match self.0.origin {
            Origin::File { line, .. } if line > 0 => match text.lines().nth(line as usize - 1) {
                Some(src) => self.with_line_text(src),
                None => self,
            },
            _ => self,
        }
    }

    /// Fills in the source line itself (for a file read line by line), if the origin is
    /// in a file.
    pub fn with_line_text(mut self, src: &str) -> Self {
        if let Origin::File { column, .. } = self.0.origin {
            let (shown, caret) = clip_line(src, column);
            self.0.source_line = Some(shown);
            self.0.source_caret = caret;
        }
        self
    }
}

impl std::ops::Deref for InputError {
    type Target = InputErrorDetails;
    fn deref(&self) -> &InputErrorDetails {
        &self.0
    }
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "error: {}", self.message)?;
        let num = match (&self.source_line, &self.origin) {
            (Some(_), Origin::File { line, .. }) => line.to_string(),
            _ => String::new(),
        };
        let pad = " ".repeat(num.len().max(2));
        writeln!(f, "{pad}--> {}", self.origin)?;
        if let (Some(src), Origin::File { .. }) = (&self.source_line, &self.origin) {
            let num = format!("{num:>width$}", width = pad.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {src}")?;
            let caret_pad: String = src
                .chars()
                .take(self.source_caret)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            writeln!(f, "{pad} | {caret_pad}^")?;
        }
        if !self.key.is_empty() {
            writeln!(f, "{pad} = key: {}", self.key)?;
        }
        if let Some(h) = &self.hint {
            writeln!(f, "{pad} = hint: {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InputError {}

/// The closest candidate to `word`, if one is close enough to be a likely misspelling.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let len = word.chars().count();
    let limit = (len / 3).max(2);
    candidates
        .into_iter()
        // The distance is at least the difference in length: skip hopeless candidates
        // before the quadratic comparison (a huge word costs nothing then).
        .filter(|c| len.abs_diff(c.chars().count()) <= limit)
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// `did you mean `x`? ` followed by `expected one of ...`.
pub fn suggestion(word: &str, candidates: &[&str], what: &str) -> String {
    let list = crate::component::quote_list(candidates);
    match closest(word, candidates.iter().copied()) {
        Some(c) => format!("did you mean `{c}`? {what}: {list}"),
        None if candidates.is_empty() => format!("there are no {what}"),
        None => format!("{what}: {list}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(line: u32, column: u32) -> Origin {
        Origin::File {
            path: "t.yaml".into(),
            line,
            column,
        }
    }

    #[test]
    fn a_long_source_line_is_clipped_around_the_column() {
        let long = format!("k: {}X{}", "a".repeat(5_000), "b".repeat(5_000));
        let text = format!("first: 1\n{long}\n");
        let e = InputError::new("bad", at(2, 5_004), "k").with_source(&text);
        let shown = e.source_line.clone().unwrap();
        assert_eq!(shown.chars().count(), SOURCE_WIDTH + 2, "two ellipses");
        assert!(shown.starts_with('…') && shown.ends_with('…'), "{shown}");
        // The caret still points at the `X`.
        assert_eq!(shown.chars().nth(e.source_caret), Some('X'));
        let rendered = e.to_string();
        assert!(rendered.len() < 600, "{} bytes", rendered.len());
        let caret_line = rendered.lines().find(|l| l.ends_with('^')).unwrap();
        let src_line = rendered.lines().find(|l| l.contains('X')).unwrap();
        let caret_col = caret_line.chars().count() - 1;
        assert_eq!(src_line.chars().nth(caret_col), Some('X'), "{rendered}");
    }

    #[test]
    fn huge_values_in_messages_keys_and_arguments_are_cut() {
        let v = "9".repeat(100_000);
        let e = InputError::new(
            format!("cannot read value `{v}`"),
            Origin::CommandLine(format!("--set a.b={v}")),
            format!("a.{v}"),
        )
        .with_hint(format!("not {v}"));
        assert!(e.message.starts_with("cannot read value `999"));
        assert!(e.message.ends_with("999`"));
        assert_eq!(e.message.chars().count(), TEXT_WIDTH);
        assert!(e.hint.as_deref().unwrap().chars().count() <= TEXT_WIDTH);
        assert!(e.key.chars().count() <= SOURCE_WIDTH);
        assert!(
            e.to_string().len() < 4 * TEXT_WIDTH,
            "{} bytes",
            e.to_string().len()
        );
        // Ordinary texts are left alone.
        assert_eq!(clip("short", 10), "short");
    }

    #[test]
    fn a_short_source_line_is_shown_whole() {
        let e = InputError::new("bad", at(1, 4), "k").with_source("ab: cd\n");
        assert_eq!(e.source_line.as_deref(), Some("ab: cd"));
        assert_eq!(e.source_caret, 3);
        // Near the start or the end of a long line, one side is cut.
        let long = "x".repeat(1_000);
        let e = InputError::new("bad", at(1, 1), "k").with_source(&long);
        let shown = e.source_line.clone().unwrap();
        assert!(!shown.starts_with('…') && shown.ends_with('…'));
        assert_eq!(e.source_caret, 0);
        let e = InputError::new("bad", at(1, 1_000), "k").with_source(&long);
        let shown = e.source_line.clone().unwrap();
        assert!(shown.starts_with('…') && !shown.ends_with('…'));
        assert_eq!(e.source_caret, SOURCE_WIDTH);
    }
}
