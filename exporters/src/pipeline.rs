//! The single read pass: one thread reads the disk's data regions, grains are classified (and
//! deflated once when any writer compresses), and every writer consumes the same batches on
//! its own thread. Then every writer finishes in parallel.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread;

use diskimg::ImageFormat;
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::artifact::TempArtifact;
use crate::batch::{Batch, BatchContent, DataBatch, GRAIN_BYTES, GRAIN_SIZE, Grain, is_all_zero};
use crate::deflate::deflate_grain;
use crate::error::{Error, IoContext, Result};
use crate::format::{ExportOptions, Format};
use crate::priority::lower_if;
use crate::progress::Progress;
use crate::source::DiskSource;

/// Bytes per data batch: 64 grains.
pub const BATCH_SIZE: u64 = 64 * GRAIN_SIZE;
/// Longest single zero batch (keeps progress moving across big holes).
const MAX_ZERO_BATCH: u64 = 1 << 30;
/// Batches in flight per writer.
const QUEUE_DEPTH: usize = 4;

/// One consumer of the pass: a format writer.
pub trait DiskWriter: Send {
    /// Name shown in progress.
    fn task(&self) -> &'static str;
    /// True when this writer uses [`Grain::deflated`].
    fn needs_deflate(&self) -> bool {
        false
    }
    /// Consumes the next batch (batches arrive in order and cover the whole disk).
    fn consume(&mut self, batch: &Batch) -> Result<()>;
    /// Completes the artifacts (still under temporary names).
    fn finish(self: Box<Self>, ctx: &FinishContext) -> Result<Vec<Produced>>;
}

/// What every writer knows once the pass is over.
#[derive(Debug, Clone)]
pub struct FinishContext {
    /// SHA-256 of the virtual disk as a guest sees it.
    pub content_digest: [u8; 32],
    /// The hasher state after the whole virtual disk (not finalized): a fixed VHD's digest is
    /// this plus its footer.
    pub content_hasher: Sha256,
    /// Virtual disk size in bytes.
    pub virtual_size: u64,
    /// The export options.
    pub options: ExportOptions,
    /// Output directory.
    pub dir: PathBuf,
}

impl FinishContext {
    /// Checks that writer `task`, whose batches ended at `next` of its `virtual_size`-byte
    /// disk, saw the whole disk of the pass.
    pub(crate) fn check_covered(&self, task: &str, next: u64, virtual_size: u64) -> Result<()> {
        if next != virtual_size || self.virtual_size != virtual_size {
            return Err(Error::Pipeline(format!(
                "{task}: batches covered {next} of {virtual_size} bytes (pass saw {})",
                self.virtual_size
            )));
        }
        Ok(())
    }
}

/// What an artifact is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds the disk; `verify` recomputes its content digest.
    Disk,
    /// Metadata next to a disk (import JSON, instructions).
    Metadata,
}

/// A finished artifact, still under its temporary name.
#[derive(Debug)]
pub struct Produced {
    /// The file.
    pub artifact: TempArtifact,
    /// Which requested format it belongs to.
    pub format: Format,
    /// Disk or metadata.
    pub role: Role,
    /// The container a reader must parse: a disk's [`diskimg::ImageFormat`] name (raw, qcow2,
    /// vhd, vmdk, ova, tar.gz), or json, text for metadata.
    pub container: &'static str,
    /// File size.
    pub size: u64,
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
}

impl Produced {
    /// A disk artifact of `format` in the container `container`.
    pub fn disk(
        artifact: TempArtifact,
        format: Format,
        container: ImageFormat,
        size: u64,
        sha256: [u8; 32],
    ) -> Self {
        Produced {
            artifact,
            format,
            role: Role::Disk,
            container: container.as_str(),
            size,
            sha256,
        }
    }
}

/// Runs the pass over `source` feeding `writers`, then finishes them.
pub fn run(
    source: &DiskSource,
    writers: Vec<Box<dyn DiskWriter>>,
    options: &ExportOptions,
    dir: &Path,
    progress: &dyn Progress,
) -> Result<(FinishContext, Vec<Produced>)> {
    let started = std::time::Instant::now();
    let deflate = writers.iter().any(|w| w.needs_deflate());
    let total = source.virtual_size();
    let ranges = source.data_ranges()?;

    let background = options.background;
    let deflater = Deflater::new(deflate, background)?;
    let mut tasks: Vec<&'static str> = writers.iter().map(|w| w.task()).collect();
    let (writers, hasher) = thread::scope(|scope| -> Result<_> {
        let (raw_tx, raw_rx) = sync_channel::<Result<Batch>>(2);
        let reader = scope.spawn(move || {
            lower_if(background);
            read_batches(source, &ranges, &raw_tx);
        });

        let mut senders: Vec<SyncSender<Arc<Batch>>> = Vec::new();
        let mut handles = Vec::new();
        for mut writer in writers {
            let (tx, rx) = sync_channel::<Arc<Batch>>(QUEUE_DEPTH);
            senders.push(tx);
            handles.push(scope.spawn(move || -> Result<Box<dyn DiskWriter>> {
                lower_if(background);
                let task = writer.task();
                progress.started(task, total);
                for batch in rx {
                    writer.consume(&batch)?;
                    progress.advanced(task, batch.end());
                }
                Ok(writer)
            }));
        }
        let (hash_tx, hash_rx) = sync_channel::<Arc<Batch>>(QUEUE_DEPTH);
        senders.push(hash_tx);
        let hasher = scope.spawn(move || {
            lower_if(background);
            hash_content(&hash_rx, progress, total)
        });

        let fed = feed(&raw_rx, &senders, &deflater);
        drop(senders);
        drop(raw_rx);
        reader
            .join()
            .map_err(|_| Error::Pipeline("reader thread panicked".into()))?;

        let finished = join_all(handles, "a writer thread panicked");
        let hasher = hasher
            .join()
            .map_err(|_| Error::Pipeline("hasher thread panicked".into()))?;
        let finished = finished?;
        fed?;
        Ok((finished, hasher))
    })?;

    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "read pass done");
    let content_digest: [u8; 32] = hasher.clone().finalize().into();
    let ctx = FinishContext {
        content_digest,
        content_hasher: hasher,
        virtual_size: total,
        options: options.clone(),
        dir: dir.to_path_buf(),
    };
    // Nothing is reported done until every writer has finished: a failed export (a full disk)
    // must not print "done" for a phase just before its error.
    let produced = thread::scope(|scope| {
        let handles: Vec<_> = writers
            .into_iter()
            .map(|w| {
                let ctx = &ctx;
                scope.spawn(move || {
                    lower_if(background);
                    let task = w.task();
                    let finishing = std::time::Instant::now();
                    let result = w.finish(ctx);
                    tracing::debug!(
                        task,
                        seconds = finishing.elapsed().as_secs_f64(),
                        "finished"
                    );
                    result
                })
            })
            .collect();
        join_all(handles, "a writer panicked while finishing")
            .map(|lists| lists.into_iter().flatten().collect::<Vec<_>>())
    })?;
    tasks.insert(0, "digest");
    for task in tasks {
        progress.finished(task);
    }
    Ok((ctx, produced))
}

/// Where the grains of a batch are deflated, if any writer needs them: rayon's global pool, or
/// for a background export a pool of its own whose threads run at the lower priority.
enum Deflater {
    None,
    Global,
    Background(rayon::ThreadPool),
}

impl Deflater {
    fn new(deflate: bool, background: bool) -> Result<Self> {
        Ok(match (deflate, background) {
            (false, _) => Deflater::None,
            (true, false) => Deflater::Global,
            (true, true) => Deflater::Background(
                rayon::ThreadPoolBuilder::new()
                    .thread_name(|i| format!("export-deflate-{i}"))
                    .start_handler(|_| crate::priority::lower_this_thread())
                    .build()
                    .map_err(|e| Error::Pipeline(format!("starting the deflate threads: {e}")))?,
            ),
        })
    }

    fn deflate(&self, batch: &mut Batch) {
        match self {
            Deflater::None => {}
            Deflater::Global => deflate_batch(batch),
            Deflater::Background(pool) => pool.install(|| deflate_batch(batch)),
        }
    }
}

/// Deflates (when asked) and hands every batch to every consumer, in order.
fn feed(
    raw_rx: &Receiver<Result<Batch>>,
    senders: &[SyncSender<Arc<Batch>>],
    deflater: &Deflater,
) -> Result<()> {
    for batch in raw_rx {
        let mut batch = batch?;
        deflater.deflate(&mut batch);
        let batch = Arc::new(batch);
        for tx in senders {
            if tx.send(Arc::clone(&batch)).is_err() {
                // That consumer stopped on an error; its error is reported by the caller.
                return Ok(());
            }
        }
    }
    Ok(())
}

fn deflate_batch(batch: &mut Batch) {
    if let BatchContent::Data(data) = &mut batch.content {
        let DataBatch { bytes, grains } = data;
        grains
            .par_iter_mut()
            .zip(bytes.par_chunks(GRAIN_BYTES))
            .for_each(|(grain, chunk)| {
                if !grain.zero {
                    grain.deflated = Some(Arc::new(deflate_grain(chunk)));
                }
            });
    }
}

/// Reads the virtual disk in order: holes become zero batches without reading.
fn read_batches(source: &DiskSource, ranges: &[(u64, u64)], tx: &SyncSender<Result<Batch>>) {
    let total = source.virtual_size();
    let mut pos = 0u64;
    let mut next_range = 0usize;
    while pos < total {
        while next_range < ranges.len() && ranges[next_range].1 <= pos {
            next_range += 1;
        }
        let data_start = ranges.get(next_range).map_or(total, |r| r.0.max(pos));
        let zero_end = (data_start / GRAIN_SIZE * GRAIN_SIZE).min(total);
        if zero_end > pos {
            let len = (zero_end - pos).min(MAX_ZERO_BATCH);
            if tx
                .send(Ok(Batch {
                    offset: pos,
                    len,
                    content: BatchContent::Zero,
                }))
                .is_err()
            {
                return;
            }
            pos += len;
            continue;
        }
        let len = BATCH_SIZE.min(total - pos);
        let batch = read_data_batch(source, pos, len);
        let failed = batch.is_err();
        if tx.send(batch).is_err() || failed {
            return;
        }
        pos += len;
    }
}

fn read_data_batch(source: &DiskSource, offset: u64, len: u64) -> Result<Batch> {
    let mut bytes =
        vec![0u8; usize::try_from(len).map_err(|_| Error::Pipeline("batch too large".into()))?];
    source.read_at(offset, &mut bytes)?;
    let grains: Vec<Grain> = bytes
        .chunks(GRAIN_BYTES)
        .map(|chunk| Grain {
            zero: is_all_zero(chunk),
            deflated: None,
        })
        .collect();
    let content = if grains.iter().all(|g| g.zero) {
        BatchContent::Zero
    } else {
        BatchContent::Data(DataBatch { bytes, grains })
    };
    Ok(Batch {
        offset,
        len,
        content,
    })
}

/// SHA-256 of the full virtual disk, zeros included.
fn hash_content(rx: &Receiver<Arc<Batch>>, progress: &dyn Progress, total: u64) -> Sha256 {
    let started = std::time::Instant::now();
    static ZEROS: [u8; 1 << 16] = [0; 1 << 16];
    let mut hasher = Sha256::new();
    progress.started("digest", total);
    for batch in rx {
        match &batch.content {
            BatchContent::Data(data) => hasher.update(&data.bytes),
            BatchContent::Zero => {
                let mut left = batch.len;
                while left > 0 {
                    let n = left.min(ZEROS.len() as u64);
                    hasher.update(&ZEROS[..usize::try_from(n).unwrap_or(0)]);
                    left -= n;
                }
            }
        }
        progress.advanced("digest", batch.end());
    }
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        "content digest done"
    );
    hasher
}

/// Joins every thread in order and collects their results; the first error (or a panic, as
/// `Error::Pipeline(panicked)`) is the result, after all have been joined.
fn join_all<T>(
    handles: Vec<thread::ScopedJoinHandle<'_, Result<T>>>,
    panicked: &str,
) -> Result<Vec<T>> {
    let mut all = Vec::new();
    let mut first_error = None;
    for handle in handles {
        match handle.join() {
            Ok(Ok(value)) => all.push(value),
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(_) => {
                first_error.get_or_insert(Error::Pipeline(panicked.into()));
            }
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(all),
    }
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
