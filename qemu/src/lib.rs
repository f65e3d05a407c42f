//! QEMU for nodeimg: what the builder needs to boot a cloud image offline and talk to it.
//! Knows nothing about distros or export formats.
//!
//! Work in progress (issue 3): host discovery, accelerator probe, command line, child
//! lifecycle and QMP live in `host`, `accel`, `cmdline`, `process` and `qmp`; the NoCloud seed
//! and build keys in `seed` and `keys`.

pub mod error;
pub mod keys;
pub mod seed;

pub use error::{Error, Result};
pub use keys::BuildKey;
pub use seed::SeedSpec;
