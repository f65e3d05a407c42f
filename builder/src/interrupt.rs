//! SIGINT/SIGTERM: kill every child this process started (QEMU, qemu-img, mkfs.ext4, ..., each
//! with its process group), run the command's clean-up (remove an
//! export's `.nodeimg-partial.*` files, a VM directory), say so, and exit 130 — an interrupted
//! command leaves nothing behind.
//!
//! A command that *waits* for Ctrl-C (`nodeimg boot` keeping a guest up) turns on
//! [`set_polite`]: the first signal only raises [`interrupted`], so the command can power its
//! guest off in order; a second signal is handled the hard way.

use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::signal::{SigSet, Signal};

static POLITE: AtomicBool = AtomicBool::new(false);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static STOPPING: AtomicBool = AtomicBool::new(false);

/// Blocks SIGINT and SIGTERM in this thread (and so in every thread spawned after it: call it
/// before starting any) and starts a thread that waits for them. `clean_up` runs after the
/// children are killed and returns what it did, for the message.
pub fn on_interrupt(clean_up: impl Fn() -> String + Send + 'static) {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    if set.thread_block().is_err() {
        return; // Without the mask the default action applies: we die, and so do the children
        // (parent-death signal); only the clean-up is lost.
    }
    std::thread::spawn(move || {
        loop {
            let Ok(signal) = set.wait() else { return };
            if POLITE.load(Ordering::SeqCst) && !INTERRUPTED.swap(true, Ordering::SeqCst) {
                tracing::info!(%signal, "interrupted; stopping");
                continue;
            }
            STOPPING.store(true, Ordering::SeqCst);
            let killed = child_process::kill_all();
            let done = clean_up();
            let children = if killed > 0 {
                format!("killed {killed} child process(es); ")
            } else {
                String::new()
            };
            eprintln!("error: interrupted by {signal}; {children}{done}");
            std::process::exit(130);
        }
    });
}

/// If a signal is being handled (children killed, clean-up running, exit 130 next), waits for the
/// handler to end the process: the command's own error (e.g. "QEMU exited") is a consequence
/// of the interruption and must not win the race with exit status 130.
pub fn yield_to_handler() {
    if STOPPING.load(Ordering::SeqCst) {
        loop {
            std::thread::park();
        }
    }
}

/// While on, the first SIGINT/SIGTERM only sets [`interrupted`].
pub fn set_polite(on: bool) {
    POLITE.store(on, Ordering::SeqCst);
}

/// Whether a signal arrived while [`set_polite`] was on.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Removes `dir` and everything in it; returns the message for [`on_interrupt`] (empty when
/// there was nothing to remove).
pub fn remove_dir(dir: &std::path::Path) -> String {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => format!("removed {}", dir.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => format!("could not remove {}: {e}", dir.display()),
    }
}
