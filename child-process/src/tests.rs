use super::*;

fn sh(script: &str, timeout: Duration) -> Command {
    let mut c = Command::new("/bin/sh", timeout);
    c.arg("-c").arg(script);
    c
}

/// Pids whose command line is exactly `words`.
fn processes_running(words: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = words
        .iter()
        .flat_map(|w| [w.as_bytes(), b"\0"].concat())
        .collect();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .collect()
}

#[test]
fn output_and_status() {
    let out = sh("echo hello; echo warn >&2", Duration::from_secs(60))
        .run()
        .unwrap();
    assert_eq!(out.stdout, b"hello\n");
    assert_eq!(out.stderr_tail, "warn");
    let out = sh("exit 1", Duration::from_secs(60)).run_status().unwrap();
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn stdin_bytes_reach_the_child() {
    let out = Command::new("cat", Duration::from_secs(60))
        .stdin_bytes("fed\n")
        .run()
        .unwrap();
    assert_eq!(out.stdout_lossy(), "fed\n");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let script = "sleep 100071 & wait";
    let started = Instant::now();
    let e = sh(script, Duration::from_millis(500))
        .what("sleeper")
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.to_string().contains("sleeper (/bin/sh) timed out"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(60), "hang guard");
    // SIGKILL is delivered asynchronously to the grandchild: give the kernel a moment.
    let mut left = processes_running(&["sleep", "100071"]);
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        left = processes_running(&["sleep", "100071"]);
    }
    for pid in &left {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(*pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    assert!(left.is_empty(), "grandchild survived: {left:?}");
}

#[test]
fn timeout_error_carries_the_stderr_tail() {
    let e = sh(
        "echo about to hang >&2; exec sleep 100072",
        Duration::from_millis(500),
    )
    .run()
    .unwrap_err();
    assert!(e.to_string().contains("about to hang"), "{e}");
}

#[test]
fn output_beyond_the_cap_kills_and_names_the_cap() {
    let e = Command::new("yes", Duration::from_secs(120))
        .stdout_cap(1024 * 1024)
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::OutputCap { cap: 1_048_576, .. }), "{e}");
    assert!(e.to_string().contains("1048576-byte output cap"), "{e}");
}

#[test]
fn non_zero_exit_names_program_status_and_stderr_tail() {
    let noise: String = (0..1000).map(|i| format!("echo noise {i} >&2; ")).collect();
    let e = sh(
        &format!("{noise} echo the reason >&2; exit 3"),
        Duration::from_secs(60),
    )
    .what("failing step")
    .run()
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("failing step (/bin/sh) exited with exit status: 3"),
        "{msg}"
    );
    assert!(msg.ends_with("the reason"), "{msg}");
    assert!(!msg.contains("noise 100\n"), "tail is bounded: {msg}");
}

#[test]
fn spawn_error_names_the_program() {
    let e = Command::new("/nonexistent/tool", Duration::from_secs(60))
        .run()
        .unwrap_err();
    assert!(matches!(e, Error::Spawn { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/tool"), "{e}");
}

#[test]
fn signal_mask_is_reset_in_the_child() {
    // A thread that blocks SIGINT and SIGTERM, as nodeimg's main thread does (and SIGUSR1: the
    // whole mask is reset, not just those two).
    let out = std::thread::spawn(|| {
        let mut set = nix::sys::signal::SigSet::empty();
        set.add(nix::sys::signal::Signal::SIGINT);
        set.add(nix::sys::signal::Signal::SIGTERM);
        set.add(nix::sys::signal::Signal::SIGUSR1);
        set.thread_block().unwrap();
        Command::new("grep", Duration::from_secs(60))
            .args(["SigBlk", "/proc/self/status"])
            .run()
            .unwrap()
    })
    .join()
    .unwrap();
    let line = out.stdout_lossy();
    let mask = line.trim().strip_prefix("SigBlk:").unwrap().trim();
    assert!(mask.chars().all(|c| c == '0'), "{line}");
}

#[test]
fn log_file_gets_both_streams_and_feeds_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let e = sh("echo out; echo err >&2; exit 2", Duration::from_secs(60))
        .log_to(&log)
        .run()
        .unwrap_err();
    assert!(e.to_string().ends_with("out\nerr"), "{e}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "out\nerr\n");
}

// kill_all reaches every child of the process: nextest runs each test in its own process.
#[test]
fn kill_all_kills_live_children() {
    let mut c = sh("sleep 100073 & wait", Duration::from_secs(60))
        .spawn()
        .unwrap();
    assert!(kill_all() >= 1);
    let status = c
        .wait_until(Instant::now() + Duration::from_secs(60))
        .unwrap()
        .expect("killed child exits");
    assert!(!status.success());
}
