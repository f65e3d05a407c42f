//! Integration tests of the `debarchive` crate.

mod apt_host;
mod apt_synthetic;
mod version_dpkg;
