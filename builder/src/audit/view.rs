//! Convenience reads over the ext4 root filesystem for the checks: exists, read, list, walk —
//! all bounded, none following a symlink unless it says so.

use exporters::ext4::{DirEntry, Ext4, Inode};

use super::AuditError;

/// Most entries a recursive walk visits before it stops (and says so).
const MAX_WALK_ENTRIES: usize = 200_000;
/// Deepest directory level a walk descends to.
const MAX_WALK_DEPTH: usize = 32;

/// One file found by a walk.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    /// Absolute path inside the filesystem.
    pub path: String,
    /// Its inode.
    pub inode: Inode,
}

/// The root filesystem as the checks see it.
pub(crate) struct View<'a> {
    pub fs: &'a mut Ext4,
}

impl View<'_> {
    /// The inode at `path` (the last component not followed when it is a symlink).
    pub fn get(&mut self, path: &str) -> Result<Option<Inode>, AuditError> {
        Ok(self.fs.lookup(path)?)
    }

    /// Up to `max` bytes of the regular file at `path`, or `None` when it is missing or not a
    /// regular file.
    pub fn read(&mut self, path: &str, max: u64) -> Result<Option<Vec<u8>>, AuditError> {
        match self.fs.lookup(path)? {
            Some(inode) if inode.is_file() => Ok(Some(self.fs.read_file(&inode, max)?)),
            _ => Ok(None),
        }
    }

    /// The entries of the directory at `path` without `.` and `..`, sorted by name, or `None`
    /// when it is missing or not a directory. Symlinks in the path are followed.
    pub fn list(&mut self, path: &str) -> Result<Option<Vec<DirEntry>>, AuditError> {
        match self.fs.lookup_follow(path)? {
            Some(inode) if inode.is_dir() => {
                let mut entries: Vec<DirEntry> = self
                    .fs
                    .read_dir(&inode)?
                    .into_iter()
                    .filter(|e| !e.is_dot())
                    .collect();
                entries.sort_by(|a, b| a.name.cmp(&b.name));
                Ok(Some(entries))
            }
            _ => Ok(None),
        }
    }

    /// Every file below the directory `root` (not `root` itself), depth first in name order,
    /// never following symlinks; nothing when `root` is missing. Bounded in depth and count:
    /// when a bound is hit the walk stops and `truncated` is set.
    pub fn walk(&mut self, root: &str) -> Result<(Vec<Found>, bool), AuditError> {
        let mut out = Vec::new();
        let mut truncated = false;
        let Some(start) = self.fs.lookup_follow(root)? else {
            return Ok((out, false));
        };
        if !start.is_dir() {
            return Ok((out, false));
        }
        let mut stack = vec![(root.trim_end_matches('/').to_string(), start, 0usize)];
        while let Some((dir_path, dir, depth)) = stack.pop() {
            let mut entries = self.fs.read_dir(&dir)?;
            entries.retain(|e| !e.is_dot());
            entries.sort_by(|a, b| b.name.cmp(&a.name));
            for e in entries {
                if out.len() >= MAX_WALK_ENTRIES {
                    return Ok((out, true));
                }
                let inode = self.fs.inode(e.ino)?;
                let path = format!("{dir_path}/{}", e.name());
                if inode.is_dir() {
                    if depth + 1 < MAX_WALK_DEPTH {
                        stack.push((path.clone(), inode.clone(), depth + 1));
                    } else {
                        truncated = true;
                    }
                }
                out.push(Found { path, inode });
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok((out, truncated))
    }
}
