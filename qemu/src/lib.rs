//! QEMU for nodeimg: what the builder needs to boot a cloud image offline and talk to it.
//! Knows nothing about distros or export formats.
//!
//! Work in progress (issue 3): host discovery ([`host`]), the accelerator probe by behaviour
//! ([`accel`]), the typed command line ([`cmdline`]), the never-orphaned child ([`process`]),
//! a tolerant QMP client ([`qmp`]), the NoCloud seed ([`seed`]) and the build key ([`keys`]).
//! Still to come: readiness wait, SSH, lifecycle (`system_powerdown` → `quit` → kill).

pub mod accel;
pub mod cmdline;
pub mod error;
pub mod host;
pub mod keys;
pub mod process;
pub mod qmp;
pub mod seed;

pub use error::{Error, Result};
pub use keys::BuildKey;
pub use seed::SeedSpec;
