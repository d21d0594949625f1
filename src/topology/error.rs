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
    /// The source line, for a caret display.
    pub source_line: Option<String>,
}

impl InputError {
    /// An error at `origin` about `key`.
    pub fn new(message: impl Into<String>, origin: Origin, key: impl Into<String>) -> Self {
        InputError(Box::new(InputErrorDetails {
            message: message.into(),
            origin,
            key: key.into(),
            hint: None,
            source_line: None,
        }))
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.0.hint = Some(hint.into());
        self
    }

    /// Fills in the source line from the file text, if the origin is in that file.
    pub fn with_source(mut self, text: &str) -> Self {
        if let Origin::File { line, .. } = self.0.origin
            && line > 0
        {
            self.0.source_line = text.lines().nth(line as usize - 1).map(str::to_owned);
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
        if let (Some(src), Origin::File { column, .. }) = (&self.source_line, &self.origin) {
            let num = format!("{num:>width$}", width = pad.len());
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {src}")?;
            let caret_pad: String = src
                .chars()
                .take(column.saturating_sub(1) as usize)
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
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
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
