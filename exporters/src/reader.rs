//! Which reader for which file: the container of a disk image told by its magic numbers, and
//! the project's reader for it opened. The one detector behind `inspect`, `audit`, `verify`,
//! `boot` and the build's base image check.

use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::{ova, qcow2::Qcow2Image, vmdk::VmdkImage};
use crate::image::{DiskImage, FileSlice, RawImage, VhdImage};

/// Formats recognised by their first bytes that nodeimg has no reader for, refused by name
/// (read as raw they would be garbage).
const UNREADABLE: &[(&[u8], &str)] = &[
    (b"vhdxfile", "a VHDX image"),
    (
        b"# Disk DescriptorFile",
        "a VMDK descriptor (its data lives in other files)",
    ),
];

/// Detects the container of `path` by its magic numbers: `raw`, `qcow2`, `vhd`, `vmdk`, `ova`
/// or `tar.gz`. Only a regular file is opened (a FIFO, socket or device is refused); an empty
/// file, a format nodeimg cannot read, and a "raw" size that is not whole sectors are errors.
pub fn detect(path: &Path) -> Result<&'static str> {
    let slice = FileSlice::open(path)?;
    let len = slice.len();
    if len == 0 {
        return Err(Error::BadInput {
            path: path.to_path_buf(),
            reason: "is empty (0 bytes)".into(),
        });
    }
    let mut head = [0u8; 512];
    let head_len = usize::try_from(len.min(512)).unwrap_or(512);
    slice.read_exact_at(0, &mut head[..head_len])?;
    if head.starts_with(b"QFI\xfb") {
        return Ok("qcow2");
    }
    if head.starts_with(b"KDMV") {
        return Ok("vmdk");
    }
    if head.starts_with(&[0x1f, 0x8b]) {
        return Ok("tar.gz");
    }
    for (magic, what) in UNREADABLE {
        if head.starts_with(magic) {
            return Err(Error::UnsupportedFormat {
                path: path.to_path_buf(),
                what,
            });
        }
    }
    if &head[257..263] == b"ustar\0"
        && head[..100]
            .split(|&b| b == 0)
            .next()
            .is_some_and(|n| n.ends_with(b".ovf"))
    {
        return Ok("ova");
    }
    if len >= 1024 {
        let mut tail = [0u8; 8];
        slice.read_exact_at(len - 512, &mut tail)?;
        if &tail == b"conectix" {
            return Ok("vhd");
        }
    }
    if len % 512 != 0 {
        return Err(Error::BadInput {
            path: path.to_path_buf(),
            reason: format!(
                "not a known image format, and as a raw disk its size {len} is not a multiple of 512"
            ),
        });
    }
    Ok("raw")
}

/// Opens `path` with the reader of `format` (as [`detect`] names it). A `tar.gz` holds its
/// disk compressed and cannot be read in place: it is refused here (read it with
/// [`crate::formats::gce::read_content`]).
pub fn open_as(path: &Path, format: &str) -> Result<Box<dyn DiskImage>> {
    Ok(match format {
        "qcow2" => Box::new(Qcow2Image::open(path)?),
        "vmdk" => Box::new(VmdkImage::open(path)?),
        "ova" => Box::new(ova::open_disk(path)?),
        "vhd" => Box::new(VhdImage::open(path)?),
        "raw" => Box::new(RawImage::open(path)?),
        other => {
            return Err(Error::BadInput {
                path: path.to_path_buf(),
                reason: format!("is a {other} file, not a disk image that can be read in place"),
            });
        }
    })
}

/// Detects the container of `path` and opens its reader: the image and its format.
pub fn open_image(path: &Path) -> Result<(Box<dyn DiskImage>, &'static str)> {
    let format = detect(path)?;
    Ok((open_as(path, format)?, format))
}
