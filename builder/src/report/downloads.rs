//! Progress of `fetch`'s downloads, one entry per response body (named by its URL): a bar per
//! body on a terminal (bytes, total when known, rate), otherwise a plain line every 5 s while a
//! body comes in and one when it is complete.

use std::time::{Duration, Instant};

use super::bars::{BarSpec, Named};
use super::mode::Mode;
use super::units::{human, per_second};

/// How often a running download is reported in line mode.
const LINE_EVERY: Duration = Duration::from_secs(5);

/// Progress of `fetch`'s downloads, one entry per response body (named by its URL).
#[derive(Debug)]
pub struct DownloadProgress {
    shown: Named<Transfer>,
}

/// A body being received, in line mode.
#[derive(Debug, Clone)]
struct Transfer {
    from: u64,
    total: Option<u64>,
    started: Instant,
    last_print: Instant,
}

impl DownloadProgress {
    /// Bars when stderr is a terminal, lines otherwise (`fetch` has no JSON mode).
    pub fn new() -> Self {
        DownloadProgress {
            shown: Named::new(Mode::detect(false)),
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

/// The line of a body still coming in: `download URL: 1.0 MiB of 4.0 MiB (25%), 2.0 MiB/s`.
fn running_line(url: &str, at: u64, t: &Transfer) -> String {
    format!(
        "download {url}: {}, {}",
        so_far(at, t.total),
        per_second(at.saturating_sub(t.from), t.started.elapsed())
    )
}

/// The line of a complete body: `download URL: 4.0 MiB of 4.0 MiB (100%) in 2.0 s, 2.0 MiB/s`.
fn complete_line(url: &str, at: u64, total: Option<u64>, from: u64, took: Duration) -> String {
    format!(
        "download {url}: {} in {:.1} s, {}",
        so_far(at, total),
        took.as_secs_f64(),
        per_second(at.saturating_sub(from), took)
    )
}

impl inputs::fetch::Watch for DownloadProgress {
    fn started(&self, url: &str, at: u64, total: Option<u64>) {
        let now = Instant::now();
        self.shown.start(
            url,
            BarSpec {
                len: total,
                template: match total {
                    Some(_) => {
                        "{prefix:>24} [{bar:30}] {bytes:>10}/{total_bytes:10} {bytes_per_sec:>12}"
                    }
                    None => "{prefix:>24} {spinner} {bytes:>10} {bytes_per_sec:>12}",
                },
                // The file name, cut to the prefix's width.
                prefix: url
                    .rsplit('/')
                    .next()
                    .unwrap_or(url)
                    .chars()
                    .take(24)
                    .collect(),
                position: at,
            },
            || Transfer {
                from: at,
                total,
                started: now,
                last_print: now,
            },
        );
    }

    fn advanced(&self, url: &str, at: u64) {
        self.shown.advance(url, at, |t| {
            if t.last_print.elapsed() >= LINE_EVERY {
                t.last_print = Instant::now();
                eprintln!("{}", running_line(url, at, t));
            }
        });
    }

    fn finished(&self, url: &str, at: u64, ok: bool) {
        match &self.shown {
            Named::Bars(bars) => {
                if let Some(bar) = bars.remove(url) {
                    bar.finish_and_clear();
                }
            }
            Named::Lines(state) => {
                let Some(t) = state.lock().ok().and_then(|mut s| s.remove(url)) else {
                    return;
                };
                if ok {
                    let took = t.started.elapsed();
                    eprintln!("{}", complete_line(url, at, t.total, t.from, took));
                }
            }
            Named::Quiet => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn download_lines_show_size_share_and_rate() {
        assert_eq!(so_far(1 << 20, Some(4 << 20)), "1.0 MiB of 4.0 MiB (25%)");
        assert_eq!(so_far(10, None), "10 B");
        assert_eq!(so_far(0, Some(0)), "0 B of 0 B (100%)");
        assert_eq!(
            complete_line(
                "http://h/a.img",
                4 << 20,
                Some(4 << 20),
                0,
                Duration::from_secs(2)
            ),
            "download http://h/a.img: 4.0 MiB of 4.0 MiB (100%) in 2.0 s, 2.0 MiB/s"
        );
        // A resumed body's rate counts only the bytes of this response.
        assert_eq!(
            complete_line("u", 3 << 20, None, 1 << 20, Duration::from_secs(1)),
            "download u: 3.0 MiB in 1.0 s, 2.0 MiB/s"
        );
        let t = Transfer {
            from: 0,
            total: Some(4 << 20),
            started: Instant::now(),
            last_print: Instant::now(),
        };
        let line = running_line("u", 1 << 20, &t);
        assert!(
            line.starts_with("download u: 1.0 MiB of 4.0 MiB (25%), ") && line.ends_with("/s"),
            "{line}"
        );
    }
}
