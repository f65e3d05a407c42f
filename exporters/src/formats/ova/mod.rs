//! vSphere OVA: an OVF 1.x envelope, a `.mf` manifest and the streamOptimized VMDK, packed as
//! ustar in that order (formats.md §3). Written from the finished VMDK; read back with every
//! member checked against the manifest.

pub mod ovf;
pub mod ustar;

#[cfg(test)]
mod tests;

use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::artifact::{HashingWriter, TempArtifact};
use crate::error::{Error, IoContext, Result};
use crate::format::{ExportOptions, Format};
use crate::formats::vmdk::VmdkImage;
use crate::image::FileSlice;
use crate::pipeline::{Produced, Role};

/// Most members an OVA may hold before the reader gives up.
const MAX_MEMBERS: usize = 64;
/// Largest `.ovf` or `.mf` the reader loads.
const MAX_TEXT_MEMBER: u64 = 16 << 20;

/// The finished VMDK that goes into the OVA.
#[derive(Debug)]
pub struct OvaDisk<'a> {
    /// The VMDK temporary (read from the start).
    pub file: &'a mut TempArtifact,
    /// Its size.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// The `.mf` text: `SHA256(name)= hex` lines, `.ovf` first.
pub fn manifest_text(entries: &[(&str, &[u8; 32])]) -> String {
    entries
        .iter()
        .map(|(name, digest)| format!("SHA256({name})= {}\n", hex::encode(digest)))
        .collect()
}

/// Writes `dir/NAME.ova` from the finished VMDK.
pub fn write_ova(
    dir: &Path,
    options: &ExportOptions,
    virtual_size: u64,
    disk: OvaDisk<'_>,
) -> Result<Produced> {
    let name = &options.name;
    let (ovf_name, mf_name, disk_name) = (
        format!("{name}.ovf"),
        format!("{name}.mf"),
        format!("{name}.vmdk"),
    );
    let params = ovf::OvfParams {
        options,
        disk_file: &disk_name,
        disk_size: disk.size,
        capacity: virtual_size,
    };
    let ovf_text = ovf::envelope(&params);
    let ovf_digest: [u8; 32] = Sha256::digest(ovf_text.as_bytes()).into();
    let mf_text = manifest_text(&[(&ovf_name, &ovf_digest), (&disk_name, &disk.sha256)]);
    let mtime = options.source_date_epoch;

    let mut ova = TempArtifact::create(dir, &format!("{name}.ova"))?;
    let ova_path = ova.temp_path().to_path_buf();
    let vmdk_path = disk.file.temp_path().to_path_buf();
    let (sha256, size) = {
        let mut out = HashingWriter::new(BufWriter::with_capacity(1 << 20, ova.file()));
        for (member, bytes) in [
            (&ovf_name, ovf_text.as_bytes()),
            (&mf_name, mf_text.as_bytes()),
        ] {
            write_member_header(
                &mut out,
                member,
                u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                mtime,
                &ova_path,
            )?;
            out.write_all(bytes).at("writing", &ova_path)?;
            write_zeros(
                &mut out,
                ustar::padding(u64::try_from(bytes.len()).unwrap_or(0)),
                &ova_path,
            )?;
        }
        write_member_header(&mut out, &disk_name, disk.size, mtime, &ova_path)?;
        let vmdk = disk.file.file();
        vmdk.seek(SeekFrom::Start(0)).at("seeking", &vmdk_path)?;
        let copied = std::io::copy(&mut Read::take(&mut *vmdk, disk.size), &mut out)
            .at("copying", &vmdk_path)?;
        if copied != disk.size {
            return Err(Error::Pipeline(format!(
                "{} shrank while packing the OVA",
                vmdk_path.display()
            )));
        }
        write_zeros(&mut out, ustar::padding(disk.size), &ova_path)?;
        // End of archive: two zero blocks, then pad to whole 10 KiB records like GNU tar.
        let end = out.written() + 2 * ustar::BLOCK;
        write_zeros(
            &mut out,
            2 * ustar::BLOCK + (ustar::RECORD - end % ustar::RECORD) % ustar::RECORD,
            &ova_path,
        )?;
        out.flush().at("writing", &ova_path)?;
        let (_, sha256, size) = out.finish();
        (sha256, size)
    };
    let synced = ova.sync()?;
    if synced != size {
        return Err(Error::Pipeline(format!(
            "{}: wrote {size} bytes but the file has {synced}",
            ova_path.display()
        )));
    }
    tracing::debug!(path = %ova_path.display(), size, "ova written");
    Ok(Produced {
        artifact: ova,
        format: Format::Ova,
        role: Role::Disk,
        container: "ova",
        size,
        sha256,
    })
}

fn write_member_header(
    out: &mut impl Write,
    name: &str,
    size: u64,
    mtime: u64,
    path: &Path,
) -> Result<()> {
    out.write_all(&ustar::header(name, size, mtime)?)
        .at("writing", path)
}

fn write_zeros(out: &mut impl Write, mut count: u64, path: &Path) -> Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while count > 0 {
        let n = usize::try_from(count.min(4096)).unwrap_or(4096);
        out.write_all(&ZEROS[..n]).at("writing", path)?;
        count -= u64::try_from(n).unwrap_or(count);
    }
    Ok(())
}

/// The members of an OVA, checked for ustar structure.
pub fn list_members(path: &Path) -> Result<Vec<ustar::Member>> {
    let slice = FileSlice::open(path)?;
    let len = slice.len();
    let mut members = Vec::new();
    let mut at = 0u64;
    loop {
        if at.checked_add(ustar::BLOCK).is_none_or(|end| end > len) {
            return Err(Error::corrupt(
                path,
                at,
                "archive ends without the two zero blocks",
            ));
        }
        let mut block = [0u8; 512];
        slice.read_exact_at(at, &mut block)?;
        let Some(member) = ustar::parse_header(path, at, &block)? else {
            break;
        };
        let data_end = member
            .data_offset
            .checked_add(member.size)
            .filter(|&e| e <= len);
        let Some(data_end) = data_end else {
            return Err(Error::corrupt(
                path,
                at + 124,
                format!(
                    "member {} of {} bytes runs past the end",
                    member.name, member.size
                ),
            ));
        };
        if members.len() >= MAX_MEMBERS {
            return Err(Error::corrupt(
                path,
                at,
                format!("more than {MAX_MEMBERS} members"),
            ));
        }
        at = data_end + ustar::padding(member.size);
        members.push(member);
    }
    Ok(members)
}

fn read_text_member(path: &Path, member: &ustar::Member) -> Result<String> {
    if member.size > MAX_TEXT_MEMBER {
        return Err(Error::corrupt(
            path,
            member.data_offset,
            format!("{} is {} bytes, too large", member.name, member.size),
        ));
    }
    let slice = FileSlice::open_range(path, member.data_offset, member.size)?;
    let mut bytes = vec![0u8; usize::try_from(member.size).unwrap_or(0)];
    slice.read_exact_at(0, &mut bytes)?;
    String::from_utf8(bytes).map_err(|_| {
        Error::corrupt(
            path,
            member.data_offset,
            format!("{} is not UTF-8", member.name),
        )
    })
}

fn member_sha256(path: &Path, member: &ustar::Member) -> Result<[u8; 32]> {
    let slice = FileSlice::open_range(path, member.data_offset, member.size)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut pos = 0u64;
    while pos < member.size {
        let n = usize::try_from((member.size - pos).min(1 << 20)).unwrap_or(1 << 20);
        slice.read_exact_at(pos, &mut buf[..n])?;
        hasher.update(&buf[..n]);
        pos += u64::try_from(n).unwrap_or(u64::MAX);
    }
    Ok(hasher.finalize().into())
}

/// Parses `.mf` lines `SHA256(name)= hex`.
fn parse_manifest(path: &Path, mf: &str) -> Result<Vec<(String, [u8; 32])>> {
    let mut out = Vec::new();
    for line in mf.lines().filter(|l| !l.trim().is_empty()) {
        let parsed = line
            .strip_prefix("SHA256(")
            .and_then(|rest| rest.split_once(")= "))
            .and_then(|(name, hex)| {
                let mut digest = [0u8; 32];
                hex::decode_to_slice(hex.trim_end(), &mut digest)
                    .ok()
                    .map(|()| (name.to_string(), digest))
            });
        match parsed {
            Some(entry) => out.push(entry),
            None => {
                return Err(Error::corrupt(
                    path,
                    0,
                    format!("manifest line {line:?} is not SHA256(name)= hex"),
                ));
            }
        }
    }
    Ok(out)
}

/// Checks an OVA's structure (member order, ustar headers, manifest digests, `ovf:size`) and
/// opens the disk inside it.
pub fn open_disk(path: &Path) -> Result<VmdkImage> {
    let members = list_members(path)?;
    let (Some(ovf_member), Some(mf_member)) = (members.first(), members.get(1)) else {
        return Err(Error::corrupt(
            path,
            0,
            format!(
                "an OVA needs .ovf, .mf and a disk; found {} members",
                members.len()
            ),
        ));
    };
    if !ovf_member.name.ends_with(".ovf") {
        return Err(Error::corrupt(
            path,
            0,
            format!("first member is {:?}, not the .ovf", ovf_member.name),
        ));
    }
    let expected_mf = format!("{}.mf", ovf_member.name.trim_end_matches(".ovf"));
    if mf_member.name != expected_mf {
        return Err(Error::corrupt(
            path,
            mf_member.data_offset - 512,
            format!("second member is {:?}, not {expected_mf:?}", mf_member.name),
        ));
    }
    let ovf_text = read_text_member(path, ovf_member)?;
    let mf_text = read_text_member(path, mf_member)?;
    let listed = parse_manifest(path, &mf_text)?;
    for (name, digest) in &listed {
        let Some(member) = members.iter().find(|m| &m.name == name) else {
            return Err(Error::mismatch(
                path,
                format!("{expected_mf} lists {name}, which is not in the archive"),
            ));
        };
        let actual = member_sha256(path, member)?;
        if &actual != digest {
            return Err(Error::mismatch(
                path,
                format!(
                    "{name}: SHA-256 {} does not match {expected_mf} ({})",
                    hex::encode(actual),
                    hex::encode(digest)
                ),
            ));
        }
    }
    for member in members.iter().filter(|m| m.name != expected_mf) {
        if !listed.iter().any(|(n, _)| n == &member.name) {
            return Err(Error::mismatch(
                path,
                format!("{} is not covered by {expected_mf}", member.name),
            ));
        }
    }
    let references = ovf::file_references(&ovf_text);
    let Some((href, size)) = references.first() else {
        return Err(Error::corrupt(
            path,
            ovf_member.data_offset,
            "the OVF references no file",
        ));
    };
    let Some(disk) = members.iter().skip(2).find(|m| &m.name == href) else {
        return Err(Error::corrupt(
            path,
            ovf_member.data_offset,
            format!("the OVF references {href}, which is not in the archive"),
        ));
    };
    if size.as_deref() != Some(disk.size.to_string().as_str()) {
        return Err(Error::mismatch(
            path,
            format!(
                "ovf:size of {href} is {size:?} but the member holds {} bytes",
                disk.size
            ),
        ));
    }
    VmdkImage::open_slice(FileSlice::open_range(path, disk.data_offset, disk.size)?)
}
