//! Size rules: refused with the rule and the nearest valid sizes, or `--pad` to a whole GiB
//! with the backup GPT moved to the new end (sfdisk --verify clean).

use std::process::Command;

use exporters::{Error, ExportOptions, Format, NoProgress};

use crate::common::{gpt_disk, have, run_ok};

#[test]
fn a_size_that_breaks_gce_is_refused_naming_the_rule() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), (64 << 20) + 512 * 8);
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Gce];
    let err = exporters::export(&disk, &dir.path().join("out"), &options, &NoProgress).unwrap_err();
    assert!(matches!(err, Error::SizeRule { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("whole number of GiB")
            && text.contains("1073741824")
            && text.contains("--pad"),
        "{text}"
    );
    assert!(!dir.path().join("out").join("manifest.json").exists());
}

#[test]
fn a_size_that_breaks_azure_is_refused_with_the_nearest_mib() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), (64 << 20) + 4096);
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Vhd];
    let text = exporters::export(&disk, &dir.path().join("out"), &options, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("whole number of MiB")
            && text.contains(&(64u64 << 20).to_string())
            && text.contains(&(65u64 << 20).to_string()),
        "{text}"
    );
}

#[test]
fn pad_grows_to_a_gib_and_keeps_the_gpt_valid() {
    let dir = tempfile::tempdir().unwrap();
    let size = (48 << 20) + 512 * 3;
    let disk = gpt_disk(dir.path(), size);
    let before = std::fs::read(&disk).unwrap();
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Raw, Format::Vhd, Format::Gce, Format::Qcow2];
    options.pad = true;
    let out = dir.path().join("out");
    let report = exporters::export(&disk, &out, &options, &NoProgress).unwrap();
    assert_eq!(
        std::fs::read(&disk).unwrap(),
        before,
        "the input disk was modified"
    );
    assert_eq!(report.manifest.virtual_size, 1 << 30);
    assert_eq!(report.manifest.padded_from, Some(size));
    let pad = report.pad.expect("pad outcome");
    assert!(pad.gpt_relocated);
    let raw = out.join("node.raw");
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), 1 << 30);
    // The backup header now sits in the last sector of the padded disk.
    let bytes = std::fs::read(&raw).unwrap();
    assert_eq!(&bytes[(1 << 30) - 512..(1 << 30) - 504], b"EFI PART");
    // The old backup header is gone.
    let old = usize::try_from(size).unwrap() - 512;
    assert_ne!(
        &bytes[old..old + 8],
        b"EFI PART",
        "stale backup GPT left at the old end"
    );
    let found = diskimg::inspect::inspect(&raw).unwrap();
    let gpt = found.gpt.expect("gpt");
    assert_eq!(gpt.backup_lba, (1u64 << 30) / 512 - 1);
    assert_eq!(gpt.partitions.len(), 2);
    exporters::verify::verify(&out, &NoProgress).unwrap();
    if have("sfdisk") {
        let verify = run_ok(Command::new("sfdisk").arg("--verify").arg(&raw));
        assert!(verify.contains("No errors detected"), "{verify}");
    }
}

#[test]
fn pad_refuses_a_malformed_gpt_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), 20 << 20);
    // Partition entry size 256 at LBA 1 offset 84: the gpt crate would assert on it.
    let mut f = fixtures::layout::open_rw(&disk).unwrap();
    use std::io::{Seek, SeekFrom, Write};
    f.seek(SeekFrom::Start(512 + 84)).unwrap();
    f.write_all(&256u32.to_le_bytes()).unwrap();
    drop(f);
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Gce];
    options.pad = true;
    let err = exporters::export(&disk, &dir.path().join("out"), &options, &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("golden.raw") && err.contains("entry size 256"),
        "{err}"
    );
    // inspect reads the intact backup header instead, says why, and does not panic either.
    let found = diskimg::inspect::inspect(&disk).unwrap();
    assert_eq!(found.gpt.map(|g| g.header), Some("backup"));
    assert!(
        found.warnings[0].contains("entry size 256"),
        "{:?}",
        found.warnings
    );
}

#[test]
fn grow_in_place_moves_the_backup_gpt_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let size = 40 << 20;
    let disk = gpt_disk(dir.path(), size);
    let before = std::fs::read(&disk).unwrap();
    let outcome = exporters::pad::grow_in_place(&disk, 3 << 30).unwrap();
    assert!(outcome.gpt_relocated);
    assert_eq!(std::fs::metadata(&disk).unwrap().len(), 3 << 30);
    let found = diskimg::inspect::inspect(&disk).unwrap();
    let gpt = found.gpt.expect("gpt");
    assert_eq!(gpt.backup_lba, (3u64 << 30) / 512 - 1);
    assert_eq!(gpt.partitions.len(), 2);
    // The grown tail is a hole: allocation barely changes.
    assert!(found.allocated_bytes < u64::try_from(before.len()).unwrap() + (1 << 20));
    // The partitions' bytes are untouched (everything between the primary array and the old
    // backup array).
    let after = std::fs::read(&disk).unwrap();
    let old_array = usize::try_from(size).unwrap() - 33 * 512;
    assert_eq!(after[34 * 512..old_array], before[34 * 512..old_array]);
    if have("sfdisk") {
        let verify = run_ok(Command::new("sfdisk").arg("--verify").arg(&disk));
        assert!(verify.contains("No errors detected"), "{verify}");
    }
    // Shrinking is refused, naming the file.
    let err = exporters::pad::grow_in_place(&disk, 1 << 30)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("golden.raw") && err.contains("cannot grow"),
        "{err}"
    );
}
