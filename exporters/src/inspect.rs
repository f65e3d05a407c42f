//! `nodeimg inspect FILE`: what a disk image is — format, virtual size, allocation, and its GPT.

use std::os::unix::fs::MetadataExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use gpt::GptConfig;
use gpt::disk::LogicalBlockSize;
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::formats::{gce, ova, qcow2::Qcow2Image, vmdk::VmdkImage};
use crate::image::{DiskImage, FileSlice, ImageDevice, RawImage, VhdImage, check_gpt_header};

/// What `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The file.
    pub path: PathBuf,
    /// Detected container: raw, qcow2, vhd, vmdk, ova, tar.gz.
    pub format: &'static str,
    /// Size of the disk inside.
    pub virtual_size: u64,
    /// Size of the file.
    pub file_size: u64,
    /// Bytes the file occupies on disk.
    pub allocated_bytes: u64,
    /// The GPT, when there is one.
    pub gpt: Option<GptInfo>,
}

/// A GUID partition table.
#[derive(Debug, Clone, Serialize)]
pub struct GptInfo {
    /// Disk GUID.
    pub disk_guid: String,
    /// First usable LBA.
    pub first_usable_lba: u64,
    /// Last usable LBA.
    pub last_usable_lba: u64,
    /// LBA of the backup header as the primary header records it.
    pub backup_lba: u64,
    /// Partitions, by number.
    pub partitions: Vec<PartitionInfo>,
}

/// One GPT partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionInfo {
    /// Partition number (1-based).
    pub number: u32,
    /// Partition name.
    pub name: String,
    /// Type GUID.
    pub type_guid: String,
    /// Partition GUID.
    pub guid: String,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Size in bytes.
    pub size: u64,
}

/// Detects the container of `path` by its magic numbers.
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

/// Inspects `path`.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let format = detect(path)?;
    let meta = std::fs::metadata(path).at("reading metadata of", path)?;
    let mut image: Box<dyn DiskImage> = match format {
        "qcow2" => Box::new(Qcow2Image::open(path)?),
        "vmdk" => Box::new(VmdkImage::open(path)?),
        "ova" => Box::new(ova::open_disk(path)?),
        "vhd" => Box::new(VhdImage::open(path)?),
        "tar.gz" => {
            let content = gce::read_content(path, &mut |_| {})?;
            return Ok(Inspection {
                path: path.to_path_buf(),
                format,
                virtual_size: content.virtual_size,
                file_size: meta.len(),
                allocated_bytes: meta.blocks() * 512,
                gpt: None,
            });
        }
        _ => Box::new(RawImage::open(path)?),
    };
    let gpt = read_gpt(image.as_mut());
    Ok(Inspection {
        path: path.to_path_buf(),
        format,
        virtual_size: image.virtual_size(),
        file_size: meta.len(),
        allocated_bytes: meta.blocks() * 512,
        gpt,
    })
}

/// The GPT of `image`, or `None` when it has none (or an unreadable one).
pub fn read_gpt(image: &mut dyn DiskImage) -> Option<GptInfo> {
    let mut header = [0u8; 92];
    if image.virtual_size() < 1024
        || image.read_at(512, &mut header).is_err()
        || check_gpt_header(&header, image.virtual_size()).is_err()
    {
        return None;
    }
    // The gpt crate asserts on some malformed tables; treat a panic as "no readable GPT".
    catch_unwind(AssertUnwindSafe(|| {
        let disk = GptConfig::new()
            .writable(false)
            .logical_block_size(LogicalBlockSize::Lb512)
            .open_from_device(ImageDevice::new(image))
            .ok()?;
        let header = disk.primary_header().ok()?;
        let partitions = disk
            .partitions()
            .iter()
            .map(|(number, p)| PartitionInfo {
                number: *number,
                name: p.name.clone(),
                type_guid: p.part_type_guid.guid.to_string(),
                guid: p.part_guid.to_string(),
                first_lba: p.first_lba,
                last_lba: p.last_lba,
                size: (p.last_lba + 1).saturating_sub(p.first_lba) * 512,
            })
            .collect();
        Some(GptInfo {
            disk_guid: disk.guid().to_string(),
            first_usable_lba: header.first_usable,
            last_usable_lba: header.last_usable,
            backup_lba: header.backup_lba,
            partitions,
        })
    }))
    .ok()
    .flatten()
}
