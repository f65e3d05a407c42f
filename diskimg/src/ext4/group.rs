//! Block group descriptors: where each group's inode table is.

use super::Ext4;
use crate::bytes::le32;
use crate::error::Result;

impl Ext4 {
    /// The first block of the inode table of `group`.
    pub(crate) fn inode_table_block(&mut self, group: u64) -> Result<u64> {
        let sb = self.sb.clone();
        if group >= sb.group_count {
            return Err(self.fail(format!(
                "block group {group} out of range ({} groups)",
                sb.group_count
            )));
        }
        let desc_size = u64::from(sb.desc_size);
        // The descriptor table starts in the block after the superblock's.
        let table = (sb.first_data_block + 1) * sb.block_size;
        let at = table + group * desc_size;
        let mut desc = vec![0u8; usize::from(sb.desc_size)];
        self.read_fs(at, &mut desc)?;
        let lo = u64::from(le32(&desc, 0x8));
        let hi = if sb.is_64bit() && desc_size >= 64 {
            u64::from(le32(&desc, 0x28))
        } else {
            0
        };
        let block = lo | (hi << 32);
        let table_blocks =
            (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size)).div_ceil(sb.block_size);
        if block == 0
            || block
                .checked_add(table_blocks)
                .is_none_or(|end| end > sb.blocks_count)
        {
            return Err(self.fail(format!(
                "group {group}: inode table at block {block} lies outside the filesystem"
            )));
        }
        Ok(block)
    }
}
