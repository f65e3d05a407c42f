//! Issue 11: `nodeimg build SPEC --dry-run [--json]` checks the inputs, renders and checks the
//! plan of everything the guests will run, prints its phases and steps (with `--json` every
//! script), exits 0 or 1 in seconds, boots nothing and writes nothing: no output directory, no
//! lock file, no work directory. A bad pin or a missing `[[files]]` source fails here with the
//! error the build gives.

use sha2::{Digest, Sha256};

use super::build::{Fixture, fixture, pin_other_containerd};
use super::{listing, out_str, run_guarded};

/// The build fixture plus a `[[files]]` entry, a command, a check and the control-plane images
/// (so the kubeadm test is planned too).
fn full_fixture() -> Fixture {
    let f = fixture();
    let dir = f.spec.parent().unwrap();
    std::fs::write(dir.join("motd"), b"hello from nodeimg\n").unwrap();
    let mut spec = std::fs::read_to_string(&f.spec).unwrap();
    spec.push_str(
        "\n[[files]]\nsource = \"motd\"\ndest = \"/etc/motd\"\nmode = \"0644\"\n\
         \n[[commands]]\nname = \"motd-readable\"\nrun = \"chmod 0644 /etc/motd\"\n\
         \n[[checks]]\nname = \"motd-present\"\nrun = \"grep -q nodeimg /etc/motd\"\n",
    );
    std::fs::write(&f.spec, spec).unwrap();
    let mut lock = std::fs::read_to_string(&f.lock).unwrap();
    for name in [
        "kube-apiserver",
        "kube-controller-manager",
        "kube-scheduler",
        "etcd",
    ] {
        let data = format!("{name} image archive\n");
        let sha = hex::encode(Sha256::digest(data.as_bytes()));
        std::fs::write(f.cache.join("cas/sha256").join(&sha), &data).unwrap();
        lock.push_str(&format!(
            "\n[[artifact]]\nname = \"{name}\"\nkind = \"image\"\nsource = \"test\"\nsize = {}\nsha256 = \"{sha}\"\nimage = \"k8s.gcr.io/{name}:v1.20.2\"\n",
            data.len()
        ));
    }
    std::fs::write(&f.lock, lock).unwrap();
    f
}

/// `nodeimg build --dry-run` of `f` with `extra` arguments. `NODEIMG_QEMU` points nowhere: the
/// dry run needs no QEMU.
fn dry_run(f: &Fixture, extra: &[&str]) -> std::process::Output {
    run_guarded(
        f.build_command()
            .arg("--dry-run")
            .args(extra)
            .env("NODEIMG_QEMU", "/nonexistent/qemu-system-x86_64"),
    )
}

/// Nothing written: no output directory (so no lock file, staging or work directory in it),
/// the spec's directory and the cache as they were.
fn nothing_written(f: &Fixture, spec_dir_before: &[String], cache_before: &[String]) {
    assert!(!f.out.exists(), "{:?}", listing(&f.out));
    assert_eq!(listing(f.spec.parent().unwrap()), spec_dir_before);
    assert_eq!(listing(&f.cache.join("cas/sha256")), cache_before);
}

fn before(f: &Fixture) -> (Vec<String>, Vec<String>) {
    (
        listing(f.spec.parent().unwrap()),
        listing(&f.cache.join("cas/sha256")),
    )
}

#[test]
fn dry_run_of_a_good_spec_lists_every_phase_and_writes_nothing() {
    let f = full_fixture();
    let (spec_dir, cache) = before(&f);
    let o = dry_run(&f, &[]);
    let (stdout, stderr) = out_str(&o);
    println!("{stdout}");
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.starts_with("plan of node (debian-12): inputs checked"),
        "{stdout}"
    );
    assert!(stdout.contains("every script parses (sh -n)"), "{stdout}");
    let phases: Vec<&str> = stdout
        .lines()
        .skip(1)
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.split(" (").next())
        .collect();
    assert_eq!(
        phases,
        [
            "provision",
            "bom",
            "validate",
            "seal",
            "boot test",
            "kubeadm test"
        ],
        "{stdout}"
    );
    for step in [
        "payload-mount",
        "provenance",
        "user-file-0",
        "user-command-motd-readable",
        "bom-collect",
        "payload-unmount",
        "no-outbound-network",
        "user-motd-present",
        "build-identity",
        "seal-detach",
        "machine-id",
        "kubeadm-init",
        "pod-runs",
    ] {
        assert!(
            stdout
                .lines()
                .any(|l| l.trim_start().starts_with(&format!("{step} "))),
            "no step {step} in:\n{stdout}"
        );
    }
    nothing_written(&f, &spec_dir, &cache);
}

#[test]
fn dry_run_json_has_every_phase_with_its_scripts() {
    let f = full_fixture();
    let (spec_dir, cache) = before(&f);
    let o = dry_run(&f, &["--json"]);
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("stdout is one JSON document");
    assert_eq!(v["image"], "node");
    assert_eq!(v["kubeadm_test"], "runs");
    let phases = v["phases"].as_array().unwrap();
    assert_eq!(phases.len(), 6, "{v:#}");
    let script = |phase: &str, step: &str| -> String {
        let p = phases.iter().find(|p| p["name"] == phase).expect(phase);
        let s = p["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == step)
            .unwrap_or_else(|| panic!("{phase}/{step}"));
        assert!(s["timeout_seconds"].as_u64().unwrap() > 0);
        s["script"].as_str().unwrap().to_owned()
    };
    assert!(
        script("provision", "user-file-0")
            .contains("install -D -m 0644 '/tmp/nodeimg-file-0' '/etc/motd'"),
        "{v:#}"
    );
    assert!(script("provision", "user-command-motd-readable").contains("chmod 0644 /etc/motd"));
    assert!(script("validate", "user-motd-present").contains("grep -q nodeimg /etc/motd"));
    assert!(script("seal", "seal-detach").starts_with("#!/bin/sh\n"));
    assert!(script("kubeadm test", "kubeadm-init").contains("kubeadm init"));
    let host_files = v["host_files"].as_array().unwrap();
    assert!(
        host_files.iter().any(|h| h["what"] == "files[0].source"),
        "{v:#}"
    );
    nothing_written(&f, &spec_dir, &cache);
}

fn refused(f: &Fixture, wants: &[&str]) {
    let (spec_dir, cache) = before(f);
    let o = dry_run(f, &[]);
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    for w in wants {
        assert!(errors[0].contains(w), "missing {w:?} in: {stderr}");
    }
    assert!(!stdout.contains("plan of"), "{stdout}");
    nothing_written(f, &spec_dir, &cache);
}

#[test]
fn dry_run_refuses_a_bad_pin_like_the_build() {
    let f = full_fixture();
    let wants = pin_other_containerd(&f);
    refused(&f, &wants);
}

#[test]
fn dry_run_refuses_a_missing_files_source_like_the_build() {
    let f = full_fixture();
    std::fs::remove_file(f.spec.parent().unwrap().join("motd")).unwrap();
    refused(
        &f,
        &[
            "node.toml: files[0].source: ",
            "motd: cannot read: No such file",
        ],
    );
}
