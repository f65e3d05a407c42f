//! A sandbox that runs a rendered check's remote command under the real `/bin/sh`: stub
//! executables (driven by files in a state directory) first and only on `PATH`, plus a small
//! allow-list of host tools the scripts may use (awk, sed, grep, …), and the files the scripts
//! read under `$NODEIMG_CHECK_ROOT`.
//!
//! The stubs print what the real tools print; the outputs were taken on Debian 12 from
//! containerd 1.6.20~ds1-1+deb12u3, runc 1.1.5+ds1-1+deb12u1, containernetworking-plugins
//! 1.1.1+ds1-3+b5, kubeadm/kubelet/kubectl v1.20.2 (built from Debian's source), systemd 252,
//! dpkg-query, getent (see the constants below).

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use crate::checks::Check;

/// Host tools the check scripts may call besides the stubs.
const HOST_TOOLS: &[&str] = &[
    "awk",
    "sed",
    "grep",
    "tr",
    "cut",
    "cat",
    "sleep",
    "timeout",
    "wc",
    "rm",
    "mkdir",
    "readlink",
    "ssh-keygen",
];

/// `containerd --version` of Debian 12's containerd (upstream prints `v1.6.20 <commit>`).
pub const CONTAINERD_VERSION: &str =
    "containerd github.com/containerd/containerd 1.6.20~ds1 1.6.20~ds1-1+deb12u3";
/// `runc --version` of Debian 12's runc.
pub const RUNC_VERSION: &str = "runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\nspec: 1.0.2-dev\ngo: go1.19.8\nlibseccomp: 2.5.4";
/// `kubectl version --client` of kubectl 1.20.2.
pub const KUBECTL_120: &str = "Client Version: version.Info{Major:\"1\", Minor:\"20\", GitVersion:\"v1.20.2\", GitCommit:\"faecb196815e248d3ecfb03c680a4507229c2a56\", GitTreeState:\"archive\", BuildDate:\"2024-11-30T08:14:25Z\", GoVersion:\"go1.19.8\", Compiler:\"gc\", Platform:\"linux/amd64\"}";
/// `ctr version` (Client part) of Debian 12's containerd; the crictl stand-in reads it.
pub const CTR_VERSION: &str = "Client:\n  Version:  1.6.20~ds1\n  Revision: 1.6.20~ds1-1+deb12u3\n  Go version: go1.19.8\n\nServer:\n  Version:  1.6.20~ds1\n  Revision: 1.6.20~ds1-1+deb12u3\n  UUID: 47227874-b534-4ae0-abdc-ee94d3e77a53";
/// `containerd config dump` of containerd 1.6.20 after the node role's edits.
pub const CONFIG_DUMP: &str = include_str!("containerd-1.6.20-config-dump.toml");
/// What the node role writes to /etc/crictl.yaml.
pub const CRICTL_YAML: &str = "runtime-endpoint: unix:///run/containerd/containerd.sock\nimage-endpoint: unix:///run/containerd/containerd.sock\ntimeout: 10\n";

const CONTAINERD: &str = r#"case "$*" in
--version) cat "$S/containerd.version" ;;
"config dump") [ ! -f "$S/containerd.dump-fails" ] || { cat "$S/containerd.dump-fails" >&2; exit 1; }; cat "$S/config-dump.toml" ;;
*) echo "containerd stub: unexpected $*" >&2; exit 2 ;;
esac
"#;

const SIMPLE: &str = r#"[ "$*" = "$(cat "$S/$NAME.args")" ] || { echo "$NAME stub: unexpected $*" >&2; exit 2; }
cat "$S/$NAME.out"
exit "$(cat "$S/$NAME.rc" 2>/dev/null || echo 0)"
"#;

/// `ctr -n k8s.io …`: images in `$S/images`, containers in `$S/containers`, tasks in
/// `$S/tasks` (`ID PID STATUS`); a new task gets the status in `$S/task-status` (RUNNING by
/// default); `$S/rm-fails` makes `containers rm` fail.
const CTR: &str = r#"if [ "$1" = version ]; then cat "$S/ctr.version"; exit 0; fi
[ "$1 $2" = "-n k8s.io" ] || { echo "ctr stub: unexpected $*" >&2; exit 2; }
shift 2
touch "$S/containers" "$S/tasks"
case "$1 $2" in
"images ls")
	[ ! -f "$S/images-fail" ] || { cat "$S/images-fail" >&2; exit 1; }
	cat "$S/images" ;;
"containers ls")
	[ ! -f "$S/containers-fail" ] || { cat "$S/containers-fail" >&2; exit 1; }
	cat "$S/containers" ;;
"run -d")
	[ "$3" = --net-host=false ] || { echo "ctr stub: run without --net-host=false" >&2; exit 2; }
	img=$4 id=$5
	if ! grep -qFx -- "$img" "$S/images"; then echo "ctr: image \"$img\": not found" >&2; exit 1; fi
	if grep -qFx -- "$id" "$S/containers"; then echo "ctr: snapshot \"$id\": already exists" >&2; exit 1; fi
	echo "$id" >> "$S/containers"
	echo "$id 4242 $(cat "$S/task-status" 2>/dev/null || echo RUNNING)" >> "$S/tasks"
	echo "$id" >> "$S/runs" ;;
"tasks ls")
	printf '%-20s %-8s %-10s\n' TASK PID STATUS
	awk '{printf "%-20s %-8s %-10s\n", $1, $2, $3}' "$S/tasks" ;;
"tasks delete")
	# ctr refuses to delete a running task unless forced (-f kills it first)
	id=${4:-$3}
	if [ "$3" != -f ] && awk -v id="$id" '$1 == id && $3 == "RUNNING" {f = 1} END {exit !f}' "$S/tasks"; then
		echo "ctr: cannot delete a non stopped process: failed precondition" >&2; exit 1
	fi
	awk -v id="$id" '$1 != id' "$S/tasks" > "$S/tasks.new"; mv "$S/tasks.new" "$S/tasks" ;;
"containers rm")
	[ ! -f "$S/rm-fails" ] || exit 1
	awk -v id="$3" '$1 != id' "$S/containers" > "$S/containers.new"; mv "$S/containers.new" "$S/containers" ;;
*) echo "ctr stub: unexpected $*" >&2; exit 2 ;;
esac
"#;

/// systemctl 252: `is-enabled`/`is-active` from `$S/units/UNIT.enabled|.active` (an
/// `.active` file with several lines answers line by line, keeping the last);
/// `list-units --state=failed …` from `$S/failed-units`.
const SYSTEMCTL: &str = r#"case "$1" in
is-enabled)
	[ "$2" = -- ] || { echo "systemctl stub: no --" >&2; exit 2; }
	f="$S/units/$3.enabled"
	if [ ! -f "$f" ]; then echo "Failed to get unit file state for $3: No such file or directory" >&2; exit 1; fi
	st=$(cat "$f"); echo "$st"
	case "$st" in enabled | enabled-runtime | static | alias | indirect | generated | transient) exit 0 ;; esac
	exit 1 ;;
is-active)
	[ "$2" = -- ] || { echo "systemctl stub: no --" >&2; exit 2; }
	f="$S/units/$3.active"
	st=inactive
	if [ -f "$f" ]; then
		st=$(sed -n 1p "$f")
		if [ "$(wc -l < "$f")" -gt 1 ]; then sed -i 1d "$f"; fi
	fi
	echo "$st"
	[ "$st" = active ] ;;
list-units)
	[ "$*" = "list-units --state=failed --plain --no-legend --no-pager" ] || { echo "systemctl stub: unexpected $*" >&2; exit 2; }
	cat "$S/failed-units" 2>/dev/null || true ;;
*) echo "systemctl stub: unexpected $*" >&2; exit 2 ;;
esac
"#;

const SWAPON: &str = r#"[ "$*" = "--show=NAME --noheadings" ] || { echo "swapon stub: unexpected $*" >&2; exit 2; }
cat "$S/swaps" 2>/dev/null || true
"#;

const DPKG_QUERY: &str = r#"[ "$1 $2 $3" = '-W -f ${Version}' ] || { echo "dpkg-query stub: unexpected $*" >&2; exit 2; }
if [ ! -f "$S/dpkg/$4" ]; then echo "dpkg-query: no packages found matching $4" >&2; exit 1; fi
printf '%s' "$(cat "$S/dpkg/$4")"
"#;

const APT_MARK: &str = r#"[ "$*" = showhold ] || { echo "apt-mark stub: unexpected $*" >&2; exit 2; }
cat "$S/held" 2>/dev/null || true
"#;

const GETENT: &str = r#"[ "$1" = passwd ] || { echo "getent stub: unexpected $*" >&2; exit 2; }
if [ -f "$S/passwd/$2" ]; then cat "$S/passwd/$2"; exit 0; fi
exit 2
"#;

const CLOUD_INIT: &str = r#"[ "$*" = "status --wait" ] || { echo "cloud-init stub: unexpected $*" >&2; exit 2; }
cat "$S/cloud-init.out"
exit "$(cat "$S/cloud-init.rc" 2>/dev/null || echo 0)"
"#;

const SUDO: &str = r#"[ "$1" = -n ] || { echo "sudo stub: expected -n" >&2; exit 2; }
shift
exec "$@"
"#;

/// The result of running a check.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// A sandbox directory with `bin/` (stubs and allowed host tools), `root/` and `state/`.
pub struct Sandbox {
    dir: TempDir,
}

impl Sandbox {
    /// An empty sandbox: the allowed host tools and `sudo`, no stubs.
    pub fn bare() -> Sandbox {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["bin", "root", "state"] {
            fs::create_dir(dir.path().join(sub)).unwrap();
        }
        let sb = Sandbox { dir };
        for tool in HOST_TOOLS {
            let host = ["/usr/bin", "/bin", "/usr/sbin", "/sbin"]
                .iter()
                .map(|d| Path::new(d).join(tool))
                .find(|p| p.exists())
                .unwrap_or_else(|| panic!("host tool {tool} not found"));
            std::os::unix::fs::symlink(host, sb.bin().join(tool)).unwrap();
        }
        // `touch` and `mv` for the stubs only
        for tool in ["touch", "mv"] {
            let host = Path::new("/usr/bin").join(tool);
            let host = if host.exists() {
                host
            } else {
                Path::new("/bin").join(tool)
            };
            std::os::unix::fs::symlink(host, sb.bin().join(tool)).unwrap();
        }
        sb.raw_stub("sudo", SUDO);
        sb
    }

    pub fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes `bin/NAME`: `#!/bin/sh`, `S`, `NAME`, then `body`.
    pub fn stub(&self, name: &str, body: &str) {
        let text = format!(
            "#!/bin/sh\nS='{}'\nNAME='{name}'\n{body}",
            self.state().display()
        );
        self.raw_stub(name, &text);
    }

    /// Writes `bin/NAME` as given (a `#!/bin/sh` line is added when missing).
    pub fn raw_stub(&self, name: &str, text: &str) {
        let text = if text.starts_with("#!") {
            text.to_owned()
        } else {
            format!("#!/bin/sh\n{text}")
        };
        let path = self.bin().join(name);
        let _ = fs::remove_file(&path);
        fs::write(&path, text).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }

    /// Removes `bin/NAME` (stub or host tool).
    pub fn remove_tool(&self, name: &str) {
        fs::remove_file(self.bin().join(name)).unwrap();
    }

    /// A stub that prints `out` (and exits `rc`) when called with exactly `args`.
    pub fn simple(&self, name: &str, args: &str, out: &str, rc: i32) {
        self.set(&format!("{name}.args"), args);
        self.set(&format!("{name}.out"), &format!("{out}\n"));
        self.set(&format!("{name}.rc"), &rc.to_string());
        self.stub(name, SIMPLE);
    }

    /// Writes `root/PATH` (parents created).
    pub fn file(&self, path: &str, content: &str) {
        let p = self.root().join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    /// An executable `root/PATH` with `content`.
    pub fn exe(&self, path: &str, content: &[u8]) {
        let p = self.root().join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    }

    pub fn mkdir(&self, path: &str) {
        fs::create_dir_all(self.root().join(path.trim_start_matches('/'))).unwrap();
    }

    pub fn remove(&self, path: &str) {
        let p = self.root().join(path.trim_start_matches('/'));
        if p.is_dir() {
            fs::remove_dir_all(p).unwrap();
        } else {
            fs::remove_file(p).unwrap();
        }
    }

    /// Writes `state/NAME` (parents created).
    pub fn set(&self, name: &str, content: &str) {
        let p = self.state().join(name);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, content).unwrap();
    }

    pub fn unset(&self, name: &str) {
        let _ = fs::remove_file(self.state().join(name));
    }

    pub fn get(&self, name: &str) -> String {
        fs::read_to_string(self.state().join(name)).unwrap_or_default()
    }

    /// The state of a unit for the systemctl stub.
    pub fn unit(&self, unit: &str, enabled: Option<&str>, active: &str) {
        match enabled {
            Some(e) => self.set(&format!("units/{unit}.enabled"), e),
            None => self.unset(&format!("units/{unit}.enabled")),
        }
        self.set(&format!("units/{unit}.active"), active);
    }

    /// Runs the check's remote command with `sh -c`, the sandbox's `PATH` only and
    /// `NODEIMG_CHECK_ROOT` set, under a 120 s `timeout`.
    pub fn run(&self, check: &Check) -> Run {
        let out = Command::new("/usr/bin/timeout")
            .arg("120")
            .arg("/bin/sh")
            .arg("-c")
            .arg(check.remote_command())
            .env_clear()
            .env("PATH", self.bin())
            .env("NODEIMG_CHECK_ROOT", self.root())
            .current_dir(self.dir.path())
            .output()
            .expect("/bin/sh runs");
        Run {
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs the check and asserts it passed, silently on stdout.
    pub fn pass(&self, check: &Check) {
        let r = self.run(check);
        assert!(
            r.code == Some(0) && r.stdout.is_empty(),
            "{} should pass: {r:?}\n{}",
            check.name,
            check.script
        );
    }

    /// Runs the check, asserts it failed with exactly one line on stdout containing every
    /// `needle`, and returns that line.
    pub fn fail(&self, check: &Check, needles: &[&str]) -> String {
        let r = self.run(check);
        assert_eq!(
            r.code,
            Some(1),
            "{} should fail: {r:?}\nstderr: {}",
            check.name,
            r.stderr
        );
        let lines: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(lines.len(), 1, "{}: one line expected: {r:?}", check.name);
        assert!(r.stdout.ends_with('\n'));
        for n in needles {
            assert!(
                lines[0].contains(n),
                "{}: {n:?} not in {:?}",
                check.name,
                lines[0]
            );
        }
        lines[0].to_owned()
    }
}

/// The stubs every node check needs, behaving like a healthy node (see [`healthy`]).
pub fn install_stubs(sb: &Sandbox) {
    sb.stub("containerd", CONTAINERD);
    sb.stub("ctr", CTR);
    sb.stub("systemctl", SYSTEMCTL);
    sb.stub("swapon", SWAPON);
    sb.stub("dpkg-query", DPKG_QUERY);
    sb.stub("apt-mark", APT_MARK);
    sb.stub("getent", GETENT);
    sb.stub("cloud-init", CLOUD_INIT);
}

/// The crictl stand-in as shipped in the fixture payload (installed as `/usr/local/bin/crictl`).
pub fn crictl_standin() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../fixtures/payload/crictl");
    fs::read_to_string(path).expect("fixtures/payload/crictl")
}

/// Whether tests must not skip for a missing host tool (`NODEIMG_REQUIRE_TOOLS` set, as in CI).
pub fn require_tools() -> bool {
    std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_some()
}
