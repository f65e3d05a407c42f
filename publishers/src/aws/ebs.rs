//! The virtual disk to an EBS snapshot through the EBS direct APIs, as coldsnap does:
//! `StartSnapshot`, `PutSnapshotBlock` for each 512 KiB block that is not all zeros (with its
//! SHA-256, a few in flight), `CompleteSnapshot` with the count of blocks written and the
//! linear aggregate checksum (SHA-256 over the blocks' SHA-256s in index order). Then the
//! read back: `ListSnapshotBlocks` and `GetSnapshotBlock` for each, the disk reassembled
//! (zeros where no block) and its SHA-256 compared with the content digest.

use std::collections::VecDeque;

use aws_sdk_ebs::Client;
use aws_sdk_ebs::primitives::ByteStream;
use aws_sdk_ebs::types::{ChecksumAggregationMethod, ChecksumAlgorithm, Tag};
use aws_smithy_types::base64;
use diskimg::image::DiskImage;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use super::call::Calls;
use crate::error::{Error, Result};

/// The EBS direct APIs' block size.
pub const BLOCK: usize = 512 * 1024;
/// [`BLOCK`] as the API's `DataLength`.
const BLOCK_I32: i32 = 512 * 1024;
/// Blocks in flight at once.
const IN_FLIGHT: usize = 6;
/// Minutes a started snapshot may stay pending before EBS moves it to `error`.
const TIMEOUT_MINUTES: i32 = 60;

/// What `StartSnapshot` is given.
#[derive(Debug, Clone)]
pub struct Start {
    /// GiB.
    pub volume_size: i64,
    /// Tags (key, value).
    pub tags: Vec<(String, String)>,
    /// Free text.
    pub description: String,
    /// The idempotency token.
    pub client_token: String,
}

/// What an upload sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Uploaded {
    /// Blocks written.
    pub changed_blocks: i32,
    /// SHA-256 of the whole virtual disk as read for the upload.
    pub digest: [u8; 32],
}

/// The number of blocks of a disk of `size` bytes, as the API's block index type.
fn block_count(size: u64) -> Result<i32> {
    let n = size.div_ceil(BLOCK as u64);
    i32::try_from(n).map_err(|_| Error::Call {
        call: "ebs:StartSnapshot".into(),
        why: format!("a {size}-byte disk has more 512 KiB blocks than the API can index"),
    })
}

/// Starts a snapshot; returns its id.
pub async fn start(ebs: &Client, calls: &Calls, start: &Start) -> Result<String> {
    let tags: Vec<Tag> = start
        .tags
        .iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect();
    let out = calls
        .send("ebs:StartSnapshot", || {
            ebs.start_snapshot()
                .volume_size(start.volume_size)
                .set_tags(Some(tags.clone()))
                .description(&start.description)
                .client_token(&start.client_token)
                .timeout(TIMEOUT_MINUTES)
                .send()
        })
        .await?;
    if let Some(size) = out.block_size()
        && usize::try_from(size).ok() != Some(BLOCK)
    {
        tracing::debug!(
            "ebs:StartSnapshot answered a block size of {size}; writing 512 KiB blocks"
        );
    }
    out.snapshot_id()
        .map(str::to_owned)
        .ok_or_else(|| Error::Call {
            call: "ebs:StartSnapshot".into(),
            why: "the answer has no snapshot id".into(),
        })
}

/// Reads `image` block by block and writes each non-zero block into `snapshot_id`, a few at a
/// time, then completes the snapshot.
pub async fn upload(
    ebs: &Client,
    calls: &Calls,
    snapshot_id: &str,
    image: &mut dyn DiskImage,
) -> Result<Uploaded> {
    let size = image.virtual_size();
    let blocks = block_count(size)?;
    let mut whole = Sha256::new();
    let mut linear = Sha256::new();
    let mut changed = 0i32;
    let mut in_flight: VecDeque<JoinHandle<Result<()>>> = VecDeque::new();
    let mut buf = vec![0u8; BLOCK];
    for index in 0..blocks {
        let offset = u64::from(index.unsigned_abs()) * BLOCK as u64;
        let len = usize::try_from((size - offset).min(BLOCK as u64)).unwrap_or(BLOCK);
        buf.fill(0);
        image.read_at(offset, &mut buf[..len])?;
        whole.update(&buf[..len]);
        if buf.iter().all(|&b| b == 0) {
            continue;
        }
        let block_sum: [u8; 32] = Sha256::digest(&buf).into();
        linear.update(block_sum);
        changed += 1;
        while in_flight.len() >= IN_FLIGHT {
            joined(in_flight.pop_front()).await?;
        }
        let (ebs, calls, id, data) = (
            ebs.clone(),
            calls.clone(),
            snapshot_id.to_owned(),
            buf.clone(),
        );
        let checksum = base64::encode(block_sum);
        in_flight.push_back(tokio::spawn(async move {
            calls
                .send("ebs:PutSnapshotBlock", || {
                    ebs.put_snapshot_block()
                        .snapshot_id(&id)
                        .block_index(index)
                        .block_data(ByteStream::from(data.clone()))
                        .data_length(BLOCK_I32)
                        .checksum(&checksum)
                        .checksum_algorithm(ChecksumAlgorithm::ChecksumAlgorithmSha256)
                        .send()
                })
                .await
                .map(|_| ())
        }));
    }
    while let Some(h) = in_flight.pop_front() {
        joined(Some(h)).await?;
    }
    let aggregate = base64::encode(linear.finalize());
    let out = calls
        .send("ebs:CompleteSnapshot", || {
            ebs.complete_snapshot()
                .snapshot_id(snapshot_id)
                .changed_blocks_count(changed)
                .checksum(&aggregate)
                .checksum_algorithm(ChecksumAlgorithm::ChecksumAlgorithmSha256)
                .checksum_aggregation_method(ChecksumAggregationMethod::ChecksumAggregationLinear)
                .send()
        })
        .await?;
    tracing::info!(
        "snapshot {snapshot_id}: {changed} of {blocks} blocks written, {}",
        out.status().map_or("no status", |s| s.as_str())
    );
    Ok(Uploaded {
        changed_blocks: changed,
        digest: whole.finalize().into(),
    })
}

async fn joined(handle: Option<JoinHandle<Result<()>>>) -> Result<()> {
    match handle {
        None => Ok(()),
        Some(h) => h.await.map_err(|e| Error::Call {
            call: "ebs:PutSnapshotBlock".into(),
            why: format!("the upload task failed: {e}"),
        })?,
    }
}

/// Lists the blocks of `snapshot_id` (every page): (index, token), by index.
pub async fn list_blocks(
    ebs: &Client,
    calls: &Calls,
    snapshot_id: &str,
) -> Result<Vec<(i32, String)>> {
    let mut blocks = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = calls
            .send("ebs:ListSnapshotBlocks", || {
                ebs.list_snapshot_blocks()
                    .snapshot_id(snapshot_id)
                    .set_next_token(next.clone())
                    .max_results(10_000)
                    .send()
            })
            .await?;
        for b in out.blocks() {
            if let (Some(i), Some(t)) = (b.block_index(), b.block_token()) {
                blocks.push((i, t.to_owned()));
            }
        }
        match out.next_token() {
            Some(t) if !t.is_empty() && Some(t) != next.as_deref() => next = Some(t.to_owned()),
            _ => break,
        }
    }
    blocks.sort_by_key(|b| b.0);
    blocks.dedup_by_key(|b| b.0);
    Ok(blocks)
}

/// Reads `snapshot_id` back and returns the SHA-256 of the `size`-byte disk it holds (zeros
/// where it has no block), and how many blocks it has.
pub async fn read_back(
    ebs: &Client,
    calls: &Calls,
    snapshot_id: &str,
    size: u64,
) -> Result<([u8; 32], usize)> {
    let blocks = list_blocks(ebs, calls, snapshot_id).await?;
    let total = block_count(size)?;
    if let Some((i, _)) = blocks.iter().find(|(i, _)| *i < 0 || *i >= total) {
        return Err(Error::ReadBack {
            what: format!("snapshot {snapshot_id} blocks"),
            got: format!("a block at index {i}"),
            want: format!("{total} blocks of a {size}-byte disk"),
        });
    }
    let count = blocks.len();
    let mut hasher = Sha256::new();
    let zeros = vec![0u8; BLOCK];
    let mut pos = 0u64;
    let mut pending: VecDeque<(i32, JoinHandle<Result<Vec<u8>>>)> = VecDeque::new();
    let mut queue = blocks.into_iter();
    loop {
        while pending.len() < IN_FLIGHT {
            let Some((index, token)) = queue.next() else {
                break;
            };
            let (ebs, calls, id) = (ebs.clone(), calls.clone(), snapshot_id.to_owned());
            pending.push_back((
                index,
                tokio::spawn(async move { get_block(&ebs, &calls, &id, index, &token).await }),
            ));
        }
        let Some((index, handle)) = pending.pop_front() else {
            break;
        };
        let data = handle.await.map_err(|e| Error::Call {
            call: "ebs:GetSnapshotBlock".into(),
            why: format!("the read task failed: {e}"),
        })??;
        if data.len() != BLOCK {
            return Err(Error::ReadBack {
                what: format!("snapshot {snapshot_id} block {index}"),
                got: format!("{} bytes", data.len()),
                want: format!("{BLOCK} bytes"),
            });
        }
        let offset = u64::from(index.unsigned_abs()) * BLOCK as u64;
        while pos < offset {
            let n = (offset - pos).min(BLOCK as u64);
            hasher.update(&zeros[..usize::try_from(n).unwrap_or(BLOCK)]);
            pos += n;
        }
        let n = (size - offset).min(BLOCK as u64);
        hasher.update(&data[..usize::try_from(n).unwrap_or(BLOCK)]);
        pos += n;
    }
    while pos < size {
        let n = (size - pos).min(BLOCK as u64);
        hasher.update(&zeros[..usize::try_from(n).unwrap_or(BLOCK)]);
        pos += n;
    }
    Ok((hasher.finalize().into(), count))
}

async fn get_block(
    ebs: &Client,
    calls: &Calls,
    snapshot_id: &str,
    index: i32,
    token: &str,
) -> Result<Vec<u8>> {
    let out = calls
        .send("ebs:GetSnapshotBlock", || {
            ebs.get_snapshot_block()
                .snapshot_id(snapshot_id)
                .block_index(index)
                .block_token(token)
                .send()
        })
        .await?;
    let want = out.checksum().map(str::to_owned);
    let data = out
        .block_data
        .collect()
        .await
        .map_err(|e| Error::Call {
            call: "ebs:GetSnapshotBlock".into(),
            why: format!("reading block {index}: {e}"),
        })?
        .into_bytes()
        .to_vec();
    if let Some(want) = want {
        let got = base64::encode(Sha256::digest(&data));
        if got != want {
            return Err(Error::ReadBack {
                what: format!("snapshot {snapshot_id} block {index}"),
                got: format!("SHA-256 {got}"),
                want: format!("the checksum EBS sent, {want}"),
            });
        }
    }
    Ok(data)
}
