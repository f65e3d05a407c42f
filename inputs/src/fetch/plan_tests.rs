use std::path::Path;

use super::*;
use crate::lock::{Artifact, COMPONENTS};

fn spec_text(k8s: &str, base: &str) -> String {
    spec_text_with(k8s, base, "", "pause = \"3.9\"")
}

fn spec_text_with(k8s: &str, base: &str, kubernetes: &str, pause: &str) -> String {
    format!(
        r#"[image]
name = "node"
distro = "debian-12"
firmware = "uefi"
disk_gib = 8

[base]
{base}
sha256 = "{sha}"
format = "qcow2"

[kubernetes]
version = "{k8s}"
{kubernetes}

[components]
containerd = "1.7.18"
runc = "1.1.13"
crictl = "1.30.0"
cni_plugins = "1.5.1"
{pause}

[export]
formats = ["raw"]
"#,
        sha = "ab".repeat(32)
    )
}

const DEBIAN_URL: &str = "url = \"https://cloud.debian.org/images/cloud/bookworm/20240717-1811/debian-12-genericcloud-amd64-20240717-1811.qcow2\"";

fn spec(k8s: &str) -> Spec {
    crate::spec::parse(Path::new("/s/node.toml"), &spec_text(k8s, DEBIAN_URL)).unwrap()
}

/// What kubeadm v1.30.2 lists (`config images list --image-repository registry.k8s.io`).
const LISTED_1_30: &str = "registry.k8s.io/kube-apiserver:v1.30.2
registry.k8s.io/kube-controller-manager:v1.30.2
registry.k8s.io/kube-scheduler:v1.30.2
registry.k8s.io/kube-proxy:v1.30.2
registry.k8s.io/coredns/coredns:v1.11.1
registry.k8s.io/pause:3.9
registry.k8s.io/etcd:3.5.12-0
";

fn listed(text: &str) -> Vec<ImageRef> {
    super::super::kubeadm::parse_image_list("v1.30.2", text).unwrap()
}

fn by_name<'a>(p: &'a [Planned], name: &str) -> &'a Planned {
    p.iter().find(|a| a.name == name).expect(name)
}

fn url_of(p: &Planned) -> (&str, &Checksum) {
    match &p.source {
        Source::Url { url, checksum } => (url, checksum),
        other => panic!("{}: {other:?}", p.name),
    }
}

#[test]
fn urls_follow_the_pinned_versions() {
    let p = plan(&spec("v1.30.2"));
    let (url, sum) = url_of(by_name(&p, "kubeadm"));
    assert_eq!(
        url,
        "https://dl.k8s.io/release/v1.30.2/bin/linux/amd64/kubeadm"
    );
    assert_eq!(
        sum,
        &Checksum::File {
            url: format!("{url}.sha256"),
            algorithm: ChecksumAlgorithm::Sha256,
            file_name: "kubeadm".into(),
            signature: None,
        }
    );
    let (url, sum) = url_of(by_name(&p, "runc"));
    assert_eq!(
        url,
        "https://github.com/opencontainers/runc/releases/download/v1.1.13/runc.amd64"
    );
    let Checksum::File {
        url: s, file_name, ..
    } = sum
    else {
        panic!()
    };
    assert_eq!(
        (s.as_str(), file_name.as_str()),
        (
            "https://github.com/opencontainers/runc/releases/download/v1.1.13/runc.sha256sum",
            "runc.amd64"
        )
    );
    assert_eq!(
        url_of(by_name(&p, "containerd")).0,
        "https://github.com/containerd/containerd/releases/download/v1.7.18/containerd-1.7.18-linux-amd64.tar.gz"
    );
    assert_eq!(
        url_of(by_name(&p, "crictl")).0,
        "https://github.com/kubernetes-sigs/cri-tools/releases/download/v1.30.0/crictl-v1.30.0-linux-amd64.tar.gz"
    );
    assert_eq!(
        url_of(by_name(&p, "cni-plugins")).0,
        "https://github.com/containernetworking/plugins/releases/download/v1.5.1/cni-plugins-linux-amd64-v1.5.1.tgz"
    );
    let (url, sum) = url_of(by_name(&p, "kubelet.service"));
    assert_eq!(
        url,
        "https://raw.githubusercontent.com/kubernetes/release/v0.16.2/cmd/krel/templates/latest/kubelet/kubelet.service"
    );
    assert_eq!(sum, &Checksum::Unpublished);
    assert!(by_name(&p, "kubelet.service").note.is_some());
    assert_eq!(
        url_of(by_name(&p, "containerd.service")).0,
        "https://raw.githubusercontent.com/containerd/containerd/v1.7.18/containerd.service"
    );

    assert!(p.iter().all(|a| a.kind != Kind::Image), "{p:?}");
    let p28 = plan(&spec("v1.28.11"));
    assert_eq!(
        url_of(by_name(&p28, "kubectl")).0,
        "https://dl.k8s.io/release/v1.28.11/bin/linux/amd64/kubectl"
    );
}

fn lock_of(p: &[Planned]) -> crate::lock::Lock {
    let artifacts: Vec<Artifact> = p
        .iter()
        .map(|a| Artifact {
            name: a.name.clone(),
            kind: a.kind,
            component: a.component.clone(),
            version: a.version.clone(),
            architecture: None,
            suite: None,
            source: a.source_text(),
            size: 1,
            sha256: a.pinned_sha256.clone().unwrap_or_else(|| "cd".repeat(32)),
            dest: a.dest.clone(),
            mode: a.mode.clone(),
            image: a.image.clone(),
            note: a.note.clone(),
        })
        .collect();
    for a in &artifacts {
        if let Some(c) = &a.component {
            assert!(COMPONENTS.contains(&c.as_str()), "{c}");
        }
    }
    crate::lock::parse(Path::new("/s/node.lock"), &crate::lock::render(&artifacts)).unwrap()
}

#[test]
fn the_plan_is_ordered_and_makes_a_lock_that_matches_the_spec() {
    let s = spec("v1.30.2");
    let mut p = plan(&s);
    let order: Vec<(Kind, &str)> = p.iter().map(|a| (a.kind, a.name.as_str())).collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted);
    assert_eq!(order[0], (Kind::BaseImage, "base-image"));
    let images = super::images(&s, &listed(LISTED_1_30)).unwrap();
    let names: Vec<&str> = images.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "coredns",
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-proxy",
            "kube-scheduler",
            "pause"
        ]
    );
    assert_eq!(
        by_name(&images, "coredns").image.as_deref(),
        Some("registry.k8s.io/coredns/coredns:v1.11.1")
    );
    assert_eq!(
        by_name(&images, "pause").component.as_deref(),
        Some("pause")
    );
    assert_eq!(by_name(&images, "pause").version.as_deref(), Some("3.9"));
    assert_eq!(
        by_name(&images, "etcd").component.as_deref(),
        Some("kubernetes-image")
    );
    p.extend(images);
    // Every planned entry, given a size and digest, is a valid lock entry for this spec.
    lock_of(&p).check_matches(&s).unwrap();
    assert_eq!(
        by_name(&p, "kubelet").dest.as_deref(),
        Some("/usr/bin/kubelet")
    );
    assert_eq!(
        by_name(&p, "cni-plugins").dest.as_deref(),
        Some("/opt/cni/bin")
    );
    // The lock of another spec's images does not match.
    let mut other = s.clone();
    other.kubernetes_version = "v1.30.3".into();
    let e = lock_of(&p).check_matches(&other).unwrap_err();
    assert!(e.contains("v1.30.2") || e.contains("kubeadm"), "{e}");
}

#[test]
fn skip_addons_leaves_their_images_out_and_a_lock_with_them_does_not_match() {
    let text = spec_text_with(
        "v1.30.2",
        DEBIAN_URL,
        "skip_addons = [\"kube-proxy\", \"coredns\"]",
        "pause = \"3.9\"",
    );
    let s = crate::spec::parse(Path::new("/s/node.toml"), &text).unwrap();
    let mut p = plan(&s);
    let images = super::images(&s, &listed(LISTED_1_30)).unwrap();
    let names: Vec<&str> = images.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "pause"
        ]
    );
    p.extend(images);
    lock_of(&p).check_matches(&s).unwrap();
    // The full list's lock carries the left-out addons: it does not match this spec.
    let mut full = plan(&s);
    full.extend(super::images(&spec("v1.30.2"), &listed(LISTED_1_30)).unwrap());
    let e = lock_of(&full).check_matches(&s).unwrap_err();
    assert!(
        e.contains("registry.k8s.io/coredns/coredns:v1.11.1 is CoreDNS")
            && e.contains("skip_addons"),
        "{e}"
    );
}

#[test]
fn the_specs_pause_is_kubeadms_unless_it_pins_another_which_is_pulled_too() {
    // No pause in the spec: kubeadm's is the sandbox image.
    let text = spec_text_with("v1.30.2", DEBIAN_URL, "", "");
    let s = crate::spec::parse(Path::new("/s/node.toml"), &text).unwrap();
    assert_eq!(s.components.pause, None);
    let mut p = plan(&s);
    let images = super::images(&s, &listed(LISTED_1_30)).unwrap();
    assert_eq!(
        by_name(&images, "pause").component.as_deref(),
        Some("pause")
    );
    assert!(images.iter().all(|a| a.name != SANDBOX_PAUSE));
    p.extend(images);
    lock_of(&p).check_matches(&s).unwrap();

    // Another tag: pulled as sandbox-pause, which provides the pause component.
    let text = spec_text_with("v1.30.2", DEBIAN_URL, "", "pause = \"3.10\"");
    let s = crate::spec::parse(Path::new("/s/node.toml"), &text).unwrap();
    let mut p = plan(&s);
    let images = super::images(&s, &listed(LISTED_1_30)).unwrap();
    let sandbox = by_name(&images, SANDBOX_PAUSE);
    assert_eq!(sandbox.image.as_deref(), Some("registry.k8s.io/pause:3.10"));
    assert_eq!(sandbox.component.as_deref(), Some("pause"));
    let kubeadms = by_name(&images, "pause");
    assert_eq!(kubeadms.image.as_deref(), Some("registry.k8s.io/pause:3.9"));
    assert_eq!(kubeadms.component.as_deref(), Some("kubernetes-image"));
    assert_eq!(images.len(), 8);
    p.extend(images);
    lock_of(&p).check_matches(&s).unwrap();

    // A list without pause, or with two images of one name, is refused.
    let e = super::images(&s, &listed("registry.k8s.io/etcd:3.5.12-0\n"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "kubeadm v1.30.2 lists no pause image: registry.k8s.io/etcd:3.5.12-0"
    );
    let e = super::images(
        &s,
        &listed("registry.k8s.io/pause:3.9\nregistry.k8s.io/coredns:1.7.0\nregistry.k8s.io/coredns/coredns:v1.8.0\n"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("two images named \"coredns\""), "{e}");
}

#[test]
fn the_base_image_is_checked_against_the_distros_checksum_file_on_its_host() {
    let p = plan(&spec("v1.30.2"));
    let base = by_name(&p, "base-image");
    assert_eq!(
        base.pinned_sha256.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    assert_eq!(
        url_of(base).1,
        &Checksum::File {
            url: "https://cloud.debian.org/images/cloud/bookworm/20240717-1811/SHA512SUMS".into(),
            algorithm: ChecksumAlgorithm::Sha512,
            file_name: "debian-12-genericcloud-amd64-20240717-1811.qcow2".into(),
            signature: None,
        }
    );
    let ubuntu = distros::find("ubuntu-24.04").unwrap();
    assert_eq!(
        base_checksum(
            ubuntu,
            "https://cloud-images.ubuntu.com/noble/20240701/noble-server-cloudimg-amd64.img",
            None
        ),
        Checksum::File {
            url: "https://cloud-images.ubuntu.com/noble/20240701/SHA256SUMS".into(),
            algorithm: ChecksumAlgorithm::Sha256,
            file_name: "noble-server-cloudimg-amd64.img".into(),
            signature: Some(DetachedSignature {
                url: "https://cloud-images.ubuntu.com/noble/20240701/SHA256SUMS.gpg".into(),
                keyring: "/usr/share/keyrings/ubuntu-cloudimage-keyring.gpg".into(),
            }),
        }
    );
    // The spec's keyring replaces the distro's, and the checksum file is then looked for next
    // to the image on any host.
    let own = Path::new("/s/keys/images.gpg");
    assert_eq!(
        base_checksum(ubuntu, "https://images.example/u/noble.img", Some(own)),
        Checksum::File {
            url: "https://images.example/u/SHA256SUMS".into(),
            algorithm: ChecksumAlgorithm::Sha256,
            file_name: "noble.img".into(),
            signature: Some(DetachedSignature {
                url: "https://images.example/u/SHA256SUMS.gpg".into(),
                keyring: own.into(),
            }),
        }
    );
    assert_eq!(
        base_checksum(ubuntu, "https://images.example/u/noble.img", None),
        Checksum::Unpublished
    );
    // Elsewhere only the spec's pin applies.
    let other = spec_text("v1.30.2", "url = \"https://example.org/img/base.qcow2\"");
    let p = plan(&crate::spec::parse(Path::new("/s/n.toml"), &other).unwrap());
    assert_eq!(url_of(by_name(&p, "base-image")).1, &Checksum::Unpublished);
    let local = spec_text("v1.30.2", "path = \"base.qcow2\"");
    let p = plan(&crate::spec::parse(Path::new("/s/n.toml"), &local).unwrap());
    assert_eq!(
        by_name(&p, "base-image").source,
        Source::Local("/s/base.qcow2".into())
    );
}

#[test]
fn a_mirror_keeps_host_and_path_and_serves_the_registry() {
    let m = Mirror::new("http://127.0.0.1:8080/").unwrap();
    assert_eq!(
        m.url("https://dl.k8s.io/release/v1.30.2/bin/linux/amd64/kubeadm"),
        "http://127.0.0.1:8080/dl.k8s.io/release/v1.30.2/bin/linux/amd64/kubeadm"
    );
    assert_eq!(m.registry(), "http://127.0.0.1:8080");
    let m = Mirror::new("https://mirror.example/nodeimg").unwrap();
    assert_eq!(
        fetch_url(Some(&m), "https://github.com/a/b"),
        "https://mirror.example/nodeimg/github.com/a/b"
    );
    let img = ImageRef {
        registry: "registry.k8s.io".into(),
        repository: "pause".into(),
        tag: "3.9".into(),
    };
    assert_eq!(registry_base(Some(&m), &img), "https://mirror.example");
    assert_eq!(registry_base(None, &img), "https://registry.k8s.io");
    assert_eq!(fetch_url(None, "https://x/y"), "https://x/y");
    assert!(Mirror::new("mirror.example").is_err());
}

#[test]
fn a_lock_matches_the_specs_base_pin_when_it_gives_one() {
    let s = spec("v1.30.2");
    let mut p = plan(&s);
    p.extend(images(&s, &listed(LISTED_1_30)).unwrap());
    lock_of(&p).check_matches(&s).unwrap();
    let mut other = s.clone();
    other.base.sha256 = Some("ef".repeat(32));
    let e = lock_of(&p).check_matches(&other).unwrap_err();
    assert!(
        e.contains(&format!(
            "base image base-image has sha256 {} but the spec pins {}",
            "ab".repeat(32),
            "ef".repeat(32)
        )),
        "{e}"
    );
    // Without a pin in the spec, the lock's digest (from the checksum file) stands.
    other.base.sha256 = None;
    lock_of(&p).check_matches(&other).unwrap();
}

#[test]
fn conformance_plans_the_source_and_test_tarball_at_the_specs_version_only_when_on() {
    let off = spec("v1.20.2");
    assert_eq!(conformance(&off), []);
    let text = spec_text_with("v1.20.2", DEBIAN_URL, "conformance = \"quick\"", "");
    let on = crate::spec::parse(Path::new("/s/node.toml"), &text).unwrap();
    let p = conformance(&on);
    let got: Vec<(&str, Kind, &str, Option<&str>)> = p
        .iter()
        .map(|p| {
            let Source::Url {
                checksum: Checksum::File { url, .. },
                ..
            } = &p.source
            else {
                panic!("{p:?}")
            };
            (p.name.as_str(), p.kind, url.as_str(), p.version.as_deref())
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                TEST_SOURCE,
                Kind::TestSource,
                "https://dl.k8s.io/release/v1.20.2/kubernetes-src.tar.gz.sha256",
                Some("v1.20.2")
            ),
            (
                TEST_SUITE,
                Kind::TestSuite,
                "https://dl.k8s.io/release/v1.20.2/kubernetes-test-linux-amd64.tar.gz.sha256",
                Some("v1.20.2")
            ),
        ]
    );
    assert_eq!(
        p[1].source_text(),
        "https://dl.k8s.io/release/v1.20.2/kubernetes-test-linux-amd64.tar.gz"
    );
    let refs: Vec<String> = [
        "docker.io/library/busybox:1.29",
        "docker.io/library/busybox:1.31.1",
        "k8s.gcr.io/e2e-test-images/agnhost:2.21",
        "k8s.gcr.io/busybox@sha256:4bdd623e848417d96127e16037743f0cd8b528c026e9175e22a84f639eca58ff",
        "gcr.io/kubernetes-e2e-test-images/node-perf/tf-wide-deep-amd64:1.0",
    ]
    .map(str::to_owned)
    .to_vec();
    let images = test_images(&on, &refs).unwrap();
    let named: Vec<(&str, &str)> = images
        .iter()
        .map(|p| (p.name.as_str(), p.image.as_deref().unwrap()))
        .collect();
    assert_eq!(
        named,
        [
            ("test-agnhost-2.21", refs[2].as_str()),
            ("test-busybox-1.29", refs[0].as_str()),
            ("test-busybox-1.31.1", refs[1].as_str()),
            ("test-busybox-sha256-4bdd623e8484", refs[3].as_str()),
            ("test-tf-wide-deep-amd64-1.0", refs[4].as_str()),
        ]
    );
    assert!(images.iter().all(|p| p.kind == Kind::TestImage));
    let Source::Image(agnhost) = &images[0].source else {
        panic!()
    };
    assert_eq!(agnhost.repository, "e2e-test-images/agnhost");
    assert_eq!(registry_base(None, agnhost), "https://k8s.gcr.io");
    let hub = ImageRef::parse(&refs[0]).unwrap();
    assert_eq!(
        (hub.repository.as_str(), hub.tag.as_str()),
        ("library/busybox", "1.29")
    );
    assert_eq!(registry_base(None, &hub), "https://registry-1.docker.io");
    let m = Mirror::new("http://127.0.0.1:1").unwrap();
    assert_eq!(registry_base(Some(&m), &hub), "http://127.0.0.1:1");
    let pinned = ImageRef::parse(&refs[3]).unwrap();
    assert_eq!(pinned.reference(), refs[3]);
    assert_eq!(pinned.pinned_digest(), Some(&refs[3][refs[3].len() - 64..]));

    let mut all = plan(&on);
    all.extend(images_for_lock(&on));
    all.extend(p);
    all.extend(images);
    lock_of(&all).check_matches(&on).unwrap();

    for bad in [
        "busybox:1",
        "docker.io/library/busybox",
        "x.io/a@sha256:12",
        "X.io/a:1",
    ] {
        let e = test_images(&on, &[bad.to_owned()]).unwrap_err().to_string();
        assert!(
            e.contains(&format!("{bad:?} is not a registry/repository:tag")),
            "{e}"
        );
    }
    let twice = ["a.io/x/busybox:1".to_owned(), "b.io/busybox:1".to_owned()];
    let e = test_images(&on, &twice).unwrap_err().to_string();
    assert!(
        e.contains("would both be locked as \"test-busybox-1\""),
        "{e}"
    );
}

fn images_for_lock(s: &Spec) -> Vec<Planned> {
    let listed = LISTED_1_30.replace("v1.30.2", &s.kubernetes_version);
    let listed = super::super::kubeadm::parse_image_list(&s.kubernetes_version, &listed).unwrap();
    images(s, &listed).unwrap()
}
