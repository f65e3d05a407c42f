//! Random access to a streamOptimized VMDK (a whole file or an OVA member): header (or footer
//! when the grain directory is at the end), descriptor, grain directory, grain tables loaded on
//! demand, grains inflated one at a time with the last one cached. Every check names the file
//! and the offset; no input makes it panic.

use std::path::Path;

use flate2::{Decompress, FlushDecompress, Status};

use crate::error::{Error, Result};
use crate::image::{DiskImage, FileSlice, SECTOR};
use crate::vmdk::descriptor::{
    DESCRIPTOR_SIGNATURE, GD_AT_END, MARKER_EOS, MARKER_FOOTER, SparseHeader, le32, le64,
};

/// Largest descriptor read (sectors).
const MAX_DESCRIPTOR_SECTORS: u64 = 2048;

/// A streamOptimized VMDK opened for reading.
#[derive(Debug)]
pub struct VmdkImage {
    slice: FileSlice,
    header: SparseHeader,
    descriptor: String,
    /// Sector of each grain table (0 = absent).
    gd: Vec<u32>,
    /// The last grain table read: (index, entries). One table keeps memory bounded whatever
    /// the directory claims; reads in order hit it.
    gt_cache: Option<(usize, Vec<u32>)>,
    /// The last grain inflated: (index, bytes).
    cache: Option<(u64, Vec<u8>)>,
}

impl VmdkImage {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_slice(FileSlice::open(path)?)
    }

    /// Opens the VMDK held in `slice`.
    pub fn open_slice(slice: FileSlice) -> Result<Self> {
        let path = slice.path().to_path_buf();
        let base = slice.base();
        let mut block = [0u8; 512];
        if slice.len() < 512 {
            return Err(Error::corrupt(&path, base, "shorter than a VMDK header"));
        }
        slice.read_exact_at(0, &mut block)?;
        let mut header = SparseHeader::parse(&path, base, &block)?;
        if header.gd_offset == GD_AT_END {
            header = read_footer(&slice, &header)?;
        }
        let descriptor = read_descriptor(&slice, &header)?;
        let gd = read_gd(&slice, &header)?;
        tracing::debug!(path = %path.display(), capacity = header.capacity, "vmdk opened");
        Ok(VmdkImage {
            slice,
            header,
            descriptor,
            gd,
            gt_cache: None,
            cache: None,
        })
    }

    /// The embedded descriptor text (NUL padding removed).
    pub fn descriptor(&self) -> &str {
        &self.descriptor
    }

    /// The effective header (the footer's copy when the grain directory is at the end).
    pub fn header(&self) -> &SparseHeader {
        &self.header
    }

    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> Error {
        Error::corrupt(
            self.slice.path(),
            self.slice.base().saturating_add(offset),
            reason,
        )
    }

    /// Sector of grain `index`'s marker, or 0 when the grain is sparse.
    fn grain_sector(&mut self, index: u64) -> Result<u32> {
        let per_gt = u64::from(self.header.num_gtes_per_gt);
        let gt = usize::try_from(index / per_gt)
            .map_err(|_| self.corrupt(0, "grain index overflows"))?;
        let entry = usize::try_from(index % per_gt)
            .map_err(|_| self.corrupt(0, "grain index overflows"))?;
        let Some(&gt_sector) = self.gd.get(gt) else {
            return Err(self.corrupt(0, format!("grain {index} is beyond the grain directory")));
        };
        if gt_sector == 0 {
            return Ok(0);
        }
        if self.gt_cache.as_ref().is_none_or(|(i, _)| *i != gt) {
            let table = read_u32s(
                &self.slice,
                u64::from(gt_sector) * SECTOR,
                per_gt,
                "grain table",
            )?;
            self.gt_cache = Some((gt, table));
        }
        let value = self
            .gt_cache
            .as_ref()
            .and_then(|(_, t)| t.get(entry))
            .copied();
        value
            .ok_or_else(|| self.corrupt(u64::from(gt_sector) * SECTOR, "grain table entry missing"))
    }

    /// Reads and inflates grain `index` (marker at `sector`) into the cache.
    fn load_grain(&mut self, index: u64, sector: u32) -> Result<()> {
        let at = u64::from(sector) * SECTOR;
        let grain_bytes = self.header.grain_bytes();
        let start = index * grain_bytes;
        let expected = grain_bytes.min(self.virtual_size().saturating_sub(start));
        let mut head = [0u8; 12];
        self.slice.read_exact_at(at, &mut head)?;
        let mut lba = [0u8; 8];
        lba.copy_from_slice(&head[0..8]);
        let lba = u64::from_le_bytes(lba);
        let size = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        if lba != start / SECTOR {
            return Err(self.corrupt(
                at,
                format!(
                    "grain marker says LBA {lba}, grain table says {}",
                    start / SECTOR
                ),
            ));
        }
        // zlib's bound for incompressible data is a little over the input; allow twice.
        if size == 0 || u64::from(size) > grain_bytes * 2 + 1024 {
            return Err(self.corrupt(
                at + 8,
                format!("grain marker with implausible compressed size {size}"),
            ));
        }
        let mut compressed =
            vec![0u8; usize::try_from(size).map_err(|_| self.corrupt(at + 8, "grain too large"))?];
        self.slice.read_exact_at(at + 12, &mut compressed)?;
        let out_len =
            usize::try_from(grain_bytes).map_err(|_| self.corrupt(at, "grain too large"))?;
        let mut out = self.cache.take().map(|(_, v)| v).unwrap_or_default();
        out.clear();
        out.reserve(out_len);
        let mut inflate = Decompress::new(true);
        let status = inflate
            .decompress_vec(&compressed, &mut out, FlushDecompress::Finish)
            .map_err(|e| {
                self.corrupt(at + 12, format!("grain at LBA {lba} does not inflate: {e}"))
            })?;
        if status != Status::StreamEnd {
            return Err(self.corrupt(
                at + 12,
                format!("grain at LBA {lba} is truncated or inflates past {grain_bytes} bytes"),
            ));
        }
        let got = u64::try_from(out.len()).unwrap_or(u64::MAX);
        if got < expected {
            return Err(self.corrupt(
                at + 12,
                format!("grain at LBA {lba} inflates to {got} bytes, expected {expected}"),
            ));
        }
        out.resize(out_len, 0);
        self.cache = Some((index, out));
        Ok(())
    }
}

impl DiskImage for VmdkImage {
    fn virtual_size(&self) -> u64 {
        self.header.capacity * SECTOR
    }

    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if offset
            .checked_add(len)
            .is_none_or(|end| end > self.virtual_size())
        {
            return Err(self.corrupt(
                0,
                format!("read of {len} bytes at {offset} is past the end of the virtual disk"),
            ));
        }
        let grain_bytes = self.header.grain_bytes();
        let mut done = 0usize;
        while done < buf.len() {
            let pos = offset + u64::try_from(done).unwrap_or(u64::MAX);
            let index = pos / grain_bytes;
            let within = usize::try_from(pos % grain_bytes).unwrap_or(0);
            let n =
                (buf.len() - done).min(usize::try_from(grain_bytes).unwrap_or(usize::MAX) - within);
            let dst = &mut buf[done..done + n];
            let sector = self.grain_sector(index)?;
            if sector == 0 {
                dst.fill(0);
            } else {
                if self.cache.as_ref().is_none_or(|(i, _)| *i != index) {
                    self.load_grain(index, sector)?;
                }
                match &self.cache {
                    Some((_, data)) if data.len() >= within + n => {
                        dst.copy_from_slice(&data[within..within + n])
                    }
                    _ => return Err(self.corrupt(0, "grain cache lost")),
                }
            }
            done += n;
        }
        Ok(())
    }
}

/// Reads the footer (marker, footer, EOS in the last three sectors) and returns its header.
fn read_footer(slice: &FileSlice, header: &SparseHeader) -> Result<SparseHeader> {
    let path = slice.path();
    let len = slice.len();
    if len < 3 * 512 || !len.is_multiple_of(512) {
        return Err(Error::corrupt(
            path,
            slice.base(),
            format!("{len} bytes: truncated, no room for footer and end-of-stream"),
        ));
    }
    let mut tail = [[0u8; 512]; 3];
    for (i, block) in tail.iter_mut().enumerate() {
        slice.read_exact_at(len - 1536 + 512 * u64::try_from(i).unwrap_or(0), block)?;
    }
    let marker_at = slice.base() + len - 1536;
    if le64(&tail[2], 0) != 0 || le32(&tail[2], 8) != 0 || le32(&tail[2], 12) != MARKER_EOS {
        return Err(Error::corrupt(
            path,
            marker_at + 1024,
            "last sector is not an end-of-stream marker",
        ));
    }
    if le32(&tail[0], 8) != 0 || le32(&tail[0], 12) != MARKER_FOOTER {
        return Err(Error::corrupt(
            path,
            marker_at,
            "no footer marker 1536 bytes before the end (truncated or bytes after EOS)",
        ));
    }
    let footer = SparseHeader::parse(path, marker_at + 512, &tail[1])?;
    if footer.gd_offset == GD_AT_END {
        return Err(Error::corrupt(
            path,
            marker_at + 512 + 56,
            "footer has no grain directory offset",
        ));
    }
    if footer.capacity != header.capacity || footer.grain_size != header.grain_size {
        return Err(Error::corrupt(
            path,
            marker_at + 512,
            "footer disagrees with the header on capacity or grain size",
        ));
    }
    Ok(footer)
}

fn read_descriptor(slice: &FileSlice, header: &SparseHeader) -> Result<String> {
    let path = slice.path();
    let at = header.descriptor_offset.saturating_mul(SECTOR);
    if header.descriptor_offset == 0
        || header.descriptor_size == 0
        || header.descriptor_size > MAX_DESCRIPTOR_SECTORS
    {
        return Err(Error::corrupt(
            path,
            slice.base() + 28,
            "no usable embedded descriptor",
        ));
    }
    let mut raw = vec![0u8; usize::try_from(header.descriptor_size * SECTOR).unwrap_or(0)];
    slice.read_exact_at(at, &mut raw)?;
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    raw.truncate(end);
    let text = String::from_utf8(raw)
        .map_err(|_| Error::corrupt(path, slice.base() + at, "descriptor is not UTF-8"))?;
    if text.lines().next() != Some(DESCRIPTOR_SIGNATURE) {
        return Err(Error::corrupt(
            path,
            slice.base() + at,
            format!("descriptor does not start with {DESCRIPTOR_SIGNATURE:?}"),
        ));
    }
    Ok(text)
}

fn read_gd(slice: &FileSlice, header: &SparseHeader) -> Result<Vec<u32>> {
    let at = header.gd_offset.saturating_mul(SECTOR);
    let entries = header.grain_tables();
    // Every entry takes 4 bytes of the file: a bigger directory cannot be real.
    if entries.saturating_mul(4) > slice.len() {
        return Err(Error::corrupt(
            slice.path(),
            slice.base() + 12,
            format!("capacity needs {entries} grain tables; file too small"),
        ));
    }
    read_u32s(slice, at, entries, "grain directory")
}

fn read_u32s(slice: &FileSlice, at: u64, count: u64, what: &str) -> Result<Vec<u32>> {
    let bytes = count.checked_mul(4).and_then(|n| usize::try_from(n).ok());
    let Some(bytes) = bytes.filter(|&n| u64::try_from(n).is_ok_and(|n| n <= slice.len())) else {
        return Err(Error::corrupt(
            slice.path(),
            slice.base(),
            format!("{what} of {count} entries does not fit"),
        ));
    };
    let mut raw = vec![0u8; bytes];
    slice.read_exact_at(at, &mut raw).map_err(|e| match e {
        Error::Corrupt {
            path,
            offset,
            reason,
        } => Error::Corrupt {
            path,
            offset,
            reason: format!("{what}: {reason}"),
        },
        other => other,
    })?;
    Ok(raw
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect())
}
