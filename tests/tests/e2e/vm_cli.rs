//! `nodeimg boot` as a user runs it: commands and their output on an image that stays
//! untouched, `--keep` until Ctrl-C, the first failing command failing the run, a guest that never becomes ready
//! failing within its deadline with the serial console in the error, and SIGTERM mid-boot
//! leaving no QEMU and no VM directory.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::nodeimg;
use crate::vm_common::{
    fixture_or_skip, host_or_skip, processes_mentioning, sha256, wait_no_processes,
};

fn boot(work: &Path, image: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(nodeimg());
    c.arg("boot")
        .arg(image)
        .arg("--work-dir")
        .arg(work)
        .args(extra)
        .env("NODEIMG_LOG", "warn");
    c
}

fn texts(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Commands with their output, then `--keep`: the guest stays up with an `ssh` line printed
/// until Ctrl-C (SIGINT), which powers it off in order (exit 0), removes the VM directory, and
/// leaves the image as it was.
#[test]
fn vm_boot_runs_commands_keeps_the_guest_until_ctrl_c_and_leaves_the_image_untouched() {
    let test = "vm_boot_runs_commands_keeps_the_guest_until_ctrl_c_and_leaves_the_image_untouched";
    if host_or_skip(test).is_none() {
        return;
    }
    let Some(image) = fixture_or_skip(test) else {
        return;
    };
    let before = sha256(&image);
    let work = tempfile::Builder::new().prefix("bootok").tempdir().unwrap();
    let logs = tempfile::tempdir().unwrap();
    let stderr_path = logs.path().join("stderr");
    let mut child = boot(
        work.path(),
        &image,
        &[
            "--exec",
            "echo hello-from-$(hostname)",
            "--exec",
            "sudo -n cat /etc/machine-id | wc -c; echo to-stderr >&2",
            "--hostname",
            "boot-cli",
            "--keep",
        ],
    )
    .stdout(Stdio::piped())
    .stderr(std::fs::File::create(&stderr_path).unwrap())
    .spawn()
    .unwrap();
    let mut stdout = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        stdout.push_str(&line);
        stdout.push('\n');
        if line.contains("press Ctrl-C") {
            break;
        }
    }
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    assert!(stdout.contains("press Ctrl-C"), "{stdout}\n{}", stderr());
    assert!(stdout.contains("hello-from-boot-cli\n"), "{stdout}");
    assert!(
        stdout.contains("33\n"),
        "machine-id (32 hex + newline): {stdout}"
    );
    assert!(stdout.contains("ssh -i "), "no ssh line: {stdout}");
    // Still up: QEMU runs while nodeimg waits.
    assert!(processes_mentioning(work.path()).contains("qemu-system-x86_64"));
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGINT,
    )
    .unwrap();
    for line in lines {
        stdout.push_str(&line.unwrap());
        stdout.push('\n');
    }
    let status = child.wait().unwrap();
    let stderr = stderr();
    println!("{stderr}");
    assert!(status.success(), "{status}\n{stdout}\n{stderr}");
    assert!(stderr.contains("to-stderr"), "{stderr}");
    for phase in [
        "boot until ready: done in",
        "exec 2/2: done in",
        "power off: done in",
    ] {
        assert!(stderr.contains(phase), "no {phase:?} in {stderr}");
    }
    assert!(!stderr.contains("did not power off"), "{stderr}");
    assert_eq!(
        entries(work.path()),
        Vec::<String>::new(),
        "VM directory left"
    );
    assert_eq!(wait_no_processes(work.path(), Duration::from_secs(5)), "");
    assert_eq!(sha256(&image), before, "the image changed");
}

#[test]
fn vm_boot_stops_at_the_first_failing_command() {
    let test = "vm_boot_stops_at_the_first_failing_command";
    if host_or_skip(test).is_none() {
        return;
    }
    let Some(image) = fixture_or_skip(test) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("bootfail")
        .tempdir()
        .unwrap();
    let o = boot(
        work.path(),
        &image,
        &[
            "--exec",
            "echo first",
            "--exec",
            "exit 3",
            "--exec",
            "echo never-run",
        ],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("first\n"), "{stdout}");
    assert!(!stdout.contains("never-run"), "{stdout}");
    assert!(
        stderr.contains("command 2 of 3 failed with exit code 3: exit 3"),
        "{stderr}"
    );
    assert!(
        stderr.contains("--- last lines of the serial console"),
        "{stderr}"
    );
    assert!(
        stderr.contains("login:"),
        "serial tail without the boot: {stderr}"
    );
    // The failed VM's directory stays for inspection, with its serial log; QEMU does not.
    let kept = entries(work.path());
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(work.path().join(&kept[0]).join("serial.log").is_file());
    assert_eq!(wait_no_processes(work.path(), Duration::from_secs(5)), "");
}

#[test]
fn vm_boot_gives_up_on_a_disk_without_bootloader_within_its_deadline() {
    let test = "vm_boot_gives_up_on_a_disk_without_bootloader_within_its_deadline";
    if host_or_skip(test).is_none() {
        return;
    }
    let work = tempfile::Builder::new()
        .prefix("bootnone")
        .tempdir()
        .unwrap();
    let disk = work.path().join("no-bootloader.raw");
    fixtures::gpt_disk::patterned_gpt_disk(&disk, 64 << 20, 5).unwrap();
    let t = Instant::now();
    let o = boot(
        work.path(),
        &disk,
        &["--ready-timeout", "20", "--exec", "true"],
    )
    .output()
    .unwrap();
    let took = t.elapsed();
    let (stdout, stderr) = texts(&o);
    println!("failed after {took:.1?}:\n{stderr}");
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("did not report ready within 20s"),
        "{stderr}"
    );
    assert!(stderr.contains("never reached a login prompt"), "{stderr}");
    // The serial tail is in the error, and it is the firmware's: nothing booted.
    let tail = stderr
        .split("--- last lines of the serial console")
        .nth(1)
        .expect("serial section");
    assert!(
        tail.contains("BdsDxe") || tail.contains("UEFI") || tail.contains("Boot"),
        "no firmware output in the serial tail: {tail}"
    );
    // The deadline is a behaviour, not a benchmark: far less than the default 600 s.
    assert!(took < Duration::from_secs(120), "took {took:?}");
    assert_eq!(wait_no_processes(work.path(), Duration::from_secs(5)), "");
}

#[test]
fn vm_boot_sigterm_mid_boot_leaves_no_qemu_and_no_vm_directory() {
    let test = "vm_boot_sigterm_mid_boot_leaves_no_qemu_and_no_vm_directory";
    if host_or_skip(test).is_none() {
        return;
    }
    let Some(image) = fixture_or_skip(test) else {
        return;
    };
    let work = tempfile::Builder::new()
        .prefix("bootterm")
        .tempdir()
        .unwrap();
    let mut child = boot(work.path(), &image, &["--exec", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-boot: QEMU is running and the guest has written to its serial console.
    let deadline = Instant::now() + Duration::from_secs(120);
    let serial_started = || {
        std::fs::read_dir(work.path()).ok().is_some_and(|mut d| {
            d.any(|e| {
                e.ok().is_some_and(|e| {
                    std::fs::metadata(e.path().join("serial.log")).is_ok_and(|m| m.len() > 0)
                })
            })
        })
    };
    while !serial_started() {
        assert!(
            Instant::now() < deadline,
            "QEMU never wrote to its serial log"
        );
        assert!(child.try_wait().unwrap().is_none(), "nodeimg exited early");
        std::thread::sleep(Duration::from_millis(200));
    }
    let qemu = processes_mentioning(work.path());
    assert!(
        qemu.contains("qemu-system-x86_64"),
        "no QEMU running: {qemu}"
    );
    kill(
        Pid::from_raw(i32::try_from(child.id()).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert_eq!(wait_no_processes(work.path(), Duration::from_secs(10)), "");
    assert_eq!(
        entries(work.path()),
        Vec::<String>::new(),
        "VM directory left"
    );
}
