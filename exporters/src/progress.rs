//! How the exporters report progress: to a callback the caller supplies. Nothing here draws.

/// Receives progress from an export or a verify. Called from several threads.
pub trait Progress: Sync {
    /// `task` starts; it will cover `total` bytes of the virtual disk.
    fn started(&self, task: &str, total: u64) {
        let _ = (task, total);
    }
    /// `task` has covered `done` bytes so far.
    fn advanced(&self, task: &str, done: u64) {
        let _ = (task, done);
    }
    /// `task` is complete.
    fn finished(&self, task: &str) {
        let _ = task;
    }
}

/// Progress that goes nowhere.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {}
