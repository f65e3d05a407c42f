//! Provisioning: the payload installed, the node role applied, then the spec's own files and
//! commands, each a named, timed step. The payload stays mounted for the bill of materials
//! (which reads it); [`unmount_payload`] ends provisioning.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use distros::payload::{CNI_BIN_DIR, cni_plugins_link_step, payload_install_steps};
use distros::{NodeRole, Step, node_role_steps};
use qemu::ssh::Ssh;
use qemu::vm::Vm;

use super::guest::{self, GuestCommand};
use super::inputs::Inputs;
use super::payload::payload_items;
use super::timeouts;
use crate::report::Reporter;

/// One of the spec's `[[files]]`: uploaded to `guest_path`, then installed by `install`.
#[derive(Debug, Clone)]
pub struct FileUpload {
    /// The host file (checked to be a regular file).
    pub source: PathBuf,
    /// Where the upload lands in the guest (mode 0600) before `install` moves it.
    pub guest_path: String,
    /// The step that installs it at its destination.
    pub install: GuestCommand,
}

/// Every provisioning command in order for `role` (the spec's files are uploaded by
/// [`provision`] just before their install command runs).
pub fn commands(inputs: &Inputs, role: &NodeRole) -> Result<Vec<GuestCommand>> {
    let distro = inputs.distro;
    let mut out: Vec<GuestCommand> = payload_install_steps(distro, &payload_items(inputs))?
        .iter()
        .map(GuestCommand::from)
        .collect();
    let cni_dir = distro.container_packages.cni_plugins_dir;
    let cni_from_package = inputs
        .lock
        .component("cni_plugins")
        .any(|a| a.kind == ::inputs::lock::Kind::Deb);
    if cni_from_package && cni_dir != CNI_BIN_DIR {
        // CNI add-ons and containerd's default look in /opt/cni/bin; the distro's package
        // installs elsewhere.
        out.push(GuestCommand::from(&cni_plugins_link_step(distro)));
    }
    out.extend(
        node_role_steps(distro, role)?
            .iter()
            .map(GuestCommand::from),
    );
    for cmd in &inputs.spec.commands {
        out.push(GuestCommand::from(&Step::user_command(
            "user-command-",
            &cmd.name,
            timeouts::USER_COMMAND,
            &cmd.run,
        )));
    }
    Ok(out)
}

/// Unmounts the payload with the plan's `step` (after the bill of materials is collected).
pub fn unmount_payload(vm: &Vm, ssh: &Ssh, step: &GuestCommand, reporter: &Reporter) -> Result<()> {
    guest::run_steps(vm, ssh, "bom", std::slice::from_ref(step), reporter)?;
    Ok(())
}

/// The `i`th of the spec's `[[files]]`: where its upload lands and the step that installs it.
pub fn file_upload(i: usize, f: &::inputs::spec::ExtraFile) -> FileUpload {
    FileUpload {
        source: f.source.clone(),
        install: GuestCommand::from(&distros::spec_files::install_step(i, f.mode, &f.dest)),
        guest_path: distros::spec_files::upload_path(i),
    }
}

/// Uploads the spec's files; returns their install steps.
fn upload_files(ssh: &Ssh, files: &[FileUpload], reporter: &Reporter) -> Result<Vec<GuestCommand>> {
    let mut installs = Vec::new();
    for f in files {
        ssh.upload(&f.source, &f.guest_path, 0o600)
            .with_context(|| format!("uploading {}", f.source.display()))?;
        reporter.log(&format!(
            "uploaded {} to {}",
            f.source.display(),
            f.guest_path
        ));
        installs.push(f.install.clone());
    }
    Ok(installs)
}

/// The provisioning part of the plan: in order.
#[derive(Debug, Clone, Copy)]
pub struct ProvisionSteps<'a> {
    /// Payload install, CNI path, node role.
    pub before_files: &'a [GuestCommand],
    /// The spec's files.
    pub files: &'a [FileUpload],
    /// The spec's commands.
    pub commands: &'a [GuestCommand],
}

/// Runs the plan's provisioning `steps` in `vm`. The spec's files go in after the node role
/// and before the spec's commands.
pub fn provision(
    vm: &Vm,
    ssh: &Ssh,
    steps: ProvisionSteps<'_>,
    reporter: &Reporter,
) -> Result<Vec<(String, Duration)>> {
    let mut done = guest::run_steps(vm, ssh, "provision", steps.before_files, reporter)?;
    let files = upload_files(ssh, steps.files, reporter)?;
    done.extend(guest::run_steps(vm, ssh, "provision", &files, reporter)?);
    done.extend(guest::run_steps(
        vm,
        ssh,
        "provision",
        steps.commands,
        reporter,
    )?);
    Ok(done)
}
