//! `nodeimg boot IMAGE`: boot any qcow2 or raw cloud image through a copy-on-write overlay with
//! a fresh NoCloud seed, wait until cloud-init is done, run commands over SSH, power off.
//!
//! The image is never written: the guest writes to an overlay inside the VM directory. The VM
//! directory is removed when the command ends well or is interrupted, and kept (its path is
//! printed) when the guest fails, for its serial log.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use qemu::accel;
use qemu::host::{self, Host};
use qemu::ssh::Stream;
use qemu::vm::{GuestName, POWERDOWN_TIMEOUT, SSH_TIMEOUT, StopHow, Vm, VmConfig};

use crate::args::BootArgs;
use crate::interrupt;
use crate::report::{Mode, Reporter};

/// `nodeimg boot`.
pub fn boot(args: &BootArgs) -> Result<()> {
    if args.cpus == 0 {
        bail!("--cpus must be at least 1");
    }
    let image = args.image.as_path();
    // The project's reader checks the image before anything is created or started.
    let format = crate::image_check::bootable_format(image)?;
    let work_dir = match &args.work_dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir(),
    };
    if !work_dir.is_dir() {
        bail!(
            "--work-dir {}: not a directory (VM directories are created there)",
            work_dir.display()
        );
    }
    // The VM directory's name is fixed before anything runs, so an interrupt at any point
    // knows what to remove.
    let vm_dir = tempfile::Builder::new()
        .prefix("nodeimg-vm-")
        .tempdir_in(&work_dir)
        .with_context(|| format!("creating a VM directory in {}", work_dir.display()))?
        .keep();
    let cleanup_dir = vm_dir.clone();
    interrupt::on_interrupt(move || interrupt::remove_dir(&cleanup_dir));

    // `boot` has no --json: a display on a terminal, lines otherwise.
    let reporter = Reporter::new(Mode::detect(false));
    let result = boot_in(args, image, format, &vm_dir, &reporter);
    reporter.finish();
    if result.is_err() {
        interrupt::yield_to_handler();
    }
    match &result {
        Ok(()) => {
            interrupt::remove_dir(&vm_dir);
        }
        Err(_) if vm_dir.join("serial.log").exists() => {
            eprintln!(
                "the VM directory is kept for inspection: {}",
                vm_dir.display()
            );
        }
        Err(_) => {
            interrupt::remove_dir(&vm_dir);
        }
    }
    result
}

fn boot_in(
    args: &BootArgs,
    image: &Path,
    format: diskimg::ImageFormat,
    vm_dir: &Path,
    reporter: &Reporter,
) -> Result<()> {
    let (host, qemu_img) = reporter.phase("host check", || -> Result<(Host, PathBuf)> {
        Ok((Host::discover()?, host::find_qemu_img()?))
    })?;
    let verdict = reporter.phase("accelerator", || -> Result<_> {
        Ok(accel::resolve(args.accel, &host.qemu))
    })?;
    reporter.info(&format!(
        "accelerator: {} ({})",
        verdict.accel, verdict.reason
    ));

    let overlay = vm_dir.join("overlay.qcow2");
    reporter.phase("overlay", || {
        qemu::overlay::create_overlay(&qemu_img, image, format, &overlay)
    })?;
    let instance_id = format!("iid-nodeimg-boot-{}", std::process::id());
    let config = VmConfig::new(
        vm_dir.to_path_buf(),
        &host,
        verdict.accel,
        overlay,
        diskimg::ImageFormat::Qcow2,
        GuestName {
            instance_id,
            hostname: args.hostname.clone(),
            user: args.user.clone(),
        },
    )
    .with_size(args.cpus, args.memory);
    let mut vm = reporter.phase("start QEMU", || Vm::start(&config))?;
    let ready_timeout = Duration::from_secs(args.ready_timeout);
    reporter.phase("boot until ready", || vm.wait_ready(ready_timeout))?;
    let ssh = reporter.phase("ssh login", || vm.ssh(SSH_TIMEOUT))?;

    for (i, command) in args.exec.iter().enumerate() {
        let step = format!("exec {}/{}", i + 1, args.exec.len());
        reporter.info(&format!("$ {command}"));
        let exit = reporter.phase(&step, || {
            ssh.exec(command, None, &mut |stream, data| {
                // Output goes straight through; a closed stdout is not the guest's fault.
                let _ = match stream {
                    Stream::Stdout => std::io::stdout().write_all(data),
                    Stream::Stderr => std::io::stderr().write_all(data),
                };
            })
        })?;
        let _ = std::io::stdout().flush();
        if !exit.success() {
            return Err(vm
                .failure(format!(
                    "command {} of {} failed with {exit}: {command}",
                    i + 1,
                    args.exec.len()
                ))
                .into());
        }
    }

    if args.exec.is_empty() || args.keep {
        println!("the guest is up; reach it with:");
        println!("  {}", vm.ssh_command());
        println!("press Ctrl-C to power it off");
        let _ = std::io::stdout().flush();
        interrupt::set_polite(true);
        while !interrupt::interrupted() && vm.is_running() {
            std::thread::sleep(Duration::from_millis(200));
        }
        if !vm.is_running() {
            bail!(vm.failure("QEMU exited while the guest was being kept up"));
        }
    }
    ssh.close();
    let stopped = reporter.phase("power off", || vm.stop(POWERDOWN_TIMEOUT))?;
    if stopped.how != StopHow::PoweredOff {
        reporter.info(&format!(
            "warning: the guest did not power off on its own within {POWERDOWN_TIMEOUT:?} ({:?})",
            stopped.how
        ));
    }
    reporter.info(&format!("phases: {}", reporter.summary()));
    Ok(())
}
