//! The checks of a built node (before the seal).

use std::fmt::Write as _;
use std::time::Duration;

use super::{
    CONTAINER_RUN_ID, Check, CheckKind, Expectations, UnitState, check_units, service_check,
    unique, vars,
};
use crate::distro::{ContainerdConfigSchema, Distro};
use crate::error::Result;
use crate::node_role::{CONTAINERD_SOCKET, KERNEL_MODULES, MODULES_LOAD_FILE, PROVENANCE_FILE};
use crate::shell::quote_words;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Renders the checks of a built node for `distro`, in a stable order: versions, services,
/// sysctls, modules, swap, containerd (cgroup driver, pause image, images, a container run),
/// crictl, held packages, provenance. Fails with [`crate::Error::InvalidInput`] naming the
/// field when a parameter is not acceptable.
pub fn node_checks(distro: &Distro, expect: &Expectations) -> Result<Vec<Check>> {
    expect.validate()?;
    check_units(distro)?;
    let mut checks = vec![
        version_check(
            "containerd",
            "containerd --version",
            &expect.containerd,
            Rule::Distro,
            "awk 'NR == 1 {print $3}'",
        ),
        version_check(
            "runc",
            "runc --version",
            &expect.runc,
            Rule::Distro,
            "awk 'NR == 1 && $1 == \"runc\" && $2 == \"version\" {print $3}'",
        ),
        version_check(
            "kubeadm",
            "kubeadm version -o short",
            &expect.kubernetes,
            Rule::Exact,
            "awk '/^v[0-9]/ {print $1; exit}'",
        ),
        version_check(
            "kubelet",
            "kubelet --version",
            &expect.kubernetes,
            Rule::Exact,
            "awk '$1 == \"Kubernetes\" {print $2; exit}'",
        ),
        // 1.20: Client Version: version.Info{…GitVersion:"v1.20.2"…}; newer: Client Version: v1.30.2
        version_check(
            "kubectl",
            "kubectl version --client",
            &expect.kubernetes,
            Rule::Exact,
            "sed -n -e 's/^Client Version: version\\.Info{.*GitVersion:\"\\([^\"]*\\)\".*/\\1/p' \
             -e 's/^Client Version: \\(v[^ ]*\\)$/\\1/p' | sed -n 1p",
        ),
        cni_version(distro, &expect.cni_plugins),
        crictl_version(&expect.crictl),
        service_check("containerd.service", UnitState::Running),
        service_check("kubelet.service", UnitState::Waiting),
    ];
    for u in distro.auto_upgrade_units {
        checks.push(service_check(u, UnitState::Off));
    }
    for (k, v) in &expect.sysctls {
        checks.push(sysctl(k, v));
    }
    for m in KERNEL_MODULES {
        checks.push(module(m));
    }
    checks.push(swap());
    let ContainerdConfigSchema::V2 = distro.container_packages.containerd_config;
    checks.push(systemd_cgroup());
    checks.push(pause(&expect.pause_image));
    checks.push(images(&expect.images));
    checks.push(container_run(&expect.pause_image));
    checks.push(crictl());
    if !expect.held_packages.is_empty() {
        checks.push(held(&expect.held_packages));
    }
    checks.push(provenance());
    unique(checks)
}

/// How a found version is compared with the pin (after stripping a leading `v` from both).
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// Equal.
    Exact,
    /// Equal, or the pin followed by `~` or `+` (Debian builds: `1.6.20~ds1`, `1.1.5+ds1`).
    Distro,
}

/// `same_version FOUND PIN` for `rule`.
fn matcher(rule: Rule) -> &'static str {
    match rule {
        Rule::Exact => {
            "same_version() {\n\
             \t[ \"${1#v}\" = \"${2#v}\" ]\n\
             }\n"
        }
        Rule::Distro => {
            "same_version() {\n\
             \tf=${1#v}\n\
             \tp=${2#v}\n\
             \tcase \"$f\" in\n\
             \t\"$p\" | \"$p\"~* | \"$p\"+*) return 0 ;;\n\
             \tesac\n\
             \treturn 1\n\
             }\n"
        }
    }
}

/// `same_package_version VERSION PIN`: a Debian package version (epoch dropped) is the pin
/// followed by nothing, `~`, `+` or `-` (`1.1.1+ds1-3+b5`).
const PACKAGE_MATCHER: &str = "\
same_package_version() {
\tf=${1#*:}
\tp=${2#v}
\tcase \"$f\" in
\t\"$p\" | \"$p\"~* | \"$p\"+* | \"$p\"-*) return 0 ;;
\tesac
\treturn 1
}
";

fn version_check(component: &str, command: &str, pin: &str, rule: Rule, parse: &str) -> Check {
    let mut body = vars(&[("what", command), ("pin", pin)]);
    body.push_str(matcher(rule));
    let _ = write!(
        body,
        "if ! out=$({command} 2>&1); then\n\
         \tfail \"$what failed: $out; expected $pin\"\n\
         fi\n\
         found=$(printf '%s\\n' \"$out\" | {parse})\n\
         if [ -z \"$found\" ]; then\n\
         \tfail \"$what printed no version ($out), expected $pin\"\n\
         fi\n\
         if ! same_version \"$found\" \"$pin\"; then\n\
         \tfail \"$what says $found, expected $pin\"\n\
         fi\n"
    );
    Check::new(
        format!("version-{component}"),
        CheckKind::Version,
        secs(30),
        &body,
    )
}

/// The CNI plugins' version, from the `bridge` plugin: `/opt/cni/bin` (upstream binaries from
/// the payload) first, else the distro package's directory. Run without `CNI_COMMAND`, a plugin
/// prints `CNI bridge plugin v1.1.1` (upstream builds) or `CNI bridge plugin version unknown`
/// (Debian's build); then the version comes from `dpkg-query` for the distro's package.
fn cni_version(distro: &Distro, pin: &str) -> Check {
    let pkg = distro.container_packages.cni_plugins.name;
    let mut body = vars(&[
        ("pin", pin),
        ("upstream_dir", "/opt/cni/bin"),
        ("distro_dir", distro.container_packages.cni_plugins_dir),
        ("pkg", pkg),
    ]);
    body.push_str(matcher(Rule::Distro));
    body.push_str(PACKAGE_MATCHER);
    body.push_str(
        "dir=\n\
         for d in \"$upstream_dir\" \"$distro_dir\"; do\n\
         \tif [ -x \"$R$d/bridge\" ]; then\n\
         \t\tdir=$d\n\
         \t\tbreak\n\
         \tfi\n\
         done\n\
         if [ -z \"$dir\" ]; then\n\
         \tfail \"no CNI bridge plugin in $upstream_dir or $distro_dir, expected CNI plugins $pin\"\n\
         fi\n\
         # a link into the distro's directory is the distro's plugin\n\
         case \"$(readlink -f \"$R$dir/bridge\" 2>/dev/null || true)\" in\n\
         \"$R$distro_dir\"/*) dir=$distro_dir ;;\n\
         esac\n\
         out=$(CNI_COMMAND='' \"$R$dir/bridge\" --version 2>&1) || true\n\
         found=$(printf '%s\\n' \"$out\" | sed -n 's/^CNI bridge plugin //p' | sed -n 1p)\n\
         case \"$found\" in\n\
         '')\n\
         \tfail \"$dir/bridge printed no version ($out), expected $pin\"\n\
         \t;;\n\
         'version unknown')\n\
         \tif [ \"$dir\" != \"$distro_dir\" ]; then\n\
         \t\tfail \"$dir/bridge says version unknown, expected $pin\"\n\
         \tfi\n\
         \tif ! v=$(dpkg-query -W -f '${Version}' \"$pkg\" 2>&1); then\n\
         \t\tfail \"$dir/bridge says version unknown and dpkg-query knows no $pkg ($v), expected $pin\"\n\
         \tfi\n\
         \tif ! same_package_version \"$v\" \"$pin\"; then\n\
         \t\tfail \"dpkg-query says $pkg $v, expected $pin\"\n\
         \tfi\n\
         \t;;\n\
         *)\n\
         \tif ! same_version \"$found\" \"$pin\"; then\n\
         \t\tfail \"$dir/bridge says $found, expected $pin\"\n\
         \tfi\n\
         \t;;\n\
         esac\n",
    );
    Check::new(
        "version-cni-plugins".to_owned(),
        CheckKind::Version,
        secs(30),
        &body,
    )
}

/// crictl's version: `crictl --version` (`crictl version v1.20.0`), exactly the pin.
fn crictl_version(pin: &str) -> Check {
    version_check(
        "crictl",
        "crictl --version",
        pin,
        Rule::Exact,
        "awk '$1 == \"crictl\" && $2 == \"version\" {print $3; exit}'",
    )
}

/// A sysctl read from `/proc/sys` by one `cat` (not `sysctl`, `tr` and `awk`: under TCG each
/// process costs ~0.1 s); the kernel's whitespace (tabs between the fields of a multi-value
/// sysctl, the final newline) is folded to single spaces by the shell's field splitting. The
/// key's dots become slashes, as `sysctl` maps them. Not the `read` builtin: it reads a byte
/// at a time, and the kernel answers a read of an integer sysctl at a non-zero offset with
/// end of file (a real guest saw `1` for `kernel.panic = 10`).
fn sysctl(key: &str, value: &str) -> Check {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let mut body = vars(&[("key", key), ("want", value), ("path", &path)]);
    body.push_str(
        "if ! got=$(cat \"$R$path\" 2>&1); then\n\
         \tfail \"sysctl $key: $got; expected $want\"\n\
         fi\n\
         set -f\n\
         # shellcheck disable=SC2086 # field splitting folds the kernel's tabs and newlines\n\
         set -- $got\n\
         got=\"$*\"\n\
         if [ \"$got\" != \"$want\" ]; then\n\
         \tfail \"sysctl $key is $got, expected $want\"\n\
         fi\n",
    );
    Check::new(format!("sysctl-{key}"), CheckKind::Sysctl, secs(10), &body)
}

fn module(name: &str) -> Check {
    let mut body = vars(&[("m", name), ("file", MODULES_LOAD_FILE)]);
    body.push_str(
        "if [ ! -d \"$R/sys/module/$m\" ]; then\n\
         \tfail \"kernel module $m is not loaded (no /sys/module/$m), expected loaded\"\n\
         fi\n\
         if [ ! -f \"$R$file\" ]; then\n\
         \tfail \"$file is missing, expected it to list $m\"\n\
         fi\n\
         if ! awk -v m=\"$m\" '$1 == m {found = 1} END {exit !found}' \"$R$file\"; then\n\
         \tfail \"kernel module $m is not listed in $file, expected listed\"\n\
         fi\n",
    );
    Check::new(format!("module-{name}"), CheckKind::Module, secs(10), &body)
}

fn swap() -> Check {
    let body = "\
if ! active=$(swapon --show=NAME --noheadings 2>&1); then
\tfail \"swapon --show failed: $active; expected no active swap\"
fi
if [ -n \"$active\" ]; then
\tfail \"swap is active on $active, expected none\"
fi
if [ -f \"$R/etc/fstab\" ]; then
\tentries=$(awk '$1 !~ /^#/ && $3 == \"swap\" {printf \"%s%s\", sep, $1; sep = \" \"}' \"$R/etc/fstab\")
\tif [ -n \"$entries\" ]; then
\t\tfail \"/etc/fstab has swap entries $entries, expected none\"
\tfi
fi
";
    Check::new("swap-off".to_owned(), CheckKind::Swap, secs(10), body)
}

/// `toml_get SECTION KEY`: the value of KEY in SECTION of `$dump` (`containerd config dump`),
/// surrounding double quotes removed; empty when absent.
const TOML_GET: &str = "\
toml_get() {
\tprintf '%s\\n' \"$dump\" | awk -v s=\"$1\" -v k=\"$2\" '
\t\t/^[[:space:]]*\\[/ { cur = $0; gsub(/^[[:space:]]+|[[:space:]]+$/, \"\", cur); next }
\t\tcur == s && $1 == k && $2 == \"=\" { v = $0; sub(/^[^=]*=[[:space:]]*/, \"\", v); gsub(/^\"|\"$/, \"\", v); print v; exit }'
}
if ! dump=$(containerd config dump 2>&1); then
\tfail \"containerd config dump failed: $dump\"
fi
";
/// The CRI plugin's table in a `version = 2` containerd config.
const CRI_SECTION: &str = "[plugins.\"io.containerd.grpc.v1.cri\"]";
const CRI_CONTAINERD_SECTION: &str = "[plugins.\"io.containerd.grpc.v1.cri\".containerd]";
const RUNC_OPTIONS_SECTION: &str =
    "[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc.options]";

/// `SystemdCgroup = true` in what containerd reads (`containerd config dump` merges the file,
/// its imports and the defaults), for the runc runtime, which must be the default one.
fn systemd_cgroup() -> Check {
    let mut body = vars(&[
        ("containerd_section", CRI_CONTAINERD_SECTION),
        ("options_section", RUNC_OPTIONS_SECTION),
    ]);
    body.push_str(TOML_GET);
    body.push_str(
        "default=$(toml_get \"$containerd_section\" default_runtime_name)\n\
         if [ \"$default\" != runc ]; then\n\
         \tfail \"containerd config dump has default_runtime_name = ${default:-(not set)}, expected runc\"\n\
         fi\n\
         got=$(toml_get \"$options_section\" SystemdCgroup)\n\
         if [ \"$got\" != true ]; then\n\
         \tfail \"containerd config dump has SystemdCgroup = ${got:-(not set)} in $options_section, expected true\"\n\
         fi\n",
    );
    Check::new(
        "containerd-systemd-cgroup".to_owned(),
        CheckKind::SystemdCgroup,
        secs(30),
        &body,
    )
}

fn pause(image: &str) -> Check {
    let mut body = vars(&[("section", CRI_SECTION), ("want", image)]);
    body.push_str(TOML_GET);
    body.push_str(
        "got=$(toml_get \"$section\" sandbox_image)\n\
         if [ \"$got\" != \"$want\" ]; then\n\
         \tfail \"containerd config dump has sandbox_image = ${got:-(not set)}, expected $want\"\n\
         fi\n\
         if ! list=$(ctr -n k8s.io images ls -q 2>&1); then\n\
         \tfail \"ctr -n k8s.io images ls -q failed: $list; expected $want present\"\n\
         fi\n\
         if ! printf '%s\\n' \"$list\" | grep -qFx -- \"$want\"; then\n\
         \tfail \"pause image $want is not in containerd's k8s.io namespace, expected present\"\n\
         fi\n",
    );
    Check::new("pause-image".to_owned(), CheckKind::Pause, secs(30), &body)
}

/// Exactly `wanted` (by reference; digest-only `sha256:` names ignored) in `k8s.io`.
fn images(wanted: &[String]) -> Check {
    let want = wanted.join(" ");
    let mut body = vars(&[("want", &want)]);
    let _ = write!(
        body,
        "if ! list=$(ctr -n k8s.io images ls -q 2>&1); then\n\
         \tfail \"ctr -n k8s.io images ls -q failed: $list; expected $want\"\n\
         fi\n\
         {missing}\
         unexpected=$(printf '%s\\n' \"$list\" | awk -v want=\" $want \" \\\n\
         \t'NF && $1 !~ /^sha256:/ && index(want, \" \" $1 \" \") == 0 {{printf \" %s\", $1}}')\n\
         if [ -n \"$missing\" ] || [ -n \"$unexpected\" ]; then\n\
         \tfail \"images in k8s.io: missing:${{missing:- none}}, unexpected:${{unexpected:- none}}; expected exactly $want\"\n\
         fi\n",
        missing = missing_from("list", wanted),
    );
    Check::new("images".to_owned(), CheckKind::Images, secs(30), &body)
}

/// Runs the pause image with `ctr run -d` (a new network namespace with no CNI: no network),
/// waits for the task to be RUNNING, then kills and deletes it; the EXIT trap cleans up on
/// every path. The id is [`CONTAINER_RUN_ID`] and the shell's pid, so a leftover of an
/// earlier run cannot collide.
fn container_run(image: &str) -> Check {
    let mut body = vars(&[("image", image), ("base", CONTAINER_RUN_ID)]);
    body.push_str(
        "id=\"$base-$$\"\n\
         cleanup() {\n\
         \tctr -n k8s.io tasks delete -f \"$id\" >/dev/null 2>&1 || true\n\
         \tctr -n k8s.io containers rm \"$id\" >/dev/null 2>&1 || true\n\
         }\n\
         trap cleanup EXIT\n\
         trap 'exit 143' HUP INT TERM\n\
         if ! out=$(timeout 60 ctr -n k8s.io run -d --net-host=false \"$image\" \"$id\" 2>&1); then\n\
         \tfail \"ctr run of $image failed: $out; expected a running container\"\n\
         fi\n\
         i=0\n\
         while :; do\n\
         \tstatus=$(ctr -n k8s.io tasks ls 2>&1 | awk -v id=\"$id\" '$1 == id {print $3}')\n\
         \tif [ \"$status\" = RUNNING ]; then\n\
         \t\tbreak\n\
         \tfi\n\
         \ti=$((i + 1))\n\
         \tif [ \"$i\" -ge 10 ]; then\n\
         \t\tfail \"container $id from $image is ${status:-not listed} after 10 s, expected RUNNING\"\n\
         \tfi\n\
         \tsleep 1\n\
         done\n\
         cleanup\n\
         if ctr -n k8s.io containers ls -q 2>/dev/null | grep -qFx -- \"$id\"; then\n\
         \tfail \"container $id is still there after ctr containers rm, expected removed\"\n\
         fi\n",
    );
    Check::new(
        "container-run".to_owned(),
        CheckKind::ContainerRun,
        secs(120),
        &body,
    )
}

fn crictl() -> Check {
    let mut body = vars(&[
        ("file", "/etc/crictl.yaml"),
        ("want", &format!("unix://{CONTAINERD_SOCKET}")),
    ]);
    body.push_str(
        "if [ ! -f \"$R$file\" ]; then\n\
         \tfail \"$file is missing, expected runtime-endpoint: $want\"\n\
         fi\n\
         got=$(awk '$1 == \"runtime-endpoint:\" {v = $2; gsub(/\"/, \"\", v); print v; exit}' \"$R$file\")\n\
         if [ \"$got\" != \"$want\" ]; then\n\
         \tfail \"$file has runtime-endpoint: ${got:-(none)}, expected $want\"\n\
         fi\n\
         if ! out=$(crictl ps 2>&1); then\n\
         \tfail \"crictl ps failed: $out; expected success\"\n\
         fi\n",
    );
    Check::new("crictl".to_owned(), CheckKind::Crictl, secs(30), &body)
}

/// Sets `missing` to each of `words` (as ` a b`) that is not a whole line of the variable
/// `list_var`.
fn missing_from(list_var: &str, words: &[String]) -> String {
    format!(
        "missing=\n\
         for w in {words}; do\n\
         \tif ! printf '%s\\n' \"${list_var}\" | grep -qFx -- \"$w\"; then\n\
         \t\tmissing=\"$missing $w\"\n\
         \tfi\n\
         done\n",
        words = quote_words(words),
    )
}

fn held(packages: &[String]) -> Check {
    let want = packages.join(" ");
    let mut body = vars(&[("want", &want)]);
    let _ = write!(
        body,
        "if ! held=$(apt-mark showhold 2>&1); then\n\
         \tfail \"apt-mark showhold failed: $held; expected held: $want\"\n\
         fi\n\
         {missing}\
         if [ -n \"$missing\" ]; then\n\
         \tlisted=$(printf '%s\\n' \"$held\" | awk 'NF {{printf \"%s%s\", sep, $1; sep = \" \"}}')\n\
         \tfail \"not held:$missing (apt-mark showhold lists ${{listed:-nothing}}), expected held: $want\"\n\
         fi\n",
        missing = missing_from("held", packages),
    );
    Check::new("held-packages".to_owned(), CheckKind::Held, secs(30), &body)
}

fn provenance() -> Check {
    let mut body = vars(&[("file", PROVENANCE_FILE)]);
    body.push_str(
        "if [ ! -f \"$R$file\" ]; then\n\
         \tfail \"$file is missing, expected the provenance file\"\n\
         fi\n\
         bad=$(awk '!/^[A-Za-z_][A-Za-z0-9_]*=/ {print NR; exit}' \"$R$file\")\n\
         if [ -n \"$bad\" ]; then\n\
         \tfail \"$file line $bad is not KEY=value, expected KEY=value lines\"\n\
         fi\n",
    );
    Check::new(
        "provenance".to_owned(),
        CheckKind::Provenance,
        secs(10),
        &body,
    )
}
