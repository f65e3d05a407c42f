//! The limits of the documents only `builder` reads (a BOM, an advisory feed); they are read
//! with [`inputs::documents::read`], the one reader of every user document.

pub use inputs::documents::{failure, read};

/// Most bytes of a BOM (`bom.json`).
pub const BOM_LIMIT: u64 = 1 << 30;
/// Most bytes of an advisory feed (the whole Debian security tracker export is a few hundred
/// MiB).
pub const FEED_LIMIT: u64 = 1 << 30;
