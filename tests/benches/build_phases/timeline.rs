//! A build's `--json` event lines, each stamped by the bench when it arrived, turned into
//! phase and step spans (start and end on the bench's clock, and the seconds the build
//! reported), plus the info messages. Only fields every nodeimg since 1b668ee prints are read:
//! `event` (`phase`, `step`, `info`), `phase`, `step`, `state` (`started`, `done`, `failed`),
//! `seconds`, `message`. Anything else (other events, non-JSON lines) is skipped.

/// One phase or one guest step as the event stream told it.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The phase (`provision`, `kubeadm test`).
    pub phase: String,
    /// The step, for a step span.
    pub step: Option<String>,
    /// When its `started` event arrived (seconds on the bench's clock for this run).
    pub started_at: Option<f64>,
    /// When its `done` or `failed` event arrived.
    pub ended_at: Option<f64>,
    /// The duration the build reported.
    pub seconds: Option<f64>,
    /// `started` (no end seen), `done` or `failed`.
    pub state: String,
}

impl Span {
    fn new(phase: &str, step: Option<&str>) -> Self {
        Span {
            phase: phase.to_owned(),
            step: step.map(str::to_owned),
            started_at: None,
            ended_at: None,
            seconds: None,
            state: "started".into(),
        }
    }

    /// `phase/step`, or the phase.
    pub fn label(&self) -> String {
        match &self.step {
            Some(step) => format!("{}/{step}", self.phase),
            None => self.phase.clone(),
        }
    }

    /// Whether it ended well.
    pub fn done(&self) -> bool {
        self.state == "done"
    }
}

/// Everything one build run said, in arrival order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timeline {
    /// Phases, in the order they started (or ended, for one never seen starting).
    pub phases: Vec<Span>,
    /// Guest steps, likewise.
    pub steps: Vec<Span>,
    /// Info messages.
    pub infos: Vec<String>,
}

impl Timeline {
    /// The timeline of `lines`: `(arrival seconds, line)` in arrival order.
    pub fn from_lines<'a>(lines: impl IntoIterator<Item = (f64, &'a str)>) -> Timeline {
        let mut t = Timeline::default();
        for (at, line) in lines {
            t.push(at, line);
        }
        t
    }

    /// Adds one line that arrived at `at`.
    pub fn push(&mut self, at: f64, line: &str) {
        let Ok(event) = serde_json::from_str::<serde_json::Value>(line.trim()) else {
            return;
        };
        let text = |key: &str| event.get(key).and_then(serde_json::Value::as_str);
        let (Some(kind), state) = (text("event"), text("state")) else {
            return;
        };
        let (list, step) = match kind {
            "info" => {
                if let Some(message) = text("message") {
                    self.infos.push(message.to_owned());
                }
                return;
            }
            "phase" => (&mut self.phases, None),
            "step" => match text("step") {
                Some(step) => (&mut self.steps, Some(step)),
                None => return,
            },
            _ => return,
        };
        let (Some(phase), Some(state)) = (text("phase"), state) else {
            return;
        };
        // A phase or step may run more than once (a retried step): a start opens a new span,
        // an end closes the latest open one of that name.
        let open = list
            .iter()
            .rposition(|s| s.phase == phase && s.step.as_deref() == step && s.ended_at.is_none());
        let index = match (state, open) {
            ("started", _) | (_, None) => {
                list.push(Span::new(phase, step));
                list.len() - 1
            }
            (_, Some(i)) => i,
        };
        let span = &mut list[index];
        if state == "started" {
            span.started_at = Some(at);
        } else {
            span.ended_at = Some(at);
            span.state = state.to_owned();
            span.seconds = event.get("seconds").and_then(serde_json::Value::as_f64);
        }
    }

    /// The last span of phase `name`.
    pub fn phase(&self, name: &str) -> Option<&Span> {
        self.phases.iter().rev().find(|s| s.phase == name)
    }

    /// The seconds phase `name` took, when it ended well.
    pub fn phase_secs(&self, name: &str) -> Option<f64> {
        self.phase(name)
            .filter(|s| s.done())
            .and_then(|s| s.seconds)
    }

    /// The seconds the last successful run of `step` in `phase` took.
    pub fn step_secs(&self, phase: &str, step: &str) -> Option<f64> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.phase == phase && s.step.as_deref() == Some(step) && s.done())
            .and_then(|s| s.seconds)
    }

    /// The sum of `steps` of `phase`, or `None` if one of them is missing.
    pub fn steps_sum(&self, phase: &str, steps: &[&str]) -> Option<f64> {
        steps.iter().map(|s| self.step_secs(phase, s)).sum()
    }

    /// How long `later` went on after `earlier` ended: `max(0, end(later) − end(earlier))`
    /// on the arrival clock (the export running beside the boot test adds this much wall time).
    pub fn added_after(&self, later: &str, earlier: &str) -> Option<f64> {
        let end = |name: &str| self.phase(name).filter(|s| s.done())?.ended_at;
        Some((end(later)? - end(earlier)?).max(0.0))
    }

    /// The `n` slowest finished steps, slowest first.
    pub fn slowest_steps(&self, n: usize) -> Vec<&Span> {
        let mut steps: Vec<&Span> = self.steps.iter().filter(|s| s.seconds.is_some()).collect();
        steps.sort_by(|a, b| {
            b.seconds
                .unwrap_or(0.0)
                .total_cmp(&a.seconds.unwrap_or(0.0))
        });
        steps.truncate(n);
        steps
    }

    /// The info messages that mention `needle` (case-insensitive).
    pub fn infos_mentioning(&self, needle: &str) -> Vec<&str> {
        let needle = needle.to_ascii_lowercase();
        self.infos
            .iter()
            .filter(|m| m.to_ascii_lowercase().contains(&needle))
            .map(String::as_str)
            .collect()
    }
}

/// `VmHWM` (peak resident set) in KiB from the text of `/proc/PID/status`.
pub fn vm_hwm_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}
