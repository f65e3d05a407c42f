//! A guest kernel that stalls before its init starts. Under TCG with two vCPUs, a Linux guest
//! now and then hangs in early boot with one vCPU idle and its timer interrupt never delivered
//! (the serial console then shows `rcu: INFO: rcu_preempt detected stalls on CPUs/tasks` and
//! "timer wakeup didn't happen" every minute until the readiness deadline). Such a guest never
//! recovers, and it has not yet written anything that matters: the root file system is only
//! mounted read-only by the initramfs until the root's init (`systemd[1]`) runs. So
//! [`crate::vm::Vm::wait_ready`] restarts QEMU once when the serial console shows a stall
//! before init's first line, instead of waiting out the deadline.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the kernel prints when an RCU stall is detected (by another CPU or by the stalled one).
pub const STALL_MARKERS: &[&str] = &[
    "detected stalls on CPUs/tasks",
    "self-detected stall on CPU",
];

/// The first lines the root file system's init prints to the console: from here on, the
/// guest writes its disk and a restart would not be a clean first boot.
pub const INIT_MARKER: &str = "systemd[1]:";

/// How often the serial log is read.
const EVERY: Duration = Duration::from_secs(2);

/// How much of the serial log one look reads at most.
const READ_CAP: u64 = 1 << 20;

/// Watches a guest's serial log for a stall before init.
#[derive(Debug)]
pub struct SerialWatch {
    path: PathBuf,
    offset: u64,
    partial: String,
    init_started: bool,
    last: Option<Instant>,
}

impl SerialWatch {
    /// Watches the serial log at `path` from its start (it need not exist yet).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            offset: 0,
            partial: String::new(),
            init_started: false,
            last: None,
        }
    }

    /// Reads what the log gained since the last look (at most every [`EVERY`]) and returns
    /// the stall line when the kernel reported a stall before init started.
    pub fn early_stall(&mut self) -> Option<String> {
        if self.init_started || self.last.is_some_and(|t| t.elapsed() < EVERY) {
            return None;
        }
        self.last = Some(Instant::now());
        let mut bytes = Vec::new();
        let mut file = File::open(&self.path).ok()?;
        file.seek(SeekFrom::Start(self.offset)).ok()?;
        let n = file.take(READ_CAP).read_to_end(&mut bytes).ok()?;
        self.offset += n as u64;
        // Lossy: firmware writes bytes that are not UTF-8.
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let complete = self.partial.rfind('\n').map_or(0, |i| i + 1);
        let lines: String = self.partial.drain(..complete).collect();
        scan(&lines, &mut self.init_started)
    }
}

/// Goes through complete console `lines`: the first stall line before init's first line, and
/// whether init has started (set, and kept, once its marker is seen).
pub fn scan(lines: &str, init_started: &mut bool) -> Option<String> {
    if *init_started {
        return None;
    }
    for line in lines.lines() {
        if line.contains(INIT_MARKER) {
            *init_started = true;
            return None;
        }
        if STALL_MARKERS.iter().any(|m| line.contains(m)) {
            return Some(line.trim().to_owned());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const STALLED: &str = "[    3.07] Run /init as init process\n\
        [  546.69] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:\n\
        [  546.69] rcu: 0-...!: (0 ticks this GP) idle=1a00/0/0x0 softirq=31/31 fqs=0\n";

    #[test]
    fn a_stall_before_init_is_found_and_one_after_is_not() {
        let mut init = false;
        assert_eq!(
            scan(STALLED, &mut init).as_deref(),
            Some("[  546.69] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:")
        );
        assert!(!init);
        let after = format!("[    4.63] systemd[1]: Inserted module 'autofs4'\n{STALLED}");
        assert_eq!(scan(&after, &mut init), None);
        assert!(init);
        // Once init ran, a later look does not report a stall either.
        assert_eq!(scan(STALLED, &mut init), None);
        let mut init = false;
        assert_eq!(
            scan(
                "rcu: INFO: rcu_sched self-detected stall on CPU\n",
                &mut init
            )
            .as_deref(),
            Some("rcu: INFO: rcu_sched self-detected stall on CPU")
        );
        assert_eq!(scan("[ 1.0] Booting the kernel\n", &mut false), None);
    }

    #[test]
    fn the_watch_reads_only_complete_new_lines_of_a_growing_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial.log");
        let mut watch = SerialWatch::new(path.clone());
        assert_eq!(watch.early_stall(), None, "no log yet");
        std::fs::write(&path, b"\xff\xfeGRUB\n[ 3.0] Run /init as init process\n[ 9.0] rcu: INFO: rcu_preempt detected st").unwrap();
        watch.last = None;
        assert_eq!(
            watch.early_stall(),
            None,
            "the stall line is not complete yet"
        );
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        std::io::Write::write_all(&mut f, b"alls on CPUs/tasks:\n").unwrap();
        // Within EVERY of the last look, the log is not read again.
        assert_eq!(watch.early_stall(), None);
        watch.last = None;
        assert_eq!(
            watch.early_stall().as_deref(),
            Some("[ 9.0] rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:")
        );
    }
}
