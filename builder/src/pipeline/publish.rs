//! Finishing the output directory: the build's files and record added to the exporters'
//! manifest, `SHA256SUMS` and `manifest.json` written last, and the rename of the finished
//! directory into place.

use std::path::Path;

use anyhow::{Context, Result, bail};
use exporters::Manifest;
use exporters::manifest::{BuildFile, BuildSection, MANIFEST_FILE, SUMS_FILE};
use serde_json::json;

use super::inputs::Inputs;
use super::output::{BOOT_TEST_SERIAL_LOG, BUILD_LOG, GOLDEN, JUNIT, SERIAL_LOG};
use crate::report::Reporter;

fn sha256_of(path: &Path) -> Result<BuildFile> {
    let (sha256, size) = ::inputs::cache::hash_file(path)?;
    Ok(BuildFile {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        sha256,
    })
}

fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let path = dir.join(name);
    ::inputs::atomic::write_atomic(&path, data)
        .with_context(|| format!("writing {}", path.display()))
}

/// What the boot test ran, for the build record.
#[derive(Debug, Clone)]
pub struct BootTestRecord {
    /// Whether the kubeadm test ran (and so passed: the manifest is written only then).
    pub kubeadm_ran: bool,
    /// The node conformance run's counts, if it ran.
    pub conformance: Option<super::conformance::Counts>,
}

/// Adds the build's files and record to the exporters' `manifest` and writes SHA256SUMS, then
/// the manifest, last. `build.log` must be closed: its digest goes in.
pub fn write_manifest(
    mut manifest: Manifest,
    inputs: &Inputs,
    staging: &Path,
    reporter: &Reporter,
    boot_test: &BootTestRecord,
) -> Result<()> {
    let spec = &inputs.spec;
    let golden = staging.join(GOLDEN);
    let golden_file = sha256_of(&golden)?;
    if golden_file.sha256 != manifest.content_sha256 {
        bail!(
            "{}: sha256 {} differs from the exports' content digest {}",
            golden.display(),
            golden_file.sha256,
            manifest.content_sha256
        );
    }
    let mut files = vec![golden_file];
    for name in [
        JUNIT,
        BUILD_LOG,
        SERIAL_LOG,
        BOOT_TEST_SERIAL_LOG,
        bom::BOM_FILE,
        bom::SBOM_FILE,
    ] {
        files.push(sha256_of(&staging.join(name))?);
    }
    let components: Vec<serde_json::Value> = inputs
        .lock
        .artifacts
        .iter()
        .filter(|a| a.component.is_some())
        .map(|a| {
            json!({
                "name": a.name, "component": a.component, "version": a.version,
                "sha256": a.sha256, "source": a.source, "note": a.note,
            })
        })
        .collect();
    let timings: serde_json::Map<String, serde_json::Value> = reporter
        .timings()
        .into_iter()
        .map(|(phase, d)| (phase, json!((d.as_secs_f64() * 10.0).round() / 10.0)))
        .collect();
    manifest.build = Some(BuildSection {
        files,
        record: json!({
            "nodeimg_version": env!("CARGO_PKG_VERSION"),
            "spec": spec.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "spec_sha256": spec.sha256,
            "lock_sha256": inputs.lock.sha256,
            "base_sha256": inputs.lock.base().sha256,
            "distro": spec.image.distro,
            "kubernetes_version": spec.kubernetes_version,
            "components": components,
            "kubeadm_test": if boot_test.kubeadm_ran { "passed" } else { "skipped" },
            "conformance": boot_test.conformance,
            "addons": addons(inputs),
            "phase_seconds": timings,
        }),
    });
    write_atomic(staging, SUMS_FILE, manifest.sums().as_bytes())?;
    write_atomic(staging, MANIFEST_FILE, manifest.to_json().as_bytes())?;
    Ok(())
}

/// Each kubeadm addon's image: `in the payload`, or `skipped: <why>` (the spec's
/// `kubernetes.skip_addons`, or a lock without it).
fn addons(inputs: &Inputs) -> serde_json::Value {
    let skipped = inputs.skipped_addons();
    distros::kubeadm_test::Addon::ALL
        .into_iter()
        .map(|addon| {
            let status = skipped.iter().find(|s| s.addon == addon).map_or_else(
                || "in the payload".to_owned(),
                |s| format!("skipped: {}", s.reason),
            );
            (addon.name().to_owned(), json!(status))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Moves the finished `staging` directory to `final_dir`, replacing an older build there only
/// after the new one is complete.
pub fn publish(staging: &Path, final_dir: &Path) -> Result<()> {
    if !staging.join(MANIFEST_FILE).is_file() {
        bail!("{}: no manifest; refusing to publish", staging.display());
    }
    let old = final_dir.with_extension("old");
    if final_dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(final_dir, &old)
            .with_context(|| format!("moving the previous {} aside", final_dir.display()))?;
    }
    std::fs::rename(staging, final_dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), final_dir.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}
