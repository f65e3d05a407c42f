//! What pins the inputs `fetch` cannot take from a checksum file alone: the images kubeadm
//! lists (a served test double of kubeadm that fails, and the real kubeadm v1.20.2 the fixtures
//! build), and the base image without `base.sha256` (pinned from Debian's SHA512SUMS, refused
//! for Ubuntu's signed SHA256SUMS until its signature is verified, hashed for a local file).

use super::super::out_str;
use super::{
    BASE_URL, K8S, fetch, kubeadm_double, put, sha256, static_images, upstream, write_spec,
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

/// Ubuntu signs its SHA256SUMS; until that signature is verified, the file cannot be the base
/// image's only pin: refused before anything is downloaded, saying why and what to do.

#[test]
fn an_ubuntu_base_without_sha256_is_refused_until_its_signed_checksums_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let url = "https://cloud-images.ubuntu.com/noble/20240701/noble-server-cloudimg-amd64.img";
    let spec = write_spec(dir.path(), &format!("url = \"{url}\""), "");
    let text = std::fs::read_to_string(&spec)
        .unwrap()
        .replace("debian-12", "ubuntu-24.04");
    std::fs::write(&spec, text).unwrap();
    // Nothing listens on the mirror: the refusal must come before any download.
    let o = fetch(&spec, "http://127.0.0.1:9", &dir.path().join("c"));
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("SHA256SUMS: this checksum file is signed (https://cloud-images.ubuntu.com/noble/20240701/SHA256SUMS.gpg)")
            && stderr.contains("does not verify that signature yet")
            && stderr.contains("give base.sha256"),
        "{stderr}"
    );
    assert!(!dir.path().join("node.lock").exists());
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
