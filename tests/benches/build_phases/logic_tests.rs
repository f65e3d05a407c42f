//! The build bench's pure parts (event timeline, old-format inputs, reference scripts and
//! markers, the printed tables), compiled into the crate's one test binary (`e2e`) so their
//! `#[test]`s run: the bench itself is `harness = false` and runs none. One ignored test checks
//! a built nodeimg of 1b668ee against a fixture-style input set, by hand:
//! `NODEIMG_BENCH_OLD_BIN=…/nodeimg cargo test -p nodeimg-tests --test e2e bench_logic -- --ignored`.

// The bench uses every item; this target only its tests.
#[allow(dead_code)]
mod old_inputs;
#[allow(dead_code)]
mod old_nodeimg;
#[allow(dead_code)]
mod scripts;
#[allow(dead_code)]
mod table;
#[allow(dead_code)]
mod timeline;

#[path = "tests/old_inputs.rs"]
mod old_inputs_tests;
#[path = "tests/scripts.rs"]
mod scripts_tests;
#[path = "tests/table.rs"]
mod table_tests;
#[path = "tests/timeline.rs"]
mod timeline_tests;

use std::path::{Path, PathBuf};

use inputs::lock::{Artifact, Kind};

/// A lock entry like the fixture set's, for `file` put into `cache`.
fn cached(cache: &inputs::cache::Cache, file: &Path, name: &str, kind: Kind) -> Artifact {
    let (sha256, size, _) = cache.insert(file, None).unwrap();
    Artifact {
        name: name.into(),
        kind,
        component: None,
        version: None,
        architecture: None,
        suite: None,
        source: "a stand-in of the fixture set's".into(),
        size,
        sha256,
        dest: None,
        mode: None,
        image: None,
        note: None,
    }
}

/// A spec and lock shaped as `fixtures::fixture_set` writes them (every kind of entry, the
/// components it pins, `skip_addons`, a check), over small stand-in files cached in `dir`;
/// returns (spec, cache root).
fn fixture_style_set(dir: &Path) -> (PathBuf, PathBuf) {
    let cache_root = dir.join("cache");
    let cache = inputs::cache::Cache::new(&cache_root);
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let put = |name: &str| {
        let path = files.join(name.replace('/', "_"));
        std::fs::write(&path, format!("stand-in {name}")).unwrap();
        path
    };
    let base = put("base.qcow2");
    let base_entry = cached(&cache, &base, "base", Kind::BaseImage);
    let base_sha256 = base_entry.sha256.clone();
    let mut entries = vec![base_entry];
    for (package, component) in [
        ("containerd", Some(("containerd", "1.6.20"))),
        ("runc", Some(("runc", "1.1.5"))),
        (
            "containernetworking-plugins",
            Some(("cni_plugins", "1.1.1")),
        ),
        ("iptables", None),
    ] {
        let mut a = cached(&cache, &put(package), &format!("deb-{package}"), Kind::Deb);
        a.component = component.map(|(c, _)| c.into());
        a.version = component.map(|(_, v)| v.into());
        entries.push(a);
    }
    let installed = |mut a: Artifact, component: Option<(&str, &str)>, dest: &str, mode: &str| {
        a.component = component.map(|(c, _)| c.into());
        a.version = component.map(|(_, v)| v.into());
        a.dest = Some(dest.into());
        a.mode = Some(mode.into());
        a
    };
    for name in ["kubeadm", "kubelet", "kubectl"] {
        let a = cached(&cache, &put(name), name, Kind::Binary);
        entries.push(installed(
            a,
            Some((name, "v1.20.2")),
            &format!("/usr/bin/{name}"),
            "0755",
        ));
    }
    for (name, dest) in [
        ("kubelet-service", "/etc/systemd/system/kubelet.service"),
        (
            "kubeadm-dropin",
            "/etc/systemd/system/kubelet.service.d/10-kubeadm.conf",
        ),
    ] {
        let mut a = installed(
            cached(&cache, &put(name), name, Kind::File),
            None,
            dest,
            "0644",
        );
        a.note = Some("upstream publishes no checksum for this file".into());
        entries.push(a);
    }
    let crictl = fixtures::fixture_set::CRICTL_STANDIN_VERSION;
    let mut a = cached(&cache, &put("crictl"), "crictl", Kind::Binary);
    a.note = Some("stand-in: answers kubeadm 1.20's calls from ctr".into());
    entries.push(installed(
        a,
        Some(("crictl", crictl)),
        "/usr/local/bin/crictl",
        "0755",
    ));
    for reference in fixtures::k8s_images::references() {
        let stem = fixtures::k8s_images::archive_name(&reference).replace(".tar", "");
        let tag = reference.rsplit(':').next().unwrap_or_default().to_owned();
        let mut a = cached(
            &cache,
            &put(&reference),
            &format!("image-{}", stem.to_ascii_lowercase()),
            Kind::Image,
        );
        let component = if reference.contains("/pause:") {
            "pause"
        } else {
            "kubernetes-image"
        };
        a.component = Some(component.into());
        a.version = Some(tag);
        a.image = Some(reference);
        entries.push(a);
    }
    let spec = dir.join(fixtures::fixture_set::SPEC_FILE);
    std::fs::write(
        &spec,
        format!(
            "# a fixture-style spec\n[image]\nname = \"fixture-style\"\ndistro = \"debian-12\"\n\
             firmware = \"uefi\"\ndisk_gib = 4\n\n[base]\npath = {base:?}\nsha256 = \"{base_sha256}\"\n\
             format = \"qcow2\"\n\n[kubernetes]\nversion = \"v1.20.2\"\nskip_addons = [\"coredns\"]\n\n\
             [components]\ncontainerd = \"1.6.20\"\nruncc = \"1.1.5\"\ncrictl = \"{crictl}\"\n\
             cni_plugins = \"1.1.1\"\npause = \"{pause}\"\n\n[export]\n\
             formats = [\"raw\", \"qcow2\", \"vhd\", \"ova\", \"gce\", \"aws\"]\n\n\
             [[checks]]\nname = \"provenance-names-the-image\"\n\
             run = \"grep -q 'fixture-style' /etc/nodeimg-release\"\n",
            base = base.display().to_string(),
            pause = fixtures::k8s_images::PAUSE_TAG,
        )
        .replace("runcc", "runc"),
    )
    .unwrap();
    let lock = inputs::lock::path_for_spec(&spec);
    std::fs::write(
        &lock,
        inputs::lock::render_with_comment(&entries, "fixture-style"),
    )
    .unwrap();
    (spec, cache_root)
}

#[test]
#[ignore = "needs a built nodeimg of 1b668ee named by NODEIMG_BENCH_OLD_BIN"]
fn the_old_nodeimg_refuses_todays_inputs_and_accepts_the_old_format_copy() {
    let bin =
        PathBuf::from(std::env::var_os("NODEIMG_BENCH_OLD_BIN").expect("NODEIMG_BENCH_OLD_BIN"));
    let d = tempfile::tempdir().unwrap();
    let today = d.path().join("today");
    std::fs::create_dir_all(&today).unwrap();
    let (spec, cache) = fixture_style_set(&today);
    // Today's nodeimg reads the set.
    let parsed = inputs::spec::load(&spec).unwrap();
    let lock = inputs::lock::load(&inputs::lock::path_for_spec(&spec)).unwrap();
    lock.check_matches(&parsed).unwrap();
    // 1b668ee does not.
    let refused =
        old_nodeimg::accepts_inputs(&bin, &spec, &cache, &d.path().join("out1")).unwrap_err();
    println!("today's set, by the old nodeimg: {refused}");
    assert!(refused.contains("skip_addons"), "{refused}");
    let read = |p: &Path| std::fs::read_to_string(p).unwrap();
    // What it refuses is the spec alone: the old-format spec next to today's lock passes.
    let mixed = d.path().join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    let mixed_spec = mixed.join(fixtures::fixture_set::SPEC_FILE);
    std::fs::write(
        &mixed_spec,
        old_inputs::old_format_spec(&read(&spec)).unwrap(),
    )
    .unwrap();
    std::fs::copy(&lock.path, inputs::lock::path_for_spec(&mixed_spec)).unwrap();
    old_nodeimg::accepts_inputs(&bin, &mixed_spec, &cache, &d.path().join("out3")).unwrap();
    println!("the old-format spec with today's lock: accepted (inputs phase done)");
    // The old-format copies of both, cache and all.
    let old = d.path().join("old");
    std::fs::create_dir_all(&old).unwrap();
    let old_spec = old.join(fixtures::fixture_set::SPEC_FILE);
    std::fs::write(
        &old_spec,
        old_inputs::old_format_spec(&read(&spec)).unwrap(),
    )
    .unwrap();
    std::fs::write(
        inputs::lock::path_for_spec(&old_spec),
        old_inputs::old_format_lock(&read(&lock.path)).unwrap(),
    )
    .unwrap();
    old_nodeimg::accepts_inputs(&bin, &old_spec, &cache, &d.path().join("out2")).unwrap();
    println!("the old-format copy: accepted (inputs phase done)");
}
