//! The build's bill of materials: asked of the build guest after provisioning (the payload
//! still mounted), written as `bom.json` and `sbom.cdx.json` into the output directory.

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use distros::bom_collect::{ComponentQuery, ComponentSource, Query};
use qemu::ssh::Ssh;
use qemu::vm::Vm;

use super::guest::GuestCommand;
use super::inputs::Inputs;
use super::payload::payload_file;
use crate::report::Reporter;
use ::inputs::lock::Kind;
use bom::model::{self, BOM_FILE, Bom, SBOM_FILE};

/// What to ask the guest for these inputs and `role`.
pub fn query(inputs: &Inputs, role: &distros::NodeRole) -> Query {
    let mut components = Vec::new();
    for input in &inputs.payload {
        let a = &input.artifact;
        // Images are listed from containerd, not as files.
        let Some(component) = a.component.as_deref() else {
            continue;
        };
        let how = match a.kind {
            Kind::Deb => ComponentSource::Deb {
                file: payload_file(input),
            },
            Kind::Binary | Kind::File => ComponentSource::Installed {
                dest: a.dest.clone().unwrap_or_default(),
            },
            Kind::Archive => ComponentSource::Archive {
                file: payload_file(input),
                dest: a.dest.clone().unwrap_or_default(),
            },
            Kind::Image
            | Kind::BaseImage
            | Kind::TestSuite
            | Kind::TestImage
            | Kind::TestSource => continue,
        };
        components.push(ComponentQuery {
            artifact: a.name.clone(),
            component: component.to_owned(),
            version: a.version.clone().unwrap_or_default(),
            source: a.source.clone(),
            how,
        });
    }
    Query::for_node_role(components, role)
}

/// The build's inputs as the BOM records them.
pub fn bom_inputs(inputs: &Inputs) -> model::Inputs {
    model::Inputs {
        image: inputs.spec.image.name.clone(),
        distro: inputs.spec.image.distro.clone(),
        nodeimg_version: env!("CARGO_PKG_VERSION").into(),
        spec_sha256: inputs.spec.sha256.clone(),
        lock_sha256: inputs.lock.sha256.clone(),
        base_image_sha256: inputs.lock.base().sha256.clone(),
    }
}

/// Runs the plan's collection `step` in the guest and parses its answer to `query`.
pub fn collect(
    vm: &Vm,
    ssh: &Ssh,
    (step, query): (&GuestCommand, &Query),
    inputs: &Inputs,
    reporter: &Reporter,
) -> Result<Bom> {
    reporter.step_started("bom", &step.name);
    let t = Instant::now();
    let out = ssh.output(&step.command, Some(step.timeout));
    let ok = matches!(&out, Ok(o) if o.exit.success());
    reporter.step_finished("bom", &step.name, t.elapsed(), ok);
    let out = out.context("collecting the bill of materials")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !stderr.trim().is_empty() {
        reporter.log(&format!("bom collection stderr:\n{stderr}"));
    }
    if !out.exit.success() {
        bail!(vm.failure(format!(
            "bom step `{}` failed ({}); its error output ends:\n{}",
            step.name,
            out.exit,
            super::guest::output_tail(&stderr)
        )));
    }
    let bom = super::bom_answer::parse(
        &String::from_utf8_lossy(&out.stdout),
        bom_inputs(inputs),
        query,
    )?;
    reporter.info(&format!(
        "bill of materials: {} packages, {} component files, {} images",
        bom.packages.len(),
        bom.components.len(),
        bom.images.len()
    ));
    Ok(bom)
}

/// Writes `bom.json` and `sbom.cdx.json` into `dir` (each atomically).
pub fn write(dir: &Path, bom: &Bom, source_date_epoch: u64) -> Result<()> {
    for (name, text) in [
        (BOM_FILE, bom.to_json()),
        (SBOM_FILE, bom::cyclonedx::render(bom, source_date_epoch)),
    ] {
        let path = dir.join(name);
        ::inputs::atomic::write_atomic(&path, text.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
