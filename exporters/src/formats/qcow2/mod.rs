//! `qcow2`: v3, 64 KiB clusters, 16-bit refcounts, zero clusters unallocated, optional
//! deflate-compressed clusters.
//!
//! The writer makes one pass (formats.md §6.3 layout A): cluster 0 is reserved for the
//! header, non-zero grains are streamed as data clusters in guest order from cluster 1
//! (compressed clusters packed byte-adjacent), then the L2 tables, the L1 table, the
//! refcount table and the refcount blocks are appended, and the header is written last.
//!
//! The reader is independent of the writer and accepts any standalone qcow2 v2/v3 image with
//! 512 B to 2 MiB clusters, including compressed clusters and zero-flagged clusters.

mod writer;

#[cfg(test)]
mod tests;

pub use writer::Qcow2Writer;

use diskimg::qcow2::layout;
#[allow(unused_imports)]
use diskimg::qcow2::*;
