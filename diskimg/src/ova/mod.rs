//! vSphere OVA: an OVF 1.x envelope, a `.mf` manifest and the streamOptimized VMDK, packed as
//! ustar in that order (formats.md §3). Read back with every member checked against the
//! manifest; the ustar header layout and the `.mf` text are shared with the exporters' writer.

pub mod ustar;

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::image::FileSlice;
use crate::vmdk::VmdkImage;
use crate::xml;

/// Most members an OVA may hold before the reader gives up.
const MAX_MEMBERS: usize = 64;
/// Largest `.ovf` or `.mf` the reader loads.
const MAX_TEXT_MEMBER: u64 = 16 << 20;

/// The `.mf` text: `SHA256(name)= hex` lines, `.ovf` first.
pub fn manifest_text(entries: &[(&str, &[u8; 32])]) -> String {
    entries
        .iter()
        .map(|(name, digest)| format!("SHA256({name})= {}\n", hex::encode(digest)))
        .collect()
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

/// The text of `member` (an `.ovf` or `.mf`), at most 16 MiB of UTF-8.
pub fn read_text_member(path: &Path, member: &ustar::Member) -> Result<String> {
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
    let references = file_references(&ovf_text);
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

/// The `ovf:size` and `ovf:href` of every `<File>` in `References` (a minimal scan, enough
/// for the envelopes this crate writes and similar ones).
pub fn file_references(ovf: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = ovf;
    while let Some(start) = rest.find("<File ").or_else(|| rest.find("<ovf:File ")) {
        let tail = &rest[start..];
        let end = tail.find('>').unwrap_or(tail.len());
        let tag = &tail[..end];
        if let Some(href) = attribute(tag, "ovf:href") {
            out.push((href, attribute(tag, "ovf:size")));
        }
        rest = &tail[end..];
    }
    out
}

/// The unescaped value of `name="..."` in a start tag.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut search = tag;
    loop {
        let at = search.find(name)?;
        let before_ok = search[..at].ends_with(|c: char| c.is_whitespace());
        let after = search[at + name.len()..].trim_start();
        if before_ok && let Some(after) = after.strip_prefix('=') {
            let after = after.trim_start();
            let quote = after.chars().next().filter(|&q| q == '"' || q == '\'')?;
            let value = &after[1..];
            let close = value.find(quote)?;
            return Some(xml::unescape(&value[..close]));
        }
        search = &search[at + name.len()..];
    }
}
