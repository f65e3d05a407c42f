//! A private archive laid out as Debian's under a local mirror (`{mirror}/archive.example.test/debian`;
//! not under `deb.debian.org`, which the mirror server redirects to the real archive),
//! signed in the test with real `gpg`, and served by the fetch tests' server: a corrupt
//! `.deb`, a corrupt index and a tampered `InRelease` are each refused with both digests (or
//! the keyring) and nothing enters the cache.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use child_process::Command;
use inputs::cache::Cache;
use inputs::fetch::http::{Http, Limits, Unwatched};
use inputs::fetch::packages::{self, Context};
use inputs::fetch::plan::Mirror;
use sha2::{Digest, Sha256};

use super::{base_artifact, fixture_base};
use fixtures::mirror_server::Server;

const TIMEOUT: Duration = Duration::from_secs(120);
const ARCHIVE: &str = "archive.example.test/debian";

fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A spec for the Debian 12 fixture base with `packages` as its `[packages]` section.
pub(crate) fn spec_text(base: &Path, sha256: &str, packages: &str) -> String {
    format!(
        "[image]\nname = \"node\"\ndistro = \"debian-12\"\nfirmware = \"uefi\"\ndisk_gib = 8\n\n\
         [base]\npath = \"{}\"\nsha256 = \"{sha256}\"\nformat = \"qcow2\"\n\n\
         [kubernetes]\nversion = \"v1.30.2\"\n\n\
         [components]\ncontainerd = \"1.7.18\"\nrunc = \"1.1.13\"\ncrictl = \"1.30.0\"\n\
         cni_plugins = \"1.5.1\"\npause = \"3.9\"\n\n[export]\nformats = [\"raw\"]\n\n{packages}",
        base.display()
    )
}

/// A throwaway OpenPGP signing key (ed25519) made with real `gpg` in its own `GNUPGHOME`
/// under /tmp (gpg-agent's socket path must be short); the agent is stopped on drop.
pub(crate) struct TestKey {
    home: tempfile::TempDir,
}

impl TestKey {
    pub(crate) fn new(user_id: &str) -> TestKey {
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        let key = TestKey { home };
        key.gpg()
            .args(["--quick-gen-key", user_id, "ed25519", "sign", "never"])
            .run()
            .unwrap();
        key
    }

    /// `gpg` in batch mode on this key's home.
    pub(crate) fn gpg(&self) -> Command {
        let mut command = Command::new("gpg", TIMEOUT);
        command.env("GNUPGHOME", self.home.path()).args([
            "--batch",
            "--quiet",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
        ]);
        command
    }

    /// Writes the public key to `path` as a binary keyring.
    pub(crate) fn export(&self, path: &Path) {
        let exported = self.gpg().arg("--export").run().unwrap().stdout;
        std::fs::write(path, exported).unwrap();
    }
}

impl Drop for TestKey {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf", TIMEOUT)
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .run_status();
    }
}

/// The archive on disk: root (the mirror's root), the keyring, and the .deb paths by name.
struct Archive {
    root: PathBuf,
    keyring: PathBuf,
    debs: Vec<(String, PathBuf)>,
    _key: TestKey,
}

/// Lays out `dists/bookworm` (Packages.xz by hash, signed InRelease) and a pool holding a
/// small `.deb` for every node-role package: at the version `installed` has (so it stays), or
/// else at a version above any Debian's (so no installed package's `Breaks` matches it).
fn make_archive(dir: &Path, installed: &[debarchive::packages::Package]) -> Archive {
    let root = dir.join("mirror");
    let top = root.join(ARCHIVE);
    let mut stanzas = Vec::new();
    let mut debs = Vec::new();
    for (i, name) in distros::NODE_ROLE_PACKAGES.iter().enumerate() {
        let version = installed
            .iter()
            .find(|p| p.name == *name)
            .map_or_else(|| format!("99.0-fake{i}"), |p| p.version.clone());
        let filename = format!("pool/main/{}/{name}/{name}_{i}_amd64.deb", &name[..1]);
        let body = format!("!<arch>\nnot really a deb: {name}\n").into_bytes();
        let path = top.join(&filename);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &body).unwrap();
        stanzas.push(format!(
            "Package: {name}\nVersion: {version}\nArchitecture: amd64\nFilename: {filename}\n\
             Size: {}\nSHA256: {}\nDescription: stand-in {name}\n",
            body.len(),
            sha256(&body)
        ));
        debs.push(((*name).to_owned(), path));
    }
    let binary = top.join("dists/bookworm/main/binary-amd64");
    std::fs::create_dir_all(binary.join("by-hash/SHA256")).unwrap();
    std::fs::write(binary.join("Packages"), stanzas.join("\n")).unwrap();
    Command::new("xz", TIMEOUT)
        .args(["-k", "-f"])
        .arg(binary.join("Packages"))
        .run()
        .unwrap();
    let xz = std::fs::read(binary.join("Packages.xz")).unwrap();
    std::fs::write(binary.join("by-hash/SHA256").join(sha256(&xz)), &xz).unwrap();
    let release = format!(
        "Origin: Test\nSuite: bookworm\nCodename: bookworm\nArchitectures: amd64\n\
         Components: main\nAcquire-By-Hash: yes\nDate: Sat, 01 Jun 2024 00:00:00 UTC\n\
         Valid-Until: Sat, 01 Jan 2050 00:00:00 UTC\nSHA256:\n {} {} main/binary-amd64/Packages.xz\n",
        sha256(&xz),
        xz.len()
    );
    let key = TestKey::new("Test Archive <t@example.test>");
    let in_release = key
        .gpg()
        .args(["--clearsign", "--output", "-"])
        .stdin_bytes(release.into_bytes())
        .run()
        .unwrap()
        .stdout;
    std::fs::write(top.join("dists/bookworm/InRelease"), in_release).unwrap();
    let keyring = dir.join("archive.gpg");
    key.export(&keyring);
    Archive {
        root,
        keyring,
        debs,
        _key: key,
    }
}

/// Everything cached under `cache` (file names), and the part files left behind.
fn cached(cache: &Cache) -> (Vec<String>, Vec<String>) {
    let names = |dir: PathBuf| -> Vec<String> {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    (
        names(cache.root().join("cas/sha256")),
        names(cache.root().join("partial")),
    )
}

#[test]
fn a_corrupt_deb_index_or_signature_from_the_archive_is_refused_and_nothing_is_cached() {
    let Some(base_image) = fixture_base() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let installed = inputs::fetch::base_status::installed(&base_image).unwrap();
    let archive = make_archive(dir.path(), &installed);
    let server = Server::start(&archive.root, None).unwrap();
    let mirror = Mirror::new(&server.url).unwrap();
    let (base_sha256, size) = inputs::cache::hash_file(&base_image).unwrap();
    let spec_path = dir.path().join("node.toml");
    let section = format!(
        "[packages]\narchive = \"http://{ARCHIVE}\"\nsuites = [\"bookworm\"]\n\
         components = [\"main\"]\nkeyring = \"archive.gpg\"\n"
    );
    std::fs::write(&spec_path, spec_text(&base_image, &base_sha256, &section)).unwrap();
    let spec = inputs::spec::load(&spec_path).unwrap();
    let base = base_artifact(&base_image, &base_sha256, size);
    let http = Http::new(Limits::default(), Arc::new(Unwatched));
    // A fresh cache holding only the base image.
    let fresh = |name: &str| {
        let cache = Cache::new(dir.path().join(name));
        let at = cache.path_of(&base_sha256);
        std::fs::create_dir_all(at.parent().unwrap()).unwrap();
        std::fs::create_dir_all(cache.root().join("partial")).unwrap();
        inputs::cache::link_or_copy(&base_image, &at).unwrap();
        cache
    };
    let run = |cache: &Cache| {
        let partial = cache.root().join("partial");
        let context = Context {
            http: &http,
            cache,
            partial: &partial,
            mirror: Some(&mirror),
            refresh: false,
        };
        packages::fetch_packages(&spec, &base, None, &context, &mut |_| {})
    };

    // Good: the packages the base lacks come from the local archive, verified.
    let cache = fresh("good");
    let good = run(&cache).unwrap();
    assert!(!good.debs.is_empty());
    for deb in &good.debs {
        assert_eq!(deb.suite.as_deref(), Some("bookworm"));
        assert!(
            deb.source
                .starts_with(&format!("http://{ARCHIVE}/pool/main/")),
            "{}",
            deb.source
        );
        cache.verified(deb, "").unwrap();
    }
    let victim = &good.debs[0];
    let package = victim.name.strip_prefix("deb-").unwrap();

    // A .deb whose bytes are not the ones Packages lists.
    let deb_path = &archive
        .debs
        .iter()
        .find(|(name, _)| name == package)
        .unwrap()
        .1;
    let mut bytes = std::fs::read(deb_path).unwrap();
    bytes[3] ^= 0x20;
    std::fs::write(deb_path, &bytes).unwrap();
    let cache = fresh("bad-deb");
    let text = format!("{:#}", anyhow::Error::from(run(&cache).unwrap_err()));
    assert!(
        text.contains(&victim.sha256) && text.contains(&sha256(&bytes)),
        "{text}"
    );
    let (entries, parts) = cached(&cache);
    assert!(!entries.contains(&sha256(&bytes)) && !entries.contains(&victim.sha256));
    assert!(parts.is_empty(), "{parts:?}");
    bytes[3] ^= 0x20;
    std::fs::write(deb_path, &bytes).unwrap();

    // A Packages index whose bytes are not the ones the Release lists.
    let binary = archive
        .root
        .join(ARCHIVE)
        .join("dists/bookworm/main/binary-amd64/by-hash/SHA256");
    let index_path = std::fs::read_dir(&binary)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let listed = index_path
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let mut index = std::fs::read(&index_path).unwrap();
    let middle = index.len() / 2;
    index[middle] ^= 0x01;
    std::fs::write(&index_path, &index).unwrap();
    let cache = fresh("bad-index");
    let text = format!("{:#}", anyhow::Error::from(run(&cache).unwrap_err()));
    assert!(
        text.contains(&listed) && text.contains(&sha256(&index)),
        "{text}"
    );
    assert_eq!(cached(&cache).0, vec![base_sha256.clone()]);
    index[middle] ^= 0x01;
    std::fs::write(&index_path, &index).unwrap();

    // An InRelease changed after it was signed.
    let in_release_path = archive.root.join(ARCHIVE).join("dists/bookworm/InRelease");
    let signed = std::fs::read_to_string(&in_release_path).unwrap();
    std::fs::write(
        &in_release_path,
        signed.replace("Origin: Test", "Origin: Evil"),
    )
    .unwrap();
    let cache = fresh("bad-signature");
    let text = format!("{:#}", anyhow::Error::from(run(&cache).unwrap_err()));
    assert!(
        text.contains("no good signature")
            && text.contains(&archive.keyring.display().to_string())
            && text.contains(&format!("/{ARCHIVE}/dists/bookworm/InRelease")),
        "{text}"
    );
    assert_eq!(cached(&cache).0, vec![base_sha256]);
}
