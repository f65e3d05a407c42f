//! The fixed parts of a streamOptimized VMDK: the 512-byte sparse extent header, the metadata
//! markers and the embedded text descriptor (formats.md §2.1–§2.3).

use std::path::Path;

pub use crate::bytes::{le32, le64};
use crate::error::{Error, Result};
use crate::image::SECTOR;

/// "KDMV" read as a little-endian u32.
pub const MAGIC: u32 = 0x564d_444b;
/// The header version written (ESXi refuses streamOptimized version 1).
pub const VERSION: u32 = 3;
/// Flags written: newline detection, compressed grains, markers.
pub const FLAGS: u32 = 0x0003_0001;
/// Flag bit: grains are compressed.
pub const FLAG_COMPRESSED: u32 = 1 << 16;
/// Flag bit: grains and metadata carry markers.
pub const FLAG_MARKERS: u32 = 1 << 17;
/// Sectors per grain (64 KiB grains).
pub const GRAIN_SECTORS: u64 = 128;
/// Grain table entries per grain table.
pub const GTES_PER_GT: u32 = 512;
/// Sector of the embedded descriptor.
pub const DESCRIPTOR_OFFSET: u64 = 1;
/// Sectors reserved for the embedded descriptor.
pub const DESCRIPTOR_SECTORS: u64 = 20;
/// Sector of the first grain marker.
pub const OVERHEAD: u64 = 128;
/// `gdOffset` value meaning "read the footer at the end of the file".
pub const GD_AT_END: u64 = u64::MAX;
/// `compressAlgorithm` DEFLATE (zlib streams).
pub const COMPRESS_DEFLATE: u16 = 1;
/// Metadata marker type: end of stream.
pub const MARKER_EOS: u32 = 0;
/// Metadata marker type: grain table follows.
pub const MARKER_GT: u32 = 1;
/// Metadata marker type: grain directory follows.
pub const MARKER_GD: u32 = 2;
/// Metadata marker type: footer follows.
pub const MARKER_FOOTER: u32 = 3;
/// First line every reader (libvmdk in particular) insists on.
pub const DESCRIPTOR_SIGNATURE: &str = "# Disk DescriptorFile";

/// The fields of a SparseExtentHeader (little-endian on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseHeader {
    /// Format version (1..=3).
    pub version: u32,
    /// Feature flags.
    pub flags: u32,
    /// Virtual size in sectors.
    pub capacity: u64,
    /// Sectors per grain.
    pub grain_size: u64,
    /// Sector of the embedded descriptor.
    pub descriptor_offset: u64,
    /// Sectors of the embedded descriptor.
    pub descriptor_size: u64,
    /// Entries per grain table.
    pub num_gtes_per_gt: u32,
    /// Redundant grain directory sector (unused here).
    pub rgd_offset: u64,
    /// Grain directory sector, or [`GD_AT_END`].
    pub gd_offset: u64,
    /// Sectors before the first grain.
    pub overhead: u64,
    /// Unclean-shutdown byte.
    pub unclean_shutdown: u8,
    /// Compression algorithm (1 = deflate).
    pub compress_algorithm: u16,
}

impl SparseHeader {
    /// The header this crate writes for a disk of `capacity` sectors.
    pub fn stream_optimized(capacity: u64, gd_offset: u64) -> Self {
        SparseHeader {
            version: VERSION,
            flags: FLAGS,
            capacity,
            grain_size: GRAIN_SECTORS,
            descriptor_offset: DESCRIPTOR_OFFSET,
            descriptor_size: DESCRIPTOR_SECTORS,
            num_gtes_per_gt: GTES_PER_GT,
            rgd_offset: 0,
            gd_offset,
            overhead: OVERHEAD,
            unclean_shutdown: 0,
            compress_algorithm: COMPRESS_DEFLATE,
        }
    }

    /// The 512 bytes on disk.
    pub fn encode(&self) -> [u8; 512] {
        let mut h = [0u8; 512];
        h[0..4].copy_from_slice(&MAGIC.to_le_bytes());
        h[4..8].copy_from_slice(&self.version.to_le_bytes());
        h[8..12].copy_from_slice(&self.flags.to_le_bytes());
        h[12..20].copy_from_slice(&self.capacity.to_le_bytes());
        h[20..28].copy_from_slice(&self.grain_size.to_le_bytes());
        h[28..36].copy_from_slice(&self.descriptor_offset.to_le_bytes());
        h[36..44].copy_from_slice(&self.descriptor_size.to_le_bytes());
        h[44..48].copy_from_slice(&self.num_gtes_per_gt.to_le_bytes());
        h[48..56].copy_from_slice(&self.rgd_offset.to_le_bytes());
        h[56..64].copy_from_slice(&self.gd_offset.to_le_bytes());
        h[64..72].copy_from_slice(&self.overhead.to_le_bytes());
        h[72] = self.unclean_shutdown;
        h[73..77].copy_from_slice(b"\n \r\n");
        h[77..79].copy_from_slice(&self.compress_algorithm.to_le_bytes());
        h
    }

    /// Parses and checks a header found at byte `at` of `path`.
    pub fn parse(path: &Path, at: u64, h: &[u8; 512]) -> Result<Self> {
        let magic = le32(h, 0);
        if magic != MAGIC {
            return Err(Error::corrupt(
                path,
                at,
                format!("no VMDK sparse header magic \"KDMV\" (found {magic:#010x})"),
            ));
        }
        let header = SparseHeader {
            version: le32(h, 4),
            flags: le32(h, 8),
            capacity: le64(h, 12),
            grain_size: le64(h, 20),
            descriptor_offset: le64(h, 28),
            descriptor_size: le64(h, 36),
            num_gtes_per_gt: le32(h, 44),
            rgd_offset: le64(h, 48),
            gd_offset: le64(h, 56),
            overhead: le64(h, 64),
            unclean_shutdown: h[72],
            compress_algorithm: u16::from_le_bytes([h[77], h[78]]),
        };
        if !(1..=3).contains(&header.version) {
            return Err(Error::corrupt(
                path,
                at + 4,
                format!("unsupported VMDK version {}", header.version),
            ));
        }
        if header.flags & 1 != 0 && &h[73..77] != b"\n \r\n" {
            return Err(Error::corrupt(
                path,
                at + 73,
                "newline-detection bytes damaged (file went through a text conversion)",
            ));
        }
        if header.flags & FLAG_COMPRESSED == 0 || header.compress_algorithm != COMPRESS_DEFLATE {
            return Err(Error::corrupt(
                path,
                at + 8,
                "not a streamOptimized VMDK: grains are not deflate-compressed",
            ));
        }
        if header.flags & FLAG_MARKERS == 0 {
            return Err(Error::corrupt(
                path,
                at + 8,
                "not a streamOptimized VMDK: no grain markers",
            ));
        }
        if !header.grain_size.is_power_of_two() || !(8..=2048).contains(&header.grain_size) {
            return Err(Error::corrupt(
                path,
                at + 20,
                format!("grain size {} sectors is not supported", header.grain_size),
            ));
        }
        if !(1..=65536).contains(&header.num_gtes_per_gt) {
            return Err(Error::corrupt(
                path,
                at + 44,
                format!("{} entries per grain table", header.num_gtes_per_gt),
            ));
        }
        if header.capacity.checked_mul(SECTOR).is_none() {
            return Err(Error::corrupt(
                path,
                at + 12,
                format!("capacity of {} sectors overflows", header.capacity),
            ));
        }
        Ok(header)
    }

    /// Bytes per grain.
    pub fn grain_bytes(&self) -> u64 {
        self.grain_size * SECTOR
    }

    /// Number of grains covering the capacity.
    pub fn grains(&self) -> u64 {
        self.capacity.div_ceil(self.grain_size)
    }

    /// Number of grain tables (= grain directory entries).
    pub fn grain_tables(&self) -> u64 {
        self.grains().div_ceil(u64::from(self.num_gtes_per_gt))
    }
}

/// A metadata marker sector: `numSectors`, `size = 0`, `type`.
pub fn marker(num_sectors: u64, kind: u32) -> [u8; 512] {
    let mut m = [0u8; 512];
    m[0..8].copy_from_slice(&num_sectors.to_le_bytes());
    m[12..16].copy_from_slice(&kind.to_le_bytes());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trips_and_has_the_spec_bytes() {
        let h = SparseHeader::stream_optimized(8192, GD_AT_END);
        let bytes = h.encode();
        assert_eq!(&bytes[0..4], b"KDMV");
        assert_eq!(hex::encode(&bytes[4..12]), "0300000001000300");
        assert_eq!(&bytes[73..79], b"\n \r\n\x01\x00");
        assert_eq!(
            SparseHeader::parse(Path::new("x.vmdk"), 0, &bytes).unwrap(),
            h
        );
    }

    #[test]
    fn bad_magic_version_and_flags_are_named() {
        let good = SparseHeader::stream_optimized(128, GD_AT_END).encode();
        for (at, value, needle) in [
            (0, b'X', "magic"),
            (4, 9, "version 9"),
            (10, 0, "streamOptimized"),
            (20, 3, "grain size"),
        ] {
            let mut b = good;
            b[at] = value;
            let err = SparseHeader::parse(Path::new("x.vmdk"), 0, &b)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{needle}: {err}");
        }
    }
}
