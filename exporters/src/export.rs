//! `nodeimg export`: check the options, the disk and the size rules, pad when asked, lock the
//! output directory, run the single pass, then commit every artifact and `SHA256SUMS` and
//! `manifest.json` last.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use diskimg::ImageFormat;

use crate::artifact::{TEMP_PREFIX, TempArtifact};
use crate::dir_lock::{DirLock, EXPORT_LOCK_FILE};
use crate::error::{Error, IoContext, Result};
use crate::format::{ExportOptions, GIB, check_source_date_epoch, validate_name};
use crate::ids::hex_digest;
use crate::instructions::import_instructions;
use crate::manifest::{MANIFEST_FILE, MANIFEST_VERSION, Manifest, ManifestArtifact, SUMS_FILE};
use crate::pad::{PadOutcome, pad_disk};
use crate::pipeline::{self, Role};
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
///
/// The directory is locked for the whole run ([`DirLock`], `OUT/.nodeimg.lock`): a second
/// export into it fails at once, naming the holder. A previous complete export there stays
/// complete and verifiable until the new one is: see [`commit`]. When the run fails, an
/// `out_dir` it created is removed again if it is still empty.
pub fn export(
    disk: &Path,
    out_dir: &Path,
    options: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    check_options(options)?;
    refuse_containers(disk)?;
    let mut source = DiskSource::open(disk)?;
    let pad = apply_size_rules(&mut source, options)?;
    let created = make_out_dir(out_dir)?;
    let result = export_locked(&source, pad, out_dir, created, options, progress);
    if result.is_err() && created {
        // Only when empty: the lock file and every temporary are gone by now.
        let _ = fs::remove_dir(out_dir);
    }
    result
}

/// Refuses a bad `--name`, no formats, a `--property` key given twice and a
/// `SOURCE_DATE_EPOCH` later than every format can record.
fn check_options(options: &ExportOptions) -> Result<()> {
    let bad = |what: &str, reason: String| Error::bad_input(&PathBuf::from(what), reason);
    validate_name(&options.name).map_err(|reason| bad("--name", reason))?;
    if options.formats.is_empty() {
        return Err(bad("--formats", "no format requested".into()));
    }
    for (i, (key, _)) in options.properties.iter().enumerate() {
        if options.properties[..i].iter().any(|(k, _)| k == key) {
            return Err(bad(
                "--property",
                format!("key {key:?} is given twice (an OVF property key must be unique)"),
            ));
        }
    }
    check_source_date_epoch(options.source_date_epoch)
        .map_err(|reason| bad("SOURCE_DATE_EPOCH", reason))?;
    Ok(())
}

/// Refuses an input that is an image container rather than a raw disk (detected by its
/// magic, as `inspect` does), with the command that makes a raw disk of it.
fn refuse_containers(disk: &Path) -> Result<()> {
    // Only a non-empty regular file is probed; for anything else (and when no format is
    // recognised) `DiskSource::open` gives the precise error. Probing before that check
    // matters: a qcow2 need not be whole sectors, and must not be called "not a raw disk
    // size".
    let probe = diskimg::input_file::open_regular(disk)
        .and_then(|f| f.metadata())
        .is_ok_and(|m| m.len() > 0);
    let format = match probe.then(|| ImageFormat::detect(disk)) {
        Some(Ok(format)) => format,
        // A format nodeimg cannot read at all (VHDX, a VMDK descriptor, ...) is named, never
        // exported as if it were raw; a size that is not whole sectors is left to
        // `DiskSource::open`, whose message says how far into a sector the file ends.
        Some(Err(e @ diskimg::Error::UnsupportedFormat { .. })) => return Err(e.into()),
        _ => return Ok(()),
    };
    let shown = disk.display();
    let how = match format {
        ImageFormat::Raw => return Ok(()),
        ImageFormat::Ova => format!(
            "tar -xf {shown} (the .vmdk inside), then qemu-img convert -f vmdk -O raw DISK.vmdk OUT.raw"
        ),
        ImageFormat::GceTarGz => format!("tar -xzf {shown} disk.raw"),
        qemu_readable => format!(
            "qemu-img convert -f {} -O raw {shown} OUT.raw",
            qemu_readable.qemu_driver().unwrap_or("raw")
        ),
    };
    Err(Error::bad_input(
        disk,
        format!("is a {format} image, not a raw disk; export takes a raw disk: {how}"),
    ))
}

/// Creates `out_dir` if missing (true when this call created it); refuses a non-directory.
fn make_out_dir(out_dir: &Path) -> Result<bool> {
    match fs::metadata(out_dir) {
        Ok(m) if !m.is_dir() => Err(Error::bad_input(
            out_dir,
            "output path exists and is not a directory",
        )),
        Ok(_) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            fs::create_dir_all(out_dir).at("creating directory", out_dir)?;
            Ok(true)
        }
        Err(e) => Err(Error::io("reading metadata of", out_dir, e)),
    }
}

fn export_locked(
    source: &DiskSource,
    pad: Option<PadOutcome>,
    out_dir: &Path,
    created: bool,
    options: &ExportOptions,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    let _lock = DirLock::acquire(out_dir, EXPORT_LOCK_FILE)?;
    let _active = Active::register(out_dir, created);
    prepare_out_dir(out_dir, source.path(), options)?;

    let writers = crate::formats::writers_for(options, out_dir, source.virtual_size())?;
    let (ctx, mut produced) = pipeline::run(source, writers, options, out_dir, progress)?;

    let sizes: Vec<(String, u64)> = produced
        .iter()
        .map(|p| (p.artifact.file_name(), p.size))
        .collect();
    for (format, file, text) in import_instructions(options, ctx.virtual_size, &sizes) {
        produced.push(pipeline::metadata_artifact(
            out_dir,
            &file,
            text.as_bytes(),
            format,
        )?);
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
    let sums = small_file(out_dir, SUMS_FILE, manifest.sums().as_bytes())?;
    let manifest_file = small_file(out_dir, MANIFEST_FILE, manifest.to_json().as_bytes())?;
    let manifest_path = commit(
        out_dir,
        produced.into_iter().map(|p| p.artifact).collect(),
        sums,
        manifest_file,
    )?;
    Ok(ExportReport {
        manifest,
        manifest_path,
        pad,
    })
}

/// Puts a complete, synced new set in place of whatever `out_dir` holds: the old
/// `manifest.json` and `SHA256SUMS` go first (so no manifest ever describes bytes it does not
/// match), then every artifact is renamed into place, then `SHA256SUMS`, then `manifest.json`
/// last. Nothing here writes data: every file was written and fsynced beforehand, so the
/// window is a few renames. Interrupt clean-up ([`abandon_in_progress`]) waits for it.
///
/// A crash (power loss, SIGKILL) inside the window can leave: no manifest and no sums, the
/// artifacts renamed so far (new) next to the not yet replaced ones (old), and the remaining
/// `.nodeimg-partial.*` temporaries (removed by the next export). `nodeimg verify` then fails
/// with "no manifest" — never a manifest that lies; export again to get a complete set.
fn commit(
    out_dir: &Path,
    artifacts: Vec<TempArtifact>,
    sums: TempArtifact,
    manifest: TempArtifact,
) -> Result<PathBuf> {
    let _window = active_exports();
    for old in [MANIFEST_FILE, SUMS_FILE] {
        let path = out_dir.join(old);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io("removing the previous", &path, e)),
        }
    }
    sync_dir(out_dir)?;
    for artifact in artifacts {
        artifact.commit()?;
    }
    sums.commit()?;
    manifest.commit()
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .at("syncing directory", dir)?;
    Ok(())
}

/// Output directories this process is exporting into while holding their lock, each with
/// whether this run created it.
static ACTIVE: Mutex<Vec<(PathBuf, bool)>> = Mutex::new(Vec::new());

fn active_exports() -> MutexGuard<'static, Vec<(PathBuf, bool)>> {
    ACTIVE.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Registration of one locked export, for [`abandon_in_progress`]; removed on drop.
struct Active {
    dir: PathBuf,
}

impl Active {
    fn register(dir: &Path, created: bool) -> Self {
        active_exports().push((dir.to_path_buf(), created));
        Active {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        let mut active = active_exports();
        if let Some(i) = active.iter().position(|(d, _)| *d == self.dir) {
            active.remove(i);
        }
    }
}

/// For a signal handler about to end the process: removes the `.nodeimg-partial.*`
/// temporaries and the lock file of every export this process has in progress (only those
/// whose directory it holds the lock of), and returns what it did. An export inside its
/// commit window finishes the commit first. The previous complete set in each directory is
/// left untouched.
pub fn abandon_in_progress() -> String {
    let active = active_exports();
    let mut done = Vec::new();
    for (dir, created) in active.iter() {
        let removed = remove_temporaries(dir).unwrap_or(0);
        let _ = fs::remove_file(dir.join(EXPORT_LOCK_FILE));
        if *created {
            let _ = fs::remove_dir(dir);
        }
        done.push(format!(
            "removed {removed} partial file(s) from {}",
            dir.display()
        ));
    }
    // Keep the lock on ACTIVE: the caller exits, and no commit may start after this.
    std::mem::forget(active);
    if done.is_empty() {
        "no export was writing".into()
    } else {
        done.join("; ")
    }
}

/// Removes every `.nodeimg-partial.*` in `dir` (call only while holding its lock).
fn remove_temporaries(dir: &Path) -> Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir).at("listing", dir)? {
        let entry = entry.at("listing", dir)?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            fs::remove_file(entry.path()).at("removing stale temporary", &entry.path())?;
            removed += 1;
        }
    }
    Ok(removed)
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

/// Refuses an artifact name that is the input disk, and removes temporaries a killed export
/// left (we hold the directory's lock: no other export is writing them). The previous
/// complete set (artifacts, `SHA256SUMS`, `manifest.json`) is left alone until [`commit`].
fn prepare_out_dir(out_dir: &Path, disk: &Path, options: &ExportOptions) -> Result<()> {
    // Never let an artifact replace the input disk.
    if let (Ok(input), Ok(dir)) = (disk.canonicalize(), out_dir.canonicalize()) {
        for ext in ["raw", "qcow2", "vhd", "ova", "tar.gz", "vmdk"] {
            if dir.join(format!("{}.{ext}", options.name)) == input {
                return Err(Error::bad_input(
                    disk,
                    format!(
                        "is where the {ext} artifact would be written; choose another --out or --name"
                    ),
                ));
            }
        }
    }
    remove_temporaries(out_dir)?;
    Ok(())
}

/// A small file written and synced under its temporary name, committed later.
fn small_file(dir: &Path, file: &str, bytes: &[u8]) -> Result<TempArtifact> {
    let mut artifact = TempArtifact::create(dir, file)?;
    let path = artifact.temp_path().to_path_buf();
    artifact.file().write_all(bytes).at("writing", &path)?;
    artifact.sync()?;
    Ok(artifact)
}
