//! SIGINT/SIGTERM during an export: remove the export's `.nodeimg-partial.*` temporaries, say
//! so, and exit 130 — an interrupted export leaves nothing behind, not even partial files.

use std::path::{Path, PathBuf};

use nix::sys::signal::{SigSet, Signal};

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread spawned after it) and
/// starts a thread that waits for them and cleans `out_dir` before exiting.
pub fn clean_up_on_interrupt(out_dir: &Path) {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return; // Without the mask the default action applies; temporaries stay hidden names.
    }
    let dir: PathBuf = out_dir.to_path_buf();
    std::thread::spawn(move || {
        let Ok(signal) = set.wait() else { return };
        let removed = remove_partials(&dir);
        eprintln!(
            "error: interrupted by {signal}; removed {removed} partial file(s) from {}",
            dir.display()
        );
        std::process::exit(130);
    });
}

fn remove_partials(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(exporters::artifact::TEMP_PREFIX)
        })
        .filter(|e| std::fs::remove_file(e.path()).is_ok())
        .count()
}
