//! A started child: its own process group, SIGKILLed when the thread that spawned it dies,
//! signal mask reset, registered for [`kill_all`], killed (with its process group) and reaped
//! on drop.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::ExitStatus;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::Pid;

use crate::error::{Error, Result};

/// Pids of the children started here and not reaped yet; each leads its own process group.
/// A pid stays ours (running or zombie) until it is reaped, and so does the process-group id
/// it leads, so [`kill_all`] can never hit a recycled one.
static LIVE: Mutex<Vec<u32>> = Mutex::new(Vec::new());

fn live() -> MutexGuard<'static, Vec<u32>> {
    LIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// SIGKILLs the process group of every child started through this crate that has not been
/// reaped yet (the children and whatever they started), for a signal handler that is about to
/// exit the process. Returns how many groups were signalled.
pub fn kill_all() -> usize {
    let pids = live().clone();
    pids.into_iter()
        .filter(|&pid| kill_group(pid).is_ok())
        .count()
}

fn kill_group(pid: u32) -> nix::Result<()> {
    let pid = i32::try_from(pid).map_err(|_| nix::errno::Errno::ESRCH)?;
    killpg(Pid::from_raw(pid), Signal::SIGKILL)
}

/// Makes the kernel SIGKILL the child when the spawning thread dies, puts the child in its own
/// process group (a Ctrl-C on our terminal reaches only us; we stop the child our way) and
/// resets its whole signal mask (we block SIGINT/SIGTERM to wait for them in a thread, and a
/// blocked mask is inherited across exec).
#[allow(unsafe_code)]
pub(crate) fn bind_to_parent(cmd: &mut std::process::Command) {
    let parent = nix::unistd::getpid();
    let nothing = SigSet::empty();
    cmd.process_group(0);
    // SAFETY: the closure runs between fork and exec and only makes three system calls,
    // sigprocmask, prctl(PR_SET_PDEATHSIG) and getppid(), all async-signal-safe; it allocates
    // nothing (the signal set was built before the fork, nix's wrappers are thin and
    // `io::Error::from_raw_os_error` does not allocate) and touches no locks.
    unsafe {
        cmd.pre_exec(move || {
            nothing
                .thread_set_mask()
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)
                .map_err(|e| io::Error::from_raw_os_error(e as i32))?;
            // The parent may have died between fork and prctl: then nobody would kill us.
            if nix::unistd::getppid() != parent {
                return Err(io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            Ok(())
        });
    }
}

/// A running child, killed (with its process group) and reaped on drop.
#[derive(Debug)]
pub struct Child {
    pub(crate) child: std::process::Child,
    what: String,
    status: Option<ExitStatus>,
}

impl Child {
    /// Registers a freshly spawned child.
    pub(crate) fn started(child: std::process::Child, what: &str) -> Self {
        live().push(child.id());
        tracing::debug!(what, pid = child.id(), "spawned");
        Child {
            child,
            what: what.to_owned(),
            status: None,
        }
    }

    /// The child's pid (also its process-group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// What the child is for, as given to the command.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Whether the child has exited, without blocking; an exited child is reaped.
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = self
            .child
            .try_wait()
            .map_err(|e| self.io("waiting for", e))?;
        if let Some(s) = s {
            tracing::debug!(what = %self.what, pid = self.id(), status = %s, "exited");
            self.reaped(s);
        }
        Ok(s)
    }

    /// Whether the child has exited, without blocking and without reaping it: while it is a
    /// zombie its process group cannot be recycled, so [`Child::kill_group`] stays safe.
    pub(crate) fn exited_unreaped(&self) -> Result<bool> {
        if self.status.is_some() {
            return Ok(true);
        }
        let pid = i32::try_from(self.id())
            .map_err(|_| self.io("waiting for", io::ErrorKind::InvalidInput.into()))?;
        match waitid(
            Id::Pid(Pid::from_raw(pid)),
            WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT,
        ) {
            Ok(WaitStatus::StillAlive) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(self.io("waiting for", io::Error::from_raw_os_error(e as i32))),
        }
    }

    /// Waits until the child exits or `deadline` passes (then `None`; the child keeps running).
    pub fn wait_until(&mut self, deadline: Instant) -> Result<Option<ExitStatus>> {
        let mut nap = Duration::from_millis(5);
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(50));
        }
    }

    /// SIGKILLs the child's process group (if not reaped yet) and reaps the child.
    pub fn kill(&mut self) -> Result<ExitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        self.kill_group();
        let s = self.child.wait().map_err(|e| self.io("reaping", e))?;
        self.reaped(s);
        Ok(s)
    }

    /// SIGKILLs the child's process group unless the child has been reaped (then the group id
    /// may belong to someone else).
    pub(crate) fn kill_group(&self) {
        if self.status.is_none()
            && let Err(e) = kill_group(self.id())
            && e != nix::errno::Errno::ESRCH
        {
            tracing::warn!(what = %self.what, pid = self.id(), error = %e, "could not kill process group");
        }
    }

    fn reaped(&mut self, status: ExitStatus) {
        self.status = Some(status);
        let pid = self.id();
        live().retain(|&p| p != pid);
    }

    fn io(&self, op: &'static str, source: io::Error) -> Error {
        Error::Io {
            op,
            what: self.what.clone(),
            source,
        }
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
