//! Matching a BOM against parsed feeds.
//!
//! - Distro packages are matched by **source** package and source version (each distinct pair
//!   once), against the Debian tracker's entry for the image's release (`VERSION_CODENAME` of
//!   the BOM's os-release) and against OSV records of the `Debian` ecosystem (`Debian:12` must
//!   match `VERSION_ID`; a bare `Debian` matches any release), ordered by Debian's rules.
//! - Components (each distinct name and version once) are matched against OSV records of the
//!   `Go` ecosystem by the module that ships them ([`osv_modules`]), ordered as
//!   [`UpstreamVersion`]s.
//!
//! A tracker issue is a finding when it is `resolved` in a version later than the installed one
//! (`"0"`: never affected), `open` (no fix yet) or `undetermined`.

use std::cmp::Ordering;
use std::collections::BTreeSet;

use super::debian_tracker::{Status, Tracker};
use super::debian_version::DebVersion;
use super::feed::{Feed, FeedContent};
use super::osv::{Affected, Event, OsvRecord};
use super::upstream_version::UpstreamVersion;
use super::{Finding, FixState, Severity, SubjectKind};
use crate::model::Bom;

/// The outcome of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    /// Every finding, sorted by kind, name, installed version, id, feed.
    pub findings: Vec<Finding>,
    /// What could not be checked (an unparseable version, no release codename), sorted.
    pub notes: Vec<String>,
}

/// The Go modules (OSV `Go` ecosystem package names) that ship a BOM component.
pub fn osv_modules(component: &str) -> &'static [&'static str] {
    match component {
        "kubeadm" | "kubelet" | "kubectl" => &["k8s.io/kubernetes"],
        "containerd" => &[
            "github.com/containerd/containerd",
            "github.com/containerd/containerd/v2",
        ],
        "runc" => &["github.com/opencontainers/runc"],
        "cni_plugins" => &["github.com/containernetworking/plugins"],
        "crictl" => &["github.com/kubernetes-sigs/cri-tools"],
        _ => &[],
    }
}

/// Parses the version of each distinct `(name, version)`, in their order; one that does not
/// parse is left out with a note (`package NAME: not checked: …`).
fn parse_each<'a, V, E: std::fmt::Display>(
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
    what: &str,
    parse: impl Fn(&str) -> Result<V, E>,
    notes: &mut BTreeSet<String>,
) -> Vec<(&'a str, &'a str, V)> {
    let mut parsed = Vec::new();
    for (name, version) in pairs.collect::<BTreeSet<_>>() {
        match parse(version) {
            Ok(v) => parsed.push((name, version, v)),
            Err(e) => {
                notes.insert(format!("{what} {name}: not checked: {e}"));
            }
        }
    }
    parsed
}

/// Matches `bom` against `feeds`.
pub fn scan(bom: &Bom, feeds: &[Feed]) -> ScanResult {
    let release = bom.os.os_release.get("VERSION_CODENAME").cloned();
    let version_id = bom.os.os_release.get("VERSION_ID").cloned();
    let mut notes = BTreeSet::new();
    let sources = bom
        .packages
        .iter()
        .map(|p| (p.source.as_str(), p.source_version.as_str()));
    let packages = parse_each(sources, "package", DebVersion::parse, &mut notes);
    let components = bom
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.version.as_str()));
    let parsed_components = parse_each(components, "component", UpstreamVersion::parse, &mut notes);

    let mut findings = Vec::new();
    for feed in feeds {
        match &feed.content {
            FeedContent::DebianTracker(tracker) => match &release {
                Some(release) => {
                    match_tracker(
                        tracker,
                        release,
                        &packages,
                        &feed.path,
                        &mut findings,
                        &mut notes,
                    );
                }
                None => {
                    notes.insert(format!(
                        "{}: not used: the BOM's os-release has no VERSION_CODENAME",
                        feed.path
                    ));
                }
            },
            FeedContent::Osv(records) => {
                for record in records {
                    for affected in &record.affected {
                        let ctx = OsvContext {
                            record,
                            affected,
                            feed: &feed.path,
                        };
                        if let Some(release) = debian_release(&affected.ecosystem) {
                            if release.is_some_and(|r| version_id.as_deref() != Some(r)) {
                                continue;
                            }
                            ctx.check_each(
                                SubjectKind::Package,
                                &packages,
                                |source| source == affected.name,
                                |s| DebVersion::parse(s).ok(),
                                &mut notes,
                                &mut findings,
                            );
                        } else if affected.ecosystem.eq_ignore_ascii_case("Go") {
                            ctx.check_each(
                                SubjectKind::Component,
                                &parsed_components,
                                |name| osv_modules(name).contains(&affected.name.as_str()),
                                |s| UpstreamVersion::parse(s).ok(),
                                &mut notes,
                                &mut findings,
                            );
                        }
                    }
                }
            }
        }
    }
    findings.sort();
    findings.dedup();
    ScanResult {
        findings,
        notes: notes.into_iter().collect(),
    }
}

/// `Some(None)` for `Debian`, `Some(Some("12"))` for `Debian:12`, `None` for other ecosystems.
fn debian_release(ecosystem: &str) -> Option<Option<&str>> {
    let (name, release) = match ecosystem.split_once(':') {
        Some((n, r)) => (n, Some(r)),
        None => (ecosystem, None),
    };
    name.eq_ignore_ascii_case("Debian").then_some(release)
}

fn match_tracker(
    tracker: &Tracker,
    release: &str,
    packages: &[(&str, &str, DebVersion)],
    feed: &str,
    findings: &mut Vec<Finding>,
    notes: &mut BTreeSet<String>,
) {
    for (source, raw, installed) in packages {
        let Some(issues) = tracker.packages.get(*source) else {
            continue;
        };
        for (id, issue) in issues {
            let Some(state) = issue.releases.get(release) else {
                continue;
            };
            let severity = state
                .urgency
                .as_deref()
                .and_then(Severity::from_word)
                .unwrap_or(Severity::Unknown);
            let (fix_state, fixed_version) = match state.status {
                Status::Resolved => {
                    let Some(fixed) = &state.fixed_version else {
                        continue;
                    };
                    // "0" is never affected; an unparseable fixed version cannot be
                    // compared, and the advisory is reported as a note rather than dropped.
                    match DebVersion::parse(fixed) {
                        Ok(f) if *installed < f => (FixState::Fixed, Some(fixed.clone())),
                        Ok(_) => continue,
                        Err(e) => {
                            notes.insert(format!(
                                "{feed}: {id} for package {source} {raw}: not checked: \
                                 fixed_version {fixed:?} does not parse: {e}"
                            ));
                            continue;
                        }
                    }
                }
                Status::Open => (FixState::Open, None),
                Status::Undetermined => (FixState::Undetermined, None),
            };
            findings.push(Finding {
                kind: SubjectKind::Package,
                name: (*source).to_owned(),
                installed: (*raw).to_owned(),
                id: id.clone(),
                severity,
                state: fix_state,
                fixed_version,
                feed: feed.to_owned(),
            });
        }
    }
}

struct OsvContext<'a> {
    record: &'a OsvRecord,
    affected: &'a Affected,
    feed: &'a str,
}

impl OsvContext<'_> {
    /// Checks each subject (name, version as written, parsed version) that `named` says this
    /// advisory's package covers: notes the advisory's versions that do not parse, and adds a
    /// finding when the installed version is affected.
    fn check_each<V: Ord + Clone>(
        &self,
        kind: SubjectKind,
        subjects: &[(&str, &str, V)],
        named: impl Fn(&str) -> bool,
        parse: impl Fn(&str) -> Option<V>,
        notes: &mut BTreeSet<String>,
        findings: &mut Vec<Finding>,
    ) {
        for (name, raw, installed) in subjects {
            if named(name) {
                self.note_unparseable(name, raw, &parse, notes);
                self.check(kind, name, raw, installed, &parse, findings);
            }
        }
    }

    /// Notes every range event of this advisory whose version does not parse (it cannot be
    /// compared, so the advisory may be missed): the advisory, the subject and the version.
    fn note_unparseable<V>(
        &self,
        name: &str,
        raw: &str,
        parse: impl Fn(&str) -> Option<V>,
        notes: &mut BTreeSet<String>,
    ) {
        let ranges = self
            .affected
            .ranges
            .iter()
            .filter(|r| !r.kind.eq_ignore_ascii_case("GIT"));
        for e in ranges.flat_map(|r| &r.events) {
            let (event, v) = match e {
                Event::Introduced(v) if v != "0" => ("introduced", v),
                Event::Fixed(v) => ("fixed", v),
                Event::LastAffected(v) => ("last_affected", v),
                _ => continue,
            };
            if parse(v).is_none() {
                notes.insert(format!(
                    "{}: {} for {name} {raw}: not checked fully: {event} version {v:?} does \
                     not parse",
                    self.feed, self.record.id
                ));
            }
        }
    }

    fn check<V: Ord + Clone>(
        &self,
        kind: SubjectKind,
        name: &str,
        raw: &str,
        installed: &V,
        parse: impl Fn(&str) -> Option<V>,
        findings: &mut Vec<Finding>,
    ) {
        let Some(fixed) = affected_by(self.affected, raw, installed, &parse) else {
            return;
        };
        findings.push(Finding {
            kind,
            name: name.to_owned(),
            installed: raw.to_owned(),
            id: self.record.id.clone(),
            severity: self.affected.severity.unwrap_or(self.record.severity),
            state: if fixed.is_some() {
                FixState::Fixed
            } else {
                FixState::Open
            },
            fixed_version: fixed,
            feed: self.feed.to_owned(),
        });
    }
}

/// Whether `installed` is affected: `Some(fixed version, if any)`, else `None`. Ranges are
/// evaluated as the OSV schema describes (events sorted by version; `introduced` turns
/// "affected" on, `fixed` at or below the version and `last_affected` below it turn it off);
/// events whose version cannot be parsed, `limit` events and `GIT` ranges are ignored.
pub fn affected_by<V: Ord + Clone>(
    affected: &Affected,
    raw: &str,
    installed: &V,
    parse: impl Fn(&str) -> Option<V>,
) -> Option<Option<String>> {
    let mut hit = affected
        .versions
        .iter()
        .any(|v| v == raw || parse(v).is_some_and(|p| p.cmp(installed) == Ordering::Equal));
    let mut best_fix: Option<(V, String)> = None;
    for range in &affected.ranges {
        if range.kind.eq_ignore_ascii_case("GIT") {
            continue;
        }
        // (version; None = "0", the very start), rank (introduced before fixed at a tie), event.
        let mut events: Vec<(Option<V>, u8, &Event)> = Vec::new();
        for e in &range.events {
            match e {
                Event::Introduced(v) if v == "0" => events.push((None, 0, e)),
                Event::Introduced(v) => events.extend(parse(v).map(|p| (Some(p), 0, e))),
                Event::Fixed(v) | Event::LastAffected(v) => {
                    events.extend(parse(v).map(|p| (Some(p), 1, e)));
                }
                Event::Limit(_) => {}
            }
        }
        events.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let mut on = false;
        for (v, _, e) in &events {
            match (e, v) {
                (Event::Introduced(_), None) => on = true,
                (Event::Introduced(_), Some(v)) if installed >= v => on = true,
                (Event::Fixed(_), Some(v)) if installed >= v => on = false,
                (Event::LastAffected(_), Some(v)) if installed > v => on = false,
                _ => {}
            }
        }
        if on {
            hit = true;
            // The first fix after the installed version in this range.
            let fix = events.iter().find_map(|(v, _, e)| match (e, v) {
                (Event::Fixed(text), Some(v)) if v > installed => Some((v, text)),
                _ => None,
            });
            if let Some((v, text)) = fix
                && best_fix.as_ref().is_none_or(|(b, _)| v < b)
            {
                best_fix = Some((v.clone(), text.clone()));
            }
        }
    }
    hit.then(|| best_fix.map(|(_, text)| text))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::model::tests::sample;
    use crate::model::{ComponentFile, Package};
    use crate::scan::feed::parse_feed;

    fn feed(text: &str) -> Feed {
        parse_feed(Path::new("feed.json"), text.as_bytes()).unwrap()
    }

    /// Each finding as (name, id, severity, fix state, fixed version), in the result's order.
    fn digest(r: &ScanResult) -> Vec<(&str, &str, Severity, FixState, Option<&str>)> {
        r.findings
            .iter()
            .map(|f| {
                (
                    f.name.as_str(),
                    f.id.as_str(),
                    f.severity,
                    f.state,
                    f.fixed_version.as_deref(),
                )
            })
            .collect()
    }

    fn package(source: &str, version: &str) -> Package {
        Package {
            name: format!("lib{source}"),
            version: version.into(),
            architecture: "amd64".into(),
            source: source.into(),
            source_version: version.into(),
            held: false,
        }
    }

    fn tracker_issue(status: &str, fixed: &str, urgency: &str) -> String {
        format!(
            r#"{{"releases": {{"bookworm": {{"status": "{status}", "fixed_version": "{fixed}", "urgency": "{urgency}"}},
               "trixie": {{"status": "open", "urgency": "high"}}}}}}"#
        )
    }

    #[test]
    fn tracker_findings_follow_debian_ordering() {
        let mut bom = sample();
        bom.packages = vec![
            package("tilde", "1.0~rc1-1"),
            package("epoch", "1:1.0-1"),
            package("fixed", "2.0-1+deb12u1"),
            package("never", "1.0-1"),
            package("open", "1.0-1"),
            package("open", "1.0-1"),
        ];
        let text = format!(
            r#"{{"tilde": {{"CVE-1": {t}}}, "epoch": {{"CVE-2": {e}}}, "fixed": {{"CVE-3": {f}}},
                "never": {{"CVE-4": {n}}}, "open": {{"CVE-5": {o}}}, "absent": {{"CVE-6": {t}}}}}"#,
            t = tracker_issue("resolved", "1.0-1", "medium"),
            e = tracker_issue("resolved", "2.0-1", "high"),
            f = tracker_issue("resolved", "2.0-1+deb12u1", "high"),
            n = tracker_issue("resolved", "0", "high"),
            o = tracker_issue("open", "", "not yet assigned"),
        );
        let r = scan(&bom, &[feed(&text)]);
        assert_eq!(
            digest(&r),
            [
                ("open", "CVE-5", Severity::Unknown, FixState::Open, None),
                (
                    "tilde",
                    "CVE-1",
                    Severity::Medium,
                    FixState::Fixed,
                    Some("1.0-1")
                ),
            ]
        );
        assert!(r.notes.is_empty(), "{:?}", r.notes);
    }

    #[test]
    fn osv_ranges_match_components_and_debian_packages() {
        let mut bom = sample();
        bom.components = ["kubeadm", "kubelet"]
            .iter()
            .map(|n| ComponentFile {
                name: (*n).into(),
                version: "v1.28.3".into(),
                path: format!("/usr/bin/{n}"),
                sha256: "d".repeat(64),
                source: "s".into(),
            })
            .collect();
        bom.packages = vec![package("runc", "1.1.5+ds1-1")];
        let text = r#"[
          {"id": "GHSA-k8s", "database_specific": {"severity": "MODERATE"},
           "affected": [{"package": {"ecosystem": "Go", "name": "k8s.io/kubernetes"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.27.8"},
                                                      {"introduced": "1.28.0"}, {"fixed": "1.28.4"}]}]}]},
          {"id": "GHSA-old", "affected": [{"package": {"ecosystem": "Go", "name": "k8s.io/kubernetes"},
             "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.28.0-rc.1"}]}]}]},
          {"id": "GHSA-last", "affected": [{"package": {"ecosystem": "Go", "name": "k8s.io/kubernetes"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.28.0"}, {"last_affected": "1.28.3"}]}]}]},
          {"id": "DEBIAN-CVE-1", "affected": [{"package": {"ecosystem": "Debian:12", "name": "runc"},
             "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.1.5+ds1-1+deb12u1"}]}],
             "ecosystem_specific": {"urgency": "low"}}]},
          {"id": "DEBIAN-CVE-2", "affected": [{"package": {"ecosystem": "Debian:11", "name": "runc"},
             "versions": ["1.1.5+ds1-1"]}]}
        ]"#;
        let r = scan(&bom, &[feed(text)]);
        assert_eq!(
            digest(&r),
            [
                (
                    "runc",
                    "DEBIAN-CVE-1",
                    Severity::Low,
                    FixState::Fixed,
                    Some("1.1.5+ds1-1+deb12u1")
                ),
                (
                    "kubeadm",
                    "GHSA-k8s",
                    Severity::Medium,
                    FixState::Fixed,
                    Some("1.28.4")
                ),
                (
                    "kubeadm",
                    "GHSA-last",
                    Severity::Unknown,
                    FixState::Open,
                    None
                ),
                (
                    "kubelet",
                    "GHSA-k8s",
                    Severity::Medium,
                    FixState::Fixed,
                    Some("1.28.4")
                ),
                (
                    "kubelet",
                    "GHSA-last",
                    Severity::Unknown,
                    FixState::Open,
                    None
                ),
            ]
        );
    }

    #[test]
    fn unparseable_versions_become_notes_not_panics() {
        let mut bom = sample();
        bom.packages = vec![package("bad", "1:")];
        bom.components[0].version = "latest".into();
        bom.os.os_release.remove("VERSION_CODENAME");
        let r = scan(&bom, &[feed(r#"{"bad": {"CVE-1": {"releases": {}}}}"#)]);
        assert!(r.findings.is_empty());
        assert_eq!(r.notes.len(), 3, "{:?}", r.notes);
    }
}
