//! `nodeimg boot` on input it must refuse before any VM starts: one error naming the file, exit
//! 1, nothing left in the work directory. (Booting real guests is in the e2e `vm-tests`.)

use std::path::Path;

use super::{listing, nodeimg, out_str};

fn boot_fails_naming(work: &Path, image: &Path, wanted: &[&str]) {
    let o = nodeimg()
        .arg("boot")
        .arg(image)
        .arg("--work-dir")
        .arg(work)
        .args(["--accel", "tcg", "--exec", "true"])
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    for w in wanted {
        assert!(stderr.contains(w), "no {w:?} in {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        listing(work),
        Vec::<String>::new(),
        "left behind in the work dir"
    );
}

#[test]
fn boot_refuses_a_missing_image() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let image = dir.path().join("no-such-image.qcow2");
    boot_fails_naming(&work, &image, &["no-such-image.qcow2", "No such file"]);
}

#[test]
fn boot_refuses_a_vmdk_and_a_tiny_file_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let vmdk = dir.path().join("disk.vmdk");
    let mut head = b"KDMV\x03\0\0\0".to_vec();
    head.resize(4 << 20, 0);
    std::fs::write(&vmdk, &head).unwrap();
    boot_fails_naming(&work, &vmdk, &["disk.vmdk", "VMDK", "not a qcow2 or raw"]);
    let tiny = dir.path().join("tiny.raw");
    std::fs::write(&tiny, b"not a disk").unwrap();
    boot_fails_naming(&work, &tiny, &["tiny.raw", "not a multiple of 512"]);
    std::fs::write(&tiny, [0u8; 4096]).unwrap();
    boot_fails_naming(&work, &tiny, &["tiny.raw", "too small"]);
}

#[test]
fn boot_refuses_a_missing_work_dir() {
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("x.raw");
    std::fs::write(&image, vec![0u8; 2 << 20]).unwrap();
    let o = nodeimg()
        .arg("boot")
        .arg(&image)
        .args(["--work-dir", "/nonexistent/nodeimg-work"])
        .output()
        .unwrap();
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("/nonexistent/nodeimg-work"), "{stderr}");
}
