//! Sealing the build guest: the distro's seal steps over SSH; the last one detaches part B
//! (which removes the build user and its key, so SSH ends), the host waits for part B's marker
//! on the serial console, then powers the guest off through QMP.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use qemu::ssh::Ssh;
use qemu::vm::{StopHow, Vm};

use super::check_list::BuildIdentity;
use super::guest::{self, GuestCommand};
use super::timeouts::{POWERDOWN_TIMEOUT, SEAL_PART_B as PART_B_TIMEOUT};
use crate::report::Reporter;

/// Reads the build VM's identity with the plan's `build-identity` step before the seal: the
/// sealed disk's first boot must differ.
pub fn read_identity(ssh: &Ssh, step: &GuestCommand) -> Result<BuildIdentity> {
    let o = ssh.output(&step.command, Some(step.timeout))?;
    let text = String::from_utf8_lossy(&o.stdout);
    let mut lines = text.lines();
    let machine_id = lines
        .next()
        .map(str::trim)
        .filter(|l| l.len() == 32 && l.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_owned);
    let host_key_fingerprints = lines
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|f| f.starts_with("SHA256:"))
        .map(str::to_owned)
        .collect();
    Ok(BuildIdentity {
        machine_id,
        host_key_fingerprints,
    })
}

/// Runs the plan's seal `steps` and waits for part B; `ssh` is consumed (the build user goes
/// away).
pub fn seal(vm: &mut Vm, ssh: Ssh, steps: &[GuestCommand], reporter: &Reporter) -> Result<()> {
    let (detach, before) = steps
        .split_last()
        .ok_or_else(|| anyhow::anyhow!("the distro has no seal steps"))?;
    guest::run_steps(vm, &ssh, "seal", before, reporter)?;
    // Part B may cut the session before the command reports; only the serial marker counts.
    reporter.step_started("seal", &detach.name);
    let ran = guest::run(&ssh, detach, reporter);
    ssh.close();
    let t = Instant::now();
    let serial = vm.paths().serial_log.clone();
    loop {
        let log = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
        if log.contains(distros::SEAL_FAILED_MARKER) {
            reporter.step_finished("seal", &detach.name, t.elapsed(), false);
            bail!(vm.failure("the seal's part B reported SEAL-FAILED on the serial console"));
        }
        if log.contains(distros::SEAL_MARKER) {
            break;
        }
        if t.elapsed() > PART_B_TIMEOUT || !vm.is_running() {
            reporter.step_finished("seal", &detach.name, t.elapsed(), false);
            let how = match &ran {
                Ok(r) => r.outcome(),
                Err(e) => e.to_string(),
            };
            bail!(vm.failure(format!(
                "no {} on the serial console within {PART_B_TIMEOUT:?} (the detach step: {how})",
                distros::SEAL_MARKER
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    reporter.step_finished("seal", &detach.name, t.elapsed(), true);
    Ok(())
}

/// Powers the sealed guest off through QMP; anything but a clean power-off is an error (the
/// disk might not be consistent).
pub fn shut_down(vm: &mut Vm) -> Result<Duration> {
    let stopped = vm.stop(POWERDOWN_TIMEOUT)?;
    if stopped.how != StopHow::PoweredOff {
        bail!(vm.failure(format!(
            "the sealed guest did not power off by itself within {POWERDOWN_TIMEOUT:?} ({:?}); the golden disk is not trusted",
            stopped.how
        )));
    }
    Ok(stopped.took)
}
