//! Convenience reads over the ext4 root filesystem for the checks: exists, read, list, walk —
//! all bounded, none following a symlink unless it says so.

use diskimg::ext4::{DirEntry, Ext4, Inode};

use super::AuditError;

/// Most entries one recursive walk visits. A real root filesystem holds ~100,000 files in all;
/// a walk that would visit more cannot vouch for the rest and says so (the check fails).
pub(crate) const MAX_WALK_ENTRIES: usize = 5_000_000;
/// Deepest directory level a walk descends to (real trees stay below 30 levels); a directory
/// deeper than this makes the walk incomplete (the check fails).
pub(crate) const MAX_WALK_DEPTH: usize = 256;

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

    /// Visits every file below the directory `root` (not `root` itself), depth first in name
    /// order, never following symlinks; nothing when `root` is missing. `visit` gets the
    /// filesystem (to read what it finds) and each entry. Bounded in depth and count: when a
    /// bound is hit the walk stops and returns why, naming the directory — the caller must
    /// report that as a failure, never as a pass.
    pub fn walk(
        &mut self,
        root: &str,
        mut visit: impl FnMut(&mut Ext4, Found) -> Result<(), AuditError>,
    ) -> Result<Option<String>, AuditError> {
        let Some(start) = self.fs.lookup_follow(root)? else {
            return Ok(None);
        };
        if !start.is_dir() {
            return Ok(None);
        }
        let max_entries = max_walk_entries();
        let mut visited = 0usize;
        let mut stack = vec![(root.trim_end_matches('/').to_string(), start, 0usize)];
        while let Some((dir_path, dir, depth)) = stack.pop() {
            let mut entries = self.fs.read_dir(&dir)?;
            entries.retain(|e| !e.is_dot());
            entries.sort_by(|a, b| b.name.cmp(&a.name));
            for e in entries {
                if visited >= max_entries {
                    return Ok(Some(format!(
                        "{root}: not fully checked: the walk stopped after {max_entries} entries \
                         (the audit's limit)"
                    )));
                }
                visited += 1;
                let inode = self.fs.inode(e.ino)?;
                let path = format!("{dir_path}/{}", e.name());
                if inode.is_dir() {
                    if depth + 1 >= MAX_WALK_DEPTH {
                        return Ok(Some(format!(
                            "{path}: not checked: deeper than {MAX_WALK_DEPTH} directory levels \
                             (the audit's limit)"
                        )));
                    }
                    stack.push((path.clone(), inode.clone(), depth + 1));
                }
                visit(self.fs, Found { path, inode })?;
            }
        }
        Ok(None)
    }
}

/// [`MAX_WALK_ENTRIES`], or the lower `NODEIMG_AUDIT_MAX_WALK_ENTRIES` when set: a test-only knob, so the
/// tests can show a walk that hits the limit without building a disk of five million files.
fn max_walk_entries() -> usize {
    std::env::var("NODEIMG_AUDIT_MAX_WALK_ENTRIES")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(MAX_WALK_ENTRIES, |n: usize| n.min(MAX_WALK_ENTRIES))
}
