//! The qcow2 writer: one pass, seekable output, metadata appended after the data and the
//! header written last (formats.md §6.3 layout A).

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::layout::{
    self, COMPRESSED_OFFSET_MASK, HEADER_BYTES, MAX_L1_ENTRIES, REFCOUNTS_PER_BLOCK, Tail,
    compressed_entry, compressed_host_clusters,
};
use super::{CLUSTER_BITS, CLUSTER_SIZE, L2_ENTRIES, OFLAG_COPIED};
use diskimg::ImageFormat;

use crate::artifact::TempArtifact;
use crate::batch::{Batch, GRAIN_BYTES, GRAIN_SIZE, Grain};
use crate::deflate::{deflate_grain, raw_stream};
use crate::error::{Error, IoContext, Result};
use crate::format::Format;
use crate::pipeline::{DiskWriter, FinishContext, Produced};

/// Bytes gathered before one positional write.
const FLUSH_AT: usize = 1 << 20;

// One grain is one cluster.
const _: () = assert!(GRAIN_SIZE == CLUSTER_SIZE);

/// Writes `NAME.qcow2`.
#[derive(Debug)]
pub struct Qcow2Writer {
    out: TempArtifact,
    path: PathBuf,
    compress: bool,
    virtual_size: u64,
    l1_entries: u32,
    /// Guest offset the next batch must start at.
    next_guest: u64,
    sink: AppendSink,
    /// L2 tables in guest order: (L1 index, entries).
    l2_tables: Vec<(u64, Box<[u64]>)>,
    /// Refcount of every host cluster below the end of the data (index = host cluster).
    data_refcounts: Vec<u16>,
    /// Data clusters stored uncompressed / compressed.
    stored: (u64, u64),
}

impl Qcow2Writer {
    /// Starts `dir/NAME.qcow2` for a disk of `virtual_size` bytes.
    pub fn new(dir: &Path, name: &str, compress: bool, virtual_size: u64) -> Result<Self> {
        let file_name = format!("{name}.qcow2");
        let l1 = layout::l1_entries(virtual_size);
        let l1_entries = u32::try_from(l1).ok().filter(|_| l1 <= MAX_L1_ENTRIES).ok_or_else(|| Error::bad_input(&dir.join(&file_name), format!("a {virtual_size}-byte disk needs {l1} L1 entries; qcow2 allows at most {MAX_L1_ENTRIES}")))?;
        let out = TempArtifact::create(dir, &file_name)?;
        let path = out.temp_path().to_path_buf();
        Ok(Qcow2Writer {
            out,
            path,
            compress,
            virtual_size,
            l1_entries,
            next_guest: 0,
            // Cluster 0 is the header, written last.
            sink: AppendSink::new(CLUSTER_SIZE),
            l2_tables: Vec::new(),
            data_refcounts: vec![1],
            stored: (0, 0),
        })
    }

    /// Records `entry` for guest cluster `guest` (guest clusters arrive in increasing order).
    fn map(&mut self, guest: u64, entry: u64) {
        let l1_index = guest / L2_ENTRIES;
        let slot = usize::try_from(guest % L2_ENTRIES).unwrap_or(0);
        if self.l2_tables.last().is_none_or(|(i, _)| *i != l1_index) {
            self.l2_tables
                .push((l1_index, vec![0u64; GRAIN_BYTES / 8].into_boxed_slice()));
        }
        if let Some(e) = self
            .l2_tables
            .last_mut()
            .and_then(|(_, table)| table.get_mut(slot))
        {
            *e = entry;
        }
    }

    /// Adds one reference to every host cluster in `[first, last]`.
    fn reference(&mut self, first: u64, last: u64) -> Result<()> {
        let needed = usize::try_from(last + 1)
            .map_err(|_| Error::Pipeline("qcow2 host offset too large".into()))?;
        if self.data_refcounts.len() < needed {
            self.data_refcounts.resize(needed, 0);
        }
        for c in first..=last {
            let index = usize::try_from(c)
                .map_err(|_| Error::Pipeline("qcow2 host offset too large".into()))?;
            if let Some(r) = self.data_refcounts.get_mut(index) {
                *r = r
                    .checked_add(1)
                    .ok_or_else(|| Error::Pipeline("qcow2 refcount overflow".into()))?;
            }
        }
        Ok(())
    }

    /// Stores one non-zero grain (`bytes` is shorter than a cluster only at the end of the disk).
    fn store(&mut self, guest: u64, grain: &Grain, bytes: &[u8]) -> Result<()> {
        let full = bytes.len() == GRAIN_BYTES;
        if self.compress {
            let stream = match &grain.deflated {
                Some(d) if full && usize::try_from(d.len).is_ok_and(|n| n == GRAIN_BYTES) => {
                    raw_stream(d)
                }
                _ => {
                    // A compressed cluster must inflate to a whole cluster: pad the tail grain.
                    let mut padded = bytes.to_vec();
                    padded.resize(GRAIN_BYTES, 0);
                    raw_stream(&deflate_grain(&padded))
                }
            };
            if stream.len() < GRAIN_BYTES {
                let offset = self.sink.pos();
                let len = u64::try_from(stream.len()).unwrap_or(CLUSTER_SIZE);
                if offset > COMPRESSED_OFFSET_MASK {
                    return Err(Error::Pipeline(
                        "qcow2 compressed cluster offset beyond 2^54".into(),
                    ));
                }
                self.sink.append(self.out.file(), &self.path, &stream)?;
                let (first, last) = compressed_host_clusters(offset, len);
                self.reference(first, last)?;
                self.map(guest, compressed_entry(offset, len));
                self.stored.1 += 1;
                return Ok(());
            }
        }
        let host = self.sink.pos().div_ceil(CLUSTER_SIZE) * CLUSTER_SIZE;
        let file = self.out.file();
        self.sink.pad_to(file, &self.path, host)?;
        self.sink.append(file, &self.path, bytes)?;
        self.sink.pad_to(file, &self.path, host + CLUSTER_SIZE)?;
        self.reference(host >> CLUSTER_BITS, host >> CLUSTER_BITS)?;
        self.map(guest, host | OFLAG_COPIED);
        self.stored.0 += 1;
        Ok(())
    }

    /// Appends the L2 tables, L1, refcount table and blocks; returns the header.
    fn write_metadata(&mut self) -> Result<[u8; HEADER_BYTES]> {
        let file = self.out.file();
        let data_end = self.sink.pos().div_ceil(CLUSTER_SIZE);
        self.sink
            .pad_to(file, &self.path, data_end * CLUSTER_SIZE)?;
        let n_l2 = u64::try_from(self.l2_tables.len()).unwrap_or(u64::MAX);
        let tail = Tail::plan(data_end, n_l2, u64::from(self.l1_entries));

        let mut l1 = vec![0u64; usize::try_from(tail.l1_clusters * L2_ENTRIES).unwrap_or(0)];
        for (n, (l1_index, table)) in (0u64..).zip(&self.l2_tables) {
            let at = (tail.l2_start + n) * CLUSTER_SIZE;
            if let Some(e) = usize::try_from(*l1_index).ok().and_then(|i| l1.get_mut(i)) {
                *e = at | OFLAG_COPIED;
            }
            self.sink.append(file, &self.path, &be_bytes(table))?;
        }
        self.sink.append(file, &self.path, &be_bytes(&l1))?;
        drop(l1);

        let mut table = vec![0u64; usize::try_from(tail.rt_clusters * L2_ENTRIES).unwrap_or(0)];
        for (n, e) in (0u64..tail.rb_count).zip(table.iter_mut()) {
            *e = (tail.rb_start + n) * CLUSTER_SIZE;
        }
        self.sink.append(file, &self.path, &be_bytes(&table))?;
        drop(table);

        let mut block = Vec::with_capacity(GRAIN_BYTES);
        for b in 0..tail.rb_count {
            block.clear();
            for c in b * REFCOUNTS_PER_BLOCK..(b + 1) * REFCOUNTS_PER_BLOCK {
                let refcount = if c < data_end {
                    usize::try_from(c)
                        .ok()
                        .and_then(|i| self.data_refcounts.get(i))
                        .copied()
                        .unwrap_or(0)
                } else {
                    u16::from(c < tail.total)
                };
                block.extend_from_slice(&refcount.to_be_bytes());
            }
            self.sink.append(file, &self.path, &block)?;
        }
        self.sink.flush(file, &self.path)?;
        debug_assert_eq!(self.sink.pos(), tail.total * CLUSTER_SIZE);

        let rt_clusters = u32::try_from(tail.rt_clusters)
            .map_err(|_| Error::Pipeline("qcow2 refcount table too large".into()))?;
        tracing::debug!(
            path = %self.path.display(),
            uncompressed = self.stored.0,
            compressed = self.stored.1,
            l2_tables = n_l2,
            refcount_blocks = tail.rb_count,
            clusters = tail.total,
            "qcow2 metadata laid out"
        );
        Ok(layout::header(
            self.virtual_size,
            self.l1_entries,
            &tail,
            rt_clusters,
        ))
    }
}

impl DiskWriter for Qcow2Writer {
    fn task(&self) -> &'static str {
        "qcow2"
    }

    fn needs_deflate(&self) -> bool {
        self.compress
    }

    fn consume(&mut self, batch: &Batch) -> Result<()> {
        if batch.offset != self.next_guest
            || !batch.offset.is_multiple_of(GRAIN_SIZE)
            || batch.end() > self.virtual_size
        {
            return Err(Error::Pipeline(format!(
                "qcow2: batch at {} (+{}) out of order (expected {}, disk {} bytes)",
                batch.offset, batch.len, self.next_guest, self.virtual_size
            )));
        }
        self.next_guest = batch.end();
        for (offset, grain, bytes) in batch.data_grains() {
            self.store(offset / GRAIN_SIZE, grain, bytes)?;
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Result<Vec<Produced>> {
        ctx.check_covered(self.task(), self.next_guest, self.virtual_size)?;
        let header = self.write_metadata()?;
        let path = self.path.clone();
        self.out
            .file()
            .write_all_at(&header, 0)
            .at("writing header of", &path)?;
        let (size, sha256) = self.out.sync_and_sha256()?;
        Ok(vec![Produced::disk(
            self.out,
            Format::Qcow2,
            ImageFormat::Qcow2,
            size,
            sha256,
        )])
    }
}

/// Big-endian bytes of table entries.
fn be_bytes(entries: &[u64]) -> Vec<u8> {
    entries.iter().flat_map(|e| e.to_be_bytes()).collect()
}

/// Sequential appends at a growing file offset, gathered into large positional writes.
#[derive(Debug)]
struct AppendSink {
    /// File offset of `buf[0]`.
    start: u64,
    buf: Vec<u8>,
}

impl AppendSink {
    fn new(start: u64) -> Self {
        AppendSink {
            start,
            buf: Vec::with_capacity(FLUSH_AT + GRAIN_BYTES),
        }
    }

    /// File offset of the next appended byte.
    fn pos(&self) -> u64 {
        self.start + u64::try_from(self.buf.len()).unwrap_or(u64::MAX)
    }

    fn append(&mut self, file: &File, path: &Path, bytes: &[u8]) -> Result<()> {
        if self.buf.len() + bytes.len() > FLUSH_AT {
            self.flush(file, path)?;
        }
        if bytes.len() >= FLUSH_AT {
            file.write_all_at(bytes, self.start).at("writing", path)?;
            self.start += u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        } else {
            self.buf.extend_from_slice(bytes);
        }
        Ok(())
    }

    /// Appends zeros up to file offset `to` (no-op when already there).
    fn pad_to(&mut self, file: &File, path: &Path, to: u64) -> Result<()> {
        let gap = usize::try_from(to.saturating_sub(self.pos()))
            .map_err(|_| Error::Pipeline("qcow2 padding too large".into()))?;
        if gap > 0 {
            self.append(file, path, &vec![0u8; gap])?;
        }
        Ok(())
    }

    fn flush(&mut self, file: &File, path: &Path) -> Result<()> {
        if !self.buf.is_empty() {
            file.write_all_at(&self.buf, self.start)
                .at("writing", path)?;
            self.start += u64::try_from(self.buf.len()).unwrap_or(u64::MAX);
            self.buf.clear();
        }
        Ok(())
    }
}
