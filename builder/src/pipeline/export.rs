//! The export of the sealed golden disk to every format the spec asks for, through the
//! exporters, with the bytes' progress drawn by the build's reporter.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result};
use exporters::{ExportOptions, Manifest, Progress};

use super::BuildOptions;
use super::inputs::Inputs;
use super::output::GOLDEN;
use crate::report::Reporter;

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
        self.reporter.bytes(task, done, total);
    }
}

/// Exports `golden.raw` in `staging` to the spec's formats; returns the exporters' manifest.
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
    Ok(report.manifest)
}
