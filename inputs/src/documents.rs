//! The documents a user gives nodeimg to read — a spec, a lock, and (through `builder`) a BOM
//! and an advisory feed — each read whole through [`diskimg::input_file::read_bounded`] (a
//! regular file only, never a FIFO or device) and only up to its kind's limit, named in the
//! error.

use std::path::Path;

/// Most bytes of a spec (a hand-written TOML file is a few KiB).
pub const SPEC_LIMIT: u64 = 4 << 20;
/// Most bytes of a lock (one entry per pinned artifact).
pub const LOCK_LIMIT: u64 = 4 << 20;

/// The bytes of the document at `path`, at most `limit` of them; `what` names the kind of
/// document ("a spec"). The error is the fault without the path: `cannot read: …` for an OS
/// error, the refusal as it is for a file that is not a regular file or is too large.
pub fn read(path: &Path, limit: u64, what: &str) -> Result<Vec<u8>, String> {
    diskimg::input_file::read_bounded(path, limit, what).map_err(|e| failure(&e))
}

/// An [`diskimg::input_file`] error as the fault to print after the path: a refusal (not a
/// regular file, too large, not text) as it is, an OS error as `cannot read: …`.
pub fn failure(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => e.to_string(),
        _ => format!("cannot read: {e}"),
    }
}
