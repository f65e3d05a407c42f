//! The distro packages step of `nodeimg fetch`, run once the base image is in the cache: the
//! node role's packages for the spec's distro plus `[packages] extra`, resolved as apt would
//! against the archive's signed indexes, minus what the base image's dpkg status already holds;
//! each chosen `.deb` is downloaded from `ARCHIVE/Filename` and enters the cache only when its
//! SHA-256 is the one its verified `Packages` index lists.
//!
//! A second fetch downloads nothing: the lock's `[packages]` record holds the resolution's
//! inputs (the wanted names, the base image's SHA-256, the archives read), and while they are
//! unchanged and every locked `.deb` is cached and verifies, the locked set is kept without
//! reading the archive again. `nodeimg fetch --refresh-packages` resolves anew (to pick up
//! security updates).

use std::time::{SystemTime, UNIX_EPOCH};

use debarchive::resolve::{Choice, Index};

use super::archive::{self, ArchiveSource};
use super::base_status;
use super::error::FetchError;
use super::http::Http;
use super::plan::{Mirror, fetch_url};
use super::{Expect, download_verified};
use crate::cache::Cache;
use crate::lock::{Artifact, Kind, Lock, PackageSet};
use crate::spec::Spec;

/// Where the packages step works.
pub struct Context<'a> {
    pub http: &'a Http,
    pub cache: &'a Cache,
    pub partial: &'a std::path::Path,
    pub mirror: Option<&'a Mirror>,
    /// Resolve again even when the lock's record matches.
    pub refresh: bool,
}

/// What the packages step gave: the deb artifacts and the record of their resolution.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub debs: Vec<Artifact>,
    pub record: PackageSet,
    /// Whether the archive was read (false when the lock's set was kept).
    pub resolved_now: bool,
    /// Bytes transferred over the network.
    pub downloaded_bytes: u64,
    /// How many `.deb` files were downloaded.
    pub downloaded_debs: usize,
}

/// The names to install: the node role's for the distro and the spec's extras, sorted.
pub fn wanted(spec: &Spec, distro: &distros::Distro) -> Vec<String> {
    let mut names: Vec<String> = distro
        .node_packages
        .iter()
        .map(|name| (*name).to_owned())
        .chain(spec.packages.extra.iter().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The deb artifact of a chosen package from `archive_url`.
pub fn deb_artifact(choice: &Choice, archive_url: &str) -> Artifact {
    Artifact {
        name: format!("deb-{}", choice.name),
        kind: Kind::Deb,
        component: None,
        version: Some(choice.version.clone()),
        architecture: Some(choice.architecture.clone()),
        suite: Some(choice.suite.clone()),
        source: format!("{archive_url}/{}", choice.filename),
        size: choice.size,
        sha256: choice.sha256.clone(),
        dest: None,
        mode: None,
        image: None,
        note: None,
    }
}

/// Runs the step for `spec` whose base image is `base` (already cached). `stored` is told of
/// each `.deb` as it enters the cache.
pub fn fetch_packages(
    spec: &Spec,
    base: &Artifact,
    old: Option<&Lock>,
    context: &Context<'_>,
    stored: &mut dyn FnMut(&Artifact),
) -> Result<Resolved, FetchError> {
    let distro = distros::find(&spec.image.distro).map_err(|e| FetchError::Index {
        url: spec.path.display().to_string(),
        why: e.to_string(),
    })?;
    let sources = archive::sources(spec, distro);
    let record = PackageSet {
        wanted: wanted(spec, distro),
        base_sha256: base.sha256.clone(),
        sources: sources.iter().map(ArchiveSource::describe).collect(),
    };
    if !context.refresh
        && let Some(kept) = kept_set(old, &record, context.cache)
    {
        tracing::info!(
            "distro packages: the lock's {} packages were resolved from the same inputs and are cached",
            kept.len()
        );
        return Ok(Resolved {
            debs: kept,
            record,
            resolved_now: false,
            downloaded_bytes: 0,
            downloaded_debs: 0,
        });
    }

    let base_path = context.cache.verified(base, "")?;
    let installed = base_status::installed(&base_path)?;
    let architecture = distro.archive.architecture;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut indexes: Vec<Index> = Vec::new();
    // Which archive URL each suite's packages are downloaded from.
    let mut suite_urls: Vec<(String, String)> = Vec::new();
    for source in &sources {
        let keyring = archive::load_keyring(&source.keyring)?;
        for suite in &source.suites {
            let read = archive::read_suite(
                context.http,
                context.mirror,
                source,
                &keyring,
                suite,
                architecture,
                now,
            )?;
            indexes.extend(read.indexes(architecture)?);
            suite_urls.push((suite.clone(), source.url.clone()));
        }
    }
    let choices = debarchive::resolve::resolve(architecture, &installed, &indexes, &record.wanted)?;
    tracing::info!(
        "distro packages: {} wanted, {} to install ({})",
        record.wanted.len(),
        choices.len(),
        choices
            .iter()
            .map(|c| format!("{} {}", c.name, c.version))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut debs = Vec::new();
    let mut downloaded_bytes = 0;
    let mut downloaded_debs = 0;
    for choice in &choices {
        let archive_url = suite_urls
            .iter()
            .find(|(suite, _)| *suite == choice.suite)
            .map_or(sources[0].url.as_str(), |(_, url)| url.as_str());
        let artifact = deb_artifact(choice, archive_url);
        if context.cache.verified(&artifact, "").is_ok() {
            tracing::info!(
                "{}: sha256 {} is already in the cache",
                artifact.name,
                artifact.sha256
            );
            debs.push(artifact);
            continue;
        }
        let from = fetch_url(context.mirror, &artifact.source);
        let part = context.partial.join(format!("{}.part", artifact.name));
        let what = format!("listed in the Packages index of {}", choice.suite);
        let http = context.http.for_artifact();
        let (_, _, size, transferred) = download_verified(
            &http,
            context.cache,
            &from,
            &[],
            &part,
            &[Expect::sha256(&artifact.sha256, &what)],
        )
        .map_err(|e| FetchError::Artifact {
            name: artifact.name.clone(),
            source: Box::new(e),
        })?;
        if size != artifact.size {
            // Equal digests with different sizes cannot happen; say so rather than lock it.
            return Err(FetchError::Index {
                url: from,
                why: format!("{size} bytes, but Packages lists {}", artifact.size),
            });
        }
        downloaded_bytes += transferred;
        downloaded_debs += 1;
        stored(&artifact);
        debs.push(artifact);
    }
    Ok(Resolved {
        debs,
        record,
        resolved_now: true,
        downloaded_bytes,
        downloaded_debs,
    })
}

/// The old lock's debs, when its record is `record` and every one of them is cached.
fn kept_set(old: Option<&Lock>, record: &PackageSet, cache: &Cache) -> Option<Vec<Artifact>> {
    let old = old?;
    if old.packages.as_ref() != Some(record) {
        return None;
    }
    let debs: Vec<Artifact> = old.of_kind(Kind::Deb).cloned().collect();
    debs.iter()
        .all(|deb| cache.verified(deb, "").is_ok())
        .then_some(debs)
}
