//! A Debian-style package archive (Debian, Ubuntu, or a private archive laid out like them),
//! read and verified without apt: what `nodeimg fetch` needs to choose, pin and verify the
//! distro packages an image must get.
//!
//! The chain of trust is the archive's own: `InRelease` signed by the archive key, each
//! `Packages` index by its SHA-256 in `Release`, each `.deb` by its SHA-256 in `Packages`.
//! Nothing here does I/O on the network; callers hand in bytes.

pub mod control;
mod date;
pub mod packages;
pub mod relation;
pub mod release;
pub mod resolve;
pub mod signature;
pub mod status;
pub mod version;
