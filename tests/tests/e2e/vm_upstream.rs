//! The real input path for the VM tests: the upstream-shaped mirror made from real bits
//! (`fixtures::upstream_mirror`, from the cached fixture builds), served on 127.0.0.1, and
//! `nodeimg fetch --mirror` writing the spec's lock as a user's fetch does: upstream files and
//! images from the mirror, the node's Debian packages resolved and downloaded from Debian's
//! archive (the mirror redirects the archive's paths there), the base image pinned from the
//! mirror's `SHA512SUMS`, the control-plane images from the locked kubeadm's own list.

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::mirror_server::RunningMirror;

use crate::nodeimg;
use crate::vm_common::{fixture_or_skip, host_or_skip, skip};

/// An upstream spec fetched through the served mirror. The mirror stays up while this lives
/// (keep it on the test's thread: its registry ends with that thread).
pub struct Fetched {
    /// The spec; its lock is next to it.
    pub spec: PathBuf,
    /// What `nodeimg fetch` printed.
    pub stdout: String,
    /// The served mirror.
    pub mirror: RunningMirror,
}

/// The mirror's inputs (fixture cloud image, Kubernetes from Debian's source, the
/// control-plane images), or `None` after saying why they cannot be made here.
pub fn fixture_inputs_or_skip(test: &str) -> Option<()> {
    host_or_skip(test)?;
    fixture_or_skip(test)?;
    if !fixtures::kubernetes::build_dir()
        .join("bin/kubeadm")
        .is_file()
        && let Err(e) = fixtures::kubernetes::prerequisites()
    {
        skip(test, &format!("cannot build Kubernetes here: {e:#}"));
        return None;
    }
    Some(())
}

/// Writes (or reuses) the mirror in the shared cache, serves it, writes the upstream spec in
/// `dir` with `conformance = "quick"` and runs `nodeimg fetch SPEC --mirror URL` into the
/// shared cache (so the lock holds the node conformance suite, its source and test images
/// too); or `None` after saying why the inputs cannot be made here.
pub fn fetch_upstream_spec(test: &str, dir: &Path) -> Option<Fetched> {
    fixture_inputs_or_skip(test)?;
    let set = fixtures::upstream_mirror::write(&fixtures::cache_dir().join("upstream-mirror"))
        .expect("the upstream-shaped mirror");
    let spec = fixtures::upstream_mirror::write_spec_with(&set, dir, Some("quick"))
        .expect("the upstream spec");
    let mirror = fixtures::mirror_server::serve(&set.dir).expect("serving the mirror");
    let o = Command::new(nodeimg())
        .arg("fetch")
        .arg(&spec)
        .arg("--mirror")
        .arg(&mirror.url)
        .arg("--cache")
        .arg(fixtures::cache_dir())
        .env("NODEIMG_LOG", "warn")
        .output()
        .expect("running nodeimg fetch");
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    println!("fetch:\n{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
    assert!(o.status.success(), "nodeimg fetch failed");
    Some(Fetched {
        spec,
        stdout,
        mirror,
    })
}

/// Checks the lock `fetch` wrote: the node's Debian packages from the archive with their
/// suite and architecture, the base image pinned by the published checksum, the images
/// kubeadm listed (no CoreDNS: the spec leaves it out).
pub fn check_fetched_lock(fetched: &Fetched) {
    let lock = inputs::lock::load(&fetched.spec.with_extension("lock")).expect("the lock");
    let debs: Vec<&inputs::lock::Artifact> = lock
        .artifacts
        .iter()
        .filter(|a| a.kind == inputs::lock::Kind::Deb)
        .collect();
    for pkg in ["conntrack", "socat", "ebtables", "ethtool", "iptables"] {
        let a = debs
            .iter()
            .find(|a| a.name == format!("deb-{pkg}"))
            .unwrap_or_else(|| panic!("no deb-{pkg} in the lock: {debs:?}"));
        assert!(
            a.source.starts_with("http://deb.debian.org/debian"),
            "{a:?}"
        );
        assert!(
            a.suite
                .as_deref()
                .is_some_and(|s| s.starts_with("bookworm")),
            "{a:?}"
        );
        assert!(a.architecture.is_some() && a.version.is_some(), "{a:?}");
    }
    let images: Vec<&str> = lock
        .artifacts
        .iter()
        .filter_map(|a| a.image.as_deref())
        .collect();
    for want in [
        "registry.k8s.io/kube-apiserver:v1.20.2",
        "registry.k8s.io/etcd:3.4.13-0",
        "registry.k8s.io/pause:3.2",
    ] {
        assert!(images.contains(&want), "{want}: {images:?}");
    }
    assert!(!images.iter().any(|i| i.contains("coredns")), "{images:?}");
    // The node conformance inputs (`conformance = "quick"`): the suite and its source at the
    // spec's version, and the test images the source names that the mirror has.
    for kind in [
        inputs::lock::Kind::TestSuite,
        inputs::lock::Kind::TestSource,
    ] {
        let at: Vec<_> = lock.artifacts.iter().filter(|a| a.kind == kind).collect();
        assert_eq!(at.len(), 1, "{kind:?}: {at:?}");
        assert_eq!(at[0].version.as_deref(), Some("v1.20.2"), "{at:?}");
    }
    let test_images: Vec<&str> = lock
        .artifacts
        .iter()
        .filter(|a| a.kind == inputs::lock::Kind::TestImage)
        .filter_map(|a| a.image.as_deref())
        .collect();
    for want in [
        "k8s.gcr.io/e2e-test-images/agnhost:2.21",
        "docker.io/library/busybox:1.31.1",
        "gcr.io/kubernetes-e2e-test-images/nonewprivs:1.0",
    ] {
        assert!(test_images.contains(&want), "{want}: {test_images:?}");
    }
    assert!(
        fetched
            .stdout
            .contains("pinned by the sha512 published in https://cloud.debian.org/"),
        "{}",
        fetched.stdout
    );
    // Through the one mirror URL: upstream files, registry blobs and (redirected) the archive.
    let seen: Vec<String> = fetched
        .mirror
        .server
        .seen()
        .into_iter()
        .map(|s| s.path)
        .collect();
    for prefix in [
        "/dl.k8s.io/release/v1.20.2/bin/linux/amd64/kubeadm",
        "/v2/kube-apiserver/",
        "/deb.debian.org/debian/dists/bookworm/InRelease",
        "/deb.debian.org/debian-security/dists/bookworm-security/InRelease",
        "/dl.k8s.io/release/v1.20.2/kubernetes-test-linux-amd64.tar.gz",
        "/dl.k8s.io/release/v1.20.2/kubernetes-src.tar.gz",
        "/v2/e2e-test-images/agnhost/",
    ] {
        assert!(
            seen.iter().any(|p| p.starts_with(prefix)),
            "no request for {prefix}: {seen:?}"
        );
    }
    assert!(
        fetched
            .stdout
            .contains("distro packages: resolved against the archive"),
        "{}",
        fetched.stdout
    );
}
