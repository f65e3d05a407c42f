//! A build's inputs, each with one home: the build [`spec`], its [`lock`], the
//! content-addressed [`cache`] of the bytes the lock pins, and [`fetch`], the one step that
//! uses the network (it fills the cache and writes the lock). `nodeimg` (the `builder` crate)
//! parses the command lines and prints; the fixtures write their lock and cache entries with
//! these same types and functions.

pub mod atomic;
pub mod cache;
pub mod documents;
pub mod fetch;
pub mod located;
pub mod lock;
pub mod spec;
