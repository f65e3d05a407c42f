//! Exit codes and the one `error:` line a failed command prints.

use std::process::ExitCode;

/// Exit code of the report commands (`audit`, `bom diff`, `scan`) for unusable input: 1 and 0
/// are their verdicts.
const EXIT_BAD_INPUT: u8 = 2;

/// Prints `error: MESSAGE` and gives the report commands' bad-input exit code.
pub(crate) fn bad_input(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(EXIT_BAD_INPUT)
}

/// 0 for success; for an error, once an interrupt handler has had its say, `error: …` with
/// the whole chain of causes and 1.
pub(crate) fn from_result(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            crate::interrupt::yield_to_handler();
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
