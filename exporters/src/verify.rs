//! `nodeimg verify DIR`: re-read every artifact the manifest lists with the project's own
//! readers, recompute its SHA-256 and (for disks) its content digest, and check each cloud's
//! size rule. The first mismatch is the error.
//!
//! Two phases, so a damaged file is reported before any long content read: first every file's
//! size and SHA-256, then every disk's virtual size and content digest. A raw file's content
//! is the file itself, and a fixed VHD's is the file minus its footer, so for those both
//! digests come from one read.

use std::fmt::Display;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::format::Format;
use crate::formats::gce;
use crate::ids::hex_digest;
use crate::manifest::{BuildFile, DOCUMENT_LIMIT, Manifest, ManifestArtifact, SUMS_FILE};
use crate::pipeline::Role;
use crate::progress::Progress;
use diskimg::ImageFormat;
use diskimg::image::{DiskImage, content_digest};
use diskimg::input_file::{open_regular, read_bounded_string};
use diskimg::vhd::VhdImage;

/// One artifact that passed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Verified {
    /// File name.
    pub file: String,
    /// Format it belongs to.
    pub format: Format,
    /// What was checked, in words.
    pub checks: Vec<String>,
}

/// Everything that passed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    /// The manifest that was checked against.
    pub name: String,
    /// Content digest every disk artifact reproduced.
    pub content_sha256: String,
    /// Per-artifact results, in manifest order.
    pub artifacts: Vec<Verified>,
}

/// Virtual size and content digest of a disk, when the file-digest pass already knows them.
type KnownContent = Option<(u64, [u8; 32])>;

/// Verifies the export in `dir`.
pub fn verify(dir: &Path, progress: &dyn Progress) -> Result<VerifyReport> {
    let manifest = Manifest::load(dir)?;
    let sums_path = dir.join(SUMS_FILE);
    let sums = read_bounded_string(&sums_path, DOCUMENT_LIMIT, "a SHA256SUMS file")
        .at("reading", &sums_path)?;
    if sums != manifest.sums() {
        return Err(Error::mismatch(
            &sums_path,
            "does not list the same files and digests as manifest.json",
        ));
    }
    let mut known = Vec::with_capacity(manifest.artifacts.len());
    for artifact in &manifest.artifacts {
        known.push(check_file(dir, artifact, progress)?);
    }
    let mut artifacts = Vec::new();
    for (artifact, known) in manifest.artifacts.iter().zip(known) {
        artifacts.push(check_content(dir, &manifest, artifact, known, progress)?);
    }
    for file in manifest.build.iter().flat_map(|b| b.files.iter()) {
        check_build_file(dir, file, progress)?;
    }
    Ok(VerifyReport {
        name: manifest.name.clone(),
        content_sha256: manifest.content_sha256.clone(),
        artifacts,
    })
}

/// Size and SHA-256 of the file; for raw and VHD also the content, from the same read.
fn check_file(
    dir: &Path,
    artifact: &ManifestArtifact,
    progress: &dyn Progress,
) -> Result<KnownContent> {
    let (path, size) = checked_size(dir, &artifact.file, artifact.size)?;
    let disk = artifact.role == Role::Disk;
    // Where the guest-visible content ends inside the file, for containers that are the disk.
    let content_len = match ImageFormat::from_name(&artifact.container) {
        Some(ImageFormat::Raw) if disk => Some(size),
        Some(ImageFormat::Vhd) if disk => Some(VhdImage::open(&path)?.virtual_size()),
        _ => None,
    };
    let task = format!("{} sha256", artifact.file);
    progress.started(&task, size);
    let mut file = open_regular(&path).at("opening", &path)?;
    let mut hasher = Sha256::new();
    let mut content = None;
    let mut buf = vec![0u8; 1 << 20];
    let mut done = 0u64;
    loop {
        let want = match content_len {
            Some(end) if done < end => {
                usize::try_from((end - done).min(1 << 20)).unwrap_or(1 << 20)
            }
            _ => buf.len(),
        };
        let n = file.read(&mut buf[..want]).at("reading", &path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        done += n as u64;
        if content_len == Some(done) {
            content = Some((done, hasher.clone().finalize().into()));
        }
        progress.advanced(&task, done);
    }
    progress.finished(&task);
    let sha = hex_digest(&hasher.finalize().into());
    as_listed(&path, &sha, &artifact.sha256, |sha| {
        format!("sha256 is {sha}")
    })?;
    Ok(content)
}

/// Size and SHA-256 of one of the build's own files.
fn check_build_file(dir: &Path, file: &BuildFile, progress: &dyn Progress) -> Result<()> {
    let (path, size) = checked_size(dir, &file.file, file.size)?;
    let task = format!("{} sha256", file.file);
    progress.started(&task, size);
    let reader =
        std::io::BufReader::with_capacity(1 << 20, open_regular(&path).at("opening", &path)?);
    let sha = hex_digest(&crate::artifact::sha256_reader(reader).at("reading", &path)?);
    progress.finished(&task);
    as_listed(&path, &sha, &file.sha256, |sha| format!("sha256 is {sha}"))
}

fn check_content(
    dir: &Path,
    manifest: &Manifest,
    artifact: &ManifestArtifact,
    known: KnownContent,
    progress: &dyn Progress,
) -> Result<Verified> {
    let path = artifact_path(dir, &artifact.file)?;
    let mut checks = vec!["size and sha256 match the manifest".to_string()];
    if artifact.role != Role::Disk {
        return Ok(Verified {
            file: artifact.file.clone(),
            format: artifact.format,
            checks,
        });
    }
    let (virtual_size, digest) = match known {
        Some(known) => known,
        None => {
            let task = artifact.file.clone();
            progress.started(&task, manifest.virtual_size);
            let read = read_disk(&path, &artifact.container, &mut |done| {
                progress.advanced(&task, done)
            })?;
            progress.finished(&task);
            read
        }
    };
    as_listed(&path, &virtual_size, &manifest.virtual_size, |size| {
        format!("holds a {size}-byte disk")
    })?;
    as_listed(
        &path,
        &hex_digest(&digest),
        &manifest.content_sha256,
        |digest| format!("content digest is {digest}"),
    )?;
    checks.push(format!(
        "{} reader: virtual size and content digest match",
        artifact.container
    ));
    if let Some(rule) = artifact.format.size_rule() {
        if !rule.holds(virtual_size) {
            return Err(Error::mismatch(
                &path,
                format!("breaks the size rule: {} (size {virtual_size})", rule.rule),
            ));
        }
        checks.push(format!("size rule holds: {}", rule.rule));
    }
    Ok(Verified {
        file: artifact.file.clone(),
        format: artifact.format,
        checks,
    })
}

/// Reads a disk artifact: its virtual size and content digest.
pub fn read_disk(
    path: &Path,
    container: &str,
    on_progress: &mut dyn FnMut(u64),
) -> Result<(u64, [u8; 32])> {
    let mut image = match ImageFormat::from_name(container) {
        Some(ImageFormat::GceTarGz) => {
            let content = gce::read_content(path, on_progress)?;
            return Ok((content.virtual_size, content.content_digest));
        }
        Some(format) => format.open(path)?,
        None => {
            return Err(Error::mismatch(
                path,
                format!("unknown container {container:?} in the manifest"),
            ));
        }
    };
    let digest = content_digest(image.as_mut(), on_progress)?;
    Ok((image.virtual_size(), digest))
}

/// `dir/file` (see [`artifact_path`]) and its size, which must be `expected` (the manifest's).
fn checked_size(dir: &Path, file: &str, expected: u64) -> Result<(PathBuf, u64)> {
    let path = artifact_path(dir, file)?;
    let size = std::fs::metadata(&path)
        .at("reading metadata of", &path)?
        .len();
    as_listed(&path, &size, &expected, |size| {
        format!("size is {size} bytes")
    })?;
    Ok((path, size))
}

/// Checks a value `found` in the file at `path` against the one the manifest `listed`; when
/// they differ, the mismatch reads "`describe(found)`, the manifest says `listed`".
fn as_listed<T: PartialEq + Display + ?Sized>(
    path: &Path,
    found: &T,
    listed: &T,
    describe: impl FnOnce(&T) -> String,
) -> Result<()> {
    if found == listed {
        return Ok(());
    }
    Err(Error::mismatch(
        path,
        format!("{}, the manifest says {listed}", describe(found)),
    ))
}

/// `dir/file`, refusing names that would leave `dir`.
fn artifact_path(dir: &Path, file: &str) -> Result<PathBuf> {
    let plain = !file.is_empty() && !file.contains('/') && file != "." && file != "..";
    if !plain {
        return Err(Error::mismatch(
            &dir.join("manifest.json"),
            format!("artifact name {file:?} is not a plain file name"),
        ));
    }
    Ok(dir.join(file))
}
