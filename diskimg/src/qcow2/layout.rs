//! Writer-side layout arithmetic for the fixed qcow2 shape we emit: v3, 64 KiB clusters,
//! 16-bit refcounts, a 104-byte header plus the end-of-extensions marker.

use super::{
    CLUSTER_BITS, CLUSTER_SIZE, HEADER_LENGTH, L2_ENTRIES, MAGIC, OFFSET_MASK, OFLAG_COMPRESSED,
    REFCOUNT_ORDER,
};

/// Refcount entries in one refcount block: 64 KiB of 16-bit counters.
pub const REFCOUNTS_PER_BLOCK: u64 = CLUSTER_SIZE * 8 / (1 << REFCOUNT_ORDER);
/// Refcount-table entries (u64 block offsets) in one cluster.
pub const RT_ENTRIES_PER_CLUSTER: u64 = CLUSTER_SIZE / 8;
/// Bit where the "additional sectors" field of a compressed L2 entry starts (54).
pub const COMPRESSED_SHIFT: u32 = 62 - (CLUSTER_BITS - 8);
/// Largest host byte offset a compressed L2 entry can hold.
pub const COMPRESSED_OFFSET_MASK: u64 = (1 << COMPRESSED_SHIFT) - 1;
/// Largest L1 table qemu opens (`QCOW_MAX_L1_SIZE`, 32 MiB) in entries.
pub const MAX_L1_ENTRIES: u64 = (32 << 20) / 8;
/// Bytes written for the header: the 104-byte header and an 8-byte end-of-extensions marker.
pub const HEADER_BYTES: usize = 112;

/// L1 entries needed for a disk of `virtual_size` bytes.
pub fn l1_entries(virtual_size: u64) -> u64 {
    virtual_size.div_ceil(CLUSTER_SIZE).div_ceil(L2_ENTRIES)
}

/// `(refcount table clusters, refcount block count)` covering `used` clusters plus the
/// refcount clusters themselves: the smallest fixpoint of
/// `rb = ceil((used + rt + rb) / 32768)`, `rt = ceil(rb * 8 / 65536)`.
pub fn refcount_clusters(used: u64) -> (u64, u64) {
    let (mut rt, mut rb) = (0u64, 0u64);
    loop {
        let total = used + rt + rb;
        let blocks = total.div_ceil(REFCOUNTS_PER_BLOCK);
        let table = blocks.div_ceil(RT_ENTRIES_PER_CLUSTER);
        if (table, blocks) == (rt, rb) {
            return (rt, rb);
        }
        (rt, rb) = (table, blocks);
    }
}

/// The L2 entry of a compressed cluster whose `len` (≥ 1) bytes start at host byte `offset`:
/// bit 62, the count of additional 512-byte sectors touched from bit 54, the offset below.
pub fn compressed_entry(offset: u64, len: u64) -> u64 {
    let extra = ((offset + len - 1) >> 9) - (offset >> 9);
    OFLAG_COMPRESSED | (extra << COMPRESSED_SHIFT) | (offset & COMPRESSED_OFFSET_MASK)
}

/// Host clusters `[first, last]` that a compressed cluster of `len` (≥ 1) bytes at `offset`
/// touches, as qemu counts them (through the end of its last 512-byte sector).
pub fn compressed_host_clusters(offset: u64, len: u64) -> (u64, u64) {
    let sector_end = (offset + len).div_ceil(512) * 512;
    (offset >> CLUSTER_BITS, (sector_end - 1) >> CLUSTER_BITS)
}

/// Where the metadata written at the end goes, in clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tail {
    /// First cluster after the data (first L2 table).
    pub l2_start: u64,
    /// First cluster of the L1 table.
    pub l1_start: u64,
    /// Clusters of the L1 table.
    pub l1_clusters: u64,
    /// First cluster of the refcount table.
    pub rt_start: u64,
    /// Clusters of the refcount table.
    pub rt_clusters: u64,
    /// First refcount block.
    pub rb_start: u64,
    /// Refcount blocks.
    pub rb_count: u64,
    /// Clusters in the whole file.
    pub total: u64,
}

impl Tail {
    /// Lays out `l2_tables` L2 tables, the L1 table of `l1_entries`, the refcount table and
    /// blocks after `data_end` clusters (header cluster included).
    pub fn plan(data_end: u64, l2_tables: u64, l1_entries: u64) -> Self {
        let l1_start = data_end + l2_tables;
        let l1_clusters = (l1_entries * 8).div_ceil(CLUSTER_SIZE).max(1);
        let rt_start = l1_start + l1_clusters;
        let (rt_clusters, rb_count) = refcount_clusters(rt_start);
        let rb_start = rt_start + rt_clusters;
        Tail {
            l2_start: data_end,
            l1_start,
            l1_clusters,
            rt_start,
            rt_clusters,
            rb_start,
            rb_count,
            total: rb_start + rb_count,
        }
    }
}

/// The header cluster's first bytes: the 104-byte v3 header and the end-of-extensions marker.
pub fn header(
    virtual_size: u64,
    l1_entries: u32,
    tail: &Tail,
    rt_clusters: u32,
) -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, &MAGIC);
    put(4, &3u32.to_be_bytes());
    // 8: backing_file_offset, 16: backing_file_size: 0.
    put(20, &CLUSTER_BITS.to_be_bytes());
    put(24, &virtual_size.to_be_bytes());
    // 32: crypt_method 0.
    put(36, &l1_entries.to_be_bytes());
    put(
        40,
        &((tail.l1_start << CLUSTER_BITS) & OFFSET_MASK).to_be_bytes(),
    );
    put(48, &(tail.rt_start << CLUSTER_BITS).to_be_bytes());
    put(56, &rt_clusters.to_be_bytes());
    // 60: nb_snapshots, 64: snapshots_offset, 72/80/88: feature bits: all 0.
    put(96, &REFCOUNT_ORDER.to_be_bytes());
    put(100, &HEADER_LENGTH.to_be_bytes());
    // 104: header extension type 0 (end), length 0.
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refcount_fixpoint_grows_exactly_at_block_boundaries() {
        assert_eq!(REFCOUNTS_PER_BLOCK, 32768);
        assert_eq!(refcount_clusters(0), (0, 0));
        assert_eq!(refcount_clusters(1), (1, 1));
        // 32766 used + 1 table + 1 block = 32768: still one block.
        assert_eq!(refcount_clusters(32766), (1, 1));
        // One more and the second block must also count itself.
        assert_eq!(refcount_clusters(32767), (1, 2));
        assert_eq!(refcount_clusters(65533), (1, 2));
        assert_eq!(refcount_clusters(65534), (1, 3));
        // 8192 blocks fill one table cluster; the 8193rd needs a second table cluster.
        let full = 8192 * 32768;
        assert_eq!(refcount_clusters(full - 8193), (1, 8192));
        assert_eq!(refcount_clusters(full - 8192), (2, 8193));
        for used in [1u64, 5, 32767, 100_000, full - 8192, full + 12345] {
            let (rt, rb) = refcount_clusters(used);
            assert!(
                rb * REFCOUNTS_PER_BLOCK >= used + rt + rb,
                "{used}: blocks too few"
            );
            assert!(
                (rb - 1) * REFCOUNTS_PER_BLOCK < used + rt + rb,
                "{used}: blocks not minimal"
            );
            assert!(rt * RT_ENTRIES_PER_CLUSTER >= rb && (rt - 1) * RT_ENTRIES_PER_CLUSTER < rb);
        }
    }

    #[test]
    fn compressed_entries_encode_extra_sectors_like_qemu() {
        assert_eq!(COMPRESSED_SHIFT, 54);
        // Inside one sector: no additional sector.
        assert_eq!(compressed_entry(0x50000, 0x100), (1 << 62) | 0x50000);
        // 0x50244 + 0x56 - 1 = 0x50299 stays in sector 0x281: none extra.
        assert_eq!(compressed_entry(0x50244, 0x56), (1 << 62) | 0x50244);
        // Ending exactly on a sector boundary: still no additional sector.
        assert_eq!(compressed_entry(0x10000, 512), (1 << 62) | 0x10000);
        assert_eq!(compressed_entry(0x10100, 256), (1 << 62) | 0x10100);
        // Crossing one sector boundary.
        assert_eq!(
            compressed_entry(0x501ff, 2),
            (1 << 62) | (1 << 54) | 0x501ff
        );
        // A whole 64 KiB - 1 stream from a sector start touches 128 sectors: 127 extra.
        assert_eq!(
            compressed_entry(0x10000, 65535),
            (1 << 62) | (127 << 54) | 0x10000
        );
        assert_eq!(compressed_host_clusters(0x1ffff, 1), (1, 1));
        assert_eq!(compressed_host_clusters(0x1ff00, 0x101), (1, 2));
    }

    #[test]
    fn tail_places_tables_back_to_back() {
        let t = Tail::plan(10, 3, 9);
        assert_eq!(
            (t.l2_start, t.l1_start, t.l1_clusters, t.rt_start),
            (10, 13, 1, 14)
        );
        assert_eq!(
            (t.rt_clusters, t.rb_start, t.rb_count, t.total),
            (1, 15, 1, 16)
        );
        assert_eq!(l1_entries((4 << 30) + 1), 9);
        assert_eq!(l1_entries(512 << 20), 1);
        assert_eq!(l1_entries(0), 0);
    }
}
