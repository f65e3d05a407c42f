//! What a command with phases (`build`, `boot`) tells its user while it runs: phases and steps
//! with their durations, drawn as a two-line indicatif display on a terminal, as plain lines
//! with the elapsed time otherwise, or as JSON event lines (`--json`) for machines. Everything,
//! including every guest command's output, also goes to the build log once it is open.

use std::path::Path;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::events::Event;
use super::log_file::{LogFile, stamp};
use super::mode::Mode;

struct Bars {
    multi: MultiProgress,
    phase: ProgressBar,
    /// Drawn from the first step or byte count on (`boot` has none).
    step: OnceLock<ProgressBar>,
    /// A line of its own for each phase running alongside the main one ([`Reporter::side_phase`]).
    side: Mutex<Vec<(String, ProgressBar)>>,
}

impl Bars {
    fn step(&self) -> &ProgressBar {
        self.step
            .get_or_init(|| spinner(&self.multi, "  {msg} {elapsed}"))
    }
}

/// The run's reporter: shared by reference, safe to call from any thread.
pub struct Reporter {
    mode: Mode,
    start: Instant,
    log: LogFile,
    bars: Option<Bars>,
    phases: Mutex<Vec<(String, Duration)>>,
}

fn spinner(multi: &MultiProgress, template: &str) -> ProgressBar {
    let bar = multi.add(ProgressBar::new_spinner());
    bar.set_style(
        ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The data behind `mutex`, also when a thread panicked holding it.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// `phase 1.2s, phase 3.4s, ...`.
fn summary_of(timings: &[(String, Duration)]) -> String {
    timings
        .iter()
        .map(|(n, d)| format!("{n} {:.1}s", d.as_secs_f64()))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Reporter {
    /// A reporter in `mode`, without a log file yet.
    pub fn new(mode: Mode) -> Self {
        let bars = (mode == Mode::Terminal).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let phase = spinner(&multi, "{spinner} {msg} {elapsed}");
            Bars {
                multi,
                phase,
                step: OnceLock::new(),
                side: Mutex::default(),
            }
        });
        let start = Instant::now();
        Reporter {
            mode,
            start,
            log: LogFile::new(start),
            bars,
            phases: Mutex::new(Vec::new()),
        }
    }

    /// Starts writing the build log at `path` (what was said so far is not repeated).
    pub fn open_log(&self, path: &Path) -> std::io::Result<()> {
        self.log.open(path)
    }

    /// Flushes and closes the build log.
    pub fn close_log(&self) -> std::io::Result<()> {
        self.log.close()
    }

    /// Appends to the build log only.
    pub fn log(&self, text: &str) {
        self.log.line(text);
    }

    /// Raw guest output into the build log.
    pub fn log_bytes(&self, data: &[u8]) {
        self.log.bytes(data);
    }

    /// Logs `event`, and shows it: its JSON in JSON mode, its line otherwise.
    fn say(&self, event: &Event<'_>) {
        let Some(text) = event.line() else { return };
        self.log(&text);
        match self.mode {
            Mode::Json => println!("{}", event.json()),
            Mode::Lines => eprintln!("[{}] {text}", stamp(self.start)),
            Mode::Terminal => {
                if let Some(b) = &self.bars {
                    b.multi.suspend(|| eprintln!("{text}"));
                }
            }
        }
    }

    /// A message for the user.
    pub fn info(&self, text: &str) {
        self.say(&Event::Info { message: text });
    }

    /// Runs `f` as the phase `name`.
    pub fn phase<T, E: std::fmt::Display>(
        &self,
        name: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(b) = &self.bars {
            b.phase.set_message(format!("phase: {name}"));
            b.phase.reset_elapsed();
        }
        self.timed(name, f)
    }

    /// Runs `f` as the phase `name` alongside the phase running on another thread: timed,
    /// logged and said like [`Reporter::phase`] (JSON events carry the phase name), but on a
    /// terminal drawn on a line of its own, with its byte progress ([`Reporter::side_bytes`]),
    /// so the main phase's lines stay as they are.
    pub fn side_phase<T, E: std::fmt::Display>(
        &self,
        name: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        if let Some(b) = &self.bars {
            let bar = spinner(&b.multi, "{spinner} {msg} {elapsed}");
            bar.set_message(format!("phase: {name} (alongside)"));
            lock(&b.side).push((name.to_owned(), bar));
        }
        let result = self.timed(name, f);
        if let Some(b) = &self.bars {
            let mut side = lock(&b.side);
            if let Some(i) = side.iter().position(|(n, _)| n == name) {
                side.remove(i).1.finish_and_clear();
            }
        }
        result
    }

    /// Byte progress of the side phase `phase` (drawn on its line on a terminal; in JSON mode
    /// one event when it is complete, as [`Reporter::bytes`]).
    pub fn side_bytes(&self, phase: &str, what: &str, done: u64, total: u64) {
        if let Some(b) = &self.bars {
            if let Some((_, bar)) = lock(&b.side).iter().find(|(n, _)| n == phase) {
                bar.set_message(format!(
                    "phase: {phase} (alongside): {what} {} / {} MiB",
                    done >> 20,
                    total >> 20
                ));
            }
        } else if self.mode == Mode::Json && done == total {
            println!("{}", Event::Bytes { what, done, total }.json());
        }
    }

    /// Runs `f` as the phase `name`: its start and end said (the start only off a terminal,
    /// where the caller draws it) and logged, its duration kept when it succeeded.
    fn timed<T, E: std::fmt::Display>(
        &self,
        name: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let t = Instant::now();
        if self.bars.is_none() {
            self.say(&Event::PhaseStarted { phase: name });
        }
        self.log(&format!("phase {name}: started"));
        let result = f();
        let took = t.elapsed();
        let seconds = took.as_secs_f64();
        match &result {
            Ok(_) => {
                lock(&self.phases).push((name.to_owned(), took));
                self.say(&Event::PhaseDone {
                    phase: name,
                    seconds,
                });
            }
            Err(e) => self.say(&Event::PhaseFailed {
                phase: name,
                seconds,
                error: e.to_string(),
            }),
        }
        result
    }

    /// A guest step or check started.
    pub fn step_started(&self, phase: &str, step: &str) {
        let event = Event::StepStarted { phase, step };
        if let Some(line) = event.log_line() {
            self.log(&line);
        }
        match &self.bars {
            Some(b) => {
                let bar = b.step();
                bar.set_message(format!("{phase}: {step}"));
                bar.reset_elapsed();
            }
            None if self.mode == Mode::Json => println!("{}", event.json()),
            None => {}
        }
    }

    /// A guest step or check ended.
    pub fn step_finished(&self, phase: &str, step: &str, took: Duration, ok: bool) {
        self.say(&Event::StepEnded {
            phase,
            step,
            seconds: took.as_secs_f64(),
            ok,
        });
        if let Some(bar) = self.bars.as_ref().and_then(|b| b.step.get()) {
            bar.set_message(String::new());
        }
    }

    /// Byte progress of a copy or an export (only drawn on a terminal; in JSON mode one event
    /// when it is complete).
    pub fn bytes(&self, what: &str, done: u64, total: u64) {
        if let Some(b) = &self.bars {
            b.step()
                .set_message(format!("{what}: {} / {} MiB", done >> 20, total >> 20));
        } else if self.mode == Mode::Json && done == total {
            println!("{}", Event::Bytes { what, done, total }.json());
        }
    }

    /// The phases that finished, with their durations, in the order they finished.
    pub fn timings(&self) -> Vec<(String, Duration)> {
        lock(&self.phases).clone()
    }

    /// The time since the reporter was made (the command's wall time so far).
    pub fn elapsed(&self) -> Duration {
        self.start.elapsed()
    }

    /// The phases that finished with their durations, in one line: `phase 1.2s, phase 3.4s`.
    pub fn summary(&self) -> String {
        summary_of(&self.timings())
    }

    /// Removes the display (before the final summary is printed).
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.phase.finish_and_clear();
            if let Some(bar) = b.step.get() {
                bar.finish_and_clear();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_timed_and_logged_failures_are_not_counted() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reporter::new(Mode::Lines);
        r.log("said before the log was opened");
        r.open_log(&dir.path().join("build.log")).unwrap();
        let v: Result<u32, String> = r.phase("one", || Ok(1));
        assert_eq!(v, Ok(1));
        let e: Result<u32, String> = r.phase("two", || Err("boom".into()));
        assert!(e.is_err());
        r.step_started("one", "s");
        r.log_bytes(b"guest output\n");
        r.step_finished("one", "s", Duration::from_millis(1500), false);
        r.close_log().unwrap();
        let names: Vec<String> = r.timings().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["one"]);
        let log = std::fs::read_to_string(dir.path().join("build.log")).unwrap();
        // Lines are stamped with the seconds since the start, guest output is not.
        assert_eq!(log.lines().next(), Some("[    0.0s] one ..."), "{log}");
        assert!(!log.contains("before the log"), "{log}");
        assert!(log.contains("\nguest output\n"), "{log}");
        assert!(log.contains("phase one: started"), "{log}");
        assert!(log.contains("two: failed after"), "{log}");
        assert!(log.contains("guest output"), "{log}");
        assert!(log.contains("one/s: started"), "{log}");
        assert!(log.contains("one/s: failed in 1.5s"), "{log}");
    }

    #[test]
    fn a_side_phase_runs_alongside_another_and_both_are_timed_and_logged() {
        let dir = tempfile::tempdir().unwrap();
        let r = Reporter::new(Mode::Lines);
        r.open_log(&dir.path().join("build.log")).unwrap();
        let (main, side) = std::thread::scope(|scope| {
            let side = scope.spawn(|| {
                r.side_phase("export", || {
                    r.side_bytes("export", "qcow2", 1 << 20, 2 << 20);
                    Ok::<_, String>(2)
                })
            });
            let main = r.phase("boot test", || {
                r.step_started("boot test", "ready");
                r.step_finished("boot test", "ready", Duration::from_millis(100), true);
                Ok::<_, String>(1)
            });
            (main, side.join().unwrap())
        });
        assert_eq!((main, side), (Ok(1), Ok(2)));
        r.close_log().unwrap();
        let mut names: Vec<String> = r.timings().into_iter().map(|(n, _)| n).collect();
        names.sort();
        assert_eq!(names, ["boot test", "export"]);
        let log = std::fs::read_to_string(dir.path().join("build.log")).unwrap();
        for line in [
            "phase export: started",
            "phase boot test: started",
            "boot test/ready: done",
        ] {
            assert!(log.contains(line), "{line}: {log}");
        }
    }

    #[test]
    fn the_summary_lists_the_finished_phases_in_order() {
        let timings = [
            ("host check".to_owned(), Duration::from_millis(120)),
            ("boot until ready".to_owned(), Duration::from_millis(31_460)),
        ];
        assert_eq!(
            summary_of(&timings),
            "host check 0.1s, boot until ready 31.5s"
        );
        assert_eq!(summary_of(&[]), "");
    }
}
