//! Integration tests of the `debarchive` crate.
