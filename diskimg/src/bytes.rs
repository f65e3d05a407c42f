//! Fixed-width field reads of on-disk structures that never panic: a field past the end of
//! `buf` reads as 0 (callers check lengths first; this is the last line of defence against
//! corrupt data). Little-endian for GPT, ext4 and VMDK; big-endian for qcow2.

/// The `N` bytes at `at`, or `None` when they run past the end of `buf`.
fn field<const N: usize>(buf: &[u8], at: usize) -> Option<[u8; N]> {
    buf.get(at..at.saturating_add(N))?.try_into().ok()
}

/// The little-endian `u16` at `at`.
pub fn le16(buf: &[u8], at: usize) -> u16 {
    field(buf, at).map_or(0, u16::from_le_bytes)
}

/// The little-endian `u32` at `at`.
pub fn le32(buf: &[u8], at: usize) -> u32 {
    field(buf, at).map_or(0, u32::from_le_bytes)
}

/// The little-endian `u64` at `at`.
pub fn le64(buf: &[u8], at: usize) -> u64 {
    field(buf, at).map_or(0, u64::from_le_bytes)
}

/// The big-endian `u32` at `at`.
pub fn be32(buf: &[u8], at: usize) -> u32 {
    field(buf, at).map_or(0, u32::from_be_bytes)
}

/// The big-endian `u64` at `at`.
pub fn be64(buf: &[u8], at: usize) -> u64 {
    field(buf, at).map_or(0, u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_in_both_orders_and_past_the_end_as_zero() {
        let buf = [1, 2, 3, 4, 5, 6, 7, 8];
        assert_eq!(le16(&buf, 0), 0x0201);
        assert_eq!(le32(&buf, 4), 0x0807_0605);
        assert_eq!(be32(&buf, 0), 0x0102_0304);
        assert_eq!(le64(&buf, 0), 0x0807_0605_0403_0201);
        assert_eq!(be64(&buf, 0), 0x0102_0304_0506_0708);
        assert_eq!(le32(&buf, 6), 0);
        assert_eq!(be64(&buf, usize::MAX), 0);
    }
}
