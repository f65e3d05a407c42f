//! The Debian security tracker's JSON export
//! (`https://security-tracker.debian.org/tracker/data/json`): an object of source packages,
//! each an object of issues (`CVE-…`, `TEMP-…`), each with `releases`: release codename →
//! `status` (`resolved`, `open`, `undetermined`), `fixed_version` (when resolved; `"0"` means
//! the release was never affected), `urgency` and `repositories`. Other keys (`description`,
//! `scope`, `debianbug`, `nodsa`, …) are ignored.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::schema::{SchemaError, join, type_name};

/// The parsed export: source package → its issues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tracker {
    /// Source package → issue id → per-release state.
    pub packages: BTreeMap<String, BTreeMap<String, Issue>>,
}

/// One issue of one source package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Issue {
    /// Release codename (`bookworm`) → its state.
    pub releases: BTreeMap<String, ReleaseState>,
}

/// An issue's state in one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseState {
    /// The tracker's status.
    pub status: Status,
    /// The version that fixes it (resolved issues).
    pub fixed_version: Option<String>,
    /// The tracker's urgency (`low`, `medium`, `high`, `unimportant`, `not yet assigned`, …).
    pub urgency: Option<String>,
}

/// The tracker's status of an issue in a release.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Fixed in `fixed_version`.
    Resolved,
    /// Affects the release; no fix yet.
    Open,
    /// Not yet determined.
    Undetermined,
}

fn object<'a>(v: &'a Value, at: &str, what: &str) -> Result<&'a Map<String, Value>, SchemaError> {
    v.as_object().ok_or_else(|| {
        SchemaError::at(
            at,
            format!("expected an object of {what}, found {}", type_name(v)),
        )
    })
}

fn optional_string(
    map: &Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<Option<String>, SchemaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(SchemaError::at(
            &join(at, key),
            format!("expected a string, found {}", type_name(other)),
        )),
    }
}

impl Tracker {
    /// Parses the export's top-level object.
    pub fn parse(top: &Map<String, Value>) -> Result<Self, SchemaError> {
        let mut packages = BTreeMap::new();
        for (source, issues_value) in top {
            let at = join("", source);
            let issues_map = object(issues_value, &at, "issues")?;
            let mut issues = BTreeMap::new();
            for (id, issue_value) in issues_map {
                let at = join(&at, id);
                issues.insert(id.clone(), parse_issue(issue_value, &at)?);
            }
            packages.insert(source.clone(), issues);
        }
        Ok(Self { packages })
    }
}

fn parse_issue(v: &Value, at: &str) -> Result<Issue, SchemaError> {
    let map = object(v, at, "issue fields")?;
    let Some(releases_value) = map.get("releases") else {
        return Err(SchemaError::at(at, "no `releases` key"));
    };
    let at = join(at, "releases");
    let mut releases = BTreeMap::new();
    for (name, state) in object(releases_value, &at, "releases")? {
        let at = join(&at, name);
        let fields = object(state, &at, "release fields")?;
        let status = match fields.get("status") {
            None => return Err(SchemaError::at(&at, "no `status` key")),
            Some(Value::String(s)) => match s.as_str() {
                "resolved" => Status::Resolved,
                "open" => Status::Open,
                "undetermined" => Status::Undetermined,
                other => {
                    return Err(SchemaError::at(
                        &join(&at, "status"),
                        format!(
                            "unknown status {other:?} (expected resolved, open or undetermined)"
                        ),
                    ));
                }
            },
            Some(other) => {
                return Err(SchemaError::at(
                    &join(&at, "status"),
                    format!("expected a string, found {}", type_name(other)),
                ));
            }
        };
        releases.insert(
            name.clone(),
            ReleaseState {
                status,
                fixed_version: optional_string(fields, "fixed_version", &at)?,
                urgency: optional_string(fields, "urgency", &at)?,
            },
        );
    }
    Ok(Issue { releases })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Tracker, SchemaError> {
        let v: Value = serde_json::from_str(text).unwrap();
        Tracker::parse(v.as_object().unwrap())
    }

    #[test]
    fn reads_the_export_shape_and_ignores_other_keys() {
        let t = parse(
            r#"{"openssl": {"CVE-2024-1": {"description": "d", "scope": "remote", "debianbug": 1,
                "releases": {"bookworm": {"status": "resolved", "fixed_version": "3.0.13-1~deb12u1",
                "urgency": "medium", "repositories": {"bookworm": "3.0.15-1~deb12u1"}},
                "sid": {"status": "open", "urgency": "not yet assigned", "repositories": {}, "nodsa": "x"}}}}}"#,
        )
        .unwrap();
        let r = &t.packages["openssl"]["CVE-2024-1"].releases;
        assert_eq!(r["bookworm"].status, Status::Resolved);
        assert_eq!(
            r["bookworm"].fixed_version.as_deref(),
            Some("3.0.13-1~deb12u1")
        );
        assert_eq!(r["sid"].status, Status::Open);
        assert_eq!(r["sid"].urgency.as_deref(), Some("not yet assigned"));
    }

    #[test]
    fn schema_faults_say_which_key() {
        for (text, want) in [
            (
                r#"{"a": {"C": {"releases": []}}}"#,
                "`a`.`C`.`releases`: expected an object",
            ),
            (
                r#"{"a": {"C": {"releases": {"x": {}}}}}"#,
                "`a`.`C`.`releases`.`x`: no `status` key",
            ),
            (
                r#"{"a": {"C": {"releases": {"x": {"status": "gone"}}}}}"#,
                "unknown status \"gone\"",
            ),
            (
                r#"{"a": {"C": {"releases": {"x": {"status": "open", "urgency": 1}}}}}"#,
                "`x`.`urgency`: expected a string, found a number",
            ),
        ] {
            let e = parse(text).unwrap_err().0;
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
