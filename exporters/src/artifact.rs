//! Atomic artifact files: written under a hidden temporary name in the output directory,
//! fsynced, and renamed into place only when the whole export succeeded. A temporary that is
//! dropped without being committed is removed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};

/// Prefix of the temporary names; a stale one left by a killed export is removed by the next.
pub const TEMP_PREFIX: &str = ".nodeimg-partial.";

/// An artifact being written under a temporary name.
#[derive(Debug)]
pub struct TempArtifact {
    file: File,
    temp_path: PathBuf,
    final_path: PathBuf,
}

impl TempArtifact {
    /// Creates `dir/.nodeimg-partial.<file_name>` (replacing a stale one).
    pub fn create(dir: &Path, file_name: &str) -> Result<Self> {
        let temp_path = dir.join(format!("{TEMP_PREFIX}{file_name}"));
        match fs::remove_file(&temp_path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(crate::Error::io("removing stale", &temp_path, e)),
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp_path)
            .at("creating", &temp_path)?;
        Ok(TempArtifact {
            file,
            temp_path,
            final_path: dir.join(file_name),
        })
    }

    /// The open file.
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Where it is being written.
    pub fn temp_path(&self) -> &Path {
        &self.temp_path
    }

    /// Where it will be once committed.
    pub fn final_path(&self) -> &Path {
        &self.final_path
    }

    /// The final file name.
    pub fn file_name(&self) -> String {
        self.final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Flushes the data to stable storage; returns the file size.
    pub fn sync(&mut self) -> Result<u64> {
        let path = self.temp_path.clone();
        let file = self.file();
        file.flush().at("flushing", &path)?;
        file.sync_all().at("syncing", &path)?;
        Ok(file.metadata().at("reading metadata of", &path)?.len())
    }

    /// Writes the file through `write` (buffered, hashed and counted on the way; `write` also
    /// gets the temporary path for error context), flushes it to stable storage and checks it
    /// holds every byte written. Returns size and SHA-256.
    pub fn write_hashed(
        &mut self,
        write: impl FnOnce(&mut HashingWriter<BufWriter<&mut File>>, &Path) -> Result<()>,
    ) -> Result<(u64, [u8; 32])> {
        let path = self.temp_path.clone();
        let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, &mut self.file));
        write(&mut out, &path)?;
        out.flush().at("writing", &path)?;
        let (_, sha256, written) = out.finish();
        let size = self.sync()?;
        if size != written {
            return Err(Error::Pipeline(format!(
                "{}: wrote {written} bytes but the file has {size}",
                path.display()
            )));
        }
        Ok((size, sha256))
    }

    /// Flushes the file to stable storage while hashing it (for artifacts patched after
    /// streaming, whose digest cannot be taken on the way out). Returns size and SHA-256.
    pub fn sync_and_sha256(&mut self) -> Result<(u64, [u8; 32])> {
        let path = self.temp_path.clone();
        let file = &self.file;
        let (synced, digest) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| sha256_reader(PositionalReader { file, pos: 0 }));
            let synced = file.sync_all();
            (synced, hashing.join())
        });
        synced.at("syncing", &path)?;
        let digest = digest
            .map_err(|_| crate::Error::Pipeline("hashing thread panicked".into()))?
            .at("reading", &path)?;
        let size = self.file.metadata().at("reading metadata of", &path)?.len();
        Ok((size, digest))
    }

    /// Renames the temporary into place and syncs the directory.
    pub fn commit(mut self) -> Result<PathBuf> {
        self.sync()?;
        fs::rename(&self.temp_path, &self.final_path)
            .at("renaming into place", &self.final_path)?;
        let final_path = std::mem::take(&mut self.final_path);
        self.temp_path = PathBuf::new();
        if let Some(dir) = final_path.parent()
            && let Ok(d) = File::open(dir)
        {
            d.sync_all().at("syncing directory", dir)?;
        }
        Ok(final_path)
    }
}

impl Drop for TempArtifact {
    fn drop(&mut self) {
        if !self.temp_path.as_os_str().is_empty() {
            let _ = fs::remove_file(&self.temp_path);
        }
    }
}

/// Reads a file from the start with `pread`, leaving the shared file offset alone.
struct PositionalReader<'a> {
    file: &'a File,
    pos: u64,
}

impl Read for PositionalReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read_at(buf, self.pos)?;
        self.pos += n as u64;
        Ok(n)
    }
}

/// SHA-256 of everything `reader` yields.
pub fn sha256_reader(mut reader: impl Read) -> io::Result<[u8; 32]> {
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().into())
}

/// A writer that hashes and counts what passes through it.
#[derive(Debug)]
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashingWriter<W> {
    /// Wraps `inner`.
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The inner writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Returns the inner writer, the digest and the byte count.
    pub fn finish(self) -> (W, [u8; 32], u64) {
        (self.inner, self.hasher.finalize().into(), self.written)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += u64::try_from(n).unwrap_or(0);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uncommitted_temporaries_vanish_and_committed_ones_land() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut a = TempArtifact::create(dir.path(), "a.bin").unwrap();
            a.file().write_all(b"x").unwrap();
        }
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "dropped temporary left behind"
        );
        let mut b = TempArtifact::create(dir.path(), "b.bin").unwrap();
        b.file().write_all(b"hello").unwrap();
        let path = b.commit().unwrap();
        assert_eq!(fs::read(path).unwrap(), b"hello");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
