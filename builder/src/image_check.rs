//! An image about to be booted or converted, checked with the project's own reader first: its
//! format told by the one detector (`exporters::reader`), a qcow2 refused when it has a
//! backing file (QEMU would follow it: any host file would become the guest's disk) or when
//! its tables are corrupt, so the error is the reader's, with the offset, instead of a boot
//! timeout.

use std::path::Path;

use anyhow::{Result, bail};
use exporters::gpt_table::{GptRead, read_gpt};
use qemu::cmdline::DiskFormat;

/// Smallest raw disk worth booting: a protective MBR, a GPT and a partition.
const MIN_RAW_BOOT_SIZE: u64 = 1 << 20;

/// The format (qcow2 or raw) of the disk image `path`, after checking it with the project's
/// reader: a regular file, a readable qcow2 (no backing file, L1 and every L2 entry inside
/// the file) or a raw disk of at least 1 MiB, whose first and last sectors read (a GPT, if
/// any, is read, from the backup when the primary is damaged). Other formats are refused by
/// name.
pub fn bootable_format(path: &Path) -> Result<DiskFormat> {
    let format = exporters::reader::detect(path)?;
    let disk_format = match format {
        "qcow2" => DiskFormat::Qcow2,
        "raw" => DiskFormat::Raw,
        other => {
            let what = match other {
                "vmdk" => "a VMDK",
                "vhd" => "a VHD",
                "ova" => "an OVA",
                "tar.gz" => "a GCE disk.raw tar.gz (unpack it first)",
                _ => "an unsupported image",
            };
            bail!(
                "{}: is {what}, not a qcow2 or raw disk image",
                path.display()
            );
        }
    };
    let mut image = exporters::reader::open_as(path, format)?;
    if disk_format == DiskFormat::Raw && image.virtual_size() < MIN_RAW_BOOT_SIZE {
        bail!(
            "{}: is {} bytes: too small to be a bootable raw disk image",
            path.display(),
            image.virtual_size()
        );
    }
    image.check_mappings()?;
    if let GptRead::Found(gpt) = read_gpt(image.as_mut())?
        && let Some(damage) = &gpt.primary_damage
    {
        tracing::warn!("{}: {damage}", path.display());
    }
    Ok(disk_format)
}
