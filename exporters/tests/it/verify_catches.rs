//! `verify` catches a flipped byte in every artifact kind, both through the file digest and,
//! with the manifest forged to match, through the format readers and the content digest.

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use exporters::{ExportOptions, Format, Manifest, NoProgress};
use sha2::{Digest, Sha256};

use crate::common::gpt_disk;

fn flip(path: &Path, offset: u64) {
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8; 1];
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.read_exact(&mut b).unwrap();
    b[0] ^= 0x5a;
    f.seek(SeekFrom::Start(offset)).unwrap();
    f.write_all(&b).unwrap();
}

/// Rewrites the manifest and SHA256SUMS so the corrupted file's digest and size "match".
fn forge_manifest(out: &Path, file: &str) {
    let mut manifest = Manifest::load(out).unwrap();
    let bytes = std::fs::read(out.join(file)).unwrap();
    for a in manifest.artifacts.iter_mut().filter(|a| a.file == file) {
        a.sha256 = hex::encode(Sha256::digest(&bytes));
        a.size = bytes.len() as u64;
    }
    std::fs::write(out.join("manifest.json"), manifest.to_json()).unwrap();
    std::fs::write(out.join("SHA256SUMS"), manifest.sums()).unwrap();
}

#[test]
fn a_flipped_byte_in_any_artifact_fails_verify() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), 1 << 30);
    let mut options = ExportOptions::new("node");
    options.formats = Format::ALL.to_vec();
    let out = dir.path().join("out");
    let report = exporters::export(&disk, &out, &options, &NoProgress).unwrap();
    exporters::verify::verify(&out, &NoProgress).expect("fresh export verifies");

    // Where a flip lands in content: 1 MiB + 100 is inside the ESP's patterned data.
    let data_offset = |container: &str, len: u64| match container {
        "raw" | "vhd" => (1 << 20) + 100,
        "qcow2" => 65536 + 100,
        _ => len / 2,
    };
    for artifact in report.manifest.disks() {
        for forged in [false, true] {
            let work = dir.path().join(format!("w-{}-{forged}", artifact.file));
            std::fs::create_dir(&work).unwrap();
            // Hard links for the untouched files; a sparse copy of the one to corrupt.
            for a in &report.manifest.artifacts {
                if a.file == artifact.file {
                    let status = std::process::Command::new("cp")
                        .arg("--sparse=always")
                        .arg(out.join(&a.file))
                        .arg(work.join(&a.file))
                        .status()
                        .unwrap();
                    assert!(status.success(), "cp {}", a.file);
                } else {
                    std::fs::hard_link(out.join(&a.file), work.join(&a.file)).unwrap();
                }
            }
            std::fs::copy(out.join("manifest.json"), work.join("manifest.json")).unwrap();
            std::fs::copy(out.join("SHA256SUMS"), work.join("SHA256SUMS")).unwrap();
            flip(
                &work.join(&artifact.file),
                data_offset(&artifact.container, artifact.size),
            );
            if forged {
                forge_manifest(&work, &artifact.file);
            }
            let err = exporters::verify::verify(&work, &NoProgress).expect_err(&format!(
                "verify accepted a flipped byte in {} (forged manifest: {forged})",
                artifact.file
            ));
            assert!(
                err.to_string().contains(&artifact.file),
                "error does not name {}: {err}",
                artifact.file
            );
        }
    }
    // The VHD footer is covered by its own checksum too.
    let vhd = out.join("node.vhd");
    let len = std::fs::metadata(&vhd).unwrap().len();
    flip(&vhd, len - 300);
    forge_manifest(&out, "node.vhd");
    let err = exporters::verify::verify(&out, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

/// A build's own files listed in the manifest are checked too, and listed in SHA256SUMS.
#[test]
fn build_files_in_the_manifest_are_verified() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), 64 << 20);
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Qcow2];
    let out = dir.path().join("out");
    exporters::export(&disk, &out, &options, &NoProgress).unwrap();
    let log = b"build log\n";
    std::fs::write(out.join("build.log"), log).unwrap();
    let mut manifest = Manifest::load(&out).unwrap();
    manifest.build = Some(exporters::manifest::BuildSection {
        files: vec![exporters::manifest::BuildFile {
            file: "build.log".into(),
            size: log.len() as u64,
            sha256: hex::encode(Sha256::digest(log)),
        }],
        record: serde_json::json!({"spec_sha256": "x"}),
    });
    std::fs::write(out.join("manifest.json"), manifest.to_json()).unwrap();
    std::fs::write(out.join("SHA256SUMS"), manifest.sums()).unwrap();
    assert!(manifest.sums().ends_with("  build.log\n"));
    assert_eq!(Manifest::load(&out).unwrap(), manifest);
    exporters::verify::verify(&out, &NoProgress).expect("verifies with build files");

    std::fs::write(out.join("build.log"), b"build lOg\n").unwrap();
    let e = exporters::verify::verify(&out, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("build.log") && e.contains("sha256"), "{e}");
    std::fs::remove_file(out.join("build.log")).unwrap();
    let e = exporters::verify::verify(&out, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(e.contains("build.log"), "{e}");
}
