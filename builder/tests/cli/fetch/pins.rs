//! What pins the inputs `fetch` cannot take from a checksum file alone: the images kubeadm
//! lists (a served test double of kubeadm that fails, and the real kubeadm v1.20.2 the fixtures
//! build), and the base image without `base.sha256` (pinned from Debian's SHA512SUMS, from
//! Ubuntu's SHA256SUMS once its detached signature verifies, hashed for a local file).

use std::path::Path;
use std::time::Duration;

use super::super::out_str;
use super::super::packages::local_archive::TestKey;
use super::{
    BASE_URL, K8S, bytes, fetch, kubeadm_double, put, sha256, static_images, upstream, write_spec,
};
use fixtures::mirror_server::Server;

#[test]
fn a_kubeadm_that_fails_on_this_host_is_named_with_its_stderr_and_a_bad_mirror_too() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let base_sha = upstream(&root);
    let url = format!("https://dl.k8s.io/release/{K8S}/bin/linux/amd64/kubeadm");
    let failing = kubeadm_double(
        "echo 'kubeadm test double: this kubeadm cannot list images on this host' >&2\nexit 3",
    );
    put(&root, &url, &failing);
    put(&root, &format!("{url}.sha256"), sha256(&failing).as_bytes());
    let server = Server::start(&root, None).unwrap();
    let spec = write_spec(dir.path(), &format!("url = \"{BASE_URL}\""), &base_sha);
    let o = fetch(&spec, &server.url, &dir.path().join("c"));
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("the locked kubeadm {K8S}"))
            && stderr.contains("cannot list its images on this host")
            && stderr.contains("exit status: 3")
            && stderr.contains("kubeadm test double: this kubeadm cannot list images on this host"),
        "{stderr}"
    );
    assert!(!dir.path().join("node.lock").exists());

    let o = fetch(&spec, "ftp://mirror", &dir.path().join("c"));
    assert!(out_str(&o).1.contains("--mirror"), "{}", out_str(&o).1);
}

#[test]
fn without_base_sha256_the_image_is_pinned_from_sha512sums_locked_and_printed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let base_sha = upstream(&root);
    static_images(&root);
    let server = Server::start(&root, None).unwrap();
    let spec = write_spec(dir.path(), &format!("url = \"{BASE_URL}\""), "");
    let o = fetch(&spec, &server.url, &dir.path().join("c"));
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let sums = format!("{}/SHA512SUMS", BASE_URL.rsplit_once('/').unwrap().0);
    assert!(
        stdout.contains(&format!(
            "base image sha256 {base_sha} (pinned by the sha512 published in {sums})"
        )),
        "{stdout}"
    );
    let lock = inputs::lock::load(&dir.path().join("node.lock")).unwrap();
    assert_eq!(lock.base().sha256, base_sha);
    lock.check_matches(&inputs::spec::load(&spec).unwrap())
        .unwrap();

    // A SHA512SUMS that does not list the download's digest: refused, nothing locked.
    std::fs::remove_file(dir.path().join("node.lock")).unwrap();
    let file = BASE_URL.rsplit_once('/').unwrap().1;
    put(
        &root,
        &sums,
        format!("{}  {file}\n", "ab".repeat(64)).as_bytes(),
    );
    let o = fetch(&spec, &server.url, &dir.path().join("c2"));
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("sha512 mismatch") && stderr.contains(&"ab".repeat(64)),
        "{stderr}"
    );
    assert!(!dir.path().join("node.lock").exists());
}

/// The REAL kubeadm v1.20.2 (built by the fixtures from Debian's source) run through fetch's
/// own function: it lists the fixtures' control-plane images under registry.k8s.io, plus the
/// CoreDNS image in 1.20's shape (`registry.k8s.io/coredns:1.7.0`, no `coredns/` path).

#[test]
fn the_real_kubeadm_1_20_lists_the_fixture_images_and_its_coredns() {
    if !fixtures::kubernetes::build_dir()
        .join("bin/kubeadm")
        .is_file()
        && let Err(e) = fixtures::kubernetes::prerequisites()
    {
        eprintln!("skipped: cannot build Kubernetes here: {e:#}");
        return;
    }
    let bin = fixtures::kubernetes::binaries().unwrap();
    let work = tempfile::tempdir().unwrap();
    let listed = inputs::fetch::kubeadm::list_images(
        &bin.join("kubeadm"),
        fixtures::kubernetes::KUBERNETES_VERSION,
        work.path(),
    )
    .unwrap();
    let mut got: Vec<String> = listed.iter().map(|r| r.reference()).collect();
    let mut want: Vec<String> = fixtures::k8s_images::references()
        .iter()
        .map(|r| r.replacen("k8s.gcr.io/", "registry.k8s.io/", 1))
        .chain(["registry.k8s.io/coredns:1.7.0".to_owned()])
        .collect();
    got.sort();
    want.sort();
    assert_eq!(got, want);
    let names: Vec<&str> = listed.iter().map(|r| r.name()).collect();
    assert!(
        names.contains(&"coredns") && names.contains(&"pause"),
        "{names:?}"
    );
}

/// An Ubuntu base image in cloud-images.ubuntu.com's release layout.
const UBUNTU_DIR: &str = "https://cloud-images.ubuntu.com/releases/jammy/release-20240701";
const UBUNTU_IMAGE: &str = "ubuntu-22.04-server-cloudimg-amd64.img";

/// What `gpgv` (the verifier apt uses) says of `signature` over `data` with `keyring`: the
/// independent judge of every case below.
fn gpgv_accepts(keyring: &Path, signature: &Path, data: &Path) -> bool {
    let home = tempfile::tempdir().unwrap();
    child_process::Command::new("gpgv", Duration::from_secs(60))
        .env("GNUPGHOME", home.path())
        .arg("--keyring")
        .arg(keyring)
        .arg(signature)
        .arg(data)
        .run_status()
        .unwrap()
        .status
        .success()
}

/// Ubuntu signs its SHA256SUMS (`SHA256SUMS.gpg`, detached): without `base.sha256` the image
/// is pinned from it only when that signature is good by a key of the keyring (here the
/// spec's `[base] keyring`, a throwaway key made with real gpg). A tampered SHA256SUMS, one
/// signed by another key and a missing signature are each refused naming the file, the
/// keyring and why, with nothing cached and no lock, also when the spec pins the sha256.
#[test]
fn an_ubuntu_base_is_pinned_from_sha256sums_only_when_its_signature_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    upstream(&root);
    static_images(&root);
    let image = bytes(7, 2 << 20);
    let image_sha = sha256(&image);
    let url = format!("{UBUNTU_DIR}/{UBUNTU_IMAGE}");
    let on_disk =
        |name: &str| root.join(format!("{UBUNTU_DIR}/{name}").split_once("://").unwrap().1);
    put(&root, &url, &image);
    let sums = format!(
        "{}  *ubuntu-22.04-server-cloudimg-arm64.img\n{image_sha}  *{UBUNTU_IMAGE}\n",
        "1".repeat(64)
    );
    put(&root, &format!("{UBUNTU_DIR}/SHA256SUMS"), sums.as_bytes());
    let key = TestKey::new("Test Cloud Images <images@example.test>");
    let sign = |key: &TestKey| {
        let gpg_path = on_disk("SHA256SUMS.gpg");
        let _ = std::fs::remove_file(&gpg_path);
        key.gpg()
            .args(["--detach-sign", "--output"])
            .arg(&gpg_path)
            .arg(on_disk("SHA256SUMS"))
            .run()
            .unwrap();
    };
    sign(&key);
    let keyring = dir.path().join("cloud-images.gpg");
    key.export(&keyring);
    let server = Server::start(&root, None).unwrap();
    let spec = write_spec(
        dir.path(),
        &format!("url = \"{url}\"\nkeyring = \"cloud-images.gpg\""),
        "",
    );
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("debian-12", "ubuntu-22.04");
    std::fs::write(&spec, &text).unwrap();
    let lock_path = dir.path().join("node.lock");
    let gpgv = || gpgv_accepts(&keyring, &on_disk("SHA256SUMS.gpg"), &on_disk("SHA256SUMS"));

    // Good: pinned from the verified SHA256SUMS, locked and printed.
    assert!(gpgv());
    let o = fetch(&spec, &server.url, &dir.path().join("c"));
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(&format!(
            "base image sha256 {image_sha} (pinned by the sha256 published in {UBUNTU_DIR}/SHA256SUMS, \
             its signature verified with {})",
            keyring.display()
        )),
        "{stdout}"
    );
    let lock = inputs::lock::load(&lock_path).unwrap();
    assert_eq!(lock.base().sha256, image_sha);
    assert_eq!(lock.base().source, url);

    // Each bad case: refused with `why`, naming the checksum file and the keyring; no lock,
    // and the image is not in the (fresh) cache.
    let refused = |case: &str, why: &str| {
        let _ = std::fs::remove_file(&lock_path);
        let cache = dir.path().join(format!("c-{case}"));
        let o = fetch(&spec, &server.url, &cache);
        let (_, stderr) = out_str(&o);
        assert_eq!(o.status.code(), Some(1), "{case}: {stderr}");
        assert!(
            stderr.contains("/cloud-images.ubuntu.com/releases/jammy/release-20240701/SHA256SUMS: not trusted: its signature")
                && stderr.contains(&format!("with keyring {}", keyring.display()))
                && stderr.contains(why)
                && stderr.contains("nothing was cached"),
            "{case}: {stderr}"
        );
        assert!(!lock_path.exists(), "{case}");
        assert!(
            !inputs::cache::Cache::new(&cache)
                .path_of(&image_sha)
                .exists(),
            "{case}: the image was cached"
        );
    };

    // SHA256SUMS changed after it was signed (the image's line points at other bytes).
    let tampered = sums.replace(&image_sha, &"2".repeat(64));
    put(
        &root,
        &format!("{UBUNTU_DIR}/SHA256SUMS"),
        tampered.as_bytes(),
    );
    assert!(!gpgv());
    refused("tampered", "bad signature: the text does not match it");
    // The spec's own pin does not make a bad signature acceptable.
    std::fs::write(
        &spec,
        text.replace(
            "format = \"qcow2\"",
            &format!("sha256 = \"{image_sha}\"\nformat = \"qcow2\""),
        ),
    )
    .unwrap();
    refused(
        "tampered-pinned",
        "bad signature: the text does not match it",
    );
    std::fs::write(&spec, &text).unwrap();
    put(&root, &format!("{UBUNTU_DIR}/SHA256SUMS"), sums.as_bytes());
    assert!(gpgv());

    // Signed by a key that is not in the keyring.
    let other = TestKey::new("Someone Else <else@example.test>");
    sign(&other);
    assert!(!gpgv());
    refused("other-key", "no such key in the keyring");
    sign(&key);
    assert!(gpgv());

    // No signature published.
    std::fs::remove_file(on_disk("SHA256SUMS.gpg")).unwrap();
    refused("unsigned", "the signature cannot be downloaded");
    sign(&key);

    // Without `[base] keyring`, Ubuntu's own cloud image keyring: on a host without the
    // ubuntu-keyring package, refused naming it and the package.
    let ubuntu_keyring = Path::new("/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg");
    if !ubuntu_keyring.exists() {
        std::fs::write(&spec, text.replace("keyring = \"cloud-images.gpg\"\n", "")).unwrap();
        let o = fetch(&spec, &server.url, &dir.path().join("c-distro-keyring"));
        let (_, stderr) = out_str(&o);
        assert_eq!(o.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains(&format!(
                "SHA256SUMS: not trusted: its signature {}/cloud-images.ubuntu.com/releases/jammy/release-20240701/SHA256SUMS.gpg was not verified with keyring {}",
                server.url,
                ubuntu_keyring.display()
            )) && stderr.contains("the ubuntu-keyring package"),
            "{stderr}"
        );
        assert!(!lock_path.exists());
    }
}

/// A local base image without `base.sha256` is the user's own file: hashed and locked as it
/// is, and hashed again by the next fetch (a changed file changes the lock).

#[test]
fn a_local_base_without_sha256_is_hashed_and_locked() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    upstream(&root);
    static_images(&root);
    let server = Server::start(&root, None).unwrap();
    let local = dir.path().join("base.qcow2");
    std::fs::write(&local, b"my own base image").unwrap();
    let spec = write_spec(dir.path(), "path = \"base.qcow2\"", "");
    let cache = dir.path().join("c");
    let o = fetch(&spec, &server.url, &cache);
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let lock = inputs::lock::load(&dir.path().join("node.lock")).unwrap();
    assert_eq!(lock.base().sha256, sha256(b"my own base image"));
    assert!(
        stdout.contains(&format!(
            "base image sha256 {} (pinned by hashing {}: no base.sha256 in the spec)",
            sha256(b"my own base image"),
            local.display()
        )),
        "{stdout}"
    );
    std::fs::write(&local, b"my changed base image").unwrap();
    let o = fetch(&spec, &server.url, &cache);
    assert!(o.status.success(), "{}", out_str(&o).1);
    let lock = inputs::lock::load(&dir.path().join("node.lock")).unwrap();
    assert_eq!(lock.base().sha256, sha256(b"my changed base image"));
}
