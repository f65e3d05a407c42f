//! The build log (`build.log`): every line the user was told, every guest command's output,
//! each line stamped with the seconds since the run started.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// A log file that may not be open yet; shared by reference, safe to write from any thread.
#[derive(Debug)]
pub struct LogFile {
    start: Instant,
    file: Mutex<Option<File>>,
}

/// Seconds since `start`, right-aligned: `    1.5s`.
pub fn stamp(start: Instant) -> String {
    format!("{:7.1}s", start.elapsed().as_secs_f64())
}

impl LogFile {
    /// No file yet; stamps count from `start`.
    pub fn new(start: Instant) -> Self {
        LogFile {
            start,
            file: Mutex::new(None),
        }
    }

    /// Starts writing at `path` (what was said before is not repeated).
    pub fn open(&self, path: &Path) -> std::io::Result<()> {
        let f = File::create(path)?;
        *self.file.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
        Ok(())
    }

    /// Flushes and closes the file.
    pub fn close(&self) -> std::io::Result<()> {
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).take() {
            f.sync_all()?;
        }
        Ok(())
    }

    /// Appends `text` as one stamped line.
    pub fn line(&self, text: &str) {
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = writeln!(f, "[{}] {}", stamp(self.start), text.trim_end());
        }
    }

    /// Appends `data` as it is (a guest's output).
    pub fn bytes(&self, data: &[u8]) {
        if let Some(f) = self.file.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            let _ = f.write_all(data);
        }
    }
}
