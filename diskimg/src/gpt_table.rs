//! Reading a GUID partition table from any disk image, and the one validation of it.
//!
//! The primary header (LBA 1) is used when it and its entry array are intact (signature,
//! fields, both CRC-32s); otherwise the backup header in the disk's last sector is, as `sfdisk`
//! does, and the table says so. A read error of the image is an error, never "no GPT". The
//! table found is then checked: partitions whose first LBA is after their last, that end past
//! the disk or outside the usable LBAs, and partitions that overlap are its faults.

use serde::Serialize;

use crate::bytes::{le32, le64};
use crate::error::Result;
use crate::image::DiskImage;

/// Bytes per logical block.
const LB: u64 = 512;
/// The header signature.
const SIGNATURE: &[u8; 8] = b"EFI PART";

/// A GUID partition table.
#[derive(Debug, Clone, Serialize)]
pub struct GptInfo {
    /// Which header the table was read from: `primary`, or `backup` when the primary is
    /// damaged.
    pub header: &'static str,
    /// Disk GUID.
    pub disk_guid: String,
    /// First usable LBA.
    pub first_usable_lba: u64,
    /// Last usable LBA.
    pub last_usable_lba: u64,
    /// LBA of the other header as the header used records it (the backup's LBA when the
    /// primary was used).
    pub backup_lba: u64,
    /// Partitions, by number.
    pub partitions: Vec<PartitionInfo>,
    /// Why the primary header was not used, when the backup was.
    #[serde(skip)]
    pub primary_damage: Option<String>,
    /// What is invalid in the table ([`validate`]); empty for a valid table.
    #[serde(skip)]
    pub faults: Vec<String>,
}

impl GptInfo {
    /// The damaged primary (when the backup was used) and every fault, one line each.
    pub fn warnings(&self) -> Vec<String> {
        self.primary_damage
            .iter()
            .cloned()
            .chain(
                self.faults
                    .iter()
                    .map(|f| format!("invalid partition table: {f}")),
            )
            .collect()
    }
}

/// One GPT partition.
#[derive(Debug, Clone, Serialize)]
pub struct PartitionInfo {
    /// Partition number (1-based).
    pub number: u32,
    /// Partition name.
    pub name: String,
    /// Type GUID.
    pub type_guid: String,
    /// Partition GUID.
    pub guid: String,
    /// First LBA.
    pub first_lba: u64,
    /// Last LBA (inclusive).
    pub last_lba: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What [`read_gpt`] found.
#[derive(Debug, Clone)]
pub enum GptRead {
    /// No GPT signature at LBA 1 nor in the last sector.
    Absent,
    /// A GPT signature, but neither header (with its entries) is intact: why, for both.
    Damaged(String),
    /// A table (see [`GptInfo::primary_damage`] and [`GptInfo::faults`]).
    Found(GptInfo),
}

/// One header as read from the disk.
struct Header {
    other_lba: u64,
    first_usable: u64,
    last_usable: u64,
    disk_guid: [u8; 16],
    entries: Vec<u8>,
}

/// A header at one LBA: intact, absent (no signature) or damaged (why).
enum HeaderRead {
    Intact(Header),
    NoSignature,
    Damaged(String),
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// Reads and checks the header at `lba` and its entry array; an I/O or reader error of the
/// image is the `Err`.
fn read_header(image: &mut dyn DiskImage, lba: u64) -> Result<HeaderRead> {
    let size = image.virtual_size();
    let mut sector = [0u8; 512];
    image.read_at(lba * LB, &mut sector)?;
    if &sector[..8] != SIGNATURE {
        return Ok(HeaderRead::NoSignature);
    }
    let mut fields = [0u8; 92];
    fields.copy_from_slice(&sector[..92]);
    if let Err(reason) = check_gpt_header(&fields, size) {
        return Ok(HeaderRead::Damaged(reason));
    }
    // check_gpt_header bounds the header size to 92..=512.
    let header_size = usize::try_from(le32(&sector, 12)).unwrap_or(92).min(512);
    let recorded = le32(&sector, 16);
    let mut zeroed = sector;
    zeroed[16..20].fill(0);
    let computed = crc32(&zeroed[..header_size]);
    if computed != recorded {
        return Ok(HeaderRead::Damaged(format!(
            "header CRC32 is {computed:08x}, the header records {recorded:08x}"
        )));
    }
    let my_lba = le64(&sector, 24);
    if my_lba != lba {
        return Ok(HeaderRead::Damaged(format!(
            "header at LBA {lba} says it lies at LBA {my_lba}"
        )));
    }
    let entries_lba = le64(&sector, 72);
    let count = u64::from(le32(&sector, 80));
    // check_gpt_header bounds the array to 16384 entries of 128 bytes inside the disk.
    let mut entries = vec![0u8; usize::try_from(count * 128).unwrap_or(0)];
    image.read_at(entries_lba * LB, &mut entries)?;
    let recorded = le32(&sector, 88);
    let computed = crc32(&entries);
    if computed != recorded {
        return Ok(HeaderRead::Damaged(format!(
            "partition entries at LBA {entries_lba}: CRC32 is {computed:08x}, the header records {recorded:08x}"
        )));
    }
    let mut disk_guid = [0u8; 16];
    disk_guid.copy_from_slice(&sector[56..72]);
    Ok(HeaderRead::Intact(Header {
        other_lba: le64(&sector, 32),
        first_usable: le64(&sector, 40),
        last_usable: le64(&sector, 48),
        disk_guid,
        entries,
    }))
}

fn guid(bytes: &[u8]) -> String {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[..16]);
    uuid::Uuid::from_bytes_le(b).to_string()
}

/// The GPT of `image`: from the primary header, or from the backup when the primary is
/// damaged. Errors are the image's read errors (a corrupt container), never a bad table.
pub fn read_gpt(image: &mut dyn DiskImage) -> Result<GptRead> {
    let size = image.virtual_size();
    if size < 3 * LB {
        return Ok(GptRead::Absent);
    }
    let last = size / LB - 1;
    let say = |h: &HeaderRead| match h {
        HeaderRead::Damaged(r) => r.clone(),
        _ => "no \"EFI PART\" signature".to_string(),
    };
    let (header, kind, primary_damage) = match read_header(image, 1)? {
        HeaderRead::Intact(h) => (h, "primary", None),
        primary => match read_header(image, last)? {
            HeaderRead::Intact(h) => {
                let why = say(&primary);
                (
                    h,
                    "backup",
                    Some(format!(
                        "the primary GPT header (LBA 1) is damaged ({why}); the table was read from the backup header at LBA {last}"
                    )),
                )
            }
            HeaderRead::NoSignature if matches!(primary, HeaderRead::NoSignature) => {
                return Ok(GptRead::Absent);
            }
            backup => {
                return Ok(GptRead::Damaged(format!(
                    "primary header at LBA 1: {}; backup header at LBA {last}: {}",
                    say(&primary),
                    say(&backup)
                )));
            }
        },
    };
    let mut info = GptInfo {
        header: kind,
        disk_guid: guid(&header.disk_guid),
        first_usable_lba: header.first_usable,
        last_usable_lba: header.last_usable,
        backup_lba: header.other_lba,
        partitions: partitions(&header.entries),
        primary_damage,
        faults: Vec::new(),
    };
    info.faults = validate(&info, size);
    Ok(GptRead::Found(info))
}

/// The used entries of an array (type GUID not zero), numbered from 1 by their slot.
fn partitions(entries: &[u8]) -> Vec<PartitionInfo> {
    (1u32..)
        .zip(entries.chunks_exact(128))
        .filter(|(_, e)| e[..16].iter().any(|&b| b != 0))
        .map(|(number, e)| {
            let first_lba = le64(e, 32);
            let last_lba = le64(e, 40);
            let units: Vec<u16> = e[56..128]
                .chunks_exact(2)
                .map(|c| u16::from_le_bytes([c[0], c[1]]))
                .take_while(|&u| u != 0)
                .collect();
            PartitionInfo {
                number,
                name: String::from_utf16_lossy(&units),
                type_guid: guid(&e[..16]),
                guid: guid(&e[16..32]),
                first_lba,
                last_lba,
                size: (last_lba.saturating_add(1))
                    .saturating_sub(first_lba)
                    .saturating_mul(LB),
            }
        })
        .collect()
}

/// The faults of a table on a disk of `disk_size` bytes, one line each: usable LBAs out of
/// order or past the disk, a partition whose first LBA is after its last, that ends past the
/// disk or lies outside the usable LBAs, and partitions that overlap.
pub fn validate(gpt: &GptInfo, disk_size: u64) -> Vec<String> {
    let disk_last = (disk_size / LB).saturating_sub(1);
    let (usable_first, usable_last) = (gpt.first_usable_lba, gpt.last_usable_lba);
    let mut faults = Vec::new();
    if usable_first > usable_last {
        faults.push(format!(
            "first usable LBA {usable_first} is after the last usable LBA {usable_last}"
        ));
    }
    if usable_last > disk_last {
        faults.push(format!(
            "last usable LBA {usable_last} is past the end of the disk (last LBA {disk_last})"
        ));
    }
    let mut ordered = Vec::new();
    for p in &gpt.partitions {
        let (n, first, last) = (p.number, p.first_lba, p.last_lba);
        if first > last {
            faults.push(format!(
                "partition {n}: first LBA {first} is after its last LBA {last}"
            ));
            continue;
        }
        if last > disk_last {
            faults.push(format!(
                "partition {n}: ends at LBA {last}, past the end of the disk (last LBA {disk_last})"
            ));
        } else if first < usable_first || last > usable_last {
            faults.push(format!(
                "partition {n}: LBAs {first}..={last} lie outside the usable LBAs {usable_first}..={usable_last}"
            ));
        }
        ordered.push(p);
    }
    ordered.sort_by_key(|p| (p.first_lba, p.number));
    let mut reach: Option<&PartitionInfo> = None;
    for p in ordered {
        if let Some(r) = reach
            && p.first_lba <= r.last_lba
        {
            faults.push(format!(
                "partitions {} and {} overlap (LBAs {}..={})",
                r.number,
                p.number,
                p.first_lba,
                p.last_lba.min(r.last_lba)
            ));
        }
        if reach.is_none_or(|r| p.last_lba > r.last_lba) {
            reach = Some(p);
        }
    }
    faults
}

/// Checks the fields of a GPT header that the `gpt` crate trusts without
/// checking (it asserts or reads without bound on them), so malformed tables become errors
/// instead of panics or endless reads.
pub fn check_gpt_header(header: &[u8; 92], disk_size: u64) -> std::result::Result<(), String> {
    if &header[0..8] != b"EFI PART" {
        return Err("no \"EFI PART\" signature at LBA 1".into());
    }
    let header_size = le32(header, 12);
    if !(92..=512).contains(&header_size) {
        return Err(format!(
            "GPT header size {header_size} is not between 92 and 512"
        ));
    }
    let (num_parts, part_size) = (le32(header, 80), le32(header, 84));
    if part_size != 128 {
        return Err(format!(
            "GPT partition entry size {part_size}, only 128 is supported"
        ));
    }
    if num_parts == 0 || num_parts > 16_384 {
        return Err(format!(
            "GPT holds {num_parts} partition entries (1 to 16384 expected)"
        ));
    }
    let entries_end = le64(header, 72)
        .checked_mul(512)
        .and_then(|start| start.checked_add(u64::from(num_parts) * 128));
    if entries_end.is_none_or(|end| end > disk_size) {
        return Err("GPT partition entries lie past the end of the disk".into());
    }
    let backup = le64(header, 32);
    if backup.checked_mul(512).is_none_or(|b| b >= disk_size) {
        return Err(format!(
            "GPT backup header LBA {backup} is past the end of the disk"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(parts: &[(u32, u64, u64)]) -> GptInfo {
        GptInfo {
            header: "primary",
            disk_guid: String::new(),
            first_usable_lba: 34,
            last_usable_lba: 2014,
            backup_lba: 2047,
            partitions: parts
                .iter()
                .map(|&(number, first_lba, last_lba)| PartitionInfo {
                    number,
                    name: String::new(),
                    type_guid: String::new(),
                    guid: String::new(),
                    first_lba,
                    last_lba,
                    size: 0,
                })
                .collect(),
            primary_damage: None,
            faults: Vec::new(),
        }
    }

    #[test]
    fn a_valid_table_has_no_faults() {
        let t = table(&[(1, 34, 999), (2, 1000, 2014)]);
        assert!(validate(&t, 2048 * 512).is_empty());
    }

    #[test]
    fn each_fault_is_named() {
        let faults = |parts: &[(u32, u64, u64)]| validate(&table(parts), 2048 * 512);
        assert_eq!(
            faults(&[(1, 34, 999), (2, 1000, 4000)]),
            ["partition 2: ends at LBA 4000, past the end of the disk (last LBA 2047)"]
        );
        assert_eq!(
            faults(&[(1, 34, 999), (2, 500, 2014)]),
            ["partitions 1 and 2 overlap (LBAs 500..=999)"]
        );
        assert_eq!(
            faults(&[(1, 34, 999), (2, 1500, 1000)]),
            ["partition 2: first LBA 1500 is after its last LBA 1000"]
        );
        assert_eq!(
            faults(&[(1, 10, 999)]),
            ["partition 1: LBAs 10..=999 lie outside the usable LBAs 34..=2014"]
        );
        // A partition inside another one overlaps it too, whatever the numbering.
        assert_eq!(
            faults(&[(3, 34, 2014), (1, 100, 200), (2, 300, 400)]),
            [
                "partitions 3 and 1 overlap (LBAs 100..=200)",
                "partitions 3 and 2 overlap (LBAs 300..=400)"
            ]
        );
    }
}
