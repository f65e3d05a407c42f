//! One guest from start to stop: a fresh build key and NoCloud seed, QEMU started with the
//! typed command line, the readiness beacon, SSH, and a graceful stop
//! (`system_powerdown` → deadline → `quit` → kill). The QEMU child is killed when the [`Vm`]
//! drops, and every failure is an [`Error::Vm`] carrying the end of the serial console and of
//! QEMU's own output.

use std::ffi::OsString;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::keys::PublicKey;

use crate::accel::Accel;
use diskimg::ImageFormat;

use crate::cmdline::{ExtraDisk, VmPaths, VmSpec, pick_free_port};
use crate::error::{Error, Result, VmFailure};
use crate::host::{Firmware, Host};
use crate::keys::BuildKey;
use crate::process::{self, Child, TAIL_LINES, tail_lines};
use crate::qmp::Qmp;
use crate::ready::{self, NotReady};
use crate::seed::SeedSpec;
use crate::ssh::{Ssh, SshTarget};
use crate::stall::SerialWatch;

/// The seed disk's name (drive id and virtio serial).
pub const SEED_DISK: &str = "cidata";
/// The seed image's file name in the VM directory.
pub const SEED_FILE: &str = "seed.img";
/// How long `quit` may take before the child is killed.
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// How long connecting to QMP may take.
const QMP_CONNECT: Duration = Duration::from_secs(5);
/// How often a guest whose kernel stalls before init (see [`crate::stall`]) is started again.
pub const EARLY_STALL_RESTARTS: u32 = 1;
/// Where a stalled attempt's serial console is kept (in the VM directory).
pub const STALLED_SERIAL_LOG: &str = "serial.stalled.log";

/// What to boot and how.
#[derive(Debug, Clone)]
pub struct VmConfig {
    /// The VM's private directory (created mode 0700): key, seed, sockets, logs.
    pub dir: PathBuf,
    /// `qemu-system-x86_64`.
    pub qemu: PathBuf,
    /// UEFI firmware.
    pub firmware: Firmware,
    /// Accelerator (see [`crate::accel::resolve`]).
    pub accel: Accel,
    /// vCPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// The disk the guest boots from and writes to.
    pub root_disk: PathBuf,
    /// Its format.
    pub root_format: ImageFormat,
    /// Read-only disks after the seed (e.g. the payload).
    pub extra_disks: Vec<ExtraDisk>,
    /// cloud-init instance id (new id: cloud-init runs its per-instance modules again).
    pub instance_id: String,
    /// The guest's hostname.
    pub hostname: String,
    /// The build user the key logs in as.
    pub user: String,
}

/// How long a guest may take from QEMU's start to cloud-init done (the build, the boot test;
/// `nodeimg boot --ready-timeout` has its own default).
pub const READY_TIMEOUT: Duration = Duration::from_secs(900);
/// How long SSH may take to accept the key once the guest reported ready.
pub const SSH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a guest may take to power off after the ACPI power button (then `quit`, then kill).
pub const POWERDOWN_TIMEOUT: Duration = Duration::from_secs(120);

/// Who a guest is: what cloud-init and SSH know it by.
#[derive(Debug, Clone)]
pub struct GuestName {
    /// cloud-init instance id (new id: cloud-init runs its per-instance modules again).
    pub instance_id: String,
    /// The guest's hostname.
    pub hostname: String,
    /// The user the build key logs in as.
    pub user: String,
}

impl VmConfig {
    /// The one way to describe a VM: `host`'s QEMU and firmware under `accel`, booting
    /// `root_disk` (`root_format`) with its private directory `dir`, as `guest`; 2 vCPUs and
    /// 2048 MiB until [`VmConfig::with_size`], no extra disks until
    /// [`VmConfig::with_extra_disk`].
    pub fn new(
        dir: PathBuf,
        host: &Host,
        accel: Accel,
        root_disk: PathBuf,
        root_format: ImageFormat,
        guest: GuestName,
    ) -> Self {
        VmConfig {
            dir,
            qemu: host.qemu.clone(),
            firmware: host.firmware.clone(),
            accel,
            cpus: 2,
            memory_mib: 2048,
            root_disk,
            root_format,
            extra_disks: Vec::new(),
            instance_id: guest.instance_id,
            hostname: guest.hostname,
            user: guest.user,
        }
    }

    /// With `cpus` vCPUs and `memory_mib` MiB.
    #[must_use]
    pub fn with_size(mut self, cpus: u32, memory_mib: u32) -> Self {
        self.cpus = cpus;
        self.memory_mib = memory_mib;
        self
    }

    /// With one more read-only disk after the seed.
    #[must_use]
    pub fn with_extra_disk(mut self, disk: ExtraDisk) -> Self {
        self.extra_disks.push(disk);
        self
    }
}

/// How a VM stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopHow {
    /// The guest powered off after ACPI `system_powerdown`.
    PoweredOff,
    /// The guest ignored the power button; QEMU obeyed `quit`.
    Quit,
    /// QEMU had to be killed.
    Killed,
    /// QEMU had already exited.
    AlreadyExited,
}

/// The outcome of [`Vm::stop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stopped {
    /// How.
    pub how: StopHow,
    /// From the request to QEMU's exit.
    pub took: Duration,
}

/// A running guest. Dropping it kills QEMU.
pub struct Vm {
    child: Child,
    qemu: PathBuf,
    args: Vec<OsString>,
    paths: VmPaths,
    dir: PathBuf,
    key: BuildKey,
    key_path: PathBuf,
    user: String,
    instance_id: String,
    ssh_port: u16,
    host_key: Option<PublicKey>,
    started: Instant,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("dir", &self.dir)
            .field("pid", &self.child.id())
            .field("ssh_port", &self.ssh_port)
            .finish_non_exhaustive()
    }
}

impl Vm {
    /// Writes the build key and the seed into `config.dir` and starts QEMU.
    pub fn start(config: &VmConfig) -> Result<Vm> {
        let key = BuildKey::generate()?;
        let seed = SeedSpec::new(
            config.instance_id.as_str(),
            config.hostname.as_str(),
            config.user.as_str(),
            key.public_openssh()?,
        );
        seed.validate()?;
        let mut extra_disks = vec![ExtraDisk {
            name: SEED_DISK.to_owned(),
            path: config.dir.join(SEED_FILE),
            format: ImageFormat::Raw,
        }];
        extra_disks.extend(config.extra_disks.iter().cloned());
        let spec = VmSpec {
            dir: config.dir.clone(),
            cpus: config.cpus,
            memory_mib: config.memory_mib,
            accel: config.accel,
            firmware: config.firmware.clone(),
            root_disk: config.root_disk.clone(),
            root_format: config.root_format,
            extra_disks,
            ssh_port: pick_free_port()?,
        };
        let args = spec.prepare()?;
        let key_path = key.write_private(&config.dir)?;
        seed.write_image(&config.dir.join(SEED_FILE))?;
        let paths = spec.paths();
        let child = process::spawn(&config.qemu, &args, &paths.qemu_log, "qemu")?;
        tracing::info!(
            dir = %config.dir.display(),
            pid = child.id(),
            accel = config.accel.as_str(),
            ssh_port = spec.ssh_port,
            "QEMU started"
        );
        Ok(Vm {
            child,
            qemu: config.qemu.clone(),
            args,
            paths,
            dir: config.dir.clone(),
            key,
            key_path,
            user: config.user.clone(),
            instance_id: config.instance_id.clone(),
            ssh_port: spec.ssh_port,
            host_key: None,
            started: Instant::now(),
        })
    }

    /// Waits until the guest's readiness beacon says cloud-init is done, at most `timeout`
    /// after QEMU started. Returns the time from QEMU's start. A guest whose kernel stalls
    /// before its init starts is started again ([`EARLY_STALL_RESTARTS`] times, each with a
    /// new `timeout`; see [`crate::stall`]).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<Duration> {
        let mut restarts = 0;
        loop {
            let deadline = self.started + timeout;
            let mut watch = SerialWatch::new(self.paths.serial_log.clone());
            let outcome = ready::wait_for_beacon(
                &self.paths.ready_sock,
                &self.instance_id,
                &mut self.child,
                &mut watch,
                deadline,
                self.started,
            );
            return match outcome {
                Ok(beacon) => {
                    self.host_key = beacon.host_key;
                    let t = self.started.elapsed();
                    tracing::info!(after = ?t, host_key_pinned = self.host_key.is_some(), "guest ready");
                    Ok(t)
                }
                Err(NotReady::EarlyStall(line)) if restarts < EARLY_STALL_RESTARTS => {
                    restarts += 1;
                    tracing::warn!(
                        after = ?self.started.elapsed(),
                        console = line.as_str(),
                        kept = STALLED_SERIAL_LOG,
                        "the guest's kernel stalled before its init started; starting QEMU again"
                    );
                    self.restart()?;
                    continue;
                }
                Err(NotReady::Timeout(t)) => {
                    // Lossy: firmware writes bytes that are not UTF-8.
                    let login = std::fs::read(&self.paths.serial_log)
                        .is_ok_and(|b| String::from_utf8_lossy(&b).contains("login:"));
                    let hint = if login {
                        "; the serial console reached a login prompt, so the guest booted but cloud-init did not report (is cloud-init installed and the seed read?)"
                    } else {
                        "; the serial console never reached a login prompt (no bootloader, wrong firmware, or a slow boot under TCG?)"
                    };
                    Err(self.failure(format!("{}{hint}", NotReady::Timeout(t))))
                }
                Err(e) => Err(self.failure(e.to_string())),
            };
        }
    }

    /// Kills QEMU and starts it again with the same command line, disks and seed; the serial
    /// console so far is kept as [`STALLED_SERIAL_LOG`].
    fn restart(&mut self) -> Result<()> {
        self.child.kill()?;
        let kept = self.dir.join(STALLED_SERIAL_LOG);
        std::fs::rename(&self.paths.serial_log, &kept)
            .map_err(|e| Error::io("keeping the stalled serial console as", &kept, e))?;
        self.child = process::spawn(&self.qemu, &self.args, &self.paths.qemu_log, "qemu")?;
        self.started = Instant::now();
        tracing::info!(pid = self.child.id(), "QEMU started again");
        Ok(())
    }

    /// Logs in over SSH, retrying until `timeout` passes.
    pub fn ssh(&self, timeout: Duration) -> Result<Ssh> {
        let target = SshTarget {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, self.ssh_port)),
            user: self.user.clone(),
            key: Arc::new(self.key.private_key().clone()),
            host_key: self.host_key.clone(),
        };
        Ssh::connect(&target, Instant::now() + timeout).map_err(|e| self.failure(e.to_string()))
    }

    /// An [`Error::Vm`] saying `what`, with the tails of the serial console and QEMU's log.
    pub fn failure(&self, what: impl Into<String>) -> Error {
        Error::Vm(Box::new(VmFailure {
            what: what.into(),
            serial_log: self.paths.serial_log.clone(),
            serial_tail: tail_or_note(&self.paths.serial_log),
            qemu_log: self.paths.qemu_log.clone(),
            qemu_tail: tail_or_note(&self.paths.qemu_log),
        }))
    }

    /// The end of the guest's serial console (the last [`TAIL_LINES`] lines, control characters
    /// removed), as [`Vm::failure`] shows it.
    pub fn serial_tail(&self) -> String {
        tail_or_note(&self.paths.serial_log)
    }

    /// Stops the guest: ACPI power button, up to `powerdown_timeout` for it to power off, then
    /// QMP `quit`, then SIGKILL. Never leaves QEMU running.
    pub fn stop(&mut self, powerdown_timeout: Duration) -> Result<Stopped> {
        self.end(Some(powerdown_timeout))
    }

    /// Ends a guest whose writes are thrown away (it runs on an overlay that is deleted next):
    /// QMP `quit` at once, then SIGKILL, with no power-off to wait for.
    pub fn quit(&mut self) -> Result<Stopped> {
        self.end(None)
    }

    fn end(&mut self, powerdown_timeout: Option<Duration>) -> Result<Stopped> {
        let t = Instant::now();
        if self.child.try_wait()?.is_some() {
            return Ok(Stopped {
                how: StopHow::AlreadyExited,
                took: t.elapsed(),
            });
        }
        let mut qmp = match Qmp::connect(&self.paths.qmp_sock, QMP_CONNECT) {
            Ok(q) => Some(q),
            Err(e) => {
                tracing::warn!(error = %e, "no QMP; killing QEMU");
                None
            }
        };
        if let Some(q) = qmp.as_mut() {
            if let Some(within) = powerdown_timeout {
                match q.system_powerdown() {
                    Ok(()) => {
                        if self.wait_exit(within)? {
                            return Ok(Stopped {
                                how: StopHow::PoweredOff,
                                took: t.elapsed(),
                            });
                        }
                        tracing::warn!(?within, "the guest did not power off; quitting QEMU");
                    }
                    Err(e) => tracing::warn!(error = %e, "system_powerdown failed; quitting QEMU"),
                }
            }
            if q.quit().is_ok() && self.wait_exit(QUIT_GRACE)? {
                return Ok(Stopped {
                    how: StopHow::Quit,
                    took: t.elapsed(),
                });
            }
        }
        self.child.kill()?;
        Ok(Stopped {
            how: StopHow::Killed,
            took: t.elapsed(),
        })
    }

    /// SIGKILLs QEMU now.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill().map(|_| ())
    }

    fn wait_exit(&mut self, within: Duration) -> Result<bool> {
        let deadline = Instant::now() + within;
        loop {
            if self.child.try_wait()?.is_some() {
                return Ok(true);
            }
            if Instant::now() >= deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether QEMU is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The VM directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The files inside it.
    pub fn paths(&self) -> &VmPaths {
        &self.paths
    }

    /// QEMU's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The host port forwarded to the guest's SSH port, on 127.0.0.1.
    pub fn ssh_port(&self) -> u16 {
        self.ssh_port
    }

    /// The build user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private build key's file (mode 0600, inside the VM directory).
    pub fn key_path(&self) -> &Path {
        &self.key_path
    }

    /// When QEMU was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// The guest's host key from the beacon, if it sent one.
    pub fn host_key(&self) -> Option<&PublicKey> {
        self.host_key.as_ref()
    }

    /// An `ssh` command line that reaches the guest (for people).
    pub fn ssh_command(&self) -> String {
        format!(
            "ssh -i {} -p {} -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null {}@127.0.0.1",
            self.key_path.display(),
            self.ssh_port,
            self.user
        )
    }
}

fn tail_or_note(path: &Path) -> String {
    match tail_lines(path, TAIL_LINES) {
        Ok(t) if t.trim().is_empty() => "(empty)".to_owned(),
        Ok(t) => printable(&t),
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// `text` without terminal escape sequences (firmware and systemd colour and move the cursor)
/// and other control characters except newlines and tabs, so an error reads cleanly anywhere.
pub fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ parameters... final byte in @..~ ; other escapes: ESC + one char.
                if chars.next_if_eq(&'[').is_some() {
                    for p in chars.by_ref() {
                        if ('@'..='~').contains(&p) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\n' | '\t' => out.push(c),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn escape_sequences_are_dropped() {
        let raw = "\u{1b}[2J\u{1b}[01;01H\u{1b}[=3hBdsDxe: x\r\n\u{1b}[1m\u{1b}[33m\u{1b}[40mShell> \u{1b}[0m\u{7}end\tok";
        assert_eq!(printable(raw), "BdsDxe: x\nShell> end\tok");
        assert_eq!(printable("plain\nlines"), "plain\nlines");
    }
}
