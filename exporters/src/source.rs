//! The golden raw disk as the exporters see it: the file, optionally grown with zeros to a
//! padded size, with a few patched sectors on top (the relocated GPT). Nothing is written to
//! the input file.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::unistd::{Whence, lseek};

use crate::batch::SECTOR;
use crate::error::{Error, IoContext, Result};

/// A read-only view of the input disk with an in-memory overlay of patched sectors.
#[derive(Debug)]
pub struct DiskSource {
    file: File,
    path: PathBuf,
    file_size: u64,
    virtual_size: u64,
    overlay: BTreeMap<u64, Box<[u8; 512]>>,
}

impl DiskSource {
    /// Opens `path` and checks that it can be exported: a regular, non-empty file whose size is
    /// a whole number of 512-byte sectors.
    pub fn open(path: &Path) -> Result<Self> {
        // A FIFO, socket, device or directory is refused here, without blocking.
        let file = diskimg::input_file::open_regular(path).at("opening", path)?;
        let meta = file.metadata().at("reading metadata of", path)?;
        let bad = |reason: String| Error::bad_input(path, reason);
        let size = meta.len();
        if size == 0 {
            return Err(bad(
                "is empty (0 bytes); a raw disk image holds at least one sector".into(),
            ));
        }
        if size % SECTOR != 0 {
            return Err(bad(format!(
                "size {size} bytes is not a multiple of 512 (it ends {} bytes into a sector); a raw disk is whole sectors",
                size % SECTOR
            )));
        }
        // Catch "opens but cannot be read" (EISDIR-like, EIO) now, with the path.
        let mut probe = [0u8; 512];
        file.read_exact_at(&mut probe, 0).at("reading", path)?;
        Ok(DiskSource {
            file,
            path: path.to_path_buf(),
            file_size: size,
            virtual_size: size,
            overlay: BTreeMap::new(),
        })
    }

    /// The input file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Size of the input file.
    pub fn file_size(&self) -> u64 {
        self.file_size
    }

    /// Size of the disk as exported (after any padding).
    pub fn virtual_size(&self) -> u64 {
        self.virtual_size
    }

    /// Grows the exported view to `size` bytes of which the tail reads as zeros.
    pub(crate) fn set_virtual_size(&mut self, size: u64) {
        self.virtual_size = size.max(self.file_size);
    }

    /// Replaces one sector of the exported view (never the input file).
    pub(crate) fn patch_sector(&mut self, lba: u64, bytes: [u8; 512]) {
        self.overlay.insert(lba, Box::new(bytes));
    }

    /// The patched sectors, by LBA (what `pad::grow_in_place` writes back).
    pub(crate) fn patched_sectors(&self) -> impl Iterator<Item = (u64, &[u8; 512])> {
        self.overlay.iter().map(|(lba, s)| (*lba, &**s))
    }

    /// Reads `buf.len()` bytes of the exported view at `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> diskimg::Result<()> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.virtual_size)
            .ok_or_else(|| {
                diskimg::Error::corrupt(
                    &self.path,
                    offset,
                    format!("read of {len} bytes past the end of the disk"),
                )
            })?;
        let in_file = end.min(self.file_size).saturating_sub(offset);
        let in_file_len = usize::try_from(in_file).unwrap_or(buf.len());
        if in_file_len > 0 {
            self.file
                .read_exact_at(&mut buf[..in_file_len], offset)
                .at("reading", &self.path)?;
        }
        buf[in_file_len..].fill(0);
        for (lba, sector) in self.overlay.range(offset / SECTOR..end.div_ceil(SECTOR)) {
            let sector_start = lba * SECTOR;
            let from = sector_start.max(offset);
            let to = (sector_start + SECTOR).min(end);
            if from < to {
                let dst = usize::try_from(from - offset).unwrap_or(0);
                let src = usize::try_from(from - sector_start).unwrap_or(0);
                let n = usize::try_from(to - from).unwrap_or(0);
                buf[dst..dst + n].copy_from_slice(&sector[src..src + n]);
            }
        }
        Ok(())
    }

    /// Byte ranges `[start, end)` of the exported view that may hold data, in order; everything
    /// else reads as zeros. Holes come from SEEK_DATA/SEEK_HOLE; patched sectors count as data.
    pub fn data_ranges(&self) -> Result<Vec<(u64, u64)>> {
        let mut ranges = self.file_data_ranges()?;
        for lba in self.overlay.keys() {
            ranges.push((lba * SECTOR, lba * SECTOR + SECTOR));
        }
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        Ok(merged)
    }

    fn file_data_ranges(&self) -> Result<Vec<(u64, u64)>> {
        let mut ranges = Vec::new();
        let mut pos = 0u64;
        while pos < self.file_size {
            let Ok(at) = i64::try_from(pos) else { break };
            let data = match lseek(&self.file, at, Whence::SeekData) {
                Ok(d) => u64::try_from(d).unwrap_or(self.file_size),
                Err(nix::errno::Errno::ENXIO) => break,
                // No SEEK_DATA on this filesystem: treat the whole file as data.
                Err(nix::errno::Errno::EINVAL | nix::errno::Errno::EOPNOTSUPP) => {
                    return Ok(vec![(0, self.file_size)]);
                }
                Err(e) => return Err(Error::io("seeking data in", &self.path, e.into())),
            };
            let Ok(at) = i64::try_from(data) else { break };
            let hole = match lseek(&self.file, at, Whence::SeekHole) {
                Ok(h) => u64::try_from(h).unwrap_or(self.file_size),
                Err(e) => return Err(Error::io("seeking a hole in", &self.path, e.into())),
            };
            let end = hole.min(self.file_size);
            if end > data {
                ranges.push((data, end));
            }
            pos = end.max(data + 1);
        }
        Ok(ranges)
    }
}
