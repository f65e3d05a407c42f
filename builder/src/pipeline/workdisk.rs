//! The build's working disk: the pinned base image, checked against its sha256, converted to a
//! sparse raw file and grown to the spec's size with the backup GPT moved to the new end
//! (cloud-init's growpart then extends the root partition at first boot). The base image is
//! only read.

use std::path::Path;

use anyhow::{Context, Result, bail};
use diskimg::ImageFormat;

/// Checks `base` with the project's reader (its format is the spec's, no backing file, no
/// corrupt qcow2 tables) and against `sha256`, converts it to sparse raw at `out` (written as
/// a temporary file next to it and renamed), and grows it to `size_bytes`.
pub fn prepare(
    qemu_img: &Path,
    base: &Path,
    format: ImageFormat,
    sha256: &str,
    out: &Path,
    size_bytes: u64,
) -> Result<()> {
    let fmt = format.as_str();
    // qemu-img would follow a qcow2's backing file and read a corrupt one into garbage: the
    // project's reader checks the base (and its real format) first.
    let found = crate::image_check::bootable_format(base)?;
    if found != format {
        bail!(
            "{}: is a {} image, the spec says {fmt}",
            base.display(),
            found.as_str()
        );
    }
    let (actual, _) = ::inputs::cache::hash_file(base)?;
    if actual != sha256 {
        bail!(
            "{}: sha256 is {actual}, the spec pins {sha256}; refusing a base image that is not the pinned one",
            base.display()
        );
    }
    let tmp = out.with_extension("raw.partial");
    let converted = child_process::Command::new(qemu_img, super::timeouts::BASE_CONVERT)
        .what("qemu-img convert")
        .args(["convert", "-q", "-f", fmt, "-O", "raw", "-S", "64k"])
        .arg(base)
        .arg(&tmp)
        .run();
    if let Err(e) = converted {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("{}: qemu-img convert -f {fmt}", base.display()));
    }
    let size = std::fs::metadata(&tmp)?.len();
    if size > size_bytes {
        let _ = std::fs::remove_file(&tmp);
        bail!(
            "{}: the base image is {size} bytes, larger than the spec's disk ({size_bytes} bytes); raise image.disk_gib",
            base.display()
        );
    }
    if size < size_bytes {
        exporters::pad::grow_in_place(&tmp, size_bytes)
            .with_context(|| format!("growing the working disk {}", tmp.display()))?;
    }
    std::fs::rename(&tmp, out).with_context(|| format!("renaming to {}", out.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// How long one `qemu-img` run on the 64 MiB test disk may take.
    const QEMU_IMG_TIMEOUT: Duration = Duration::from_secs(120);

    fn qemu_img() -> Option<std::path::PathBuf> {
        if !fixtures::tools::have("qemu-img") {
            return None;
        }
        qemu::host::find_qemu_img().ok()
    }

    #[test]
    fn a_qcow2_base_becomes_a_grown_raw_disk_and_a_wrong_hash_is_refused() {
        let Some(qemu_img) = qemu_img() else { return };
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("base.raw");
        fixtures::gpt_disk::patterned_gpt_disk(&raw, 64 << 20, 7).unwrap();
        let base = dir.path().join("base.qcow2");
        child_process::Command::new(&qemu_img, QEMU_IMG_TIMEOUT)
            .args(["convert", "-q", "-O", "qcow2"])
            .arg(&raw)
            .arg(&base)
            .run()
            .unwrap();
        let (sum, _) = ::inputs::cache::hash_file(&base).unwrap();
        let out = dir.path().join("work.raw");

        let wrong = "0".repeat(64);
        let e = prepare(&qemu_img, &base, ImageFormat::Qcow2, &wrong, &out, 1 << 30).unwrap_err();
        assert!(
            e.to_string().contains("base.qcow2") && e.to_string().contains(&sum),
            "{e}"
        );
        assert!(!out.exists());

        let e = prepare(&qemu_img, &base, ImageFormat::Qcow2, &sum, &out, 32 << 20).unwrap_err();
        assert!(
            e.to_string().contains("larger than the spec's disk"),
            "{e:#}"
        );
        assert!(!out.exists() && !out.with_extension("raw.partial").exists());

        prepare(&qemu_img, &base, ImageFormat::Qcow2, &sum, &out, 1 << 30).unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len(), 1 << 30);
        let gpt = diskimg::inspect::inspect(&out).unwrap().gpt.expect("gpt");
        assert_eq!(gpt.backup_lba, (1u64 << 30) / 512 - 1);
        // Same content as the base in its first 64 MiB except the GPT backup region.
        let cmp = child_process::Command::new(&qemu_img, QEMU_IMG_TIMEOUT)
            .args(["compare", "-q", "-f", "raw", "-F", "raw"])
            .arg(&raw)
            .arg(&out)
            .run_status()
            .unwrap();
        // Sizes differ and the backup GPT moved, so compare reports a difference (exit 1), not
        // an error (exit 2).
        assert_eq!(cmp.status.code(), Some(1), "{cmp:?}");
    }
}
