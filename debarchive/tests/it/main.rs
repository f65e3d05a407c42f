//! Integration tests of the `debarchive` crate.
mod release;
mod release_archive;
