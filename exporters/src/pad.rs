//! `--pad`: grow the exported copy of the disk to a whole GiB. The input file is never
//! written: the grown tail reads as zeros and the sectors the `gpt` crate rewrites (primary
//! header, partition arrays, backup header at the new end, protective MBR) live in the
//! source's overlay. The old backup header and array are zeroed so no stale GPT remains.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use gpt::GptConfig;
use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;

use crate::batch::SECTOR;
use crate::error::{Error, Result};
use crate::source::DiskSource;
use diskimg::gpt_table::{GptRead, read_gpt};
use diskimg::image::{DiskImage, seek_target};

/// What padding did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PadOutcome {
    /// Size of the input.
    pub original_size: u64,
    /// Size of the exported copy.
    pub padded_size: u64,
    /// True when a GPT was found and its backup moved to the new end.
    pub gpt_relocated: bool,
}

/// Grows `source` to `new_size` and relocates its GPT backup, if it has a GPT. A GPT that
/// cannot be moved faithfully is refused: a damaged one, one whose primary header is damaged
/// (only the backup is intact), and an invalid one ([`diskimg::gpt_table::validate`]).
pub fn pad_disk(source: &mut DiskSource, new_size: u64) -> Result<PadOutcome> {
    let original_size = source.virtual_size();
    let path = source.path().to_path_buf();
    let gpt_error =
        |reason: String| Error::bad_input(&path, format!("cannot move the backup GPT: {reason}"));
    let gpt = match read_gpt(&mut SourceImage(source))? {
        GptRead::Absent => None,
        GptRead::Damaged(why) => return Err(gpt_error(format!("the GPT is damaged: {why}"))),
        GptRead::Found(gpt) => Some(gpt),
    };
    let Some(gpt) = gpt else {
        source.set_virtual_size(new_size);
        tracing::info!(disk = %path.display(), "no GPT found: the exported copy is padded with zeros only");
        return Ok(PadOutcome {
            original_size,
            padded_size: new_size,
            gpt_relocated: false,
        });
    };
    if let Some(damage) = gpt.primary_damage {
        return Err(gpt_error(format!(
            "{damage}; repair the table first (sgdisk -e, or gdisk's recovery menu)"
        )));
    }
    if !gpt.faults.is_empty() {
        return Err(gpt_error(format!(
            "invalid partition table: {}",
            gpt.faults.join("; ")
        )));
    }
    let old_backup_lba = gpt.backup_lba;
    source.set_virtual_size(new_size);
    // The gpt crate asserts on some malformed tables; a panic there is a bad input, not a crash.
    let outcome = catch_unwind(AssertUnwindSafe(|| -> std::result::Result<(), String> {
        let device = OverlayDevice {
            source: &mut *source,
            pos: 0,
        };
        let mut disk = GptConfig::new()
            .writable(true)
            .logical_block_size(LogicalBlockSize::Lb512)
            .open_from_device(device)
            .map_err(|e| e.to_string())?;
        let partitions = disk.partitions().clone();
        disk.update_partitions(partitions)
            .map_err(|e| e.to_string())?;
        let mut device = disk.write().map_err(|e| e.to_string())?;
        let sectors = new_size / SECTOR - 1;
        ProtectiveMBR::with_lb_size(u32::try_from(sectors).unwrap_or(u32::MAX))
            .update_conservative(&mut device)
            .map_err(|e| e.to_string())?;
        Ok(())
    }));
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(reason)) => return Err(gpt_error(reason)),
        Err(_) => return Err(gpt_error("the partition table is malformed".into())),
    }
    // Zero the old backup header and the 32 sectors of entries before it (now free space).
    let old_end = original_size / SECTOR;
    if old_backup_lba + 1 == old_end {
        for lba in old_backup_lba.saturating_sub(32)..=old_backup_lba {
            source.patch_sector(lba, [0; 512]);
        }
    }
    Ok(PadOutcome {
        original_size,
        padded_size: new_size,
        gpt_relocated: true,
    })
}

/// Grows the raw disk file at `path` to `new_size` bytes **in place** (the builder's working
/// copy, never an input): the tail stays a hole, and a GPT gets its backup header and entries
/// moved to the new end (the old ones zeroed), as [`pad_disk`] does for an exported copy.
/// A smaller `new_size` than the file is refused. The file is fsynced.
pub fn grow_in_place(path: &std::path::Path, new_size: u64) -> Result<PadOutcome> {
    let mut source = DiskSource::open(path)?;
    let size = source.virtual_size();
    if new_size < size || !new_size.is_multiple_of(SECTOR) {
        return Err(Error::bad_input(
            path,
            format!(
                "cannot grow a {size}-byte disk to {new_size} bytes (must be larger and whole sectors)"
            ),
        ));
    }
    let outcome = pad_disk(&mut source, new_size)?;
    let io_err = |e: io::Error| Error::io("growing", path, e);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err)?;
    file.set_len(new_size).map_err(io_err)?;
    for (lba, sector) in source.patched_sectors() {
        file.seek(SeekFrom::Start(lba * SECTOR)).map_err(io_err)?;
        file.write_all(sector).map_err(io_err)?;
    }
    file.sync_all().map_err(io_err)?;
    Ok(outcome)
}

/// The source (before padding) as a [`DiskImage`], for reading its partition table.
#[derive(Debug)]
struct SourceImage<'a>(&'a DiskSource);

impl DiskImage for SourceImage<'_> {
    fn virtual_size(&self) -> u64 {
        self.0.virtual_size()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> diskimg::Result<()> {
        self.0.read_at(offset, buf)
    }
}

/// The source as a read/write device for the `gpt` crate; writes land in the overlay.
#[derive(Debug)]
struct OverlayDevice<'a> {
    source: &'a mut DiskSource,
    pos: u64,
}

impl Read for OverlayDevice<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.source.virtual_size().saturating_sub(self.pos);
        let n = usize::try_from(left.min(buf.len() as u64)).unwrap_or(0);
        self.source
            .read_at(self.pos, &mut buf[..n])
            .map_err(io::Error::other)?;
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for OverlayDevice<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut written = 0usize;
        while written < buf.len() {
            let lba = self.pos / SECTOR;
            if lba * SECTOR >= self.source.virtual_size() {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    "write past the end of the disk",
                ));
            }
            let within = usize::try_from(self.pos % SECTOR).unwrap_or(0);
            let n = (512 - within).min(buf.len() - written);
            let mut sector = [0u8; 512];
            self.source
                .read_at(lba * SECTOR, &mut sector)
                .map_err(io::Error::other)?;
            sector[within..within + n].copy_from_slice(&buf[written..written + n]);
            self.source.patch_sector(lba, sector);
            written += n;
            self.pos += n as u64;
        }
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for OverlayDevice<'_> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = seek_target(self.pos, self.source.virtual_size(), to)?;
        Ok(self.pos)
    }
}
