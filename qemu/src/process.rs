//! The one way this crate runs QEMU: a child that can never outlive us.
//!
//! * `PR_SET_PDEATHSIG = SIGKILL` is set in the child before `exec`, so the kernel kills it when
//!   the spawning **thread** dies (Linux semantics: spawn from a long-lived thread).
//! * Dropping a [`Child`] kills and reaps it.
//! * Every wait has a deadline; on timeout the child is killed and reaped.
//! * stdout and stderr go to a log file (in the VM directory); errors carry its last
//!   [`TAIL_LINES`] lines.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// How many stderr lines errors carry.
pub const TAIL_LINES: usize = 40;

/// At most this many bytes from the end of the log are read for the tail.
const TAIL_BYTES: u64 = 16 * 1024;

/// Pids of the children spawned here that have not been reaped yet. A pid stays valid (running
/// or zombie) until it is reaped, so [`kill_all`] can never hit a recycled pid.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live() -> std::sync::MutexGuard<'static, Vec<u32>> {
    LIVE.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// SIGKILLs every child spawned through [`spawn`] that is still running (for a signal handler
/// that is about to exit the process). Returns how many were signalled.
pub fn kill_all() -> usize {
    let pids = live().clone();
    pids.iter()
        .filter(|&&pid| {
            i32::try_from(pid).is_ok_and(|pid| {
                nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                )
                .is_ok()
            })
        })
        .count()
}

/// A running child process, killed and reaped on drop.
#[derive(Debug)]
pub struct Child {
    child: std::process::Child,
    what: String,
    log: PathBuf,
    status: Option<ExitStatus>,
}

/// Starts `program args…` with stdin from `/dev/null` and stdout+stderr appended to `log`.
/// `what` names the child in logs and errors ("qemu", "accel probe", ...).
pub fn spawn(program: &Path, args: &[OsString], log: &Path, what: &str) -> Result<Child> {
    let out = File::options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| Error::io("creating log", log, e))?;
    let err = out
        .try_clone()
        .map_err(|e| Error::io("duplicating log handle", log, e))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::from(out))
        .stderr(Stdio::from(err));
    bind_to_parent(&mut cmd);
    tracing::debug!(what, program = %program.display(), args = ?args, log = %log.display(), "spawning");
    let child = cmd.spawn().map_err(|source| Error::Spawn {
        program: program.to_path_buf(),
        source,
    })?;
    tracing::debug!(what, pid = child.id(), "spawned");
    live().push(child.id());
    Ok(Child {
        child,
        what: what.to_owned(),
        log: log.to_path_buf(),
        status: None,
    })
}

/// Makes the kernel SIGKILL the child when the spawning thread dies, puts the child in its own
/// process group (a Ctrl-C on our terminal reaches us, and we stop the child our way) and
/// unblocks SIGINT/SIGTERM in it (we may have blocked them to wait for them in a thread; the
/// mask would otherwise be inherited).
#[allow(unsafe_code)]
fn bind_to_parent(cmd: &mut Command) {
    let parent = nix::unistd::getpid();
    let mut termination = nix::sys::signal::SigSet::empty();
    termination.add(nix::sys::signal::Signal::SIGINT);
    termination.add(nix::sys::signal::Signal::SIGTERM);
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes three system calls,
    // sigprocmask, prctl(PR_SET_PDEATHSIG) and getppid(), all async-signal-safe; it allocates
    // nothing (the signal set was built before the fork, nix's wrappers are thin and
    // `io::Error::from_raw_os_error` does not allocate) and touches no locks.
    unsafe {
        cmd.pre_exec(move || {
            termination
                .thread_unblock()
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // The parent may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

impl Child {
    /// The child's pid.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The log file holding its stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether it has exited, without blocking.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = self
            .child
            .try_wait()
            .map_err(|e| Error::io("waiting for child of", &self.log, e))?;
        if let Some(s) = s {
            tracing::debug!(what = %self.what, pid = self.id(), status = %s, "exited");
            self.reaped(s);
        }
        Ok(s)
    }

    /// Waits at most `timeout` for the child to exit. On timeout it is killed and reaped and
    /// [`Error::Timeout`] is returned.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let mut nap = Duration::from_millis(5);
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            let now = Instant::now();
            if now >= deadline {
                tracing::debug!(what = %self.what, pid = self.id(), ?timeout, "deadline passed, killing");
                self.kill()?;
                return Err(Error::Timeout {
                    what: self.what.clone(),
                    pid: self.id(),
                    after: timeout,
                    stderr_tail: self.stderr_tail(),
                });
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(50));
        }
    }

    /// Like [`Child::wait_timeout`], but a non-zero exit is an [`Error::Exited`].
    pub fn wait_success(&mut self, timeout: Duration) -> Result<()> {
        let status = self.wait_timeout(timeout)?;
        if status.success() {
            Ok(())
        } else {
            Err(self.exited_error(status))
        }
    }

    /// The error describing an unexpected exit `status`.
    pub fn exited_error(&self, status: ExitStatus) -> Error {
        Error::Exited {
            what: self.what.clone(),
            pid: self.id(),
            status,
            stderr_tail: self.stderr_tail(),
        }
    }

    /// SIGKILLs the child (if still running) and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        if let Err(e) = self.child.kill() {
            // InvalidInput: already reaped elsewhere; anything else is worth reporting.
            if e.kind() != io::ErrorKind::InvalidInput {
                return Err(Error::io("killing child of", &self.log, e));
            }
        }
        let s = self
            .child
            .wait()
            .map_err(|e| Error::io("reaping child of", &self.log, e))?;
        self.reaped(s);
        Ok(s)
    }

    fn reaped(&mut self, status: ExitStatus) {
        self.status = Some(status);
        let pid = self.id();
        live().retain(|&p| p != pid);
    }

    /// The last [`TAIL_LINES`] lines of the child's log (empty if unreadable).
    pub fn stderr_tail(&self) -> String {
        tail_lines(&self.log, TAIL_LINES).unwrap_or_default()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.status.is_none()
            && let Err(e) = self.kill()
        {
            tracing::warn!(what = %self.what, error = %e, "could not kill child on drop");
        }
    }
}

/// The last `n` lines of the file at `path`, looking only at its last [`TAIL_BYTES`] bytes.
pub fn tail_lines(path: &Path, n: usize) -> io::Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(TAIL_BYTES);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if start > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    let from = lines.len().saturating_sub(n);
    Ok(lines[from..].join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let t = tail_lines(&p, 40).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 40);
        assert_eq!(lines[0], "line 60");
        assert_eq!(lines[39], "line 99");
    }

    #[test]
    fn tail_of_huge_log_reads_only_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let t = tail_lines(&p, 3).unwrap();
        assert_eq!(t, "line 99997\nline 99998\nline 99999");
    }

    #[test]
    fn exit_status_and_log_capture() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let args: Vec<OsString> = vec!["-c".into(), "echo oops >&2; exit 3".into()];
        let mut c = spawn(Path::new("/bin/sh"), &args, &log, "sh").unwrap();
        let e = c.wait_success(Duration::from_secs(10)).unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("oops"), "{msg}");
        assert!(msg.contains("sh (pid"), "{msg}");
    }

    #[test]
    fn missing_program_is_a_spawn_error() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let e = spawn(Path::new("/nonexistent/qemu"), &[], &log, "x").unwrap_err();
        assert!(matches!(e, Error::Spawn { .. }), "{e}");
        assert!(e.to_string().contains("/nonexistent/qemu"));
    }
}
