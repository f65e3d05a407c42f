//! GCE: `NAME.tar.gz` holding exactly one member `disk.raw`, old-GNU sparse, gzip
//! (formats.md §4).
//!
//! The sparse map has 64 KiB grain granularity: every maximal run of non-zero grains is one
//! chunk, so the map (and the tarball) depend only on the disk's content. The gzip stream is
//! built from the grains the pipeline already deflated, so the data is compressed once.
//!
//! - [`oldgnu`] — the old-GNU sparse header, written and parsed.
//! - [`writer`] — [`GceWriter`].
//! - [`reader`] — [`read_content`], an independent streaming reader.

pub mod writer;

#[cfg(test)]
mod tests;

pub use diskimg::gce::{GceContent, oldgnu, read_content, reader};
pub use writer::GceWriter;
