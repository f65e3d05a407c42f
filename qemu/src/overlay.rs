//! Booting an image without touching it: its format told from its first bytes, and a qcow2
//! copy-on-write overlay (made with `qemu-img create -b`) that takes every write of the guest.
//! QEMU opens a backing file read-only, so the image keeps its bytes.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use crate::cmdline::DiskFormat;
use crate::error::{Error, Result};

/// The qcow2 magic, `QFI\xfb`.
const QCOW2_MAGIC: [u8; 4] = *b"QFI\xfb";

/// Other formats' magics, refused by name (QEMU would boot them as raw garbage).
const OTHER_MAGICS: &[(&[u8], &str)] = &[
    (b"KDMV", "a VMDK"),
    (b"# Disk DescriptorFile", "a VMDK descriptor"),
    (b"vhdxfile", "a VHDX"),
    (b"conectix", "a dynamic VHD"),
    (
        b"\x1f\x8b",
        "gzip-compressed (a GCE disk.raw tar.gz?); unpack it first",
    ),
];

/// Tells qcow2 from raw by the first bytes; refuses the other formats it recognises and files
/// too small to hold a partition table.
pub fn detect_format(path: &Path) -> Result<DiskFormat> {
    let mut head = [0u8; 32];
    let mut f = File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let len = f
        .metadata()
        .map_err(|e| Error::io("reading the size of", path, e))?
        .len();
    let n = f
        .read(&mut head)
        .map_err(|e| Error::io("reading", path, e))?;
    let head = &head[..n];
    if head.starts_with(&QCOW2_MAGIC) {
        return Ok(DiskFormat::Qcow2);
    }
    for (magic, what) in OTHER_MAGICS {
        if head.starts_with(magic) {
            return Err(Error::Image {
                path: path.to_path_buf(),
                reason: format!("is {what}, not a qcow2 or raw disk image"),
            });
        }
    }
    if len < 1024 * 1024 {
        return Err(Error::Image {
            path: path.to_path_buf(),
            reason: format!("is {len} bytes: too small to be a bootable raw disk image"),
        });
    }
    Ok(DiskFormat::Raw)
}

/// How long `qemu-img create` of an overlay may take (it writes a few KiB: this catches hangs).
const OVERLAY_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates the qcow2 overlay `overlay` backed by `base` (format `base_format`), with the base's
/// virtual size. The backing path is made absolute so the overlay works from anywhere.
pub fn create_overlay(
    qemu_img: &Path,
    base: &Path,
    base_format: DiskFormat,
    overlay: &Path,
) -> Result<()> {
    let base = std::fs::canonicalize(base).map_err(|e| Error::io("resolving", base, e))?;
    let out = child_process::Command::new(qemu_img, OVERLAY_TIMEOUT)
        .what("qemu-img create")
        .args([
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            base_format.as_str(),
            "-b",
        ])
        .arg(&base)
        .arg(overlay)
        .run_status()?;
    if !out.status.success() {
        return Err(Error::Image {
            path: overlay.to_path_buf(),
            reason: format!(
                "qemu-img create -b {} failed ({}): {}",
                base.display(),
                out.status,
                out.stderr_tail.trim()
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, head: &[u8], len: u64) -> std::path::PathBuf {
        let p = dir.join(name);
        let f = File::create(&p).unwrap();
        f.set_len(len).unwrap();
        std::fs::write(&p, head).unwrap();
        f.set_len(len.max(u64::try_from(head.len()).unwrap()))
            .unwrap();
        p
    }

    #[test]
    fn formats_by_magic() {
        let d = tempfile::tempdir().unwrap();
        let q = write(d.path(), "a.qcow2", b"QFI\xfb\0\0\0\x03", 4096);
        assert_eq!(detect_format(&q).unwrap(), DiskFormat::Qcow2);
        let r = write(d.path(), "a.raw", b"", 2 << 20);
        assert_eq!(detect_format(&r).unwrap(), DiskFormat::Raw);
        let v = write(d.path(), "a.vmdk", b"KDMV\x03\0\0\0", 2 << 20);
        let e = detect_format(&v).unwrap_err().to_string();
        assert!(e.contains("a.vmdk") && e.contains("VMDK"), "{e}");
        let small = write(d.path(), "tiny.raw", b"x", 10);
        let e = detect_format(&small).unwrap_err().to_string();
        assert!(e.contains("tiny.raw") && e.contains("too small"), "{e}");
        let e = detect_format(&d.path().join("missing"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing"), "{e}");
    }
}
