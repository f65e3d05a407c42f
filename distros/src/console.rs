//! Scanning a guest's serial console log for signs of trouble (node-role.md "Beyond": kernel
//! panics, oopses, segfaults, OOM kills, emergency shells, systemd ordering cycles; what
//! coreos-assembler's kola looks for).
//!
//! Lines are matched as text: a serial log mixes kernel lines (`[    1.234567] …`), systemd
//! status lines and whatever programs write on the console. CR line endings and ANSI escape
//! sequences (systemd's coloured `[  OK  ]`) are removed before matching.

/// What a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FindingKind {
    /// `Kernel panic - not syncing`.
    KernelPanic,
    /// A kernel oops: `Oops:`, `BUG:`, `general protection fault`.
    Oops,
    /// A process killed by a segmentation fault (`segfault at`).
    Segfault,
    /// The OOM killer killed a process (`Out of memory: Killed process`, `oom-kill:`).
    OomKill,
    /// systemd's emergency or rescue shell.
    EmergencyShell,
    /// systemd found an ordering cycle and dropped a job (`Found ordering cycle`).
    OrderingCycle,
}

impl FindingKind {
    /// A short kebab-case name, e.g. `kernel-panic`.
    pub fn as_str(self) -> &'static str {
        match self {
            FindingKind::KernelPanic => "kernel-panic",
            FindingKind::Oops => "oops",
            FindingKind::Segfault => "segfault",
            FindingKind::OomKill => "oom-kill",
            FindingKind::EmergencyShell => "emergency-shell",
            FindingKind::OrderingCycle => "ordering-cycle",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line of the log that shows trouble.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleFinding {
    /// What it is.
    pub kind: FindingKind,
    /// 1-based line number in the log.
    pub line_number: usize,
    /// The line, without its line ending and escape sequences.
    pub line: String,
}

impl std::fmt::Display for ConsoleFinding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}: {}", self.line_number, self.kind, self.line)
    }
}

/// Patterns per kind, most severe kind first; a line gets the first kind that matches.
/// `word` patterns (the middle field `true`) must start the line or follow a non-alphanumeric
/// character (so `DEBUG:` is not `BUG:`).
const PATTERNS: &[(FindingKind, bool, &[&str])] = &[
    (
        FindingKind::KernelPanic,
        false,
        &["Kernel panic - not syncing"],
    ),
    (
        FindingKind::Oops,
        true,
        &["Oops:", "BUG:", "general protection fault"],
    ),
    (FindingKind::Segfault, true, &["segfault at"]),
    (
        FindingKind::OomKill,
        false,
        &["Out of memory: Killed process"],
    ),
    (FindingKind::OomKill, true, &["oom-kill:"]),
    (
        FindingKind::EmergencyShell,
        false,
        &[
            "You are in emergency mode",
            "Entering emergency mode",
            "Welcome to emergency mode",
            "You are in rescue mode",
            "Entering rescue mode",
            "Welcome to rescue mode",
        ],
    ),
    (FindingKind::OrderingCycle, false, &["Found ordering cycle"]),
];

/// Every line of `text` that shows a kernel panic, an oops, a segfault, an OOM kill, an
/// emergency or rescue shell, or a systemd ordering cycle, in log order.
pub fn scan_console(text: &str) -> Vec<ConsoleFinding> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = clean(raw);
        if let Some(kind) = classify(&line) {
            out.push(ConsoleFinding {
                kind,
                line_number: i + 1,
                line,
            });
        }
    }
    out
}

fn classify(line: &str) -> Option<FindingKind> {
    PATTERNS
        .iter()
        .find(|(_, word, pats)| pats.iter().any(|pat| contains(line, pat, *word)))
        .map(|(kind, _, _)| *kind)
}

fn contains(line: &str, pat: &str, word: bool) -> bool {
    line.match_indices(pat).any(|(at, _)| {
        !word
            || line[..at]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric())
    })
}

/// The line without ANSI escape sequences (CSI `ESC [ … final`, or `ESC` + one character) and
/// without other control characters except tab.
fn clean(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // parameters and intermediates, then one final byte in @..~
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests;
