//! A background export: its threads at the lowest CPU priority (Linux nice 19, per thread), so a
//! guest running alongside (the build's boot test under TCG) is slowed as little as possible.

/// The nice value of a background export's threads.
pub const BACKGROUND_NICE: i32 = 19;

/// Lowers the calling thread's CPU priority to nice [`BACKGROUND_NICE`] (Linux keeps a nice
/// value per thread; threads it then creates inherit it). A thread that already runs at that
/// nice or lower priority is left alone. The priority is a hint: when the kernel refuses, the
/// export runs on at the priority it had, and the error is only logged.
pub fn lower_this_thread() {
    if let Err(e) = set_thread_nice(BACKGROUND_NICE) {
        tracing::debug!(error = %e, "could not lower the export thread's priority");
    }
}

/// Lowers the calling thread's priority when `background` is set (see [`lower_this_thread`]).
pub(crate) fn lower_if(background: bool) {
    if background {
        lower_this_thread();
    }
}

/// Sets the calling thread's nice value to `nice` unless it already is at least that.
#[allow(unsafe_code)]
fn set_thread_nice(nice: i32) -> nix::Result<()> {
    use nix::libc;
    let tid = libc::id_t::try_from(nix::unistd::gettid().as_raw())
        .map_err(|_| nix::errno::Errno::ESRCH)?;
    // getpriority may legitimately return -1: errno tells an error apart.
    nix::errno::Errno::clear();
    // SAFETY: getpriority and setpriority take plain integers (which, whose id, a value),
    // touch no memory of ours and are safe to call from any thread.
    let now = unsafe { libc::getpriority(libc::PRIO_PROCESS, tid) };
    if now == -1 && nix::errno::Errno::last_raw() != 0 {
        return Err(nix::errno::Errno::last());
    }
    if now >= nice {
        return Ok(());
    }
    // SAFETY: as above.
    let done = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid, nice) };
    nix::errno::Errno::result(done).map(drop)
}

/// The calling thread's nice value.
#[cfg(test)]
#[allow(unsafe_code)]
pub(crate) fn this_thread_nice() -> i32 {
    let tid = nix::libc::id_t::try_from(nix::unistd::gettid().as_raw()).unwrap_or(0);
    // SAFETY: as in set_thread_nice.
    unsafe { nix::libc::getpriority(nix::libc::PRIO_PROCESS, tid) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_calling_thread_is_lowered_and_its_new_threads_inherit_it() {
        let before = this_thread_nice();
        let (lowered, inherited) = std::thread::spawn(|| {
            lower_this_thread();
            let inherited = std::thread::spawn(this_thread_nice).join().unwrap();
            (this_thread_nice(), inherited)
        })
        .join()
        .unwrap();
        assert_eq!(lowered, before.max(BACKGROUND_NICE));
        assert_eq!(inherited, lowered);
        assert_eq!(
            this_thread_nice(),
            before,
            "the caller's thread kept its priority"
        );
    }
}
