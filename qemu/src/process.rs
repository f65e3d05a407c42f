//! QEMU's long-lived child, on the one runner ([`child_process`]): its own process group,
//! SIGKILLed when the spawning **thread** dies (Linux `PR_SET_PDEATHSIG` semantics: spawn from
//! a long-lived thread), signal mask reset, registered for [`kill_all`].
//!
//! * Dropping a [`Child`] kills and reaps it.
//! * Every wait has a deadline; on timeout the child is killed and reaped.
//! * stdout and stderr go to a log file (in the VM directory); errors carry its last
//!   [`TAIL_LINES`] lines.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

pub use child_process::{TAIL_LINES, kill_all, tail_lines};

use crate::error::{Error, Result};

/// A running child process, killed and reaped on drop.
#[derive(Debug)]
pub struct Child {
    child: child_process::Child,
    what: String,
    log: PathBuf,
}

/// Starts `program args…` with stdin from `/dev/null` and stdout+stderr appended to `log`.
/// `what` names the child in logs and errors ("qemu", "accel probe", ...).
pub fn spawn(program: &Path, args: &[OsString], log: &Path, what: &str) -> Result<Child> {
    // The deadline of a run does not apply to a spawned child: its waits take their own.
    let child = child_process::Command::new(program, Duration::MAX)
        .args(args)
        .log_to(log)
        .what(what)
        .spawn()?;
    Ok(Child {
        child,
        what: what.to_owned(),
        log: log.to_path_buf(),
    })
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
        Ok(self.child.try_wait()?)
    }

    /// Waits at most `timeout` for the child to exit. On timeout it is killed and reaped and
    /// [`Error::Timeout`] is returned.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(365 * 24 * 3600));
        if let Some(s) = self.child.wait_until(deadline)? {
            return Ok(s);
        }
        tracing::debug!(what = %self.what, pid = self.id(), ?timeout, "deadline passed, killing");
        self.kill()?;
        Err(Error::Timeout {
            what: self.what.clone(),
            pid: self.id(),
            after: timeout,
            stderr_tail: self.stderr_tail(),
        })
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

    /// SIGKILLs the child and its process group (if still running) and reaps it.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        Ok(self.child.kill()?)
    }

    /// The last [`TAIL_LINES`] lines of the child's log (empty if unreadable).
    pub fn stderr_tail(&self) -> String {
        tail_lines(&self.log, TAIL_LINES).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(
            matches!(e, Error::Run(child_process::Error::Spawn { .. })),
            "{e}"
        );
        assert!(e.to_string().contains("/nonexistent/qemu"));
    }
}
