//! QEMU for nodeimg: what the builder needs to boot a cloud image offline and talk to it.
//! Knows nothing about distros or export formats.
//!
//! Work in progress (issue 3): host discovery, accelerator probe, command line, child
//! lifecycle and QMP live in `host`, `accel`, `cmdline`, `process` and `qmp`; the NoCloud seed
//! and build keys in `seed` and `keys`.

pub mod error;

pub use error::{Error, Result};

// qemu-a: host discovery, accelerator probe, command line, child process, QMP
pub mod accel;
pub mod cmdline;
pub mod host;
pub mod process;
pub mod qmp;
