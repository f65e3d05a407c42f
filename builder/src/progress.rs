//! Progress for the exporters' callbacks: an indicatif bar per task on a terminal, a plain
//! line every 10% (or 10 s) otherwise, nothing in JSON mode.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug)]
pub enum CliProgress {
    /// Bars on stderr.
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    /// Periodic lines on stderr.
    Lines {
        state: Mutex<HashMap<String, LineState>>,
        verb: &'static str,
    },
    /// Nothing.
    Quiet,
}

/// Last reported point of a task in line mode.
#[derive(Debug, Clone)]
pub struct LineState {
    total: u64,
    last_decile: u64,
    last_print: Instant,
}

impl CliProgress {
    /// Bars when stderr is a terminal, lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool, verb: &'static str) -> Self {
        if quiet {
            CliProgress::Quiet
        } else if std::io::stderr().is_terminal() {
            CliProgress::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            }
        } else {
            CliProgress::Lines {
                state: Mutex::default(),
                verb,
            }
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

impl exporters::Progress for CliProgress {
    fn started(&self, task: &str, total: u64) {
        match self {
            CliProgress::Bars { multi, bars } => {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>22} [{bar:30}] {bytes:>10}/{total_bytes:10} {elapsed_precise}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(task.to_string());
                if let Ok(mut bars) = bars.lock() {
                    bars.insert(task.to_string(), bar);
                }
            }
            CliProgress::Lines { state, .. } => {
                if let Ok(mut s) = state.lock() {
                    s.insert(
                        task.to_string(),
                        LineState {
                            total,
                            last_decile: 0,
                            last_print: Instant::now(),
                        },
                    );
                }
            }
            CliProgress::Quiet => {}
        }
    }

    fn advanced(&self, task: &str, done: u64) {
        match self {
            CliProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|b| b.get(task).cloned()) {
                    bar.set_position(done);
                }
            }
            CliProgress::Lines { state, verb } => {
                let Ok(mut s) = state.lock() else { return };
                let Some(line) = s.get_mut(task) else { return };
                let decile = done
                    .saturating_mul(10)
                    .checked_div(line.total)
                    .unwrap_or(10);
                if decile > line.last_decile || line.last_print.elapsed() > Duration::from_secs(10)
                {
                    line.last_decile = decile;
                    line.last_print = Instant::now();
                    eprintln!(
                        "{verb} {task}: {}% ({} of {})",
                        decile * 10,
                        gib(done),
                        gib(line.total)
                    );
                }
            }
            CliProgress::Quiet => {}
        }
    }

    fn finished(&self, task: &str) {
        match self {
            CliProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|b| b.get(task).cloned()) {
                    bar.finish();
                }
            }
            CliProgress::Lines { verb, .. } => eprintln!("{verb} {task}: done"),
            CliProgress::Quiet => {}
        }
    }
}
