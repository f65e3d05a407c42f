//! [`fetch`] (what `nodeimg fetch` runs): the only step that uses the network.
//! Downloads the base image and every artifact the spec pins ([`plan`]), verifies each against
//! its published checksum (and the base image against the spec's `base.sha256` when it gives
//! one; without it, the distro's checksum file next to the image pins it; a signed checksum
//! file, like Ubuntu's `SHA256SUMS`, is trusted only once its detached signature verifies
//! against the keyring (the distro's, or the spec's `base.keyring`)), then runs the locked
//! kubeadm on the host to list the images it needs ([`kubeadm`]) and pulls exactly those; with
//! conformance on, the node conformance suite, the Kubernetes source and the test images
//! derived from it (`conformance`, [`node_e2e_images`]). Each
//! goes into the content-addressed [`cache`](crate::cache); the lock is written next to the
//! spec, last and atomically. Downloads go through `CACHE/partial/*.part` and resume with `Range`; nothing
//! unverified enters the cache. An artifact the existing lock already pins, with the same
//! source and a verified cache entry, is not downloaded again, nor is anything whose published
//! SHA-256 is already in the cache.
//!
//! Each artifact (everything fetched for it: checksum file, body, manifests, blobs) must be
//! complete within `--deadline`, each attempt within `--timeout` (see [`http`]); failed
//! attempts are logged as they happen and every response body's bytes are reported to the
//! caller's [`Watch`] (the binary draws them).
//!
//! The lock records upstream URLs (and `registry/repo:tag@sha256:<manifest>` for images),
//! whether or not a mirror served them, so a lock does not depend on where it was fetched.

pub mod archive;
pub mod base_status;
pub mod checksum;
mod conformance;
pub mod error;
pub mod http;
pub mod kubeadm;
pub mod node_e2e_images;
pub mod oci;
pub mod packages;
pub mod plan;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use debarchive::signature::SignatureError;
use distros::ChecksumAlgorithm;

use crate::cache::Cache;
use crate::lock::{self, Artifact, Kind, Lock};
use crate::spec::Spec;
pub use conformance::TestImages;
pub use error::FetchError;
use error::io_at;
pub use http::{Limits, Watch};
use plan::{Checksum, Mirror, Planned, Source};

/// One digest a downloaded file must have.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    algorithm: ChecksumAlgorithm,
    hex: &'a str,
    what: &'a str,
}

impl<'a> Expect<'a> {
    /// A SHA-256 from `what` (e.g. "the spec's base.sha256").
    pub fn sha256(hex: &'a str, what: &'a str) -> Self {
        Self {
            algorithm: ChecksumAlgorithm::Sha256,
            hex,
            what,
        }
    }
}

/// Checks `part` (fetched from `url`) against every expectation and moves it into the cache.
/// On a mismatch the part file is deleted (so a resume cannot keep bad bytes) and the error
/// names the URL and both digests. Returns the cached path, its SHA-256 and its length.
pub fn store(
    cache: &Cache,
    part: &Path,
    url: &str,
    expect: &[Expect<'_>],
) -> Result<(PathBuf, String, u64), FetchError> {
    let want512 = expect
        .iter()
        .any(|e| e.algorithm == ChecksumAlgorithm::Sha512);
    let (sha256, sha512, len) = checksum::hash(part, want512)?;
    for e in expect {
        let actual = match e.algorithm {
            ChecksumAlgorithm::Sha512 => sha512.as_deref().unwrap_or(""),
            _ => sha256.as_str(),
        };
        if !actual.eq_ignore_ascii_case(e.hex) {
            let _ = std::fs::remove_file(part);
            return Err(FetchError::Mismatch {
                url: url.to_owned(),
                algorithm: checksum::algorithm_name(e.algorithm),
                expected: e.hex.to_owned(),
                actual: actual.to_owned(),
                what: e.what.to_owned(),
            });
        }
    }
    let (sha256, len2, path) = cache.insert(part, Some(&sha256))?;
    std::fs::remove_file(part).map_err(io_at(part))?;
    debug_assert_eq!(len, len2);
    Ok((path, sha256, len))
}

/// How many times a download whose bytes do not verify is made (a mirror can serve a torn
/// or stale file once).
const MISMATCH_TRIES: u32 = 2;

/// Downloads `url` into `part` and [`store`]s it. A mismatch deletes the part and, once,
/// downloads it again, logged like any failed attempt. Returns the cached path, its SHA-256,
/// its length and the bytes transferred.
pub fn download_verified(
    http: &http::Http,
    cache: &Cache,
    url: &str,
    headers: &[(&str, String)],
    part: &Path,
    expect: &[Expect<'_>],
) -> Result<(PathBuf, String, u64, u64), FetchError> {
    let mut tries = http.tries(url, MISMATCH_TRIES);
    let mut transferred = 0;
    loop {
        tries.start()?;
        transferred += http.download(url, headers, part)?;
        match store(cache, part, url, expect) {
            Err(FetchError::Mismatch {
                algorithm,
                expected,
                actual,
                what,
                ..
            }) if !tries.last_chance() => tries.failed(format!(
                "{algorithm} mismatch: expected {expected}, got {actual} ({what})"
            )),
            r => return r.map(|(path, sha256, len)| (path, sha256, len, transferred)),
        }
    }
}

/// The largest checksum file read.
const CHECKSUMS_LIMIT: u64 = 4 << 20;
/// The largest detached signature read (Ubuntu's `SHA256SUMS.gpg` is under 1 KiB).
const SIGNATURE_LIMIT: u64 = 64 << 10;
/// Where a cloud image keyring comes from, when it is missing.
const CLOUD_IMAGE_KEYRING_HINT: &str = "Ubuntu's cloud image keyring comes with the \
     ubuntu-keyring package; another image host's key is `[base] keyring` in the spec";

struct Fetcher<'a> {
    http: http::Http,
    cache: &'a Cache,
    partial: PathBuf,
    mirror: Option<Mirror>,
}

/// What fetching one planned artifact gave.
struct Got {
    sha256: String,
    size: u64,
    source: String,
    downloaded: u64,
}

impl Fetcher<'_> {
    fn part(&self, name: &str) -> PathBuf {
        self.partial.join(format!("{name}.part"))
    }

    fn fetch(&self, p: &Planned) -> Result<Got, FetchError> {
        let http = self.http.for_artifact();
        match &p.source {
            Source::Local(path) => {
                let part = self.part(&p.name);
                std::fs::copy(path, &part).map_err(io_at(path))?;
                let shown = path.display().to_string();
                // Without a pin the user's own file is hashed and locked as it is.
                let expect: Vec<Expect<'_>> = p
                    .pinned_sha256
                    .as_deref()
                    .map(|pinned| Expect::sha256(pinned, "the spec's base.sha256"))
                    .into_iter()
                    .collect();
                let (_, sha256, size) = self.store_checked(&part, &shown, &expect)?;
                Ok(Got {
                    sha256,
                    size,
                    source: shown,
                    downloaded: 0,
                })
            }
            Source::Url { url, checksum } => self.fetch_url(&http, p, url, checksum),
            Source::Image(image) => {
                let base = plan::registry_base(self.mirror.as_ref(), image);
                tracing::info!("pulling {} from {base}", image.reference());
                let pulled = registry::pull(&http, &base, image, self.cache, &self.partial)?;
                let part = self.part(&format!("{}.oci.tar", p.name));
                oci::write(&part, &pulled, &image.reference(), &image.tag).map_err(io_at(&part))?;
                let (_, sha256, size) = self.store_checked(&part, &base, &[])?;
                Ok(Got {
                    sha256,
                    size,
                    source: format!("{}@sha256:{}", image.reference(), pulled.digest),
                    downloaded: pulled.downloaded,
                })
            }
        }
    }

    /// The text of the checksum file at `from`. When the distro signs it (`signature`), the
    /// detached signature is downloaded through the same mirror and must be good by a key of
    /// its keyring before the text is returned: whether the file is the artifact's only pin or
    /// a second check of the spec's sha256.
    fn published_checksums(
        &self,
        http: &http::Http,
        from: &str,
        signature: Option<&plan::DetachedSignature>,
    ) -> Result<String, FetchError> {
        let text = http.get_ok(from, CHECKSUMS_LIMIT)?;
        if let Some(signature) = signature {
            let signature_from = plan::fetch_url(self.mirror.as_ref(), &signature.url);
            let refused = |why: String| FetchError::ChecksumsSignature {
                checksums: from.to_owned(),
                signature: signature_from.clone(),
                keyring: signature.keyring.display().to_string(),
                why,
            };
            let keyring = archive::read_keyring(&signature.keyring, CLOUD_IMAGE_KEYRING_HINT)
                .map_err(|e| match e {
                    FetchError::Keyring { why, .. } => refused(why),
                    other => refused(other.to_string()),
                })?;
            let detached = http
                .get_ok(&signature_from, SIGNATURE_LIMIT)
                .map_err(|e| refused(format!("the signature cannot be downloaded: {e}")))?;
            let signer =
                debarchive::signature::verify_detached(&text, &detached, &keyring, &signature_from)
                    .map_err(|e| match e {
                        SignatureError::NoGoodSignature { details, .. } => refused(details),
                        other => refused(other.to_string()),
                    })?;
            tracing::info!(
                "{from}: signed by {} ({})",
                signer.fingerprint,
                keyring.name()
            );
        }
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    fn store_checked(
        &self,
        part: &Path,
        url: &str,
        expect: &[Expect<'_>],
    ) -> Result<(PathBuf, String, u64), FetchError> {
        store(self.cache, part, url, expect)
    }

    fn fetch_url(
        &self,
        http: &http::Http,
        p: &Planned,
        url: &str,
        checksum: &Checksum,
    ) -> Result<Got, FetchError> {
        let from = plan::fetch_url(self.mirror.as_ref(), url);
        let mut expect_owned: Vec<(ChecksumAlgorithm, String, String)> = Vec::new();
        if let Some(pinned) = &p.pinned_sha256 {
            expect_owned.push((
                ChecksumAlgorithm::Sha256,
                pinned.clone(),
                "the spec's base.sha256".into(),
            ));
        }
        if let Checksum::File {
            url: sums,
            algorithm,
            file_name,
            signature,
        } = checksum
        {
            let sums_from = plan::fetch_url(self.mirror.as_ref(), sums);
            let text = self.published_checksums(http, &sums_from, signature.as_ref())?;
            let hex = checksum::find(&text, &sums_from, file_name, *algorithm)?;
            expect_owned.push((*algorithm, hex, format!("published in {sums_from}")));
        }
        // A SHA-256 known before the download (every source agreeing) that is already
        // cached: nothing to fetch.
        let known = expect_owned
            .iter()
            .filter(|(a, _, _)| *a == ChecksumAlgorithm::Sha256)
            .map(|(_, h, _)| h.as_str())
            .collect::<Vec<_>>();
        if let [first, rest @ ..] = known.as_slice()
            && rest.iter().all(|h| h == first)
            && let Ok(meta) = std::fs::metadata(self.cache.path_of(first))
        {
            tracing::info!("{}: sha256 {first} is already in the cache", p.name);
            return Ok(Got {
                sha256: (*first).to_owned(),
                size: meta.len(),
                source: url.to_owned(),
                downloaded: 0,
            });
        }
        let part = self.part(&p.name);
        let expect: Vec<Expect<'_>> = expect_owned
            .iter()
            .map(|(algorithm, hex, what)| Expect {
                algorithm: *algorithm,
                hex,
                what,
            })
            .collect();
        let (_, sha256, size, downloaded) =
            download_verified(http, self.cache, &from, &[], &part, &expect)?;
        Ok(Got {
            sha256,
            size,
            source: url.to_owned(),
            downloaded,
        })
    }
}

fn artifact(p: &Planned, got: &Got) -> Artifact {
    Artifact {
        name: p.name.clone(),
        kind: p.kind,
        component: p.component.clone(),
        version: p.version.clone(),
        architecture: None,
        suite: None,
        source: got.source.clone(),
        size: got.size,
        sha256: got.sha256.clone(),
        dest: p.dest.clone(),
        mode: p.mode.clone(),
        image: p.image.clone(),
        note: p.note.clone(),
    }
}

/// The old lock's entry for `p`, if it still describes it and its cached bytes verify. A local
/// base image the spec does not pin is hashed again every time (the file may have changed).
fn reusable(old: Option<&Lock>, p: &Planned, cache: &Cache) -> Option<Artifact> {
    if matches!(p.source, Source::Local(_)) && p.pinned_sha256.is_none() {
        return None;
    }
    let a = old?.artifacts.iter().find(|a| a.name == p.name)?;
    let same = a.kind == p.kind
        && a.component == p.component
        && a.version == p.version
        && a.dest == p.dest
        && a.mode == p.mode
        && a.image == p.image
        && a.note == p.note
        && p.pinned_sha256.as_ref().is_none_or(|s| *s == a.sha256)
        && match &p.source {
            Source::Image(r) => a.source.starts_with(&format!("{}@sha256:", r.reference())),
            _ => a.source == p.source_text(),
        };
    (same && cache.verified(a, "").is_ok()).then(|| a.clone())
}

/// How [`fetch`] works: where the cache is, which mirror serves the downloads, how long each
/// may take, and where download progress goes.
#[derive(Debug, Clone)]
pub struct Options {
    /// The cache the artifacts go into (its `partial/` holds the downloads in flight).
    pub cache: Cache,
    /// Download everything from this mirror instead of upstream.
    pub mirror: Option<Mirror>,
    /// Per-attempt timeout and per-artifact deadline.
    pub limits: http::Limits,
    /// Receives the bytes of every response body.
    pub watch: Arc<dyn Watch>,
    /// Resolve the distro packages again even when the lock's `[packages]` record says the
    /// locked set was resolved from the same inputs (to pick up the archive's updates).
    pub refresh_packages: bool,
}

/// What [`fetch`] did.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// The lock it wrote (next to the spec).
    pub lock_path: PathBuf,
    /// The lock's artifacts, in lock order.
    pub artifacts: Vec<Artifact>,
    /// How many of them were downloaded (not reused from the lock or found in the cache).
    pub downloaded_artifacts: usize,
    /// Bytes transferred over the network.
    pub downloaded_bytes: u64,
    /// Where the base image's SHA-256 comes from: the spec's `base.sha256`, the distro's
    /// checksum file (its URL), or the user's own file, hashed.
    pub base_pinned_by: String,
    /// The images the locked kubeadm listed, as it printed them.
    pub kubeadm_images: Vec<String>,
    /// Whether the distro packages were resolved against the archive now (false when the
    /// spec asks for none or the lock's set was kept).
    pub packages_resolved: bool,
    /// The node conformance test images (none unless the spec turns conformance on).
    pub test_images: TestImages,
}

/// Where the base image's SHA-256 comes from, for the user.
fn base_pinned_by(base: &Planned) -> String {
    match (&base.pinned_sha256, &base.source) {
        (Some(_), _) => "the spec's base.sha256".to_owned(),
        (
            None,
            Source::Url {
                checksum:
                    Checksum::File {
                        url,
                        algorithm,
                        signature,
                        ..
                    },
                ..
            },
        ) => {
            let verified = signature.as_ref().map_or_else(String::new, |s| {
                format!(", its signature verified with {}", s.keyring.display())
            });
            format!(
                "the {} published in {url}{verified}",
                checksum::algorithm_name(*algorithm)
            )
        }
        (None, Source::Local(path)) => {
            format!("hashing {}: no base.sha256 in the spec", path.display())
        }
        (None, _) => "the download: no base.sha256 in the spec".to_owned(),
    }
}

/// Fetches everything `spec` pins into the cache and writes its lock, last and atomically:
/// first the files ([`plan::plan`]), then the images the locked kubeadm lists
/// ([`kubeadm::list_images`], [`plan::images`]). `stored` is told of each artifact fetched
/// now (not of those reused from the existing lock), as it enters the cache.
pub fn fetch(
    spec: &Spec,
    options: &Options,
    stored: &mut dyn FnMut(&Artifact),
) -> Result<Fetched, FetchError> {
    let planned = plan::plan(spec);
    let base_pinned_by = planned
        .iter()
        .find(|p| p.kind == Kind::BaseImage)
        .map(base_pinned_by)
        .unwrap_or_default();
    let cache = &options.cache;
    let partial = cache.root().join("partial");
    std::fs::create_dir_all(&partial).map_err(|cause| FetchError::Create {
        path: partial.display().to_string(),
        cause,
    })?;
    let lock_path = lock::path_for_spec(&spec.path);
    let old = if lock_path.exists() {
        match lock::load(&lock_path) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("ignoring the existing lock: {e}");
                None
            }
        }
    } else {
        None
    };
    let fetcher = Fetcher {
        http: http::Http::new(options.limits, Arc::clone(&options.watch)),
        cache,
        partial,
        mirror: options.mirror.clone(),
    };
    let mut run = Run {
        fetcher: &fetcher,
        old: old.as_ref(),
        artifacts: Vec::new(),
        downloaded_artifacts: 0,
        downloaded_bytes: 0,
        stored,
    };
    run.all(&planned)?;
    let kubeadm_path = run
        .artifacts
        .iter()
        .find(|a| a.name == "kubeadm")
        .map(|a| cache.path_of(&a.sha256))
        .unwrap_or_default();
    let listed = kubeadm::list_images(&kubeadm_path, &spec.kubernetes_version, &fetcher.partial)?;
    let kubeadm_images: Vec<String> = listed.iter().map(plan::ImageRef::reference).collect();
    tracing::info!(
        "kubeadm {} lists {} images: {}",
        spec.kubernetes_version,
        listed.len(),
        kubeadm_images.join(", ")
    );
    run.all(&plan::images(spec, &listed)?)?;
    let test_images = conformance::fetch(spec, &mut run, old.as_ref())?;
    let Run {
        mut artifacts,
        mut downloaded_artifacts,
        mut downloaded_bytes,
        stored,
        ..
    } = run;
    let mut record = None;
    let mut packages_resolved = false;
    if spec.packages.fetch {
        let base = artifacts
            .iter()
            .find(|a| a.kind == lock::Kind::BaseImage)
            .cloned()
            .ok_or_else(|| FetchError::LockDoesNotMatch("the plan has no base image".into()))?;
        let context = packages::Context {
            http: &fetcher.http,
            cache,
            partial: &fetcher.partial,
            mirror: fetcher.mirror.as_ref(),
            refresh: options.refresh_packages,
        };
        let resolved = packages::fetch_packages(spec, &base, old.as_ref(), &context, stored)?;
        downloaded_bytes += resolved.downloaded_bytes;
        downloaded_artifacts += resolved.downloaded_debs;
        packages_resolved = resolved.resolved_now;
        artifacts.extend(resolved.debs);
        record = Some(resolved.record);
    }
    artifacts.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    let text = lock::render_with_packages(&artifacts, record.as_ref());
    let checked = lock::parse(&lock_path, &text)?;
    checked
        .check_matches(spec)
        .map_err(FetchError::LockDoesNotMatch)?;
    crate::atomic::write_atomic(&lock_path, text.as_bytes()).map_err(|cause| {
        FetchError::Write {
            path: lock_path.display().to_string(),
            cause,
        }
    })?;
    Ok(Fetched {
        lock_path,
        artifacts,
        downloaded_artifacts,
        downloaded_bytes,
        base_pinned_by,
        kubeadm_images,
        packages_resolved,
        test_images,
    })
}

/// One fetch's progress: the artifacts so far and what was downloaded.
struct Run<'a, 'b> {
    fetcher: &'a Fetcher<'a>,
    old: Option<&'a Lock>,
    artifacts: Vec<Artifact>,
    downloaded_artifacts: usize,
    downloaded_bytes: u64,
    stored: &'b mut dyn FnMut(&Artifact),
}

impl Run<'_, '_> {
    /// Fetches each of `planned` that the old lock does not already pin and the cache hold.
    fn all(&mut self, planned: &[Planned]) -> Result<(), FetchError> {
        for p in planned {
            if let Some(a) = reusable(self.old, p, self.fetcher.cache) {
                tracing::info!("{}: locked and cached", p.name);
                self.artifacts.push(a);
                continue;
            }
            let got = self.fetcher.fetch(p).map_err(|e| FetchError::Artifact {
                name: p.name.clone(),
                source: Box::new(e),
            })?;
            self.downloaded_bytes += got.downloaded;
            if got.downloaded > 0 {
                self.downloaded_artifacts += 1;
            }
            let a = artifact(p, &got);
            (self.stored)(&a);
            self.artifacts.push(a);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::tests::{HELLO_SHA256, cache_and_hello};

    #[test]
    fn a_mismatch_names_the_url_and_both_digests_and_caches_nothing() {
        let (d, cache, part) = cache_and_hello("x.part");
        let want = "0".repeat(64);
        let e = store(
            &cache,
            &part,
            "http://m/x",
            &[Expect::sha256(&want, "published in http://m/x.sha256")],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.starts_with("http://m/x: sha256 mismatch: expected 000")
                && e.contains("got 2cf24dba5fb0a30e")
                && e.contains("nothing was cached"),
            "{e}"
        );
        assert!(!part.exists(), "a bad part file must not be resumed");
        assert!(!d.path().join("c/cas").exists());

        std::fs::write(&part, b"hello").unwrap();
        let good = HELLO_SHA256;
        let (path, sha, len) = store(&cache, &part, "u", &[Expect::sha256(good, "w")]).unwrap();
        assert_eq!((sha.as_str(), len), (good, 5));
        assert_eq!(std::fs::read(path).unwrap(), b"hello");
        assert!(!part.exists());
    }
}
