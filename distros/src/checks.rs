//! Validation checks: what a finished node image must show, as typed data plus POSIX sh
//! scripts run as root in the guest (node-role.md "Checks image-builder runs" and "Beyond").
//!
//! A [`Check`] passes when its script exits 0. A failing script prints exactly one line on
//! stdout saying what it found and what was expected, e.g.
//! `containerd --version says 1.6.19, expected 1.6.20`; anything else a tool prints goes to
//! stderr or is captured. Every parameter is validated and shell-quoted first ([`shell`]).
//!
//! * [`node_checks`]: the built node, before the seal ([`Expectations`]).
//! * [`first_boot_checks`]: the first boot of the sealed disk ([`FirstBoot`]).
//! * [`user_check`]: a check written by the spec's author.
//!
//! Files the scripts read are read under `$NODEIMG_CHECK_ROOT` (see [`CHECK_ROOT_VAR`]), which
//! is unset in the guest (`sudo` resets the environment) and lets tests run the very same
//! scripts against a sandbox; commands are found through `PATH`.

mod boot;
mod node;
#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::distro::Distro;
use crate::error::{Error, Result};
use crate::shell;
use crate::step::sudo_sh;

pub use boot::{FirstBoot, build_identity_step, first_boot_checks};
pub use node::node_checks;

/// The environment variable naming a directory that file paths in check scripts are read
/// under (`$NODEIMG_CHECK_ROOT/etc/crictl.yaml`). Unset in the guest; tests set it.
pub const CHECK_ROOT_VAR: &str = "NODEIMG_CHECK_ROOT";
/// The base of the container id [`CheckKind::ContainerRun`] uses (`nodeimg-check-run-<pid>`).
pub const CONTAINER_RUN_ID: &str = "nodeimg-check-run";
/// kubelet's configuration written by `kubeadm init`/`join`; absent while kubelet waits.
pub const KUBELET_CONFIG: &str = "/var/lib/kubelet/config.yaml";

/// What a check is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckKind {
    /// A component reports the pinned version.
    Version,
    /// A unit is enabled/active (or disabled/masked/absent) as the node needs.
    Service,
    /// A sysctl has its value.
    Sysctl,
    /// A kernel module is loaded and listed in the modules-load file.
    Module,
    /// No swap is active and none is configured in `/etc/fstab`.
    Swap,
    /// `containerd config dump` has `SystemdCgroup = true` for the default (runc) runtime.
    SystemdCgroup,
    /// The sandbox (pause) image in effect is the pinned one and is present.
    Pause,
    /// `/etc/crictl.yaml` points at containerd and `crictl ps` works.
    Crictl,
    /// Exactly the pinned images are in containerd's `k8s.io` namespace.
    Images,
    /// containerd runs a container from the pause image, without network.
    ContainerRun,
    /// The packages to hold are held.
    Held,
    /// The provenance file exists and is well-formed.
    Provenance,
    /// A new machine id and new SSH host keys (first boot).
    Identity,
    /// The build user is gone (first boot).
    BuildUser,
    /// No failed units (first boot).
    FailedUnits,
    /// cloud-init finished (first boot).
    CloudInit,
    /// The build guest reaches no network (no name resolves, no outbound TCP connection).
    Network,
    /// Written by the spec's author.
    User,
}

/// One check run in the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Unique, e.g. `version-containerd`, `sysctl-net.ipv4.ip_forward`.
    pub name: String,
    /// What it is about.
    pub kind: CheckKind,
    /// The whole POSIX sh script, `#!/bin/sh` first; exit 0 = pass, otherwise one line on
    /// stdout.
    pub script: String,
    /// How long the host lets it run.
    pub timeout: Duration,
}

/// The shell function every rendered (not user) check starts with.
const PRELUDE: &str = "\
# fail MESSAGE: print MESSAGE as one line on stdout and exit 1
fail() {
\tprintf '%s\\n' \"$(printf '%s' \"$*\" | tr '\\n\\t\\r' '   ' | cut -c1-400)\"
\texit 1
}
";

/// How many 1 s samples must all find a "waiting" unit active before the check fails. kubelet
/// without its configuration exits and is restarted after 10 s (RestartSec in its unit); on a
/// busy TCG host its start alone took over 3 s, so a short window saw it active throughout.
const WAITING_SAMPLES: u32 = 15;

impl Check {
    /// A rendered check: header, [`PRELUDE`], then `body`. The timeout is raised to
    /// [`crate::step::MIN_STEP_TIMEOUT`] when shorter (a busy TCG host is slow, not hung).
    pub(crate) fn new(name: String, kind: CheckKind, timeout: Duration, body: &str) -> Check {
        let mut script =
            format!("#!/bin/sh\n# nodeimg check: {name}\nset -eu\nexec </dev/null\n{PRELUDE}");
        if body.contains("\"$R") {
            // files are read under this root; sudo drops the variable in the guest
            script.push_str("R=${NODEIMG_CHECK_ROOT:-}\n");
        }
        script.push_str(body);
        if !script.ends_with('\n') {
            script.push('\n');
        }
        Check {
            name,
            kind,
            script,
            timeout: timeout.max(crate::step::MIN_STEP_TIMEOUT),
        }
    }

    /// The command line that runs the check as root from the build user's SSH session:
    /// `sudo -n /bin/sh -c '<script>' nodeimg-check-<name>`, like [`crate::Step::remote_command`].
    pub fn remote_command(&self) -> String {
        sudo_sh(&self.script, &format!("nodeimg-check-{}", self.name))
    }
}

/// How long a user check may run unless its `timeout` is changed.
pub const USER_CHECK_TIMEOUT: Duration = Duration::from_secs(180);

/// A check written by the spec's author: `script` is POSIX sh run as root (exit 0 = pass),
/// with stdin from `/dev/null` and no `set -eu` added. The name is validated
/// ([`shell::check_name`]); the script must be non-empty, without NUL, at most 64 KiB.
/// Its name is prefixed with `user-` so it cannot collide with a rendered check.
pub fn user_check(name: &str, script: &str) -> Result<Check> {
    shell::check_name("user check name", name)?;
    if script.trim().is_empty() {
        return Err(Error::invalid("user check script", name, "is empty"));
    }
    if script.contains('\0') {
        return Err(Error::invalid("user check script", name, "contains NUL"));
    }
    if script.len() > 64 * 1024 {
        return Err(Error::invalid(
            "user check script",
            name,
            "is larger than 64 KiB",
        ));
    }
    let name = format!("user-{name}");
    let mut text = format!("#!/bin/sh\n# nodeimg check: {name}\nexec </dev/null\n");
    text.push_str(script.strip_prefix("#!/bin/sh\n").unwrap_or(script));
    if !text.ends_with('\n') {
        text.push('\n');
    }
    Ok(Check {
        name,
        kind: CheckKind::User,
        script: text,
        timeout: USER_CHECK_TIMEOUT,
    })
}

/// The build guest's isolation: deb.debian.org must not resolve, and no TCP connection to the
/// internet (1.1.1.1:443, a Fastly mirror address :80) or to the host side of the user-mode
/// network (10.0.2.2:80) may open.
const NO_OUTBOUND_NETWORK: &str = "\
if getent hosts deb.debian.org >/dev/null 2>&1; then
\techo 'deb.debian.org resolves: the guest has a working resolver'; exit 1
fi
for target in 1.1.1.1/443 151.101.2.132/80 10.0.2.2/80; do
\tif timeout 5 bash -c \"exec 3<>/dev/tcp/$target\" 2>/dev/null; then
\t\techo \"a TCP connection to $target opened: the guest has outbound network\"; exit 1
\tfi
done
echo 'no name resolves, no outbound TCP connection opens'";

/// The `no-outbound-network` check of the build guest ([`CheckKind::Network`]): no name
/// resolves, no TCP connection to the internet or to the host side of the user-mode network
/// opens.
pub fn no_outbound_network_check() -> Check {
    Check::new(
        "no-outbound-network".to_owned(),
        CheckKind::Network,
        Duration::from_secs(60),
        NO_OUTBOUND_NETWORK,
    )
}

/// What the built node must show: the pins of the build (spec and lock) and the node role's
/// parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expectations {
    /// Kubernetes version, e.g. `v1.20.2` (kubeadm, kubelet, kubectl).
    pub kubernetes: String,
    /// containerd, e.g. `1.6.20`.
    pub containerd: String,
    /// runc, e.g. `1.1.5`.
    pub runc: String,
    /// CNI plugins, e.g. `1.1.1`.
    pub cni_plugins: String,
    /// crictl, e.g. `1.20.0`: what `crictl --version` must print (`crictl version v1.20.0`).
    pub crictl: String,
    /// The pause (sandbox) image, e.g. `k8s.gcr.io/pause:3.2`; one of [`Expectations::images`].
    pub pause_image: String,
    /// Every image reference that must be in containerd's `k8s.io` namespace, and no other.
    pub images: Vec<String>,
    /// The sysctls and their values ([`crate::NodeRole::sysctls`]).
    pub sysctls: Vec<(String, String)>,
    /// Packages that must be held.
    pub held_packages: Vec<String>,
}

impl Expectations {
    /// Checks every parameter that goes into a script; the error names the field.
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("kubernetes version", &self.kubernetes),
            ("containerd version", &self.containerd),
            ("runc version", &self.runc),
            ("CNI plugins version", &self.cni_plugins),
            ("crictl version", &self.crictl),
        ] {
            shell::check_version(field, v)?;
        }
        shell::check_image_ref("pause image", &self.pause_image)?;
        for (i, image) in self.images.iter().enumerate() {
            shell::check_image_ref("image", image)?;
            if image.starts_with("sha256:") {
                return Err(Error::invalid(
                    "image",
                    image,
                    "a digest-only name is not a reference",
                ));
            }
            if self.images[..i].contains(image) {
                return Err(Error::invalid("image", image, "given more than once"));
            }
        }
        if !self.images.contains(&self.pause_image) {
            return Err(Error::invalid(
                "pause image",
                &self.pause_image,
                "is not one of the pinned images",
            ));
        }
        for (i, (k, v)) in self.sysctls.iter().enumerate() {
            shell::check_sysctl_key("sysctl key", k)?;
            shell::check_sysctl_value("sysctl value", v)?;
            if self.sysctls[..i].iter().any(|(prev, _)| prev == k) {
                return Err(Error::invalid("sysctl key", k, "given more than once"));
            }
        }
        for (i, p) in self.held_packages.iter().enumerate() {
            shell::check_package_name("held package", p)?;
            if self.held_packages[..i].contains(p) {
                return Err(Error::invalid("held package", p, "given more than once"));
            }
        }
        Ok(())
    }
}

/// Renders `name=quoted value` lines for sh variables.
fn vars(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}\n", shell::quote(v)))
        .collect()
}

/// The kind of a service expectation.
#[derive(Debug, Clone, Copy)]
enum UnitState {
    /// Enabled and active.
    Running,
    /// Enabled, not active, no kubelet config (kubelet before kubeadm).
    Waiting,
    /// Disabled, masked or absent, and not active.
    Off,
}

/// A service check for `unit`. Waiting samples `is-active` up to 3 times 1 s apart and passes
/// on the first sample that is not `active`: a kubelet without configuration crash-loops
/// (`activating` between restarts) and may be caught in its short `active` window.
fn service_check(unit: &str, state: UnitState) -> Check {
    let head = vars(&[("unit", unit)]);
    let body = match state {
        UnitState::Running => "\
en=$(systemctl is-enabled -- \"$unit\" 2>/dev/null) || true
act=$(systemctl is-active -- \"$unit\" 2>/dev/null) || true
if [ \"$en\" != enabled ] || [ \"$act\" != active ]; then
\tfail \"$unit is ${en:-absent} and ${act:-unknown}, expected enabled and active\"
fi
"
        .to_owned(),
        UnitState::Waiting => format!(
            "en=$(systemctl is-enabled -- \"$unit\" 2>/dev/null) || true\n\
             if [ \"$en\" != enabled ]; then\n\
             \tfail \"$unit is ${{en:-absent}}, expected enabled (and not active)\"\n\
             fi\n\
             if [ -e \"$R\"{config} ]; then\n\
             \tfail \"$unit has its configuration {shown}, expected none (kubeadm has not run)\"\n\
             fi\n\
             i=0\n\
             while :; do\n\
             \tact=$(systemctl is-active -- \"$unit\" 2>/dev/null) || true\n\
             \tif [ \"$act\" != active ]; then\n\
             \t\tbreak\n\
             \tfi\n\
             \ti=$((i + 1))\n\
             \tif [ \"$i\" -ge {WAITING_SAMPLES} ]; then\n\
             \t\tfail \"$unit is enabled and active ({WAITING_SAMPLES} samples 1 s apart), expected enabled and not active\"\n\
             \tfi\n\
             \tsleep 1\n\
             done\n",
            config = shell::quote(KUBELET_CONFIG),
            shown = KUBELET_CONFIG,
        ),
        UnitState::Off => "\
en=$(systemctl is-enabled -- \"$unit\" 2>/dev/null) || true
act=$(systemctl is-active -- \"$unit\" 2>/dev/null) || true
case \"$en\" in
'' | disabled | masked | masked-runtime | not-found) ;;
*) fail \"$unit is $en, expected disabled, masked or absent\" ;;
esac
if [ \"$act\" = active ]; then
\tfail \"$unit is ${en:-absent} but active, expected not active\"
fi
"
        .to_owned(),
    };
    let prefix = match state {
        UnitState::Running | UnitState::Waiting => "service",
        UnitState::Off => "service-off",
    };
    let timeout = Duration::from_secs(120);
    Check::new(
        format!("{prefix}-{unit}"),
        CheckKind::Service,
        timeout,
        &format!("{head}{body}"),
    )
}

/// Checks that names are unique (a rendering bug otherwise).
fn unique(checks: Vec<Check>) -> Result<Vec<Check>> {
    for (i, c) in checks.iter().enumerate() {
        if checks[..i].iter().any(|p| p.name == c.name) {
            return Err(Error::invalid("check name", &c.name, "rendered twice"));
        }
    }
    Ok(checks)
}

/// Whether the distro's units are valid to interpolate (they are static facts, but checked
/// anyway so a typo fails loudly instead of producing a broken script).
fn check_units(distro: &Distro) -> Result<()> {
    for u in distro.auto_upgrade_units {
        shell::check_name("unit", u)?;
    }
    Ok(())
}
