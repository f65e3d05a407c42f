//! A local archive laid out as Ubuntu's (`dists/jammy/{main,universe}/binary-amd64/Packages.xz`
//! and `.gz`, by-hash copies), its Release signed in the test with real `gpg` in a throwaway
//! GNUPGHOME. `gpgv` is the independent judge the tests compare with.

use std::path::{Path, PathBuf};
use std::time::Duration;

use child_process::Command;
use sha2::{Digest as _, Sha256};

const TIMEOUT: Duration = Duration::from_secs(120);

/// A throwaway GnuPG home; its agent is stopped when it goes away.
pub struct Gpg {
    pub home: tempfile::TempDir,
}

impl Gpg {
    pub fn new() -> Gpg {
        let home = tempfile::Builder::new()
            .prefix("gpg")
            .tempdir_in("/tmp")
            .unwrap();
        Gpg { home }
    }

    pub fn command(&self) -> Command {
        let mut command = Command::new("gpg", TIMEOUT);
        command
            .env("GNUPGHOME", self.home.path())
            .args([
                "--batch",
                "--quiet",
                "--no-tty",
                "--pinentry-mode",
                "loopback",
            ])
            .args(["--passphrase", ""]);
        command
    }

    /// Makes a key (`algo` as `gpg --quick-gen-key` takes it, usage `sign` or `cert`) and
    /// returns its fingerprint.
    pub fn generate(&self, uid: &str, algo: &str, usage: &str) -> String {
        self.command()
            .args(["--quick-gen-key", uid, algo, usage, "never"])
            .run()
            .unwrap();
        self.fingerprint(uid)
    }

    /// Adds a signing subkey and returns its fingerprint.
    pub fn add_signing_subkey(&self, primary: &str) -> String {
        self.command()
            .args(["--quick-add-key", primary, "ed25519", "sign", "never"])
            .run()
            .unwrap();
        let out = self
            .command()
            .args(["--with-colons", "--list-keys", primary])
            .run()
            .unwrap();
        let listing = out.stdout_lossy();
        let mut lines = listing.lines().skip_while(|line| !line.starts_with("sub:"));
        lines
            .find_map(|line| line.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_owned())
            .unwrap()
    }

    fn fingerprint(&self, uid: &str) -> String {
        let out = self
            .command()
            .args(["--with-colons", "--list-keys", uid])
            .run()
            .unwrap();
        out.stdout_lossy()
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .map(|rest| rest.trim_matches(':').to_owned())
            .unwrap()
    }

    /// `gpg --export` of the given keys, binary or armored.
    pub fn export(&self, keys: &[&str], armor: bool) -> Vec<u8> {
        let mut command = self.command();
        if armor {
            command.arg("--armor");
        }
        command.arg("--export").args(keys).run().unwrap().stdout
    }

    /// `gpg --clearsign` of `text` with each of `keys` (`!` forces the exact (sub)key).
    pub fn clearsign(&self, text: &str, keys: &[&str], extra: &[&str]) -> Vec<u8> {
        let mut command = self.command();
        for key in keys {
            command.args(["--local-user", &format!("{key}!")]);
        }
        command
            .args(extra)
            .args(["--clearsign", "--output", "-"])
            .stdin_bytes(text.as_bytes().to_vec())
            .run()
            .unwrap()
            .stdout
    }

    /// `gpg --detach-sign` of `data`.
    pub fn detach_sign(&self, data: &[u8], key: &str, armor: bool) -> Vec<u8> {
        let mut command = self.command();
        command.args(["--local-user", &format!("{key}!")]);
        if armor {
            command.arg("--armor");
        }
        command
            .args(["--detach-sign", "--output", "-"])
            .stdin_bytes(data.to_vec())
            .run()
            .unwrap()
            .stdout
    }
}

impl Drop for Gpg {
    fn drop(&mut self) {
        let _ = Command::new("gpgconf", TIMEOUT)
            .env("GNUPGHOME", self.home.path())
            .args(["--kill", "gpg-agent"])
            .run_status();
    }
}

/// Whether `gpgv` with `keyring` accepts `signed` (a clearsigned file, or `data` with the
/// detached signature `signed`) as apt reads its verdict: at least one `VALIDSIG` and no
/// `BADSIG` on the status output (a signature by a key not in the keyring makes gpgv exit
/// non-zero, yet apt ignores it when another one is good).
pub fn gpgv_accepts(keyring: &Path, signed: &Path, data: Option<&Path>) -> bool {
    let mut command = Command::new("gpgv", TIMEOUT);
    command
        .args(["--status-fd", "1", "--keyring"])
        .arg(keyring)
        .arg(signed);
    if let Some(data) = data {
        command.arg(data);
    }
    let status = command.run_status().unwrap().stdout_lossy();
    let has = |word: &str| {
        status
            .lines()
            .any(|line| line.starts_with(&format!("[GNUPG:] {word} ")))
    };
    has("VALIDSIG") && !has("BADSIG")
}

pub fn sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A Packages stanza for a package with no dependencies.
pub fn stanza(name: &str, version: &str, component: &str) -> String {
    let deb = format!(
        "pool/{component}/{}/{name}/{name}_{version}_amd64.deb",
        &name[..1]
    );
    format!(
        "Package: {name}\nVersion: {version}\nArchitecture: amd64\nPriority: optional\n\
         Filename: {deb}\nSize: 1234\nSHA256: {}\nDescription: test package {name}\n",
        sha256(deb.as_bytes())
    )
}

/// The archive on disk: every `Packages` variant written under `dists/SUITE/` and listed in
/// the (unsigned) Release text returned.
pub struct Layout {
    pub root: tempfile::TempDir,
    pub suite: &'static str,
    /// Uncompressed Packages text per component.
    pub packages: Vec<(String, String)>,
}

impl Layout {
    /// Ubuntu's layout for `jammy` with `main` and `universe`; `valid_until` goes in as given.
    pub fn ubuntu(valid_until: &str) -> (Layout, String) {
        let root = tempfile::tempdir().unwrap();
        let suite = "jammy";
        let packages = vec![
            (
                "main".to_owned(),
                format!(
                    "{}\n{}",
                    stanza("conntrack", "1:1.4.6-2build2", "main"),
                    stanza("socat", "1.7.4.1-3ubuntu4", "main")
                ),
            ),
            (
                "universe".to_owned(),
                stanza("jq", "1.6-2.1ubuntu3", "universe"),
            ),
        ];
        let mut listed = Vec::new();
        for (component, text) in &packages {
            let directory = root
                .path()
                .join(format!("dists/{suite}/{component}/binary-amd64"));
            std::fs::create_dir_all(directory.join("by-hash/SHA256")).unwrap();
            let plain = directory.join("Packages");
            std::fs::write(&plain, text).unwrap();
            for (tool, flags) in [
                ("xz", &["-k", "-f"][..]),
                ("gzip", &["-k", "-f", "-n", "-9"][..]),
            ] {
                Command::new(tool, TIMEOUT)
                    .args(flags)
                    .arg(&plain)
                    .run()
                    .unwrap();
            }
            for name in ["Packages", "Packages.gz", "Packages.xz"] {
                let bytes = std::fs::read(directory.join(name)).unwrap();
                let digest = sha256(&bytes);
                std::fs::write(directory.join("by-hash/SHA256").join(&digest), &bytes).unwrap();
                listed.push(format!(
                    " {digest} {:>8} {component}/binary-amd64/{name}",
                    bytes.len()
                ));
            }
        }
        let release = format!(
            "Origin: Ubuntu\nLabel: Ubuntu\nSuite: {suite}\nVersion: 22.04\nCodename: {suite}\n\
             Date: Thu, 21 Apr 2022 17:16:08 UTC\nValid-Until: {valid_until}\n\
             Architectures: amd64 arm64\nComponents: main universe\nAcquire-By-Hash: yes\n\
             Description: Ubuntu Jammy 22.04\nSHA256:\n{}\n",
            listed.join("\n")
        );
        (
            Layout {
                root,
                suite,
                packages,
            },
            release,
        )
    }

    pub fn dists(&self) -> PathBuf {
        self.root.path().join("dists").join(self.suite)
    }

    /// Writes `bytes` at `dists/SUITE/name` and returns the path.
    pub fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.dists().join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }
}
