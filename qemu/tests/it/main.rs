//! qemu crate integration tests.
