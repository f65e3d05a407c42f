//! Shared helpers: test disks, running tools, skipping when a tool is missing.

use std::path::{Path, PathBuf};
use std::process::Command;

use exporters::{ExportOptions, Format, NoProgress};
use fixtures::layout::{Piece, write_sparse};

pub use fixtures::tools::{have, run_ok};

/// A small GPT disk of `size` bytes with patterned data, zero blocks and holes.
pub fn gpt_disk(dir: &Path, size: u64) -> PathBuf {
    let path = dir.join("golden.raw");
    fixtures::gpt_disk::patterned_gpt_disk(&path, size, 7).expect("making test disk");
    path
}

/// A disk with data exactly at `pieces`, holes elsewhere.
pub fn layout_disk(dir: &Path, size: u64, pieces: &[Piece]) -> PathBuf {
    let path = dir.join("layout.raw");
    write_sparse(&path, size, pieces).expect("making layout disk");
    path
}

/// Exports `disk` to `out` with `formats` (and `compress`).
pub fn export(
    disk: &Path,
    out: &Path,
    formats: &[Format],
    compress: bool,
) -> exporters::ExportReport {
    let mut options = ExportOptions::new("node");
    options.formats = formats.to_vec();
    options.compress = compress;
    options.properties = vec![
        ("kubernetes".into(), "v1.30.2".into()),
        ("containerd".into(), "1.7.20".into()),
    ];
    exporters::export(disk, out, &options, &NoProgress).expect("export")
}

/// `qemu-img info --output=json` virtual-size.
pub fn qemu_virtual_size(fmt: &str, file: &Path) -> u64 {
    let json = run_ok(
        Command::new("qemu-img")
            .args(["info", "-f", fmt, "--output=json"])
            .arg(file),
    );
    let v: serde_json::Value = serde_json::from_str(&json).expect("qemu-img info json");
    v["virtual-size"].as_u64().expect("virtual-size")
}

/// The path of an artifact of `format` with `container` in a report.
pub fn artifact(report: &exporters::ExportReport, out: &Path, container: &str) -> PathBuf {
    let a = report
        .manifest
        .artifacts
        .iter()
        .find(|a| a.container == container)
        .unwrap_or_else(|| panic!("no {container} artifact"));
    out.join(&a.file)
}
