//! The node conformance inputs, fetched when the spec turns conformance on: Kubernetes' source
//! and test tarball at the spec's version ([`plan::conformance`]), then every image the suite
//! uses at that version, derived from that source ([`node_e2e_images`]), pulled from the
//! registry the control-plane images come from ([`plan::registry_base`]) and locked as
//! `test-image`.
//!
//! An image the registry does not have (HTTP 404 for its manifest) is not an error: it is
//! returned as not available (the binary prints each once) and named in the test-suite
//! entry's note, which also records the source's SHA-256 the list came from. When the existing
//! lock pins the same source, an image it does not pin was not available then and is not
//! asked for again (delete the lock to ask again), so a second fetch requests nothing.

use std::io::BufReader;

use super::node_e2e_images::{self, ImageList};
use super::plan::{self, Planned, Source};
use super::{FetchError, Run, error::io_at};
use crate::lock::{Artifact, Kind, Lock};
use crate::spec::Spec;

/// What fetching the node conformance inputs found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestImages {
    /// The images the suite uses, derived from the source (normalized references).
    pub listed: Vec<String>,
    /// Those the registry does not have.
    pub not_available: Vec<String>,
}

/// Whether `e` (possibly wrapped as one artifact's failure) is a registry's 404.
fn not_in_registry(e: &FetchError) -> bool {
    match e {
        FetchError::NotInRegistry { .. } => true,
        FetchError::Artifact { source, .. } => not_in_registry(source),
        _ => false,
    }
}

/// The test-suite entry's note.
fn note(source: &Artifact, list: &ImageList, not_available: &[String]) -> String {
    let left_out = list
        .left_out
        .iter()
        .map(|l| format!("{} at {}", l.entry, l.at))
        .collect::<Vec<_>>();
    format!(
        "test images derived by nodeimg fetch from {} sha256 {} (NodePrePullImageList ∪ \
         PrePulledImages and the image: lines of test/e2e_node's static pods); left out: {} \
         (image read from a manifest at run time or \"\"); not available in the registry: {}",
        source.source,
        source.sha256,
        if left_out.is_empty() {
            "none".to_owned()
        } else {
            left_out.join(", ")
        },
        if not_available.is_empty() {
            "none".to_owned()
        } else {
            not_available.join(", ")
        },
    )
}

/// Fetches the node conformance inputs into `run` (nothing unless `spec.conformance` is set).
pub(super) fn fetch(
    spec: &Spec,
    run: &mut Run<'_, '_>,
    old: Option<&Lock>,
) -> Result<TestImages, FetchError> {
    let planned = plan::conformance(spec);
    let (Some(source_plan), Some(suite_plan)) = (
        planned.iter().find(|p| p.kind == Kind::TestSource),
        planned.iter().find(|p| p.kind == Kind::TestSuite),
    ) else {
        return Ok(TestImages::default());
    };
    run.all(std::slice::from_ref(source_plan))?;
    let source = run
        .artifacts
        .iter()
        .find(|a| a.kind == Kind::TestSource)
        .cloned()
        .ok_or_else(|| FetchError::LockDoesNotMatch("the test source was not fetched".into()))?;
    let path = run.fetcher.cache.path_of(&source.sha256);
    let file = std::fs::File::open(&path).map_err(io_at(&path))?;
    let sources = node_e2e_images::read_source_tar_gz(BufReader::new(file), &source.source)?;
    let list = node_e2e_images::derive(&sources)?;
    let listed = list.all();
    tracing::info!(
        "the node e2e suite at {} uses {} images: {}",
        spec.kubernetes_version,
        listed.len(),
        listed.join(", ")
    );
    let same_source = old.filter(|l| {
        l.of_kind(Kind::TestSource)
            .any(|a| a.sha256 == source.sha256)
    });
    let mut not_available = Vec::new();
    for p in plan::test_images(spec, &listed)? {
        let reference = match &p.source {
            Source::Image(r) => r.reference(),
            _ => p.source_text(),
        };
        if let Some(l) = same_source
            && !l.artifacts.iter().any(|a| a.name == p.name)
        {
            tracing::info!(
                "{reference}: not available when {} was written",
                l.path.display()
            );
            not_available.push(reference);
            continue;
        }
        match run.all(std::slice::from_ref(&p)) {
            Ok(()) => {}
            Err(e) if not_in_registry(&e) => {
                tracing::debug!("{e}");
                not_available.push(reference);
            }
            Err(e) => {
                return Err(FetchError::TestImage {
                    reference,
                    source: Box::new(e),
                });
            }
        }
    }
    let suite = Planned {
        note: Some(note(&source, &list, &not_available)),
        ..suite_plan.clone()
    };
    run.all(std::slice::from_ref(&suite))?;
    Ok(TestImages {
        listed,
        not_available,
    })
}
