//! The export run alongside the boot test. Both only read the sealed golden disk (the boot
//! test boots it through a copy-on-write overlay, with the golden disk as its read-only
//! backing file), so the export need not wait: it runs on a thread of its own, at a lower CPU
//! priority (every thread it starts too), while the boot test runs on the calling thread —
//! which must be the one that lives as long as QEMU, since the kernel kills a child when the
//! thread that started it ends (`PR_SET_PDEATHSIG`).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};

use crate::report::Reporter;

/// Runs `boot_test` on this thread and `export` on another, waits for both, and says how
/// they overlapped ([`overlap_line`]). Either result may be an error; the boot test always
/// runs to its end (its VM stopped) whatever the export does. When both fail, the export's
/// error is said, and the caller reports the boot test's.
pub fn boot_test_and_export<B, E: Send>(
    reporter: &Reporter,
    boot_test: impl FnOnce() -> Result<B>,
    export: impl FnOnce() -> Result<E> + Send,
) -> (Result<B>, Result<E>) {
    let start = Instant::now();
    let (tested, boot_took, exported, export_took) = std::thread::scope(|scope| {
        let exporting = scope.spawn(|| {
            exporters::priority::lower_this_thread();
            let exported = export();
            (exported, start.elapsed())
        });
        let tested = boot_test();
        let boot_took = start.elapsed();
        let (exported, export_took) = exporting
            .join()
            .unwrap_or_else(|_| (Err(anyhow!("the export thread panicked")), start.elapsed()));
        (tested, boot_took, exported, export_took)
    });
    let line = overlap_line(export_took, boot_took);
    reporter.info(&line);
    let exported = exported.context("the export, run alongside the boot test, failed");
    if let (Err(_), Err(e)) = (&tested, &exported) {
        reporter.info(&format!("{e:#}"));
    }
    (tested, exported)
}

/// `export ran alongside the boot test: export Xs, boot test Ys, the export ended Zs after
/// the boot test` (Z is 0 when the export ended first). Durations are from the common start.
pub fn overlap_line(export: Duration, boot_test: Duration) -> String {
    format!(
        "export ran alongside the boot test: export {:.1}s, boot test {:.1}s, the export ended {:.1}s after the boot test",
        export.as_secs_f64(),
        boot_test.as_secs_f64(),
        export.saturating_sub(boot_test).as_secs_f64()
    )
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::report::Mode;

    #[test]
    fn the_overlap_line_says_how_long_the_export_outlasted_the_boot_test() {
        let s = Duration::from_secs_f64;
        assert_eq!(
            overlap_line(s(26.04), s(358.0)),
            "export ran alongside the boot test: export 26.0s, boot test 358.0s, the export ended 0.0s after the boot test"
        );
        assert_eq!(
            overlap_line(s(30.0), s(20.5)),
            "export ran alongside the boot test: export 30.0s, boot test 20.5s, the export ended 9.5s after the boot test"
        );
    }

    #[test]
    fn both_run_at_once_and_both_results_come_back() {
        let r = Reporter::new(Mode::Json);
        let export_started = AtomicBool::new(false);
        let (tested, exported) = boot_test_and_export(
            &r,
            || {
                // The boot test sees the export running before it ends.
                for _ in 0..500 {
                    if export_started.load(Ordering::SeqCst) {
                        return Ok("booted");
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                anyhow::bail!("the export never started while the boot test ran")
            },
            || {
                export_started.store(true, Ordering::SeqCst);
                Ok(7)
            },
        );
        assert_eq!(tested.unwrap(), "booted");
        assert_eq!(exported.unwrap(), 7);
    }

    #[test]
    fn a_failed_export_is_named_and_the_boot_test_still_ends() {
        let r = Reporter::new(Mode::Json);
        let (tested, exported) = boot_test_and_export(
            &r,
            || Ok("ended"),
            || -> Result<()> { anyhow::bail!("no space left on device") },
        );
        assert_eq!(tested.unwrap(), "ended");
        let e = format!("{:#}", exported.unwrap_err());
        assert_eq!(
            e,
            "the export, run alongside the boot test, failed: no space left on device"
        );
        let (tested, exported) = boot_test_and_export(
            &r,
            || -> Result<()> { anyhow::bail!("QEMU exited") },
            || -> Result<()> { panic!("boom") },
        );
        assert!(tested.is_err());
        assert!(format!("{:#}", exported.unwrap_err()).contains("the export thread panicked"));
    }
}
