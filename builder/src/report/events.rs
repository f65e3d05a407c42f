//! What the [`Reporter`](super::Reporter) says, in both of its shapes: the line a person reads
//! (on stderr and in the build log) and the JSON object a machine reads (`build --json`, one per
//! line on stdout). Every event's wording and fields are here and nowhere else.

use serde_json::{Value, json};

/// One thing a run tells its user.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<'a> {
    /// A message for the user.
    Info {
        /// The message.
        message: &'a str,
    },
    /// A phase started.
    PhaseStarted {
        /// The phase.
        phase: &'a str,
    },
    /// A phase ended well.
    PhaseDone {
        /// The phase.
        phase: &'a str,
        /// How long it took.
        seconds: f64,
    },
    /// A phase failed.
    PhaseFailed {
        /// The phase.
        phase: &'a str,
        /// How long it ran.
        seconds: f64,
        /// Why, in one line.
        error: String,
    },
    /// A guest step or check started (no line: the display shows it, the log records it).
    StepStarted {
        /// The phase it belongs to.
        phase: &'a str,
        /// The step.
        step: &'a str,
    },
    /// A guest step or check ended.
    StepEnded {
        /// The phase it belongs to.
        phase: &'a str,
        /// The step.
        step: &'a str,
        /// How long it took.
        seconds: f64,
        /// Whether it passed.
        ok: bool,
    },
    /// A copy or an export is complete (no line: the display shows bytes while they move).
    Bytes {
        /// What was copied.
        what: &'a str,
        /// Bytes done.
        done: u64,
        /// Bytes in all.
        total: u64,
    },
}

fn outcome(ok: bool) -> &'static str {
    if ok { "done" } else { "failed" }
}

impl Event<'_> {
    /// The line a person reads, or `None` for an event that is only drawn or logged.
    pub fn line(&self) -> Option<String> {
        match self {
            Event::Info { message } => Some((*message).to_owned()),
            Event::PhaseStarted { phase } => Some(format!("{phase} ...")),
            Event::PhaseDone { phase, seconds } => Some(format!("{phase}: done in {seconds:.1}s")),
            Event::PhaseFailed { phase, seconds, .. } => {
                Some(format!("{phase}: failed after {seconds:.1}s"))
            }
            Event::StepEnded {
                phase,
                step,
                seconds,
                ok,
            } => Some(format!(
                "  {phase}/{step}: {} in {seconds:.1}s",
                outcome(*ok)
            )),
            Event::StepStarted { .. } | Event::Bytes { .. } => None,
        }
    }

    /// The line the build log gets for an event that has no [`line`](Self::line).
    pub fn log_line(&self) -> Option<String> {
        match self {
            Event::StepStarted { phase, step } => Some(format!("{phase}/{step}: started")),
            _ => self.line(),
        }
    }

    /// The JSON object of `--json`.
    pub fn json(&self) -> Value {
        match self {
            Event::Info { message } => json!({"event": "info", "message": message}),
            Event::PhaseStarted { phase } => {
                json!({"event": "phase", "phase": phase, "state": "started"})
            }
            Event::PhaseDone { phase, seconds } => {
                json!({"event": "phase", "phase": phase, "state": "done", "seconds": seconds})
            }
            Event::PhaseFailed {
                phase,
                seconds,
                error,
            } => json!({
                "event": "phase", "phase": phase, "state": "failed", "seconds": seconds,
                "error": error
            }),
            Event::StepStarted { phase, step } => {
                json!({"event": "step", "phase": phase, "step": step, "state": "started"})
            }
            Event::StepEnded {
                phase,
                step,
                seconds,
                ok,
            } => json!({
                "event": "step", "phase": phase, "step": step, "state": outcome(*ok),
                "seconds": seconds
            }),
            Event::Bytes { what, done, total } => {
                json!({"event": "bytes", "what": what, "done": done, "total": total})
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phase_events_as_lines_and_json() {
        let started = Event::PhaseStarted { phase: "boot" };
        assert_eq!(started.line().as_deref(), Some("boot ..."));
        assert_eq!(
            started.json().to_string(),
            r#"{"event":"phase","phase":"boot","state":"started"}"#
        );
        let done = Event::PhaseDone {
            phase: "boot",
            seconds: 1.25,
        };
        assert_eq!(done.line().as_deref(), Some("boot: done in 1.2s"));
        assert_eq!(
            done.json().to_string(),
            r#"{"event":"phase","phase":"boot","seconds":1.25,"state":"done"}"#
        );
        let failed = Event::PhaseFailed {
            phase: "inputs",
            seconds: 0.04,
            error: "no lock".into(),
        };
        assert_eq!(failed.line().as_deref(), Some("inputs: failed after 0.0s"));
        assert_eq!(
            failed.json().to_string(),
            r#"{"error":"no lock","event":"phase","phase":"inputs","seconds":0.04,"state":"failed"}"#
        );
    }

    #[test]
    fn step_info_and_byte_events_as_lines_and_json() {
        let started = Event::StepStarted {
            phase: "validate",
            step: "swap-off",
        };
        assert_eq!(started.line(), None);
        assert_eq!(
            started.log_line().as_deref(),
            Some("validate/swap-off: started")
        );
        assert_eq!(
            started.json().to_string(),
            r#"{"event":"step","phase":"validate","state":"started","step":"swap-off"}"#
        );
        let ended = Event::StepEnded {
            phase: "validate",
            step: "swap-off",
            seconds: 1.5,
            ok: false,
        };
        assert_eq!(
            ended.line().as_deref(),
            Some("  validate/swap-off: failed in 1.5s")
        );
        assert_eq!(
            ended.json().to_string(),
            r#"{"event":"step","phase":"validate","seconds":1.5,"state":"failed","step":"swap-off"}"#
        );
        let info = Event::Info { message: "hello" };
        assert_eq!(info.line().as_deref(), Some("hello"));
        assert_eq!(
            info.json().to_string(),
            r#"{"event":"info","message":"hello"}"#
        );
        let bytes = Event::Bytes {
            what: "qcow2",
            done: 4,
            total: 4,
        };
        assert_eq!(bytes.line(), None);
        assert_eq!(
            bytes.json().to_string(),
            r#"{"done":4,"event":"bytes","total":4,"what":"qcow2"}"#
        );
    }
}
