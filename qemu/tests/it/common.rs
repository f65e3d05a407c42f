//! Helpers: find QEMU or skip.

use std::path::PathBuf;

/// The QEMU binary, or `None` after printing a SKIP line.
pub fn qemu_or_skip(test: &str) -> Option<PathBuf> {
    match qemu::host::find_qemu(
        std::env::var_os("PATH").as_deref(),
        qemu::host::FALLBACK_DIRS,
    ) {
        Ok(q) => Some(q),
        Err(e) => {
            // CI sets this so missing QEMU or firmware fails instead of skipping silently.
            assert!(
                std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
                "{test}: {e}"
            );
            println!("SKIP: {test}: {e}");
            None
        }
    }
}

/// The whole host (QEMU + OVMF), or `None` after printing a SKIP line.
pub fn host_or_skip(test: &str) -> Option<qemu::host::Host> {
    match qemu::host::Host::discover() {
        Ok(h) => Some(h),
        Err(e) => {
            // CI sets this so missing QEMU or firmware fails instead of skipping silently.
            assert!(
                std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
                "{test}: {e}"
            );
            println!("SKIP: {test}: {e}");
            None
        }
    }
}
