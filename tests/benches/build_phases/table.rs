//! The bench's printed report: the per-phase table old vs new with ratios, the targets with
//! PASS/MISS (printed, never asserted), the slowest guest steps, the references' segments.
//! Anything not measured prints `n/a`.

use std::fmt::Write as _;

use super::timeline::Timeline;

/// `a / b`, when both are known and `b` is positive.
pub fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// `value` with `decimals` decimals, or `n/a`.
pub fn num(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.decimals$}"))
}

/// A target the issue sets: the measured value must be at most `limit`.
#[derive(Debug, Clone)]
pub struct Target {
    /// What is measured.
    pub what: String,
    /// The measurement.
    pub value: Option<f64>,
    /// Its unit (`x` for a ratio, `s`, `MiB`).
    pub unit: &'static str,
    /// The largest value that passes.
    pub limit: f64,
}

impl Target {
    /// `PASS`, `MISS`, or `n/a` when not measured.
    pub fn verdict(&self) -> &'static str {
        match self.value {
            Some(v) if v <= self.limit => "PASS",
            Some(_) => "MISS",
            None => "n/a",
        }
    }
}

/// The targets, one line each: what, value, limit, verdict.
pub fn targets(list: &[Target]) -> String {
    let mut s = String::from("targets (printed, not asserted):\n");
    for t in list {
        let _ = writeln!(
            s,
            "  {:<58} {:>9} {:<3} <= {:<7} {}",
            t.what,
            num(t.value, 2),
            t.unit,
            t.limit,
            t.verdict()
        );
    }
    s
}

/// Phase by phase, the old build's seconds, the new one's and new ÷ old; phases in the new
/// build's order, then those only the old one had; a last row with both runs' wall time.
pub fn phases(old: Option<&Timeline>, new: &Timeline, walls: (Option<f64>, Option<f64>)) -> String {
    let mut names: Vec<&str> = Vec::new();
    let old_phases = old.map(|t| t.phases.as_slice()).unwrap_or_default();
    for p in new.phases.iter().chain(old_phases) {
        if !names.contains(&p.phase.as_str()) {
            names.push(&p.phase);
        }
    }
    let mut s = format!(
        "{:<14} {:>9} {:>9} {:>8}   (new: start..end on the bench's clock)\n",
        "phase", "1b668ee s", "new s", "new/old"
    );
    for name in names {
        let o = old.and_then(|t| t.phase_secs(name));
        let n = new.phase_secs(name);
        let span = new.phase(name).map_or_else(String::new, |p| {
            format!("{}..{}", num(p.started_at, 1), num(p.ended_at, 1))
        });
        let _ = writeln!(
            s,
            "{name:<14} {:>9} {:>9} {:>8}   {span}",
            num(o, 1),
            num(n, 1),
            num(ratio(n, o), 2)
        );
    }
    let _ = writeln!(
        s,
        "{:<14} {:>9} {:>9} {:>8}",
        "whole build",
        num(walls.0, 1),
        num(walls.1, 1),
        num(ratio(walls.1, walls.0), 2)
    );
    s
}

/// The `n` slowest guest steps of a run.
pub fn slowest_steps(title: &str, t: &Timeline, n: usize) -> String {
    let mut s = format!("{title}:\n");
    let steps = t.slowest_steps(n);
    if steps.is_empty() {
        s.push_str("  n/a\n");
    }
    for step in steps {
        let _ = writeln!(s, "  {:<44} {:>7}s", step.label(), num(step.seconds, 1));
    }
    s
}

/// A reference script's parts: each marker and the seconds since the one before.
pub fn segments(title: &str, parts: &[(String, f64)]) -> String {
    let mut s = format!("{title}:\n");
    if parts.is_empty() {
        s.push_str("  n/a\n");
    }
    for (name, secs) in parts {
        let _ = writeln!(s, "  {name:<44} {secs:>7.1}s");
    }
    s
}
