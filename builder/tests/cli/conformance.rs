//! Issue 14's bad input, refused before any VM starts with one error naming the file or key:
//! `nodeimg build --conformance` and `nodeimg conformance` on a lock without the node
//! conformance suite, with a suite of another Kubernetes version, with a test tarball that does
//! not hold the suite, or with a test image whose cached bytes are not the locked ones. The
//! plan shows the run's steps. (The run itself is in the e2e `vm-tests`.)

use std::path::Path;

use sha2::{Digest, Sha256};

use super::build::{Fixture, fixture};
use super::{listing, nodeimg, out_str, run_guarded};

fn put(cache: &Path, data: &[u8]) -> String {
    let s = hex::encode(Sha256::digest(data));
    std::fs::write(cache.join("cas/sha256").join(&s), data).unwrap();
    s
}

/// A gzip'd tar with `members` (name, bytes), made with the real `tar`.
fn tar_gz(dir: &Path, members: &[(&str, &[u8])]) -> Vec<u8> {
    let tree = dir.join("tree");
    for (name, data) in members {
        let p = tree.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    let out = dir.join("t.tar.gz");
    let o = std::process::Command::new("tar")
        .arg("-czf")
        .arg(&out)
        .arg("-C")
        .arg(&tree)
        .arg("kubernetes")
        .output()
        .unwrap();
    assert!(o.status.success(), "{o:?}");
    std::fs::read(out).unwrap()
}

/// Adds a test-suite (its tarball holding `member`) at `version` and a busybox test image to
/// `f`'s lock and cache.
fn add_tests(f: &Fixture, version: &str, member: &str) {
    let scratch = tempfile::tempdir().unwrap();
    let tarball = tar_gz(
        scratch.path(),
        &[
            (member, b"#!/bin/sh\necho suite\n"),
            ("kubernetes/test/bin/ginkgo", b"#!/bin/sh\necho ginkgo\n"),
        ],
    );
    let s = put(&f.cache, &tarball);
    let image = b"busybox image archive";
    let i = put(&f.cache, image);
    let mut lock = std::fs::read_to_string(&f.lock).unwrap();
    lock.push_str(&format!(
        "\n[[artifact]]\nname = \"kubernetes-test\"\nkind = \"test-suite\"\nversion = \"{version}\"\nsource = \"test\"\nsize = {}\nsha256 = \"{s}\"\n\
         \n[[artifact]]\nname = \"test-busybox\"\nkind = \"test-image\"\nsource = \"test\"\nsize = {}\nsha256 = \"{i}\"\nimage = \"docker.io/library/busybox:1.29\"\n",
        tarball.len(),
        image.len()
    ));
    std::fs::write(&f.lock, lock).unwrap();
}

fn dry_run(f: &Fixture, extra: &[&str]) -> (Option<i32>, String, String) {
    let o = run_guarded(
        f.build_command()
            .arg("--dry-run")
            .args(extra)
            .env("NODEIMG_QEMU", "/nonexistent/qemu-system-x86_64"),
    );
    let (stdout, stderr) = out_str(&o);
    (o.status.code(), stdout, stderr)
}

fn conformance(f: &Fixture, image: &Path, out: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let o = run_guarded(
        nodeimg()
            .arg("conformance")
            .arg(image)
            .arg("--spec")
            .arg(&f.spec)
            .arg("--cache")
            .arg(&f.cache)
            .arg("--out")
            .arg(out)
            .args(extra)
            .env("NODEIMG_QEMU", "/nonexistent/qemu-system-x86_64"),
    );
    let (_, stderr) = out_str(&o);
    assert!(!stderr.contains("panicked"), "{stderr}");
    (o.status.code(), stderr)
}

fn one_error(stderr: &str) {
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
}

#[test]
fn a_lock_without_the_suite_is_refused_naming_what_to_do() {
    let f = fixture();
    let (code, _, stderr) = dry_run(&f, &["--conformance", "quick"]);
    assert_eq!(code, Some(1), "{stderr}");
    one_error(&stderr);
    for want in [
        "node.lock",
        "no test-suite artifact",
        "conformance = \"quick\"",
        "nodeimg fetch",
    ] {
        assert!(stderr.contains(want), "no {want:?} in {stderr}");
    }
    // The spec's key asks for it the same way; `--conformance off` overrides the spec.
    let text = std::fs::read_to_string(&f.spec).unwrap();
    std::fs::write(
        &f.spec,
        text.replace(
            "version = \"v1.20.2\"\n",
            "version = \"v1.20.2\"\nconformance = \"full\"\n",
        ),
    )
    .unwrap();
    let (code, _, stderr) = dry_run(&f, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("no test-suite artifact"), "{stderr}");
    let (code, stdout, stderr) = dry_run(&f, &["--conformance", "off"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!stdout.contains("conformance"), "{stdout}");
}

#[test]
fn the_plan_shows_the_run_and_a_suite_of_another_version_is_refused() {
    let f = fixture();
    add_tests(&f, "v1.20.2", "kubernetes/test/bin/e2e_node.test");
    let (code, stdout, stderr) = dry_run(&f, &["--conformance", "full"]);
    assert_eq!(code, Some(0), "{stderr}");
    for step in [
        "conformance-node-reset",
        "conformance-disk-mount",
        "conformance-images",
        "conformance-kubelet",
        "conformance-suite",
    ] {
        assert!(stdout.contains(step), "no {step} in {stdout}");
    }
    let g = fixture();
    add_tests(&g, "v1.21.0", "kubernetes/test/bin/e2e_node.test");
    let (code, _, stderr) = dry_run(&g, &["--conformance", "quick"]);
    assert_eq!(code, Some(1), "{stderr}");
    one_error(&stderr);
    assert!(
        stderr.contains(
            "test-suite kubernetes-test is for Kubernetes \"v1.21.0\" but the spec pins v1.20.2"
        ),
        "{stderr}"
    );
}

#[test]
fn nodeimg_conformance_names_a_tarball_without_the_suite_and_a_corrupt_image() {
    let f = fixture();
    add_tests(&f, "v1.20.2", "kubernetes/test/bin/e2e.test");
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("node.raw");
    std::fs::write(&image, vec![0u8; 2 << 20]).unwrap();
    let out = dir.path().join("reports");
    let (code, stderr) = conformance(&f, &image, &out, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    one_error(&stderr);
    assert!(
        stderr.contains("no kubernetes/test/bin/e2e_node.test in it: not Kubernetes' test tarball"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("qemu"),
        "QEMU was looked for first: {stderr}"
    );
    // Only the log of what ran (no report, no work directory).
    assert_eq!(
        listing(&out),
        ["conformance.log"],
        "left in {}",
        out.display()
    );

    // A test image whose cached bytes changed: named with its artifact, before anything.
    let g = fixture();
    add_tests(&g, "v1.20.2", "kubernetes/test/bin/e2e_node.test");
    let lock = std::fs::read_to_string(&g.lock).unwrap();
    let sha = lock
        .split("name = \"test-busybox\"")
        .nth(1)
        .and_then(|rest| rest.split("sha256 = \"").nth(1))
        .map(|s| s[..64].to_owned())
        .unwrap();
    std::fs::write(
        g.cache.join("cas/sha256").join(&sha),
        b"busybox image archivX",
    )
    .unwrap();
    let (code, stderr) = conformance(&g, &image, &out, &["--full"]);
    assert_eq!(code, Some(1), "{stderr}");
    one_error(&stderr);
    assert!(stderr.contains("test-busybox"), "{stderr}");

    let (code, stderr) = conformance(&f, &image, &out, &["--quick", "--full"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("--quick and --full exclude each other"),
        "{stderr}"
    );
}
