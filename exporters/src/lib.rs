//! Exporters: turn one golden raw disk into every cloud's format in a single read pass —
//! sparse raw, qcow2, fixed VHD (Azure), OVA with a streamOptimized VMDK (vSphere), GCE
//! `disk.raw` tar.gz and AWS import input — plus `manifest.json` and `SHA256SUMS`, all
//! byte-for-byte reproducible; and check every artifact against the manifest (`verify`, reading
//! back through [`diskimg`], where the readers live).
//!
//! Pure library: no async runtime, no QEMU, no drawing. Progress goes to a [`Progress`]
//! callback.

pub mod artifact;
pub mod batch;
pub mod deflate;
pub mod dir_lock;
pub mod error;
pub mod export;
pub mod format;
pub mod formats;
pub mod ids;
pub mod instructions;
pub mod manifest;
pub mod pad;
pub mod pipeline;
pub mod priority;
pub mod progress;
pub mod source;
pub mod verify;

pub use error::{Error, Result};
pub use export::{ExportReport, export};
pub use format::{ExportOptions, Firmware, Format};
pub use manifest::Manifest;
pub use progress::{NoProgress, Progress};
