//! What a build tells its user while it runs: phases and steps with their durations, drawn as
//! a two-line indicatif display on a terminal, as plain lines with the elapsed time in CI, or as
//! JSON event lines (`--json`) for machines. Everything, including every guest command's
//! output, also goes to `build.log`.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif on a terminal.
    Terminal,
    /// One line per event on stderr, with the elapsed time.
    Lines,
    /// One JSON object per event on stdout.
    Json,
}

impl Mode {
    /// JSON when asked, the display on a terminal, lines otherwise.
    pub fn detect(json: bool) -> Self {
        if json {
            Mode::Json
        } else if std::io::stderr().is_terminal() {
            Mode::Terminal
        } else {
            Mode::Lines
        }
    }
}

struct Bars {
    multi: MultiProgress,
    phase: ProgressBar,
    step: ProgressBar,
}

/// The build's reporter: shared by reference, safe to call from any thread.
pub struct Reporter {
    mode: Mode,
    start: Instant,
    log: Mutex<Option<File>>,
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

impl Reporter {
    /// A reporter in `mode`, without a log file yet.
    pub fn new(mode: Mode) -> Self {
        let bars = (mode == Mode::Terminal).then(|| {
            let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
            let phase = spinner(&multi, "{spinner} {msg} {elapsed}");
            let step = spinner(&multi, "  {msg} {elapsed}");
            Bars { multi, phase, step }
        });
        Reporter {
            mode,
            start: Instant::now(),
            log: Mutex::new(None),
            bars,
            phases: Mutex::new(Vec::new()),
        }
    }

    /// Starts writing `build.log` at `path` (what was said so far is not repeated).
    pub fn open_log(&self, path: &Path) -> std::io::Result<()> {
        let f = File::create(path)?;
        *self.log.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
        Ok(())
    }

    /// Flushes and closes `build.log`.
    pub fn close_log(&self) -> std::io::Result<()> {
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).take() {
            f.sync_all()?;
        }
        Ok(())
    }

    fn elapsed(&self) -> String {
        format!("{:7.1}s", self.start.elapsed().as_secs_f64())
    }

    /// Appends to `build.log` only.
    pub fn log(&self, text: &str) {
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "[{}] {}", self.elapsed(), text.trim_end());
        }
    }

    /// Raw guest output into `build.log`.
    pub fn log_bytes(&self, data: &[u8]) {
        if let Some(f) = self.log.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = f.write_all(data);
        }
    }

    fn say(&self, text: &str, event: serde_json::Value) {
        self.log(text);
        match self.mode {
            Mode::Json => println!("{event}"),
            Mode::Lines => eprintln!("[{}] {text}", self.elapsed()),
            Mode::Terminal => {
                if let Some(b) = &self.bars {
                    b.multi.suspend(|| eprintln!("{text}"));
                }
            }
        }
    }

    /// A message for the user.
    pub fn info(&self, text: &str) {
        self.say(text, json!({"event": "info", "message": text}));
    }

    /// Runs `f` as the phase `name`.
    pub fn phase<T, E: std::fmt::Display>(
        &self,
        name: &str,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E> {
        let t = Instant::now();
        match &self.bars {
            Some(b) => {
                b.phase.set_message(format!("phase: {name}"));
                b.phase.reset_elapsed();
            }
            None => self.say(
                &format!("{name} ..."),
                json!({"event": "phase", "phase": name, "state": "started"}),
            ),
        }
        self.log(&format!("phase {name}: started"));
        let result = f();
        let took = t.elapsed();
        let secs = took.as_secs_f64();
        match &result {
            Ok(_) => {
                self.phases
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((name.to_owned(), took));
                self.say(
                    &format!("{name}: done in {secs:.1}s"),
                    json!({"event": "phase", "phase": name, "state": "done", "seconds": secs}),
                );
            }
            Err(e) => self.say(
                &format!("{name}: failed after {secs:.1}s"),
                json!({"event": "phase", "phase": name, "state": "failed", "seconds": secs, "error": e.to_string()}),
            ),
        }
        result
    }

    /// A guest step or check started.
    pub fn step_started(&self, phase: &str, step: &str) {
        self.log(&format!("{phase}/{step}: started"));
        match &self.bars {
            Some(b) => {
                b.step.set_message(format!("{phase}: {step}"));
                b.step.reset_elapsed();
            }
            None if self.mode == Mode::Json => println!(
                "{}",
                json!({"event": "step", "phase": phase, "step": step, "state": "started"})
            ),
            None => {}
        }
    }

    /// A guest step or check ended.
    pub fn step_finished(&self, phase: &str, step: &str, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        let state = if ok { "done" } else { "failed" };
        self.say(
            &format!("  {phase}/{step}: {state} in {secs:.1}s"),
            json!({"event": "step", "phase": phase, "step": step, "state": state, "seconds": secs}),
        );
        if let Some(b) = &self.bars {
            b.step.set_message(String::new());
        }
    }

    /// Byte progress of a copy or an export (only drawn on a terminal; logged at the end).
    pub fn bytes(&self, what: &str, done: u64, total: u64) {
        if let Some(b) = &self.bars {
            b.step
                .set_message(format!("{what}: {} / {} MiB", done >> 20, total >> 20));
        } else if self.mode == Mode::Json && done == total {
            println!(
                "{}",
                json!({"event": "bytes", "what": what, "done": done, "total": total})
            );
        }
    }

    /// The phases that finished, with their durations, in order.
    pub fn timings(&self) -> Vec<(String, Duration)> {
        self.phases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Removes the display (before the final summary is printed).
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.phase.finish_and_clear();
            b.step.finish_and_clear();
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
        assert!(log.contains("phase one: started"), "{log}");
        assert!(log.contains("two: failed after"), "{log}");
        assert!(log.contains("guest output"), "{log}");
        assert!(log.contains("one/s: failed in 1.5s"), "{log}");
    }
}
