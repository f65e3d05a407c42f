//! A read-only ext4 reader over a [`DiskImage`], at a partition's byte offset: no mount, no
//! loop device, no kernel.
//!
//! It reads what Debian and Ubuntu cloud images use: 64bit, flex_bg, extents of any depth,
//! htree directories (read linearly: their leaf blocks are plain entry blocks), file types in
//! entries, fast and slow symlinks, sparse files and unwritten extents (read as zeros), and old
//! block-mapped files. It refuses filesystems with incompatible features it does not know
//! (inline_data, encrypt, compression, meta_bg, …) and names them. When `metadata_csum` is on,
//! the superblock checksum is verified.
//!
//! Every number taken from the disk is checked before it is used: offsets stay inside the
//! partition, allocations are bounded by the caller's limits or the block size, and tree and
//! symlink walks have depth and count limits, so a corrupt filesystem gives an error, never a
//! panic, a huge allocation or an endless loop.

mod crc32c;
mod dir;
mod extent;
mod group;
mod inode;
mod path;
mod reader;
mod superblock;

use std::path::{Path, PathBuf};

pub use dir::DirEntry;
pub use inode::{FileKind, Inode, Metadata, ROOT_INODE};
pub use reader::FileReader;
pub use superblock::{EXT4_MAGIC, Superblock};

use crate::error::{Error, Result};
use crate::image::DiskImage;
use superblock::{SUPERBLOCK_OFFSET, SUPERBLOCK_SIZE};

/// Most bytes of a symlink target that are read.
const MAX_LINK: u64 = 4096;

/// An ext4 filesystem opened read-only.
#[derive(Debug)]
pub struct Ext4 {
    image: Box<dyn DiskImage>,
    source: PathBuf,
    offset: u64,
    len: u64,
    sb: Superblock,
}

impl Ext4 {
    /// Opens the ext4 filesystem that occupies `len` bytes at byte `offset` of `image`.
    /// `source` is the image's file, named in every error.
    pub fn open(image: Box<dyn DiskImage>, source: &Path, offset: u64, len: u64) -> Result<Self> {
        let fs_end = offset.checked_add(len);
        if fs_end.is_none_or(|end| end > image.virtual_size()) {
            return Err(Error::Ext4 {
                path: source.to_path_buf(),
                offset,
                reason: format!(
                    "a filesystem of {len} bytes does not fit the {}-byte disk",
                    image.virtual_size()
                ),
            });
        }
        let mut fs = Ext4 {
            image,
            source: source.to_path_buf(),
            offset,
            len,
            sb: placeholder_superblock(),
        };
        if len < SUPERBLOCK_OFFSET + 2048 {
            return Err(fs.fail(format!("{len} bytes is too small for an ext4 filesystem")));
        }
        let mut raw = [0u8; SUPERBLOCK_SIZE];
        fs.read_fs(SUPERBLOCK_OFFSET, &mut raw)?;
        fs.sb = superblock::parse(&raw, len).map_err(|reason| fs.fail(reason))?;
        if fs.sb.needs_recovery() {
            tracing::warn!(
                "{}: ext4 at byte {offset}: the journal needs recovery; reading the filesystem as it is on disk (recent changes may be missing)",
                source.display()
            );
        }
        Ok(fs)
    }

    /// The checked superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// The image file this filesystem is read from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The root directory.
    pub fn root(&mut self) -> Result<Inode> {
        self.inode(ROOT_INODE)
    }

    /// Reads up to `max_bytes` of a regular file (or any inode's data), from the start; holes
    /// and unwritten extents read as zeros.
    pub fn read_file(&mut self, inode: &Inode, max_bytes: u64) -> Result<Vec<u8>> {
        if inode.is_dir() {
            return Err(self.fail(format!("inode {} is a directory", inode.ino)));
        }
        if inode.is_fast_symlink() {
            let n = usize::try_from(inode.size.min(max_bytes)).unwrap_or(0);
            return Ok(inode.block[..n].to_vec());
        }
        let want = inode.size.min(max_bytes);
        let bs = self.sb.block_size;
        let mut out = vec![0u8; usize::try_from(want).map_err(|_| self.fail("file too large"))?];
        let runs = self.map_blocks(inode, want.div_ceil(bs))?;
        for run in runs.iter().filter(|r| !r.uninit) {
            let start = run.logical.saturating_mul(bs);
            if start >= want {
                break;
            }
            let end = run
                .logical
                .saturating_add(run.len)
                .saturating_mul(bs)
                .min(want);
            let (s, e) = (usize::try_from(start), usize::try_from(end));
            let (Ok(s), Ok(e)) = (s, e) else {
                return Err(self.fail("file offset out of range"));
            };
            let at = run.physical * bs;
            self.read_fs(at, &mut out[s..e])?;
        }
        Ok(out)
    }

    /// The target of a symbolic link (at most 4 KiB).
    pub fn read_link(&mut self, inode: &Inode) -> Result<Vec<u8>> {
        if !inode.is_symlink() {
            return Err(self.fail(format!("inode {} is not a symbolic link", inode.ino)));
        }
        self.read_file(inode, MAX_LINK)
    }

    /// Reads block `block` of the filesystem.
    pub(crate) fn read_block(&mut self, block: u64) -> Result<Vec<u8>> {
        if block >= self.sb.blocks_count {
            return Err(self.fail(format!(
                "block {block} is past the end of the filesystem ({} blocks)",
                self.sb.blocks_count
            )));
        }
        let bs = self.sb.block_size;
        let mut buf = vec![0u8; usize::try_from(bs).unwrap_or(4096)];
        self.read_fs(block * bs, &mut buf)?;
        Ok(buf)
    }

    /// Reads `buf.len()` bytes at byte `at` of the filesystem.
    pub(crate) fn read_fs(&mut self, at: u64, buf: &mut [u8]) -> Result<()> {
        let n = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if at.checked_add(n).is_none_or(|end| end > self.len) {
            return Err(self.fail(format!(
                "read of {n} bytes at {at} runs past the end of the {}-byte partition",
                self.len
            )));
        }
        self.image.read_at(self.offset + at, buf)
    }

    /// An error about this filesystem.
    pub(crate) fn fail(&self, reason: impl Into<String>) -> Error {
        Error::Ext4 {
            path: self.source.clone(),
            offset: self.offset,
            reason: reason.into(),
        }
    }
}

/// A superblock used only until the real one is parsed (never for reads of file data).
fn placeholder_superblock() -> Superblock {
    Superblock {
        block_size: 1024,
        blocks_count: 0,
        inodes_count: 0,
        first_data_block: 0,
        blocks_per_group: 1,
        inodes_per_group: 1,
        inode_size: 128,
        desc_size: 32,
        group_count: 0,
        feature_incompat: 0,
        feature_ro_compat: 0,
        label: String::new(),
    }
}
