//! An independent qcow2 reader (v2 and v3, 512 B to 2 MiB clusters, standard, zero-flagged
//! and compressed clusters) for `verify` and `inspect`. Refcounts are not consulted. Every
//! offset taken from the file is checked before use: bad input gives an error, never a panic.

use std::path::Path;

use flate2::{Decompress, FlushDecompress};

use super::{MAGIC, OFFSET_MASK, OFLAG_COMPRESSED, OFLAG_ZERO};
use crate::bytes::{be32, be64};
use crate::error::{Error, Result};
use crate::image::{DiskImage, FileSlice};

/// Incompatible feature bit 0: the image was not closed cleanly (refcounts may be stale).
const INCOMPAT_DIRTY: u64 = 1;
/// Incompatible feature bit 1: qemu found corruption.
const INCOMPAT_CORRUPT: u64 = 1 << 1;
/// Incompatible feature bit 2: guest data lives in an external file.
const INCOMPAT_DATA_FILE: u64 = 1 << 2;
/// Incompatible feature bit 3: the compression type field is in use.
const INCOMPAT_COMPRESSION: u64 = 1 << 3;
/// Incompatible feature bit 4: extended L2 entries (subclusters).
const INCOMPAT_EXTL2: u64 = 1 << 4;
/// Largest L1 table accepted (qemu's `QCOW_MAX_L1_SIZE`, 32 MiB), in entries.
const MAX_L1_ENTRIES: u64 = (32 << 20) / 8;
/// Largest virtual size accepted: 2^61 bytes (qemu refuses more too).
const MAX_VIRTUAL_SIZE: u64 = 1 << 61;

/// A qcow2 image opened for reading.
#[derive(Debug)]
pub struct Qcow2Image {
    slice: FileSlice,
    version: u32,
    cluster_bits: u32,
    cluster_size: u64,
    size: u64,
    l1: Vec<u64>,
    /// The last L2 table read: (L1 index, entries).
    l2_cache: Option<(usize, Vec<u64>)>,
    /// The last compressed cluster inflated: (guest cluster, bytes).
    cluster_cache: Option<(u64, Vec<u8>)>,
    inflater: Decompress,
}

fn to_usize(path: &Path, offset: u64, n: u64) -> Result<usize> {
    usize::try_from(n)
        .map_err(|_| Error::corrupt(path, offset, format!("{n} bytes do not fit in memory")))
}

impl Qcow2Image {
    /// Opens and checks the header and L1 table of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let slice = FileSlice::open(path)?;
        let file_len = slice.len();
        if file_len < 72 {
            return Err(Error::corrupt(
                path,
                0,
                format!("truncated: {file_len} bytes, shorter than a qcow2 header"),
            ));
        }
        let mut head = [0u8; 105];
        let head_len = usize::try_from(file_len.min(105)).unwrap_or(72);
        slice.read_exact_at(0, &mut head[..head_len])?;
        if head[..4] != MAGIC {
            return Err(Error::corrupt(
                path,
                0,
                format!(
                    "not qcow2: magic {}, expected 514649fb",
                    hex::encode(&head[..4])
                ),
            ));
        }
        let version = be32(&head, 4);
        if version != 2 && version != 3 {
            return Err(Error::corrupt(
                path,
                4,
                format!("unsupported qcow2 version {version} (2 or 3 only)"),
            ));
        }
        if be64(&head, 8) != 0 {
            return Err(Error::corrupt(
                path,
                8,
                "has a backing file; only standalone images are supported",
            ));
        }
        let cluster_bits = be32(&head, 20);
        if !(9..=21).contains(&cluster_bits) {
            return Err(Error::corrupt(
                path,
                20,
                format!("cluster_bits {cluster_bits} outside 9..=21"),
            ));
        }
        let cluster_size = 1u64 << cluster_bits;
        let size = be64(&head, 24);
        if size > MAX_VIRTUAL_SIZE {
            return Err(Error::corrupt(
                path,
                24,
                format!("absurd virtual size {size}"),
            ));
        }
        let crypt = be32(&head, 32);
        if crypt != 0 {
            return Err(Error::corrupt(
                path,
                32,
                format!("encrypted (crypt_method {crypt}); not supported"),
            ));
        }
        if version == 3 {
            Self::check_v3(path, &head, head_len, cluster_size)?;
        }

        let l1_size = u64::from(be32(&head, 36));
        let l1_offset = be64(&head, 40);
        let l2_entries = cluster_size / 8;
        let needed = size.div_ceil(cluster_size).div_ceil(l2_entries);
        if l1_size < needed || l1_size > MAX_L1_ENTRIES {
            return Err(Error::corrupt(
                path,
                36,
                format!(
                    "L1 table of {l1_size} entries cannot map {size} bytes ({needed} entries needed)"
                ),
            ));
        }
        if !l1_offset.is_multiple_of(cluster_size) && needed > 0 {
            return Err(Error::corrupt(
                path,
                40,
                format!("L1 table offset {l1_offset} is not cluster-aligned"),
            ));
        }
        let l1_bytes = needed * 8;
        if l1_offset
            .checked_add(l1_bytes)
            .is_none_or(|end| end > file_len)
        {
            return Err(Error::corrupt(
                path,
                40,
                format!(
                    "L1 table at {l1_offset} ({l1_bytes} bytes) runs past the end of the file ({file_len} bytes)"
                ),
            ));
        }
        let mut raw = vec![0u8; to_usize(path, l1_offset, l1_bytes)?];
        slice.read_exact_at(l1_offset, &mut raw)?;
        let l1: Vec<u64> = raw.chunks_exact(8).map(|c| be64(c, 0)).collect();
        for (i, entry) in (0u64..).zip(&l1) {
            let l2 = entry & OFFSET_MASK;
            if l2 == 0 {
                continue;
            }
            let at = l1_offset + i * 8;
            if !l2.is_multiple_of(cluster_size) {
                return Err(Error::corrupt(
                    path,
                    at,
                    format!("L1 entry {i}: L2 table offset {l2} is not cluster-aligned"),
                ));
            }
            if l2
                .checked_add(cluster_size)
                .is_none_or(|end| end > file_len)
            {
                return Err(Error::corrupt(
                    path,
                    at,
                    format!(
                        "L1 entry {i}: L2 table at {l2} runs past the end of the file ({file_len} bytes)"
                    ),
                ));
            }
        }
        tracing::debug!(path = %path.display(), version, cluster_bits, size, l1_entries = l1.len(), "opened qcow2");
        Ok(Qcow2Image {
            slice,
            version,
            cluster_bits,
            cluster_size,
            size,
            l1,
            l2_cache: None,
            cluster_cache: None,
            inflater: Decompress::new(false),
        })
    }

    /// The v3 header fields: features, header length, refcount order, compression type.
    fn check_v3(path: &Path, head: &[u8; 105], head_len: usize, cluster_size: u64) -> Result<()> {
        if head_len < 104 {
            return Err(Error::corrupt(
                path,
                72,
                "truncated: a v3 header needs 104 bytes",
            ));
        }
        let incompatible = be64(head, 72);
        if incompatible & INCOMPAT_CORRUPT != 0 {
            return Err(Error::corrupt(
                path,
                72,
                "marked corrupt by qemu (incompatible feature bit 1)",
            ));
        }
        if incompatible & INCOMPAT_DATA_FILE != 0 {
            return Err(Error::corrupt(
                path,
                72,
                "uses an external data file; not supported",
            ));
        }
        if incompatible & INCOMPAT_EXTL2 != 0 {
            return Err(Error::corrupt(
                path,
                72,
                "uses extended L2 entries (subclusters); not supported",
            ));
        }
        let unknown = incompatible & !(INCOMPAT_DIRTY | INCOMPAT_COMPRESSION);
        if unknown != 0 {
            return Err(Error::corrupt(
                path,
                72,
                format!("unknown incompatible features {unknown:#x}"),
            ));
        }
        let header_length = u64::from(be32(head, 100));
        if header_length < 104 || header_length > cluster_size {
            return Err(Error::corrupt(
                path,
                100,
                format!("header_length {header_length} outside 104..={cluster_size}"),
            ));
        }
        let refcount_order = be32(head, 96);
        if refcount_order > 6 {
            return Err(Error::corrupt(
                path,
                96,
                format!("refcount_order {refcount_order} above 6"),
            ));
        }
        if incompatible & INCOMPAT_COMPRESSION != 0 {
            let kind = if header_length > 104 && head_len > 104 {
                head.get(104).copied()
            } else {
                None
            };
            if kind != Some(0) {
                return Err(Error::corrupt(
                    path,
                    104,
                    "compression type is not zlib (deflate); not supported",
                ));
            }
        }
        Ok(())
    }

    /// The qcow2 version (2 or 3).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The cluster size in bytes.
    pub fn cluster_size(&self) -> u64 {
        self.cluster_size
    }

    /// Guest clusters that hold data (standard or compressed, not zero-flagged); reads every
    /// L2 table once.
    pub fn allocated_clusters(&self) -> Result<u64> {
        let mut count = 0u64;
        let mut table = vec![0u8; to_usize(self.slice.path(), 0, self.cluster_size)?];
        for entry in &self.l1 {
            let l2 = entry & OFFSET_MASK;
            if l2 == 0 {
                continue;
            }
            self.slice.read_exact_at(l2, &mut table)?;
            count += table
                .chunks_exact(8)
                .map(|c| be64(c, 0))
                .filter(|&e| {
                    e & OFLAG_COMPRESSED != 0
                        || (e & OFFSET_MASK != 0 && !(self.version >= 3 && e & OFLAG_ZERO != 0))
                })
                .fold(0u64, |n, _| n + 1);
        }
        Ok(count)
    }

    /// Checks every L2 entry: a data cluster cluster-aligned and inside the file, a
    /// compressed cluster starting inside the file. Reads each L2 table once.
    fn check_l2_entries(&self) -> Result<()> {
        let path = self.slice.path();
        let file_len = self.slice.len();
        let mut table = vec![0u8; to_usize(path, 0, self.cluster_size)?];
        let shift = 62 - (self.cluster_bits - 8);
        for entry in &self.l1 {
            let l2 = entry & OFFSET_MASK;
            if l2 == 0 {
                continue;
            }
            self.slice.read_exact_at(l2, &mut table)?;
            for (slot, raw) in (0u64..).zip(table.chunks_exact(8)) {
                let e = be64(raw, 0);
                let at = l2 + slot * 8;
                if e & OFLAG_COMPRESSED != 0 {
                    let offset = e & ((1u64 << shift) - 1);
                    if offset >= file_len {
                        return Err(Error::corrupt(
                            path,
                            at,
                            format!(
                                "compressed cluster at {offset} lies past the end of the file ({file_len} bytes)"
                            ),
                        ));
                    }
                    continue;
                }
                let host = e & OFFSET_MASK;
                if host == 0 || (self.version >= 3 && e & OFLAG_ZERO != 0) {
                    continue;
                }
                if !host.is_multiple_of(self.cluster_size) {
                    return Err(Error::corrupt(
                        path,
                        at,
                        format!("data cluster offset {host} is not cluster-aligned"),
                    ));
                }
                if host >= file_len {
                    return Err(Error::corrupt(
                        path,
                        at,
                        format!(
                            "data cluster at {host} lies past the end of the file ({file_len} bytes)"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The L2 entry of guest cluster `guest` and the file offset it was read from.
    fn l2_entry(&mut self, guest: u64) -> Result<(u64, u64)> {
        let per_table = self.cluster_size / 8;
        let l1_index = usize::try_from(guest / per_table).unwrap_or(usize::MAX);
        let slot = usize::try_from(guest % per_table).unwrap_or(usize::MAX);
        let l2 = self.l1.get(l1_index).map_or(0, |e| e & OFFSET_MASK);
        if l2 == 0 {
            return Ok((0, 0));
        }
        if self.l2_cache.as_ref().is_none_or(|(i, _)| *i != l1_index) {
            let mut raw = vec![0u8; to_usize(self.slice.path(), l2, self.cluster_size)?];
            self.slice.read_exact_at(l2, &mut raw)?;
            self.l2_cache = Some((l1_index, raw.chunks_exact(8).map(|c| be64(c, 0)).collect()));
        }
        let entry = self
            .l2_cache
            .as_ref()
            .and_then(|(_, t)| t.get(slot))
            .copied()
            .unwrap_or(0);
        Ok((entry, l2 + (guest % per_table) * 8))
    }

    /// Inflates the compressed cluster of `entry` (found at file offset `at`) into the cache.
    fn inflate(&mut self, guest: u64, entry: u64, at: u64) -> Result<&[u8]> {
        let path = self.slice.path().to_path_buf();
        if self.cluster_cache.as_ref().is_none_or(|(g, _)| *g != guest) {
            let shift = 62 - (self.cluster_bits - 8);
            let offset = entry & ((1u64 << shift) - 1);
            let sectors = ((entry >> shift) & ((1u64 << (62 - shift)) - 1)) + 1;
            let csize = sectors * 512 - (offset & 511);
            let file_len = self.slice.len();
            if offset >= file_len {
                return Err(Error::corrupt(
                    &path,
                    at,
                    format!(
                        "compressed cluster at {offset} lies past the end of the file ({file_len} bytes)"
                    ),
                ));
            }
            // The last sector may be cut short by the end of the file.
            let mut input = vec![0u8; to_usize(&path, offset, csize.min(file_len - offset))?];
            self.slice.read_exact_at(offset, &mut input)?;
            let mut out = self
                .cluster_cache
                .take()
                .map(|(_, v)| v)
                .unwrap_or_default();
            out.clear();
            out.resize(to_usize(&path, offset, self.cluster_size)?, 0);
            self.inflater.reset(false);
            let status = self
                .inflater
                .decompress(&input, &mut out, FlushDecompress::Finish);
            let produced = self.inflater.total_out();
            if let Err(e) = status {
                return Err(Error::corrupt(
                    &path,
                    offset,
                    format!("compressed cluster does not inflate: {e}"),
                ));
            }
            if produced != self.cluster_size {
                return Err(Error::corrupt(
                    &path,
                    offset,
                    format!(
                        "compressed cluster inflates to {produced} bytes, not {}",
                        self.cluster_size
                    ),
                ));
            }
            self.cluster_cache = Some((guest, out));
        }
        Ok(self
            .cluster_cache
            .as_ref()
            .map_or(&[][..], |(_, v)| v.as_slice()))
    }

    /// Fills `buf` from guest cluster `guest` starting `within` bytes into it.
    fn read_cluster(&mut self, guest: u64, within: u64, buf: &mut [u8]) -> Result<()> {
        let (entry, at) = self.l2_entry(guest)?;
        if entry & OFLAG_COMPRESSED != 0 {
            let start = usize::try_from(within).unwrap_or(usize::MAX);
            let path = self.slice.path().to_path_buf();
            let bytes = self.inflate(guest, entry, at)?;
            let src = start
                .checked_add(buf.len())
                .and_then(|end| bytes.get(start..end));
            let src =
                src.ok_or_else(|| Error::corrupt(&path, at, "qcow2 read outside a cluster"))?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        let host = entry & OFFSET_MASK;
        if host == 0 || (self.version >= 3 && entry & OFLAG_ZERO != 0) {
            buf.fill(0);
            return Ok(());
        }
        let path = self.slice.path();
        if !host.is_multiple_of(self.cluster_size) {
            return Err(Error::corrupt(
                path,
                at,
                format!("data cluster offset {host} is not cluster-aligned"),
            ));
        }
        if host >= self.slice.len() {
            return Err(Error::corrupt(
                path,
                at,
                format!(
                    "data cluster for guest offset {} at {host} lies past the end of the file ({} bytes)",
                    guest << self.cluster_bits,
                    self.slice.len()
                ),
            ));
        }
        self.slice.read_exact_at(host + within, buf)
    }
}

impl DiskImage for Qcow2Image {
    fn virtual_size(&self) -> u64 {
        self.size
    }

    fn check_mappings(&mut self) -> Result<()> {
        self.check_l2_entries()
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if offset.checked_add(len).is_none_or(|end| end > self.size) {
            return Err(Error::corrupt(
                self.slice.path(),
                offset,
                format!(
                    "read of {len} bytes runs past the virtual size {}",
                    self.size
                ),
            ));
        }
        let mut pos = offset;
        let mut rest = buf;
        while !rest.is_empty() {
            let within = pos % self.cluster_size;
            let n = usize::try_from(self.cluster_size - within)
                .unwrap_or(usize::MAX)
                .min(rest.len());
            let (now, later) = rest.split_at_mut(n);
            self.read_cluster(pos >> self.cluster_bits, within, now)?;
            pos += u64::try_from(n).unwrap_or(u64::MAX);
            rest = later;
        }
        Ok(())
    }
}
