//! The one lock nodeimg takes on a directory it writes into (`export --out`, `build`'s
//! `OUT/.NAME.partial`): an exclusive `flock` on a lock file, held for the whole run. A second
//! run fails at once, naming the holder (its pid and command line, written into the lock
//! file). The lock file is removed when the lock is released.
//!
//! Removing a lock file on release is safe because a taker checks, once it holds the lock,
//! that the path still names the file it locked; if the previous holder removed it in between,
//! it tries again with a fresh file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use crate::error::{Error, IoContext, Result};

/// Name of the lock file `export` takes in its `--out` directory.
pub const EXPORT_LOCK_FILE: &str = ".nodeimg.lock";

/// An exclusive lock on a directory, held until dropped.
#[derive(Debug)]
pub struct DirLock {
    path: PathBuf,
    _lock: Flock<File>,
}

impl DirLock {
    /// Takes the lock file `dir/file_name` (created if missing) without waiting. When another
    /// process holds it the error names `dir` and the holder.
    pub fn acquire(dir: &Path, file_name: &str) -> Result<Self> {
        let path = dir.join(file_name);
        // A holder that releases between our open and our lock removes the file we opened:
        // try again with the new one. Bounded so a pathological race cannot spin forever.
        for _ in 0..16 {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .at("opening lock file", &path)?;
            let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => lock,
                Err((mut file, Errno::EWOULDBLOCK)) => {
                    return Err(Error::InUse {
                        path: dir.to_path_buf(),
                        holder: read_holder(&mut file),
                    });
                }
                Err((_, e)) => return Err(Error::io("locking", &path, e.into())),
            };
            if !still_named(&lock, &path)? {
                continue;
            }
            write_holder(&mut lock).at("writing lock file", &path)?;
            return Ok(DirLock { path, _lock: lock });
        }
        Err(Error::io(
            "locking",
            &path,
            io::Error::other("the lock file keeps being replaced"),
        ))
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Still holding the lock here: the flock is released when the file closes, after this.
        let _ = fs::remove_file(&self.path);
    }
}

/// True when `path` still names the file `lock` holds.
fn still_named(lock: &Flock<File>, path: &Path) -> Result<bool> {
    let held = lock.metadata().at("reading metadata of", path)?;
    Ok(match fs::metadata(path) {
        Ok(now) => now.dev() == held.dev() && now.ino() == held.ino(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => false,
        Err(e) => return Err(Error::io("reading metadata of", path, e)),
    })
}

/// Records this process in the lock file: `pid N: ARGS`.
fn write_holder(file: &mut File) -> io::Result<()> {
    let command: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let line = format!("pid {}: {}", std::process::id(), command.join(" "));
    let line: String = line
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    file.set_len(0)?;
    file.rewind()?;
    file.write_all(line.as_bytes())?;
    file.write_all(b"\n")
}

/// What the holder wrote into the lock file (one line, at most 1 KiB).
fn read_holder(file: &mut File) -> String {
    let mut bytes = Vec::new();
    let _ = file.take(1024).read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let line: String = text
        .lines()
        .next()
        .unwrap_or("")
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if line.trim().is_empty() {
        "holder not yet recorded".into()
    } else {
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_refused_with_the_holder_and_the_file_goes_on_release() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path(), "x.lock").unwrap();
        let text = fs::read_to_string(first.path()).unwrap();
        assert!(
            text.starts_with(&format!("pid {}: ", std::process::id())),
            "{text}"
        );
        let e = DirLock::acquire(dir.path(), "x.lock").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("in use by another nodeimg")
                && msg.contains(&format!("pid {}", std::process::id())),
            "{msg}"
        );
        drop(first);
        assert!(!dir.path().join("x.lock").exists());
        let again = DirLock::acquire(dir.path(), "x.lock").unwrap();
        drop(again);
    }
}
