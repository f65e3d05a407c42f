//! The diskimg integration-test binary: the ext4 reader against debugfs, the ext4 reader and
//! root filesystem finder on bad input, the detector and readers on garbage and FIFOs.
//! Round trips through a writer and these readers live in the exporters' tests.

mod bad_input;
mod common;
mod ext4;
mod ext4_bad;
