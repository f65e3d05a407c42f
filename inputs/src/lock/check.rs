//! The lock's rules: per-artifact fields, and agreement with the spec.

use super::{Artifact, COMPONENTS, Kind, Lock, RawArtifact};
use crate::located::{LocatedError, Locator};
use crate::spec::{self, Spec};
use toml::Spanned;

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An optional field (`artifact.KEY`) that an artifact of `kind` must have when `needed` and
/// must not have otherwise; a value given is checked with `check`.
fn needed_field(
    loc: &Locator<'_>,
    a: &RawArtifact,
    kind: Kind,
    (field, key): (&Option<Spanned<String>>, &str),
    needed: bool,
    check: impl Fn(&Spanned<String>) -> Result<(), LocatedError>,
) -> Result<Option<String>, LocatedError> {
    let what = key.trim_start_matches("artifact.");
    match (field, needed) {
        (Some(v), true) => {
            check(v)?;
            Ok(Some(v.get_ref().clone()))
        }
        (None, true) => Err(loc.bad(
            &a.name,
            key,
            format!("a {} artifact needs {what}", kind.as_str()),
        )),
        (Some(v), false) => Err(loc.bad(
            v,
            key,
            format!("a {} artifact has no {what}", kind.as_str()),
        )),
        (None, false) => Ok(None),
    }
}

fn dest(loc: &Locator<'_>, a: &RawArtifact, kind: Kind) -> Result<Option<String>, LocatedError> {
    let needed = matches!(kind, Kind::Binary | Kind::File | Kind::Archive);
    needed_field(loc, a, kind, (&a.dest, "artifact.dest"), needed, |d| {
        if spec::is_guest_path(d.get_ref()) {
            Ok(())
        } else {
            Err(loc.bad(
                d,
                "artifact.dest",
                format!("{:?} must be an absolute path without ..", d.get_ref()),
            ))
        }
    })
}

fn mode(loc: &Locator<'_>, a: &RawArtifact, kind: Kind) -> Result<Option<String>, LocatedError> {
    let needed = matches!(kind, Kind::Binary | Kind::File);
    needed_field(loc, a, kind, (&a.mode, "artifact.mode"), needed, |m| {
        spec::parse_mode(m.get_ref()).map(drop).ok_or_else(|| {
            loc.bad(
                m,
                "artifact.mode",
                format!(
                    "{:?}: expected octal permission bits like \"0755\"",
                    m.get_ref()
                ),
            )
        })
    })
}

fn image(loc: &Locator<'_>, a: &RawArtifact, kind: Kind) -> Result<Option<String>, LocatedError> {
    match (&a.image, matches!(kind, Kind::Image | Kind::TestImage)) {
        (Some(i), true) => {
            distros::shell::check_image_ref("artifact.image", i.get_ref())
                .map_err(|e| loc.bad(i, "artifact.image", e))?;
            Ok(Some(i.get_ref().clone()))
        }
        (None, true) => Err(loc.bad(
            &a.name,
            "artifact.image",
            "an image artifact needs the reference it is imported as",
        )),
        (Some(i), false) => Err(loc.bad(
            i,
            "artifact.image",
            format!("a {} artifact has no image reference", kind.as_str()),
        )),
        (None, false) => Ok(None),
    }
}

/// A deb artifact's name: as other names, but `+` is allowed too (`deb-libstdc++6`: `deb-`
/// and the package's name is how `nodeimg fetch` names them).
fn deb_name(loc: &Locator<'_>, name: &Spanned<String>) -> Result<String, LocatedError> {
    let text = name.get_ref();
    let ok = !text.is_empty()
        && text.len() <= 128
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._+-".contains(c));
    if ok {
        Ok(text.clone())
    } else {
        Err(loc.bad(
            name,
            "artifact.name",
            format!(
                "{text:?} must be 1-128 characters of [a-z0-9._+-], starting with a letter or digit"
            ),
        ))
    }
}

/// An optional field only a deb artifact may have: 1-64 characters of `[a-z0-9._/-]`.
fn deb_only(
    loc: &Locator<'_>,
    kind: Kind,
    value: Option<&Spanned<String>>,
    key: &str,
) -> Result<Option<String>, LocatedError> {
    let Some(value) = value else {
        return Ok(None);
    };
    if kind != Kind::Deb {
        return Err(loc.bad(
            value,
            key,
            format!(
                "a {} artifact has no {}",
                kind.as_str(),
                key.trim_start_matches("artifact.")
            ),
        ));
    }
    let text = value.get_ref();
    let ok = !text.is_empty()
        && text.len() <= 64
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._/-".contains(c));
    if !ok {
        return Err(loc.bad(
            value,
            key,
            format!("{text:?} must be 1-64 characters of [a-z0-9._/-]"),
        ));
    }
    Ok(Some(text.clone()))
}

pub(super) fn artifact(
    loc: &Locator<'_>,
    a: RawArtifact,
    before: &[Artifact],
) -> Result<Artifact, LocatedError> {
    let kind = *a.kind.get_ref();
    let name = if kind == Kind::Deb {
        deb_name(loc, &a.name)?
    } else {
        spec::check_name(loc, &a.name, "artifact.name", false)?
    };
    if before.iter().any(|b| b.name == name) {
        return Err(loc.bad(&a.name, "artifact.name", format!("{name:?} is given twice")));
    }
    let component = match &a.component {
        Some(c) if !COMPONENTS.contains(&c.get_ref().as_str()) => {
            return Err(loc.bad(
                c,
                "artifact.component",
                format!("{:?} is not one of {}", c.get_ref(), COMPONENTS.join(", ")),
            ));
        }
        Some(c) => Some(c.get_ref().clone()),
        None => None,
    };
    let version = match (&a.version, &component) {
        (Some(v), Some(_)) => Some(spec::check_version(loc, v, "artifact.version")?),
        (Some(v), None) if matches!(kind, Kind::Deb | Kind::TestSuite | Kind::TestSource) => {
            Some(spec::check_version(loc, v, "artifact.version")?)
        }
        (Some(v), None) => {
            return Err(loc.bad(v, "artifact.version", "is given without a component"));
        }
        (None, Some(_)) => {
            return Err(loc.bad(
                &a.name,
                "artifact.version",
                "a component is named but no version",
            ));
        }
        (None, None) => None,
    };
    if a.source.get_ref().trim().is_empty() {
        return Err(loc.bad(&a.source, "artifact.source", "is empty"));
    }
    let sha256 = a.sha256.get_ref();
    if !is_sha256(sha256) {
        return Err(loc.bad(
            &a.sha256,
            "artifact.sha256",
            format!("{sha256:?} is not 64 lower-case hex digits"),
        ));
    }
    let architecture = deb_only(loc, kind, a.architecture.as_ref(), "artifact.architecture")?;
    let suite = deb_only(loc, kind, a.suite.as_ref(), "artifact.suite")?;
    Ok(Artifact {
        architecture,
        suite,
        dest: dest(loc, &a, kind)?,
        mode: mode(loc, &a, kind)?,
        image: image(loc, &a, kind)?,
        name,
        kind,
        component,
        version,
        source: a.source.get_ref().clone(),
        size: *a.size.get_ref(),
        sha256: sha256.clone(),
        note: a.note.map(|n| n.into_inner()),
    })
}

pub(super) fn matches_spec(lock: &Lock, spec: &Spec) -> Result<(), String> {
    let refresh = format!("run `nodeimg fetch {}`", spec.path.display());
    let lock_path = lock.path.display();
    let base = lock.base();
    if let Some(pinned) = &spec.base.sha256
        && base.sha256 != *pinned
    {
        return Err(format!(
            "{lock_path}: base image {} has sha256 {} but the spec pins {pinned}; {refresh}",
            base.name, base.sha256
        ));
    }
    let k8s = spec.kubernetes_version.as_str();
    let c = &spec.components;
    let pins: [(&str, Option<&str>); 8] = [
        ("kubeadm", Some(k8s)),
        ("kubelet", Some(k8s)),
        ("kubectl", Some(k8s)),
        ("containerd", Some(&c.containerd)),
        ("runc", Some(&c.runc)),
        ("crictl", Some(&c.crictl)),
        ("cni_plugins", Some(&c.cni_plugins)),
        ("pause", c.pause.as_deref()),
    ];
    for (component, pinned) in pins {
        let mut found = lock.component(component).peekable();
        if found.peek().is_none() {
            let pin =
                pinned.map_or_else(|| "kubeadm's".to_owned(), |p| format!("the spec pins {p}"));
            return Err(format!(
                "{lock_path}: no artifact provides {component} ({pin}); {refresh}"
            ));
        }
        let Some(pinned) = pinned else { continue };
        for a in found {
            let version = a.version.as_deref().unwrap_or("");
            if version != pinned {
                return Err(format!(
                    "{lock_path}: artifact {} provides {component} {version} but the spec pins {pinned}; {refresh}",
                    a.name
                ));
            }
        }
    }
    if let Some(a) = lock.component("pause").find(|a| a.kind != Kind::Image) {
        return Err(format!(
            "{lock_path}: artifact {} provides pause but is a {}, not an image",
            a.name,
            a.kind.as_str()
        ));
    }
    test_suite_matches(lock, k8s, &refresh)?;
    images_match(lock, spec, &refresh)
}

/// At most one test suite and one test source, each at the spec's Kubernetes version (the node
/// conformance tests of another version test another kubelet).
pub(super) fn test_suite_matches(lock: &Lock, k8s: &str, refresh: &str) -> Result<(), String> {
    let lock_path = lock.path.display();
    for kind in [Kind::TestSuite, Kind::TestSource] {
        let found: Vec<_> = lock.of_kind(kind).collect();
        if found.len() > 1 {
            return Err(format!(
                "{lock_path}: artifacts {} and {} are both a {}; a lock has one; {refresh}",
                found[0].name,
                found[1].name,
                kind.as_str()
            ));
        }
        for a in found {
            let version = a.version.as_deref().unwrap_or("");
            if version != k8s {
                return Err(format!(
                    "{lock_path}: {} {} is for Kubernetes {:?} but the spec pins {k8s}; {refresh}",
                    kind.as_str(),
                    a.name,
                    version
                ));
            }
        }
    }
    Ok(())
}

/// The images kubeadm lists at the Kubernetes version (its control plane and kube-proxy) are
/// at that version, and no image belongs to an addon the spec leaves out.
fn images_match(lock: &Lock, spec: &Spec, refresh: &str) -> Result<(), String> {
    let lock_path = lock.path.display();
    let k8s = spec.kubernetes_version.as_str();
    for a in lock.of_kind(Kind::Image) {
        let reference = a.image.as_deref().unwrap_or("");
        let name = super::image_short_name(reference);
        if let Some(addon) = spec.skip_addons.iter().find(|s| s.name() == name) {
            return Err(format!(
                "{lock_path}: image {reference} is {}, which the spec's kubernetes.skip_addons leaves out; {refresh}",
                addon.display_name()
            ));
        }
        let versioned = [
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kube-proxy",
        ];
        let named = reference.split('@').next().unwrap_or(reference);
        let tag = named.rsplit_once(':').map_or("", |(_, t)| t);
        if versioned.contains(&name) && tag != k8s {
            return Err(format!(
                "{lock_path}: image {reference} is not at the spec's Kubernetes version {k8s}; {refresh}"
            ));
        }
    }
    Ok(())
}
