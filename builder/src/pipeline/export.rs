//! The export of the sealed golden disk to every format the spec asks for, through the
//! exporters, with the bytes' progress drawn by the build's reporter. It runs alongside the
//! boot test ([`super::alongside`]) as a background export (lower CPU priority), and leaves
//! no manifest: the build writes its own, with the build section, last, when everything
//! passed ([`super::publish::write_manifest`]).

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use exporters::manifest::{MANIFEST_FILE, SUMS_FILE};
use exporters::{ExportOptions, Manifest, Progress};

use super::BuildOptions;
use super::inputs::Inputs;
use super::output::GOLDEN;
use crate::report::Reporter;

/// The export's phase name (a side phase: it runs alongside the boot test).
pub const PHASE: &str = "export";

struct ExportProgress<'a> {
    reporter: &'a Reporter,
    totals: Mutex<Vec<(String, u64)>>,
}

impl Progress for ExportProgress<'_> {
    fn started(&self, task: &str, total: u64) {
        if let Ok(mut t) = self.totals.lock() {
            t.push((task.to_owned(), total));
        }
    }
    fn advanced(&self, task: &str, done: u64) {
        let total = self
            .totals
            .lock()
            .ok()
            .and_then(|t| t.iter().find(|(n, _)| n == task).map(|(_, v)| *v))
            .unwrap_or(done);
        self.reporter.side_bytes(PHASE, task, done, total);
    }
}

/// Exports `golden.raw` in `staging` to the spec's formats, in the background (every thread
/// the exporters start at a lower CPU priority); returns the exporters' manifest, and removes
/// the `manifest.json` and `SHA256SUMS` they wrote, so a build that fails later leaves none.
pub fn export(
    opts: &BuildOptions,
    inputs: &Inputs,
    staging: &Path,
    reporter: &Reporter,
) -> Result<Manifest> {
    let spec = &inputs.spec;
    let mut options = ExportOptions::new(spec.image.name.clone());
    options.formats = spec.formats.clone();
    options.firmware = spec.image.firmware;
    options.source_date_epoch = opts.source_date_epoch;
    options.background = true;
    options.properties = vec![
        ("kubernetes-version".into(), spec.kubernetes_version.clone()),
        ("nodeimg-spec-sha256".into(), spec.sha256.clone()),
    ];
    let golden = staging.join(GOLDEN);
    let progress = ExportProgress {
        reporter,
        totals: Mutex::new(Vec::new()),
    };
    let report = exporters::export(&golden, staging, &options, &progress)
        .with_context(|| format!("exporting {}", golden.display()))?;
    for name in [MANIFEST_FILE, SUMS_FILE] {
        let path = staging.join(name);
        std::fs::remove_file(&path)
            .with_context(|| format!("removing the exporters' {}", path.display()))?;
    }
    Ok(report.manifest)
}
