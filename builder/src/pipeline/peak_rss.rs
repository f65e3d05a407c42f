//! The peak resident memory of nodeimg itself (every thread, not its children: QEMU's guest
//! memory is not in it), said at the end of a build. Not in any deterministic output.

use crate::report::Reporter;

/// The peak resident set size of this process so far, in bytes (`getrusage(RUSAGE_SELF)`).
pub fn peak_rss_bytes() -> nix::Result<u64> {
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)?;
    // Linux reports ru_maxrss in KiB.
    Ok(u64::try_from(usage.max_rss())
        .unwrap_or(0)
        .saturating_mul(1024))
}

/// The line said at the end of a build: `peak RSS of nodeimg: N MiB (QEMU's guest memory not
/// included)`.
pub fn peak_rss_line() -> String {
    match peak_rss_bytes() {
        Ok(bytes) => format!(
            "peak RSS of nodeimg: {} MiB (QEMU's guest memory not included)",
            bytes.div_ceil(1 << 20)
        ),
        Err(e) => format!("peak RSS of nodeimg: unknown (getrusage: {e})"),
    }
}

/// Says [`peak_rss_line`] as an info event (and in the build log while it is open).
pub fn report(reporter: &Reporter) {
    reporter.info(&peak_rss_line());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_rss_is_plausible() {
        // Touch 32 MiB so the peak is at least that.
        let touched = vec![1u8; 32 << 20];
        let peak = peak_rss_bytes().unwrap();
        assert!(touched.iter().all(|&b| b == 1));
        assert!(peak >= 32 << 20, "{peak}");
        assert!(peak < 64 << 30, "{peak}");
        let line = peak_rss_line();
        assert!(
            line.starts_with("peak RSS of nodeimg: ")
                && line.ends_with(" MiB (QEMU's guest memory not included)"),
            "{line}"
        );
    }
}
