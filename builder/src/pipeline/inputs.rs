//! The build's inputs: the spec, its lock, and every locked artifact read from the cache and
//! checked against its pinned size and SHA-256. Nothing here touches the network.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};

use ::inputs::cache::Cache;
use ::inputs::lock::{self, Artifact, Kind, Lock};
use ::inputs::spec::{self, BaseSource, Spec};
use distros::kubeadm_test::{Addon, SkippedAddon};

/// A locked artifact and its verified file in the cache.
#[derive(Debug, Clone)]
pub struct Input {
    /// The lock entry.
    pub artifact: Artifact,
    /// The verified file.
    pub path: PathBuf,
}

/// Everything a build reads.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// The spec.
    pub spec: Spec,
    /// Its lock.
    pub lock: Lock,
    /// The distro's facts.
    pub distro: &'static distros::Distro,
    /// The base image file (verified).
    pub base: PathBuf,
    /// Every artifact the guest installs, in lock order (verified).
    pub payload: Vec<Input>,
    /// The node conformance run's inputs, the test suite and its images, in lock order
    /// (verified): never installed, they go on the test disk.
    pub tests: Vec<Input>,
}

impl Inputs {
    /// The payload artifacts of one kind.
    pub fn of_kind(&self, kind: Kind) -> impl Iterator<Item = &Input> {
        self.payload.iter().filter(move |i| i.artifact.kind == kind)
    }

    /// The pinned pause image reference (from the lock's `pause` image).
    pub fn pause_image(&self) -> Option<&str> {
        self.payload
            .iter()
            .find(|i| i.artifact.component.as_deref() == Some("pause"))
            .and_then(|i| i.artifact.image.as_deref())
    }

    /// The pause image's tag (the lock's `pause` component).
    pub fn pause_version(&self) -> Option<&str> {
        self.lock
            .component("pause")
            .next()
            .and_then(|a| a.version.as_deref())
    }

    /// The addons whose images the payload leaves out, and why: the spec's
    /// `kubernetes.skip_addons`, or a lock without the addon's image. `kubeadm init` skips
    /// them, and the build says so.
    pub fn skipped_addons(&self) -> Vec<SkippedAddon> {
        let images = self.image_refs();
        Addon::ALL
            .into_iter()
            .filter_map(|addon| {
                let reason = if self.spec.skip_addons.contains(&addon) {
                    "kubernetes.skip_addons in the spec leaves it out".to_owned()
                } else if !images
                    .iter()
                    .any(|r| lock::image_short_name(r) == addon.name())
                {
                    format!("the lock has no {} image", addon.display_name())
                } else {
                    return None;
                };
                Some(SkippedAddon { addon, reason })
            })
            .collect()
    }

    /// Every image reference the payload imports, in lock order.
    pub fn image_refs(&self) -> Vec<String> {
        self.of_kind(Kind::Image)
            .filter_map(|i| i.artifact.image.clone())
            .collect()
    }

    /// Whether the payload carries what an offline `kubeadm init` needs: kubeadm, kubelet,
    /// kubectl and the control-plane images.
    pub fn can_run_kubeadm(&self) -> bool {
        let has = |c: &str| self.lock.component(c).next().is_some();
        let images = self.image_refs();
        let has_image = |name: &str| images.iter().any(|r| r.contains(&format!("/{name}:")));
        has("kubeadm")
            && has("kubelet")
            && has("kubectl")
            && [
                "kube-apiserver",
                "kube-controller-manager",
                "kube-scheduler",
                "etcd",
            ]
            .iter()
            .all(|n| has_image(n))
    }
}

/// Loads the spec at `spec_path`, its lock and the cached artifacts; every problem is one
/// error naming the file, the artifact and the command that fixes it.
pub fn load(spec_path: &Path, cache: &Cache) -> Result<Inputs> {
    let spec = spec::load(spec_path)?;
    check_files(spec_path, &spec)?;
    let lock_path = lock::path_for_spec(spec_path);
    if !lock_path.is_file() {
        return Err(anyhow!(
            "{}: no lock for this spec; run `nodeimg fetch {}` first",
            lock_path.display(),
            spec_path.display()
        ));
    }
    let lock = lock::load(&lock_path)?;
    lock.check_matches(&spec).map_err(|e| anyhow!(e))?;
    let distro = distros::find(&spec.image.distro)?;
    let hint = format!("run `nodeimg fetch {}`", spec_path.display());
    let base_artifact = lock.base();
    let base = match cache.verified(base_artifact, &hint) {
        Ok(p) => p,
        Err(cache_err) => match &spec.base.source {
            // A local base image may be used where it is, after the same check.
            BaseSource::Path(p) if p.is_file() => {
                let (sha256, _) = ::inputs::cache::hash_file(p)?;
                if sha256 != base_artifact.sha256 {
                    return Err(anyhow!(
                        "{}: sha256 is {sha256} but the lock pins {}; {hint}",
                        p.display(),
                        base_artifact.sha256
                    ));
                }
                p.clone()
            }
            _ => return Err(cache_err.into()),
        },
    };
    let mut payload = Vec::new();
    let mut tests = Vec::new();
    // The test source is what fetch derived the test images from: the build never reads it.
    for artifact in lock
        .artifacts
        .iter()
        .filter(|a| !matches!(a.kind, Kind::BaseImage | Kind::TestSource))
    {
        let path = cache
            .verified(artifact, &hint)
            .with_context(|| format!("lock {}", lock.path.display()))?;
        let to = if matches!(artifact.kind, Kind::TestSuite | Kind::TestImage) {
            &mut tests
        } else {
            &mut payload
        };
        to.push(Input {
            artifact: artifact.clone(),
            path,
        });
    }
    Ok(Inputs {
        spec,
        lock,
        distro,
        base,
        payload,
        tests,
    })
}

/// Every `[[files]]` source exists, is a regular file (not a FIFO, device or directory) and can
/// be opened for reading: checked here, before anything is written or booted, rather than
/// found out when the file is copied into the guest.
fn check_files(spec_path: &Path, spec: &Spec) -> Result<()> {
    for (i, f) in spec.files.iter().enumerate() {
        if let Err(e) = diskimg::input_file::open_regular(&f.source) {
            return Err(anyhow!(
                "{}: files[{i}].source: {}: {}",
                spec_path.display(),
                f.source.display(),
                crate::documents::failure(&e)
            ));
        }
    }
    Ok(())
}
