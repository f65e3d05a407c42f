//! Little-endian field reads that never panic: a field past the end of `buf` reads as 0
//! (callers check lengths first; this is the last line of defence against corrupt data).

/// The `u16` at `at`.
pub(crate) fn le16(buf: &[u8], at: usize) -> u16 {
    buf.get(at..at.saturating_add(2))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u16::from_le_bytes)
}

/// The `u32` at `at`.
pub(crate) fn le32(buf: &[u8], at: usize) -> u32 {
    buf.get(at..at.saturating_add(4))
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_le_bytes)
}
