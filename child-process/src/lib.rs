//! The one way nodeimg runs an external program (qemu-img, mkfs.ext4, ssh-keygen, QEMU, the
//! fixtures' build tools, ...):
//!
//! * the child gets its own process group, `PR_SET_PDEATHSIG = SIGKILL` (checked against the
//!   fork/prctl race) and an empty signal mask, so it never outlives us and never inherits our
//!   blocked SIGINT/SIGTERM;
//! * every [`Command::run`] has a deadline: on timeout the whole process group is SIGKILLed,
//!   reaped, and the error carries the end of stderr;
//! * stdout is captured up to a cap (beyond it the child is killed and the run fails naming
//!   the cap), stderr is kept as a bounded tail, or both go to a log file;
//! * [`kill_all`] SIGKILLs the process group of every live child, for the interrupt handler.

mod child;
mod error;
mod tail;

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub use child::{Child, kill_all};
pub use error::{Error, Result};
pub use tail::{STDERR_TAIL_BYTES, TAIL_LINES, tail_lines};

use tail::TailBuffer;

/// The default cap on captured stdout.
pub const DEFAULT_STDOUT_CAP: usize = 16 * 1024 * 1024;

/// How long the end of stderr is waited for after the child was killed (a process that left
/// our process group may hold the pipe open).
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// An external program to run: builder of arguments, environment, directory and stdin, with a
/// deadline on every run.
#[derive(Debug, Clone)]
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    envs: Vec<(OsString, Option<OsString>)>,
    cwd: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    what: Option<String>,
    timeout: Duration,
    stdout_cap: usize,
    log: Option<PathBuf>,
}

/// What a finished run gave.
#[derive(Debug, Clone)]
pub struct Output {
    /// How the child exited.
    pub status: ExitStatus,
    /// Its stdout (empty when it went to a log file).
    pub stdout: Vec<u8>,
    /// The last [`TAIL_LINES`] lines of its stderr (or of the log file).
    pub stderr_tail: String,
}

impl Output {
    /// stdout as text (invalid UTF-8 replaced).
    pub fn stdout_lossy(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

enum Msg {
    Stdout(io::Result<Vec<u8>>),
    OverCap,
    Stderr(String),
}

impl Command {
    /// `program` (a path, or a name looked up in `PATH`), to be killed if a run takes longer
    /// than `timeout`. Pick the deadline to catch hangs, not slowness: be generous.
    pub fn new(program: impl AsRef<OsStr>, timeout: Duration) -> Self {
        Command {
            program: PathBuf::from(program.as_ref()),
            args: Vec::new(),
            envs: Vec::new(),
            cwd: None,
            stdin: None,
            what: None,
            timeout,
            stdout_cap: DEFAULT_STDOUT_CAP,
            log: None,
        }
    }

    /// Adds an argument.
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Self {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    /// Adds arguments.
    pub fn args<I, S>(&mut self, args: I) -> &mut Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable for the child.
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Self {
        self.envs
            .push((key.as_ref().to_owned(), Some(value.as_ref().to_owned())));
        self
    }

    /// Removes an environment variable from the child's environment.
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Self {
        self.envs.push((key.as_ref().to_owned(), None));
        self
    }

    /// Runs the child in `dir`.
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Self {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// Feeds `bytes` to the child's stdin (the default is `/dev/null`).
    pub fn stdin_bytes(&mut self, bytes: impl Into<Vec<u8>>) -> &mut Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Names the child in logs and errors ("qemu-img convert", "qemu version query"); the
    /// default is the program.
    pub fn what(&mut self, what: impl Into<String>) -> &mut Self {
        self.what = Some(what.into());
        self
    }

    /// Changes the deadline.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.timeout = timeout;
        self
    }

    /// Caps captured stdout at `bytes` (default [`DEFAULT_STDOUT_CAP`]).
    pub fn stdout_cap(&mut self, bytes: usize) -> &mut Self {
        self.stdout_cap = bytes;
        self
    }

    /// Appends the child's stdout and stderr to the file at `path` instead of capturing them
    /// (errors then carry the end of that file).
    pub fn log_to(&mut self, path: impl AsRef<Path>) -> &mut Self {
        self.log = Some(path.as_ref().to_path_buf());
        self
    }

    /// The program.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// The arguments.
    pub fn get_args(&self) -> &[OsString] {
        &self.args
    }

    /// What the child is called in messages.
    pub fn name(&self) -> String {
        match &self.what {
            Some(w) => format!("{w} ({})", self.program.display()),
            None => self.program.display().to_string(),
        }
    }

    /// Runs the child to the end; a non-zero exit is an [`Error::Exited`].
    pub fn run(&self) -> Result<Output> {
        let out = self.run_status()?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(Error::Exited {
                what: self.name(),
                status: out.status,
                stderr_tail: out.stderr_tail,
            })
        }
    }

    /// Runs the child to the end and returns how it exited, whatever the status (for callers
    /// that interpret it, e.g. `qemu-img compare` exiting 1). A timeout, the output cap or a
    /// failure to start are still errors.
    pub fn run_status(&self) -> Result<Output> {
        let deadline = Instant::now() + self.timeout;
        let mut child = self.start(self.stdin.is_some(), self.log.is_none())?;
        if let (Some(bytes), Some(mut pipe)) = (self.stdin.clone(), child.child.stdin.take()) {
            // Not joined: it ends when the child reads everything or its end of the pipe
            // closes (EPIPE: SIGPIPE is ignored in Rust programs).
            std::thread::spawn(move || {
                let _ = pipe.write_all(&bytes);
            });
        }
        let (tx, rx) = mpsc::channel();
        let mut stdout = None;
        if let Some(pipe) = child.child.stdout.take() {
            let tx = tx.clone();
            let cap = self.stdout_cap;
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let r = pipe
                    .take(u64::try_from(cap).unwrap_or(u64::MAX).saturating_add(1))
                    .read_to_end(&mut buf);
                let _ = tx.send(match r {
                    Ok(_) if buf.len() > cap => Msg::OverCap,
                    Ok(_) => Msg::Stdout(Ok(buf)),
                    Err(e) => Msg::Stdout(Err(e)),
                });
            });
        } else {
            stdout = Some(Vec::new());
        }
        let mut stderr = None;
        if let Some(mut pipe) = child.child.stderr.take() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                let mut tail = TailBuffer::new(STDERR_TAIL_BYTES);
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => tail.push(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
                let _ = tx.send(Msg::Stderr(tail.lines()));
            });
        } else {
            stderr = Some(String::new());
        }
        drop(tx);
        let mut exited = false;
        let mut readers_done = false;
        loop {
            let now = Instant::now();
            if now >= deadline {
                tracing::debug!(what = %self.name(), timeout = ?self.timeout, "deadline passed, killing");
                child.kill()?;
                let stderr_tail = match (&self.log, stderr) {
                    (Some(_), _) => self.log_tail(),
                    (None, Some(t)) => t,
                    (None, None) => wait_stderr(&rx),
                };
                return Err(Error::Timeout {
                    what: self.name(),
                    after: self.timeout,
                    stderr_tail,
                });
            }
            let nap = (deadline - now).min(Duration::from_millis(50));
            if readers_done {
                std::thread::sleep(nap.min(Duration::from_millis(5)));
            } else {
                match rx.recv_timeout(nap) {
                    Ok(Msg::OverCap) => {
                        child.kill()?;
                        return Err(Error::OutputCap {
                            what: self.name(),
                            cap: self.stdout_cap,
                        });
                    }
                    Ok(Msg::Stdout(r)) => {
                        stdout = Some(r.map_err(|source| Error::Io {
                            op: "reading the stdout of",
                            what: self.name(),
                            source,
                        })?);
                    }
                    Ok(Msg::Stderr(t)) => stderr = Some(t),
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => readers_done = true,
                }
            }
            if !exited && child.exited_unreaped()? {
                exited = true;
                // Whatever it left running in its group (and holding our pipes) goes too.
                child.kill_group();
            }
            if exited && let (Some(_), Some(_)) = (&stdout, &stderr) {
                break;
            }
        }
        let status = child.kill()?;
        let stderr_tail = match (&self.log, stderr) {
            (Some(_), _) => self.log_tail(),
            (None, s) => s.unwrap_or_default(),
        };
        tracing::debug!(what = %self.name(), %status, "finished");
        Ok(Output {
            status,
            stdout: stdout.unwrap_or_default(),
            stderr_tail,
        })
    }

    /// Starts the child and returns it running (a long-lived one such as QEMU: its waits take
    /// their own deadlines). stdin is `/dev/null`; stdout and stderr go to the log file if one
    /// was given, else to `/dev/null`.
    pub fn spawn(&self) -> Result<Child> {
        self.start(false, false)
    }

    fn start(&self, pipe_stdin: bool, pipe_output: bool) -> Result<Child> {
        let mut cmd = std::process::Command::new(&self.program);
        cmd.args(&self.args);
        for (k, v) in &self.envs {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        cmd.stdin(if pipe_stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        if let Some(log) = &self.log {
            let out = File::options()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|source| self.log_error("opening the log", log, source))?;
            let err = out
                .try_clone()
                .map_err(|source| self.log_error("duplicating the log handle", log, source))?;
            cmd.stdout(out).stderr(err);
        } else if pipe_output {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        } else {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        child::bind_to_parent(&mut cmd);
        let what = self.name();
        tracing::debug!(what, args = ?self.args, cwd = ?self.cwd, "spawning");
        let c = cmd.spawn().map_err(|source| Error::Spawn {
            what: what.clone(),
            source,
        })?;
        Ok(Child::started(c, &what))
    }

    fn log_tail(&self) -> String {
        self.log
            .as_deref()
            .and_then(|p| tail_lines(p, TAIL_LINES).ok())
            .unwrap_or_default()
    }

    fn log_error(&self, op: &'static str, log: &Path, source: io::Error) -> Error {
        Error::Io {
            op,
            what: format!("{} for {}", log.display(), self.name()),
            source,
        }
    }
}

/// Waits (briefly) for the stderr reader's tail after the child was killed.
fn wait_stderr(rx: &mpsc::Receiver<Msg>) -> String {
    let until = Instant::now() + DRAIN_GRACE;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(Msg::Stderr(t)) => return t,
            Ok(_) => {}
            Err(_) => return String::new(),
        }
    }
}

#[cfg(test)]
mod tests;
