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

/// A bar style from `template`, drawn with `=> `.
pub(super) fn bar_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

impl Bars {
    /// Draws `bar` under the others as `name`'s.
    pub(super) fn add(&self, name: &str, bar: ProgressBar) {
        let bar = self.multi.add(bar);
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
