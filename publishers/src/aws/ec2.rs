//! The EC2 side: finding what an earlier publish made (images and snapshots tagged with the
//! content digest, of the same stage), waiting for a snapshot to complete, removing a stale
//! one, and registering the AMI from the facts of the export's `register-image.json`.

use std::time::{Duration, Instant};

use aws_sdk_ec2::Client;
use aws_sdk_ec2::types::{
    ArchitectureValues, BlockDeviceMapping, BootModeValues, EbsBlockDevice, Filter, Image,
    ImageState, ImdsSupportValues, ResourceType, Snapshot, SnapshotState, Tag, TagSpecification,
    VolumeType,
};
use serde::Deserialize;

use super::call::Calls;
use super::{CONTENT_TAG, STAGE_TAG};
use crate::error::{Error, Result};

/// How long a completed snapshot may take to leave `pending`.
const COMPLETE_WAIT: Duration = Duration::from_secs(30 * 60);
/// How often its state is asked meanwhile.
const COMPLETE_POLL: Duration = Duration::from_secs(5);

/// The export's `register-image.json` (`exporters::formats::aws::RegisterImage`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterDoc {
    /// AMI name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `x86_64`.
    pub architecture: String,
    /// `hvm`.
    pub virtualization_type: String,
    /// `/dev/xvda`.
    pub root_device_name: String,
    /// The root volume.
    pub block_device_mappings: Vec<DocMapping>,
    /// ENA.
    pub ena_support: bool,
    /// `simple`.
    pub sriov_net_support: String,
    /// `uefi` or `legacy-bios`.
    pub boot_mode: String,
    /// `v2.0`.
    pub imds_support: String,
}

/// One mapping of [`RegisterDoc`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocMapping {
    /// Device name.
    pub device_name: String,
    /// The volume.
    pub ebs: DocEbs,
}

/// The volume of a [`DocMapping`].
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DocEbs {
    /// GiB.
    pub volume_size: i64,
    /// `gp3`.
    pub volume_type: String,
    /// Delete with the instance.
    pub delete_on_termination: bool,
}

fn tag_value<'a>(tags: &'a [Tag], key: &str) -> Option<&'a str> {
    tags.iter()
        .find(|t| t.key() == Some(key))
        .and_then(|t| t.value())
}

/// True when `tags` carry `stage` (or no stage tag when `stage` is `None`).
fn same_stage(tags: &[Tag], stage: Option<&str>) -> bool {
    tag_value(tags, STAGE_TAG) == stage
}

fn filter(name: &str, value: &str) -> Filter {
    Filter::builder().name(name).values(value).build()
}

/// The account's images tagged with `content` of `stage` that are available or pending.
pub async fn find_images(
    ec2: &Client,
    calls: &Calls,
    content: &str,
    stage: Option<&str>,
) -> Result<Vec<Image>> {
    let out = calls
        .send("ec2:DescribeImages", || {
            ec2.describe_images()
                .owners("self")
                .filters(filter(&format!("tag:{CONTENT_TAG}"), content))
                .send()
        })
        .await?;
    Ok(out
        .images()
        .iter()
        .filter(|i| same_stage(i.tags(), stage))
        .filter(|i| {
            matches!(
                i.state(),
                None | Some(ImageState::Available | ImageState::Pending)
            )
        })
        .cloned()
        .collect())
}

/// The account's image named `name`, if any.
pub async fn image_named(ec2: &Client, calls: &Calls, name: &str) -> Result<Option<Image>> {
    let out = calls
        .send("ec2:DescribeImages", || {
            ec2.describe_images()
                .owners("self")
                .filters(filter("name", name))
                .send()
        })
        .await?;
    Ok(out.images().first().cloned())
}

/// The account's snapshots tagged with `content` of `stage`, any state.
pub async fn find_snapshots(
    ec2: &Client,
    calls: &Calls,
    content: &str,
    stage: Option<&str>,
) -> Result<Vec<Snapshot>> {
    let mut found = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let out = calls
            .send("ec2:DescribeSnapshots", || {
                ec2.describe_snapshots()
                    .owner_ids("self")
                    .filters(filter(&format!("tag:{CONTENT_TAG}"), content))
                    .set_next_token(next.clone())
                    .send()
            })
            .await?;
        found.extend(
            out.snapshots()
                .iter()
                .filter(|s| same_stage(s.tags(), stage))
                .cloned(),
        );
        match out.next_token() {
            Some(t) if !t.is_empty() && Some(t) != next.as_deref() => next = Some(t.to_owned()),
            _ => break,
        }
    }
    Ok(found)
}

/// Deletes a stale snapshot of an interrupted run; one EBS will not delete yet (still
/// pending) is left to time out into `error`, with a warning.
pub async fn delete_stale(ec2: &Client, calls: &Calls, snapshot_id: &str) -> Result<()> {
    match calls
        .send("ec2:DeleteSnapshot", || {
            ec2.delete_snapshot().snapshot_id(snapshot_id).send()
        })
        .await
    {
        Ok(_) => {
            tracing::info!("deleted {snapshot_id}, left unfinished by an earlier publish");
            Ok(())
        }
        Err(Error::Call { call, why }) => {
            tracing::warn!("{snapshot_id} of an earlier publish stays: {call}: {why}");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Waits until `snapshot_id` is `completed`; `error` or a timeout is an error.
pub async fn wait_completed(ec2: &Client, calls: &Calls, snapshot_id: &str) -> Result<()> {
    let deadline = Instant::now() + COMPLETE_WAIT;
    loop {
        let out = calls
            .send("ec2:DescribeSnapshots", || {
                ec2.describe_snapshots().snapshot_ids(snapshot_id).send()
            })
            .await?;
        let state = out.snapshots().first().and_then(|s| s.state()).cloned();
        match state {
            Some(SnapshotState::Completed) => return Ok(()),
            Some(SnapshotState::Error) => {
                return Err(Error::Call {
                    call: "ec2:DescribeSnapshots".into(),
                    why: format!("{snapshot_id} is in state error after CompleteSnapshot"),
                });
            }
            other if Instant::now() >= deadline => {
                return Err(Error::Call {
                    call: "ec2:DescribeSnapshots".into(),
                    why: format!(
                        "{snapshot_id} still {} after {} minutes",
                        other.as_ref().map_or("unknown", |s| s.as_str()),
                        COMPLETE_WAIT.as_secs() / 60
                    ),
                });
            }
            _ => tokio::time::sleep(COMPLETE_POLL).await,
        }
    }
}

fn ec2_tags(tags: &[(String, String)]) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// Registers the AMI `name` from `snapshot_id` with `doc`'s facts and `boot_mode`, tagged
/// with `tags`; returns its id.
pub async fn register(
    ec2: &Client,
    calls: &Calls,
    doc: &RegisterDoc,
    name: &str,
    boot_mode: &str,
    snapshot_id: &str,
    tags: &[(String, String)],
) -> Result<String> {
    let root = doc
        .block_device_mappings
        .first()
        .ok_or_else(|| Error::Call {
            call: "ec2:RegisterImage".into(),
            why: "register-image.json has no block device mapping".into(),
        })?;
    let mapping = BlockDeviceMapping::builder()
        .device_name(&root.device_name)
        .ebs(
            EbsBlockDevice::builder()
                .snapshot_id(snapshot_id)
                .volume_size(i32::try_from(root.ebs.volume_size).unwrap_or(i32::MAX))
                .volume_type(VolumeType::from(root.ebs.volume_type.as_str()))
                .delete_on_termination(root.ebs.delete_on_termination)
                .build(),
        )
        .build();
    let spec = TagSpecification::builder()
        .resource_type(ResourceType::Image)
        .set_tags(Some(ec2_tags(tags)))
        .build();
    let out = calls
        .send("ec2:RegisterImage", || {
            ec2.register_image()
                .name(name)
                .description(&doc.description)
                .architecture(ArchitectureValues::from(doc.architecture.as_str()))
                .virtualization_type(&doc.virtualization_type)
                .root_device_name(&doc.root_device_name)
                .block_device_mappings(mapping.clone())
                .ena_support(doc.ena_support)
                .sriov_net_support(&doc.sriov_net_support)
                .boot_mode(BootModeValues::from(boot_mode))
                .imds_support(ImdsSupportValues::from(doc.imds_support.as_str()))
                .tag_specifications(spec.clone())
                .send()
        })
        .await?;
    out.image_id()
        .map(str::to_owned)
        .ok_or_else(|| Error::Call {
            call: "ec2:RegisterImage".into(),
            why: "the answer has no image id".into(),
        })
}

/// Tags `resource` (again: a service that ignored the tag specifications of a call still
/// gets them, and a retagging changes nothing).
pub async fn tag(
    ec2: &Client,
    calls: &Calls,
    resource: &str,
    tags: &[(String, String)],
) -> Result<()> {
    let tags = ec2_tags(tags);
    calls
        .send("ec2:CreateTags", || {
            ec2.create_tags()
                .resources(resource)
                .set_tags(Some(tags.clone()))
                .send()
        })
        .await
        .map(|_| ())
}

/// The snapshot of `image`'s root device, if it names one.
pub fn root_snapshot(image: &Image) -> Option<String> {
    let root = image.root_device_name();
    image
        .block_device_mappings()
        .iter()
        .find(|m| root.is_none() || m.device_name() == root)
        .and_then(|m| m.ebs())
        .and_then(|e| e.snapshot_id())
        .map(str::to_owned)
}
