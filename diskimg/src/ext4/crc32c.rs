//! CRC-32C (Castagnoli), as ext4 uses it for metadata checksums.

/// The reflected Castagnoli polynomial.
const POLY: u32 = 0x82F6_3B78;

/// The byte-at-a-time lookup table, built at compile time.
const TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        // `i` < 256: the cast is exact (`u32::try_from` is not usable in a const).
        #[allow(clippy::cast_possible_truncation)]
        let mut crc = i as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLY
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// The raw CRC-32C register after feeding `data` into `seed`, without the final inversion —
/// the form ext4 stores (`ext4_chksum(~0, …)`).
pub(crate) fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    data.iter().fold(seed, |crc, &b| {
        TABLE[usize::from(crc.to_le_bytes()[0] ^ b)] ^ (crc >> 8)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_check_value() {
        // The catalogued check value of CRC-32C over "123456789".
        assert_eq!(!crc32c_raw(!0, b"123456789"), 0xE306_9283);
    }
}
