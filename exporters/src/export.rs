//! `nodeimg export`: check the disk and the size rules, pad when asked, run the single pass,
//! then commit every artifact and write `SHA256SUMS` and `manifest.json` last.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::artifact::{TEMP_PREFIX, TempArtifact};
use crate::error::{Error, IoContext, Result};
use crate::format::{ExportOptions, Format, GIB, validate_name};
use crate::ids::hex_digest;
use crate::instructions::import_instructions;
use crate::manifest::{MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestArtifact, SUMS_FILE};
use crate::pad::{PadOutcome, pad_disk};
use crate::pipeline::{self, Produced, Role};
use crate::progress::Progress;
use crate::source::DiskSource;

/// What an export did.
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The manifest as written.
    pub manifest: Manifest,
    /// Where it was written.
    pub manifest_path: PathBuf,
    /// How the disk was padded, if it was.
    pub pad: Option<PadOutcome>,
}

/// Exports `disk` into `out_dir` as `options` asks.
pub fn export(
    disk: &Path,
    out_dir: &Path,
    options: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    validate_name(&options.name).map_err(|reason| Error::BadInput {
        path: PathBuf::from("--name"),
        reason,
    })?;
    if options.formats.is_empty() {
        return Err(Error::BadInput {
            path: PathBuf::from("--formats"),
            reason: "no format requested".into(),
        });
    }
    let mut source = DiskSource::open(disk)?;
    let pad = apply_size_rules(&mut source, options)?;
    prepare_out_dir(out_dir, disk, options)?;

    let writers = crate::formats::writers_for(options, out_dir, source.virtual_size())?;
    let (ctx, mut produced) = pipeline::run(&source, writers, options, out_dir, progress)?;

    let sizes: Vec<(String, u64)> = produced
        .iter()
        .map(|p| (p.artifact.file_name(), p.size))
        .collect();
    for (format, file, text) in import_instructions(options, ctx.virtual_size, &sizes) {
        produced.push(metadata_artifact(out_dir, &file, text.as_bytes(), format)?);
    }
    produced.sort_by_key(|p| (p.format, p.role == Role::Metadata, p.artifact.file_name()));

    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        name: options.name.clone(),
        virtual_size: ctx.virtual_size,
        content_sha256: hex_digest(&ctx.content_digest),
        padded_from: pad.as_ref().map(|p| p.original_size),
        firmware: options.firmware,
        source_date_epoch: options.source_date_epoch,
        artifacts: produced
            .iter()
            .map(|p| ManifestArtifact {
                file: p.artifact.file_name(),
                format: p.format,
                role: p.role,
                container: p.container.to_string(),
                size: p.size,
                sha256: hex_digest(&p.sha256),
            })
            .collect(),
        build: None,
    };
    // Every artifact is complete and synced: rename them into place, then the sums, then the
    // manifest, so a manifest exists only when everything it lists does.
    for p in produced {
        p.artifact.commit()?;
    }
    write_small_file(out_dir, SUMS_FILE, manifest.sums().as_bytes())?;
    let manifest_path = write_small_file(out_dir, MANIFEST_FILE, manifest.to_json().as_bytes())?;
    Ok(ExportReport {
        manifest,
        manifest_path,
        pad,
    })
}

/// Refuses sizes that break a requested format's rule, or pads when `--pad` was given.
fn apply_size_rules(
    source: &mut DiskSource,
    options: &ExportOptions,
) -> Result<Option<PadOutcome>> {
    let size = source.virtual_size();
    let broken = options
        .formats
        .iter()
        .find_map(|f| f.size_rule().filter(|r| !r.holds(size)).map(|r| (*f, r)));
    let Some((format, rule)) = broken else {
        return Ok(None);
    };
    let padded = size.div_ceil(GIB) * GIB;
    if !options.pad {
        let below = size / rule.multiple * rule.multiple;
        return Err(Error::SizeRule {
            path: source.path().to_path_buf(),
            format: format.name(),
            rule: rule.rule,
            size,
            below,
            above: below + rule.multiple,
            padded,
        });
    }
    pad_disk(source, padded).map(Some)
}

fn prepare_out_dir(out_dir: &Path, disk: &Path, options: &ExportOptions) -> Result<()> {
    match fs::metadata(out_dir) {
        Ok(m) if !m.is_dir() => {
            return Err(Error::BadInput {
                path: out_dir.to_path_buf(),
                reason: "output path exists and is not a directory".into(),
            });
        }
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(out_dir).at("creating directory", out_dir)?
        }
        Err(e) => return Err(Error::io("reading metadata of", out_dir, e)),
    }
    // Never let an artifact replace the input disk.
    if let (Ok(input), Ok(dir)) = (disk.canonicalize(), out_dir.canonicalize()) {
        for ext in ["raw", "qcow2", "vhd", "ova", "tar.gz", "vmdk"] {
            if dir.join(format!("{}.{ext}", options.name)) == input {
                return Err(Error::BadInput {
                    path: disk.to_path_buf(),
                    reason: format!(
                        "is where the {ext} artifact would be written; choose another --out or --name"
                    ),
                });
            }
        }
    }
    // A previous export's manifest must not survive next to new, possibly partial files.
    for stale in [MANIFEST_FILE, SUMS_FILE] {
        match fs::remove_file(out_dir.join(stale)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing old", &out_dir.join(stale), e)),
        }
    }
    for entry in fs::read_dir(out_dir).at("listing", out_dir)? {
        let entry = entry.at("listing", out_dir)?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path()).at("removing stale temporary", &entry.path())?;
        }
    }
    Ok(())
}

/// A small metadata artifact (JSON, instructions) as a [`Produced`].
pub(crate) fn metadata_artifact(
    dir: &Path,
    file: &str,
    bytes: &[u8],
    format: Format,
) -> Result<Produced> {
    let mut artifact = TempArtifact::create(dir, file)?;
    let path = artifact.temp_path().to_path_buf();
    artifact.file().write_all(bytes).at("writing", &path)?;
    let size = artifact.sync()?;
    let sha256 = {
        use sha2::Digest;
        sha2::Sha256::digest(bytes).into()
    };
    let container = if file.ends_with(".json") {
        "json"
    } else {
        "text"
    };
    Ok(Produced {
        artifact,
        format,
        role: Role::Metadata,
        container,
        size,
        sha256,
    })
}

fn write_small_file(dir: &Path, file: &str, bytes: &[u8]) -> Result<PathBuf> {
    let mut artifact = TempArtifact::create(dir, file)?;
    let path = artifact.temp_path().to_path_buf();
    artifact.file().write_all(bytes).at("writing", &path)?;
    artifact.commit()
}
