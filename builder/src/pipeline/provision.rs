//! Provisioning: the payload installed, the node role applied, then the spec's own files and
//! commands, each a named, timed step. The payload stays mounted for the bill of materials
//! (which reads it); [`unmount_payload`] ends provisioning.

use std::time::Duration;

use anyhow::{Context, Result};
use distros::payload::{payload_install_steps, payload_unmount_step};
use distros::{NodeRole, node_role_steps};
use qemu::ssh::Ssh;
use qemu::vm::Vm;

use super::guest::{self, GuestCommand};
use super::inputs::Inputs;
use super::payload::payload_items;
use crate::build::report::Reporter;

/// Where CNI plugins are looked for by containerd's default config and installed by add-ons.
pub const CNI_BIN_DIR: &str = "/opt/cni/bin";
/// How long one of the spec's commands may run.
const USER_COMMAND_TIMEOUT: Duration = Duration::from_secs(600);

/// The node role for these inputs: the lock's pause image, and a provenance file naming the
/// image, the tool, the spec and lock digests and every pinned version.
pub fn node_role(inputs: &Inputs) -> NodeRole {
    let spec = &inputs.spec;
    let c = &spec.components;
    NodeRole {
        pause_image: inputs.pause_image().unwrap_or_default().to_owned(),
        held_packages: Vec::new(),
        provenance: vec![
            ("NODEIMG_IMAGE".into(), spec.image.name.clone()),
            ("NODEIMG_VERSION".into(), env!("CARGO_PKG_VERSION").into()),
            ("NODEIMG_SPEC_SHA256".into(), spec.sha256.clone()),
            ("NODEIMG_LOCK_SHA256".into(), inputs.lock.sha256.clone()),
            ("NODEIMG_BASE_SHA256".into(), spec.base.sha256.clone()),
            ("KUBERNETES_VERSION".into(), spec.kubernetes_version.clone()),
            ("CONTAINERD_VERSION".into(), c.containerd.clone()),
            ("RUNC_VERSION".into(), c.runc.clone()),
            ("CRICTL_VERSION".into(), c.crictl.clone()),
            ("CNI_PLUGINS_VERSION".into(), c.cni_plugins.clone()),
            ("PAUSE_VERSION".into(), c.pause.clone()),
        ],
        extra_sysctls: Vec::new(),
    }
}

/// Every provisioning command in order (the spec's files are uploaded by [`provision`] just
/// before their install command runs).
pub fn commands(inputs: &Inputs) -> Result<Vec<GuestCommand>> {
    let distro = inputs.distro;
    let mut out: Vec<GuestCommand> = payload_install_steps(distro, &payload_items(inputs))?
        .iter()
        .map(GuestCommand::from)
        .collect();
    let cni_dir = distro.container_packages.cni_plugins_dir;
    let cni_from_package = inputs
        .lock
        .component("cni_plugins")
        .any(|a| a.kind == crate::lock::Kind::Deb);
    if cni_from_package && cni_dir != CNI_BIN_DIR {
        // CNI add-ons and containerd's default look in /opt/cni/bin; the distro's package
        // installs elsewhere.
        out.push(GuestCommand::user_script(
            "",
            "cni-plugins-path",
            &format!(
                "mkdir -p {CNI_BIN_DIR}\nfor p in {dir}/*; do ln -sfn \"$p\" {CNI_BIN_DIR}/; done\nls {CNI_BIN_DIR}",
                dir = distros::shell::quote(cni_dir)
            ),
            Duration::from_secs(30),
        ));
    }
    out.extend(
        node_role_steps(distro, &node_role(inputs))?
            .iter()
            .map(GuestCommand::from),
    );
    for cmd in &inputs.spec.commands {
        out.push(GuestCommand::user_script(
            "user-command-",
            &cmd.name,
            &cmd.run,
            USER_COMMAND_TIMEOUT,
        ));
    }
    Ok(out)
}

/// Unmounts the payload (after the bill of materials is collected).
pub fn unmount_payload(vm: &Vm, ssh: &Ssh, reporter: &Reporter) -> Result<()> {
    guest::run_steps(
        vm,
        ssh,
        "bom",
        &[GuestCommand::from(&payload_unmount_step())],
        reporter,
    )?;
    Ok(())
}

fn upload_files(ssh: &Ssh, inputs: &Inputs, reporter: &Reporter) -> Result<Vec<GuestCommand>> {
    let mut installs = Vec::new();
    for (i, f) in inputs.spec.files.iter().enumerate() {
        let tmp = format!("/tmp/nodeimg-file-{i}");
        ssh.upload(&f.source, &tmp, 0o600)
            .with_context(|| format!("uploading {}", f.source.display()))?;
        reporter.log(&format!("uploaded {} to {tmp}", f.source.display()));
        let script = format!(
            "install -D -m {:04o} {} {}\nrm -f {}",
            f.mode,
            distros::shell::quote(&tmp),
            distros::shell::quote(&f.dest),
            distros::shell::quote(&tmp)
        );
        installs.push(GuestCommand::user_script(
            "user-file-",
            &i.to_string(),
            &script,
            Duration::from_secs(60),
        ));
    }
    Ok(installs)
}

/// Runs every provisioning step in `vm`. The spec's files go in after the node role and before
/// the spec's commands.
pub fn provision(
    vm: &Vm,
    ssh: &Ssh,
    inputs: &Inputs,
    reporter: &Reporter,
) -> Result<Vec<(String, Duration)>> {
    let all = commands(inputs)?;
    let first_user = all
        .iter()
        .position(|c| c.name.starts_with("user-command-"))
        .unwrap_or(all.len());
    let mut done = guest::run_steps(vm, ssh, "provision", &all[..first_user], reporter)?;
    let files = upload_files(ssh, inputs, reporter)?;
    done.extend(guest::run_steps(vm, ssh, "provision", &files, reporter)?);
    done.extend(guest::run_steps(
        vm,
        ssh,
        "provision",
        &all[first_user..],
        reporter,
    )?);
    Ok(done)
}
