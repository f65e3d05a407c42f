//! Path lookup from the root directory, following symlinks in the fs with a loop limit.

use super::Ext4;
use super::inode::{Inode, ROOT_INODE};
use crate::error::Result;

/// Most symbolic links followed in one lookup (as Linux's `MAXSYMLINKS`).
const MAX_SYMLINKS: usize = 40;
/// Most path components walked in one lookup, symlink targets included.
const MAX_COMPONENTS: usize = 4096;

impl Ext4 {
    /// The inode at absolute `path`, or `None` when some component does not exist (or an
    /// intermediate component is not a directory). Symlinks in intermediate components are
    /// followed inside this filesystem (absolute targets from its root); a symlink as the last
    /// component is returned itself, like `lstat`.
    pub fn lookup(&mut self, path: &str) -> Result<Option<Inode>> {
        self.walk(path, false)
    }

    /// Like [`Ext4::lookup`], but a symlink as the last component is followed too, like `stat`.
    pub fn lookup_follow(&mut self, path: &str) -> Result<Option<Inode>> {
        self.walk(path, true)
    }

    fn walk(&mut self, path: &str, follow_last: bool) -> Result<Option<Inode>> {
        // Components still to walk, last component at the bottom of the stack.
        let mut todo: Vec<Vec<u8>> = components(path.as_bytes());
        let mut dir = self.inode(ROOT_INODE)?;
        let mut links = 0usize;
        let mut steps = 0usize;
        while let Some(name) = todo.pop() {
            steps += 1;
            if steps > MAX_COMPONENTS {
                return Err(self.fail(format!("{path}: more than {MAX_COMPONENTS} components")));
            }
            if !dir.is_dir() {
                return Ok(None);
            }
            let entries = self.read_dir(&dir)?;
            let Some(entry) = entries.iter().find(|e| e.name == name) else {
                return Ok(None);
            };
            let inode = self.inode(entry.ino)?;
            let last = todo.is_empty();
            if inode.is_symlink() && (!last || follow_last) {
                links += 1;
                if links > MAX_SYMLINKS {
                    return Err(self.fail(format!(
                        "{path}: more than {MAX_SYMLINKS} levels of symbolic links"
                    )));
                }
                let target = self.read_link(&inode)?;
                if target.first() == Some(&b'/') {
                    dir = self.inode(ROOT_INODE)?;
                }
                // The target's components go on top of the stack: they are walked first.
                todo.extend(components(&target));
                continue;
            }
            if last {
                return Ok(Some(inode));
            }
            dir = inode;
        }
        Ok(Some(dir))
    }
}

/// The non-empty, non-`.` components of `path`, reversed (the first component last).
fn components(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .map(<[u8]>::to_vec)
        .rev()
        .collect()
}
