//! `qcow2`: v3, 64 KiB clusters, 16-bit refcounts, zero clusters unallocated, optional
//! deflate-compressed clusters.
//!
//! The header layout and constants (shared with the exporters' writer) and the reader.
//!
//! The writer (in `exporters`) makes one pass (formats.md §6.3 layout A): cluster 0 is reserved for the
//! header, non-zero grains are streamed as data clusters in guest order from cluster 1
//! (compressed clusters packed byte-adjacent), then the L2 tables, the L1 table, the
//! refcount table and the refcount blocks are appended, and the header is written last.
//!
//! The reader is independent of the writer and accepts any standalone qcow2 v2/v3 image with
//! 512 B to 2 MiB clusters, including compressed clusters and zero-flagged clusters.

pub mod layout;
mod reader;

pub use reader::Qcow2Image;

/// The magic at offset 0: `QFI\xfb`.
pub const MAGIC: [u8; 4] = *b"QFI\xfb";
/// log2 of the cluster size written: 16 (64 KiB, one grain).
pub const CLUSTER_BITS: u32 = 16;
/// The cluster size written.
pub const CLUSTER_SIZE: u64 = 1 << CLUSTER_BITS;
/// log2 of the refcount width in bits written: 4 (16-bit refcounts).
pub const REFCOUNT_ORDER: u32 = 4;
/// The header length written (the v3 minimum).
pub const HEADER_LENGTH: u32 = 104;
/// L2 entries per L2 table at [`CLUSTER_SIZE`].
pub const L2_ENTRIES: u64 = CLUSTER_SIZE / 8;
/// L1/L2 entry bit 63: the cluster's refcount is exactly 1.
pub const OFLAG_COPIED: u64 = 1 << 63;
/// L2 entry bit 62: a compressed cluster.
pub const OFLAG_COMPRESSED: u64 = 1 << 62;
/// L2 entry bit 0 (v3): the cluster reads as zeros.
pub const OFLAG_ZERO: u64 = 1;
/// Host offset bits 9..=55 of L1 and standard L2 entries.
pub const OFFSET_MASK: u64 = 0x00ff_ffff_ffff_fe00;
