//! Progress, drawn here and nowhere else. For the exporters' callbacks: an indicatif bar per
//! task on a terminal, a plain line every 10% (or 10 s) otherwise, nothing in JSON mode. For
//! `fetch`'s downloads ([`DownloadProgress`]): a bar per response body on a terminal (bytes,
//! total when known, rate), otherwise a plain line every 5 s while a body comes in and one
//! when it is complete.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug)]
pub enum CliProgress {
    /// Bars on stderr.
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    /// Periodic lines on stderr.
    Lines {
        state: Mutex<HashMap<String, LineState>>,
        verb: &'static str,
    },
    /// Nothing.
    Quiet,
}

/// Last reported point of a task in line mode.
#[derive(Debug, Clone)]
pub struct LineState {
    total: u64,
    last_decile: u64,
    last_print: Instant,
}

impl CliProgress {
    /// Bars when stderr is a terminal, lines otherwise, nothing when `quiet`.
    pub fn new(quiet: bool, verb: &'static str) -> Self {
        if quiet {
            CliProgress::Quiet
        } else if std::io::stderr().is_terminal() {
            CliProgress::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            }
        } else {
            CliProgress::Lines {
                state: Mutex::default(),
                verb,
            }
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / f64::from(1u32 << 30))
}

impl exporters::Progress for CliProgress {
    fn started(&self, task: &str, total: u64) {
        match self {
            CliProgress::Bars { multi, bars } => {
                let bar = multi.add(ProgressBar::new(total));
                bar.set_style(
                    ProgressStyle::with_template(
                        "{prefix:>22} [{bar:30}] {bytes:>10}/{total_bytes:10} {elapsed_precise}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.set_prefix(task.to_string());
                if let Ok(mut bars) = bars.lock() {
                    bars.insert(task.to_string(), bar);
                }
            }
            CliProgress::Lines { state, .. } => {
                if let Ok(mut s) = state.lock() {
                    s.insert(
                        task.to_string(),
                        LineState {
                            total,
                            last_decile: 0,
                            last_print: Instant::now(),
                        },
                    );
                }
            }
            CliProgress::Quiet => {}
        }
    }

    fn advanced(&self, task: &str, done: u64) {
        match self {
            CliProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|b| b.get(task).cloned()) {
                    bar.set_position(done);
                }
            }
            CliProgress::Lines { state, verb } => {
                let Ok(mut s) = state.lock() else { return };
                let Some(line) = s.get_mut(task) else { return };
                let decile = done
                    .saturating_mul(10)
                    .checked_div(line.total)
                    .unwrap_or(10);
                if decile > line.last_decile || line.last_print.elapsed() > Duration::from_secs(10)
                {
                    line.last_decile = decile;
                    line.last_print = Instant::now();
                    eprintln!(
                        "{verb} {task}: {}% ({} of {})",
                        decile * 10,
                        gib(done),
                        gib(line.total)
                    );
                }
            }
            CliProgress::Quiet => {}
        }
    }

    fn finished(&self, task: &str) {
        match self {
            CliProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|b| b.get(task).cloned()) {
                    bar.finish();
                }
            }
            CliProgress::Lines { verb, .. } => eprintln!("{verb} {task}: done"),
            CliProgress::Quiet => {}
        }
    }
}

/// Binary units with one decimal: `1023 B`, `1.5 KiB`, `5.0 GiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut unit = 0;
    let mut whole = bytes;
    let mut tenths = 0;
    while whole >= 1024 && unit + 1 < UNITS.len() {
        tenths = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{whole}.{tenths} {}", UNITS[unit])
    }
}

/// `bytes` over `elapsed` as `12.3 MiB/s`.
fn per_second(bytes: u64, elapsed: Duration) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut rate = bytes as f64 / elapsed.as_secs_f64().max(0.001);
    let mut unit = 0;
    while rate >= 1024.0 && unit + 1 < UNITS.len() {
        rate /= 1024.0;
        unit += 1;
    }
    format!("{rate:.1} {}/s", UNITS[unit])
}

/// How often a running download is reported in line mode.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Progress of `fetch`'s downloads, one entry per response body (named by its URL).
#[derive(Debug)]
pub enum DownloadProgress {
    /// Bars on stderr.
    Bars {
        multi: MultiProgress,
        bars: Mutex<HashMap<String, ProgressBar>>,
    },
    /// Periodic lines on stderr.
    Lines {
        state: Mutex<HashMap<String, Transfer>>,
    },
}

/// A body being received, in line mode.
#[derive(Debug, Clone)]
pub struct Transfer {
    from: u64,
    total: Option<u64>,
    started: Instant,
    last_print: Instant,
}

impl DownloadProgress {
    /// Bars when stderr is a terminal, lines otherwise.
    pub fn new() -> Self {
        if std::io::stderr().is_terminal() {
            DownloadProgress::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
                bars: Mutex::default(),
            }
        } else {
            DownloadProgress::Lines {
                state: Mutex::default(),
            }
        }
    }
}

impl Default for DownloadProgress {
    fn default() -> Self {
        Self::new()
    }
}

/// `at of total (n%)`, or `at` when the total is unknown.
fn so_far(at: u64, total: Option<u64>) -> String {
    match total {
        Some(t) => format!(
            "{} of {} ({}%)",
            human(at),
            human(t),
            at.saturating_mul(100).checked_div(t).unwrap_or(100)
        ),
        None => human(at),
    }
}

impl inputs::fetch::Watch for DownloadProgress {
    fn started(&self, url: &str, at: u64, total: Option<u64>) {
        match self {
            DownloadProgress::Bars { multi, bars } => {
                let (bar, template) = match total {
                    Some(t) => (
                        ProgressBar::new(t),
                        "{prefix:>24} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}",
                    ),
                    None => (
                        ProgressBar::no_length(),
                        "{prefix:>24} {spinner} {bytes:>10} {bytes_per_sec:>12}",
                    ),
                };
                let bar = multi.add(bar);
                bar.set_style(
                    ProgressStyle::with_template(template)
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> "),
                );
                let name = url.rsplit('/').next().unwrap_or(url);
                let short: String = name.chars().take(24).collect();
                bar.set_prefix(short);
                bar.set_position(at);
                bar.reset_elapsed();
                if let Ok(mut bars) = bars.lock() {
                    bars.insert(url.to_owned(), bar);
                }
            }
            DownloadProgress::Lines { state } => {
                if let Ok(mut s) = state.lock() {
                    let now = Instant::now();
                    s.insert(
                        url.to_owned(),
                        Transfer {
                            from: at,
                            total,
                            started: now,
                            last_print: now,
                        },
                    );
                }
            }
        }
    }

    fn advanced(&self, url: &str, at: u64) {
        match self {
            DownloadProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|b| b.get(url).cloned()) {
                    bar.set_position(at);
                }
            }
            DownloadProgress::Lines { state } => {
                let Ok(mut s) = state.lock() else { return };
                let Some(t) = s.get_mut(url) else { return };
                if t.last_print.elapsed() >= LINE_EVERY {
                    t.last_print = Instant::now();
                    eprintln!(
                        "download {url}: {}, {}",
                        so_far(at, t.total),
                        per_second(at.saturating_sub(t.from), t.started.elapsed())
                    );
                }
            }
        }
    }

    fn finished(&self, url: &str, at: u64, ok: bool) {
        match self {
            DownloadProgress::Bars { bars, .. } => {
                if let Some(bar) = bars.lock().ok().and_then(|mut b| b.remove(url)) {
                    bar.finish_and_clear();
                }
            }
            DownloadProgress::Lines { state } => {
                let Some(t) = state.lock().ok().and_then(|mut s| s.remove(url)) else {
                    return;
                };
                if ok {
                    let took = t.started.elapsed();
                    eprintln!(
                        "download {url}: {} in {:.1} s, {}",
                        so_far(at, t.total),
                        took.as_secs_f64(),
                        per_second(at.saturating_sub(t.from), took)
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_rates_are_shown_in_binary_units() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
        assert_eq!(per_second(3 << 20, Duration::from_secs(2)), "1.5 MiB/s");
        assert_eq!(per_second(0, Duration::ZERO), "0.0 B/s");
        assert_eq!(so_far(1 << 20, Some(4 << 20)), "1.0 MiB of 4.0 MiB (25%)");
        assert_eq!(so_far(10, None), "10 B");
        assert_eq!(so_far(0, Some(0)), "0 B of 0 B (100%)");
    }
}
