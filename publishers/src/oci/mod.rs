//! `oci:HOST/REPOSITORY[:TAG]`: the output's disks as one OCI artifact at the reference (an
//! image manifest with `artifactType` [`image::ARTIFACT_TYPE`], the OCI empty config, one layer
//! per disk artifact, each the file as it is, annotations from the manifest and the BOM), and
//! a KubeVirt containerDisk at `TAG-containerdisk` (an amd64/linux image whose one
//! uncompressed tar layer holds `disk/NAME.qcow2`, owned 107:107), pushed with the registry
//! HTTP API v2 (see [`registry`] and [`blobs`]).
//!
//! The tag defaults to `NAME-<content_short>` (plus `-STAGE`). A tag whose manifest carries
//! the same `io.nodeimg.content-sha256` (and stage) annotation, with its containerDisk tag
//! likewise, is reused and nothing is uploaded. Otherwise each blob is HEADed first and
//! skipped when present, mounted from another repository of the registry that an earlier
//! publish of this output (in `publish.json`) pushed to, or uploaded in chunks; every
//! uploaded blob is read back and compared before any manifest is put. The containerDisk's
//! manifest is put before the artifact's, whose annotation is what a later publish finds, so
//! an interrupted publish is never taken for a finished one. Manifests are put by tag only.

mod auth;
mod blobs;
mod image;
mod registry;

use std::collections::BTreeMap;
use std::path::PathBuf;

use exporters::Format;
use exporters::pipeline::Role;

use crate::error::{Error, Result};
use crate::record::{PublishRecord, Published};
use crate::retry::Policy;
use crate::{Job, Target};
use blobs::Outcome;
use image::{Blob, BlobSource};
use registry::Registry;

/// The suffix of the containerDisk's tag.
pub const CONTAINERDISK_SUFFIX: &str = "-containerdisk";

/// A parsed `HOST/REPOSITORY[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// `HOST[:PORT]`.
    pub host: String,
    /// The repository.
    pub repo: String,
    /// The tag, if given.
    pub tag: Option<String>,
}

fn valid_tag(t: &str) -> bool {
    let mut chars = t.chars();
    t.len() <= 128
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
}

impl Reference {
    /// Parses `reference`; `given` is the `--to` value for errors.
    pub fn parse(reference: &str, given: &str) -> Result<Reference> {
        let bad = |why: &str| Error::BadTarget {
            given: given.to_owned(),
            why: why.to_owned(),
        };
        if reference.contains('@') {
            return Err(bad(
                "publish to a tag, not a digest: oci:HOST/REPOSITORY[:TAG]",
            ));
        }
        let (host, rest) = reference
            .split_once('/')
            .ok_or_else(|| bad("the reference needs a registry host: oci:HOST/REPOSITORY[:TAG]"))?;
        let (repo, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t)),
            _ => (rest, None),
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || "?#".contains(c)) {
            return Err(bad("the registry host is not a host[:port]"));
        }
        let repo_ok = !repo.is_empty()
            && repo.split('/').all(|part| {
                !part.is_empty()
                    && part
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
                    && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            });
        if !repo_ok {
            return Err(bad(
                "a repository has only lower-case a-z, 0-9 and '.', '_', '-' between slashes",
            ));
        }
        if let Some(t) = tag
            && !valid_tag(t)
        {
            return Err(bad(
                "a tag is 1-128 of A-Z, a-z, 0-9, '_', '.', '-' (not first)",
            ));
        }
        Ok(Reference {
            host: host.to_owned(),
            repo: repo.to_owned(),
            tag: tag.map(str::to_owned),
        })
    }
}

/// The annotations of both manifests: title, version (the tag), created (the output's
/// SOURCE_DATE_EPOCH), and every label of [`crate::Source::labels`] as `io.nodeimg.KEY`.
fn annotations(job: &Job<'_>, tag: &str) -> BTreeMap<String, String> {
    let m = &job.source.manifest;
    let mut a = BTreeMap::new();
    a.insert("org.opencontainers.image.title".into(), m.name.clone());
    a.insert("org.opencontainers.image.version".into(), tag.to_owned());
    a.insert(
        "org.opencontainers.image.created".into(),
        bom::cyclonedx::rfc3339(m.source_date_epoch),
    );
    a.insert(
        "org.opencontainers.image.description".into(),
        format!("{} disk images made by nodeimg", m.name),
    );
    for (k, v) in job.source.labels(job.stage) {
        a.insert(format!("io.nodeimg.{k}"), v);
    }
    a
}

/// Whether the manifest `bytes` carries `content` (and `stage`) in its annotations.
fn same_content(bytes: &[u8], content: &str, stage: Option<&str>) -> bool {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    let ann = &v["annotations"];
    ann[image::CONTENT_KEY].as_str() == Some(content) && ann[image::STAGE_KEY].as_str() == stage
}

/// Other repositories of `host` an earlier publish of this output pushed to (from its
/// `publish.json`), the mount sources.
fn mount_sources(job: &Job<'_>, r: &Reference) -> Vec<String> {
    let s = job.source;
    let Ok(record) = PublishRecord::load_or_new(&s.dir, &s.manifest.name, s.content_sha256())
    else {
        return Vec::new();
    };
    let mut repos: Vec<String> = Vec::new();
    for p in &record.targets {
        let Some(reference) = p.target.strip_prefix("oci:") else {
            continue;
        };
        if let Ok(other) = Reference::parse(reference, &p.target)
            && other.host == r.host
            && other.repo != r.repo
            && !repos.contains(&other.repo)
        {
            repos.push(other.repo);
        }
    }
    repos
}

/// Where credentials are looked for and how calls are retried.
#[derive(Debug, Clone)]
pub struct Options {
    /// The auth files, in order ([`Options::from_env`]: the Docker/Podman ones).
    pub auth_files: Vec<PathBuf>,
    /// The retry policy.
    pub policy: Policy,
}

impl Options {
    /// The auth files the environment names and [`Policy::from_env`].
    pub fn from_env() -> Options {
        Options {
            auth_files: auth::auth_files(),
            policy: Policy::from_env(),
        }
    }
}

/// Publishes `job` to `oci:reference` with [`Options::from_env`].
pub fn publish(job: &Job<'_>, reference: &str) -> Result<Published> {
    publish_with(job, reference, &Options::from_env())
}

/// Publishes `job` to `oci:reference`.
pub fn publish_with(job: &Job<'_>, reference: &str, options: &Options) -> Result<Published> {
    let target = Target::Oci {
        reference: reference.to_owned(),
    }
    .to_string();
    let r = Reference::parse(reference, &target)?;
    let source = job.source;
    let m = &source.manifest;
    let (qcow2, qcow2_artifact) = source.disk(&target, Format::Qcow2)?;
    let tag = match &r.tag {
        Some(t) => t.clone(),
        None => match job.stage {
            Some(stage) => format!("{}-{}-{stage}", m.name, source.content_short()),
            None => format!("{}-{}", m.name, source.content_short()),
        },
    };
    let cd_tag = format!("{tag}{CONTAINERDISK_SUFFIX}");
    if !valid_tag(&cd_tag) {
        return Err(Error::BadTarget {
            given: target,
            why: format!("{cd_tag} is not a valid tag (1-128 of A-Z, a-z, 0-9, '_', '.', '-')"),
        });
    }
    let creds = auth::lookup(&options.auth_files, &r.host, &r.repo, &target)?;
    let mut reg = Registry::new(&r.host, &r.repo, creds, &target);
    reg.policy = options.policy;
    reg.pull_from = mount_sources(job, &r);
    let base = format!("{}/{}", r.host, r.repo);
    let reference_out = format!("{base}:{tag}");
    let cd_reference = format!("{base}:{cd_tag}");
    let record = |artifact_digest: String, cd_digest: String, reused: bool| Published {
        target: target.clone(),
        stage: job.stage.map(str::to_owned),
        content_sha256: source.content_sha256().to_owned(),
        created: BTreeMap::from([
            ("reference".to_owned(), reference_out.clone()),
            ("artifact_digest".to_owned(), artifact_digest),
            ("containerdisk_reference".to_owned(), cd_reference.clone()),
            ("containerdisk_digest".to_owned(), cd_digest),
        ]),
        reused,
        next_steps: vec![format!(
            "KubeVirt: spec.volumes[].containerDisk.image: {cd_reference}"
        )],
    };

    // Idempotency: both tags already carry this content (and stage).
    let content = source.content_sha256();
    if let Some(existing) = reg.get_manifest(&tag)?
        && same_content(&existing, content, job.stage)
        && let Some(cd) = reg.get_manifest(&cd_tag)?
        && same_content(&cd, content, job.stage)
    {
        tracing::info!("{reference_out} already holds content {content}; nothing uploaded");
        return Ok(record(
            blobs::digest_of(&existing),
            blobs::digest_of(&cd),
            true,
        ));
    }

    let annotations = annotations(job, &tag);
    // The artifact: a layer per disk artifact, the file as it is.
    let config = Blob::bytes(image::EMPTY_TYPE, image::EMPTY.to_vec());
    let layers: Vec<Blob> = m
        .artifacts
        .iter()
        .filter(|a| a.role == Role::Disk)
        .map(|a| Blob {
            digest: format!("sha256:{}", a.sha256),
            size: a.size,
            media_type: image::layer_type(a.format).to_owned(),
            from: BlobSource::File(source.dir.join(&a.file)),
            annotations: BTreeMap::from([(
                "org.opencontainers.image.title".to_owned(),
                a.file.clone(),
            )]),
        })
        .collect();
    let artifact_manifest =
        image::manifest(Some(image::ARTIFACT_TYPE), &config, &layers, &annotations);

    // The containerDisk: the tar's digest by one streamed pass over the qcow2.
    let mut disk_layer = image::disk_tar_blob(&qcow2, &qcow2_artifact.file, m.source_date_epoch)?;
    disk_layer.annotations.insert(
        "org.opencontainers.image.title".into(),
        format!("disk/{}", qcow2_artifact.file),
    );
    let mut labels = annotations.clone();
    labels.insert("org.opencontainers.image.version".into(), cd_tag.clone());
    let cd_config = Blob::bytes(
        image::CONFIG_TYPE,
        image::containerdisk_config(
            &bom::cyclonedx::rfc3339(m.source_date_epoch),
            &disk_layer.digest,
            &labels,
        ),
    );
    let cd_manifest = image::manifest(None, &cd_config, std::slice::from_ref(&disk_layer), &labels);

    // Blobs: present, mounted, or uploaded; the uploaded read back before any manifest.
    let sources = reg.pull_from.clone();
    let mut uploaded = Vec::new();
    for blob in [&config, &cd_config]
        .into_iter()
        .chain(layers.iter())
        .chain([&disk_layer])
    {
        let outcome = reg.ensure_blob(&blob.digest, blob.size, &sources, || blob.open())?;
        match &outcome {
            Outcome::Existed => tracing::info!("{base}: {} is there already", blob.digest),
            Outcome::Mounted(from) => {
                tracing::info!("{base}: {} mounted from {from}", blob.digest)
            }
            Outcome::Uploaded => {
                tracing::info!("{base}: {} uploaded ({} bytes)", blob.digest, blob.size);
                uploaded.push(blob);
            }
        }
    }
    for blob in &uploaded {
        reg.read_back(&blob.digest, blob.size)?;
    }

    let cd_digest = reg.put_manifest(&cd_tag, &cd_manifest)?;
    let artifact_digest = reg.put_manifest(&tag, &artifact_manifest)?;
    tracing::info!("{reference_out}: {artifact_digest}; {cd_reference}: {cd_digest}");
    Ok(record(artifact_digest, cd_digest, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_parse_with_a_port_and_an_optional_tag() {
        let r = Reference::parse("127.0.0.1:5000/nodes/img:v1", "x").unwrap();
        assert_eq!(
            (r.host.as_str(), r.repo.as_str(), r.tag.as_deref()),
            ("127.0.0.1:5000", "nodes/img", Some("v1"))
        );
        let r = Reference::parse("ghcr.io/a/b", "x").unwrap();
        assert_eq!((r.repo.as_str(), r.tag), ("a/b", None));
        for bad in ["h/Upper", "h/a:b@sha256:x", "h/a:-x", "h/a//b", "nohost"] {
            assert!(Reference::parse(bad, "x").is_err(), "{bad}");
        }
    }
}
