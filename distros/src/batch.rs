//! Many guest scripts run as one: one SSH command and one `sudo` for a whole list of steps or
//! checks, instead of one of each per script (under emulation every `sshd` session, login
//! shell and `sudo` costs about a second of guest time).
//!
//! The batch runs each script as before — its own `/bin/sh -c SCRIPT nodeimg-NAME` with its own
//! `set -eu` or not, stdin from `/dev/null` — under coreutils' `timeout` with the item's own
//! timeout (its process group is killed when it runs over), and prints a marker line before and
//! after it with the guest's `/proc/uptime`, so the host sees every item start and end as it
//! happens, with its exit status, its duration and its output (stdout and stderr together, in
//! order). An item marked [`BatchItem::stop_on_failure`] ends the batch when it fails (a step
//! list); others do not (a check list, where every result counts).
//!
//! Each script goes into the batch shell-quoted (no extra process per item); [`split`] keeps
//! each batch's command line, quoted once more for `sudo`, under what Linux allows one argument
//! ([`MAX_COMMAND`]).

use std::fmt::Write as _;
use std::time::Duration;

use crate::shell::quote;
use crate::step::sudo_sh;

/// What starts a marker line (after a newline): the ASCII record separator, then this tag.
pub const MARKER: &[u8] = b"\x1enodeimg-batch ";
/// The exit status `timeout` gives an item that ran over its time.
pub const TIMED_OUT: i32 = 124;
/// Seconds `timeout` waits after its TERM before it sends KILL.
const KILL_AFTER: u64 = 10;
/// The longest remote command line a batch may have: Linux allows one argument 128 KiB
/// (`MAX_ARG_STRLEN`), and `sshd` hands the command to the login shell as one.
pub const MAX_COMMAND: usize = 100 * 1024;
/// The lanes [`split`] sizes batches for (a batch in more lanes is a few bytes longer).
const SPLIT_LANES: usize = 4;

/// One script of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// Its name (`$0` is `nodeimg-NAME`).
    pub name: &'a str,
    /// The whole script.
    pub script: &'a str,
    /// How long it may run.
    pub timeout: Duration,
    /// Whether a failure ends the batch.
    pub stop_on_failure: bool,
}

/// The batch script for `items` (run as root; see [`remote_command`]), one item after the
/// other with each item's output streamed as it comes — or, when `lanes` > 1 and no item stops
/// the batch, in that many lanes side by side (a lane that is free takes the next item no lane
/// has taken, so a long item does not hold up the items dealt after it), each lane writing its
/// markers and outputs to a file of its own, printed lane after lane once all have ended (the
/// host then sees those items' events at the end, with the guest's durations).
pub fn render(items: &[BatchItem<'_>], lanes: usize) -> String {
    let mut s = String::from(
        "#!/bin/sh\n# nodeimg batch\nexec </dev/null 2>&1\n\
         mark() { read -r up _ </proc/uptime; printf '\\n\\036nodeimg-batch %s %s\\n' \"$*\" \"$up\"; }\n",
    );
    let lanes = lanes.clamp(1, items.len().max(1));
    if lanes == 1 || items.iter().any(|i| i.stop_on_failure) {
        for (i, item) in items.iter().enumerate() {
            s.push_str(&item_lines(i, item));
            if item.stop_on_failure {
                s.push_str("[ \"$rc\" -eq 0 ] || exit \"$rc\"\n");
            }
        }
        s.push_str("exit 0\n");
        return s;
    }
    s.push_str("dir=$(mktemp -d)\ntrap 'rm -rf \"$dir\"' EXIT\n");
    // Each item once, as a function; every lane walks the whole list and runs the items it
    // claims first: `set -C` makes the claim file's `>` fail when another lane created it
    // (O_EXCL, by a builtin: no process per claim).
    for (i, item) in items.iter().enumerate() {
        let _ = write!(s, "item_{i}() {{\n{}}}\n", item_lines(i, item));
    }
    let lane_items: String = (0..items.len())
        .map(|i| format!("if true 2>/dev/null >\"$dir/claim-{i}\"; then item_{i}; fi\n"))
        .collect();
    for lane in 0..lanes {
        let _ = writeln!(s, "(\nset -C\n{lane_items}) >\"$dir/{lane}\" 2>&1 &");
    }
    s.push_str("wait\n");
    for lane in 0..lanes {
        let _ = writeln!(s, "cat \"$dir/{lane}\"");
    }
    s.push_str("exit 0\n");
    s
}

/// The lines that run item `i` between its markers: its script, quoted, under `timeout`;
/// `rc` is its exit status afterwards.
fn item_lines(i: usize, item: &BatchItem<'_>) -> String {
    format!(
        "mark begin {i}\n\
         timeout -k {KILL_AFTER} {secs} /bin/sh -c {script} {zeroth}\n\
         rc=$?\n\
         mark end {i} \"$rc\"\n",
        secs = item.timeout.as_secs().max(1),
        script = quote(item.script),
        zeroth = quote(&format!("nodeimg-{}", item.name)),
    )
}

/// The command line that runs `script` (from [`render`]) as root from the build user's session.
pub fn remote_command(script: &str) -> String {
    sudo_sh(script, "nodeimg-batch")
}

/// How long the host lets a batch of `items` run: every item's time, plus `timeout`'s grace
/// and a margin for each.
pub fn total_timeout(items: &[BatchItem<'_>]) -> Duration {
    items
        .iter()
        .map(|i| i.timeout + Duration::from_secs(KILL_AFTER + 20))
        .sum::<Duration>()
        + Duration::from_secs(30)
}

/// Splits `items` into runs whose batch command lines stay under [`MAX_COMMAND`] (an item too
/// long for that alone gets a batch of its own, as long as a single script may be).
pub fn split<'a, 'b>(items: &'b [BatchItem<'a>]) -> Vec<&'b [BatchItem<'a>]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < items.len() {
        let mut end = start + 1;
        while end < items.len()
            && remote_command(&render(&items[start..=end], SPLIT_LANES)).len() <= MAX_COMMAND
        {
            end += 1;
        }
        out.push(&items[start..end]);
        start = end;
    }
    out
}

/// What the host reads from a running batch.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Item `index` started.
    Started {
        /// Which item.
        index: usize,
    },
    /// Output of the item running (`None`: output outside every item, e.g. from `sudo`).
    Output {
        /// Which item.
        index: Option<usize>,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Item `index` ended.
    Finished {
        /// Which item.
        index: usize,
        /// Its exit status ([`TIMED_OUT`]: `timeout` stopped it, or it said so itself).
        exit: i32,
        /// How long it ran, by the guest's clock.
        seconds: f64,
    },
}

/// Turns a batch's output stream, in whatever chunks it arrives, into [`Event`]s. The newline
/// a marker line starts with belongs to the marker: an item's output is exactly what it wrote.
#[derive(Debug, Default)]
pub struct Reader {
    /// The item running.
    current: Option<usize>,
    /// When each item that has not ended started (guest uptime).
    started_at: Vec<(usize, f64)>,
    /// Bytes of the line not yet complete.
    line: Vec<u8>,
    /// A newline held back: it is output unless a marker line follows.
    held_newline: bool,
    /// Inside a line known not to be a marker (its bytes go out as they come).
    streaming: bool,
}

impl Reader {
    /// A reader before any output.
    pub fn new() -> Self {
        Self::default()
    }

    /// The item running now, if any.
    pub fn current(&self) -> Option<usize> {
        self.current
    }

    /// Feeds the next chunk of output.
    pub fn feed(&mut self, data: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut out = Vec::new();
        for &b in data {
            if self.streaming {
                // Inside a line known not to be a marker.
                if b == b'\n' {
                    self.streaming = false;
                    self.held_newline = true;
                } else {
                    out.push(b);
                }
                continue;
            }
            if b == b'\n' {
                if self.line.starts_with(MARKER) {
                    // The newline before the marker is the marker's own.
                    self.held_newline = false;
                    self.emit(&mut events, &mut out);
                    let line = std::mem::take(&mut self.line);
                    self.marker(&line[MARKER.len()..], &mut events);
                } else {
                    self.flush_held(&mut out);
                    out.append(&mut self.line);
                    self.held_newline = true;
                }
                continue;
            }
            self.line.push(b);
            if !self.line.starts_with(MARKER) && !MARKER.starts_with(&self.line) {
                self.flush_held(&mut out);
                out.append(&mut self.line);
                self.streaming = true;
            }
        }
        self.emit(&mut events, &mut out);
        events
    }

    /// The output still held back when the stream ends.
    pub fn finish(&mut self) -> Vec<Event> {
        let mut out = Vec::new();
        self.flush_held(&mut out);
        out.append(&mut self.line);
        self.streaming = false;
        let mut events = Vec::new();
        self.emit(&mut events, &mut out);
        events
    }

    fn flush_held(&mut self, out: &mut Vec<u8>) {
        if self.held_newline {
            out.push(b'\n');
            self.held_newline = false;
        }
    }

    fn emit(&self, events: &mut Vec<Event>, out: &mut Vec<u8>) {
        if !out.is_empty() {
            events.push(Event::Output {
                index: self.current,
                bytes: std::mem::take(out),
            });
        }
    }

    fn marker(&mut self, text: &[u8], events: &mut Vec<Event>) {
        let text = String::from_utf8_lossy(text);
        let words: Vec<&str> = text.split_whitespace().collect();
        let uptime = |w: Option<&&str>| w.and_then(|u| u.parse::<f64>().ok()).unwrap_or(0.0);
        match words.as_slice() {
            ["begin", i, ..] => {
                if let Ok(index) = i.parse() {
                    self.current = Some(index);
                    self.started_at.push((index, uptime(words.get(2))));
                    events.push(Event::Started { index });
                }
            }
            ["end", i, exit, ..] => {
                if let (Ok(index), Ok(exit)) = (i.parse::<usize>(), exit.parse()) {
                    let start = self
                        .started_at
                        .iter()
                        .position(|(j, _)| *j == index)
                        .map_or(0.0, |p| self.started_at.swap_remove(p).1);
                    let seconds = (uptime(words.get(3)) - start).max(0.0);
                    self.current = None;
                    events.push(Event::Finished {
                        index,
                        exit,
                        seconds,
                    });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests;
