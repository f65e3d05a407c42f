//! The build's output: the checks' JUnit report, the export of the golden disk to every
//! requested format (through the exporters), the manifest with the build's record, written
//! last, and the rename of the finished directory into place.

use std::path::Path;
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use exporters::manifest::{BuildFile, BuildSection, MANIFEST_FILE, SUMS_FILE};
use exporters::{ExportOptions, Manifest, Progress};
use serde_json::json;

use super::BuildOptions;
use super::inputs::Inputs;
use super::validate::CheckResult;
use crate::build::report::Reporter;

/// The sealed raw disk.
pub const GOLDEN: &str = "golden.raw";
/// The checks' report.
pub const JUNIT: &str = "validation.junit.xml";
/// Everything the build said and every guest command's output.
pub const BUILD_LOG: &str = "build.log";
/// The build guest's serial console.
pub const SERIAL_LOG: &str = "serial.log";
/// The boot test guest's serial console.
pub const BOOT_TEST_SERIAL_LOG: &str = "boot-test-serial.log";

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

/// Writes `validation.junit.xml` into `dir` (atomically).
pub fn write_junit(dir: &Path, suite: &str, results: &[CheckResult]) -> Result<()> {
    let cases: Vec<crate::junit::CaseResult> = results
        .iter()
        .map(|r| crate::junit::CaseResult {
            name: r.name.clone(),
            classname: r.class.clone(),
            duration: r.took,
            outcome: match &r.failure {
                None => crate::junit::Outcome::Passed,
                Some(message) => crate::junit::Outcome::Failed {
                    message: message.clone(),
                    output: r.output.clone(),
                },
            },
        })
        .collect();
    let path = dir.join(JUNIT);
    crate::junit::write(&path, suite, &cases).with_context(|| format!("writing {}", path.display()))
}

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

fn sha256_of(path: &Path) -> Result<BuildFile> {
    let (sha256, size) = crate::cache::hash_file(path)?;
    Ok(BuildFile {
        file: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        size,
        sha256,
    })
}

fn write_atomic(dir: &Path, name: &str, data: &[u8]) -> Result<()> {
    let path = dir.join(name);
    crate::atomic::write_atomic(&path, data).with_context(|| format!("writing {}", path.display()))
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

/// Adds the build's files and record to the exporters' `manifest` and writes SHA256SUMS, then
/// the manifest, last. `build.log` must be closed: its digest goes in.
pub fn write_manifest(
    mut manifest: Manifest,
    inputs: &Inputs,
    staging: &Path,
    reporter: &Reporter,
    kubeadm_ran: bool,
) -> Result<()> {
    let spec = &inputs.spec;
    let golden = staging.join(GOLDEN);
    let golden_file = sha256_of(&golden)?;
    if golden_file.sha256 != manifest.content_sha256 {
        bail!(
            "{}: sha256 {} differs from the exports' content digest {}",
            golden.display(),
            golden_file.sha256,
            manifest.content_sha256
        );
    }
    let mut files = vec![golden_file];
    for name in [
        JUNIT,
        BUILD_LOG,
        SERIAL_LOG,
        BOOT_TEST_SERIAL_LOG,
        crate::bom::BOM_FILE,
        crate::bom::SBOM_FILE,
    ] {
        files.push(sha256_of(&staging.join(name))?);
    }
    let components: Vec<serde_json::Value> = inputs
        .lock
        .artifacts
        .iter()
        .filter(|a| a.component.is_some())
        .map(|a| {
            json!({
                "name": a.name, "component": a.component, "version": a.version,
                "sha256": a.sha256, "source": a.source, "note": a.note,
            })
        })
        .collect();
    let timings: serde_json::Map<String, serde_json::Value> = reporter
        .timings()
        .into_iter()
        .map(|(phase, d)| (phase, json!((d.as_secs_f64() * 10.0).round() / 10.0)))
        .collect();
    manifest.build = Some(BuildSection {
        files,
        record: json!({
            "nodeimg_version": env!("CARGO_PKG_VERSION"),
            "spec": spec.path.file_name().map(|n| n.to_string_lossy().into_owned()),
            "spec_sha256": spec.sha256,
            "lock_sha256": inputs.lock.sha256,
            "base_sha256": spec.base.sha256,
            "distro": spec.image.distro,
            "kubernetes_version": spec.kubernetes_version,
            "components": components,
            "kubeadm_test": if kubeadm_ran { "passed" } else { "skipped" },
            "coredns": "skipped: not in the payload",
            "phase_seconds": timings,
        }),
    });
    write_atomic(staging, SUMS_FILE, manifest.sums().as_bytes())?;
    write_atomic(staging, MANIFEST_FILE, manifest.to_json().as_bytes())?;
    Ok(())
}

/// Moves the finished `staging` directory to `final_dir`, replacing an older build there only
/// after the new one is complete.
pub fn publish(staging: &Path, final_dir: &Path) -> Result<()> {
    if !staging.join(MANIFEST_FILE).is_file() {
        bail!("{}: no manifest; refusing to publish", staging.display());
    }
    let old = final_dir.with_extension("old");
    if final_dir.exists() {
        if old.exists() {
            std::fs::remove_dir_all(&old)?;
        }
        std::fs::rename(final_dir, &old)
            .with_context(|| format!("moving the previous {} aside", final_dir.display()))?;
    }
    std::fs::rename(staging, final_dir)
        .with_context(|| format!("renaming {} to {}", staging.display(), final_dir.display()))?;
    if old.exists() {
        std::fs::remove_dir_all(&old)?;
    }
    Ok(())
}

fn named(class: &str, checks: Vec<distros::checks::Check>) -> Vec<super::validate::NamedCheck> {
    checks
        .into_iter()
        .map(|c| super::validate::NamedCheck {
            class: class.to_owned(),
            command: super::guest::GuestCommand {
                command: c.remote_command(),
                name: c.name,
                timeout: c.timeout,
            },
        })
        .collect()
}

/// The node checks for these inputs (versions equal to the pins, services, sysctls, modules,
/// swap, containerd's effective config, crictl, exactly the pinned images, a container run),
/// then the spec's own checks.
pub fn validation_checks(inputs: &Inputs) -> Result<Vec<super::validate::NamedCheck>> {
    let spec = &inputs.spec;
    let c = &spec.components;
    let role = super::provision::node_role(inputs);
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
    checks.push(super::validate::NamedCheck {
        class: "validation".into(),
        command: super::guest::GuestCommand::user_script(
            "",
            "no-outbound-network",
            NO_NETWORK_CHECK,
            std::time::Duration::from_secs(60),
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
    inputs: &Inputs,
    identity: &super::BuildIdentity,
    user: &str,
) -> Result<Vec<super::validate::NamedCheck>> {
    let boot = distros::checks::FirstBoot {
        build_user: user.to_owned(),
        old_machine_id: identity.machine_id.clone(),
        old_host_key_fingerprints: identity.host_key_fingerprints.clone(),
        ignorable_failed_units: Vec::new(),
    };
    Ok(named(
        "boot-test",
        distros::checks::first_boot_checks(inputs.distro, &boot)?,
    ))
}

/// One result per serial console: passed when the scan finds no kernel panic, oops, segfault,
/// OOM kill, emergency shell or ordering cycle; else the findings with their line numbers.
pub fn console_result(name: &str, serial: &str) -> CheckResult {
    let findings = distros::console::scan_console(serial);
    let text: Vec<String> = findings
        .iter()
        .map(|f| format!("line {}: {}: {}", f.line_number, f.kind.as_str(), f.line))
        .collect();
    CheckResult {
        class: "console".into(),
        name: name.to_owned(),
        took: std::time::Duration::ZERO,
        failure: (!findings.is_empty())
            .then(|| format!("{} finding(s): {}", findings.len(), text.join("; "))),
        output: text.join("\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a host with network (this one reaches Debian's mirror), the check fails and says why.
    #[test]
    fn the_no_network_check_fails_where_there_is_network() {
        let resolves = std::process::Command::new("getent")
            .args(["hosts", "deb.debian.org"])
            .output()
            .is_ok_and(|o| o.status.success());
        if !resolves {
            println!("SKIP: deb.debian.org does not resolve here; nothing to show failing");
            return;
        }
        let o = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(NO_NETWORK_CHECK)
            .output()
            .unwrap();
        assert!(!o.status.success());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains("deb.debian.org resolves"),
            "{o:?}"
        );
    }

    #[test]
    fn a_clean_console_passes_and_a_panic_fails_with_its_line() {
        assert!(console_result("c", "[    0.0] Linux version 6.1\nlogin:\n").passed());
        let r = console_result(
            "c",
            "ok\n[   12.3] Kernel panic - not syncing: VFS: Unable to mount root fs\n",
        );
        let failure = r.failure.unwrap();
        assert!(failure.contains("line 2"), "{failure}");
        assert!(failure.contains("kernel-panic"), "{failure}");
    }
}
