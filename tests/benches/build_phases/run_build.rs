//! One `nodeimg build --json` run through the project's child-process runner: its output goes
//! to a log file the bench reads every 0.1 s, stamping each new line with the bench's clock
//! (so phase and step start/end times are known to ±0.1 s, not only the durations the build
//! reports), while `/proc/PID/status` VmHWM of the nodeimg process (not its QEMU children) is
//! read every 0.5 s.

use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

use super::timeline::{Timeline, vm_hwm_kib};

/// How long one fixture build may take under TCG on a busy host.
const BUILD_TIMEOUT: Duration = Duration::from_secs(3 * 3600);
/// How often the output is read.
const READ_EVERY: Duration = Duration::from_millis(100);
/// How often the peak RSS is read.
const RSS_EVERY: Duration = Duration::from_millis(500);

/// What one build run gave.
#[derive(Debug)]
pub struct BuildRun {
    /// Its events on the bench's clock (seconds since the spawn).
    pub timeline: Timeline,
    /// Spawn to exit.
    pub wall: f64,
    /// nodeimg's own peak RSS (KiB), as last read while it ran.
    pub peak_rss_kib: Option<u64>,
    /// Why it failed, with the end of its output log.
    pub failure: Option<String>,
}

/// New complete lines of `file` from `offset` (advanced past them).
fn new_lines(file: &mut std::fs::File, offset: &mut u64, partial: &mut String) -> Vec<String> {
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(*offset)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return Vec::new();
    }
    *offset += bytes.len() as u64;
    partial.push_str(&String::from_utf8_lossy(&bytes));
    let Some(end) = partial.rfind('\n') else {
        return Vec::new();
    };
    let lines = partial[..end].lines().map(str::to_owned).collect();
    partial.drain(..=end);
    lines
}

/// Runs `bin build SPEC --out OUT --cache CACHE --json`, output to `log`.
pub fn run(what: &str, bin: &Path, spec: &Path, cache: &Path, out: &Path, log: &Path) -> BuildRun {
    let mut run = BuildRun {
        timeline: Timeline::default(),
        wall: 0.0,
        peak_rss_kib: None,
        failure: None,
    };
    let _ = std::fs::write(log, b"");
    let t0 = Instant::now();
    let child = child_process::Command::new(bin, BUILD_TIMEOUT)
        .what(what)
        .arg("build")
        .arg(spec)
        .arg("--out")
        .arg(out)
        .arg("--cache")
        .arg(cache)
        .arg("--json")
        .log_to(log)
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            run.failure = Some(e.to_string());
            return run;
        }
    };
    let status_path = format!("/proc/{}/status", child.id());
    let mut file = std::fs::File::open(log).ok();
    let (mut offset, mut partial) = (0u64, String::new());
    let mut last_rss: Option<Instant> = None;
    let status = loop {
        let exited = child.try_wait();
        let at = t0.elapsed().as_secs_f64();
        if let Some(f) = file.as_mut() {
            for line in new_lines(f, &mut offset, &mut partial) {
                run.timeline.push(at, &line);
            }
        }
        match exited {
            Ok(Some(status)) => break Ok(status),
            Err(e) => break Err(e.to_string()),
            Ok(None) => {}
        }
        if last_rss.is_none_or(|t| t.elapsed() >= RSS_EVERY) {
            last_rss = Some(Instant::now());
            if let Some(kib) = std::fs::read_to_string(&status_path)
                .ok()
                .as_deref()
                .and_then(vm_hwm_kib)
            {
                run.peak_rss_kib = Some(run.peak_rss_kib.unwrap_or(0).max(kib));
            }
        }
        if t0.elapsed() > BUILD_TIMEOUT {
            let _ = child.kill();
            break Err(format!("{what} did not finish within {BUILD_TIMEOUT:?}"));
        }
        std::thread::sleep(READ_EVERY);
    };
    run.wall = t0.elapsed().as_secs_f64();
    if !partial.trim().is_empty() {
        run.timeline.push(run.wall, &partial);
    }
    let failed = match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!("{what} exited with {s}")),
        Err(e) => Some(e),
    };
    run.failure = failed.map(|why| {
        let tail = child_process::tail_lines(log, 30).unwrap_or_default();
        format!("{why}; the end of {}:\n{tail}", log.display())
    });
    run
}
