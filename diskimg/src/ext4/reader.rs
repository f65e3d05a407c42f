//! A regular file read as a stream ([`std::io::Read`]), a bounded chunk at a time: for hashing
//! or copying files of any size without holding them in memory.

use std::io;

use super::Ext4;
use super::extent::Run;
use super::inode::Inode;
use crate::error::Result;

/// Most bytes one `read` call takes from the disk.
const CHUNK: u64 = 1 << 20;

/// The bytes of one file, in order: holes and unwritten extents read as zeros. A read error
/// of the filesystem comes back as an [`io::Error`] whose text names the image.
#[derive(Debug)]
pub struct FileReader<'a> {
    fs: &'a mut Ext4,
    runs: Vec<Run>,
    /// The first run that may still cover `pos`.
    next_run: usize,
    pos: u64,
    size: u64,
}

impl Ext4 {
    /// A reader of the regular file `inode` (its `size` bytes from the start).
    pub fn file_reader(&mut self, inode: &Inode) -> Result<FileReader<'_>> {
        if !inode.is_file() {
            return Err(self.fail(format!("inode {} is not a regular file", inode.ino)));
        }
        let runs = self.map_blocks(inode, inode.size.div_ceil(self.sb.block_size))?;
        Ok(FileReader {
            fs: self,
            runs,
            next_run: 0,
            pos: 0,
            size: inode.size,
        })
    }
}

impl io::Read for FileReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.pos >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let bs = self.fs.sb.block_size;
        let end_of = |r: &Run| r.logical.saturating_add(r.len).saturating_mul(bs);
        while self
            .runs
            .get(self.next_run)
            .is_some_and(|r| end_of(r) <= self.pos)
        {
            self.next_run += 1;
        }
        let want = (self.size - self.pos)
            .min(CHUNK)
            .min(u64::try_from(buf.len()).unwrap_or(CHUNK));
        let (n, from_disk) = match self.runs.get(self.next_run) {
            // Inside a run: its bytes (zeros when unwritten).
            Some(r) if r.logical.saturating_mul(bs) <= self.pos => {
                let n = want.min(end_of(r) - self.pos);
                let at = r
                    .physical
                    .saturating_mul(bs)
                    .saturating_add(self.pos - r.logical.saturating_mul(bs));
                (n, (!r.uninit).then_some(at))
            }
            // A hole up to the next run, or to the end.
            Some(r) => (want.min(r.logical.saturating_mul(bs) - self.pos), None),
            None => (want, None),
        };
        let len = usize::try_from(n).map_err(io::Error::other)?;
        let out = &mut buf[..len];
        match from_disk {
            Some(at) => self.fs.read_fs(at, out).map_err(io::Error::other)?,
            None => out.fill(0),
        }
        self.pos += n;
        Ok(len)
    }
}
