//! Progress of several named things at once (export tasks, downloads): a bar each on a
//! terminal, or per-name state for periodic lines otherwise. The caller decides what a bar
//! shows and when a line is due; this holds the bars and the state.

use std::collections::HashMap;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::mode::Mode;

/// Bars on a terminal, state `S` per name for lines, or nothing.
#[derive(Debug)]
pub(super) enum Named<S> {
    /// Bars on stderr.
    Bars(Bars),
    /// Periodic lines on stderr, with what each name last reported.
    Lines(Mutex<HashMap<String, S>>),
    /// Nothing.
    Quiet,
}

/// The bars on stderr, by name.
#[derive(Debug)]
pub(super) struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl<S> Named<S> {
    /// Bars on a terminal, lines in line mode, nothing in JSON mode.
    pub(super) fn new(mode: Mode) -> Self {
        match mode {
            Mode::Terminal => Named::Bars(Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            }),
            Mode::Lines => Named::Lines(Mutex::default()),
            Mode::Json => Named::Quiet,
        }
    }
}

impl<S> Named<S> {
    /// `name` starts: its bar is drawn under the others, or `line()` is its line state.
    pub(super) fn start(&self, name: &str, bar: BarSpec<'_>, line: impl FnOnce() -> S) {
        match self {
            Named::Bars(bars) => bars.add(name, bar),
            Named::Lines(state) => {
                if let Ok(mut s) = state.lock() {
                    s.insert(name.to_owned(), line());
                }
            }
            Named::Quiet => {}
        }
    }

    /// `name` is at `at`: its bar moves there, or `line` decides from its state whether a
    /// line is due (and prints it).
    pub(super) fn advance(&self, name: &str, at: u64, line: impl FnOnce(&mut S)) {
        match self {
            Named::Bars(bars) => {
                if let Some(bar) = bars.get(name) {
                    bar.set_position(at);
                }
            }
            Named::Lines(state) => {
                let Ok(mut s) = state.lock() else { return };
                if let Some(state) = s.get_mut(name) {
                    line(state);
                }
            }
            Named::Quiet => {}
        }
    }
}

/// A bar style from `template`, drawn with `=> `.
fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// What a new bar shows.
pub(super) struct BarSpec<'a> {
    /// Its length, when known (else a spinner).
    pub(super) len: Option<u64>,
    /// Its indicatif template.
    pub(super) template: &'a str,
    /// Its `{prefix}`.
    pub(super) prefix: String,
    /// Where it starts.
    pub(super) position: u64,
}

impl Bars {
    /// Draws a bar as `spec` says under the others, as `name`'s.
    fn add(&self, name: &str, spec: BarSpec<'_>) {
        let bar = self.multi.add(
            spec.len
                .map_or_else(ProgressBar::no_length, ProgressBar::new),
        );
        bar.set_style(bar_style(spec.template));
        bar.set_prefix(spec.prefix);
        bar.set_position(spec.position);
        bar.reset_elapsed();
        if let Ok(mut bars) = self.bars.lock() {
            bars.insert(name.to_owned(), bar);
        }
    }

    /// `name`'s bar.
    pub(super) fn get(&self, name: &str) -> Option<ProgressBar> {
        self.bars.lock().ok().and_then(|b| b.get(name).cloned())
    }

    /// `name`'s bar, forgotten here.
    pub(super) fn remove(&self, name: &str) -> Option<ProgressBar> {
        self.bars.lock().ok().and_then(|mut b| b.remove(name))
    }
}
