//! Bad input: one clear error naming the path, and nothing half-written left behind.

use std::path::Path;

use exporters::{ExportOptions, Format, NoProgress};

fn try_export(disk: &Path, out: &Path) -> String {
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Raw, Format::Vhd];
    let err = exporters::export(disk, out, &options, &NoProgress).expect_err("bad input accepted");
    let text = err.to_string();
    assert!(text.lines().count() == 1, "error is not one line: {text}");
    if out.is_dir() {
        let left: Vec<_> = std::fs::read_dir(out)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            left.is_empty(),
            "files left behind after a failed export: {left:?}"
        );
    }
    text
}

#[test]
fn missing_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.raw");
    let text = try_export(&missing, &dir.path().join("out"));
    assert!(
        text.contains("nope.raw") && text.contains("No such file"),
        "{text}"
    );
}

#[test]
fn a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = try_export(dir.path(), &dir.path().join("out"));
    assert!(text.contains("is a directory"), "{text}");
}

#[test]
fn an_empty_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.raw");
    std::fs::write(&empty, b"").unwrap();
    let text = try_export(&empty, &dir.path().join("out"));
    assert!(
        text.contains("empty.raw") && text.contains("empty"),
        "{text}"
    );
}

#[test]
fn a_size_off_the_sector_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let odd = dir.path().join("odd.raw");
    std::fs::write(&odd, vec![1u8; 1000]).unwrap();
    let text = try_export(&odd, &dir.path().join("out"));
    assert!(
        text.contains("odd.raw") && text.contains("multiple of 512"),
        "{text}"
    );
}

#[test]
fn an_output_path_that_is_a_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("d.raw");
    std::fs::write(&disk, vec![1u8; 1 << 20]).unwrap();
    let file_out = dir.path().join("out-file");
    std::fs::write(&file_out, b"x").unwrap();
    let text = try_export(&disk, &file_out);
    assert!(
        text.contains("out-file") && text.contains("not a directory"),
        "{text}"
    );
}

#[test]
fn an_output_directory_that_cannot_be_created_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("d.raw");
    std::fs::write(&disk, vec![1u8; 1 << 20]).unwrap();
    // /proc refuses new directories even for root.
    let text = try_export(&disk, Path::new("/proc/nodeimg-test-out"));
    assert!(text.contains("/proc/nodeimg-test-out"), "{text}");
}

#[test]
fn the_input_is_never_an_output() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("node.raw");
    std::fs::write(&disk, vec![1u8; 1 << 20]).unwrap();
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Raw];
    let err = exporters::export(&disk, dir.path(), &options, &NoProgress).unwrap_err();
    assert!(err.to_string().contains("node.raw"), "{err}");
    assert_eq!(std::fs::read(&disk).unwrap(), vec![1u8; 1 << 20]);
}

#[test]
fn a_manifest_that_is_not_json_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("manifest.json"), b"{ truncated").unwrap();
    std::fs::write(dir.path().join("SHA256SUMS"), b"").unwrap();
    let err = exporters::verify::verify(dir.path(), &NoProgress)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("manifest.json") && err.contains("line 1"),
        "{err}"
    );
}

#[test]
fn pad_refuses_a_disk_whose_primary_gpt_is_damaged_instead_of_dropping_the_backup() {
    use std::os::unix::fs::FileExt;
    let dir = tempfile::tempdir().unwrap();
    let disk = crate::common::gpt_disk(dir.path(), 20 << 20);
    let f = std::fs::OpenOptions::new().write(true).open(&disk).unwrap();
    f.write_all_at(&[0u8; 512], 512).unwrap();
    drop(f);
    let mut options = ExportOptions::new("node");
    options.formats = vec![Format::Gce];
    options.pad = true;
    let out = dir.path().join("out");
    let err = exporters::export(&disk, &out, &options, &NoProgress)
        .expect_err("padded a disk whose GPT lives only in its backup")
        .to_string();
    assert!(
        err.contains("golden.raw")
            && err.contains("primary GPT header (LBA 1) is damaged")
            && err.contains("repair the table first"),
        "{err}"
    );
}
