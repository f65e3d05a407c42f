//! Bounded stderr: the last bytes of a stream, the last lines of a log file.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

/// How many bytes of a child's stderr are kept (its end).
pub const STDERR_TAIL_BYTES: usize = 64 * 1024;

/// How many lines of stderr errors carry.
pub const TAIL_LINES: usize = 40;

/// Keeps the last `cap` bytes written to it.
#[derive(Debug)]
pub(crate) struct TailBuffer {
    buf: Vec<u8>,
    cap: usize,
    cut: bool,
}

impl TailBuffer {
    pub(crate) fn new(cap: usize) -> Self {
        TailBuffer {
            buf: Vec::new(),
            cap,
            cut: false,
        }
    }

    pub(crate) fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
        if self.buf.len() > 2 * self.cap {
            let excess = self.buf.len() - self.cap;
            self.buf.drain(..excess);
            self.cut = true;
        }
    }

    /// The last [`TAIL_LINES`] lines kept, as text.
    pub(crate) fn lines(&self) -> String {
        let start = self.buf.len().saturating_sub(self.cap);
        last_lines(&self.buf[start..], self.cut || start > 0, TAIL_LINES)
    }
}

/// The last `n` lines of `bytes`; the first line is dropped when `cut` (it is probably partial).
fn last_lines(bytes: &[u8], cut: bool, n: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<&str> = text.lines().collect();
    if cut && !lines.is_empty() {
        lines.remove(0);
    }
    let from = lines.len().saturating_sub(n);
    lines[from..].join("\n")
}

/// The last `n` lines of the file at `path`, looking only at its last
/// [`STDERR_TAIL_BYTES`] bytes.
pub fn tail_lines(path: &Path, n: usize) -> io::Result<String> {
    let mut f = File::open(path)?;
    let len = f.metadata()?.len();
    let start = len.saturating_sub(STDERR_TAIL_BYTES as u64);
    f.seek(SeekFrom::Start(start))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(last_lines(&buf, start > 0, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let t = tail_lines(&p, 40).unwrap();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 40);
        assert_eq!(lines[0], "line 60");
        assert_eq!(lines[39], "line 99");
    }

    #[test]
    fn tail_of_huge_log_reads_only_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("log");
        let text: String = (0..100_000).map(|i| format!("line {i}\n")).collect();
        std::fs::write(&p, text).unwrap();
        let t = tail_lines(&p, 3).unwrap();
        assert_eq!(t, "line 99997\nline 99998\nline 99999");
    }

    #[test]
    fn tail_buffer_stays_bounded() {
        let mut t = TailBuffer::new(100);
        for i in 0..10_000 {
            t.push(format!("line {i}\n").as_bytes());
        }
        assert!(t.buf.len() <= 200 + 16);
        assert!(t.lines().ends_with("line 9999"), "{}", t.lines());
    }
}
