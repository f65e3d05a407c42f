//! The streamOptimized VMDK writer, spec streaming layout (formats.md §2.4, layout 1):
//! header | descriptor | pad to `overHead` | grains in LBA order, each grain table (marker + GT)
//! right after its range's grains | GD marker + GD | footer marker + footer | EOS.
//!
//! The header and descriptor sectors are written as zeros first and filled in at the end, when
//! the content id (derived from the content digest) is known.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::artifact::TempArtifact;
use crate::batch::{Batch, GRAIN_SIZE, SECTOR};
use crate::deflate::{deflate_grain, zlib_stream};
use crate::error::{Error, IoContext, Result};
use crate::formats::vmdk::descriptor::{
    GD_AT_END, GTES_PER_GT, MARKER_EOS, MARKER_FOOTER, MARKER_GD, MARKER_GT, OVERHEAD,
    SparseHeader, marker,
};
use crate::formats::vmdk::descriptor_text::{descriptor_block, descriptor_text};

/// Bytes buffered before they go to the file.
const FLUSH_AT: usize = 4 << 20;

/// Streams one `NAME.vmdk` (under its temporary name).
#[derive(Debug)]
pub struct StreamVmdkWriter {
    out: TempArtifact,
    path: PathBuf,
    extent: String,
    header: SparseHeader,
    buf: Vec<u8>,
    /// Bytes already handed to the file (the buffer follows them).
    flushed: u64,
    /// Grain directory: sector of each grain table, 0 when absent.
    gd: Vec<u32>,
    /// The grain table being filled, and its index.
    gt: Vec<u32>,
    gt_index: u64,
    gt_used: bool,
    /// Next grain index that may be written (grains must come in ascending order).
    next_grain: u64,
}

impl StreamVmdkWriter {
    /// Starts `dir/<file_name>` for a disk of `virtual_size` bytes (a multiple of 512).
    pub fn new(dir: &Path, file_name: &str, virtual_size: u64) -> Result<Self> {
        let out = TempArtifact::create(dir, file_name)?;
        let path = out.temp_path().to_path_buf();
        if !virtual_size.is_multiple_of(SECTOR) {
            return Err(Error::bad_input(
                &path,
                format!("a VMDK needs whole sectors; the disk is {virtual_size} bytes"),
            ));
        }
        let header = SparseHeader::stream_optimized(virtual_size / SECTOR, GD_AT_END);
        let tables = usize::try_from(header.grain_tables())
            .map_err(|_| Error::bad_input(&path, "disk too large for a VMDK"))?;
        let mut writer = StreamVmdkWriter {
            out,
            path,
            extent: file_name.to_string(),
            header,
            buf: Vec::with_capacity(FLUSH_AT + (1 << 17)),
            flushed: 0,
            gd: vec![0; tables],
            gt: vec![0; usize::try_from(GTES_PER_GT).unwrap_or(512)],
            gt_index: 0,
            gt_used: false,
            next_grain: 0,
        };
        // Header and descriptor are filled in by `finish`; grains start at `overHead`.
        writer
            .buf
            .resize(usize::try_from(OVERHEAD * SECTOR).unwrap_or(0), 0);
        Ok(writer)
    }

    /// Where the file is being written.
    pub fn temp_path(&self) -> &Path {
        &self.path
    }

    fn position(&self) -> u64 {
        self.flushed + u64::try_from(self.buf.len()).unwrap_or(u64::MAX)
    }

    fn sector(&self) -> Result<u32> {
        let pos = self.position();
        debug_assert_eq!(pos % SECTOR, 0);
        u32::try_from(pos / SECTOR).map_err(|_| {
            Error::bad_input(
                &self.path,
                "VMDK would exceed 2 TiB of file; grain table entries are 32-bit sectors",
            )
        })
    }

    fn pad_to_sector(&mut self) {
        let rem = self.buf.len() % 512;
        if rem != 0 {
            self.buf.resize(self.buf.len() + 512 - rem, 0);
        }
    }

    fn flush_buf(&mut self) -> Result<()> {
        if !self.buf.is_empty() {
            self.out
                .file()
                .write_all(&self.buf)
                .at("writing", &self.path)?;
            self.flushed += u64::try_from(self.buf.len()).unwrap_or(u64::MAX);
            self.buf.clear();
        }
        Ok(())
    }

    /// Writes the current grain table (marker + table) if any grain of it was written.
    fn close_grain_table(&mut self) -> Result<()> {
        if !self.gt_used {
            return Ok(());
        }
        let gt_bytes = u64::from(GTES_PER_GT) * 4;
        self.buf
            .extend_from_slice(&marker(gt_bytes.div_ceil(SECTOR), MARKER_GT));
        let sector = self.sector()?;
        let slot = usize::try_from(self.gt_index)
            .ok()
            .and_then(|i| self.gd.get_mut(i));
        let Some(slot) = slot else {
            return Err(Error::Pipeline(format!(
                "grain table {} beyond the grain directory",
                self.gt_index
            )));
        };
        *slot = sector;
        for entry in &mut self.gt {
            self.buf.extend_from_slice(&entry.to_le_bytes());
            *entry = 0;
        }
        self.pad_to_sector();
        self.gt_used = false;
        Ok(())
    }

    /// Appends one non-zero grain (`bytes` at virtual `offset`, `zlib` its zlib stream).
    fn write_grain(&mut self, offset: u64, zlib: &[u8]) -> Result<()> {
        let grain = offset / GRAIN_SIZE;
        if !offset.is_multiple_of(GRAIN_SIZE)
            || grain < self.next_grain
            || grain >= self.header.grains()
        {
            return Err(Error::Pipeline(format!(
                "VMDK grain at byte {offset} is out of order or out of range"
            )));
        }
        let per_gt = u64::from(GTES_PER_GT);
        if grain / per_gt != self.gt_index {
            self.close_grain_table()?;
            self.gt_index = grain / per_gt;
        }
        let sector = self.sector()?;
        let size = u32::try_from(zlib.len())
            .map_err(|_| Error::Pipeline(format!("compressed grain at byte {offset} too large")))?;
        self.buf.extend_from_slice(&(offset / SECTOR).to_le_bytes());
        self.buf.extend_from_slice(&size.to_le_bytes());
        self.buf.extend_from_slice(zlib);
        self.pad_to_sector();
        let index = usize::try_from(grain % per_gt).unwrap_or(0);
        self.gt[index] = sector;
        self.gt_used = true;
        self.next_grain = grain + 1;
        if self.buf.len() >= FLUSH_AT {
            self.flush_buf()?;
        }
        Ok(())
    }

    /// Consumes one batch of the pass: its non-zero grains become compressed grains.
    pub fn consume(&mut self, batch: &Batch) -> Result<()> {
        for (offset, grain, bytes) in batch.data_grains() {
            let zlib = match &grain.deflated {
                Some(d) => zlib_stream(d),
                None => zlib_stream(&deflate_grain(bytes)),
            };
            self.write_grain(offset, &zlib)?;
        }
        Ok(())
    }

    /// Writes the tail (last GT, GD, footer, EOS), then the header and the descriptor with
    /// the content ids. Returns the finished temporary.
    pub fn finish(mut self, content_digest: &[u8; 32]) -> Result<TempArtifact> {
        self.close_grain_table()?;
        let gd_bytes = u64::try_from(self.gd.len())
            .unwrap_or(u64::MAX)
            .saturating_mul(4);
        self.buf
            .extend_from_slice(&marker(gd_bytes.div_ceil(SECTOR), MARKER_GD));
        let gd_sector = self.sector()?;
        for entry in std::mem::take(&mut self.gd) {
            self.buf.extend_from_slice(&entry.to_le_bytes());
        }
        self.pad_to_sector();
        self.buf.extend_from_slice(&marker(1, MARKER_FOOTER));
        let footer = SparseHeader {
            gd_offset: u64::from(gd_sector),
            ..self.header
        };
        self.buf.extend_from_slice(&footer.encode());
        self.buf.extend_from_slice(&marker(0, MARKER_EOS));
        self.flush_buf()?;

        let descriptor = descriptor_block(&descriptor_text(
            self.header.capacity,
            &self.extent,
            content_digest,
        ))?;
        let file = self.out.file();
        file.seek(SeekFrom::Start(0)).at("seeking", &self.path)?;
        file.write_all(&self.header.encode())
            .at("writing header of", &self.path)?;
        file.write_all(&descriptor)
            .at("writing descriptor of", &self.path)?;
        file.seek(SeekFrom::End(0)).at("seeking", &self.path)?;
        tracing::debug!(path = %self.path.display(), bytes = self.flushed, "vmdk written");
        Ok(self.out)
    }
}
