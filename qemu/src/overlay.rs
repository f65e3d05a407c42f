//! Booting an image without touching it: a qcow2 copy-on-write overlay (made with
//! `qemu-img create -b`) that takes every write of the guest. QEMU opens a backing file
//! read-only, so the image keeps its bytes. The base's format is not guessed here: the caller
//! passes the format its reader found (the builder checks the image with the project's reader
//! first, which also refuses a base that has a backing file of its own).

use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};
use diskimg::ImageFormat;

/// How long `qemu-img create` of an overlay may take (it writes a few KiB: this catches hangs).
const OVERLAY_TIMEOUT: Duration = Duration::from_secs(120);

/// Creates the qcow2 overlay `overlay` backed by `base` (format `base_format`), with the base's
/// virtual size. The backing path is made absolute so the overlay works from anywhere.
pub fn create_overlay(
    qemu_img: &Path,
    base: &Path,
    base_format: ImageFormat,
    overlay: &Path,
) -> Result<()> {
    let Some(base_driver) = base_format.qemu_driver() else {
        return Err(Error::Image {
            path: base.to_path_buf(),
            reason: format!("is {base_format}, an archive QEMU cannot back an overlay with"),
        });
    };
    let base = std::fs::canonicalize(base).map_err(|e| Error::io("resolving", base, e))?;
    let out = child_process::Command::new(qemu_img, OVERLAY_TIMEOUT)
        .what("qemu-img create")
        .args(["create", "-q", "-f", "qcow2", "-F", base_driver, "-b"])
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
