//! `nodeimg build` end to end on the real input path: an upstream-shaped spec fetched with
//! `nodeimg fetch --mirror` from the local mirror made from real bits (Debian 12 cloud image
//! from Debian packages, Kubernetes v1.20.2 built from Debian's source, containerd, runc and
//! the CNI plugins in their upstream release layouts, the control-plane images in a registry)
//! and Debian's archive (the node's packages): provision, bill of materials, validate, seal,
//! boot test with an offline `kubeadm init`, export, then `nodeimg verify`; a rebuild from the
//! same lock has the same BOM, and a build with crictl bumped (and a failing check) differs by
//! exactly that. And the ways a build of the fixture spec must fail: a failing command
//! mid-provisioning, Ctrl-C during provisioning — no manifest, no QEMU left.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::nodeimg;
use crate::vm_common::{sha256, wait_no_processes};
use crate::vm_upstream::{check_fetched_lock, fetch_upstream_spec, fixture_inputs_or_skip};

/// The fixture spec and lock in a fresh directory, with the inputs in the shared cache; or
/// `None` after saying why they cannot be made here.
fn fixture_spec(test: &str, dir: &Path) -> Option<PathBuf> {
    fixture_inputs_or_skip(test)?;
    let set = fixtures::fixture_set::write_fixture_set(dir, &fixtures::cache_dir())
        .expect("the fixture spec, lock and cache entries");
    Some(set.spec)
}

fn build(spec: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(nodeimg());
    c.arg("build")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(fixtures::cache_dir())
        .args(extra)
        .env("NODEIMG_LOG", "warn");
    c
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Appends TOML to the fixture spec (the lock still matches: it pins inputs, not checks).
fn extend_spec(spec: &Path, toml: &str) {
    let mut text = read(spec);
    text.push_str(toml);
    std::fs::write(spec, text).unwrap();
}

/// Drops every image but pause from the fixture lock: builds that are meant to fail before the
/// boot test need no control-plane images (their import is the slowest provisioning step).
fn slim_lock(spec: &Path) {
    let path = spec.with_extension("lock");
    let lock = inputs::lock::load(&path).expect("the fixture lock");
    let kept: Vec<inputs::lock::Artifact> = lock
        .artifacts
        .into_iter()
        .filter(|a| a.kind != inputs::lock::Kind::Image || a.component.as_deref() == Some("pause"))
        .collect();
    std::fs::write(&path, inputs::lock::render(&kept)).unwrap();
}

/// The bumped crictl stand-in's pin.
const BUMPED_CRICTL: &str = "0.2.0-nodeimg-standin";

/// Bumps the crictl stand-in in the spec and lock to [`BUMPED_CRICTL`]: a new release
/// tarball (its `crictl` says 0.2.0) in the cache, the lock entry's version, size and digest,
/// the spec's pin. The lock's other entries and its `[packages]` record stay.
fn bump_crictl(spec: &Path) {
    let cache = inputs::cache::Cache::new(fixtures::cache_dir());
    let path = spec.with_extension("lock");
    let lock = inputs::lock::load(&path).expect("the lock");
    let mut artifacts = lock.artifacts;
    let entry = artifacts
        .iter_mut()
        .find(|a| a.component.as_deref() == Some("crictl"))
        .expect("a crictl entry");
    assert_eq!(entry.kind, inputs::lock::Kind::Archive, "{entry:?}");
    let scratch = spec.with_file_name("crictl-0.2.0");
    std::fs::create_dir_all(&scratch).unwrap();
    let tar = |args: &[&std::ffi::OsStr]| {
        let o = Command::new("tar").args(args).output().unwrap();
        assert!(
            o.status.success(),
            "tar: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let old_tarball = cache.path_of(&entry.sha256);
    let members = tar(&["-tzf".as_ref(), old_tarball.as_os_str()]);
    tar(&[
        "-xzf".as_ref(),
        old_tarball.as_os_str(),
        "-C".as_ref(),
        scratch.as_os_str(),
    ]);
    let script = scratch.join("crictl");
    let old = read(&script);
    let new = old.replacen("Version:  0.1.0", "Version:  0.2.0", 1);
    assert_ne!(old, new, "the stand-in's version line moved");
    std::fs::write(&script, new).unwrap();
    let tarball = spec.with_file_name("crictl-0.2.0.tar.gz");
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "-czf".as_ref(),
        tarball.as_os_str(),
        "-C".as_ref(),
        scratch.as_os_str(),
    ];
    args.extend(members.lines().map(std::ffi::OsStr::new));
    tar(&args);
    let (sha256, size, _) = cache.insert(&tarball, None).unwrap();
    entry.sha256 = sha256;
    entry.size = size;
    entry.version = Some(BUMPED_CRICTL.into());
    std::fs::write(
        &path,
        inputs::lock::render_with_packages(&artifacts, lock.packages.as_ref()),
    )
    .unwrap();
    let text = read(spec);
    let bumped = text.replace(
        &format!(
            "crictl = \"{}\"",
            fixtures::fixture_set::CRICTL_STANDIN_VERSION
        ),
        &format!("crictl = \"{BUMPED_CRICTL}\""),
    );
    assert_ne!(text, bumped, "the spec pins crictl");
    std::fs::write(spec, bumped).unwrap();
}

/// `nodeimg bom diff A B --json`: its exit code and report.
fn bom_diff(a: &Path, b: &Path) -> (Option<i32>, serde_json::Value) {
    let o = Command::new(nodeimg())
        .args(["bom", "diff", "--json"])
        .arg(a)
        .arg(b)
        .output()
        .unwrap();
    let report = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "bom diff printed no JSON ({e}): {}",
            String::from_utf8_lossy(&o.stderr)
        )
    });
    (o.status.code(), report)
}

/// The keys of one group's `changed` entries.
fn changed_keys(report: &serde_json::Value, group: &str) -> Vec<String> {
    report[group]["changed"]
        .as_array()
        .unwrap_or_else(|| panic!("no {group} group: {report}"))
        .iter()
        .map(|c| c["key"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn no_manifest_anywhere(out: &Path) {
    let found = Command::new("find")
        .arg(out)
        .args(["-name", "manifest.json"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&found.stdout),
        "",
        "a manifest was left"
    );
}

/// The real input path, then three builds: an upstream spec fetched through the local mirror
/// and Debian's archive (with the node conformance suite, its source and test images); the
/// whole build with the kubeadm test and `quick` node conformance, checked end to end; a
/// rebuild from the same lock, whose BOM must not differ; a build with crictl bumped and a check that
/// fails, which must fail validation with no manifest and a BOM that differs from the first by
/// exactly crictl (and the spec and lock digests).
#[test]
fn vm_build_upstream_spec_through_fetch_end_to_end_then_a_rebuild_and_a_bump() {
    let test = "vm_build_upstream_spec_through_fetch_end_to_end_then_a_rebuild_and_a_bump";
    let dir = tempfile::Builder::new()
        .prefix("vmbuild")
        .tempdir()
        .unwrap();
    let Some(fetched) = fetch_upstream_spec(test, dir.path()) else {
        return;
    };
    check_fetched_lock(&fetched);
    let spec = fetched.spec.clone();
    // The spec turns `quick` node conformance on, and fetch locked its inputs.
    let out = dir.path().join("out");
    let o = build(&spec, &out, &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stdout}\n{stderr}");
    assert!(o.status.success(), "build failed:\n{stderr}");
    let name = fixtures::upstream_mirror::IMAGE_NAME;
    let image = out.join(name);
    for phase in [
        "inputs",
        "disk",
        "payload",
        "boot",
        "provision",
        "bom",
        "validate",
        "seal",
        "shutdown",
        "audit",
        "boot test",
        "export",
    ] {
        assert!(
            stderr.contains(&format!("{phase}: done in")),
            "phase {phase} missing: {stderr}"
        );
    }
    assert!(stderr.contains("CoreDNS is skipped"), "{stderr}");
    assert!(
        stdout.contains(&format!("artifacts: {}", image.display())),
        "{stdout}"
    );
    assert!(!out.join(format!(".{name}.partial")).exists());
    assert_eq!(wait_no_processes(dir.path(), Duration::from_secs(10)), "");

    // Every artifact and build file checks out with the real verifier.
    let v = Command::new(nodeimg())
        .arg("verify")
        .arg(&image)
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", String::from_utf8_lossy(&v.stderr));

    let manifest: serde_json::Value =
        serde_json::from_str(&read(&image.join("manifest.json"))).unwrap();
    let record = &manifest["build"]["record"];
    assert_eq!(record["spec_sha256"], sha256(&spec));
    assert_eq!(record["lock_sha256"], sha256(&spec.with_extension("lock")));
    assert_eq!(record["kubeadm_test"], "passed");
    // The quick node conformance run, after the kubeadm test in the same throw-away overlay:
    // every quick test focused and passed, each a JUnit case of class `conformance`.
    let quick = distros::node_conformance::QUICK.len();
    let c = &record["conformance"];
    assert_eq!(c["scope"], "quick", "{record}");
    assert_eq!(c["version"], "v1.20.2", "{record}");
    assert_eq!(c["focused"], quick, "{record}");
    assert_eq!(c["passed"], quick, "{record}");
    assert_eq!(c["failed"], 0, "{record}");
    assert!(stderr.contains("node conformance (quick)"), "{stderr}");
    assert_eq!(
        manifest["content_sha256"],
        sha256(&image.join("golden.raw"))
    );
    for phase in ["provision", "seal", "boot test", "export"] {
        assert!(record["phase_seconds"][phase].is_number(), "{record}");
    }

    // The JUnit report: every check passed, the kubeadm sanity test among them.
    let junit = read(&image.join("validation.junit.xml"));
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert_eq!(
        junit.matches("classname=\"conformance\"").count(),
        distros::node_conformance::QUICK.len(),
        "{junit}"
    );
    assert!(
        junit.contains(
            "name=\"[k8s.io] Pods should get a host IP [NodeConformance] [Conformance]\""
        ),
        "{junit}"
    );
    for case in [
        "kubeadm-init",
        "api-healthz",
        "node-ready",
        "pod-runs",
        "audit-machine-id",
        "audit-authorized-keys",
        "audit-private-keys",
    ] {
        assert!(
            junit.contains(&format!("name=\"{case}\"")),
            "{case}: {junit}"
        );
    }
    let build_log = read(&image.join("build.log"));
    assert!(
        build_log.contains("healthz: ok"),
        "no healthz line in build.log"
    );
    assert!(
        build_log.contains("nodeimg-sanity"),
        "no pod line in build.log"
    );

    // The golden disk is sparse and the formats the spec asked for are there.
    let golden = std::fs::metadata(image.join("golden.raw")).unwrap();
    assert_eq!(golden.len(), fixtures::fixture_set::DISK_GIB << 30);
    assert!(
        std::os::unix::fs::MetadataExt::blocks(&golden) * 512 < golden.len(),
        "golden.raw is not sparse"
    );
    for ext in ["qcow2", "vhd", "ova", "tar.gz", "raw"] {
        assert!(image.join(format!("{name}.{ext}")).is_file(), "{ext}");
    }
    check_bom(&image, &manifest, &spec.with_extension("lock"));
    // The sealed disk passes the offline seal audit as a user runs it.
    let a = Command::new(nodeimg())
        .arg("audit")
        .arg(image.join("golden.raw"))
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stdout));

    // A rebuild from the same spec and lock: the same BOM, the same SBOM bytes.
    let out2 = dir.path().join("out2");
    let o = build(&spec, &out2, &["--no-kubeadm-test", "--conformance", "off"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("rebuild:\n{stderr}");
    assert!(o.status.success(), "the rebuild failed:\n{stderr}");
    let image2 = out2.join(name);
    let (code, report) = bom_diff(&image, &image2);
    assert_eq!(code, Some(0), "the rebuild's BOM differs: {report:#}");
    assert_eq!(report["identical"], true);
    assert_eq!(
        read(&image.join("sbom.cdx.json")),
        read(&image2.join("sbom.cdx.json"))
    );

    // crictl bumped, and a check that fails: validation fails, no manifest, the partial
    // output keeps the JUnit report and the BOM, which differs by exactly the bump.
    bump_crictl(&spec);
    extend_spec(
        &spec,
        "\n[[checks]]\nname = \"always-fails\"\nrun = \"echo found-nothing-here; exit 3\"\n",
    );
    let out3 = dir.path().join("out3");
    let o = build(&spec, &out3, &["--no-kubeadm-test", "--conformance", "off"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("bumped build:\n{stderr}");
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("validation failed"), "{stderr}");
    assert!(stderr.contains("always-fails"), "{stderr}");
    let partial = out3.join(format!(".{name}.partial"));
    let junit = read(&partial.join("validation.junit.xml"));
    assert!(junit.contains("found-nothing-here"), "{junit}");
    assert!(
        junit.contains("failures=\"1\""),
        "only always-fails fails: {junit}"
    );
    assert!(stderr.contains(&partial.display().to_string()), "{stderr}");
    assert!(!out3.join(name).exists());
    no_manifest_anywhere(&out3);
    assert_eq!(wait_no_processes(dir.path(), Duration::from_secs(10)), "");
    let (code, report) = bom_diff(&image, &partial);
    assert_eq!(code, Some(1), "{report:#}");
    assert_eq!(
        changed_keys(&report, "components"),
        [
            "crictl /usr/local/bin/crictl sha256",
            "crictl /usr/local/bin/crictl version"
        ],
        "{report:#}"
    );
    assert_eq!(
        changed_keys(&report, "inputs"),
        ["lock_sha256", "spec_sha256"],
        "{report:#}"
    );
    for group in ["os", "packages", "components", "images", "config", "inputs"] {
        for side in ["added", "removed"] {
            assert_eq!(
                report[group][side],
                serde_json::json!([]),
                "{group} {side}: {report:#}"
            );
        }
    }
    for group in ["os", "packages", "images", "config"] {
        assert_eq!(
            changed_keys(&report, group),
            Vec::<String>::new(),
            "{report:#}"
        );
    }
}

/// The build's BOM: listed in the manifest (so `nodeimg verify` covered it), the pins and
/// imported images in it, the node's Debian packages at the versions `lock` pins, the SBOM
/// valid for the CycloneDX organisation's validator.
fn check_bom(image: &Path, manifest: &serde_json::Value, lock: &Path) {
    let files: Vec<&str> = manifest["build"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert!(
        files.contains(&"bom.json") && files.contains(&"sbom.cdx.json"),
        "{files:?}"
    );
    let bom = builder::documents::load_bom(&image.join("bom.json")).expect("a valid bom.json");
    assert_eq!(bom.inputs.image, fixtures::upstream_mirror::IMAGE_NAME);
    assert_eq!(
        bom.os
            .os_release
            .get("VERSION_CODENAME")
            .map(String::as_str),
        Some("bookworm")
    );
    let lock = inputs::lock::load(lock).expect("the lock");
    let debs: Vec<&inputs::lock::Artifact> = lock
        .artifacts
        .iter()
        .filter(|a| a.kind == inputs::lock::Kind::Deb)
        .collect();
    assert!(!debs.is_empty(), "the lock pins no Debian package");
    for deb in debs {
        let name = deb.name.trim_start_matches("deb-");
        assert!(
            bom.packages
                .iter()
                .any(|p| p.name == name && Some(&p.version) == deb.version.as_ref()),
            "{name} {:?} is not in the BOM's packages",
            deb.version
        );
    }
    assert!(bom.packages.len() > 200, "{} packages", bom.packages.len());
    for (component, path) in [
        ("kubeadm", "/usr/bin/kubeadm"),
        ("kubelet", "/usr/bin/kubelet"),
        ("crictl", "/usr/local/bin/crictl"),
        ("containerd", "/usr/local/bin/containerd"),
        ("runc", "/usr/local/sbin/runc"),
    ] {
        assert!(
            bom.components
                .iter()
                .any(|c| c.name == component && c.path == path),
            "{component} at {path}: {:?}",
            bom.components
        );
    }
    assert!(
        bom.components
            .iter()
            .any(|c| c.name == "cni_plugins" && c.path.ends_with("/bridge"))
    );
    let refs: Vec<&str> = bom.images.iter().map(|i| i.reference.as_str()).collect();
    assert!(refs.contains(&"registry.k8s.io/pause:3.2"), "{refs:?}");
    assert!(
        refs.contains(&"registry.k8s.io/kube-apiserver:v1.20.2"),
        "{refs:?}"
    );
    assert_eq!(
        bom.config
            .sysctls
            .get("net.ipv4.ip_forward")
            .map(String::as_str),
        Some("1")
    );
    assert!(
        bom.config.modules.values().all(|loaded| *loaded),
        "{:?}",
        bom.config.modules
    );
    assert!(
        bom.config
            .containerd
            .iter()
            .any(|(k, v)| k.ends_with("SystemdCgroup") && v == "true"),
        "{:?}",
        bom.config.containerd
    );
    let verdict = fixtures::cyclonedx::validate(&image.join("sbom.cdx.json")).expect("validator");
    assert_eq!(verdict, None, "sbom.cdx.json is not valid CycloneDX 1.5");
}

#[test]
fn vm_build_names_the_provisioning_step_that_failed_with_its_output() {
    let test = "vm_build_names_the_provisioning_step_that_failed_with_its_output";
    let dir = tempfile::Builder::new()
        .prefix("vmbuildcmd")
        .tempdir()
        .unwrap();
    let Some(spec) = fixture_spec(test, dir.path()) else {
        return;
    };
    slim_lock(&spec);
    extend_spec(
        &spec,
        "\n[[commands]]\nname = \"breaks\"\nrun = \"echo half-done; exit 4\"\n",
    );
    let out = dir.path().join("out");
    let o = build(&spec, &out, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stderr}");
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("provision step `user-command-breaks` failed (exit code 4)"),
        "{stderr}"
    );
    assert!(stderr.contains("half-done"), "{stderr}");
    assert!(stderr.contains("serial console"), "{stderr}");
    no_manifest_anywhere(&out);
    assert_eq!(wait_no_processes(dir.path(), Duration::from_secs(10)), "");
}

#[test]
fn vm_build_ctrl_c_during_provisioning_leaves_no_qemu_and_no_output() {
    let test = "vm_build_ctrl_c_during_provisioning_leaves_no_qemu_and_no_output";
    let dir = tempfile::Builder::new()
        .prefix("vmbuildint")
        .tempdir()
        .unwrap();
    let Some(spec) = fixture_spec(test, dir.path()) else {
        return;
    };
    slim_lock(&spec);
    let out = dir.path().join("out");
    let mut child = build(&spec, &out, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        // A step inside provisioning is running: the payload is mounted and being installed.
        if line.contains("provision/payload-mount: done") {
            break;
        }
    }
    assert!(
        seen.contains("provision/payload-mount: done"),
        "the build never reached provisioning: {seen}"
    );
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGINT,
    )
    .unwrap();
    for line in lines {
        seen.push_str(&line.unwrap());
        seen.push('\n');
    }
    let status = child.wait().unwrap();
    println!("{seen}");
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("interrupted by SIGINT"), "{seen}");
    assert_eq!(wait_no_processes(dir.path(), Duration::from_secs(10)), "");
    let left: Vec<String> = std::fs::read_dir(&out)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "left in the output directory: {left:?}");
}
