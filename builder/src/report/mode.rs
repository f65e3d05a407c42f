//! How a run shows its progress, decided once when the command starts.

use std::io::IsTerminal;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// indicatif on a terminal.
    Terminal,
    /// One line per event on stderr.
    Lines,
    /// JSON on stdout: one object per event where the command streams events, otherwise no
    /// progress at all (the command prints its one JSON document).
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
