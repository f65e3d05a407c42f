//! Shared helpers: running tools, skipping when a tool is missing.

pub use fixtures::tools::{have, run_ok};
