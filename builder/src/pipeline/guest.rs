//! Running named commands in the build guest over SSH: each timed, its output streamed to
//! `build.log`, a failure turned into one error naming the step, its exit and its last lines
//! of output, plus the end of the serial console.

use std::time::{Duration, Instant};

use anyhow::Result;
use distros::batch::{self, BatchItem};
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

/// Runs `commands` as one batch per [`distros::batch::MAX_COMMAND`] (one SSH command and one
/// `sudo` each) and returns how each item that ran ended, in order; with `stop_at_failure` the
/// first failure ends the run (the items after it do not run). Each item's start and end reach
/// the reporter as they happen; its duration is the guest's. A batch cut off while an item runs
/// (SSH lost, the guest's shell killed) is an error naming that item, with its output's end.
pub fn run_batch(
    ssh: &Ssh,
    phase: &str,
    commands: &[GuestCommand],
    stop_at_failure: bool,
    lanes: usize,
    reporter: &Reporter,
) -> Result<Vec<Ran>> {
    let items: Vec<BatchItem<'_>> = commands
        .iter()
        .map(|c| BatchItem {
            name: &c.name,
            script: &c.script,
            timeout: c.timeout,
            stop_on_failure: stop_at_failure,
        })
        .collect();
    let mut done: Vec<Ran> = Vec::new();
    let mut offset = 0;
    for part in batch::split(&items) {
        let ran = run_one_batch(
            ssh,
            phase,
            &commands[offset..offset + part.len()],
            (part, lanes),
            reporter,
        )?;
        offset += part.len();
        let failed = ran.iter().any(|r| !r.success());
        done.extend(ran);
        if failed && stop_at_failure {
            break;
        }
    }
    Ok(done)
}

fn run_one_batch(
    ssh: &Ssh,
    phase: &str,
    commands: &[GuestCommand],
    (items, lanes): (&[BatchItem<'_>], usize),
    reporter: &Reporter,
) -> Result<Vec<Ran>> {
    let mut reader = batch::Reader::new();
    let mut outputs: Vec<Vec<u8>> = vec![Vec::new(); commands.len()];
    let mut outside = Vec::new();
    let mut done: Vec<Option<Ran>> = vec![None; commands.len()];
    let mut handle = |events: Vec<batch::Event>| {
        for event in events {
            match event {
                batch::Event::Started { index } if index < commands.len() => {
                    reporter.step_started(phase, &commands[index].name);
                }
                batch::Event::Output { index, bytes } => {
                    reporter.log_bytes(&bytes);
                    match index.and_then(|i| outputs.get_mut(i)) {
                        Some(out) => out.extend_from_slice(&bytes),
                        None => outside.extend_from_slice(&bytes),
                    }
                }
                batch::Event::Finished {
                    index,
                    exit,
                    seconds,
                } if index < commands.len() => {
                    let cmd = &commands[index];
                    let took = Duration::from_secs_f64(seconds);
                    let timed_out = matches!(exit, batch::TIMED_OUT | 137)
                        && took + Duration::from_millis(500) >= cmd.timeout;
                    let ran = Ran {
                        exit: Exit::Code(u32::try_from(exit).unwrap_or(u32::MAX)),
                        timed_out,
                        output: String::from_utf8_lossy(&std::mem::take(&mut outputs[index]))
                            .into_owned(),
                        took,
                    };
                    reporter.step_finished(phase, &cmd.name, took, ran.success());
                    done[index] = Some(ran);
                }
                _ => {}
            }
        }
    };
    let script = batch::render(items, lanes);
    let result = ssh.exec(
        &batch::remote_command(&script),
        Some(batch::total_timeout(items)),
        &mut |_, data| handle(reader.feed(data)),
    );
    let running = reader.current();
    handle(reader.finish());
    let exit = result?;
    // In order: those that ended, up to the first that did not.
    let ended: Vec<Ran> = done.iter().map_while(Clone::clone).collect();
    let stopped_at_failure = items.first().is_some_and(|i| i.stop_on_failure)
        && ended.last().is_some_and(|r| !r.success());
    if ended.len() < commands.len() && !stopped_at_failure {
        let index = running.filter(|_| lanes == 1).unwrap_or(ended.len());
        let name = commands.get(index).map_or("?", |c| c.name.as_str());
        let mut text = String::from_utf8_lossy(&outside).into_owned();
        if let Some(out) = outputs.get(index) {
            text.push_str(&String::from_utf8_lossy(out));
        }
        anyhow::bail!(
            "the guest's batch of {phase} steps ended ({exit}) while or before `{name}` ran; its output ends:\n{}",
            output_tail(&text)
        );
    }
    Ok(ended)
}

/// Runs `commands` in order as steps of `phase`, as one batch; the first that fails ends the
/// phase with an error naming it, its outcome, its output and the serial console's end.
pub fn run_steps(
    vm: &Vm,
    ssh: &Ssh,
    phase: &str,
    commands: &[GuestCommand],
    reporter: &Reporter,
) -> Result<Vec<(String, Duration)>> {
    let ran = run_batch(ssh, phase, commands, true, 1, reporter)?;
    let mut done = Vec::new();
    for (cmd, ran) in commands.iter().zip(&ran) {
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
