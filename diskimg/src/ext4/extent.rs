//! Mapping a file's logical blocks to disk blocks: extent trees (any depth) and the old
//! direct/indirect block maps. Every node read is bounded: depth, node count and run count.

use super::Ext4;
use super::inode::{FLAG_EXTENTS, FLAG_INLINE_DATA, Inode};
use crate::bytes::{le16, le32};
use crate::error::Result;

/// Extent header magic.
const EXTENT_MAGIC: u16 = 0xF30A;
/// Deepest extent tree accepted (ext4 itself never builds more than 5 levels).
const MAX_DEPTH: u16 = 5;
/// Most tree nodes or indirect blocks read to map one file.
const MAX_NODES: usize = 1 << 16;
/// Most runs returned for one file.
const MAX_RUNS: usize = 1 << 20;

/// A run of contiguous blocks of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First logical block in the file.
    pub logical: u64,
    /// First block on disk.
    pub physical: u64,
    /// Number of blocks.
    pub len: u64,
    /// An unwritten (preallocated) extent: reads as zeros.
    pub uninit: bool,
}

/// State of one mapping walk.
struct Walk {
    /// Only blocks below this logical block are wanted.
    limit: u64,
    nodes: usize,
    runs: Vec<Run>,
}

impl Ext4 {
    /// The runs of `inode` that cover logical blocks below `limit`, in logical order (holes
    /// are simply absent).
    pub(crate) fn map_blocks(&mut self, inode: &Inode, limit: u64) -> Result<Vec<Run>> {
        if inode.flags & FLAG_INLINE_DATA != 0 {
            return Err(self.fail(format!(
                "inode {} stores its data inline (inline_data is not supported)",
                inode.ino
            )));
        }
        let mut walk = Walk {
            limit,
            nodes: 0,
            runs: Vec::new(),
        };
        if inode.flags & FLAG_EXTENTS != 0 {
            let root = inode.block;
            self.extent_node(inode.ino, &root, MAX_DEPTH + 1, &mut walk)?;
        } else {
            self.block_map(inode, &mut walk)?;
        }
        let mut runs = walk.runs;
        runs.sort_by_key(|r| r.logical);
        Ok(runs)
    }

    /// Counts one more node of inode `ino`'s `tree` read; past [`MAX_NODES`] the walk fails
    /// with "`tree` has more than MAX_NODES `nodes`" (a corrupt tree that loops or fans out
    /// without end).
    fn count_node(&self, walk: &mut Walk, ino: u32, tree: &str, nodes: &str) -> Result<()> {
        walk.nodes += 1;
        if walk.nodes > MAX_NODES {
            return Err(self.fail(format!(
                "inode {ino}: {tree} has more than {MAX_NODES} {nodes}"
            )));
        }
        Ok(())
    }

    /// Walks one extent tree node (`node` holds the header and entries).
    fn extent_node(
        &mut self,
        ino: u32,
        node: &[u8],
        parent_depth: u16,
        walk: &mut Walk,
    ) -> Result<()> {
        self.count_node(walk, ino, "extent tree", "nodes")?;
        let magic = le16(node, 0);
        let entries = usize::from(le16(node, 2));
        let depth = le16(node, 6);
        if magic != EXTENT_MAGIC {
            return Err(self.fail(format!("inode {ino}: bad extent header magic {magic:#06x}")));
        }
        // Each level must be shallower than its parent: this also rules out cycles.
        if depth >= parent_depth || depth > MAX_DEPTH {
            return Err(self.fail(format!("inode {ino}: extent tree depth {depth} is invalid")));
        }
        if 12 + entries * 12 > node.len() {
            return Err(self.fail(format!(
                "inode {ino}: extent node claims {entries} entries, more than fit"
            )));
        }
        for i in 0..entries {
            let e = &node[12 + i * 12..24 + i * 12];
            let logical = u64::from(le32(e, 0));
            if logical >= walk.limit {
                break;
            }
            if depth == 0 {
                let raw_len = le16(e, 4);
                let (len, uninit) = if raw_len > 32768 {
                    (u64::from(raw_len - 32768), true)
                } else {
                    (u64::from(raw_len), false)
                };
                let physical = u64::from(le32(e, 8)) | (u64::from(le16(e, 6)) << 32);
                if len == 0 {
                    continue;
                }
                self.check_run(ino, physical, len)?;
                if walk.runs.len() >= MAX_RUNS {
                    return Err(self.fail(format!("inode {ino}: more than {MAX_RUNS} extents")));
                }
                walk.runs.push(Run {
                    logical,
                    physical,
                    len,
                    uninit,
                });
            } else {
                let child = u64::from(le32(e, 4)) | (u64::from(le16(e, 8)) << 32);
                let block = self.read_block(child)?;
                self.extent_node(ino, &block, depth, walk)?;
            }
        }
        Ok(())
    }

    /// Walks a classic block map: 12 direct pointers, then single, double and triple indirect.
    fn block_map(&mut self, inode: &Inode, walk: &mut Walk) -> Result<()> {
        let ptrs: Vec<u64> = (0..15)
            .map(|i| u64::from(le32(&inode.block, i * 4)))
            .collect();
        let per_block = self.sb.block_size / 4;
        for (i, &p) in ptrs.iter().take(12).enumerate() {
            let logical = u64::try_from(i).unwrap_or(u64::MAX);
            if logical < walk.limit && p != 0 {
                self.push_block(inode.ino, logical, p, walk)?;
            }
        }
        let mut base = 12u64;
        let mut span = per_block;
        for (level, &p) in ptrs[12..].iter().enumerate() {
            if base >= walk.limit {
                break;
            }
            if p != 0 {
                self.indirect(inode.ino, p, u32::try_from(level).unwrap_or(2), base, walk)?;
            }
            base = base.saturating_add(span);
            span = span.saturating_mul(per_block);
        }
        Ok(())
    }

    /// One indirect block at `level` (0 = single) whose first pointer maps logical `base`.
    fn indirect(
        &mut self,
        ino: u32,
        block: u64,
        level: u32,
        base: u64,
        walk: &mut Walk,
    ) -> Result<()> {
        self.count_node(walk, ino, "block map", "indirect blocks")?;
        let data = self.read_block(block)?;
        let per_block = self.sb.block_size / 4;
        let child_span = per_block.saturating_pow(level);
        for (i, chunk) in data.chunks_exact(4).enumerate() {
            let p = u64::from(le32(chunk, 0));
            let first = base.saturating_add(
                u64::try_from(i)
                    .unwrap_or(u64::MAX)
                    .saturating_mul(child_span),
            );
            if first >= walk.limit {
                break;
            }
            if p == 0 {
                continue;
            }
            if level == 0 {
                self.push_block(ino, first, p, walk)?;
            } else {
                self.indirect(ino, p, level - 1, first, walk)?;
            }
        }
        Ok(())
    }

    /// Adds one mapped block, merging it into the previous run when contiguous.
    fn push_block(&mut self, ino: u32, logical: u64, physical: u64, walk: &mut Walk) -> Result<()> {
        self.check_run(ino, physical, 1)?;
        if let Some(last) = walk.runs.last_mut()
            && last.logical + last.len == logical
            && last.physical + last.len == physical
        {
            last.len += 1;
            return Ok(());
        }
        if walk.runs.len() >= MAX_RUNS {
            return Err(self.fail(format!("inode {ino}: more than {MAX_RUNS} mapped runs")));
        }
        walk.runs.push(Run {
            logical,
            physical,
            len: 1,
            uninit: false,
        });
        Ok(())
    }

    /// Checks that `len` blocks from `physical` lie inside the filesystem.
    fn check_run(&self, ino: u32, physical: u64, len: u64) -> Result<()> {
        if physical
            .checked_add(len)
            .is_none_or(|end| end > self.sb.blocks_count)
            || physical < self.sb.first_data_block
        {
            return Err(self.fail(format!(
                "inode {ino}: data blocks {physical}+{len} lie outside the filesystem ({} blocks)",
                self.sb.blocks_count
            )));
        }
        Ok(())
    }
}
