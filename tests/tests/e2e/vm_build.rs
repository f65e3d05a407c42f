//! `nodeimg build` end to end on the fixture spec (Debian 12 cloud image from Debian packages,
//! Kubernetes v1.20.2 built from Debian's source, Debian's containerd/runc/CNI): provision,
//! validate, seal, boot test with an offline `kubeadm init`, export, then `nodeimg verify`.
//! And the ways a build must fail: a failing check, a failing command mid-provisioning, Ctrl-C
//! during provisioning — no manifest, no QEMU left.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::nodeimg;
use crate::vm_common::{fixture_or_skip, host_or_skip, sha256, skip, wait_no_processes};

/// The fixture spec and lock in a fresh directory, with the inputs in the shared cache; or
/// `None` after saying why they cannot be made here.
fn fixture_spec(test: &str, dir: &Path) -> Option<PathBuf> {
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
    let lock = builder::lock::load(&path).expect("the fixture lock");
    let kept: Vec<builder::lock::Artifact> = lock
        .artifacts
        .into_iter()
        .filter(|a| a.kind != builder::lock::Kind::Image || a.component.as_deref() == Some("pause"))
        .collect();
    std::fs::write(&path, builder::lock::render(&kept)).unwrap();
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

#[test]
fn vm_build_fixture_spec_end_to_end_with_kubeadm_and_verify() {
    let test = "vm_build_fixture_spec_end_to_end_with_kubeadm_and_verify";
    let dir = tempfile::Builder::new()
        .prefix("vmbuild")
        .tempdir()
        .unwrap();
    let Some(spec) = fixture_spec(test, dir.path()) else {
        return;
    };
    let out = dir.path().join("out");
    let o = build(&spec, &out, &[]).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stdout}\n{stderr}");
    assert!(o.status.success(), "build failed:\n{stderr}");
    let name = fixtures::fixture_set::IMAGE_NAME;
    let image = out.join(name);
    for phase in [
        "inputs",
        "disk",
        "payload",
        "boot",
        "provision",
        "validate",
        "seal",
        "shutdown",
        "boot test",
        "export",
    ] {
        assert!(
            stderr.contains(&format!("{phase}: done in")),
            "phase {phase} missing: {stderr}"
        );
    }
    assert!(stderr.contains("crictl: stand-in"), "{stderr}");
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
    for case in ["kubeadm-init", "api-healthz", "node-ready", "pod-runs"] {
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
}

#[test]
fn vm_build_a_failing_check_fails_the_build_and_leaves_no_manifest() {
    let test = "vm_build_a_failing_check_fails_the_build_and_leaves_no_manifest";
    let dir = tempfile::Builder::new()
        .prefix("vmbuildchk")
        .tempdir()
        .unwrap();
    let Some(spec) = fixture_spec(test, dir.path()) else {
        return;
    };
    slim_lock(&spec);
    extend_spec(
        &spec,
        "\n[[checks]]\nname = \"always-fails\"\nrun = \"echo found-nothing-here; exit 3\"\n",
    );
    let out = dir.path().join("out");
    let o = build(&spec, &out, &["--no-kubeadm-test"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    println!("{stderr}");
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("validation failed"), "{stderr}");
    assert!(stderr.contains("always-fails"), "{stderr}");
    let partial = out.join(format!(".{}.partial", fixtures::fixture_set::IMAGE_NAME));
    let junit = read(&partial.join("validation.junit.xml"));
    assert!(junit.contains("found-nothing-here"), "{junit}");
    assert!(junit.contains("failures=\"1\""), "{junit}");
    assert!(stderr.contains(&partial.display().to_string()), "{stderr}");
    assert!(!out.join(fixtures::fixture_set::IMAGE_NAME).exists());
    no_manifest_anywhere(&out);
    assert_eq!(wait_no_processes(dir.path(), Duration::from_secs(10)), "");
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
        // A step inside provisioning is running: the payload is being installed.
        if line.contains("provision/payload-verify: done") {
            break;
        }
    }
    assert!(
        seen.contains("provision/payload-verify: done"),
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
