//! Which reader for which file: the container of a disk image told by its magic numbers
//! ([`ImageFormat::detect`]) and the project's reader for it opened ([`ImageFormat::open`]).
//! The one detector behind `inspect`, `audit`, `verify`, `boot`, export and the build's base
//! image check.

use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::image::{DiskImage, FileSlice, RawImage};
use crate::ova;
use crate::qcow2::Qcow2Image;
use crate::vhd::VhdImage;
use crate::vmdk::VmdkImage;

/// What format an image file is in: the containers nodeimg reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ImageFormat {
    /// A raw disk: the file is the disk.
    #[serde(rename = "raw")]
    Raw,
    /// qcow2 (v2/v3, compressed clusters included).
    #[serde(rename = "qcow2")]
    Qcow2,
    /// A fixed VHD.
    #[serde(rename = "vhd")]
    Vhd,
    /// A streamOptimized VMDK.
    #[serde(rename = "vmdk")]
    Vmdk,
    /// An OVA (ustar: `.ovf`, `.mf`, streamOptimized VMDK).
    #[serde(rename = "ova")]
    Ova,
    /// A GCE `disk.raw` tar.gz: compressed, read as a stream, not in place.
    #[serde(rename = "tar.gz")]
    GceTarGz,
}

/// Formats recognised by their first bytes that nodeimg has no reader for, refused by name
/// (read as raw they would be garbage).
const UNREADABLE: &[(&[u8], &str)] = &[
    (b"vhdxfile", "a VHDX image"),
    (
        crate::vmdk::descriptor::DESCRIPTOR_SIGNATURE.as_bytes(),
        "a VMDK descriptor (its data lives in other files)",
    ),
];

impl ImageFormat {
    /// Every format, in the order above.
    pub const ALL: [ImageFormat; 6] = [
        ImageFormat::Raw,
        ImageFormat::Qcow2,
        ImageFormat::Vhd,
        ImageFormat::Vmdk,
        ImageFormat::Ova,
        ImageFormat::GceTarGz,
    ];

    /// Its name as `inspect`, the manifest's `container` and error messages write it: `raw`,
    /// `qcow2`, `vhd`, `vmdk`, `ova` or `tar.gz`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ImageFormat::Raw => "raw",
            ImageFormat::Qcow2 => "qcow2",
            ImageFormat::Vhd => "vhd",
            ImageFormat::Vmdk => "vmdk",
            ImageFormat::Ova => "ova",
            ImageFormat::GceTarGz => "tar.gz",
        }
    }

    /// The format named `name` (as [`ImageFormat::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// QEMU's block driver for it (`-drive format=`, `qemu-img -F`), when QEMU can open the
    /// file as a disk directly: raw, qcow2, vhd (`vpc`) and vmdk. An OVA and a GCE tar.gz are
    /// archives QEMU cannot boot.
    pub const fn qemu_driver(self) -> Option<&'static str> {
        match self {
            ImageFormat::Raw => Some("raw"),
            ImageFormat::Qcow2 => Some("qcow2"),
            ImageFormat::Vhd => Some("vpc"),
            ImageFormat::Vmdk => Some("vmdk"),
            ImageFormat::Ova | ImageFormat::GceTarGz => None,
        }
    }

    /// Detects the container of `path` by its magic numbers. Only a regular file is opened (a
    /// FIFO, socket or device is refused); an empty file, a format nodeimg cannot read, and a
    /// "raw" size that is not whole sectors are errors.
    pub fn detect(path: &Path) -> Result<Self> {
        let slice = FileSlice::open(path)?;
        let len = slice.len();
        if len == 0 {
            return Err(Error::bad_input(path, "is empty (0 bytes)"));
        }
        let mut head = [0u8; 512];
        let head_len = usize::try_from(len.min(512)).unwrap_or(512);
        slice.read_exact_at(0, &mut head[..head_len])?;
        if head.starts_with(&crate::qcow2::MAGIC) {
            return Ok(ImageFormat::Qcow2);
        }
        if head.starts_with(b"KDMV") {
            return Ok(ImageFormat::Vmdk);
        }
        if head.starts_with(&[0x1f, 0x8b]) {
            return Ok(ImageFormat::GceTarGz);
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
            return Ok(ImageFormat::Ova);
        }
        if len >= 1024 {
            let mut tail = [0u8; 8];
            slice.read_exact_at(len - 512, &mut tail)?;
            if &tail == b"conectix" {
                return Ok(ImageFormat::Vhd);
            }
        }
        if len % 512 != 0 {
            return Err(Error::bad_input(
                path,
                format!(
                    "not a known image format, and as a raw disk its size {len} is not a multiple of 512"
                ),
            ));
        }
        Ok(ImageFormat::Raw)
    }

    /// Opens `path` with the reader of this format. A GCE tar.gz holds its disk compressed and
    /// cannot be read in place: it is refused here (read it with [`crate::gce::read_content`]).
    pub fn open(self, path: &Path) -> Result<Box<dyn DiskImage>> {
        Ok(match self {
            ImageFormat::Qcow2 => Box::new(Qcow2Image::open(path)?),
            ImageFormat::Vmdk => Box::new(VmdkImage::open(path)?),
            ImageFormat::Ova => Box::new(ova::open_disk(path)?),
            ImageFormat::Vhd => Box::new(VhdImage::open(path)?),
            ImageFormat::Raw => Box::new(RawImage::open(path)?),
            ImageFormat::GceTarGz => {
                return Err(Error::bad_input(
                    path,
                    format!("is a {self} file, not a disk image that can be read in place"),
                ));
            }
        })
    }
}

impl fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Detects the container of `path` and opens its reader: the image and its format.
pub fn open_image(path: &Path) -> Result<(Box<dyn DiskImage>, ImageFormat)> {
    let format = ImageFormat::detect(path)?;
    Ok((format.open(path)?, format))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for format in ImageFormat::ALL {
            assert_eq!(ImageFormat::from_name(format.as_str()), Some(format));
            assert_eq!(
                serde_json::to_string(&format).unwrap(),
                format!("\"{format}\"")
            );
        }
        assert_eq!(ImageFormat::from_name("vhdx"), None);
    }
}
