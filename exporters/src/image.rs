//! Reading artifacts back: random access to the virtual disk inside each container, used by
//! `verify` (content digest), `inspect` (GPT, sizes), `audit` (the root filesystem) and the
//! check before `boot`.

use std::fs::File;
use std::io::{self, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// A disk image opened for reading its virtual contents.
pub trait DiskImage: Send + std::fmt::Debug {
    /// Virtual size in bytes.
    fn virtual_size(&self) -> u64;
    /// Fills `buf` with the virtual bytes at `offset`; reading past the end is an error.
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()>;
    /// Checks the container's own mapping tables against the file without reading the guest
    /// data (a qcow2: every L2 entry points inside the file), so a corrupt image is refused
    /// before it is booted. Containers without mapping tables have nothing to check.
    fn check_mappings(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A byte range of a file: a whole file, or a member inside an archive.
#[derive(Debug)]
pub struct FileSlice {
    file: File,
    path: PathBuf,
    base: u64,
    len: u64,
}

impl FileSlice {
    /// The whole of `path`, a regular file ([`crate::input_file::open_regular`]: a FIFO,
    /// socket, device or directory is refused with its path, never read).
    pub fn open(path: &Path) -> Result<Self> {
        let file = crate::input_file::open_regular(path).at("opening", path)?;
        let len = file.metadata().at("reading metadata of", path)?.len();
        Ok(FileSlice {
            file,
            path: path.to_path_buf(),
            base: 0,
            len,
        })
    }

    /// `len` bytes of `path` starting at `base`.
    pub fn open_range(path: &Path, base: u64, len: u64) -> Result<Self> {
        let mut slice = Self::open(path)?;
        if base.checked_add(len).is_none_or(|end| end > slice.len) {
            return Err(Error::corrupt(
                path,
                base,
                format!("member of {len} bytes runs past the end of the file"),
            ));
        }
        slice.base = base;
        slice.len = len;
        Ok(slice)
    }

    /// Length of the slice.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True when the slice is empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The file's path (for errors).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Offset of the slice in the file (for errors that name file offsets).
    pub fn base(&self) -> u64 {
        self.base
    }

    /// Reads exactly `buf.len()` bytes at `offset` within the slice.
    pub fn read_exact_at(&self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if offset.checked_add(len).is_none_or(|end| end > self.len) {
            return Err(Error::corrupt(
                &self.path,
                self.base + offset,
                format!("truncated: need {len} bytes here"),
            ));
        }
        self.file
            .read_exact_at(buf, self.base + offset)
            .at("reading", &self.path)
    }
}

/// A raw disk image.
#[derive(Debug)]
pub struct RawImage {
    slice: FileSlice,
}

impl RawImage {
    /// Opens a raw image (the whole file is the disk).
    pub fn open(path: &Path) -> Result<Self> {
        Ok(RawImage {
            slice: FileSlice::open(path)?,
        })
    }
}

impl DiskImage for RawImage {
    fn virtual_size(&self) -> u64 {
        self.slice.len()
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        self.slice.read_exact_at(offset, buf)
    }
}

/// A fixed VHD: the disk followed by a 512-byte footer.
#[derive(Debug)]
pub struct VhdImage {
    slice: FileSlice,
    footer: crate::formats::vhd::VhdFooter,
}

impl VhdImage {
    /// Opens and checks a fixed VHD.
    pub fn open(path: &Path) -> Result<Self> {
        let slice = FileSlice::open(path)?;
        if slice.len() < 512 {
            return Err(Error::corrupt(path, 0, "shorter than a VHD footer"));
        }
        let mut footer = [0u8; 512];
        slice.read_exact_at(slice.len() - 512, &mut footer)?;
        let footer = crate::formats::vhd::parse_footer(path, &footer, slice.len())?;
        Ok(VhdImage { slice, footer })
    }

    /// The parsed footer.
    pub fn footer(&self) -> &crate::formats::vhd::VhdFooter {
        &self.footer
    }
}

impl DiskImage for VhdImage {
    fn virtual_size(&self) -> u64 {
        self.footer.current_size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if offset
            .checked_add(len)
            .is_none_or(|e| e > self.footer.current_size)
        {
            return Err(Error::corrupt(
                self.slice.path(),
                offset,
                "read past the end of the virtual disk",
            ));
        }
        self.slice.read_exact_at(offset, buf)
    }
}

/// SHA-256 of an image's whole virtual disk, read in order.
pub fn content_digest(
    image: &mut dyn DiskImage,
    mut on_progress: impl FnMut(u64),
) -> Result<[u8; 32]> {
    let size = image.virtual_size();
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < size {
        let n = usize::try_from((size - pos).min(1 << 20)).unwrap_or(1 << 20);
        image.read_at(pos, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        pos += n as u64;
        on_progress(pos);
    }
    Ok(hasher.finalize().into())
}

/// Where a `seek(to)` from `pos` on a device of `size` bytes lands; before 0 is an error.
pub(crate) fn seek_target(pos: u64, size: u64, to: SeekFrom) -> io::Result<u64> {
    let target = match to {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => size.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))
}

/// Checks the fields of a GPT header that the `gpt` crate trusts without
/// checking (it asserts or reads without bound on them), so malformed tables become errors
/// instead of panics or endless reads.
pub fn check_gpt_header(header: &[u8; 92], disk_size: u64) -> std::result::Result<(), String> {
    let le32 = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let le64 = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().unwrap_or([0; 8]));
    if &header[0..8] != b"EFI PART" {
        return Err("no \"EFI PART\" signature at LBA 1".into());
    }
    let header_size = le32(12);
    if !(92..=512).contains(&header_size) {
        return Err(format!(
            "GPT header size {header_size} is not between 92 and 512"
        ));
    }
    let (num_parts, part_size) = (le32(80), le32(84));
    if part_size != 128 {
        return Err(format!(
            "GPT partition entry size {part_size}, only 128 is supported"
        ));
    }
    if num_parts == 0 || num_parts > 16_384 {
        return Err(format!(
            "GPT holds {num_parts} partition entries (1 to 16384 expected)"
        ));
    }
    let entries_end = le64(72)
        .checked_mul(512)
        .and_then(|start| start.checked_add(u64::from(num_parts) * 128));
    if entries_end.is_none_or(|end| end > disk_size) {
        return Err("GPT partition entries lie past the end of the disk".into());
    }
    let backup = le64(32);
    if backup.checked_mul(512).is_none_or(|b| b >= disk_size) {
        return Err(format!(
            "GPT backup header LBA {backup} is past the end of the disk"
        ));
    }
    Ok(())
}
