//! Reading disk images: the container of a file told by its magic numbers ([`ImageFormat`])
//! and opened as a random-access [`DiskImage`] — raw, qcow2 (compressed clusters included),
//! fixed VHD, streamOptimized VMDK, the VMDK inside an OVA — or read as a stream (GCE
//! tar.gz); the GPT (with the backup-header fallback), a read-only ext4 reader and the
//! root-filesystem finder; and the one way to open a user's file ([`input_file`]).
//!
//! The on-disk layouts a writer needs too (qcow2 header, VMDK sparse header, ustar and
//! old-GNU sparse headers, the VHD footer) live here once; the writers are in `exporters`.
//! Pure library: no async runtime, no QEMU.

pub mod bytes;
pub mod error;
pub mod ext4;
pub mod format;
pub mod gce;
pub mod gpt_table;
pub mod image;
pub mod input_file;
pub mod inspect;
pub mod ova;
pub mod qcow2;
pub mod rootfs;
pub mod vhd;
pub mod vmdk;
pub mod xml;

pub use error::{Error, Result};
pub use format::{ImageFormat, open_image};
pub use image::DiskImage;
