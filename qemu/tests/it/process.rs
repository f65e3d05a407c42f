//! The child wrapper: never orphaned, deadlines kill.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use qemu::process;

fn alive(pid: u32) -> bool {
    // a zombie still has /proc/<pid>; look at its state
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit(')')
            .next()
            .is_some_and(|r| r.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[test]
fn child_dies_when_handle_drops() {
    let dir = tempfile::tempdir().unwrap();
    let c = process::spawn(
        Path::new("/bin/sleep"),
        &[OsString::from("60")],
        &dir.path().join("log"),
        "sleep",
    )
    .unwrap();
    let pid = c.id();
    assert!(alive(pid));
    drop(c);
    assert!(!alive(pid), "pid {pid} survived the drop");
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "not reaped");
}

#[test]
fn wait_deadline_times_out_and_kills() {
    let dir = tempfile::tempdir().unwrap();
    let args: Vec<OsString> = vec!["-c".into(), "echo started >&2; exec sleep 60".into()];
    let mut c = process::spawn(Path::new("/bin/sh"), &args, &dir.path().join("log"), "sh").unwrap();
    let pid = c.id();
    let e = c.wait_timeout(Duration::from_millis(300)).unwrap_err();
    assert!(matches!(e, qemu::Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("started"), "{e}");
    assert!(!alive(pid), "pid {pid} still running after the timeout");
    // the status is remembered
    assert!(c.try_wait().unwrap().is_some());
}

#[test]
fn child_dies_with_spawning_thread() {
    // PR_SET_PDEATHSIG fires when the spawning thread exits; the handle is leaked on purpose.
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let pid = std::thread::spawn(move || {
        let c = process::spawn(
            Path::new("/bin/sleep"),
            &[OsString::from("60")],
            &log,
            "sleep",
        )
        .unwrap();
        let pid = c.id();
        std::mem::forget(c);
        pid
    })
    .join()
    .unwrap();
    for _ in 0..100 {
        if !alive(pid) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(pid), "pid {pid} outlived its spawning thread");
    // reap the zombie (we are its parent)
    let _ = nix::sys::wait::waitpid(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        None,
    );
}
