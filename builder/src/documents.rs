//! The documents a user gives nodeimg to read — a spec, a lock, a BOM, an advisory feed — each
//! read whole through [`exporters::input_file::read_bounded`] (a regular file only, never a
//! FIFO or device) and only up to its kind's limit, named in the error.

use std::path::{Path, PathBuf};

use bom::scan::feed::{Feed, FeedError, parse_feed};
use bom::{BOM_FILE, Bom, BomError};

/// Most bytes of a spec (a hand-written TOML file is a few KiB).
pub const SPEC_LIMIT: u64 = 4 << 20;
/// Most bytes of a lock (one entry per pinned artifact).
pub const LOCK_LIMIT: u64 = 4 << 20;
/// Most bytes of a BOM (`bom.json`).
pub const BOM_LIMIT: u64 = 1 << 30;
/// Most bytes of an advisory feed (the whole Debian security tracker export is a few hundred
/// MiB).
pub const FEED_LIMIT: u64 = 1 << 30;

/// The bytes of the document at `path`, at most `limit` of them; `what` names the kind of
/// document ("a spec"). The error is the fault without the path: `cannot read: …` for an OS
/// error, the refusal as it is for a file that is not a regular file or is too large.
pub fn read(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    exporters::input_file::read_bounded(path, limit, what).map_err(|e| failure(&e))
}

/// An [`exporters::input_file`] error as the fault to print after the path: a refusal (not a
/// regular file, too large, not text) as it is, an OS error as `cannot read: …`.
pub fn failure(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => e.to_string(),
        _ => format!("cannot read: {e}"),
    }
}

/// The BOM file a command line argument names: the file itself, or `DIR/bom.json` for a build
/// output directory.
pub fn bom_path(arg: &Path) -> PathBuf {
    if arg.is_dir() {
        arg.join(BOM_FILE)
    } else {
        arg.to_path_buf()
    }
}

/// Reads and parses the BOM at `path`.
pub fn load_bom(path: &Path) -> Result<Bom, BomError> {
    Bom::parse(path, &read_bom_document(path, BOM_LIMIT, "a BOM")?)
}

/// Reads and parses the advisory feed at `path`.
pub fn load_feed(path: &Path) -> Result<Feed, FeedError> {
    parse_feed(
        path,
        &read_bom_document(path, FEED_LIMIT, "an advisory feed")?,
    )
}

/// [`read`] for the `bom` crate's documents, its fault as a [`BomError::Read`].
fn read_bom_document(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, BomError> {
    read(path, limit, what).map_err(|reason| BomError::Read {
        path: path.display().to_string(),
        reason,
    })
}
