//! Which checks the build runs in its guests: the validation of the provisioned build VM (the
//! distro's node checks against the pins, no outbound network, then the spec's `[[checks]]`)
//! and the first-boot checks of the sealed disk. Rendered by the plan; run by `validate` and
//! `boot_test`.

use anyhow::Result;
use distros::NodeRole;

use super::guest::GuestCommand;
use super::inputs::Inputs;
use super::timeouts;
use super::validate::NamedCheck;

/// The build guest must reach nothing: no name resolves, no TCP connection to the internet or
/// to the host side of the user-mode network opens.
const NO_NETWORK_CHECK: &str = "\
if getent hosts deb.debian.org >/dev/null 2>&1; then
\techo 'deb.debian.org resolves: the guest has a working resolver'; exit 1
fi
for target in 1.1.1.1/443 151.101.2.132/80 10.0.2.2/80; do
\tif timeout 5 bash -c \"exec 3<>/dev/tcp/$target\" 2>/dev/null; then
\t\techo \"a TCP connection to $target opened: the guest has outbound network\"; exit 1
\tfi
done
echo 'no name resolves, no outbound TCP connection opens'";

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
            command: GuestCommand {
                command: c.remote_command(),
                name: c.name,
                timeout: c.timeout,
            },
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
    let mut checks = named(
        "validation",
        distros::checks::node_checks(inputs.distro, &expect)?,
    );
    checks.push(NamedCheck {
        class: "validation".into(),
        command: GuestCommand::user_script(
            "",
            "no-outbound-network",
            NO_NETWORK_CHECK,
            timeouts::NO_NETWORK_CHECK,
        ),
    });
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

#[cfg(test)]
mod tests {
    use super::*;

    /// On a host with network (this one reaches Debian's mirror), the check fails and says why.
    #[test]
    fn the_no_network_check_fails_where_there_is_network() {
        let resolves = child_process::Command::new("getent", std::time::Duration::from_secs(30))
            .args(["hosts", "deb.debian.org"])
            .run()
            .is_ok();
        if !resolves {
            println!("SKIP: deb.debian.org does not resolve here; nothing to show failing");
            return;
        }
        let o = child_process::Command::new("/bin/sh", std::time::Duration::from_secs(60))
            .arg("-c")
            .arg(NO_NETWORK_CHECK)
            .run_status()
            .unwrap();
        assert!(!o.status.success());
        assert!(
            o.stdout_lossy().contains("deb.debian.org resolves"),
            "{o:?}"
        );
    }
}
