//! Every timeout of the build in one place. The guest's lifecycle (ready, SSH, power-off) is
//! shared with `nodeimg boot` and the tests through [`qemu::vm`]; the rest are the pipeline's.
//! Every guest script is rendered in `distros` with its own timeout next to it (at least
//! [`distros::step::MIN_STEP_TIMEOUT`] unless the step says why not): the kubeadm test's
//! steps, the BOM collection, the build identity, the network check, a `[[files]]` install.

use std::time::Duration;

pub use qemu::vm::{POWERDOWN_TIMEOUT, READY_TIMEOUT, SSH_TIMEOUT};

/// `qemu-img convert` of the base image (tens of GiB on a slow disk: this catches a hang).
pub const BASE_CONVERT: Duration = Duration::from_secs(2 * 60 * 60);
/// `mkfs.ext4 -d` of the payload (a few GiB of packages and images, copied into a fresh file
/// system: this catches a hang, not a slow disk).
pub const PAYLOAD_MKFS: Duration = Duration::from_secs(60 * 60);
/// One of the spec's `[[commands]]`.
pub const USER_COMMAND: Duration = Duration::from_secs(600);
/// The seal's part B reporting on the serial console.
pub const SEAL_PART_B: Duration = Duration::from_secs(300);
/// `sh -n` of one planned script on the host.
pub const SYNTAX_CHECK: Duration = Duration::from_secs(30);
