//! An image about to be booted or converted, checked with the project's own reader first: its
//! format told by the one detector (`diskimg::ImageFormat::detect`), a qcow2 refused when it has a
//! backing file (QEMU would follow it: any host file would become the guest's disk) or when
//! its tables are corrupt, so the error is the reader's, with the offset, instead of a boot
//! timeout.

use std::path::Path;

use anyhow::{Result, bail};
use diskimg::ImageFormat;
use diskimg::gpt_table::{GptRead, read_gpt};

/// Smallest raw disk worth booting: a protective MBR, a GPT and a partition.
const MIN_RAW_BOOT_SIZE: u64 = 1 << 20;

/// The format (qcow2 or raw) of the disk image `path`, after checking it with the project's
/// reader: a regular file, a readable qcow2 (no backing file, L1 and every L2 entry inside
/// the file) or a raw disk of at least 1 MiB, whose first and last sectors read (a GPT, if
/// any, is read, from the backup when the primary is damaged). Other formats are refused by
/// name.
pub fn bootable_format(path: &Path) -> Result<ImageFormat> {
    let format = ImageFormat::detect(path)?;
    let refused = match format {
        ImageFormat::Qcow2 | ImageFormat::Raw => None,
        ImageFormat::Vmdk => Some("a VMDK"),
        ImageFormat::Vhd => Some("a VHD"),
        ImageFormat::Ova => Some("an OVA"),
        ImageFormat::GceTarGz => Some("a GCE disk.raw tar.gz (unpack it first)"),
    };
    if let Some(what) = refused {
        bail!(
            "{}: is {what}, not a qcow2 or raw disk image",
            path.display()
        );
    }
    let mut image = format.open(path)?;
    if format == ImageFormat::Raw && image.virtual_size() < MIN_RAW_BOOT_SIZE {
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
    Ok(format)
}
