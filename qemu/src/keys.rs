//! The per-build SSH key: an ed25519 key pair made in-process (no `ssh-keygen`), whose public
//! half goes into the NoCloud seed's `ssh_authorized_keys` and whose private half the SSH
//! client uses to log in as the build user.
//!
//! The private key lives in memory; [`BuildKey::write_private`] puts it on disk only when asked,
//! only as `<dir>/build_key`, created with mode 0600 through a temporary file in the same
//! directory that is renamed into place (so no reader ever sees a partial or wider-mode file).

use std::fs::{self, File, Permissions};
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use russh::keys::ssh_key::LineEnding;
use russh::keys::{Algorithm, HashAlg, PrivateKey};

use crate::error::{Error, Result};

/// The comment on the public key line (and inside the private key file).
pub const KEY_COMMENT: &str = "nodeimg-build";

/// The file name [`BuildKey::write_private`] writes in the directory it is given.
pub const PRIVATE_KEY_FILE: &str = "build_key";

/// The placeholder path for errors about a key that was not being written anywhere.
const IN_MEMORY: &str = "<memory>";

/// An ed25519 key pair for one build.
///
/// `Debug` shows only the public fingerprint, never the private key.
#[derive(Clone)]
pub struct BuildKey {
    key: PrivateKey,
}

impl std::fmt::Debug for BuildKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuildKey")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl BuildKey {
    /// Generates a fresh ed25519 key pair from the operating system's randomness (through
    /// `rand`'s thread RNG), commented [`KEY_COMMENT`].
    pub fn generate() -> Result<Self> {
        let mut key =
            PrivateKey::random(&mut rand::rng(), Algorithm::Ed25519).map_err(|source| {
                Error::Key {
                    op: "generating an ed25519 key",
                    path: PathBuf::from(IN_MEMORY),
                    cause: source,
                }
            })?;
        key.set_comment(KEY_COMMENT);
        let this = Self { key };
        tracing::debug!(fingerprint = %this.fingerprint(), "generated the build key");
        Ok(this)
    }

    /// The public key as one `authorized_keys` line, without a line break:
    /// `ssh-ed25519 AAAA… nodeimg-build`.
    pub fn public_openssh(&self) -> Result<String> {
        self.key
            .public_key()
            .to_openssh()
            .map_err(|source| Error::Key {
                op: "encoding the public key",
                path: PathBuf::from(IN_MEMORY),
                cause: source,
            })
    }

    /// The SHA-256 fingerprint, as `ssh-keygen -l` prints it (`SHA256:…`).
    pub fn fingerprint(&self) -> String {
        self.key
            .public_key()
            .fingerprint(HashAlg::Sha256)
            .to_string()
    }

    /// The private key, for the SSH client (`russh::keys::PrivateKeyWithHashAlg::new(Arc::new(
    /// key.private_key().clone()), None)`).
    pub fn private_key(&self) -> &PrivateKey {
        &self.key
    }

    /// Gives up the wrapper and returns the private key.
    pub fn into_private_key(self) -> PrivateKey {
        self.key
    }

    /// Writes the private key in the OpenSSH format (unencrypted, LF line ends) to
    /// `dir/build_key` with mode 0600, atomically: a temporary file in `dir` is created with
    /// mode 0600, written, synced, and renamed over `build_key`, then `dir` is synced. Nothing
    /// is written anywhere else. Returns the path of the key file.
    pub fn write_private(&self, dir: &Path) -> Result<PathBuf> {
        let path = dir.join(PRIVATE_KEY_FILE);
        let pem = self
            .key
            .to_openssh(LineEnding::LF)
            .map_err(|source| Error::Key {
                op: "encoding the private key for",
                path: path.clone(),
                cause: source,
            })?;
        write_atomic(&path, pem.as_bytes(), 0o600)?;
        tracing::debug!(path = %path.display(), fingerprint = %self.fingerprint(), "wrote the build key");
        Ok(path)
    }
}

/// Writes `bytes` to `path` atomically with exactly `mode`: a temporary file next to `path`
/// (same directory, so the rename cannot cross file systems) is created with at most mode
/// 0600, set to `mode`, written, fsynced and renamed over `path`; then the directory is fsynced.
/// On any failure the temporary file is removed and `path` is untouched.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let io = |op: &'static str, p: &Path| {
        let p = p.to_path_buf();
        move |cause: std::io::Error| Error::io(op, &p, cause)
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".tmp")
        .permissions(Permissions::from_mode(0o600))
        .tempfile_in(dir)
        .map_err(io("creating a temporary file in", dir))?;
    // The umask may only have narrowed 0600; set the exact mode before any byte is written.
    fs::set_permissions(tmp.path(), Permissions::from_mode(mode))
        .map_err(io("setting the mode of", tmp.path()))?;
    tmp.write_all(bytes).map_err(io("writing", tmp.path()))?;
    tmp.as_file()
        .sync_all()
        .map_err(io("syncing", tmp.path()))?;
    tmp.persist(path)
        .map_err(|e| io("renaming a temporary file to", path)(e.error))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing the directory", dir))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// How long one `ssh-keygen` run in these tests may take.
    const TOOL_TIMEOUT: Duration = Duration::from_secs(30);

    fn ssh_keygen() -> Option<&'static str> {
        // `-?` exits non-zero; only whether the program starts matters.
        let found = child_process::Command::new("ssh-keygen", TOOL_TIMEOUT)
            .arg("-?")
            .run_status()
            .is_ok();
        found.then_some("ssh-keygen")
    }

    #[test]
    fn two_keys_differ() {
        let a = BuildKey::generate().unwrap();
        let b = BuildKey::generate().unwrap();
        let (pa, pb) = (a.public_openssh().unwrap(), b.public_openssh().unwrap());
        assert_ne!(pa, pb);
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert!(pa.starts_with("ssh-ed25519 AAAA"), "{pa}");
        assert!(pa.ends_with(" nodeimg-build"), "{pa}");
        assert!(!pa.contains('\n'));
        assert!(!format!("{a:?}").contains("PRIVATE"));
    }

    #[test]
    fn public_line_parses_with_ssh_keygen() {
        let Some(tool) = ssh_keygen() else {
            assert!(
                std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
                "ssh-keygen not found"
            );
            eprintln!("SKIP public_line_parses_with_ssh_keygen: ssh-keygen not found");
            return;
        };
        let key = BuildKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let pub_path = dir.path().join("build_key.pub");
        fs::write(&pub_path, format!("{}\n", key.public_openssh().unwrap())).unwrap();
        let out = child_process::Command::new(tool, TOOL_TIMEOUT)
            .arg("-l")
            .arg("-E")
            .arg("sha256")
            .arg("-f")
            .arg(&pub_path)
            .run_status()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        // "256 SHA256:… nodeimg-build (ED25519)"
        assert!(text.contains(&key.fingerprint()), "{text}");
        assert!(text.contains("(ED25519)"), "{text}");
        assert!(text.contains(KEY_COMMENT), "{text}");
    }

    #[test]
    fn private_file_is_0600_and_derives_the_same_public_key() {
        let key = BuildKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = key.write_private(dir.path()).unwrap();
        assert_eq!(path, dir.path().join(PRIVATE_KEY_FILE));
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o600);
        // Only the key file is left in the directory (no temporaries).
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [PRIVATE_KEY_FILE]);
        // Our own parser reads it back to the same key.
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"));
        let back = PrivateKey::from_openssh(&text).unwrap();
        assert_eq!(back.public_key(), key.private_key().public_key());
        // Rewriting replaces it atomically and keeps the mode.
        key.write_private(dir.path()).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );

        let Some(tool) = ssh_keygen() else {
            assert!(
                std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
                "ssh-keygen not found"
            );
            eprintln!(
                "SKIP private_file_is_0600_and_derives_the_same_public_key: ssh-keygen not found"
            );
            return;
        };
        let out = child_process::Command::new(tool, TOOL_TIMEOUT)
            .arg("-y")
            .arg("-f")
            .arg(&path)
            .run_status()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let derived = String::from_utf8(out.stdout).unwrap();
        let ours = key.public_openssh().unwrap();
        let fields = |s: &str| {
            s.split_whitespace()
                .take(2)
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(fields(&derived), fields(&ours), "{derived}");
    }

    #[test]
    fn write_private_into_a_missing_directory_names_it() {
        let key = BuildKey::generate().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        let err = key.write_private(&missing).unwrap_err();
        assert!(err.to_string().contains("nope"), "{err}");
        assert!(!missing.exists());
    }
}
