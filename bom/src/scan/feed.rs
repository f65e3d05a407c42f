//! Feed files: detect the kind (Debian security tracker export or OSV), parse. Every fault
//! is one [`FeedError`] naming the file and what is wrong; nothing panics on any input.

use std::path::Path;

use serde_json::Value;

use super::debian_tracker::Tracker;
use super::osv::OsvRecord;
use super::schema::{SchemaError, type_name};
use crate::model::{BomError, parse_json};

/// A parsed feed.
#[derive(Debug, Clone)]
pub struct Feed {
    /// The file, as given.
    pub path: String,
    /// What it holds.
    pub content: FeedContent,
}

/// What a feed holds.
#[derive(Debug, Clone)]
pub enum FeedContent {
    /// The Debian security tracker's JSON export.
    DebianTracker(Tracker),
    /// OSV records.
    Osv(Vec<OsvRecord>),
}

impl Feed {
    /// `debian-tracker` or `osv`.
    pub fn kind(&self) -> &'static str {
        match self.content {
            FeedContent::DebianTracker(_) => "debian-tracker",
            FeedContent::Osv(_) => "osv",
        }
    }
}

/// A feed file that cannot be used: unreadable, or not a feed (the same shape as a BOM's).
pub type FeedError = BomError;

/// Parses `bytes` (the contents of `path`) as a feed of either kind:
/// - a JSON array of OSV records, an object with a `vulns` array of them, or one record (an
///   object with an `id` key) → OSV;
/// - any other non-empty object → the Debian tracker export (source package → issue id →
///   `releases` → release name → `status`, `fixed_version`, `urgency`);
/// - anything else → an unknown feed kind.
pub fn parse_feed(path: &Path, bytes: &[u8]) -> Result<Feed, FeedError> {
    let path_text = path.display().to_string();
    let invalid = |reason: String| FeedError::Invalid {
        path: path_text.clone(),
        reason,
    };
    let value = parse_json(path, bytes)?;
    let schema = |kind: &str, e: SchemaError| invalid(format!("wrong schema for {kind}: {}", e.0));
    let content = match &value {
        Value::Array(items) => FeedContent::Osv(
            super::osv::parse_records(items, "").map_err(|e| schema("an OSV feed", e))?,
        ),
        Value::Object(map) if map.contains_key("vulns") => {
            let Some(items) = map.get("vulns").and_then(Value::as_array) else {
                return Err(schema(
                    "an OSV feed",
                    SchemaError::at("`vulns`", "expected an array of OSV records"),
                ));
            };
            FeedContent::Osv(
                super::osv::parse_records(items, "`vulns`")
                    .map_err(|e| schema("an OSV feed", e))?,
            )
        }
        Value::Object(map) if map.contains_key("id") => FeedContent::Osv(vec![
            super::osv::parse_record(&value, "").map_err(|e| schema("an OSV record", e))?,
        ]),
        Value::Object(map) if !map.is_empty() => FeedContent::DebianTracker(
            Tracker::parse(map).map_err(|e| schema("a Debian security tracker export", e))?,
        ),
        Value::Object(_) => {
            return Err(invalid(
                "unknown feed kind: an empty JSON object is neither a Debian security tracker \
                 export nor OSV"
                    .into(),
            ));
        }
        other => {
            return Err(invalid(format!(
                "unknown feed kind: the JSON document is {}, not a Debian security tracker \
                 export (an object) or OSV (a record, an array of records or {{\"vulns\": […]}})",
                type_name(other)
            )));
        }
    };
    Ok(Feed {
        path: path_text,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(bytes: &[u8]) -> String {
        parse_feed(Path::new("/f/feed.json"), bytes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn detects_the_kind() {
        let p = Path::new("f.json");
        let tracker = br#"{"bash": {"CVE-1": {"releases": {"bookworm": {"status": "open", "repositories": {}, "urgency": "low"}}}}}"#;
        assert_eq!(parse_feed(p, tracker).unwrap().kind(), "debian-tracker");
        let osv = br#"{"id": "GHSA-1", "affected": []}"#;
        assert_eq!(parse_feed(p, osv).unwrap().kind(), "osv");
        assert_eq!(parse_feed(p, b"[]").unwrap().kind(), "osv");
        let list = br#"{"vulns": [{"id": "GHSA-1"}]}"#;
        assert_eq!(parse_feed(p, list).unwrap().kind(), "osv");
    }

    #[test]
    fn faults_name_the_file_and_what_is_wrong() {
        for (bytes, want) in [
            (&br#"{"bash": {"CVE-1": {"rel"#[..], "truncated JSON"),
            (b"<html>", "not JSON"),
            (b"", "truncated JSON"),
            (b"42", "unknown feed kind"),
            (b"{}", "unknown feed kind"),
            (br#"{"bash": []}"#, "`bash`: expected an object"),
            (
                br#"{"bash": {"CVE-1": {}}}"#,
                "`bash`.`CVE-1`: no `releases` key",
            ),
            (br#"{"vulns": 3}"#, "`vulns`: expected an array"),
            (br#"{"id": 3}"#, "`id`: expected a string"),
        ] {
            let e = err(bytes);
            assert!(e.starts_with("/f/feed.json: "), "{e}");
            assert!(e.contains(want), "{want}: {e}");
        }
    }
}
