//! `--to aws`: the `aws` export's virtual disk to an EBS snapshot through the EBS direct APIs
//! ([`ebs`]), read back and compared with the content digest, then an AMI registered from it
//! with the facts of the export's `register-image.json` ([`ec2`]).
//!
//! Through the official AWS SDK for Rust (`aws-config`, `aws-sdk-ebs`, `aws-sdk-ec2`): region,
//! endpoint (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_EBS`, `AWS_ENDPOINT_URL_EC2`,
//! `AWS_ENDPOINT_URL_STS`) and credentials come from the SDK's default chain only: the
//! environment, the shared config and credentials files with `AWS_PROFILE`, web identity
//! (`AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, by STS `AssumeRoleWithWebIdentity`),
//! container and instance metadata. The SDK's retries are off; [`call::Calls::send`] retries
//! and prints each retry.
//!
//! Idempotent by tags: an image tagged with the content digest and stage is reused as it is;
//! a completed snapshot so tagged (with no image) is read back and registered; a snapshot an
//! interrupted run left pending or in error is deleted and a new one made. No image is
//! registered before the snapshot's blocks were read back and matched the content digest.

mod call;
mod ebs;
mod ec2;

use std::collections::BTreeMap;
use std::path::Path;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_sdk_ebs::config::ProvideCredentials;
use aws_smithy_http_client::tls;
use aws_smithy_types::error::display::DisplayErrorContext;
use exporters::Format;
use exporters::format::Firmware;
use exporters::formats::aws::{REGISTER_FILE, ami_name};
use exporters::manifest::ManifestArtifact;
use sha2::{Digest, Sha256};

use crate::Job;
use crate::error::{Error, Result};
use crate::record::Published;
use crate::retry::Policy;
use crate::secret::Secret;
use call::Calls;

/// The target's name.
const TARGET: &str = "aws";
/// Tag of the content digest (what finds an earlier publish).
pub const CONTENT_TAG: &str = "nodeimg:content-sha256";
/// Tag of the stage.
pub const STAGE_TAG: &str = "nodeimg:stage";
/// Largest `register-image.json` read.
const DOC_LIMIT: u64 = 1 << 20;
/// The most tags an EC2 resource may have.
const MAX_TAGS: usize = 50;

/// Publishes `job`'s `aws` export: see the module documentation.
pub fn publish(job: &Job<'_>) -> Result<Published> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Call {
            call: "aws".into(),
            why: format!("cannot start the async runtime: {e}"),
        })?;
    runtime.block_on(run(job))
}

/// The tags of the snapshot and the image: every label as `nodeimg:KEY`, the content digest,
/// stage and name first, at most [`MAX_TAGS`].
pub fn tags(job: &Job<'_>) -> Vec<(String, String)> {
    let mut labels = job.source.labels(job.stage);
    let mut out = Vec::new();
    for key in [
        crate::source::keys::CONTENT,
        crate::source::keys::STAGE,
        crate::source::keys::NAME,
    ] {
        if let Some(v) = labels.remove(key) {
            out.push((format!("nodeimg:{key}"), v));
        }
    }
    out.extend(labels.into_iter().map(|(k, v)| (format!("nodeimg:{k}"), v)));
    if out.len() > MAX_TAGS {
        tracing::warn!(
            "{} labels, EC2 takes {MAX_TAGS} tags: the last {} are left off",
            out.len(),
            out.len() - MAX_TAGS
        );
        out.truncate(MAX_TAGS);
    }
    out
}

/// The AMI name: the export's, the content's short digest and the stage.
pub fn image_name(doc_name: &str, content_short: &str, stage: Option<&str>) -> String {
    let mut name = format!("{doc_name}-{content_short}");
    if let Some(stage) = stage {
        name.push('-');
        name.push_str(stage);
    }
    ami_name(&name)
}

/// The idempotency token of `StartSnapshot`: the content and stage, and the snapshots of
/// earlier runs that were given up (so starting over makes a new snapshot).
pub fn client_token(content: &str, stage: Option<&str>, given_up: &[String]) -> String {
    let mut h = Sha256::new();
    h.update(b"nodeimg ebs snapshot\0");
    h.update(content.as_bytes());
    h.update(b"\0");
    h.update(stage.unwrap_or("").as_bytes());
    for id in given_up {
        h.update(b"\0");
        h.update(id.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Where the default chain looks, by names and paths only: what a credentials error names.
fn chain_description() -> String {
    let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let home = std::env::var_os("HOME").map(std::path::PathBuf::from);
    let file = |var: &str, default: &str| match std::env::var_os(var) {
        Some(p) => format!("{} ({var})", Path::new(&p).display()),
        None => home.as_ref().map_or_else(
            || format!("~/{default}"),
            |h| h.join(default).display().to_string(),
        ),
    };
    let profile = match std::env::var("AWS_PROFILE") {
        Ok(p) if !p.is_empty() => format!("AWS_PROFILE={p}"),
        _ => "profile default".to_owned(),
    };
    let env = if set("AWS_ACCESS_KEY_ID") {
        "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
    } else {
        "environment (AWS_ACCESS_KEY_ID not set)"
    };
    let web = if set("AWS_WEB_IDENTITY_TOKEN_FILE") {
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, STS AssumeRoleWithWebIdentity)"
    } else {
        "web identity (AWS_WEB_IDENTITY_TOKEN_FILE not set)"
    };
    let imds = if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v == "true") {
        "instance metadata (disabled by AWS_EC2_METADATA_DISABLED)"
    } else {
        "container and instance metadata"
    };
    format!(
        "the AWS default chain: {env}, {profile} in {} and {}, {web}, {imds}",
        file("AWS_CONFIG_FILE", ".aws/config"),
        file("AWS_SHARED_CREDENTIALS_FILE", ".aws/credentials"),
    )
}

fn register_doc(job: &Job<'_>) -> Result<ec2::RegisterDoc> {
    let source = job.source;
    let artifact: &ManifestArtifact = source
        .artifacts(Format::Aws)
        .find(|a| Path::new(&a.file).file_name() == Some(REGISTER_FILE.as_ref()))
        .ok_or_else(|| source.not_exported(TARGET, Format::Aws))?;
    let path = source.dir.join(&artifact.file);
    let text = diskimg::input_file::read_bounded_string(&path, DOC_LIMIT, "register-image.json")
        .map_err(|e| Error::Input {
            path: path.clone(),
            why: e.to_string(),
        })?;
    serde_json::from_str(&text).map_err(|e| Error::Input {
        path,
        why: format!("not the export's register-image input: {e}"),
    })
}

/// Everything a publish works with once connected.
struct Session {
    ebs: aws_sdk_ebs::Client,
    ec2: aws_sdk_ec2::Client,
    calls: Calls,
    region: String,
}

async fn connect() -> Result<Session> {
    let tried = chain_description();
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(RetryConfig::disabled())
        .load()
        .await;
    let region = config
        .region()
        .map(|r| r.as_ref().to_owned())
        .ok_or_else(|| Error::BadTarget {
            given: TARGET.into(),
            why: format!(
                "no AWS region: set AWS_REGION, or region in the profile ({})",
                tried
            ),
        })?;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| Error::Credentials {
            target: TARGET.into(),
            tried: tried.clone(),
            why: "no credentials provider".into(),
        })?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| Error::Credentials {
            target: TARGET.into(),
            tried: tried.clone(),
            why: DisplayErrorContext(&e).to_string(),
        })?;
    let mut secrets = vec![Secret::new(creds.secret_access_key())];
    if let Some(token) = creds.session_token() {
        secrets.push(Secret::new(token));
    }
    let calls = Calls {
        policy: Policy::from_env(),
        secrets,
        tried,
    };
    Ok(Session {
        ebs: aws_sdk_ebs::Client::new(&config),
        ec2: aws_sdk_ec2::Client::new(&config),
        calls,
        region,
    })
}

async fn run(job: &Job<'_>) -> Result<Published> {
    let source = job.source;
    let stage = job.stage;
    let content = source.content_sha256().to_owned();
    let (disk_path, _) = source.disk(TARGET, Format::Aws)?;
    let doc = register_doc(job)?;
    let boot_mode = match source.manifest.firmware {
        Firmware::Uefi => "uefi",
        Firmware::Bios => "legacy-bios",
    };
    if doc.boot_mode != boot_mode {
        tracing::warn!(
            "register-image.json says boot mode {}, the manifest's firmware {boot_mode}: registering {boot_mode}",
            doc.boot_mode
        );
    }
    let name = image_name(&doc.name, source.content_short(), stage);
    let tags = tags(job);
    let s = connect().await?;
    let record = |snapshot_id: Option<String>, image_id: String, reused: bool| {
        let mut created = BTreeMap::new();
        created.insert("region".to_owned(), s.region.clone());
        if let Some(id) = snapshot_id {
            created.insert("snapshot_id".to_owned(), id);
        }
        created.insert("image_id".to_owned(), image_id);
        created.insert("image_name".to_owned(), name.clone());
        Published {
            target: TARGET.into(),
            stage: stage.map(str::to_owned),
            content_sha256: content.clone(),
            created,
            reused,
            next_steps: Vec::new(),
        }
    };

    let snapshots = ec2::find_snapshots(&s.ec2, &s.calls, &content, stage).await?;
    let completed = snapshots
        .iter()
        .find(|x| x.state() == Some(&aws_sdk_ec2::types::SnapshotState::Completed))
        .and_then(|x| x.snapshot_id().map(str::to_owned));

    // An image of this content and stage: nothing to do.
    if let Some(image) = ec2::find_images(&s.ec2, &s.calls, &content, stage)
        .await?
        .into_iter()
        .next()
    {
        let image_id = image.image_id().unwrap_or_default().to_owned();
        tracing::info!("{image_id} already holds content {content}: nothing uploaded");
        let snapshot = completed.or_else(|| ec2::root_snapshot(&image));
        return Ok(record(snapshot, image_id, true));
    }

    let virtual_size = source.manifest.virtual_size;
    let mut given_up = Vec::new();
    let mut snapshot_id = None;
    if let Some(id) = completed {
        match check(&s, &id, virtual_size, &content).await {
            Ok(()) => {
                tracing::info!("{id} already holds content {content}: registering it");
                snapshot_id = Some(id);
            }
            Err(Error::ReadBack { got, .. }) => {
                tracing::warn!("{id} reads back as {got}, not {content}: starting over");
                ec2::delete_stale(&s.ec2, &s.calls, &id).await?;
                given_up.push(id);
            }
            Err(e) => return Err(e),
        }
    }
    let snapshot_id = match snapshot_id {
        Some(id) => id,
        None => {
            for stale in snapshots.iter().filter_map(|x| x.snapshot_id()) {
                if !given_up.iter().any(|g| g == stale) {
                    ec2::delete_stale(&s.ec2, &s.calls, stale).await?;
                    given_up.push(stale.to_owned());
                }
            }
            given_up.sort();
            upload(&s, job, &doc, &disk_path, &tags, &given_up).await?
        }
    };

    // The name may be taken by an image an interrupted run registered but did not tag.
    if let Some(image) = ec2::image_named(&s.ec2, &s.calls, &name).await? {
        let image_id = image.image_id().unwrap_or_default().to_owned();
        if ec2::root_snapshot(&image).as_deref() == Some(snapshot_id.as_str()) {
            ec2::tag(&s.ec2, &s.calls, &image_id, &tags).await?;
            tracing::info!("{image_id} was registered from {snapshot_id} already: tagged it");
            return Ok(record(Some(snapshot_id), image_id, false));
        }
        return Err(Error::Call {
            call: "ec2:RegisterImage".into(),
            why: format!(
                "the name {name} is taken by {image_id}, which is not of snapshot {snapshot_id}"
            ),
        });
    }
    let image_id = ec2::register(
        &s.ec2,
        &s.calls,
        &doc,
        &name,
        boot_mode,
        &snapshot_id,
        &tags,
    )
    .await?;
    ec2::tag(&s.ec2, &s.calls, &image_id, &tags).await?;
    tracing::info!("registered {image_id} ({name}) from {snapshot_id}");
    Ok(record(Some(snapshot_id), image_id, false))
}

/// Uploads the disk into a new snapshot, waits for it to complete and reads it back; a
/// snapshot that does not read back as the content is deleted and the error returned.
async fn upload(
    s: &Session,
    job: &Job<'_>,
    doc: &ec2::RegisterDoc,
    disk_path: &Path,
    tags: &[(String, String)],
    given_up: &[String],
) -> Result<String> {
    let source = job.source;
    let content = source.content_sha256();
    let (mut image, _) = diskimg::format::open_image(disk_path)?;
    let virtual_size = image.virtual_size();
    if virtual_size != source.manifest.virtual_size {
        return Err(Error::Input {
            path: disk_path.to_owned(),
            why: format!(
                "holds a {virtual_size}-byte disk, the manifest says {}",
                source.manifest.virtual_size
            ),
        });
    }
    let volume_size = doc
        .block_device_mappings
        .first()
        .map_or(0, |m| m.ebs.volume_size)
        .max(
            i64::try_from(exporters::formats::aws::volume_size_gib(virtual_size))
                .unwrap_or(i64::MAX),
        );
    let mut description = format!("{}, content sha256 {content}", doc.description);
    if let Some(stage) = job.stage {
        description.push_str(&format!(", stage {stage}"));
    }
    let start = ebs::Start {
        volume_size,
        tags: tags.to_vec(),
        description,
        client_token: client_token(content, job.stage, given_up),
    };
    let id = ebs::start(&s.ebs, &s.calls, &start).await?;
    tracing::info!("uploading {} into {id}", disk_path.display());
    let uploaded = ebs::upload(&s.ebs, &s.calls, &id, image.as_mut()).await?;
    if hex::encode(uploaded.digest) != content {
        ec2::delete_stale(&s.ec2, &s.calls, &id).await?;
        return Err(Error::Input {
            path: disk_path.to_owned(),
            why: format!(
                "its content digest read for the upload is {}, the manifest says {content}",
                hex::encode(uploaded.digest)
            ),
        });
    }
    ec2::wait_completed(&s.ec2, &s.calls, &id).await?;
    if let Err(e) = check(s, &id, virtual_size, content).await {
        if matches!(e, Error::ReadBack { .. }) {
            ec2::delete_stale(&s.ec2, &s.calls, &id).await?;
        }
        return Err(e);
    }
    Ok(id)
}

/// Reads `snapshot_id` back and compares the disk it holds with `content`.
async fn check(s: &Session, snapshot_id: &str, size: u64, content: &str) -> Result<()> {
    let (digest, blocks) = ebs::read_back(&s.ebs, &s.calls, snapshot_id, size).await?;
    let got = hex::encode(digest);
    if got != content {
        return Err(Error::ReadBack {
            what: format!("snapshot {snapshot_id} ({blocks} blocks)"),
            got: format!("content sha256 {got}"),
            want: content.to_owned(),
        });
    }
    tracing::info!("read back {snapshot_id}: {blocks} blocks, content sha256 {got} as built");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tokens_depend_on_content_and_stage() {
        assert_eq!(
            image_name("node", "0123456789ab", None),
            "node-0123456789ab"
        );
        assert_eq!(
            image_name("node", "0123456789ab", Some("prod+1")),
            "node-0123456789ab-prod-1"
        );
        let a = client_token("ab", None, &[]);
        assert_eq!(a.len(), 64);
        assert_eq!(a, client_token("ab", None, &[]));
        assert_ne!(a, client_token("ab", Some("dev"), &[]));
        assert_ne!(a, client_token("ac", None, &[]));
        assert_ne!(a, client_token("ab", None, &["snap-1".into()]));
    }
}
