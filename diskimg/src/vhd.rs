//! Fixed VHD (Azure): the raw disk followed by one 512-byte footer. The footer layout (written
//! by the exporters' VHD writer, parsed here) and the reader.

use std::path::Path;

use crate::error::{Error, Result};
use crate::image::{DiskImage, FileSlice};

/// Seconds between the Unix epoch and the VHD epoch (2000-01-01T00:00:00Z).
pub const VHD_EPOCH: u64 = 946_684_800;
/// Footer size.
pub const FOOTER_LEN: usize = 512;
/// Disk type "fixed".
pub const DISK_TYPE_FIXED: u32 = 2;

/// The 512-byte footer of a fixed VHD of `size` bytes (qemu `force_size` style).
pub fn fixed_footer(size: u64, timestamp: u32, uuid: [u8; 16]) -> [u8; FOOTER_LEN] {
    let mut f = [0u8; FOOTER_LEN];
    f[0..8].copy_from_slice(b"conectix");
    f[8..12].copy_from_slice(&2u32.to_be_bytes());
    f[12..16].copy_from_slice(&0x0001_0000u32.to_be_bytes());
    f[16..24].copy_from_slice(&u64::MAX.to_be_bytes());
    f[24..28].copy_from_slice(&timestamp.to_be_bytes());
    f[28..32].copy_from_slice(b"qem2");
    f[32..36].copy_from_slice(&0x0005_0003u32.to_be_bytes());
    f[36..40].copy_from_slice(b"Wi2k");
    f[40..48].copy_from_slice(&size.to_be_bytes());
    f[48..56].copy_from_slice(&size.to_be_bytes());
    f[56..58].copy_from_slice(&65535u16.to_be_bytes());
    f[58] = 16;
    f[59] = 255;
    f[60..64].copy_from_slice(&DISK_TYPE_FIXED.to_be_bytes());
    f[68..84].copy_from_slice(&uuid);
    let sum = footer_checksum(&f);
    f[64..68].copy_from_slice(&sum.to_be_bytes());
    f
}

/// One's complement of the byte sum, with the checksum field counted as zero.
pub fn footer_checksum(footer: &[u8; FOOTER_LEN]) -> u32 {
    let sum = footer
        .iter()
        .enumerate()
        .filter(|(i, _)| !(64..68).contains(i))
        .fold(0u32, |acc, (_, &b)| acc.wrapping_add(u32::from(b)));
    !sum
}

/// A parsed fixed-VHD footer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhdFooter {
    /// Current (virtual) size in bytes.
    pub current_size: u64,
    /// Disk type (2 fixed, 3 dynamic, 4 differencing).
    pub disk_type: u32,
    /// Creator application.
    pub creator: [u8; 4],
    /// Unique id.
    pub uuid: [u8; 16],
}

/// Parses and checks the footer of a VHD file of `file_size` bytes.
pub fn parse_footer(
    path: &std::path::Path,
    footer: &[u8; FOOTER_LEN],
    file_size: u64,
) -> Result<VhdFooter> {
    let at = file_size.saturating_sub(512);
    if &footer[0..8] != b"conectix" {
        return Err(Error::corrupt(
            path,
            at,
            "no VHD footer cookie \"conectix\"",
        ));
    }
    let stored = u32::from_be_bytes([footer[64], footer[65], footer[66], footer[67]]);
    let computed = footer_checksum(footer);
    if stored != computed {
        return Err(Error::corrupt(
            path,
            at + 64,
            format!("footer checksum {stored:#010x}, computed {computed:#010x}"),
        ));
    }
    let be64 =
        |r: std::ops::Range<usize>| u64::from_be_bytes(footer[r].try_into().unwrap_or([0; 8]));
    let disk_type = u32::from_be_bytes([footer[60], footer[61], footer[62], footer[63]]);
    let current_size = be64(48..56);
    if disk_type != DISK_TYPE_FIXED {
        return Err(Error::corrupt(
            path,
            at + 60,
            format!("disk type {disk_type}, only fixed (2) is supported"),
        ));
    }
    if current_size.checked_add(512) != Some(file_size) {
        return Err(Error::corrupt(
            path,
            at + 48,
            format!(
                "footer says {current_size} bytes but the file holds {} before the footer",
                file_size.saturating_sub(512)
            ),
        ));
    }
    let mut creator = [0u8; 4];
    creator.copy_from_slice(&footer[28..32]);
    let mut uuid = [0u8; 16];
    uuid.copy_from_slice(&footer[68..84]);
    Ok(VhdFooter {
        current_size,
        disk_type,
        creator,
        uuid,
    })
}

/// A fixed VHD: the disk followed by a 512-byte footer.
#[derive(Debug)]
pub struct VhdImage {
    slice: FileSlice,
    footer: VhdFooter,
}

impl VhdImage {
    /// Opens and checks a fixed VHD.
    pub fn open(path: &Path) -> Result<Self> {
        let slice = FileSlice::open(path)?;
        if slice.len() < 512 {
            return Err(Error::corrupt(path, 0, "shorter than a VHD footer"));
        }
        let mut footer = [0u8; 512];
        slice.read_exact_at(slice.len() - 512, &mut footer)?;
        let footer = parse_footer(path, &footer, slice.len())?;
        Ok(VhdImage { slice, footer })
    }

    /// The parsed footer.
    pub fn footer(&self) -> &VhdFooter {
        &self.footer
    }
}

impl DiskImage for VhdImage {
    fn virtual_size(&self) -> u64 {
        self.footer.current_size
    }
    fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<()> {
        let len = u64::try_from(buf.len()).unwrap_or(u64::MAX);
        if offset
            .checked_add(len)
            .is_none_or(|e| e > self.footer.current_size)
        {
            return Err(Error::corrupt(
                self.slice.path(),
                offset,
                "read past the end of the virtual disk",
            ));
        }
        self.slice.read_exact_at(offset, buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_matches_qemu_force_size_layout() {
        let f = fixed_footer(4 << 20, 0x1234_5678, [7; 16]);
        // Bytes as qemu writes them for a 4 MiB disk (formats.md §1.2), timestamp and ids aside.
        assert_eq!(&f[0..8], b"conectix");
        assert_eq!(hex::encode(&f[8..24]), "0000000200010000ffffffffffffffff");
        assert_eq!(
            hex::encode(&f[28..64]),
            "71656d32000500035769326b00000000004000000000000000400000ffff10ff00000002"
        );
        let parsed = parse_footer(std::path::Path::new("x.vhd"), &f, (4 << 20) + 512).unwrap();
        assert_eq!(parsed.current_size, 4 << 20);
    }

    #[test]
    fn a_flipped_footer_byte_fails_the_checksum() {
        let mut f = fixed_footer(1 << 20, 1, [1; 16]);
        f[100] ^= 1;
        let err = parse_footer(std::path::Path::new("x.vhd"), &f, (1 << 20) + 512).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");
    }
}
