//! Named phases of a command with their durations: a spinner per phase on a terminal, a line
//! when each starts and ends otherwise. The durations are kept for a summary.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs phases and remembers how long each took.
#[derive(Debug)]
pub struct Phases {
    spinner: bool,
    done: Vec<(String, Duration)>,
}

impl Phases {
    /// Spinners when stderr is a terminal, lines otherwise.
    pub fn new() -> Self {
        Phases {
            spinner: std::io::stderr().is_terminal(),
            done: Vec::new(),
        }
    }

    /// Runs `f` as the phase `name`, showing it while it runs and its duration when it ends.
    pub fn run<T, E>(&mut self, name: &str, f: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let t = Instant::now();
        let bar = if self.spinner {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.set_message(name.to_owned());
            bar.enable_steady_tick(Duration::from_millis(120));
            Some(bar)
        } else {
            eprintln!("{name} ...");
            None
        };
        let result = f();
        let took = t.elapsed();
        let outcome = if result.is_ok() { "done" } else { "failed" };
        let line = format!("{name}: {outcome} in {:.1}s", took.as_secs_f64());
        match bar {
            Some(bar) => {
                if let Ok(style) = ProgressStyle::with_template("  {msg}") {
                    bar.set_style(style);
                }
                bar.finish_with_message(line);
            }
            None => eprintln!("{line}"),
        }
        if result.is_ok() {
            self.done.push((name.to_owned(), took));
        }
        result
    }

    /// One line: `phase 1.2s, phase 3.4s, ...`.
    pub fn summary(&self) -> String {
        self.done
            .iter()
            .map(|(n, d)| format!("{n} {:.1}s", d.as_secs_f64()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}
