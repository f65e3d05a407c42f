//! Directories, read linearly block by block. Hashed (htree) directories need nothing special:
//! their root and index blocks hide the index inside entries with inode 0, and their leaf
//! blocks are plain entry blocks. `metadata_csum` tail entries have inode 0 too.

use std::borrow::Cow;

use super::Ext4;
use super::inode::{FileKind, Inode};
use crate::bytes::{le16, le32};
use crate::error::Result;

/// Most blocks read from one directory (a 4 KiB-block directory of 4 GiB).
const MAX_DIR_BLOCKS: u64 = 1 << 20;
/// Most entries returned from one directory.
const MAX_DIR_ENTRIES: usize = 1 << 22;

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// The inode it names.
    pub ino: u32,
    /// The name's bytes (not necessarily UTF-8).
    pub name: Vec<u8>,
    /// The type recorded in the entry ([`FileKind::Unknown`] without the filetype feature).
    pub kind: FileKind,
}

impl DirEntry {
    /// The name, with invalid UTF-8 replaced.
    pub fn name(&self) -> Cow<'_, str> {
        String::from_utf8_lossy(&self.name)
    }

    /// Whether this is the `.` or `..` entry.
    pub fn is_dot(&self) -> bool {
        self.name == b"." || self.name == b".."
    }
}

impl Ext4 {
    /// The entries of directory `dir`, in on-disk order, including `.` and `..`.
    pub fn read_dir(&mut self, dir: &Inode) -> Result<Vec<DirEntry>> {
        if !dir.is_dir() {
            return Err(self.fail(format!("inode {} is not a directory", dir.ino)));
        }
        let bs = self.sb.block_size;
        let blocks = dir.size.div_ceil(bs);
        if blocks > MAX_DIR_BLOCKS {
            return Err(self.fail(format!(
                "directory inode {} claims {} bytes, more than this reader accepts",
                dir.ino, dir.size
            )));
        }
        let runs = self.map_blocks(dir, blocks)?;
        let mut entries = Vec::new();
        for run in runs {
            if run.uninit {
                continue;
            }
            let end = run.len.min(blocks.saturating_sub(run.logical));
            for i in 0..end {
                let data = self.read_block(run.physical + i)?;
                self.parse_dir_block(dir.ino, &data, &mut entries)?;
            }
        }
        Ok(entries)
    }

    /// Appends the live entries of one directory block.
    fn parse_dir_block(&self, ino: u32, data: &[u8], out: &mut Vec<DirEntry>) -> Result<()> {
        let filetype = self.sb.has_filetype();
        let mut pos = 0usize;
        while pos + 8 <= data.len() {
            let entry_ino = le32(data, pos);
            let rec_len = rec_len(le16(data, pos + 4), data.len());
            let (name_len, kind) = if filetype {
                let n = data.get(pos + 6).copied().unwrap_or(0);
                let t = data.get(pos + 7).copied().unwrap_or(0);
                (usize::from(n), FileKind::from_dirent(t))
            } else {
                (usize::from(le16(data, pos + 6)), FileKind::Unknown)
            };
            if rec_len < 8
                || !rec_len.is_multiple_of(4)
                || pos + rec_len > data.len()
                || 8 + name_len > rec_len
            {
                return Err(self.fail(format!(
                    "directory inode {ino}: corrupt entry at byte {pos} of a block (record length {rec_len}, name length {name_len})"
                )));
            }
            if entry_ino != 0 && name_len > 0 {
                if entry_ino > self.sb.inodes_count {
                    return Err(self.fail(format!(
                        "directory inode {ino}: entry names inode {entry_ino}, past the last inode"
                    )));
                }
                if out.len() >= MAX_DIR_ENTRIES {
                    return Err(self.fail(format!(
                        "directory inode {ino} has more than {MAX_DIR_ENTRIES} entries"
                    )));
                }
                out.push(DirEntry {
                    ino: entry_ino,
                    name: data[pos + 8..pos + 8 + name_len].to_vec(),
                    kind,
                });
            }
            pos += rec_len;
        }
        Ok(())
    }
}

/// Decodes `rec_len` (blocks of 64 KiB store 65536 as 0 or 65535, and larger lengths keep
/// bits 16-17 in the low two bits).
fn rec_len(raw: u16, block_size: usize) -> usize {
    let len = usize::from(raw);
    if block_size >= 65536 && (len == 65535 || len == 0) {
        return 65536;
    }
    (len & 65532) | ((len & 3) << 16)
}
