//! Errors that point into a text file: `file:line:column: what` (the spec and the lock).

use std::path::{Path, PathBuf};

use toml::Spanned;

/// A file that does not parse or breaks a rule: `file:line:column: what`, or `file: what` when
/// the file could not be read at all.
#[derive(Debug, thiserror::Error)]
#[error("{}{}: {message}", path.display(), position(*line, *column))]
pub struct LocatedError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when the file could not be read at all).
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// `:line:column`, or nothing for line 0 (the file as a whole).
fn position(line: usize, column: usize) -> String {
    if line == 0 {
        String::new()
    } else {
        format!(":{line}:{column}")
    }
}

/// Turns byte offsets of a TOML text into [`LocatedError`]s.
pub(crate) struct Locator<'a> {
    pub(crate) path: &'a Path,
    pub(crate) text: &'a str,
}

impl Locator<'_> {
    pub(crate) fn at(&self, offset: usize, message: impl Into<String>) -> LocatedError {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        LocatedError {
            path: self.path.to_path_buf(),
            line,
            column,
            message: message.into(),
        }
    }

    pub(crate) fn bad<T>(
        &self,
        value: &Spanned<T>,
        key: &str,
        why: impl std::fmt::Display,
    ) -> LocatedError {
        self.at(value.span().start, format!("{key}: {why}"))
    }

    /// The text as `T`; a TOML syntax or shape error is located.
    pub(crate) fn parse_toml<T: serde::de::DeserializeOwned>(&self) -> Result<T, LocatedError> {
        toml::from_str(self.text).map_err(|e| self.toml(&e))
    }

    /// A TOML syntax or shape error from `toml::from_str`.
    pub(crate) fn toml(&self, e: &toml::de::Error) -> LocatedError {
        let offset = e.span().map_or(0, |s| s.start);
        self.at(offset, e.message().trim_end().to_owned())
    }
}

/// Reads the document at `path` (at most `limit` bytes of UTF-8 text; `what` names it in the
/// message: "a spec") and `parse`s it.
pub(crate) fn load<T>(
    path: &Path,
    limit: u64,
    what: &str,
    parse: fn(&Path, &str) -> Result<T, LocatedError>,
) -> Result<T, LocatedError> {
    parse(path, &read_text(path, limit, what)?)
}

/// Reads `path` as UTF-8 text of at most `limit` bytes (`what` names the document in the
/// message: "a spec"); an unreadable, non-regular or too large file or invalid UTF-8 is a
/// [`LocatedError`].
fn read_text(path: &Path, limit: u64, what: &str) -> Result<String, LocatedError> {
    let bytes = crate::documents::read(path, limit, what).map_err(|message| LocatedError {
        path: path.to_path_buf(),
        line: 0,
        column: 0,
        message,
    })?;
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = String::from_utf8_lossy(valid).into_owned();
        let loc = Locator { path, text: &text };
        loc.at(text.len(), "not UTF-8 text")
    })
}
