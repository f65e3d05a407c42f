//! Plain ustar headers, written and parsed by hand: fixed mode, owner and mtime, GNU base-256
//! sizes for members of 8 GiB and more, never PAX (formats.md §3.4, §8).

use std::path::Path;

use crate::error::{Error, Result};

/// Tar block size.
pub const BLOCK: u64 = 512;
/// GNU tar's record size; archives are padded to a multiple of it.
pub const RECORD: u64 = 10240;
/// Largest value an 11-digit octal field holds (8 GiB − 1).
const OCTAL_MAX: u64 = 0o777_7777_7777;

/// The 512-byte ustar header of a regular file `name` of `size` bytes; a name ustar cannot
/// hold is refused with the reason.
pub fn header(name: &str, size: u64, mtime: u64) -> std::result::Result<[u8; 512], String> {
    let mut h = [0u8; 512];
    if name.is_empty() || name.len() > 100 || name.contains('/') {
        return Err(format!(
            "tar member name {name:?} must be 1 to 100 bytes without '/'"
        ));
    }
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..108].copy_from_slice(b"0000644\0");
    h[108..116].copy_from_slice(b"0000000\0");
    h[116..124].copy_from_slice(b"0000000\0");
    number_field(&mut h[124..136], size);
    number_field(&mut h[136..148], mtime);
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[265..269].copy_from_slice(b"root");
    h[297..301].copy_from_slice(b"root");
    let sum = checksum(&h);
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    Ok(h)
}

/// Writes `value` into a 12-byte numeric field: 11 octal digits + NUL, or GNU base-256.
fn number_field(field: &mut [u8], value: u64) {
    if value <= OCTAL_MAX {
        field[..11].copy_from_slice(format!("{value:011o}").as_bytes());
        field[11] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let len = field.len();
        field[len - 8..].copy_from_slice(&value.to_be_bytes());
    }
}

/// Sum of the header bytes with the checksum field counted as eight spaces.
pub fn checksum(h: &[u8; 512]) -> u32 {
    h.iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u32::from(b)
            }
        })
        .sum()
}

/// Bytes of zero padding after `size` bytes of member data.
pub fn padding(size: u64) -> u64 {
    (BLOCK - size % BLOCK) % BLOCK
}

/// One member found in an archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Member name.
    pub name: String,
    /// Offset of its data in the archive.
    pub data_offset: u64,
    /// Size of its data.
    pub size: u64,
}

/// Parses a numeric field (octal, optionally space/NUL padded, or GNU base-256).
fn parse_number(path: &Path, at: u64, field: &[u8], what: &str) -> Result<u64> {
    if field.first().is_some_and(|&b| b & 0x80 != 0) {
        if field.len() < 9 || field[0] != 0x80 || field[1..field.len() - 8].iter().any(|&b| b != 0)
        {
            return Err(Error::corrupt(
                path,
                at,
                format!("{what}: base-256 value out of range"),
            ));
        }
        let mut v = [0u8; 8];
        v.copy_from_slice(&field[field.len() - 8..]);
        return Ok(u64::from_be_bytes(v));
    }
    let text: Vec<u8> = field.iter().copied().take_while(|&b| b != 0).collect();
    let text = std::str::from_utf8(&text)
        .map_err(|_| Error::corrupt(path, at, format!("{what}: not octal")))?;
    let text = text.trim_matches(' ');
    if text.is_empty() {
        return Ok(0);
    }
    u64::from_str_radix(text, 8)
        .map_err(|_| Error::corrupt(path, at, format!("{what}: {text:?} is not octal")))
}

/// Parses the header block at archive offset `at`. `Ok(None)` for an end-of-archive block.
pub fn parse_header(path: &Path, at: u64, h: &[u8; 512]) -> Result<Option<Member>> {
    if h.iter().all(|&b| b == 0) {
        return Ok(None);
    }
    let magic = &h[257..265];
    if magic != b"ustar\x0000" && magic != b"ustar  \0" {
        return Err(Error::corrupt(
            path,
            at + 257,
            "tar header without ustar magic",
        ));
    }
    let stored = parse_number(path, at + 148, &h[148..156], "header checksum")?;
    let computed = checksum(h);
    if stored != u64::from(computed) {
        return Err(Error::corrupt(
            path,
            at + 148,
            format!("tar header checksum {stored:o}, computed {computed:o}"),
        ));
    }
    let kind = h[156];
    match kind {
        b'0' | 0 => {}
        b'x' | b'g' => {
            return Err(Error::corrupt(
                path,
                at + 156,
                "PAX extended header: vSphere does not accept PAX OVAs",
            ));
        }
        other => {
            return Err(Error::corrupt(
                path,
                at + 156,
                format!(
                    "tar member type {:?} is not a regular file",
                    char::from(other)
                ),
            ));
        }
    }
    let field = |r: std::ops::Range<usize>| -> Result<String> {
        let raw: Vec<u8> = h[r].iter().copied().take_while(|&b| b != 0).collect();
        String::from_utf8(raw).map_err(|_| Error::corrupt(path, at, "tar member name is not UTF-8"))
    };
    let mut name = field(0..100)?;
    if magic == b"ustar\x0000" {
        let prefix = field(345..500)?;
        if !prefix.is_empty() {
            name = format!("{prefix}/{name}");
        }
    }
    let size = parse_number(path, at + 124, &h[124..136], "member size")?;
    let data_offset = at + BLOCK;
    Ok(Some(Member {
        name,
        data_offset,
        size,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields_checksum_and_round_trip() {
        let h = header("a.ovf", 1234, 946_684_800).unwrap();
        assert_eq!(&h[124..136], b"00000002322\0");
        assert_eq!(&h[257..265], b"ustar\x0000");
        let sum = checksum(&h);
        assert_eq!(&h[148..156], format!("{sum:06o}\0 ").as_bytes());
        let m = parse_header(Path::new("x.ova"), 512, &h).unwrap().unwrap();
        assert_eq!(
            m,
            Member {
                name: "a.ovf".into(),
                data_offset: 1024,
                size: 1234
            }
        );
    }

    #[test]
    fn big_members_use_base256_and_parse_back() {
        let size = (8u64 << 30) + 7;
        let h = header("d.vmdk", size, 0).unwrap();
        assert_eq!(h[124], 0x80);
        assert_eq!(
            parse_header(Path::new("x.ova"), 0, &h)
                .unwrap()
                .unwrap()
                .size,
            size
        );
        let h = header("d.vmdk", OCTAL_MAX, 0).unwrap();
        assert_eq!(&h[124..136], b"77777777777\0");
    }

    #[test]
    fn pax_bad_checksum_and_bad_names_are_refused() {
        let mut h = header("a", 1, 0).unwrap();
        h[156] = b'x';
        let sum = checksum(&h);
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        assert!(
            parse_header(Path::new("x.ova"), 0, &h)
                .unwrap_err()
                .to_string()
                .contains("PAX")
        );
        let mut h = header("a", 1, 0).unwrap();
        h[0] = b'b';
        assert!(
            parse_header(Path::new("x.ova"), 0, &h)
                .unwrap_err()
                .to_string()
                .contains("checksum")
        );
        assert!(header("a/b", 1, 0).is_err());
        assert!(header(&"n".repeat(101), 1, 0).is_err());
        assert_eq!(padding(0), 0);
        assert_eq!(padding(1), 511);
    }
}
