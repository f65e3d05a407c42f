//! qemu crate integration tests. Tests that need QEMU or OVMF print `SKIP: <why>` and return
//! when they are missing.

mod common;
mod host_accel;
mod process;
mod qmp;
mod stall;
