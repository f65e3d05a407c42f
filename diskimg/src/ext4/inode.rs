//! Inodes: reading one from its group's inode table, and what it says about the file.

use super::Ext4;
use crate::bytes::{le16, le32};
use crate::error::Result;

/// The root directory's inode number.
pub const ROOT_INODE: u32 = 2;

/// `i_flags` bit: the file's blocks are mapped by an extent tree.
pub(crate) const FLAG_EXTENTS: u32 = 0x8_0000;
/// `i_flags` bit: the data is stored inside the inode.
pub(crate) const FLAG_INLINE_DATA: u32 = 0x1000_0000;

/// What kind of file an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character device.
    CharDevice,
    /// A block device.
    BlockDevice,
    /// A named pipe.
    Fifo,
    /// A Unix socket.
    Socket,
    /// A type this reader does not know.
    Unknown,
}

impl FileKind {
    /// The kind from the file type bits of `i_mode`.
    pub fn from_mode(mode: u16) -> Self {
        match mode & 0xF000 {
            0x8000 => FileKind::File,
            0x4000 => FileKind::Dir,
            0xA000 => FileKind::Symlink,
            0x2000 => FileKind::CharDevice,
            0x6000 => FileKind::BlockDevice,
            0x1000 => FileKind::Fifo,
            0xC000 => FileKind::Socket,
            _ => FileKind::Unknown,
        }
    }

    /// The kind from a directory entry's file type byte.
    pub fn from_dirent(t: u8) -> Self {
        match t {
            1 => FileKind::File,
            2 => FileKind::Dir,
            3 => FileKind::CharDevice,
            4 => FileKind::BlockDevice,
            5 => FileKind::Fifo,
            6 => FileKind::Socket,
            7 => FileKind::Symlink,
            _ => FileKind::Unknown,
        }
    }
}

/// An inode as read from disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inode {
    /// Its number.
    pub ino: u32,
    /// `i_mode`: type and permission bits.
    pub mode: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Hard links.
    pub links: u16,
    /// Modification time (seconds since 1970, low 32 bits).
    pub mtime: u32,
    /// `i_flags`.
    pub flags: u32,
    /// The 60 bytes of `i_block`: extent tree root, block map, or a fast symlink's target.
    pub(crate) block: [u8; 60],
}

/// What `stat` would say about an inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Metadata {
    /// The kind of file.
    pub kind: FileKind,
    /// Permission bits (`mode & 0o7777`).
    pub permissions: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size in bytes.
    pub size: u64,
    /// Hard links.
    pub links: u16,
    /// Modification time (seconds since 1970).
    pub mtime: u32,
}

impl Inode {
    /// The kind of file.
    pub fn kind(&self) -> FileKind {
        FileKind::from_mode(self.mode)
    }

    /// Whether it is a directory.
    pub fn is_dir(&self) -> bool {
        self.kind() == FileKind::Dir
    }

    /// Whether it is a regular file.
    pub fn is_file(&self) -> bool {
        self.kind() == FileKind::File
    }

    /// Whether it is a symbolic link.
    pub fn is_symlink(&self) -> bool {
        self.kind() == FileKind::Symlink
    }

    /// Mode, owner, size and kind.
    pub fn metadata(&self) -> Metadata {
        Metadata {
            kind: self.kind(),
            permissions: self.mode & 0o7777,
            uid: self.uid,
            gid: self.gid,
            size: self.size,
            links: self.links,
            mtime: self.mtime,
        }
    }

    /// Whether this is a symlink whose target is stored in `i_block` itself.
    pub(crate) fn is_fast_symlink(&self) -> bool {
        self.is_symlink() && self.size < 60 && self.flags & (FLAG_EXTENTS | FLAG_INLINE_DATA) == 0
    }
}

impl Ext4 {
    /// Reads inode `ino`.
    pub fn inode(&mut self, ino: u32) -> Result<Inode> {
        if ino == 0 || ino > self.sb.inodes_count {
            return Err(self.fail(format!(
                "inode {ino} out of range (1 to {})",
                self.sb.inodes_count
            )));
        }
        let index = ino - 1;
        let group = u64::from(index / self.sb.inodes_per_group);
        let slot = u64::from(index % self.sb.inodes_per_group);
        let table = self.inode_table_block(group)?;
        let at = table * self.sb.block_size + slot * u64::from(self.sb.inode_size);
        let mut raw = vec![0u8; usize::from(self.sb.inode_size)];
        self.read_fs(at, &mut raw)?;
        let mut block = [0u8; 60];
        block.copy_from_slice(&raw[0x28..0x28 + 60]);
        let uid = u32::from(le16(&raw, 0x2)) | (u32::from(le16(&raw, 0x78)) << 16);
        let gid = u32::from(le16(&raw, 0x18)) | (u32::from(le16(&raw, 0x7A)) << 16);
        let size = u64::from(le32(&raw, 0x4)) | (u64::from(le32(&raw, 0x6C)) << 32);
        Ok(Inode {
            ino,
            mode: le16(&raw, 0x0),
            uid,
            gid,
            size,
            links: le16(&raw, 0x1A),
            mtime: le32(&raw, 0x10),
            flags: le32(&raw, 0x20),
            block,
        })
    }
}
