//! The build's output directory `OUT/NAME`: the names of the files a build leaves there
//! besides the exports (`export`) and the manifest written last (`publish`).

/// The sealed raw disk.
pub const GOLDEN: &str = "golden.raw";
/// The checks' report.
pub const JUNIT: &str = "validation.junit.xml";
/// Everything the build said and every guest command's output.
pub const BUILD_LOG: &str = "build.log";
/// The build guest's serial console.
pub const SERIAL_LOG: &str = "serial.log";
/// The boot test guest's serial console.
pub const BOOT_TEST_SERIAL_LOG: &str = "boot-test-serial.log";
