//! Fixed-width field reads of on-disk structures that never panic: a field past the end of
//! `buf` reads as 0 (callers check lengths first; this is the last line of defence against
//! corrupt data). Little-endian for GPT, ext4 and VMDK; big-endian for qcow2.

/// The little-endian `u16` at `at`.
pub fn le16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..at.saturating_add(2))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

/// The little-endian `u32` at `at`.
pub fn le32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at.saturating_add(4))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}

/// The little-endian `u64` at `at`.
pub fn le64(buf: &[u8], at: usize) -> u64 {
    buf.get(at..at.saturating_add(8))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes)
}

/// The big-endian `u32` at `at`.
pub fn be32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at.saturating_add(4))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// The big-endian `u64` at `at`.
pub fn be64(buf: &[u8], at: usize) -> u64 {
    buf.get(at..at.saturating_add(8))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}
