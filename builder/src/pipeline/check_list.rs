//! Which checks the build runs in its guests: the validation of the provisioned build VM (the
//! distro's node checks against the pins, no outbound network, then the spec's `[[checks]]`)
//! and the first-boot checks of the sealed disk. Rendered by the plan; run by `validate` and
//! `boot_test`.

use anyhow::Result;
use distros::NodeRole;

use super::guest::GuestCommand;
use super::inputs::Inputs;
use super::validate::NamedCheck;

/// The build VM's identity, read before the seal: the sealed disk's first boot must differ.
#[derive(Debug, Clone, Default)]
pub struct BuildIdentity {
    /// `/etc/machine-id`.
    pub machine_id: Option<String>,
    /// `SHA256:…` fingerprints of `/etc/ssh/ssh_host_*_key.pub`.
    pub host_key_fingerprints: Vec<String>,
}

fn named(class: &str, checks: Vec<distros::checks::Check>) -> Vec<NamedCheck> {
    checks
        .into_iter()
        .map(|c| NamedCheck {
            class: class.to_owned(),
            command: GuestCommand::from(&c),
        })
        .collect()
}

/// The node checks for these inputs and `role` (versions equal to the pins, services, sysctls,
/// modules, swap, containerd's effective config, crictl, exactly the pinned images, a container
/// run), then the spec's own checks.
pub fn validation_checks(inputs: &Inputs, role: &NodeRole) -> Result<Vec<NamedCheck>> {
    let spec = &inputs.spec;
    let c = &spec.components;
    let expect = distros::checks::Expectations {
        kubernetes: spec.kubernetes_version.clone(),
        containerd: c.containerd.clone(),
        runc: c.runc.clone(),
        cni_plugins: c.cni_plugins.clone(),
        crictl: c.crictl.clone(),
        pause_image: role.pause_image.clone(),
        images: inputs.image_refs(),
        sysctls: role.sysctls(),
        held_packages: Vec::new(),
    };
    let mut node = distros::checks::node_checks(inputs.distro, &expect)?;
    node.push(distros::checks::no_outbound_network_check());
    let mut checks = named("validation", node);
    let mut user = Vec::new();
    for check in &spec.checks {
        user.push(distros::checks::user_check(&check.name, &check.run)?);
    }
    checks.extend(named("spec", user));
    Ok(checks)
}

/// The first-boot checks of the sealed disk, against the build VM's identity.
pub fn first_boot_checks(
    distro: &distros::Distro,
    identity: &BuildIdentity,
    user: &str,
) -> Result<Vec<NamedCheck>> {
    let boot = distros::checks::FirstBoot {
        build_user: user.to_owned(),
        old_machine_id: identity.machine_id.clone(),
        old_host_key_fingerprints: identity.host_key_fingerprints.clone(),
        ignorable_failed_units: Vec::new(),
    };
    Ok(named(
        "boot-test",
        distros::checks::first_boot_checks(distro, &boot)?,
    ))
}
