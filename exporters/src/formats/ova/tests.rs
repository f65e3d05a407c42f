//! OVA tests: GNU tar, xmllint against the DMTF schema, sha256 of the members, and this
//! crate's reader (including damaged archives).

use std::path::{Path, PathBuf};

use super::*;
use crate::format::Firmware;
use crate::formats::vmdk::tests::{TestDisk, export_family, tool};
use diskimg::image::DiskImage;
use diskimg::ova::{list_members, open_disk, read_text_member};
use diskimg::vmdk::VmdkImage;

const SCHEMA: &str = "/work/shared/data/ovf/xsd/wrapper.xsd";

fn sample_disk() -> TestDisk {
    let size = (2 << 20) + 512;
    let bytes: Vec<u8> = (0..150_000u32)
        .map(|i| u8::try_from((i * 13 + i / 700) % 251).unwrap())
        .collect();
    TestDisk {
        size,
        extents: vec![(4096, bytes), (size - 512, b"OVA!".repeat(128))],
    }
}

fn options(name: &str) -> ExportOptions {
    let mut options = ExportOptions::new(name);
    options.formats = vec![Format::Ova, Format::Aws];
    options.source_date_epoch = 1_700_000_000;
    options.properties = vec![
        ("kubernetes.version".into(), "v1.30.2".into()),
        ("note".into(), "a <b> & \"c\" 'd'".into()),
    ];
    options
}

/// Exports the sample; returns (ova path, vmdk path) in `dir`.
fn export_sample(dir: &Path, options: &ExportOptions) -> (PathBuf, PathBuf) {
    let out = export_family(dir, &sample_disk(), options);
    let find = |c: &str| {
        out.iter()
            .find(|o| o.container == c)
            .map(|o| o.path.clone())
            .unwrap()
    };
    (find("ova"), find("vmdk"))
}

#[test]
fn ova_is_plain_ustar_with_valid_ovf_and_matching_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let (ova, vmdk) = export_sample(dir.path(), &options("node"));
    let bytes = std::fs::read(&ova).unwrap();
    assert_eq!(&bytes[257..265], b"ustar\x0000");
    assert_eq!(bytes.len() % 10240, 0);
    assert!(!bytes.windows(14).any(|w| w == b"././@PaxHeader"));
    let members = list_members(&ova).unwrap();
    let names: Vec<&str> = members.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["node.ovf", "node.mf", "node.vmdk"]);

    let ova_s = ova.to_str().unwrap();
    if let Some(out) = tool("tar", &["-tvf", ova_s]) {
        assert!(out.status.success());
        let listing = String::from_utf8(out.stdout).unwrap();
        let listed: Vec<&str> = listing
            .lines()
            .map(|l| l.rsplit(' ').next().unwrap())
            .collect();
        assert_eq!(listed, ["node.ovf", "node.mf", "node.vmdk"], "{listing}");
        assert!(
            listing
                .lines()
                .all(|l| l.starts_with("-rw-r--r-- root/root")),
            "{listing}"
        );
        assert!(
            listing.contains("2023-11-14"),
            "mtime from SOURCE_DATE_EPOCH: {listing}"
        );
        let x = dir.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let out = tool("tar", &["-xf", ova_s, "-C", x.to_str().unwrap()]).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::read(x.join("node.vmdk")).unwrap() == std::fs::read(&vmdk).unwrap(),
            "extracted vmdk differs"
        );
        let ovf_path = x.join("node.ovf");
        let ovf_text = std::fs::read_to_string(&ovf_path).unwrap();
        let vmdk_size = std::fs::metadata(&vmdk).unwrap().len();
        assert!(ovf_text.contains(&format!("ovf:size=\"{vmdk_size}\"")));
        assert!(ovf_text.contains(&format!("ovf:capacity=\"{}\"", sample_disk().size)));
        assert!(
            ovf_text.contains(
                "ovf:key=\"kubernetes.version\" ovf:type=\"string\" ovf:value=\"v1.30.2\""
            )
        );
        assert!(ovf_text.contains("ovf:value=\"a &lt;b&gt; &amp; &quot;c&quot; &apos;d&apos;\""));
        assert!(ovf_text.contains("vmw:value=\"efi\""));
        if let Some(out) = tool(
            "xmllint",
            &["--noout", "--schema", SCHEMA, ovf_path.to_str().unwrap()],
        ) {
            let said = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success() && said.contains("validates"),
                "xmllint: {said}"
            );
        }
        let mf = std::fs::read_to_string(x.join("node.mf")).unwrap();
        let paths = ["node.ovf", "node.vmdk"].map(|n| x.join(n).to_string_lossy().into_owned());
        if let Some(out) = tool("sha256sum", &paths.each_ref().map(String::as_str)) {
            let sums = String::from_utf8(out.stdout).unwrap();
            let expect: String = sums
                .lines()
                .map(|l| {
                    let (hex, path) = l.split_once("  ").unwrap();
                    format!(
                        "SHA256({})= {hex}\n",
                        Path::new(path).file_name().unwrap().to_string_lossy()
                    )
                })
                .collect();
            assert_eq!(mf, expect);
        }
    }
    let mut image = open_disk(&ova).unwrap();
    let disk = sample_disk();
    let mut all = vec![0u8; usize::try_from(disk.size).unwrap()];
    image.read_at(0, &mut all).unwrap();
    assert!(
        all == disk.bytes(0, disk.size),
        "disk read from the OVA differs"
    );
    assert!(image.descriptor().contains("RW 4097 SPARSE \"node.vmdk\""));
}

#[test]
fn bios_ovf_validates_too() {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = options("bios-vm");
    opts.firmware = Firmware::Bios;
    opts.properties.clear();
    let (ova, _) = export_sample(dir.path(), &opts);
    let members = list_members(&ova).unwrap();
    let ovf = read_text_member(&ova, &members[0]).unwrap();
    assert!(ovf.contains("vmw:value=\"bios\"") && !ovf.contains("efi"));
    let path = dir.path().join("bios-vm.ovf");
    std::fs::write(&path, ovf).unwrap();
    if let Some(out) = tool(
        "xmllint",
        &["--noout", "--schema", SCHEMA, path.to_str().unwrap()],
    ) {
        assert!(
            out.status.success(),
            "xmllint: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn two_runs_give_identical_ova_and_json() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    export_sample(a.path(), &options("d"));
    export_sample(b.path(), &options("d"));
    for file in ["d.ova", "d.vmdk", "aws-import.json", "register-image.json"] {
        let (x, y) = (
            std::fs::read(a.path().join(file)).unwrap(),
            std::fs::read(b.path().join(file)).unwrap(),
        );
        assert!(x == y, "{file} not reproducible");
    }
}

#[test]
fn damaged_ovas_are_refused_with_the_file_named() {
    let dir = tempfile::tempdir().unwrap();
    let (ova, _) = export_sample(dir.path(), &options("n"));
    let good = std::fs::read(&ova).unwrap();
    let members = list_members(&ova).unwrap();
    let vmdk_at = usize::try_from(members[2].data_offset).unwrap();
    let bad = dir.path().join("bad.ova");
    let err = |bytes: &[u8]| -> String {
        std::fs::write(&bad, bytes).unwrap();
        let msg = open_disk(&bad).expect_err("damage accepted").to_string();
        assert!(msg.contains("bad.ova"), "{msg}");
        msg
    };
    let mut b = good.clone();
    b[vmdk_at + 70_000] ^= 1;
    let msg = err(&b);
    assert!(
        msg.contains("n.vmdk") && msg.contains("does not match n.mf"),
        "{msg}"
    );
    let mut b = good.clone();
    b[257] = b'X';
    assert!(err(&b).contains("ustar magic"));
    let mut b = good.clone();
    b[0] = b'm';
    assert!(err(&b).contains("checksum"));
    assert!(err(&good[..vmdk_at + 1000]).contains("runs past the end"));
    assert!(
        err(&good[..good.len() - 10240]).contains("runs past the end")
            || err(&good[..good.len() - 10240]).contains("zero blocks")
    );
    // The OVF's ovf:size no longer matches (manifest updated so only the size is wrong).
    let ovf = read_text_member(&ova, &members[0]).unwrap();
    let size = members[2].size;
    let wrong = ovf.replace(
        &format!("ovf:size=\"{size}\""),
        &format!(
            "ovf:size=\"{:0width$}\"",
            size + 1,
            width = size.to_string().len()
        ),
    );
    assert_eq!(wrong.len(), ovf.len());
    let mut b = good.clone();
    b[512..512 + ovf.len()].copy_from_slice(wrong.as_bytes());
    let mf_at = usize::try_from(members[1].data_offset).unwrap();
    let mf = read_text_member(&ova, &members[1]).unwrap();
    let old = hex::encode(Sha256::digest(ovf.as_bytes()));
    let new = hex::encode(Sha256::digest(wrong.as_bytes()));
    b[mf_at..mf_at + mf.len()].copy_from_slice(mf.replace(&old, &new).as_bytes());
    assert!(err(&b).contains("ovf:size"));
    // A PAX header in front of everything.
    let mut h = ustar::header("PaxHeader", 0, 0).unwrap();
    h[156] = b'x';
    h[148..156].copy_from_slice(b"        ");
    let sum = ustar::checksum(&h);
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    let b = [&h[..], &good[..]].concat();
    assert!(err(&b).contains("PAX"));
    assert!(err(&[0u8; 1024]).contains("found 0 members"));
}

#[test]
fn ova_reader_never_panics_on_damaged_headers() {
    let dir = tempfile::tempdir().unwrap();
    let (ova, _) = export_sample(dir.path(), &options("f"));
    let good = std::fs::read(&ova).unwrap();
    let bad = dir.path().join("fuzz.ova");
    let mut x = 0x9e37_79b9u32;
    for round in 0..300usize {
        let mut b = good.clone();
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let at = usize::try_from(x).unwrap() % 1536 + (round % 3) * 512 * (round % 5);
        let at = at.min(b.len() - 1);
        b[at] = x.to_le_bytes()[1];
        if round % 11 == 0 {
            b.truncate(usize::try_from(x).unwrap() % b.len());
        }
        std::fs::write(&bad, &b).unwrap();
        let _ = open_disk(&bad);
    }
}

#[test]
fn full_export_through_the_pipeline_reads_back_to_the_content_digest() {
    let dir = tempfile::tempdir().unwrap();
    let disk = sample_disk();
    let raw = dir.path().join("input.raw");
    disk.write_raw(&raw);
    let out = dir.path().join("out");
    let report = crate::export(&raw, &out, &options("e2e"), &crate::NoProgress).unwrap();
    let files: Vec<&str> = report
        .manifest
        .artifacts
        .iter()
        .map(|a| a.file.as_str())
        .collect();
    for f in [
        "e2e.ova",
        "e2e.vmdk",
        "aws-import.json",
        "register-image.json",
    ] {
        assert!(files.contains(&f), "{f} missing from {files:?}");
    }
    let expect = report.manifest.content_sha256.clone();
    let mut from_ova = open_disk(&out.join("e2e.ova")).unwrap();
    assert_eq!(
        hex::encode(diskimg::image::content_digest(&mut from_ova, |_| {}).unwrap()),
        expect
    );
    let mut vmdk = VmdkImage::open(&out.join("e2e.vmdk")).unwrap();
    assert_eq!(
        hex::encode(diskimg::image::content_digest(&mut vmdk, |_| {}).unwrap()),
        expect
    );
    let (cid, _) = crate::formats::vmdk::descriptor_text::content_ids(
        &hex::decode(&expect).unwrap().try_into().unwrap(),
    );
    assert!(vmdk.descriptor().contains(&format!("CID={cid:08x}")));
}
