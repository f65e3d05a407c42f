//! Exporters: turn one golden raw disk into every cloud's format in a single read pass —
//! sparse raw, qcow2, fixed VHD (Azure), OVA with a streamOptimized VMDK (vSphere), GCE
//! `disk.raw` tar.gz and AWS import input — plus `manifest.json` and `SHA256SUMS`, all
//! byte-for-byte reproducible; and read every artifact back (`verify`, `inspect`).
//!
//! Pure library: no async runtime, no QEMU, no drawing. Progress goes to a [`Progress`]
//! callback.

pub mod artifact;
pub mod batch;
pub mod deflate;
pub mod dir_lock;
pub mod error;
pub mod export;
pub mod ext4;
pub mod format;
pub mod formats;
pub mod gpt_table;
pub mod ids;
pub mod image;
pub mod input_file;
pub mod inspect;
pub mod instructions;
pub mod manifest;
pub mod pad;
pub mod pipeline;
pub mod progress;
pub mod reader;
pub mod rootfs;
pub mod source;
pub mod verify;

pub use error::{Error, Result};
pub use export::{ExportReport, export};
pub use format::{ExportOptions, Firmware, Format};
pub use manifest::Manifest;
pub use progress::{NoProgress, Progress};
