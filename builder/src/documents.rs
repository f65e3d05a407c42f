//! The limits of the documents only `builder` reads (a BOM, an advisory feed), read with
//! [`inputs::documents::read`], the one reader of every user document, and parsed by `bom`.

pub use inputs::documents::{failure, read};

use std::path::{Path, PathBuf};

use bom::scan::feed::{Feed, FeedError, parse_feed};
use bom::{BOM_FILE, Bom, BomError};

/// Most bytes of a BOM (`bom.json`).
pub const BOM_LIMIT: u64 = 1 << 30;
/// Most bytes of an advisory feed (the whole Debian security tracker export is a few hundred
/// MiB).
pub const FEED_LIMIT: u64 = 1 << 30;

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
