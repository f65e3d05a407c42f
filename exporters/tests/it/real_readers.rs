//! Every format read back by a real, independent reader.

use std::process::Command;

use exporters::Format;

use crate::common::*;

const SIZE: u64 = 1 << 30;

#[test]
fn qemu_img_agrees_on_qcow2_plain_and_compressed() {
    if !have("qemu-img") {
        return;
    }
    for compress in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let disk = gpt_disk(dir.path(), SIZE);
        let out = dir.path().join("out");
        let report = export(&disk, &out, &[Format::Qcow2], compress);
        let qcow2 = artifact(&report, &out, "qcow2");
        run_ok(
            Command::new("qemu-img")
                .args(["check", "-f", "qcow2"])
                .arg(&qcow2),
        );
        run_ok(
            Command::new("qemu-img")
                .args(["compare", "-f", "raw", "-F", "qcow2"])
                .arg(&disk)
                .arg(&qcow2),
        );
        assert_eq!(qemu_virtual_size("qcow2", &qcow2), SIZE);
        let len = std::fs::metadata(&qcow2).unwrap().len();
        assert!(
            len < 8 << 20,
            "qcow2 of a mostly empty disk is {len} bytes: zero clusters were allocated"
        );
    }
}

#[test]
fn qemu_img_agrees_on_the_fixed_vhd() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), SIZE);
    let out = dir.path().join("out");
    let report = export(&disk, &out, &[Format::Vhd], false);
    let vhd = artifact(&report, &out, "vhd");
    run_ok(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "vpc"])
            .arg(&disk)
            .arg(&vhd),
    );
    assert_eq!(qemu_virtual_size("vpc", &vhd), SIZE);
    let len = std::fs::metadata(&vhd).unwrap().len();
    assert_eq!(len, SIZE + 512, "fixed VHD = disk + footer");
    assert_eq!(
        (len - 512) % (1 << 20),
        0,
        "Azure: size minus footer is whole MiB"
    );
}

#[test]
fn qemu_img_agrees_on_the_aws_vmdk() {
    if !have("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), SIZE);
    let out = dir.path().join("out");
    let report = export(&disk, &out, &[Format::Aws], false);
    let vmdk = artifact(&report, &out, "vmdk");
    run_ok(
        Command::new("qemu-img")
            .args(["check", "-f", "vmdk"])
            .arg(&vmdk),
    );
    run_ok(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "vmdk"])
            .arg(&disk)
            .arg(&vmdk),
    );
    assert_eq!(qemu_virtual_size("vmdk", &vmdk), SIZE);
    let info = run_ok(
        Command::new("qemu-img")
            .args(["info", "--output=json"])
            .arg(&vmdk),
    );
    assert!(
        info.contains("streamOptimized"),
        "not streamOptimized: {info}"
    );
    let register: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("register-image.json")).unwrap())
            .unwrap();
    assert_eq!(register["BootMode"], "uefi");
    assert_eq!(register["RootDeviceName"], "/dev/xvda");
    assert_eq!(register["ImdsSupport"], "v2.0");
    assert_eq!(register["EnaSupport"], true);
    let import: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("aws-import.json")).unwrap())
            .unwrap();
    assert_eq!(import["Format"], "VMDK");
}

#[test]
fn the_ova_is_ustar_in_order_with_a_valid_ovf_and_manifest() {
    if !have("qemu-img") || !have("tar") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), SIZE);
    let out = dir.path().join("out");
    let report = export(&disk, &out, &[Format::Ova], false);
    let ova = artifact(&report, &out, "ova");
    let head = std::fs::read(&ova).unwrap();
    assert_eq!(&head[257..263], b"ustar\0", "first header is not ustar");
    assert!(
        !head.windows(14).any(|w| w == b"././@PaxHeader"),
        "PAX header found"
    );
    let listing = run_ok(Command::new("tar").arg("-tf").arg(&ova));
    assert_eq!(
        listing.lines().collect::<Vec<_>>(),
        ["node.ovf", "node.mf", "node.vmdk"]
    );
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run_ok(Command::new("tar").arg("-xf").arg(&ova).arg("-C").arg(&x));
    run_ok(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "vmdk"])
            .arg(&disk)
            .arg(x.join("node.vmdk")),
    );
    run_ok(
        Command::new("qemu-img")
            .args(["check", "-f", "vmdk"])
            .arg(x.join("node.vmdk")),
    );
    let mf = std::fs::read_to_string(x.join("node.mf")).unwrap();
    for member in ["node.ovf", "node.vmdk"] {
        let sum = run_ok(Command::new("sha256sum").arg(x.join(member)));
        let hex = sum.split_whitespace().next().unwrap();
        assert!(
            mf.contains(&format!("SHA256({member})= {hex}\n")),
            "{member} not in .mf as {hex}:\n{mf}"
        );
    }
    let ovf = std::fs::read_to_string(x.join("node.ovf")).unwrap();
    let vmdk_len = std::fs::metadata(x.join("node.vmdk")).unwrap().len();
    assert!(
        ovf.contains(&format!("ovf:size=\"{vmdk_len}\"")),
        "ovf:size is not the vmdk file size"
    );
    assert!(
        ovf.contains("vmx-15") && ovf.contains("VmxNet3"),
        "hardware not as documented"
    );
    assert!(
        ovf.contains("vmw:value=\"efi\""),
        "UEFI firmware setting missing"
    );
    assert!(ovf.contains("v1.30.2"), "product property missing");
    let xsd = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/ovf/xsd/wrapper.xsd");
    if !xsd.exists() {
        println!("SKIP: OVF schema not found at {}", xsd.display());
    } else if have("xmllint") {
        run_ok(
            Command::new("xmllint")
                .args(["--noout", "--schema"])
                .arg(&xsd)
                .arg(x.join("node.ovf")),
        );
    }
}

#[test]
fn gnu_tar_lists_and_extracts_the_gce_disk_raw() {
    if !have("tar") || !have("gzip") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), SIZE);
    let out = dir.path().join("out");
    let report = export(&disk, &out, &[Format::Gce], false);
    let gz = artifact(&report, &out, "tar.gz");
    run_ok(Command::new("gzip").arg("-t").arg(&gz));
    let listing = run_ok(Command::new("tar").arg("-tvzf").arg(&gz));
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), 1, "{listing}");
    assert!(
        lines[0].ends_with(" disk.raw") && lines[0].contains(&SIZE.to_string()),
        "{listing}"
    );
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    run_ok(Command::new("tar").arg("-xSzf").arg(&gz).arg("-C").arg(&x));
    run_ok(Command::new("cmp").arg(&disk).arg(x.join("disk.raw")));
}
