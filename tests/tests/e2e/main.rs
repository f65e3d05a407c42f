//! End to end: a real ext4 golden disk made from host files, exported to every format by the
//! `nodeimg` binary, then read back by every independent reader there is on the machine
//! (qemu-img, GNU tar, gzip, sfdisk) and by `nodeimg verify` and `nodeimg inspect`.

// The build bench's pure parts (`cargo bench --bench build_phases` runs no tests of its own).
#[path = "../../benches/build_phases/logic_tests.rs"]
mod bench_logic;
#[cfg(feature = "vm-tests")]
mod vm_boot;
#[cfg(feature = "vm-tests")]
mod vm_build;
#[cfg(feature = "vm-tests")]
mod vm_cli;
#[cfg(feature = "vm-tests")]
mod vm_common;
#[cfg(feature = "vm-tests")]
mod vm_seal;
#[cfg(feature = "vm-tests")]
mod vm_upstream;

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::tools::{have, run_ok};

/// The `nodeimg` binary built next to this test (target/<profile>/nodeimg).
fn nodeimg() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = profile_dir.join("nodeimg");
    assert!(
        bin.exists(),
        "{} not built: run `cargo build -p builder` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

#[test]
fn an_ext4_golden_disk_reaches_every_cloud_format_intact() {
    if !have("qemu-img") || !have("mkfs.ext4") || !have("tar") || !have("sfdisk") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("golden.raw");
    fixtures::ext4::ext4_disk(
        &disk,
        1 << 30,
        &[
            PathBuf::from("/usr/share/common-licenses"),
            PathBuf::from("/usr/share/doc/git"),
        ],
    )
    .expect("ext4 fixture disk");
    let out = dir.path().join("out");
    let manifest = run_ok(
        Command::new(nodeimg())
            .arg("export")
            .arg(&disk)
            .arg("--out")
            .arg(&out)
            .args([
                "--name",
                "node",
                "--compress",
                "--json",
                "--property",
                "kubernetes=v1.30.2",
            ])
            .env("SOURCE_DATE_EPOCH", "1700000000"),
    );
    let manifest: serde_json::Value = serde_json::from_str(&manifest).expect("manifest json");
    let files: Vec<&str> = manifest["artifacts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["file"].as_str().unwrap())
        .collect();
    for f in [
        "node.raw",
        "node.qcow2",
        "node.vhd",
        "node.ova",
        "node.tar.gz",
        "node.vmdk",
        "register-image.json",
    ] {
        assert!(files.contains(&f), "{f} missing from {files:?}");
    }

    // qemu-img reads the same disk from every image format.
    for (fmt, file) in [
        ("raw", "node.raw"),
        ("qcow2", "node.qcow2"),
        ("vpc", "node.vhd"),
        ("vmdk", "node.vmdk"),
    ] {
        run_ok(
            Command::new("qemu-img")
                .args(["compare", "-f", "raw", "-F", fmt])
                .arg(&disk)
                .arg(out.join(file)),
        );
        let info = run_ok(
            Command::new("qemu-img")
                .args(["info", "-f", fmt, "--output=json"])
                .arg(out.join(file)),
        );
        let info: serde_json::Value = serde_json::from_str(&info).unwrap();
        assert_eq!(info["virtual-size"], 1u64 << 30, "{file}");
    }
    for (fmt, file) in [("qcow2", "node.qcow2"), ("vmdk", "node.vmdk")] {
        run_ok(
            Command::new("qemu-img")
                .args(["check", "-f", fmt])
                .arg(out.join(file)),
        );
    }
    // GNU tar extracts the same disk from the GCE tarball and the same VMDK from the OVA.
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run_ok(
        Command::new("tar")
            .arg("-xSzf")
            .arg(out.join("node.tar.gz"))
            .arg("-C")
            .arg(&x),
    );
    run_ok(Command::new("cmp").arg(&disk).arg(x.join("disk.raw")));
    run_ok(
        Command::new("tar")
            .arg("-xf")
            .arg(out.join("node.ova"))
            .arg("-C")
            .arg(&x),
    );
    run_ok(
        Command::new("cmp")
            .arg(out.join("node.vmdk"))
            .arg(x.join("node.vmdk")),
    );
    // The partition table is intact in the exported raw disk.
    assert!(
        run_ok(
            Command::new("sfdisk")
                .arg("--verify")
                .arg(out.join("node.raw"))
        )
        .contains("No errors detected")
    );
    // Our own readers agree, and inspect sees the partitions inside the qcow2.
    run_ok(Command::new(nodeimg()).arg("verify").arg(&out));
    let inspect = run_ok(
        Command::new(nodeimg())
            .arg("inspect")
            .arg(out.join("node.qcow2"))
            .arg("--json"),
    );
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["gpt"]["partitions"][1]["name"], "root");
    // sha256sum agrees with SHA256SUMS.
    run_ok(
        Command::new("sha256sum")
            .arg("-c")
            .arg("SHA256SUMS")
            .current_dir(&out),
    );
}
