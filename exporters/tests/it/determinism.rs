//! Two exports of the same disk are byte-identical (one of them a background export, its
//! threads at a lower priority); SOURCE_DATE_EPOCH changes timestamps only.

use std::collections::BTreeMap;

use exporters::{ExportOptions, Format, NoProgress};

use crate::common::gpt_disk;

fn export_all(
    disk: &std::path::Path,
    out: &std::path::Path,
    epoch: u64,
    background: bool,
) -> BTreeMap<String, Vec<u8>> {
    let mut options = ExportOptions::new("node");
    options.formats = Format::ALL.to_vec();
    options.compress = true;
    options.source_date_epoch = epoch;
    options.background = background;
    exporters::export(disk, out, &options, &NoProgress).unwrap();
    std::fs::read_dir(out)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn two_exports_are_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), 1 << 30);
    let a = export_all(&disk, &dir.path().join("a"), 1_700_000_000, false);
    let b = export_all(&disk, &dir.path().join("b"), 1_700_000_000, true);
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    assert!(
        a.len() >= 12,
        "expected every artifact, got {:?}",
        a.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &a {
        assert!(bytes == &b[name], "{name} differs between two exports");
    }
}

#[test]
fn source_date_epoch_moves_timestamps_not_content() {
    let dir = tempfile::tempdir().unwrap();
    let disk = gpt_disk(dir.path(), 1 << 30);
    let a = export_all(&disk, &dir.path().join("a"), 1_000_000_000, false);
    let b = export_all(&disk, &dir.path().join("b"), 1_700_000_000, false);
    let manifest = |m: &BTreeMap<String, Vec<u8>>| -> serde_json::Value {
        serde_json::from_slice(&m["manifest.json"]).unwrap()
    };
    assert_eq!(
        manifest(&a)["content_sha256"],
        manifest(&b)["content_sha256"]
    );
    assert_ne!(
        a["node.vhd"], b["node.vhd"],
        "VHD footer timestamp ignores SOURCE_DATE_EPOCH"
    );
    assert_ne!(
        a["node.ova"], b["node.ova"],
        "OVA tar mtimes ignore SOURCE_DATE_EPOCH"
    );
    assert_eq!(a["node.qcow2"], b["node.qcow2"], "qcow2 has no timestamp");
}
