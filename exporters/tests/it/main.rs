//! The exporters' one integration-test binary: every format checked by real readers
//! (qemu-img, GNU tar, gzip, xmllint, sfdisk), round trips through the project's own readers
//! over random sparse layouts, determinism, `verify` catching corruption, bad input.

mod bad_input;
mod common;
mod determinism;
mod pad;
mod real_readers;
mod roundtrip;
mod verify_catches;
