//! Random access to the virtual disk inside a container: the [`DiskImage`] trait every reader
//! implements, the file range they read from, the raw reader and the content digest.

use std::fs::File;
use std::io::{self, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// Bytes per sector: the unit of raw disk sizes, GPT LBAs and VMDK offsets.
pub const SECTOR: u64 = 512;

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
pub fn seek_target(pos: u64, size: u64, to: SeekFrom) -> io::Result<u64> {
    let target = match to {
        SeekFrom::Start(p) => Some(p),
        SeekFrom::End(d) => size.checked_add_signed(d),
        SeekFrom::Current(d) => pos.checked_add_signed(d),
    };
    target.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before start"))
}
