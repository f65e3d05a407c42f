//! Running named commands in the build guest over SSH: each timed, its output streamed to
//! `build.log`, a failure turned into one error naming the step, its exit and its last lines
//! of output, plus the end of the serial console.

use std::time::{Duration, Instant};

use anyhow::Result;
use qemu::ssh::{Exit, Ssh};
use qemu::vm::Vm;

use crate::report::Reporter;

/// Lines of a failed step's output shown in the error.
const OUTPUT_TAIL: usize = 30;

/// A command to run as root in the guest: a [`distros::Step`] or [`distros::Check`] ready to
/// run (every script is rendered in `distros`; this type holds none of its own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCommand {
    /// For logs and errors.
    pub name: String,
    /// The full remote command line.
    pub command: String,
    /// The script the guest's shell runs (what `command` hands to `sudo -n /bin/sh -c`).
    pub script: String,
    /// How long it may run.
    pub timeout: Duration,
}

impl From<&distros::Step> for GuestCommand {
    fn from(step: &distros::Step) -> Self {
        GuestCommand {
            name: step.name.clone(),
            command: step.remote_command(),
            script: step.script.clone(),
            timeout: step.timeout,
        }
    }
}

impl From<&distros::Check> for GuestCommand {
    fn from(check: &distros::Check) -> Self {
        GuestCommand {
            name: check.name.clone(),
            command: check.remote_command(),
            script: check.script.clone(),
            timeout: check.timeout,
        }
    }
}

/// The last [`OUTPUT_TAIL`] lines of `text`, as a failed step's error shows them.
pub fn output_tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(OUTPUT_TAIL)..].join("\n")
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Ran {
    /// How it ended (`Exit::Unknown` with `timed_out` when the host gave up).
    pub exit: Exit,
    /// Whether it hit its timeout.
    pub timed_out: bool,
    /// Its output, stdout and stderr interleaved as they came.
    pub output: String,
    /// How long it took.
    pub took: Duration,
}

impl Ran {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        !self.timed_out && self.exit.success()
    }

    /// The last lines of output.
    pub fn tail(&self) -> String {
        output_tail(&self.output)
    }

    /// `exit code 3`, `signal KILL`, `timed out after 30s`.
    pub fn outcome(&self) -> String {
        if self.timed_out {
            format!("timed out after {:.0?}", self.took)
        } else {
            self.exit.to_string()
        }
    }
}

/// Runs `cmd`, streaming its output into the log. SSH-level failures other than the timeout
/// are errors.
pub fn run(ssh: &Ssh, cmd: &GuestCommand, reporter: &Reporter) -> Result<Ran> {
    let t = Instant::now();
    let mut output = Vec::new();
    let result = ssh.exec(&cmd.command, Some(cmd.timeout), &mut |_, data| {
        reporter.log_bytes(data);
        output.extend_from_slice(data);
    });
    let took = t.elapsed();
    let output = String::from_utf8_lossy(&output).into_owned();
    match result {
        Ok(exit) => Ok(Ran {
            exit,
            timed_out: false,
            output,
            took,
        }),
        Err(_) if took >= cmd.timeout => Ok(Ran {
            exit: Exit::Unknown,
            timed_out: true,
            output,
            took,
        }),
        Err(e) => Err(e.into()),
    }
}

/// Runs `commands` in order as steps of `phase`; the first that fails ends the phase with an
/// error naming it, its outcome, its output and the serial console's end.
pub fn run_steps(
    vm: &Vm,
    ssh: &Ssh,
    phase: &str,
    commands: &[GuestCommand],
    reporter: &Reporter,
) -> Result<Vec<(String, Duration)>> {
    let mut done = Vec::new();
    for cmd in commands {
        reporter.step_started(phase, &cmd.name);
        let ran = run(ssh, cmd, reporter)?;
        reporter.step_finished(phase, &cmd.name, ran.took, ran.success());
        if !ran.success() {
            let what = format!(
                "{phase} step `{}` failed ({}); its output ends:\n{}",
                cmd.name,
                ran.outcome(),
                ran.tail()
            );
            return Err(vm.failure(what).into());
        }
        done.push((cmd.name.clone(), ran.took));
    }
    Ok(done)
}
