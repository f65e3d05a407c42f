//! `nodeimg fetch` against a local mirror: the fixtures' mirror server
//! (`fixtures::mirror_server`) with the upstream paths laid out under it and a real
//! `docker-registry` (`fixtures::registry`) filled with `skopeo copy`. Nothing here touches
//! the internet.

mod conformance;
mod pins;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use inputs::cache::Cache;
use inputs::lock::Kind;
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha512};

use super::{nodeimg, out_str};
use fixtures::mirror_server::Server;
use fixtures::registry::LocalRegistry;

pub(super) const BASE_URL: &str = "https://cloud.debian.org/images/cloud/bookworm/20240717-1811/debian-12-genericcloud-amd64-20240717-1811.qcow2";
pub(super) const K8S: &str = "v1.30.2";

/// What kubeadm v1.30.2 prints for `config images list --kubernetes-version v1.30.2
/// --image-repository registry.k8s.io` (the real binary's list).
pub(super) const KUBEADM_IMAGES: &[&str] = &[
    "registry.k8s.io/kube-apiserver:v1.30.2",
    "registry.k8s.io/kube-controller-manager:v1.30.2",
    "registry.k8s.io/kube-scheduler:v1.30.2",
    "registry.k8s.io/kube-proxy:v1.30.2",
    "registry.k8s.io/coredns/coredns:v1.11.1",
    "registry.k8s.io/pause:3.9",
    "registry.k8s.io/etcd:3.5.12-0",
];

/// The size the served kubeadm is padded to (the retry tests cut it in half).
pub(super) const KUBEADM_SIZE: usize = 200_000;

/// The `kubeadm` this test's mirror serves at dl.k8s.io's path: a TEST DOUBLE for the upstream
/// binary (which cannot be downloaded here), a shell script `nodeimg fetch` really runs on the
/// host. Called as `fetch` calls kubeadm, it runs `body`; with other arguments it fails saying
/// so. Padded with comment lines to [`KUBEADM_SIZE`] bytes.
pub(super) fn kubeadm_double(body: &str) -> Vec<u8> {
    let mut script = format!(
        "#!/bin/sh\n\
         # Test double for the upstream kubeadm binary in nodeimg's fetch tests.\n\
         if [ \"$*\" != 'config images list --kubernetes-version {K8S} --image-repository registry.k8s.io' ]; then\n\
         \techo \"kubeadm test double: unexpected arguments: $*\" >&2\n\
         \texit 64\n\
         fi\n\
         {body}\n\
         exit 0\n"
    )
    .into_bytes();
    let line = b"# padding to the size of a binary\n";
    while script.len() + line.len() <= KUBEADM_SIZE {
        script.extend_from_slice(line);
    }
    let room = KUBEADM_SIZE - script.len();
    if room > 0 {
        script.extend(std::iter::repeat_n(b'#', room - 1));
        script.push(b'\n');
    }
    script
}

/// The double's body printing kubeadm v1.30.2's list.
pub(super) fn kubeadm_lists_images() -> String {
    format!("cat <<'EOF'\n{}\nEOF", KUBEADM_IMAGES.join("\n"))
}

pub(super) fn sha256(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Reproducible filler bytes.
pub(super) fn bytes(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x.to_le_bytes()[0]
        })
        .collect()
}

pub(super) fn put(root: &Path, url: &str, data: &[u8]) -> String {
    let rel = url.split_once("://").unwrap().1;
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, data).unwrap();
    format!("/{rel}")
}

/// Lays out every upstream file of the spec below under `root` (as the mirror serves them);
/// returns the base image's SHA-256.
pub(super) fn upstream(root: &Path) -> String {
    let base = bytes(1, 3 << 20);
    put(root, BASE_URL, &base);
    let dir = BASE_URL.rsplit_once('/').unwrap().0;
    let file = BASE_URL.rsplit_once('/').unwrap().1;
    let sums = format!(
        "{}  other.raw\n{}  {file}\n",
        "0".repeat(128),
        hex::encode(Sha512::digest(&base))
    );
    put(root, &format!("{dir}/SHA512SUMS"), sums.as_bytes());
    for (i, name) in ["kubeadm", "kubelet", "kubectl"].into_iter().enumerate() {
        let url = format!("https://dl.k8s.io/release/{K8S}/bin/linux/amd64/{name}");
        let data = if name == "kubeadm" {
            kubeadm_double(&kubeadm_lists_images())
        } else {
            bytes(10 + u32::try_from(i).unwrap(), 200_000)
        };
        put(root, &url, &data);
        put(root, &format!("{url}.sha256"), sha256(&data).as_bytes());
    }
    let gh = "https://github.com";
    let runc = bytes(20, 100_000);
    put(
        root,
        &format!("{gh}/opencontainers/runc/releases/download/v1.1.13/runc.amd64"),
        &runc,
    );
    let sums = format!(
        "{}  runc.arm64\n{}  runc.amd64\n",
        "1".repeat(64),
        sha256(&runc)
    );
    put(
        root,
        &format!("{gh}/opencontainers/runc/releases/download/v1.1.13/runc.sha256sum"),
        sums.as_bytes(),
    );
    for (url, seed, named) in [
        (
            format!(
                "{gh}/containerd/containerd/releases/download/v1.7.18/containerd-1.7.18-linux-amd64.tar.gz.sha256sum"
            ),
            21,
            true,
        ),
        (
            format!(
                "{gh}/kubernetes-sigs/cri-tools/releases/download/v1.30.0/crictl-v1.30.0-linux-amd64.tar.gz.sha256"
            ),
            22,
            false,
        ),
        (
            format!(
                "{gh}/containernetworking/plugins/releases/download/v1.5.1/cni-plugins-linux-amd64-v1.5.1.tgz.sha256"
            ),
            23,
            true,
        ),
    ] {
        let artifact = url.rsplit_once('.').unwrap().0;
        let data = bytes(seed, 150_000);
        put(root, artifact, &data);
        let name = artifact.rsplit('/').next().unwrap();
        let line = if named {
            format!("{}  {name}\n", sha256(&data))
        } else {
            format!("{}\n", sha256(&data))
        };
        put(root, &url, line.as_bytes());
    }
    let raw = "https://raw.githubusercontent.com";
    let t = format!("{raw}/kubernetes/release/v0.16.2/cmd/krel/templates/latest");
    put(
        root,
        &format!("{t}/kubelet/kubelet.service"),
        b"[Unit]\nDescription=kubelet\n",
    );
    put(
        root,
        &format!("{t}/kubeadm/10-kubeadm.conf"),
        b"[Service]\nEnvironment=X=1\n",
    );
    put(
        root,
        &format!("{raw}/containerd/containerd/v1.7.18/containerd.service"),
        b"[Unit]\nDescription=containerd\n",
    );
    sha256(&base)
}

/// Writes `dir/node.toml` with `base` (a `path = …` or `url = …` line) and, unless
/// `base_sha256` is empty, that pin.
pub(super) fn write_spec(dir: &Path, base: &str, base_sha256: &str) -> PathBuf {
    let spec = dir.join("node.toml");
    let pin = if base_sha256.is_empty() {
        String::new()
    } else {
        format!("sha256 = \"{base_sha256}\"\n")
    };
    let text = format!(
        "[image]\nname = \"node\"\ndistro = \"debian-12\"\nfirmware = \"uefi\"\ndisk_gib = 8\n\n\
         [base]\n{base}\n{pin}format = \"qcow2\"\n\n\
         [kubernetes]\nversion = \"{K8S}\"\n\n\
         [components]\ncontainerd = \"1.7.18\"\nrunc = \"1.1.13\"\ncrictl = \"1.30.0\"\ncni_plugins = \"1.5.1\"\npause = \"3.9\"\n\n\
         [export]\nformats = [\"raw\"]\n\n\
         # The fake base image holds no dpkg database: fetch adds no distro packages (the\n\
         # packages step has its own tests against the real archive).\n\
         [packages]\nfetch = false\n"
    );
    std::fs::write(&spec, text).unwrap();
    spec
}

pub(super) fn fetch(spec: &Path, mirror: &str, cache: &Path) -> Output {
    nodeimg()
        .arg("fetch")
        .arg(spec)
        .args(["--mirror", mirror, "--cache"])
        .arg(cache)
        .output()
        .unwrap()
}

fn blob(dir: &Path, data: &[u8]) -> Value {
    let hex = sha256(data);
    std::fs::create_dir_all(dir.join("blobs/sha256")).unwrap();
    std::fs::write(dir.join("blobs/sha256").join(&hex), data).unwrap();
    json!({ "digest": format!("sha256:{hex}"), "size": data.len() })
}

fn layer_tar(name: &str) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let data = format!("{name}\n");
    let mut h = tar::Header::new_ustar();
    h.set_path(format!("etc/{name}")).unwrap();
    h.set_size(u64::try_from(data.len()).unwrap());
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_cksum();
    b.append(&h, data.as_bytes()).unwrap();
    b.into_inner().unwrap()
}

/// An OCI layout at `dir` holding `tag`: one manifest per architecture, under an index when
/// there are several.
fn oci_layout(dir: &Path, name: &str, tag: &str, arches: &[&str]) {
    let mut manifests = Vec::new();
    for arch in arches {
        let layer = layer_tar(&format!("{name}-{arch}"));
        let diff = format!("sha256:{}", sha256(&layer));
        let mut l = blob(dir, &layer);
        l["mediaType"] = json!("application/vnd.oci.image.layer.v1.tar");
        let config = json!({"architecture": arch, "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [diff]}});
        let mut c = blob(dir, &serde_json::to_vec(&config).unwrap());
        c["mediaType"] = json!("application/vnd.oci.image.config.v1+json");
        let m = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": c, "layers": [l]});
        let mut d = blob(dir, &serde_json::to_vec(&m).unwrap());
        d["mediaType"] = json!("application/vnd.oci.image.manifest.v1+json");
        d["platform"] = json!({"os": "linux", "architecture": arch});
        manifests.push(d);
    }
    let mut top = if manifests.len() == 1 {
        manifests.pop().unwrap()
    } else {
        let inner = json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": manifests});
        let mut d = blob(dir, &serde_json::to_vec(&inner).unwrap());
        d["mediaType"] = json!("application/vnd.oci.image.index.v1+json");
        d
    };
    top["annotations"] = json!({"org.opencontainers.image.ref.name": tag});
    let index = json!({"schemaVersion": 2, "manifests": [top]});
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

fn skopeo(args: &[&str]) -> String {
    fixtures::tools::run_checked(Command::new("skopeo").arg("--insecure-policy").args(args))
        .unwrap()
}

/// Pushes the images kubeadm v1.30 needs: kube-apiserver as a two-platform index, pause from
/// a docker-archive (docker media types), the rest as OCI manifests.
fn push_images(reg: &LocalRegistry, work: &Path) {
    let images = [
        ("coredns/coredns", "v1.11.1"),
        ("etcd", "3.5.12-0"),
        ("kube-apiserver", K8S),
        ("kube-controller-manager", K8S),
        ("kube-proxy", K8S),
        ("kube-scheduler", K8S),
    ];
    for (repo, tag) in images {
        let dir = work.join(repo.replace('/', "_"));
        let multi = repo == "kube-apiserver";
        let arches: &[&str] = if multi {
            &["arm64", "amd64"]
        } else {
            &["amd64"]
        };
        oci_layout(&dir, repo, tag, arches);
        let src = format!("oci:{}:{tag}", dir.display());
        let dest = format!("docker://{}/{repo}:{tag}", reg.host());
        let mut args = vec!["copy", "--dest-tls-verify=false"];
        if multi {
            args.push("--all");
        }
        args.extend([src.as_str(), dest.as_str()]);
        skopeo(&args);
    }
    let root = work.join("pause-root");
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(root.join("etc/pause"), b"pause\n").unwrap();
    let archive = work.join("pause.tar");
    let spec = fixtures::image_archive::ImageSpec {
        reference: "registry.k8s.io/pause:3.9".into(),
        layers: vec![fixtures::image_archive::Layer::Dir(root)],
        entrypoint: Some(vec!["/pause".into()]),
        cmd: None,
        env: Vec::new(),
    };
    fixtures::image_archive::write_docker_archive(&spec, work, &archive).unwrap();
    let src = format!("docker-archive:{}", archive.display());
    let dest = format!("docker://{}/pause:3.9", reg.host());
    skopeo(&["copy", "--dest-tls-verify=false", &src, &dest]);
}

/// Reads an image archive with our own eyes: every blob's digest, the index's names, the
/// manifest's config and layers; returns the config.
fn check_archive(path: &Path, reference: &str) -> Value {
    let mut files = HashMap::new();
    let mut a = tar::Archive::new(std::fs::File::open(path).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().display().to_string();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(sha256(&data), hex, "{}: {name}", path.display());
        }
        files.insert(name, data);
    }
    let index: Value = serde_json::from_slice(&files["index.json"]).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(m["annotations"]["io.containerd.image.name"], reference);
    assert_eq!(
        m["annotations"]["org.opencontainers.image.ref.name"],
        reference.rsplit(':').next().unwrap()
    );
    let blob = |d: &Value| {
        &files[&format!(
            "blobs/sha256/{}",
            d.as_str().unwrap().trim_start_matches("sha256:")
        )]
    };
    let manifest: Value = serde_json::from_slice(blob(&m["digest"])).unwrap();
    for l in manifest["layers"].as_array().unwrap() {
        assert_eq!(
            u64::try_from(blob(&l["digest"]).len()).unwrap(),
            l["size"].as_u64().unwrap()
        );
    }
    serde_json::from_slice(blob(&manifest["config"]["digest"])).unwrap()
}

fn requests(server: &Server, from: usize) -> Vec<String> {
    server.seen()[from..]
        .iter()
        .map(|s| s.path.clone())
        .collect()
}

#[test]
fn fetch_through_a_mirror_locks_verifies_resumes_and_downloads_nothing_twice() {
    if !fixtures::tools::have("skopeo") || !fixtures::tools::have("docker-registry") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let base_sha = upstream(&root);
    let reg = LocalRegistry::start(&dir.path().join("registry")).unwrap();
    push_images(&reg, &dir.path().join("images"));
    let server = Server::start(&root, Some(reg.host())).unwrap();
    let base_path = format!("/{}", BASE_URL.split_once("://").unwrap().1);
    server.cut_once(&base_path);
    server.require_token("t0ken");
    let spec = write_spec(dir.path(), &format!("url = \"{BASE_URL}\""), &base_sha);
    let cache_dir = dir.path().join("cache");

    let o = fetch(&spec, &server.url, &cache_dir);
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");

    // The registry's bearer challenge was answered with a token for the repository's scope.
    let tokens: Vec<String> = requests(&server, 0)
        .into_iter()
        .filter(|p| p.starts_with("/token?"))
        .collect();
    assert!(
        tokens.contains(
            &"/token?scope=repository%3Acoredns%2Fcoredns%3Apull&service=test-registry".to_owned()
        ),
        "{tokens:?}"
    );

    // The cut download was resumed where it broke off.
    let base_gets: Vec<_> = server
        .seen()
        .into_iter()
        .filter(|s| s.path == base_path)
        .collect();
    assert_eq!(base_gets.len(), 2, "{base_gets:?}");
    assert_eq!(base_gets[0].range, None);
    assert_eq!(
        base_gets[1].range,
        Some(format!("bytes={}-", (3 << 20) / 2))
    );

    // The lock parses, matches the spec, records upstream sources, and the cache holds it all.
    let lock_path = dir.path().join("node.lock");
    let lock = inputs::lock::load(&lock_path).unwrap();
    let spec_parsed = inputs::spec::load(&spec).unwrap();
    lock.check_matches(&spec_parsed).unwrap();
    let names: Vec<&str> = lock.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "base-image",
            "kubeadm",
            "kubectl",
            "kubelet",
            "runc",
            "cni-plugins",
            "containerd",
            "crictl",
            "10-kubeadm.conf",
            "containerd.service",
            "kubelet.service",
            "coredns",
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-proxy",
            "kube-scheduler",
            "pause"
        ]
    );
    let cache = Cache::new(&cache_dir);
    for a in &lock.artifacts {
        assert!(!a.source.contains("127.0.0.1"), "{a:?}");
        let path = cache.verified(a, "").unwrap();
        assert_eq!(
            sha256(&std::fs::read(&path).unwrap()),
            a.sha256,
            "{}",
            a.name
        );
        assert!(
            stdout.contains(&a.name) && stdout.contains(&a.sha256[..12]),
            "{stdout}"
        );
    }
    assert_eq!(lock.base().sha256, base_sha);
    assert_eq!(lock.base().source, BASE_URL);
    let kubeadm = lock.artifacts.iter().find(|a| a.name == "kubeadm").unwrap();
    assert_eq!(
        kubeadm.source,
        format!("https://dl.k8s.io/release/{K8S}/bin/linux/amd64/kubeadm")
    );
    assert_eq!(
        kubeadm.sha256,
        sha256(&kubeadm_double(&kubeadm_lists_images()))
    );
    // The images are exactly those the (served) kubeadm listed.
    let mut locked: Vec<&str> = lock
        .of_kind(Kind::Image)
        .map(|a| a.image.as_deref().unwrap())
        .collect();
    locked.sort_unstable();
    let mut listed = KUBEADM_IMAGES.to_vec();
    listed.sort_unstable();
    assert_eq!(locked, listed);
    for a in lock.of_kind(Kind::Image) {
        let reference = a.image.as_deref().unwrap();
        assert!(
            a.source.starts_with(&format!("{reference}@sha256:")),
            "{a:?}"
        );
        let path = cache.path_of(&a.sha256);
        let config = check_archive(&path, reference);
        assert_eq!(config["architecture"], "amd64", "{reference}");
        // skopeo, a real reader of OCI archives, agrees.
        let inspect: Value = serde_json::from_str(&skopeo(&[
            "inspect",
            &format!("oci-archive:{}", path.display()),
        ]))
        .unwrap();
        assert_eq!(inspect["Architecture"], "amd64", "{reference}: {inspect}");
        assert_eq!(inspect["Layers"].as_array().unwrap().len(), 1, "{inspect}");
    }
    let lock_text = std::fs::read(&lock_path).unwrap();
    assert!(
        !cache_dir.join("partial").read_dir().unwrap().any(|_| true),
        "parts left behind"
    );

    // Twice: the lock is unchanged and nothing is requested at all.
    let before = server.seen().len();
    let o = fetch(&spec, &server.url, &cache_dir);
    assert!(o.status.success(), "{}", out_str(&o).1);
    assert_eq!(requests(&server, before), Vec::<String>::new());
    assert!(out_str(&o).0.contains("0 downloaded"), "{}", out_str(&o).0);
    assert_eq!(std::fs::read(&lock_path).unwrap(), lock_text);

    // Without the lock, published digests already in the cache are not downloaded again:
    // only checksum files, files without one, tokens and manifests are requested; no blob.
    std::fs::remove_file(&lock_path).unwrap();
    let before = server.seen().len();
    let o = fetch(&spec, &server.url, &cache_dir);
    assert!(o.status.success(), "{}", out_str(&o).1);
    let again = requests(&server, before);
    for path in &again {
        assert!(
            path.ends_with(".sha256")
                || path.ends_with(".sha256sum")
                || path.ends_with("SHA512SUMS")
                || path.ends_with(".service")
                || path.ends_with(".conf")
                || path.contains("/manifests/")
                || path.starts_with("/token?"),
            "downloaded again: {path} ({again:?})"
        );
    }
    assert!(again.iter().any(|p| p.contains("/manifests/")), "{again:?}");
    assert_eq!(
        std::fs::read(&lock_path).unwrap(),
        lock_text,
        "the lock is reproducible"
    );
}

#[test]
fn a_corrupt_download_fails_naming_the_url_and_both_digests_and_caches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let base_sha = upstream(&root);
    let url = format!("https://dl.k8s.io/release/{K8S}/bin/linux/amd64/kubectl");
    let good = sha256(&bytes(12, 200_000));
    let mut bad = bytes(12, 200_000);
    bad[1000] ^= 0x40;
    let path = put(&root, &url, &bad);
    let server = Server::start(&root, None).unwrap();
    let spec = write_spec(dir.path(), &format!("url = \"{BASE_URL}\""), &base_sha);
    let cache_dir = dir.path().join("cache");
    let o = fetch(&spec, &server.url, &cache_dir);
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("{}{path}: sha256 mismatch", server.url))
            && stderr.contains(&format!("expected {good}"))
            && stderr.contains(&format!("got {}", sha256(&bad))),
        "{stderr}"
    );
    assert!(!Cache::new(&cache_dir).path_of(&sha256(&bad)).exists());
    assert!(!cache_dir.join("partial/kubectl.part").exists());
    assert!(!dir.path().join("node.lock").exists());

    // A local base image whose digest is not the spec's pin is refused the same way.
    let local = dir.path().join("base.qcow2");
    std::fs::write(&local, b"not the pinned image").unwrap();
    let spec = write_spec(dir.path(), "path = \"base.qcow2\"", &base_sha);
    let o = fetch(&spec, &server.url, &cache_dir);
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: sha256 mismatch: expected {base_sha}",
            local.display()
        )) && stderr.contains("spec's base.sha256"),
        "{stderr}"
    );
    assert!(!dir.path().join("node.lock").exists());
}

/// Lays out every image kubeadm v1.30.2 lists as a static registry under `root` (`/v2/REPO/
/// manifests/TAG` and `/v2/REPO/blobs/sha256:HEX` as files), so the mirror serves them
/// without a registry. Returns the path of one layer blob (70,000 bytes).
pub(super) fn static_images(root: &Path) -> String {
    let mut a_layer = String::new();
    for (i, reference) in KUBEADM_IMAGES.iter().enumerate() {
        let (repo, tag) = reference
            .strip_prefix("registry.k8s.io/")
            .unwrap()
            .rsplit_once(':')
            .unwrap();
        // `put` drops the scheme: this is the path `/v2/{repo}` below `root`.
        let base = format!("http://v2/{repo}");
        let descriptor = |data: &[u8], media: &str| {
            let hex = sha256(data);
            let path = put(root, &format!("{base}/blobs/sha256:{hex}"), data);
            let d =
                json!({"mediaType": media, "digest": format!("sha256:{hex}"), "size": data.len()});
            (d, path)
        };
        let layer = bytes(100 + u32::try_from(i).unwrap(), 70_000);
        let (layer, path) = descriptor(&layer, "application/vnd.oci.image.layer.v1.tar");
        a_layer = path;
        let config = json!({"architecture": "amd64", "os": "linux", "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]}});
        let (config, _) = descriptor(
            &serde_json::to_vec(&config).unwrap(),
            "application/vnd.oci.image.config.v1+json",
        );
        let manifest = json!({"schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config, "layers": [layer]});
        put(
            root,
            &format!("{base}/manifests/{tag}"),
            &serde_json::to_vec(&manifest).unwrap(),
        );
    }
    a_layer
}
