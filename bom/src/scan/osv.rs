//! OSV records (<https://ossf.github.io/osv-schema/>): `id`, `affected[]` with
//! `package{ecosystem, name}`, `ranges[]` (`type` `ECOSYSTEM`/`SEMVER`/`GIT`, `events` of
//! `introduced`/`fixed`/`last_affected`/`limit`) and `versions[]`, and severity.
//!
//! Severity, first found wins: the affected entry's `ecosystem_specific` or
//! `database_specific` `severity` (or Debian's `urgency`), the record's
//! `database_specific.severity` (GHSA's `LOW`/`MODERATE`/`HIGH`/`CRITICAL`), then the highest
//! rating of the record's CVSS v3 vectors in `severity[]` (scored here); otherwise unknown.

use serde_json::{Map, Value};

use super::Severity;
use super::schema::{SchemaError, index, join, type_name};

/// One OSV record, reduced to what matching needs.
#[derive(Debug, Clone, PartialEq)]
pub struct OsvRecord {
    /// `GHSA-…`, `GO-…`, `CVE-…`, `DSA-…`.
    pub id: String,
    /// What it affects.
    pub affected: Vec<Affected>,
    /// The record-level severity (see the module documentation).
    pub severity: Severity,
}

/// One `affected[]` entry that names a package.
#[derive(Debug, Clone, PartialEq)]
pub struct Affected {
    /// `Go`, `Debian:12`, …
    pub ecosystem: String,
    /// The package name in that ecosystem.
    pub name: String,
    /// Version ranges.
    pub ranges: Vec<Range>,
    /// Explicitly listed affected versions.
    pub versions: Vec<String>,
    /// A severity given for this entry only.
    pub severity: Option<Severity>,
}

/// A version range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Range {
    /// `ECOSYSTEM`, `SEMVER` or `GIT` (whose commit events are not versions and are ignored).
    pub kind: String,
    /// Its events, in the file's order.
    pub events: Vec<Event>,
}

/// A range event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Affected from this version on (`"0"`: from the start).
    Introduced(String),
    /// Fixed in this version.
    Fixed(String),
    /// Affected up to and including this version.
    LastAffected(String),
    /// A limit (for git ranges); ignored in matching.
    Limit(String),
}

fn string<'a>(v: &'a Value, at: &str) -> Result<&'a str, SchemaError> {
    v.as_str()
        .ok_or_else(|| SchemaError::at(at, format!("expected a string, found {}", type_name(v))))
}

fn array<'a>(map: &'a Map<String, Value>, key: &str, at: &str) -> Result<&'a [Value], SchemaError> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(SchemaError::at(
            &join(at, key),
            format!("expected an array, found {}", type_name(other)),
        )),
    }
}

fn object<'a>(v: &'a Value, at: &str) -> Result<&'a Map<String, Value>, SchemaError> {
    v.as_object()
        .ok_or_else(|| SchemaError::at(at, format!("expected an object, found {}", type_name(v))))
}

/// Parses an array of records (`at`: where the array is, for messages).
pub fn parse_records(items: &[Value], at: &str) -> Result<Vec<OsvRecord>, SchemaError> {
    items
        .iter()
        .enumerate()
        .map(|(i, v)| parse_record(v, &index(at, i)))
        .collect()
}

/// A `severity` string found at `key` of `map` (also `urgency`), as a [`Severity`].
fn word_severity(map: Option<&Map<String, Value>>) -> Option<Severity> {
    let map = map?;
    ["severity", "urgency"]
        .iter()
        .filter_map(|k| map.get(*k)?.as_str())
        .find_map(Severity::from_word)
        .filter(|s| *s != Severity::Unknown)
}

/// Parses one record.
pub fn parse_record(v: &Value, at: &str) -> Result<OsvRecord, SchemaError> {
    let map = object(v, at)?;
    let Some(id) = map.get("id") else {
        return Err(SchemaError::at(at, "no `id` key: not an OSV record"));
    };
    let id = string(id, &join(at, "id"))?.to_owned();
    let mut affected = Vec::new();
    let affected_at = join(at, "affected");
    for (i, entry) in array(map, "affected", at)?.iter().enumerate() {
        let at = index(&affected_at, i);
        if let Some(a) = parse_affected(entry, &at)? {
            affected.push(a);
        }
    }
    let db = map.get("database_specific").and_then(Value::as_object);
    let mut severity = word_severity(db);
    if severity.is_none() {
        let sev_at = join(at, "severity");
        for (i, s) in array(map, "severity", at)?.iter().enumerate() {
            let at = index(&sev_at, i);
            let s = object(s, &at)?;
            let Some(score) = s.get("score") else {
                continue;
            };
            let score = string(score, &join(&at, "score"))?;
            if let Some(base) = super::cvss::base_score(score) {
                severity = severity.max(Some(super::cvss::rating(base)));
            }
        }
    }
    Ok(OsvRecord {
        id,
        affected,
        severity: severity.unwrap_or(Severity::Unknown),
    })
}

/// One `affected[]` entry, or `None` when it names no package (GIT-only entries).
fn parse_affected(v: &Value, at: &str) -> Result<Option<Affected>, SchemaError> {
    let map = object(v, at)?;
    let Some(package) = map.get("package") else {
        return Ok(None);
    };
    let pkg_at = join(at, "package");
    let package = object(package, &pkg_at)?;
    let field = |key: &str| -> Result<String, SchemaError> {
        match package.get(key) {
            None => Err(SchemaError::at(&pkg_at, format!("no `{key}` key"))),
            Some(v) => Ok(string(v, &join(&pkg_at, key))?.to_owned()),
        }
    };
    let (ecosystem, name) = (field("ecosystem")?, field("name")?);
    let mut ranges = Vec::new();
    let ranges_at = join(at, "ranges");
    for (i, r) in array(map, "ranges", at)?.iter().enumerate() {
        let at = index(&ranges_at, i);
        let r = object(r, &at)?;
        let kind = match r.get("type") {
            None => return Err(SchemaError::at(&at, "no `type` key")),
            Some(t) => string(t, &join(&at, "type"))?.to_owned(),
        };
        let mut events = Vec::new();
        let events_at = join(&at, "events");
        for (k, e) in array(r, "events", &at)?.iter().enumerate() {
            let at = index(&events_at, k);
            let e = object(e, &at)?;
            let event = if let Some(v) = e.get("introduced") {
                Event::Introduced(string(v, &join(&at, "introduced"))?.to_owned())
            } else if let Some(v) = e.get("fixed") {
                Event::Fixed(string(v, &join(&at, "fixed"))?.to_owned())
            } else if let Some(v) = e.get("last_affected") {
                Event::LastAffected(string(v, &join(&at, "last_affected"))?.to_owned())
            } else if let Some(v) = e.get("limit") {
                Event::Limit(string(v, &join(&at, "limit"))?.to_owned())
            } else {
                return Err(SchemaError::at(
                    &at,
                    "an event needs `introduced`, `fixed`, `last_affected` or `limit`",
                ));
            };
            events.push(event);
        }
        ranges.push(Range { kind, events });
    }
    let mut versions = Vec::new();
    let versions_at = join(at, "versions");
    for (i, v) in array(map, "versions", at)?.iter().enumerate() {
        versions.push(string(v, &index(&versions_at, i))?.to_owned());
    }
    let severity = word_severity(map.get("ecosystem_specific").and_then(Value::as_object))
        .or_else(|| word_severity(map.get("database_specific").and_then(Value::as_object)));
    Ok(Some(Affected {
        ecosystem,
        name,
        ranges,
        versions,
        severity,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(text: &str) -> Result<OsvRecord, SchemaError> {
        parse_record(&serde_json::from_str(text).unwrap(), "")
    }

    #[test]
    fn reads_packages_ranges_and_severity() {
        let r = record(
            r#"{"id": "GHSA-x", "modified": "2024-01-01T00:00:00Z",
                "affected": [{"package": {"ecosystem": "Go", "name": "github.com/opencontainers/runc"},
                  "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.1.12"}]}]},
                  {"ranges": [{"type": "GIT", "repo": "r", "events": [{"introduced": "abc"}]}]}],
                "database_specific": {"severity": "HIGH"}}"#,
        )
        .unwrap();
        assert_eq!(r.severity, Severity::High);
        assert_eq!(r.affected.len(), 1, "the GIT-only entry names no package");
        assert_eq!(
            r.affected[0].ranges[0].events,
            [Event::Introduced("0".into()), Event::Fixed("1.1.12".into())]
        );
        let cvss = record(
            r#"{"id": "CVE-1", "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]}"#,
        )
        .unwrap();
        assert_eq!(cvss.severity, Severity::Critical);
        assert_eq!(
            record(r#"{"id": "X"}"#).unwrap().severity,
            Severity::Unknown
        );
    }

    #[test]
    fn schema_faults_say_where() {
        for (text, want) in [
            (
                r#"{"id": "X", "affected": {}}"#,
                "`affected`: expected an array",
            ),
            (
                r#"{"id": "X", "affected": [{"package": {"name": "n"}}]}"#,
                "`affected`[0].`package`: no `ecosystem` key",
            ),
            (
                r#"{"id": "X", "affected": [{"package": {"ecosystem": "Go", "name": "n"}, "ranges": [{"type": "SEMVER", "events": [{}]}]}]}"#,
                "`affected`[0].`ranges`[0].`events`[0]: an event needs",
            ),
            (r#"{"summary": "x"}"#, "no `id` key"),
        ] {
            let e = record(text).unwrap_err().0;
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
