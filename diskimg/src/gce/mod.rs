//! GCE: `NAME.tar.gz` holding exactly one member `disk.raw`, old-GNU sparse, gzip
//! (formats.md §4), read back as a stream.
//!
//! - [`oldgnu`] — the old-GNU sparse header, written (by the exporters' GCE writer) and parsed.
//! - [`reader`] — [`read_content`], an independent streaming reader.

pub mod oldgnu;
pub mod reader;

pub use reader::read_content;

/// What a GCE tarball holds, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GceContent {
    /// Size of `disk.raw`.
    pub virtual_size: u64,
    /// SHA-256 of `disk.raw`.
    pub content_digest: [u8; 32],
}
