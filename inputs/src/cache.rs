//! The content-addressed cache of build inputs: `CACHE/cas/sha256/<hex>`. Only verified bytes
//! enter it ([`Cache::insert`] hashes before the rename); `nodeimg build` reads artifacts by
//! the SHA-256 the lock pins and hashes them again before use.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::lock::Artifact;

/// `$NODEIMG_CACHE`, else `$XDG_CACHE_HOME/nodeimg`, else `~/.cache/nodeimg`.
pub fn default_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("NODEIMG_CACHE") {
        return PathBuf::from(dir);
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return PathBuf::from(dir).join("nodeimg");
    }
    if let Some(home) = std::env::var_os("HOME") {
        return PathBuf::from(home).join(".cache").join("nodeimg");
    }
    std::env::temp_dir().join("nodeimg-cache")
}

/// A cache problem, naming the artifact and what to run.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The artifact is not in the cache.
    #[error("{name} (sha256 {sha256}) is not in the cache ({path}); {hint}")]
    Missing {
        /// Artifact name.
        name: String,
        /// Its pinned digest.
        sha256: String,
        /// Where it was looked for.
        path: String,
        /// What to run.
        hint: String,
    },
    /// The cached bytes are not what the lock pins.
    #[error("{name}: the cached file {path} has {what} but the lock pins {expected}; {hint}")]
    Mismatch {
        /// Artifact name.
        name: String,
        /// The cached file.
        path: String,
        /// `size N` or `sha256 X`.
        what: String,
        /// The pinned value.
        expected: String,
        /// What to run.
        hint: String,
    },
    /// Reading or writing failed.
    /// (The cause is in the message, not also `source()`: `{:#}` would print it twice.)
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        cause: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |cause| CacheError::Io {
        path: path.display().to_string(),
        cause,
    }
}

/// SHA-256 and length of a file, read in 1 MiB blocks.
pub fn hash_file(path: &Path) -> Result<(String, u64), CacheError> {
    let f = File::open(path).map_err(io_err(path))?;
    let len = f.metadata().map_err(io_err(path))?.len();
    let sum = exporters::artifact::sha256_reader(std::io::BufReader::with_capacity(1 << 20, f))
        .map_err(io_err(path))?;
    Ok((hex::encode(sum), len))
}

/// Hard-links `from` to `to` (creating `to`'s directory), or copies it when a link cannot be
/// made (another filesystem).
pub fn link_or_copy(from: &Path, to: &Path) -> io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)?;
    }
    Ok(())
}

/// The cache at a directory.
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

impl Cache {
    /// The cache rooted at `root` (created on first insert).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the bytes with this digest live.
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join("cas").join("sha256").join(sha256)
    }

    /// The cached file of `artifact`, after checking its size and SHA-256. `hint` says how to
    /// get it (e.g. "run `nodeimg fetch spec.toml`").
    pub fn verified(&self, artifact: &Artifact, hint: &str) -> Result<PathBuf, CacheError> {
        let path = self.path_of(&artifact.sha256);
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CacheError::Missing {
                    name: artifact.name.clone(),
                    sha256: artifact.sha256.clone(),
                    path: path.display().to_string(),
                    hint: hint.to_owned(),
                });
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        if meta.len() != artifact.size {
            return Err(CacheError::Mismatch {
                name: artifact.name.clone(),
                path: path.display().to_string(),
                what: format!("size {}", meta.len()),
                expected: format!("size {}", artifact.size),
                hint: hint.to_owned(),
            });
        }
        let (sha256, _) = hash_file(&path)?;
        if sha256 != artifact.sha256 {
            return Err(CacheError::Mismatch {
                name: artifact.name.clone(),
                path: path.display().to_string(),
                what: format!("sha256 {sha256}"),
                expected: format!("sha256 {}", artifact.sha256),
                hint: hint.to_owned(),
            });
        }
        Ok(path)
    }

    /// Moves (or copies, across filesystems) `file` into the cache if its SHA-256 is
    /// `expected` (when given); returns the digest, the length and the cached path. A file
    /// whose digest differs is left where it is and nothing enters the cache.
    pub fn insert(
        &self,
        file: &Path,
        expected: Option<&str>,
    ) -> Result<(String, u64, PathBuf), CacheError> {
        let (sha256, len) = hash_file(file)?;
        if let Some(want) = expected
            && want != sha256
        {
            return Err(CacheError::Mismatch {
                name: file.display().to_string(),
                path: file.display().to_string(),
                what: format!("sha256 {sha256}"),
                expected: format!("sha256 {want}"),
                hint: "the download is corrupt or the checksum is wrong; nothing was cached"
                    .to_owned(),
            });
        }
        let dest = self.path_of(&sha256);
        let dir = dest.parent().unwrap_or(&self.root);
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        if dest.exists() {
            return Ok((sha256, len, dest));
        }
        let tmp = dir.join(format!(".{sha256}.partial"));
        link_or_copy(file, &tmp).map_err(io_err(&tmp))?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &dest).map_err(io_err(&dest))?;
        Ok((sha256, len, dest))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::lock::Kind;

    /// The SHA-256 of `hello`.
    pub(crate) const HELLO_SHA256: &str =
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    /// A temporary directory holding an empty cache at `c` and the file `name` with `hello`.
    pub(crate) fn cache_and_hello(name: &str) -> (tempfile::TempDir, Cache, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path().join("c"));
        let file = dir.path().join(name);
        std::fs::write(&file, b"hello").unwrap();
        (dir, cache, file)
    }

    fn artifact(sha256: &str, size: u64) -> Artifact {
        Artifact {
            name: "kubeadm".into(),
            kind: Kind::Binary,
            component: None,
            version: None,
            architecture: None,
            suite: None,
            source: "test".into(),
            size,
            sha256: sha256.into(),
            dest: Some("/usr/bin/kubeadm".into()),
            mode: Some("0755".into()),
            image: None,
            note: None,
        }
    }

    #[test]
    fn inserted_bytes_are_found_by_digest_and_verified() {
        let (_dir, cache, src) = cache_and_hello("f");
        let (sha, len, path) = cache.insert(&src, None).unwrap();
        assert_eq!(sha, HELLO_SHA256);
        assert_eq!(len, 5);
        assert_eq!(std::fs::read(&path).unwrap(), b"hello");
        assert_eq!(cache.verified(&artifact(&sha, 5), "hint").unwrap(), path);
    }

    #[test]
    fn a_wrong_digest_never_enters_the_cache() {
        let (dir, cache, src) = cache_and_hello("f");
        let want = "0".repeat(64);
        let e = cache.insert(&src, Some(&want)).unwrap_err().to_string();
        assert!(e.contains("nothing was cached"), "{e}");
        assert!(!cache.path_of(&want).exists());
        assert!(
            !dir.path().join("c/cas/sha256").exists() || {
                std::fs::read_dir(dir.path().join("c/cas/sha256"))
                    .unwrap()
                    .next()
                    .is_none()
            }
        );
    }

    #[test]
    fn missing_and_corrupt_entries_name_the_artifact_and_the_hint() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(dir.path());
        let sha = HELLO_SHA256;
        let e = cache
            .verified(&artifact(sha, 5), "run `nodeimg fetch s.toml`")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("kubeadm") && e.contains("not in the cache"),
            "{e}"
        );
        assert!(e.contains("nodeimg fetch s.toml"), "{e}");

        let path = cache.path_of(sha);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"hellO").unwrap();
        let e = cache
            .verified(&artifact(sha, 5), "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("has sha256"), "{e}");
        let e = cache
            .verified(&artifact(sha, 6), "h")
            .unwrap_err()
            .to_string();
        assert!(e.contains("size 5"), "{e}");
    }
}
