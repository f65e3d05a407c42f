//! Finding and opening the root filesystem of a disk image without booting or mounting it:
//! detect the container, read the GPT, pick the Linux partition that holds ext4.

use std::path::Path;

use crate::error::{Error, Result};
use crate::ext4::{EXT4_MAGIC, Ext4};
use crate::format::{ImageFormat, open_image};
use crate::gpt_table::{GptRead, PartitionInfo, read_gpt};

/// GPT type of a Linux root partition (x86-64).
pub const LINUX_ROOT_X86_64: &str = "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709";
/// GPT type of Linux filesystem data.
pub const LINUX_FS_DATA: &str = "0FC63DAF-8483-4772-8E79-3D69D8477DE4";

/// The root filesystem of a disk image, opened read-only.
#[derive(Debug)]
pub struct RootFs {
    /// The filesystem.
    pub fs: Ext4,
    /// The GPT partition it was found in.
    pub partition: PartitionInfo,
    /// The container format of the image (`raw`, `qcow2`, …).
    pub format: ImageFormat,
}

/// Opens the root filesystem of the disk image `path`: among the GPT partitions typed Linux
/// root (x86-64) or Linux filesystem data, the one carrying the ext4 magic (the largest when
/// several do). A damaged primary GPT header is logged and the backup used. Errors name the
/// file: no GPT, a damaged or invalid partition table, no Linux partition, or a Linux partition that is
/// not ext4 (with the magic found), or a corrupt or unsupported ext4.
pub fn open_root_fs(path: &Path) -> Result<RootFs> {
    let (mut image, format) = open_image(path)?;
    let bad = |reason: String| Error::bad_input(path, reason);
    let gpt = match read_gpt(image.as_mut())? {
        GptRead::Absent => {
            return Err(bad(format!(
                "no GPT (no valid partition table in this {format} disk)"
            )));
        }
        GptRead::Damaged(why) => return Err(bad(format!("damaged GPT: {why}"))),
        GptRead::Found(gpt) => gpt,
    };
    if !gpt.faults.is_empty() {
        return Err(bad(format!(
            "invalid partition table: {}",
            gpt.faults.join("; ")
        )));
    }
    if let Some(damage) = &gpt.primary_damage {
        tracing::warn!("{}: {damage}", path.display());
    }
    let mut linux: Vec<PartitionInfo> = gpt
        .partitions
        .into_iter()
        .filter(|p| {
            let t = p.type_guid.to_ascii_uppercase();
            t == LINUX_ROOT_X86_64 || t == LINUX_FS_DATA
        })
        .collect();
    if linux.is_empty() {
        return Err(bad(
            "no Linux partition (none typed Linux root x86-64 or Linux filesystem data)".into(),
        ));
    }
    // Largest first; on equal sizes the lower number wins.
    linux.sort_by(|a, b| b.size.cmp(&a.size).then(a.number.cmp(&b.number)));
    let mut not_ext4 = Vec::new();
    let mut chosen = None;
    for p in linux {
        let offset = p.first_lba.saturating_mul(512);
        let mut magic = [0u8; 2];
        let readable = p.size >= 2048 && image.read_at(offset + 1024 + 0x38, &mut magic).is_ok();
        let found = u16::from_le_bytes(magic);
        if readable && found == EXT4_MAGIC {
            chosen = Some(p);
            break;
        }
        not_ext4.push(if readable {
            format!(
                "partition {} is not ext4 (found magic {found:#06x})",
                p.number
            )
        } else {
            format!("partition {} is not ext4 (unreadable superblock)", p.number)
        });
    }
    let Some(partition) = chosen else {
        return Err(bad(not_ext4.join("; ")));
    };
    tracing::debug!(
        "{}: root filesystem in partition {} ({} bytes)",
        path.display(),
        partition.number,
        partition.size
    );
    let fs = Ext4::open(
        image,
        path,
        partition.first_lba.saturating_mul(512),
        partition.size,
    )?;
    Ok(RootFs {
        fs,
        partition,
        format,
    })
}
