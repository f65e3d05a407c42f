//! Byte progress of the exporters' tasks (`export`, `verify`): an indicatif bar per task on a
//! terminal, a plain line every 10% (or 10 s) otherwise, nothing in JSON mode.

use std::time::{Duration, Instant};

use super::bars::{BarSpec, Named};
use super::mode::Mode;
use super::units::gib;

/// How often a running task is reported in line mode when it does not reach the next 10%.
const LINE_EVERY: Duration = Duration::from_secs(10);

/// Progress of the exporters' tasks, one entry per task (named by the exporter).
#[derive(Debug)]
pub struct TaskProgress {
    shown: Named<LineState>,
    verb: &'static str,
}

/// Last reported point of a task in line mode.
#[derive(Debug, Clone)]
struct LineState {
    total: u64,
    last_decile: u64,
    last_print: Instant,
}

impl TaskProgress {
    /// Progress drawn for `mode`; lines start with `verb` (`export raw: 40% …`).
    pub fn new(mode: Mode, verb: &'static str) -> Self {
        TaskProgress {
            shown: Named::new(mode),
            verb,
        }
    }
}

/// `export raw: 40% (0.02 GiB of 0.06 GiB)`.
fn percent_line(verb: &str, task: &str, decile: u64, done: u64, total: u64) -> String {
    format!(
        "{verb} {task}: {}% ({} of {})",
        decile * 10,
        gib(done),
        gib(total)
    )
}

/// `export raw: done`.
fn done_line(verb: &str, task: &str) -> String {
    format!("{verb} {task}: done")
}

impl exporters::Progress for TaskProgress {
    fn started(&self, task: &str, total: u64) {
        self.shown.start(
            task,
            BarSpec {
                len: Some(total),
                template: "{prefix:>22} [{bar:30}] {bytes:>10}/{total_bytes:10} {elapsed_precise}",
                prefix: task.to_string(),
                position: 0,
            },
            || LineState {
                total,
                last_decile: 0,
                last_print: Instant::now(),
            },
        );
    }

    fn advanced(&self, task: &str, done: u64) {
        self.shown.advance(task, done, |line| {
            let decile = done
                .saturating_mul(10)
                .checked_div(line.total)
                .unwrap_or(10);
            if decile > line.last_decile || line.last_print.elapsed() > LINE_EVERY {
                line.last_decile = decile;
                line.last_print = Instant::now();
                eprintln!(
                    "{}",
                    percent_line(self.verb, task, decile, done, line.total)
                );
            }
        });
    }

    fn finished(&self, task: &str) {
        match &self.shown {
            Named::Bars(bars) => {
                if let Some(bar) = bars.get(task) {
                    bar.finish();
                }
            }
            Named::Lines(_) => eprintln!("{}", done_line(self.verb, task)),
            Named::Quiet => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_lines_name_the_verb_the_task_and_the_share() {
        assert_eq!(
            percent_line("export", "raw", 10, 64 << 20, 64 << 20),
            "export raw: 100% (0.06 GiB of 0.06 GiB)"
        );
        assert_eq!(
            percent_line("verify", "qcow2", 4, 1 << 30, 5 << 29),
            "verify qcow2: 40% (1.00 GiB of 2.50 GiB)"
        );
        assert_eq!(done_line("export", "raw"), "export raw: done");
    }
}
