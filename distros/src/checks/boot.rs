//! The checks of the first boot of the sealed disk (node-role.md "Beyond": new host keys and
//! machine-id, containerd active, kubelet waiting for kubeadm).

use std::time::Duration;

use super::{Check, CheckKind, UnitState, service_check, unique, vars};
use crate::distro::Distro;
use crate::error::Result;
use crate::shell;
use crate::step::Step;

/// What the first boot of the sealed disk is compared with: facts of the build VM, read
/// before the seal.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FirstBoot {
    /// The build user, which the seal deleted.
    pub build_user: String,
    /// The build VM's `/etc/machine-id`, if known; the new one must differ.
    pub old_machine_id: Option<String>,
    /// Fingerprints (`SHA256:…`, as `ssh-keygen -l` prints them) of the build VM's host keys;
    /// no new key may have one of them.
    pub old_host_key_fingerprints: Vec<String>,
    /// Units that may be failed without failing the check (e.g. a unit known to fail without
    /// a datasource).
    pub ignorable_failed_units: Vec<String>,
}

impl FirstBoot {
    /// Checks every parameter that goes into a script; the error names the field.
    pub fn validate(&self) -> Result<()> {
        shell::check_user_name("build user", &self.build_user)?;
        if let Some(id) = &self.old_machine_id {
            shell::check_machine_id("old machine id", id)?;
        }
        for fp in &self.old_host_key_fingerprints {
            shell::check_ssh_fingerprint("old host key fingerprint", fp)?;
        }
        for u in &self.ignorable_failed_units {
            shell::check_name("ignorable failed unit", u)?;
        }
        Ok(())
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// `build-identity`: prints the build VM's facts [`FirstBoot`] compares with, read before the
/// seal: `/etc/machine-id` on the first line, then `ssh-keygen -l` of each SSH host public key.
/// A missing file or key prints nothing for it and does not stop the rest. Its timeout is 30 s
/// exactly (it reads a few small files), not raised to the step floor.
pub fn build_identity_step() -> Step {
    let mut step = Step::new(
        "build-identity",
        Duration::ZERO,
        "cat /etc/machine-id || true\n\
         for k in /etc/ssh/ssh_host_*_key.pub; do ssh-keygen -lf \"$k\" || true; done\n",
    );
    step.timeout = secs(30);
    step
}

/// Renders the checks of the first boot of the sealed disk: new machine id, new SSH host keys,
/// build user gone, cloud-init done, containerd enabled and active, kubelet enabled and
/// waiting (not active), no failed units.
pub fn first_boot_checks(distro: &Distro, boot: &FirstBoot) -> Result<Vec<Check>> {
    boot.validate()?;
    super::check_units(distro)?;
    unique(vec![
        machine_id(boot.old_machine_id.as_deref()),
        host_keys(&boot.old_host_key_fingerprints),
        build_user(&boot.build_user),
        cloud_init(),
        service_check("containerd.service", UnitState::Running),
        service_check("kubelet.service", UnitState::Waiting),
        failed_units(&boot.ignorable_failed_units),
    ])
}

fn machine_id(old: Option<&str>) -> Check {
    let mut body = vars(&[("old", old.unwrap_or(""))]);
    body.push_str(
        "id=$(cat \"$R/etc/machine-id\" 2>/dev/null) || true\n\
         if [ -z \"$id\" ]; then\n\
         \tfail \"/etc/machine-id is empty or missing, expected a new machine id\"\n\
         fi\n\
         case \"$id\" in\n\
         *[!0-9a-f]*)\n\
         \tfail \"/etc/machine-id is $id, expected 32 hex digits\"\n\
         \t;;\n\
         esac\n\
         if [ \"${#id}\" -ne 32 ]; then\n\
         \tfail \"/etc/machine-id is $id, expected 32 hex digits\"\n\
         fi\n\
         if [ \"$id\" = \"$old\" ]; then\n\
         \tfail \"/etc/machine-id is still the build's $old, expected a new one\"\n\
         fi\n",
    );
    Check::new(
        "machine-id".to_owned(),
        CheckKind::Identity,
        secs(10),
        &body,
    )
}

fn host_keys(old: &[String]) -> Check {
    let olds = old.join(" ");
    let mut body = vars(&[("olds", &olds)]);
    body.push_str(
        "n=0\n\
         for f in \"$R\"/etc/ssh/ssh_host_*_key.pub; do\n\
         \tif [ ! -e \"$f\" ]; then\n\
         \t\tcontinue\n\
         \tfi\n\
         \tn=$((n + 1))\n\
         \tshown=${f#\"$R\"}\n\
         \tif ! fp=$(ssh-keygen -lf \"$f\" 2>&1); then\n\
         \t\tfail \"ssh-keygen -lf $shown: $fp; expected a readable host key\"\n\
         \tfi\n\
         \tfp=$(printf '%s\\n' \"$fp\" | awk 'NR == 1 {print $2}')\n\
         \tcase \" $olds \" in\n\
         \t*\" $fp \"*)\n\
         \t\tfail \"SSH host key $shown has the build's fingerprint $fp, expected a new key\"\n\
         \t\t;;\n\
         \tesac\n\
         done\n\
         if [ \"$n\" -eq 0 ]; then\n\
         \tfail \"no SSH host keys (/etc/ssh/ssh_host_*_key.pub), expected new ones\"\n\
         fi\n",
    );
    Check::new(
        "ssh-host-keys".to_owned(),
        CheckKind::Identity,
        secs(10),
        &body,
    )
}

fn build_user(user: &str) -> Check {
    let mut body = vars(&[("user", user)]);
    body.push_str(
        "rc=0\n\
         ent=$(getent passwd \"$user\") || rc=$?\n\
         case \"$rc\" in\n\
         0) fail \"build user $user exists ($ent), expected absent\" ;;\n\
         2) ;;\n\
         *) fail \"getent passwd $user exited $rc, expected 2 (no such user)\" ;;\n\
         esac\n",
    );
    Check::new(
        "build-user-absent".to_owned(),
        CheckKind::BuildUser,
        secs(10),
        &body,
    )
}

/// `cloud-init status --wait` (prints dots, then `status: done`); the status line decides,
/// not the exit status (cloud-init 23.4+ exits 2 for "done with recoverable errors").
fn cloud_init() -> Check {
    let body = "\
out=$(cloud-init status --wait 2>&1) || true
st=$(printf '%s\\n' \"$out\" | awk -F': ' '$1 ~ /status$/ {print $2; exit}')
if [ \"$st\" != 'done' ]; then
\tfail \"cloud-init status says ${st:-nothing} ($out), expected done\"
fi
";
    Check::new(
        "cloud-init-done".to_owned(),
        CheckKind::CloudInit,
        secs(900),
        body,
    )
}

fn failed_units(ignorable: &[String]) -> Check {
    let ign = ignorable.join(" ");
    let mut body = vars(&[("ignorable", &ign)]);
    body.push_str(
        "if ! out=$(systemctl list-units --state=failed --plain --no-legend --no-pager 2>&1); then\n\
         \tfail \"systemctl list-units --state=failed failed: $out; expected no failed units\"\n\
         fi\n\
         failed=$(printf '%s\\n' \"$out\" | awk -v ign=\" $ignorable \" '\n\
         \tNF { u = $1; if (u !~ /\\./) u = $2; if (index(ign, \" \" u \" \") == 0) { printf \"%s%s\", sep, u; sep = \" \" } }')\n\
         if [ -n \"$failed\" ]; then\n\
         \tfail \"failed units: $failed, expected none\"\n\
         fi\n",
    );
    Check::new(
        "no-failed-units".to_owned(),
        CheckKind::FailedUnits,
        secs(30),
        &body,
    )
}
