//! The ext4 superblock: the fields the reader needs, checked against the partition.

use super::crc32c::crc32c_raw;
use crate::bytes::{le16, le32};

/// Byte offset of the superblock inside the filesystem.
pub(crate) const SUPERBLOCK_OFFSET: u64 = 1024;
/// Size of the on-disk superblock.
pub(crate) const SUPERBLOCK_SIZE: usize = 1024;
/// `s_magic`.
pub const EXT4_MAGIC: u16 = 0xEF53;

/// Incompatible features (`s_feature_incompat`).
mod incompat {
    pub const COMPRESSION: u32 = 0x1;
    pub const FILETYPE: u32 = 0x2;
    pub const RECOVER: u32 = 0x4;
    pub const JOURNAL_DEV: u32 = 0x8;
    pub const META_BG: u32 = 0x10;
    pub const EXTENTS: u32 = 0x40;
    pub const BIT64: u32 = 0x80;
    pub const MMP: u32 = 0x100;
    pub const FLEX_BG: u32 = 0x200;
    pub const EA_INODE: u32 = 0x400;
    pub const DIRDATA: u32 = 0x1000;
    pub const CSUM_SEED: u32 = 0x2000;
    pub const LARGEDIR: u32 = 0x4000;
    pub const INLINE_DATA: u32 = 0x8000;
    pub const ENCRYPT: u32 = 0x10000;
    pub const CASEFOLD: u32 = 0x20000;
}

/// `s_feature_ro_compat` bit for metadata checksums.
const RO_COMPAT_METADATA_CSUM: u32 = 0x400;

/// Incompatible features this reader understands (reading only).
const SUPPORTED_INCOMPAT: u32 = incompat::FILETYPE
    | incompat::RECOVER
    | incompat::EXTENTS
    | incompat::BIT64
    | incompat::MMP
    | incompat::FLEX_BG
    | incompat::EA_INODE
    | incompat::CSUM_SEED
    | incompat::LARGEDIR
    | incompat::CASEFOLD;

/// Names of incompatible features, for refusals.
const INCOMPAT_NAMES: &[(u32, &str)] = &[
    (incompat::COMPRESSION, "compression"),
    (incompat::FILETYPE, "filetype"),
    (incompat::RECOVER, "needs_recovery"),
    (incompat::JOURNAL_DEV, "journal_dev"),
    (incompat::META_BG, "meta_bg"),
    (incompat::EXTENTS, "extent"),
    (incompat::BIT64, "64bit"),
    (incompat::MMP, "mmp"),
    (incompat::FLEX_BG, "flex_bg"),
    (incompat::EA_INODE, "ea_inode"),
    (incompat::DIRDATA, "dirdata"),
    (incompat::CSUM_SEED, "metadata_csum_seed"),
    (incompat::LARGEDIR, "large_dir"),
    (incompat::INLINE_DATA, "inline_data"),
    (incompat::ENCRYPT, "encrypt"),
    (incompat::CASEFOLD, "casefold"),
];

/// The checked superblock fields.
#[derive(Debug, Clone)]
pub struct Superblock {
    /// Block size in bytes (1 KiB to 64 KiB).
    pub block_size: u64,
    /// Total blocks.
    pub blocks_count: u64,
    /// Total inodes.
    pub inodes_count: u32,
    /// First data block (1 for 1 KiB blocks, else 0).
    pub first_data_block: u64,
    /// Blocks per group.
    pub blocks_per_group: u64,
    /// Inodes per group.
    pub inodes_per_group: u32,
    /// On-disk inode size.
    pub inode_size: u16,
    /// Group descriptor size (32, or 64 and up with 64bit).
    pub desc_size: u16,
    /// Number of block groups.
    pub group_count: u64,
    /// `s_feature_incompat`.
    pub feature_incompat: u32,
    /// `s_feature_ro_compat`.
    pub feature_ro_compat: u32,
    /// The volume label.
    pub label: String,
}

impl Superblock {
    /// Whether directory entries carry a file type byte.
    pub fn has_filetype(&self) -> bool {
        self.feature_incompat & incompat::FILETYPE != 0
    }

    /// Whether the journal holds transactions not yet replayed.
    pub fn needs_recovery(&self) -> bool {
        self.feature_incompat & incompat::RECOVER != 0
    }

    /// Whether metadata checksums are enabled.
    pub fn has_metadata_csum(&self) -> bool {
        self.feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0
    }

    /// Whether group descriptors can be 64 bytes and more.
    pub fn is_64bit(&self) -> bool {
        self.feature_incompat & incompat::BIT64 != 0
    }
}

/// Parses and checks `raw` (the 1024 bytes at offset 1024 of a filesystem of `fs_len` bytes).
/// The error says what is wrong, in words.
pub(crate) fn parse(raw: &[u8; SUPERBLOCK_SIZE], fs_len: u64) -> Result<Superblock, String> {
    let magic = le16(raw, 0x38);
    if magic != EXT4_MAGIC {
        return Err(format!(
            "no ext2/3/4 superblock (magic {magic:#06x}, expected {EXT4_MAGIC:#06x})"
        ));
    }
    let feature_incompat = le32(raw, 0x60);
    let feature_ro_compat = le32(raw, 0x64);
    if feature_ro_compat & RO_COMPAT_METADATA_CSUM != 0 {
        let stored = le32(raw, 0x3FC);
        let computed = crc32c_raw(!0, &raw[..0x3FC]);
        if stored != computed {
            return Err(format!(
                "superblock checksum mismatch (stored {stored:#010x}, computed {computed:#010x})"
            ));
        }
    }
    let unsupported = feature_incompat & !SUPPORTED_INCOMPAT;
    if unsupported != 0 {
        let mut names: Vec<String> = INCOMPAT_NAMES
            .iter()
            .filter(|(bit, _)| unsupported & bit != 0)
            .map(|(_, name)| (*name).to_string())
            .collect();
        let unknown = unsupported & !INCOMPAT_NAMES.iter().fold(0, |a, (b, _)| a | b);
        if unknown != 0 {
            names.push(format!("unknown bits {unknown:#x}"));
        }
        return Err(format!(
            "unsupported ext4 incompatible features: {}",
            names.join(", ")
        ));
    }
    let log = le32(raw, 0x18);
    if log > 6 {
        return Err(format!(
            "block size 2^(10+{log}) is not between 1 KiB and 64 KiB"
        ));
    }
    let block_size = 1024u64 << log;
    let blocks_lo = u64::from(le32(raw, 0x4));
    let blocks_hi = if feature_incompat & incompat::BIT64 != 0 {
        u64::from(le32(raw, 0x150))
    } else {
        0
    };
    let blocks_count = blocks_lo | (blocks_hi << 32);
    let fs_blocks = fs_len / block_size;
    if blocks_count == 0 || blocks_count > fs_blocks {
        return Err(format!(
            "block count {blocks_count} does not fit the partition ({fs_blocks} blocks of {block_size} bytes)"
        ));
    }
    let first_data_block = u64::from(le32(raw, 0x14));
    if first_data_block >= blocks_count || first_data_block > 1 {
        return Err(format!("first data block {first_data_block} is invalid"));
    }
    let blocks_per_group = u64::from(le32(raw, 0x20));
    if blocks_per_group == 0 || blocks_per_group > 8 * block_size {
        return Err(format!(
            "{blocks_per_group} blocks per group (1 to {} expected)",
            8 * block_size
        ));
    }
    let inodes_per_group = le32(raw, 0x28);
    if inodes_per_group == 0 || u64::from(inodes_per_group) > 8 * block_size {
        return Err(format!("{inodes_per_group} inodes per group is invalid"));
    }
    let inodes_count = le32(raw, 0x0);
    let rev_level = le32(raw, 0x4C);
    let inode_size = if rev_level == 0 { 128 } else { le16(raw, 0x58) };
    if inode_size < 128 || !inode_size.is_power_of_two() || u64::from(inode_size) > block_size {
        return Err(format!(
            "inode size {inode_size} is invalid (a power of two from 128 to the block size)"
        ));
    }
    let desc_size = if feature_incompat & incompat::BIT64 != 0 {
        le16(raw, 0xFE)
    } else {
        32
    };
    if desc_size < 32 || !desc_size.is_power_of_two() || u64::from(desc_size) > block_size {
        return Err(format!("group descriptor size {desc_size} is invalid"));
    }
    let group_count = (blocks_count - first_data_block).div_ceil(blocks_per_group);
    // The descriptor table must fit in the filesystem.
    if group_count
        .checked_mul(u64::from(desc_size))
        .is_none_or(|bytes| bytes > fs_len)
    {
        return Err(format!(
            "{group_count} block groups do not fit the partition"
        ));
    }
    if u64::from(inodes_count) > group_count.saturating_mul(u64::from(inodes_per_group)) {
        return Err(format!(
            "{inodes_count} inodes exceed {group_count} groups of {inodes_per_group}"
        ));
    }
    let label_raw = &raw[0x78..0x88];
    let label_end = label_raw.iter().position(|&b| b == 0).unwrap_or(16);
    let label = String::from_utf8_lossy(&label_raw[..label_end]).into_owned();
    Ok(Superblock {
        block_size,
        blocks_count,
        inodes_count,
        first_data_block,
        blocks_per_group,
        inodes_per_group,
        inode_size,
        desc_size,
        group_count,
        feature_incompat,
        feature_ro_compat,
        label,
    })
}
