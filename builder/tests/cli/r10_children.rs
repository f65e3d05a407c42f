//! Issue 10, items 3, 4 and 7: every external program runs through the one runner
//! (`child-process`): an interrupted `nodeimg` kills its children (not just QEMU), a tool that
//! never answers times out, a tool that writes endlessly hits the output cap.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use super::{nodeimg, out_str};

/// Hang guard: a bound on how long a case may take, never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

/// Pids of the processes whose command line is exactly `words` (a zombie's is empty).
fn running(words: &[&str]) -> Vec<i32> {
    let want: Vec<u8> = words
        .iter()
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

/// SIGKILLs whatever is left of `words`, so a failing case leaves nothing behind.
fn kill_leftovers(words: &[&str]) {
    for pid in running(words) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Waits for `child` to exit within [`HANG_GUARD`]; kills it and fails otherwise.
fn wait_guarded(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let started = Instant::now();
    loop {
        if let Some(s) = child.try_wait().unwrap() {
            return s;
        }
        if started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} still running after {HANG_GUARD:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `nodeimg doctor` with `NODEIMG_QEMU` set to `qemu`, under the hang guard.
fn doctor_with_qemu(qemu: &Path) -> (i32, String, String) {
    let mut child = nodeimg()
        .env("NODEIMG_QEMU", qemu)
        .args(["doctor", "--accel", "tcg"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_guarded(&mut child, "nodeimg doctor");
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = out_str(&o);
    (o.status.code().unwrap_or(-1), stdout, stderr)
}

/// Item 3: SIGTERM while `nodeimg boot` waits on qemu-img: exit 130 and the qemu-img (and what
/// it started) is gone, not left running with SIGINT/SIGTERM blocked.
#[test]
fn interrupted_boot_kills_a_hanging_qemu_img() {
    if !fixtures::tools::have("qemu-system-x86_64") {
        return;
    }
    const SLEEPER: [&str; 2] = ["sleep", "100001"];
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    script(&bin, "qemu-img", "exec sleep 100001");
    let image = dir.path().join("disk.raw");
    std::fs::File::create(&image)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let path = std::env::join_paths(std::iter::once(bin.clone()).chain(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    )))
    .unwrap();
    let mut child = nodeimg()
        .env("PATH", path)
        .arg("boot")
        .arg(&image)
        .arg("--work-dir")
        .arg(&work)
        .args(["--accel", "tcg", "--exec", "true"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while running(&SLEEPER).is_empty() {
        if child.try_wait().unwrap().is_some() || started.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            kill_leftovers(&SLEEPER);
            panic!("the fake qemu-img never ran: {:?}", out_str(&o));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    wait_guarded(&mut child, "interrupted nodeimg boot");
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = out_str(&o);
    // SIGKILL is delivered asynchronously: let the kernel finish the kill before looking.
    let settle = Instant::now();
    let mut left = running(&SLEEPER);
    while !left.is_empty() && settle.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
        left = running(&SLEEPER);
    }
    kill_leftovers(&SLEEPER);
    assert_eq!(o.status.code(), Some(130), "{stdout}\n{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(
        left.is_empty(),
        "qemu-img survived the interrupt: {left:?}\n{stderr}"
    );
    assert_eq!(
        super::listing(&work),
        Vec::<String>::new(),
        "left in the work dir"
    );
}

/// Item 4: a NODEIMG_QEMU that never answers `--version`: doctor says the version query timed
/// out (instead of hanging forever) and leaves nothing running.
#[test]
fn doctor_times_out_a_qemu_that_never_answers() {
    const SLEEPER: [&str; 2] = ["sleep", "100002"];
    let dir = tempfile::tempdir().unwrap();
    let qemu = script(dir.path(), "qemu-system-x86_64", "exec sleep 100002");
    let (code, stdout, stderr) = doctor_with_qemu(&qemu);
    let left = running(&SLEEPER);
    kill_leftovers(&SLEEPER);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let line = stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with("qemu         FAIL  "), "{stdout}");
    assert!(line.contains("qemu version query"), "{stdout}");
    assert!(line.contains("timed out"), "{stdout}");
    assert!(line.contains(qemu.to_str().unwrap()), "{stdout}");
    assert!(left.is_empty(), "the version query survived: {left:?}");
}

/// Item 7: a NODEIMG_QEMU that writes endlessly: doctor fails (exit 1, not an abort on a huge
/// allocation) with an error naming the output cap.
#[test]
fn doctor_caps_the_output_of_a_qemu_that_never_stops_writing() {
    let dir = tempfile::tempdir().unwrap();
    let qemu = script(dir.path(), "qemu-system-x86_64", "exec yes");
    let (code, stdout, stderr) = doctor_with_qemu(&qemu);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let line = stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with("qemu         FAIL  "), "{stdout}");
    assert!(line.contains("65536-byte output cap"), "{stdout}");
    assert!(!stderr.contains("memory allocation"), "{stderr}");
}
