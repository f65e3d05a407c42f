//! What the single read pass hands to every writer: the virtual disk, in order, as batches of
//! 64 KiB grains, each grain known to be all-zero or not, non-zero grains optionally deflated
//! once for every compressing writer.

use std::sync::Arc;

/// Granularity of zero detection, qcow2 clusters and VMDK grains: 64 KiB.
pub const GRAIN_SIZE: u64 = 64 * 1024;
/// The grain size as a buffer length.
pub const GRAIN_BYTES: usize = 64 * 1024;
/// One sector.
pub use diskimg::image::SECTOR;

/// A contiguous range of the virtual disk, starting on a grain boundary.
#[derive(Debug)]
pub struct Batch {
    /// Byte offset in the virtual disk (a multiple of [`GRAIN_SIZE`]).
    pub offset: u64,
    /// Bytes covered. Only the last batch of a disk may end off a grain boundary
    /// (always on a sector boundary).
    pub len: u64,
    /// What the range holds.
    pub content: BatchContent,
}

/// The contents of a [`Batch`].
#[derive(Debug)]
pub enum BatchContent {
    /// The whole range reads as zeros (a hole, or data that is all zero bytes).
    Zero,
    /// At least one grain holds a non-zero byte.
    Data(DataBatch),
}

/// Bytes of a batch that has data, with per-grain facts.
#[derive(Debug)]
pub struct DataBatch {
    /// Exactly `len` bytes.
    pub bytes: Vec<u8>,
    /// One entry per grain (the last may be partial).
    pub grains: Vec<Grain>,
}

/// One 64 KiB grain of a data batch.
#[derive(Debug, Clone)]
pub struct Grain {
    /// True when every byte of the grain is zero.
    pub zero: bool,
    /// The grain's bytes deflated, when a compressing writer asked for it and the grain is
    /// not zero.
    pub deflated: Option<Arc<Deflated>>,
}

/// A grain compressed once, in a form every compressing writer can reuse.
///
/// `raw` is a raw DEFLATE (RFC 1951) stream of the grain's bytes that ends with a sync flush:
/// byte-aligned, no final block. Appending [`FINAL_EMPTY_BLOCK`] makes it a complete raw
/// deflate stream (qcow2); wrapping it in a zlib header and the Adler-32 makes a zlib stream
/// (VMDK); concatenating several such streams continues one gzip member (GCE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deflated {
    /// Raw deflate blocks, sync-flushed, without a final block.
    pub raw: Vec<u8>,
    /// Adler-32 of the uncompressed grain (for the zlib trailer).
    pub adler32: u32,
    /// CRC-32 of the uncompressed grain (for the gzip trailer).
    pub crc32: u32,
    /// Uncompressed length.
    pub len: u32,
}

/// A final, empty, fixed-Huffman deflate block: `BFINAL=1, BTYPE=01, end-of-block`.
pub const FINAL_EMPTY_BLOCK: [u8; 2] = [0x03, 0x00];

impl Batch {
    /// End offset (exclusive) of this batch.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }

    /// Every grain of a data batch as `(offset in the virtual disk, grain, bytes)`, in order;
    /// nothing for a zero batch.
    pub fn grains(&self) -> impl Iterator<Item = (u64, &Grain, &[u8])> {
        let data = match &self.content {
            BatchContent::Data(data) => Some(data),
            BatchContent::Zero => None,
        };
        data.into_iter().flat_map(move |d| {
            (0u64..)
                .zip(d.grains.iter().zip(d.bytes.chunks(GRAIN_BYTES)))
                .map(move |(i, (grain, bytes))| (self.offset + GRAIN_SIZE * i, grain, bytes))
        })
    }

    /// The grains of [`Batch::grains`] that hold a non-zero byte.
    pub fn data_grains(&self) -> impl Iterator<Item = (u64, &Grain, &[u8])> {
        self.grains().filter(|(_, grain, _)| !grain.zero)
    }
}

/// True when every byte of `bytes` is zero.
pub fn is_all_zero(bytes: &[u8]) -> bool {
    let words = bytes.chunks_exact(16);
    let tail = words.remainder();
    tail.iter().all(|&b| b == 0)
        && words.fold(0u128, |acc, w| {
            acc | u128::from_ne_bytes(w.try_into().unwrap_or([0xff; 16]))
        }) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_detection_sees_a_single_byte_anywhere() {
        let mut buf = vec![0u8; 4099];
        assert!(is_all_zero(&buf));
        for at in [0, 15, 16, 4095, 4096, 4098] {
            buf[at] = 1;
            assert!(!is_all_zero(&buf), "missed byte at {at}");
            buf[at] = 0;
        }
    }
}
