//! The old-GNU sparse tar header (`--format=oldgnu -S`, typeflag `'S'`) as GNU tar 1.34 writes
//! it, and a bounds-checked parser for it (formats.md §4.2).
//!
//! Layout of the 512-byte header: `name[100] mode[8] uid[8] gid[8] size[12] mtime[12]
//! chksum[8] typeflag[1] linkname[100] magic[6] version[2] uname[32] gname[32] devmajor[8]
//! devminor[8] atime[12] ctime[12] offset[12] longnames[4] unused[1] sparse[4 × 24]
//! isextended[1] realsize[12] pad[17]`. More sparse entries follow in extension blocks of
//! 21 entries with `isextended` at byte 504.

/// Size of a tar block.
pub const BLOCK: usize = 512;
/// Size of a tar block as a byte count.
pub const BLOCK_BYTES: u64 = 512;
/// GNU tar's default record size (blocking factor 20): archives are padded to a multiple of it.
pub const RECORD: u64 = 10240;
/// The only member a GCE tarball may hold.
pub const MEMBER_NAME: &str = "disk.raw";
/// Sparse entries in the main header.
pub const MAIN_ENTRIES: usize = 4;
/// Sparse entries in one extension block.
pub const EXT_ENTRIES: usize = 21;

const NAME: std::ops::Range<usize> = 0..100;
const MODE: std::ops::Range<usize> = 100..108;
const UID: std::ops::Range<usize> = 108..116;
const GID: std::ops::Range<usize> = 116..124;
const SIZE: std::ops::Range<usize> = 124..136;
const MTIME: std::ops::Range<usize> = 136..148;
const CHKSUM: std::ops::Range<usize> = 148..156;
const TYPEFLAG: usize = 156;
const MAGIC: std::ops::Range<usize> = 257..265;
const USTAR_PREFIX: std::ops::Range<usize> = 345..500;
const SPARSE: usize = 386;
const IS_EXTENDED: usize = 482;
const REALSIZE: std::ops::Range<usize> = 483..495;
const EXT_IS_EXTENDED: usize = 504;
const ENTRY: usize = 24;

/// Magic and version of an old-GNU header: `"ustar "` + `" \0"`.
pub const OLDGNU_MAGIC: &[u8; 8] = b"ustar  \0";
/// Magic and version of a POSIX ustar header: `"ustar\0"` + `"00"`.
pub const USTAR_MAGIC: &[u8; 8] = b"ustar\x0000";

/// One entry of a sparse map: `len` bytes of data at `offset` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SparseEntry {
    /// Byte offset in the expanded file.
    pub offset: u64,
    /// Bytes stored for this entry.
    pub len: u64,
}

impl SparseEntry {
    /// End offset (exclusive), `None` on overflow.
    pub fn end(&self) -> Option<u64> {
        self.offset.checked_add(self.len)
    }
}

/// The map GNU tar writes for `chunks` (sorted, non-adjacent data runs) of a file of
/// `realsize` bytes: the chunks, plus `{realsize, 0}` when the file ends in a hole (so an
/// all-zero file has that single entry).
pub fn map_with_terminator(chunks: &[SparseEntry], realsize: u64) -> Vec<SparseEntry> {
    let mut map = chunks.to_vec();
    let ends_in_data = chunks.last().and_then(SparseEntry::end) == Some(realsize);
    if !ends_in_data {
        map.push(SparseEntry {
            offset: realsize,
            len: 0,
        });
    }
    map
}

/// Writes `value` into `field` the GNU way: zero-padded octal with a trailing NUL when it
/// fits, else base-256 (first byte `0x80`, big-endian in the remaining bytes).
pub fn put_number(field: &mut [u8], value: u64) {
    let Some(digits) = field.len().checked_sub(1) else {
        return;
    };
    let fits_octal = u32::try_from(digits * 3)
        .ok()
        .and_then(|bits| 1u64.checked_shl(bits))
        .is_none_or(|max| value < max);
    if fits_octal {
        let mut v = value;
        for b in field[..digits].iter_mut().rev() {
            *b = b'0' + u8::try_from(v & 7).unwrap_or(0);
            v >>= 3;
        }
        field[digits] = 0;
    } else {
        field.fill(0);
        field[0] = 0x80;
        let bytes = value.to_be_bytes();
        let n = bytes.len().min(digits);
        let start = field.len() - n;
        field[start..].copy_from_slice(&bytes[bytes.len() - n..]);
    }
}

/// Reads a numeric field: octal (leading spaces, NUL/space terminated; empty = 0) or GNU
/// base-256. Errors name what is wrong.
pub fn parse_number(field: &[u8]) -> Result<u64, String> {
    let Some(&first) = field.first() else {
        return Ok(0);
    };
    if first & 0x80 != 0 {
        if first & 0x40 != 0 {
            return Err("negative base-256 number".into());
        }
        let mut value = u64::from(first & 0x3f);
        for &b in &field[1..] {
            value = value
                .checked_mul(256)
                .and_then(|v| v.checked_add(u64::from(b)))
                .ok_or("base-256 number does not fit in 64 bits")?;
        }
        return Ok(value);
    }
    let text = field
        .iter()
        .position(|&b| b != b' ')
        .map_or(&field[field.len()..], |start| &field[start..]);
    let digits_end = text
        .iter()
        .position(|&b| !(b'0'..=b'7').contains(&b))
        .unwrap_or(text.len());
    if text[digits_end..].iter().any(|&b| b != 0 && b != b' ') {
        return Err(format!(
            "not an octal number: {:?}",
            String::from_utf8_lossy(field)
        ));
    }
    text[..digits_end].iter().try_fold(0u64, |acc, &d| {
        acc.checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(d - b'0')))
            .ok_or_else(|| "octal number too large".into())
    })
}

/// The checksum GNU tar stores: the unsigned byte sum with the checksum field as spaces.
pub fn checksum(block: &[u8; BLOCK]) -> u64 {
    // 512 bytes of at most 255 each: the sum is never negative.
    u64::try_from(byte_sum(block, i64::from)).unwrap_or(0)
}

/// The same sum over signed bytes (old tars; GNU tar accepts either).
fn signed_checksum(block: &[u8; BLOCK]) -> i64 {
    byte_sum(block, |b| i64::from(i8::from_ne_bytes([b])))
}

/// The sum of `value` of every byte, the checksum field counted as eight spaces.
fn byte_sum(block: &[u8; BLOCK], value: impl Fn(u8) -> i64) -> i64 {
    block
        .iter()
        .enumerate()
        .map(|(i, &b)| if CHKSUM.contains(&i) { 32 } else { value(b) })
        .sum()
}

/// The header block(s) of the sparse member `disk.raw`: the main header with the first four
/// map entries, then extension blocks of 21 entries. `stored` is the header `size` (sum of
/// the entry lengths), `realsize` the expanded size, `mtime` seconds since the epoch (clamped
/// to what 11 octal digits hold, like every other field that is not a size).
pub fn sparse_header(map: &[SparseEntry], stored: u64, realsize: u64, mtime: u64) -> Vec<u8> {
    let (main, rest) = map.split_at(map.len().min(MAIN_ENTRIES));
    let ext_blocks: Vec<&[SparseEntry]> = rest.chunks(EXT_ENTRIES).collect();
    let mut out = vec![0u8; BLOCK * (1 + ext_blocks.len())];

    let mut h = [0u8; BLOCK];
    h[NAME][..MEMBER_NAME.len()].copy_from_slice(MEMBER_NAME.as_bytes());
    put_number(&mut h[MODE], 0o644);
    put_number(&mut h[UID], 0);
    put_number(&mut h[GID], 0);
    put_number(&mut h[SIZE], stored);
    put_number(&mut h[MTIME], mtime.min((1 << 33) - 1));
    h[TYPEFLAG] = b'S';
    h[MAGIC].copy_from_slice(OLDGNU_MAGIC);
    put_entries(&mut h[SPARSE..SPARSE + MAIN_ENTRIES * ENTRY], main);
    h[IS_EXTENDED] = u8::from(!ext_blocks.is_empty());
    put_number(&mut h[REALSIZE], realsize);
    let sum = checksum(&h);
    // "%06o\0 ": six octal digits, NUL, space.
    put_number(&mut h[CHKSUM.start..CHKSUM.start + 7], sum);
    h[CHKSUM.end - 1] = b' ';
    out[..BLOCK].copy_from_slice(&h);

    for (i, entries) in ext_blocks.iter().enumerate() {
        let block = &mut out[BLOCK * (i + 1)..BLOCK * (i + 2)];
        put_entries(&mut block[..EXT_ENTRIES * ENTRY], entries);
        block[EXT_IS_EXTENDED] = u8::from(i + 1 < ext_blocks.len());
    }
    out
}

fn put_entries(area: &mut [u8], entries: &[SparseEntry]) {
    for (slot, e) in area.chunks_exact_mut(ENTRY).zip(entries) {
        put_number(&mut slot[..12], e.offset);
        put_number(&mut slot[12..], e.len);
    }
}

/// Bytes that follow the stored data of a member: padding of the data to a block, two zero
/// blocks, and padding of the archive to a [`RECORD`], given the length of everything before.
pub fn trailer_len(before: u64) -> u64 {
    let data_pad = (BLOCK_BYTES - before % BLOCK_BYTES) % BLOCK_BYTES;
    let with_end = before + data_pad + 2 * BLOCK_BYTES;
    data_pad + 2 * BLOCK_BYTES + (RECORD - with_end % RECORD) % RECORD
}

/// A problem in a header block: the byte of the block it is at and what is wrong.
pub type HeaderError = (usize, String);

/// What the first header of the archive says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberHeader {
    /// The `size` field: bytes stored in the archive.
    pub stored: u64,
    /// The expanded size (`realsize` for a sparse member, else `size`).
    pub realsize: u64,
    /// True for an old-GNU sparse member (`'S'`).
    pub sparse: bool,
    /// The sparse entries of the main header (for a regular file: one entry for all of it).
    pub entries: Vec<SparseEntry>,
    /// True when extension blocks follow.
    pub extended: bool,
}

/// The member name of a header block (up to the first NUL), for messages.
pub fn member_name(block: &[u8; BLOCK]) -> String {
    let name = &block[NAME];
    let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
    String::from_utf8_lossy(&name[..end]).into_owned()
}

/// Checks the header checksum of `block`.
pub fn verify_checksum(block: &[u8; BLOCK]) -> Result<(), HeaderError> {
    let stored = parse_number(&block[CHKSUM])
        .map_err(|e| (CHKSUM.start, format!("header checksum field: {e}")))?;
    let unsigned = checksum(block);
    let signed = signed_checksum(block);
    if stored != unsigned && i64::try_from(stored).ok() != Some(signed) {
        return Err((
            CHKSUM.start,
            format!("header checksum is {stored:o} (octal), computed {unsigned:o}"),
        ));
    }
    Ok(())
}

/// Parses the first header of a GCE tarball: checksum, type (`'S'` old-GNU sparse or a
/// regular file), name exactly `disk.raw`, sizes, main sparse entries.
pub fn parse_member_header(block: &[u8; BLOCK]) -> Result<MemberHeader, HeaderError> {
    verify_checksum(block)?;
    let magic = &block[MAGIC];
    let oldgnu = magic == OLDGNU_MAGIC;
    if !oldgnu && magic != USTAR_MAGIC {
        return Err((
            MAGIC.start,
            format!(
                "not a ustar/GNU tar header (magic {:?})",
                String::from_utf8_lossy(magic)
            ),
        ));
    }
    let typeflag = block[TYPEFLAG];
    let sparse = match typeflag {
        b'S' if oldgnu => true,
        b'S' => {
            return Err((
                TYPEFLAG,
                "sparse typeflag 'S' in a header without the old-GNU magic".into(),
            ));
        }
        b'0' | 0 => false,
        other => {
            return Err((
                TYPEFLAG,
                format!(
                    "member {:?} has typeflag {:?}; expected 'S' (old-GNU sparse) or '0' (regular file)",
                    member_name(block),
                    char::from(other)
                ),
            ));
        }
    };
    let name = member_name(block);
    let prefix_empty = oldgnu || block[USTAR_PREFIX].first() == Some(&0);
    if name != MEMBER_NAME || !prefix_empty {
        return Err((
            NAME.start,
            format!("member is named {name:?}; GCE needs exactly {MEMBER_NAME:?}"),
        ));
    }
    let stored =
        parse_number(&block[SIZE]).map_err(|e| (SIZE.start, format!("size field: {e}")))?;
    if !sparse {
        let entries = vec![SparseEntry {
            offset: 0,
            len: stored,
        }];
        return Ok(MemberHeader {
            stored,
            realsize: stored,
            sparse,
            entries,
            extended: false,
        });
    }
    let realsize = parse_number(&block[REALSIZE])
        .map_err(|e| (REALSIZE.start, format!("realsize field: {e}")))?;
    let entries = parse_entries(&block[SPARSE..SPARSE + MAIN_ENTRIES * ENTRY], SPARSE)?;
    let extended = flag(block[IS_EXTENDED], IS_EXTENDED)?;
    Ok(MemberHeader {
        stored,
        realsize,
        sparse,
        entries,
        extended,
    })
}

/// Parses an extension block: its entries and whether another block follows.
pub fn parse_extension(block: &[u8; BLOCK]) -> Result<(Vec<SparseEntry>, bool), HeaderError> {
    let entries = parse_entries(&block[..EXT_ENTRIES * ENTRY], 0)?;
    Ok((entries, flag(block[EXT_IS_EXTENDED], EXT_IS_EXTENDED)?))
}

fn flag(byte: u8, at: usize) -> Result<bool, HeaderError> {
    match byte {
        0 => Ok(false),
        1 => Ok(true),
        other => Err((at, format!("isextended byte is {other}, expected 0 or 1"))),
    }
}

/// Entries up to the first one whose `numbytes` field is empty (GNU tar's rule).
fn parse_entries(area: &[u8], base: usize) -> Result<Vec<SparseEntry>, HeaderError> {
    let mut out = Vec::new();
    for (i, slot) in area.chunks_exact(ENTRY).enumerate() {
        if slot[12] == 0 {
            break;
        }
        let at = base + i * ENTRY;
        let offset =
            parse_number(&slot[..12]).map_err(|e| (at, format!("sparse entry {i} offset: {e}")))?;
        let len = parse_number(&slot[12..])
            .map_err(|e| (at + 12, format!("sparse entry {i} numbytes: {e}")))?;
        out.push(SparseEntry { offset, len });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_octal_below_8_gib_and_base256_above() {
        let mut f = [0xffu8; 12];
        put_number(&mut f, 0o4000000);
        assert_eq!(&f, b"00004000000\0");
        assert_eq!(parse_number(&f).unwrap(), 0o4000000);
        put_number(&mut f, 10 << 30);
        assert_eq!(hex::encode(f), "800000000000000280000000");
        assert_eq!(parse_number(&f).unwrap(), 10 << 30);
        put_number(&mut f, (1 << 33) - 1);
        assert_eq!(&f, b"77777777777\0");
        let mut small = [0u8; 8];
        put_number(&mut small, 0o644);
        assert_eq!(&small, b"0000644\0");
        assert!(parse_number(b"12x4\0").is_err());
        assert!(parse_number(&[0xff; 12]).is_err());
        assert!(
            parse_number(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]).is_err(),
            "65+ bits accepted"
        );
        assert_eq!(parse_number(b"  17 \0").unwrap(), 0o17);
    }

    #[test]
    fn header_matches_gnu_tar_for_an_all_zero_file() {
        // `truncate -s 1M disk.raw; tar --format=oldgnu -S --hole-detection=raw --numeric-owner
        //  --owner=0 --group=0 --mtime=@946684800 -cf z.tar disk.raw`, bytes 0x180..0x200.
        let map = map_with_terminator(&[], 1 << 20);
        assert_eq!(
            map,
            [SparseEntry {
                offset: 1 << 20,
                len: 0
            }]
        );
        let h = sparse_header(&map, 0, 1 << 20, 946_684_800);
        assert_eq!(h.len(), BLOCK);
        assert_eq!(&h[386..410], b"00004000000\x0000000000000\0");
        assert_eq!(&h[483..495], b"00004000000\0");
        assert_eq!(&h[136..148], b"07033241600\0");
        assert_eq!(&h[154..156], b"\0 ");
        let block: [u8; BLOCK] = h[..BLOCK].try_into().unwrap();
        verify_checksum(&block).unwrap();
        let parsed = parse_member_header(&block).unwrap();
        assert_eq!(
            (parsed.stored, parsed.realsize, parsed.extended),
            (0, 1 << 20, false)
        );
    }

    #[test]
    fn long_maps_continue_in_extension_blocks() {
        let chunks: Vec<SparseEntry> = (0..30)
            .map(|i| SparseEntry {
                offset: i * 131_072,
                len: 512,
            })
            .collect();
        let map = map_with_terminator(&chunks, 4 << 20);
        assert_eq!(map.len(), 31);
        let h = sparse_header(&map, 30 * 512, 4 << 20, 0);
        assert_eq!(h.len(), 3 * BLOCK);
        assert_eq!(h[IS_EXTENDED], 1);
        assert_eq!(h[BLOCK + EXT_IS_EXTENDED], 1);
        assert_eq!(h[2 * BLOCK + EXT_IS_EXTENDED], 0);
        let (first, more) = parse_extension(h[BLOCK..2 * BLOCK].try_into().unwrap()).unwrap();
        assert_eq!((first.len(), more, first[0]), (21, true, map[4]));
        let (last, more) = parse_extension(h[2 * BLOCK..].try_into().unwrap()).unwrap();
        assert_eq!((last.len(), more, last[5]), (6, false, map[30]));
    }

    #[test]
    fn file_ending_in_data_has_no_terminator() {
        let chunks = [SparseEntry {
            offset: 1 << 20,
            len: 1 << 20,
        }];
        assert_eq!(map_with_terminator(&chunks, 2 << 20), chunks);
    }

    #[test]
    fn trailer_pads_to_a_record() {
        assert_eq!(512 + trailer_len(512), RECORD);
        assert_eq!(1536 + 15360 + trailer_len(1536 + 15360), 2 * RECORD);
        assert_eq!(512 + 100 + trailer_len(612), RECORD);
    }
}
