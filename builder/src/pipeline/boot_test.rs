//! The boot test: the sealed golden disk booted through a copy-on-write overlay (the golden
//! disk is never written) with a fresh seed, first-boot checks, the serial console scanned, and
//! — when the payload allows — an offline `kubeadm init` with a pod running.

use std::path::Path;

use anyhow::Result;
use diskimg::ImageFormat;
use qemu::cmdline::ExtraDisk;
use qemu::vm::{GuestName, Vm};

use super::Machine;
use super::conformance::{self, Counts};
use super::guest::GuestCommand;
use super::timeouts::{READY_TIMEOUT, SSH_TIMEOUT};
use super::validate::{self, NamedCheck};
use crate::junit::CaseResult;
use crate::report::Reporter;
use distros::kubeadm_test::{self, KubeadmTest};

/// The boot test's login user: another name than the build user, which must be gone.
pub const BOOT_TEST_USER: &str = "nodeimg-boot";
/// The boot test guest's hostname (its node name in the kubeadm test).
pub const HOSTNAME: &str = "nodeimg-boot-test";

/// What the boot test found.
#[derive(Debug)]
pub struct BootTestOutcome {
    /// Every check, first-boot ones then the kubeadm steps.
    pub results: Vec<CaseResult>,
    /// Whether the kubeadm test ran.
    pub kubeadm_ran: bool,
    /// The node conformance run's counts, when its suite reported.
    pub conformance: Option<Counts>,
    /// The guest's serial console.
    pub serial: String,
}

/// Boots `image` (the golden disk, raw; or any bootable image and its format) in `vm_dir` and runs `first_boot` checks, then the kubeadm test's
/// steps when given, then the node conformance run when given (its test disk attached
/// read-only). The kubeadm steps stop at the first failure (each needs the one before).
pub fn run(
    machine: &Machine,
    image: (&Path, ImageFormat),
    vm_dir: &Path,
    first_boot: &[NamedCheck],
    kubeadm: Option<&[GuestCommand]>,
    conformance: Option<&conformance::Setup>,
    reporter: &Reporter,
) -> Result<BootTestOutcome> {
    std::fs::create_dir_all(vm_dir)?;
    let overlay = vm_dir.join("overlay.qcow2");
    qemu::overlay::create_overlay(&machine.qemu_img, image.0, image.1, &overlay)?;
    let mut config = machine.vm_config(
        vm_dir.to_path_buf(),
        overlay,
        ImageFormat::Qcow2,
        GuestName {
            instance_id: "iid-nodeimg-boot-test".into(),
            hostname: HOSTNAME.into(),
            user: BOOT_TEST_USER.into(),
        },
    );
    if let Some(setup) = conformance {
        config = config.with_extra_disk(ExtraDisk {
            name: "conformance".into(),
            path: setup.disk.clone(),
            format: ImageFormat::Raw,
        });
    }
    let mut vm = Vm::start(&config)?;
    let took = vm.wait_ready(READY_TIMEOUT)?;
    reporter.info(&format!(
        "sealed image booted to ready in {:.1}s",
        took.as_secs_f64()
    ));
    let ssh = vm.ssh(SSH_TIMEOUT)?;
    let mut results = validate::run_checks(&ssh, "boot test", first_boot, false, reporter)?;
    let mut kubeadm_ran = false;
    if let Some(steps) = kubeadm {
        kubeadm_ran = true;
        let checks: Vec<NamedCheck> = steps
            .iter()
            .map(|command| NamedCheck {
                class: "kubeadm".into(),
                command: command.clone(),
            })
            .collect();
        // Each step needs the one before: the first failure ends the test.
        results.extend(validate::run_checks(
            &ssh,
            "kubeadm test",
            &checks,
            true,
            reporter,
        )?);
    }
    let kubeadm_passed = !results.iter().any(|r| r.failed());
    let mut counts = None;
    let conformance_from = results.len();
    if let Some(setup) = conformance {
        if kubeadm_passed {
            let found = conformance::run_in_guest(&ssh, setup, reporter)?;
            counts = found.counts;
            results.extend(found.results);
        } else {
            reporter.info("node conformance is not run: the boot test failed before it");
        }
    }
    ssh.close();
    // The overlay is deleted next, so nothing the guest would write on its way down matters:
    // quit at once (a node with the kubeadm test's or the suite's containers takes over a
    // minute to power off under TCG).
    let stopped = vm.quit()?;
    tracing::info!(how = ?stopped.how, took = ?stopped.took, "boot test guest ended");
    let serial =
        String::from_utf8_lossy(&std::fs::read(&vm.paths().serial_log).unwrap_or_default())
            .into_owned();
    // A conformance run that failed as a whole (stopped at its deadline, crashed, no report)
    // carries the end of the serial console as well, as a failed build step does.
    for r in &mut results[conformance_from..] {
        if r.classname != conformance::CLASS
            && let crate::junit::Outcome::Failed { output, .. } = &mut r.outcome
        {
            output.push_str(&format!(
                "\n--- the end of the boot test's serial console ---\n{}",
                vm.serial_tail()
            ));
        }
    }
    Ok(BootTestOutcome {
        results,
        kubeadm_ran,
        conformance: counts,
        serial,
    })
}

/// The kubeadm test for these images, if the payload can run it.
pub fn kubeadm_test(inputs: &super::inputs::Inputs) -> Option<KubeadmTest> {
    if !inputs.can_run_kubeadm() {
        return None;
    }
    let images = inputs.image_refs();
    Some(KubeadmTest {
        kubernetes_version: inputs.spec.kubernetes_version.clone(),
        image_repository: kubeadm_test::image_repository(&images)?,
        pod_image: inputs.pause_image()?.to_owned(),
        skipped_addons: inputs.skipped_addons(),
    })
}
