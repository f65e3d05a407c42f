//! Every timeout of the build in one place. The guest's lifecycle (ready, SSH, power-off) is
//! shared with `nodeimg boot` and the tests through [`qemu::vm`]; the rest are the pipeline's.
//! The distro's steps and checks carry their own (at least
//! [`distros::step::MIN_STEP_TIMEOUT`]), as do the kubeadm test's steps.

use std::time::Duration;

pub use qemu::vm::{POWERDOWN_TIMEOUT, READY_TIMEOUT, SSH_TIMEOUT};

/// `qemu-img convert` of the base image (tens of GiB on a slow disk: this catches a hang).
pub const BASE_CONVERT: Duration = Duration::from_secs(2 * 60 * 60);
/// `mkfs.ext4 -d` of the payload (a few GiB of packages and images, copied into a fresh file
/// system: this catches a hang, not a slow disk).
pub const PAYLOAD_MKFS: Duration = Duration::from_secs(60 * 60);
/// One of the spec's `[[commands]]`.
pub const USER_COMMAND: Duration = Duration::from_secs(600);
/// Installing one of the spec's `[[files]]` from its upload (raised to the step minimum).
pub const USER_FILE: Duration = Duration::from_secs(60);
/// Linking the distro's CNI plugins into `/opt/cni/bin` (raised to the step minimum).
pub const CNI_PATH: Duration = Duration::from_secs(30);
/// The no-outbound-network check (raised to the step minimum).
pub const NO_NETWORK_CHECK: Duration = Duration::from_secs(60);
/// Listing and hashing everything for the bill of materials.
pub const BOM_COLLECT: Duration = Duration::from_secs(300);
/// Reading the build VM's machine id and host key fingerprints before the seal.
pub const BUILD_IDENTITY: Duration = Duration::from_secs(30);
/// The seal's part B reporting on the serial console.
pub const SEAL_PART_B: Duration = Duration::from_secs(300);
/// `sh -n` of one planned script on the host.
pub const SYNTAX_CHECK: Duration = Duration::from_secs(30);
