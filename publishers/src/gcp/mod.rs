//! `--to gcp:BUCKET`: the GCE tarball (`NAME.tar.gz`, a `disk.raw` in a tar) uploaded to Cloud
//! Storage with a resumable upload, read back and compared with the artifact's digest, then a
//! Compute Engine image made from it with `images.insert`.
//!
//! - Object: `NAME-SHORT.tar.gz` (SHORT: the first 12 hex digits of the content digest), with
//!   metadata `nodeimg-content-sha256`, `nodeimg-artifact-sha256` (the tarball's) and
//!   `nodeimg-name`. It does not depend on `--stage`: the stages share one object.
//! - Image: `NAME-SHORT[-STAGE]` ([`compute::image_name`]), the guest OS features of a UEFI
//!   Debian/Ubuntu image ([`compute::GUEST_OS_FEATURES`]), `X86_64`, labels from the build
//!   (spelled as Compute Engine allows, see [`compute`]) and the whole digest in its
//!   description.
//! - Again: an image of that name whose labels and description carry this content's digest
//!   → `reused`, nothing sent. An object with this tarball's digest and size → not uploaded
//!   again, but still read back before the image is made.
//!
//! Endpoints: `STORAGE_EMULATOR_HOST` (an emulator, called without credentials as Google's
//! clients do), `CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE` (gcloud's override, e.g.
//! `http://127.0.0.1:PORT/compute/v1/`). Credentials: [`auth`] (application default
//! credentials). Project: `GOOGLE_CLOUD_PROJECT`, else the credentials file's.

pub mod auth;
pub mod compute;
mod http;
pub mod storage;

use std::collections::BTreeMap;
use std::time::Duration;

use exporters::Format;
use serde_json::Value;

use crate::Job;
use crate::error::{Error, Result};
use crate::record::Published;
use crate::retry::Policy;
use crate::source::keys;

pub use auth::CredentialsSource;

/// Cloud Storage's endpoint.
pub const STORAGE_ENDPOINT: &str = "https://storage.googleapis.com";
/// Compute Engine's endpoint.
pub const COMPUTE_ENDPOINT: &str = "https://compute.googleapis.com/compute/v1/";
/// The variable that points Cloud Storage at an emulator.
pub const STORAGE_EMULATOR_ENV: &str = "STORAGE_EMULATOR_HOST";
/// gcloud's override of the Compute Engine endpoint.
pub const COMPUTE_OVERRIDE_ENV: &str = "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE";

/// Where and how to publish, from the environment ([`Settings::from_env`]) or given.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `STORAGE_EMULATOR_HOST` (`HOST:PORT` or a URL): Cloud Storage there, without
    /// credentials.
    pub storage_emulator: Option<String>,
    /// The Compute Engine endpoint (`…/compute/v1/`).
    pub compute_endpoint: String,
    /// The credentials' source.
    pub credentials: CredentialsSource,
    /// `GOOGLE_CLOUD_PROJECT`.
    pub project: Option<String>,
    /// Retries.
    pub policy: Policy,
    /// Upload chunk size (rounded down to a multiple of 256 KiB).
    pub chunk: u64,
    /// Between polls of the image's operation.
    pub poll: Duration,
    /// Longest wait for the image's operation.
    pub operation_timeout: Duration,
}

impl Settings {
    /// The standard variables.
    pub fn from_env() -> Settings {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Settings {
            storage_emulator: var(STORAGE_EMULATOR_ENV),
            compute_endpoint: var(COMPUTE_OVERRIDE_ENV)
                .unwrap_or_else(|| COMPUTE_ENDPOINT.to_owned()),
            credentials: CredentialsSource::from_env(),
            project: var(auth::PROJECT_ENV),
            policy: Policy::from_env(),
            chunk: storage::DEFAULT_CHUNK,
            poll: Duration::from_secs(5),
            operation_timeout: Duration::from_secs(30 * 60),
        }
    }

    /// Cloud Storage's base URL (no trailing `/`).
    pub fn storage_base(&self) -> String {
        match &self.storage_emulator {
            Some(host) => {
                let host = host.trim().trim_end_matches('/');
                if host.contains("://") {
                    host.to_owned()
                } else {
                    format!("http://{host}")
                }
            }
            None => STORAGE_ENDPOINT.to_owned(),
        }
    }

    /// Compute Engine's base URL (with a trailing `/`).
    pub fn compute_base(&self) -> String {
        let b = self.compute_endpoint.trim();
        if b.ends_with('/') {
            b.to_owned()
        } else {
            format!("{b}/")
        }
    }
}

/// The object's name: `NAME-SHORT.tar.gz`.
pub fn object_name(name: &str, short: &str) -> String {
    format!("{name}-{short}.tar.gz")
}

/// Publishes the GCE export to `bucket` and makes the image, with [`Settings::from_env`].
pub fn publish(job: &Job<'_>, bucket: &str) -> Result<Published> {
    publish_with(job, bucket, &Settings::from_env())
}

/// Publishes with `settings`.
pub fn publish_with(job: &Job<'_>, bucket: &str, settings: &Settings) -> Result<Published> {
    let source = job.source;
    let target = format!("gcp:{bucket}");
    let (path, artifact) = source.disk(&target, Format::Gce)?;
    let on_disk = std::fs::metadata(&path)
        .map_err(|e| Error::Input {
            path: path.clone(),
            why: e.to_string(),
        })?
        .len();
    if on_disk != artifact.size {
        return Err(Error::Input {
            path,
            why: format!("{on_disk} bytes, the manifest says {}", artifact.size),
        });
    }

    let auth = auth::Auth::load(&settings.credentials)?;
    let project = auth::project(settings.project.as_deref(), &auth)?;
    let agent = http::agent();
    let storage = storage::Storage {
        agent: &agent,
        base: settings.storage_base(),
        auth: settings.storage_emulator.is_none().then_some(&auth),
        policy: settings.policy,
        chunk: settings.chunk,
    };
    let compute = compute::Compute {
        agent: &agent,
        base: settings.compute_base(),
        auth: &auth,
        project: project.clone(),
        policy: settings.policy,
        poll: settings.poll,
        timeout: settings.operation_timeout,
    };

    let name = &source.manifest.name;
    let object = object_name(name, source.content_short());
    let gs_url = format!("gs://{bucket}/{object}");
    let image = compute::image_name(name, source.content_short(), job.stage);
    let mut created = BTreeMap::from([
        ("bucket".to_owned(), bucket.to_owned()),
        ("object".to_owned(), object.clone()),
        ("object_url".to_owned(), gs_url.clone()),
        ("project".to_owned(), project.clone()),
        ("image".to_owned(), image.clone()),
    ]);
    let published = |created, reused| Published {
        target: target.clone(),
        stage: job.stage.map(str::to_owned),
        content_sha256: source.content_sha256().to_owned(),
        created,
        reused,
        next_steps: Vec::new(),
    };

    // An image of this content already there: nothing to do.
    if let Some(found) = compute.get(&image)? {
        return if compute::same_content(&found, source) {
            tracing::info!("image {image} in project {project} already holds this content");
            created.insert("image_url".into(), self_link(&found, &image));
            Ok(published(created, true))
        } else {
            Err(other_image(&image))
        };
    }

    // The object: uploaded unless it already holds this tarball.
    let metadata = BTreeMap::from([
        (
            format!("nodeimg-{}", keys::CONTENT),
            source.content_sha256().to_owned(),
        ),
        (
            "nodeimg-artifact-sha256".to_owned(),
            artifact.sha256.clone(),
        ),
        (format!("nodeimg-{}", keys::NAME), name.clone()),
    ]);
    let existing = storage.get(bucket, &object)?;
    if existing
        .as_ref()
        .is_some_and(|o| holds(o, &artifact.sha256, artifact.size))
    {
        tracing::info!(
            "{gs_url} already holds {}; not uploading it again",
            artifact.file
        );
    } else {
        tracing::info!(
            "uploading {} ({} bytes) to {gs_url}",
            artifact.file,
            artifact.size
        );
        storage.upload(bucket, &object, &path, artifact.size, &metadata)?;
    }

    // Read back before anything is registered.
    let back = storage.read_back(bucket, &object, artifact.size)?;
    if back.sha256 != artifact.sha256 || back.size != artifact.size {
        return Err(Error::ReadBack {
            what: gs_url,
            got: format!("{} bytes, sha256 {}", back.size, back.sha256),
            want: format!("{} bytes, sha256 {}", artifact.size, artifact.sha256),
        });
    }
    tracing::info!("read back {gs_url}: sha256 {} matches", back.sha256);

    let body = compute::image_body(source, job.stage, &image, bucket, &object);
    tracing::info!("creating image {image} in project {project}");
    compute.insert(&body, &image)?;
    let made = compute.get(&image)?.ok_or_else(|| Error::Call {
        call: "compute.images.get".into(),
        why: format!("image {image} is not there after images.insert finished"),
    })?;
    if !compute::same_content(&made, source) {
        return Err(other_image(&image));
    }
    created.insert("image_url".into(), self_link(&made, &image));
    Ok(published(created, false))
}

/// Whether an object's resource says it holds the tarball of `sha256` and `size`.
fn holds(object: &Value, sha256: &str, size: u64) -> bool {
    let meta = object
        .pointer("/metadata/nodeimg-artifact-sha256")
        .and_then(Value::as_str);
    let held = object
        .get("size")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<u64>().ok());
    meta == Some(sha256) && held == Some(size)
}

fn self_link(image: &Value, name: &str) -> String {
    image
        .get("selfLink")
        .and_then(Value::as_str)
        .map_or_else(|| name.to_owned(), str::to_owned)
}

fn other_image(image: &str) -> Error {
    Error::Call {
        call: "compute.images.insert".into(),
        why: format!(
            "an image named {image} exists and was not made from this content (its content-sha256 label or description differs); delete it or publish with another --stage"
        ),
    }
}
