//! QEMU for nodeimg: what the builder needs to boot a cloud image offline and talk to it.
//! Knows nothing about distros or export formats.
//!
//! Host discovery ([`host`]), the accelerator probe by behaviour ([`accel`]), the typed command
//! line ([`cmdline`]), the never-orphaned child ([`process`]), a tolerant QMP client ([`qmp`]),
//! the NoCloud seed ([`seed`]) and the build key ([`keys`]), copy-on-write overlays
//! ([`overlay`]), the readiness beacon ([`ready`]), SSH ([`ssh`]), early-boot stalls
//! ([`stall`]) and one guest's lifecycle ([`vm`]).

pub mod accel;
pub mod cmdline;
pub mod error;
pub mod host;
pub mod keys;
pub mod overlay;
pub mod process;
pub mod qmp;
pub mod ready;
pub mod seed;
pub mod ssh;
pub mod stall;
pub mod vm;

pub use error::{Error, Result};
pub use keys::BuildKey;
pub use seed::SeedSpec;
pub use vm::{Vm, VmConfig};
