//! A guest whose kernel stalls before init is started again once, and a second stall fails
//! at once instead of at the readiness deadline. QEMU's side is played by a small program
//! that takes QEMU's command line: a real guest cannot be made to stall on purpose.

use std::path::Path;
use std::time::{Duration, Instant};

use diskimg::ImageFormat;
use qemu::accel::Accel;
use qemu::host::Firmware;
use qemu::vm::{STALLED_SERIAL_LOG, Vm, VmConfig};

/// Plays QEMU: writes the console to `-serial file:PATH`, serves the readiness socket
/// (`-chardev socket,id=ready,…,path=PATH`) and counts its starts in `starts` beside the
/// serial log. Start N prints a stall before init when N is listed in `stall-starts` beside
/// the program, else init's first line and `READY iid-stall` on the socket.
const PLAYER: &str = r#"#!/usr/bin/env python3
import os, socket, sys, time
args = sys.argv[1:]
serial = next(a[len("file:"):] for a in args if a.startswith("file:"))
ready = next(a.split("path=", 1)[1] for a in args if a.startswith("socket,id=ready"))
count = os.path.join(os.path.dirname(serial), "starts")
n = int(open(count).read()) + 1 if os.path.exists(count) else 1
open(count, "w").write(str(n))
with open(serial, "w") as s:
    s.write("Welcome to GRUB!\n[    3.07] Run /init as init process\n")
    stalls = open(os.path.join(os.path.dirname(sys.argv[0]), "stall-starts")).read()
    if str(n) in stalls.split(","):
        s.write("[  546.69] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n")
        s.flush()
        time.sleep(600)
    s.write("[    4.63] systemd[1]: Inserted module 'autofs4'\n")
try:
    os.unlink(ready)
except FileNotFoundError:
    pass
srv = socket.socket(socket.AF_UNIX)
srv.bind(ready)
srv.listen(1)
conn, _ = srv.accept()
conn.sendall(b"READY iid-stall\n")
time.sleep(600)
"#;

fn config(dir: &Path, player: &Path) -> VmConfig {
    let vars = dir.join("VARS.fd");
    std::fs::write(&vars, b"vars").unwrap();
    let root = dir.join("root.qcow2");
    std::fs::write(&root, b"").unwrap();
    VmConfig {
        dir: dir.join("vm"),
        qemu: player.to_path_buf(),
        firmware: Firmware {
            code: vars.clone(),
            vars_template: vars,
        },
        accel: Accel::Tcg,
        cpus: 2,
        memory_mib: 512,
        root_disk: root,
        root_format: ImageFormat::Qcow2,
        extra_disks: Vec::new(),
        instance_id: "iid-stall".into(),
        hostname: "stall".into(),
        user: "builder".into(),
    }
}

type Outcome = (tempfile::TempDir, Result<Duration, String>, Duration);

/// Runs the player, or `None` after a SKIP line when python3 is missing.
fn run(test: &str, stall_starts: &str) -> Option<Outcome> {
    if std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_err()
    {
        // CI sets this so a missing tool fails instead of skipping silently.
        assert!(
            std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
            "{test}: python3 is missing"
        );
        println!("SKIP: {test}: python3 is missing");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let player = dir.path().join("qemu-player");
    std::fs::write(&player, PLAYER).unwrap();
    std::fs::set_permissions(&player, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    std::fs::write(dir.path().join("stall-starts"), stall_starts).unwrap();
    let t = Instant::now();
    let mut vm = Vm::start(&config(dir.path(), &player)).unwrap();
    let outcome = vm
        .wait_ready(Duration::from_secs(60))
        .map_err(|e| e.to_string());
    Some((dir, outcome, t.elapsed()))
}

#[test]
fn a_guest_stalled_before_init_is_started_again_once() {
    let Some((dir, outcome, _)) = run("a_guest_stalled_before_init_is_started_again_once", "1")
    else {
        return;
    };
    outcome.unwrap();
    let vm = dir.path().join("vm");
    assert_eq!(std::fs::read_to_string(vm.join("starts")).unwrap(), "2");
    let kept = std::fs::read_to_string(vm.join(STALLED_SERIAL_LOG)).unwrap();
    assert!(kept.contains("detected stalls on CPUs/tasks"), "{kept}");
    let serial = std::fs::read_to_string(vm.join("serial.log")).unwrap();
    assert!(serial.contains("systemd[1]:"), "{serial}");
}

#[test]
fn a_second_stall_fails_long_before_the_deadline_naming_the_console_line() {
    let Some((dir, outcome, took)) = run(
        "a_second_stall_fails_long_before_the_deadline_naming_the_console_line",
        "1,2",
    ) else {
        return;
    };
    let e = outcome.unwrap_err();
    assert!(e.contains("stalled before its init started"), "{e}");
    assert!(e.contains("rcu_preempt detected stalls"), "{e}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    let vm = dir.path().join("vm");
    assert_eq!(std::fs::read_to_string(vm.join("starts")).unwrap(), "2");
}
