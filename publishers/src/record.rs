//! `publish.json`: next to the manifest, what each publish made. One entry per target and
//! stage; a later publish to the same target and stage replaces its entry. The command line
//! writes it atomically, last, after the target reported success.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// File name of the record, next to `manifest.json`.
pub const RECORD_FILE: &str = "publish.json";
/// Its schema version.
pub const RECORD_VERSION: u32 = 1;
/// Largest record read back.
const RECORD_LIMIT: u64 = 16 << 20;

/// What one publish to one target made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Published {
    /// The target as given to `--to` (`aws`, `gcp:BUCKET`, `oci:HOST/REPO:TAG`).
    pub target: String,
    /// `--stage`, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// The content digest it was made from.
    pub content_sha256: String,
    /// What exists at the target, by kind: `region`, `snapshot_id`, `image_id`, `object`,
    /// `image`, `blob_url` (never with its SAS), `artifact_digest`, … No credential.
    pub created: BTreeMap<String, String>,
    /// True when an earlier publish had made it all and nothing was uploaded.
    pub reused: bool,
    /// Commands left for the user (Azure: making a managed disk or image from the blob).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub next_steps: Vec<String>,
}

/// `publish.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PublishRecord {
    /// [`RECORD_VERSION`].
    pub publish_version: u32,
    /// The manifest's name.
    pub name: String,
    /// The manifest's content digest.
    pub content_sha256: String,
    /// Per target and stage, in the order first published.
    pub targets: Vec<Published>,
}

impl PublishRecord {
    /// The record in `dir`, or a new one when there is none or it is of other content (the
    /// directory was rebuilt since). A record that cannot be read is an error naming it.
    pub fn load_or_new(dir: &Path, name: &str, content_sha256: &str) -> Result<Self> {
        let path = dir.join(RECORD_FILE);
        let fresh = PublishRecord {
            publish_version: RECORD_VERSION,
            name: name.to_owned(),
            content_sha256: content_sha256.to_owned(),
            targets: Vec::new(),
        };
        if !path.exists() {
            return Ok(fresh);
        }
        let text =
            diskimg::input_file::read_bounded_string(&path, RECORD_LIMIT, "a publish record")
                .map_err(|e| Error::Input {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
        let record: PublishRecord = serde_json::from_str(&text).map_err(|e| Error::Input {
            path: path.clone(),
            why: format!(
                "not a nodeimg publish record: {e} (line {}, column {})",
                e.line(),
                e.column()
            ),
        })?;
        if record.content_sha256 != content_sha256 {
            return Ok(fresh);
        }
        Ok(record)
    }

    /// Adds `published`, replacing the entry of the same target and stage.
    pub fn upsert(&mut self, published: Published) {
        match self
            .targets
            .iter_mut()
            .find(|p| p.target == published.target && p.stage == published.stage)
        {
            Some(slot) => *slot = published,
            None => self.targets.push(published),
        }
    }

    /// The record as pretty JSON with a trailing newline.
    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).unwrap_or_default();
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(target: &str, stage: Option<&str>, id: &str) -> Published {
        Published {
            target: target.into(),
            stage: stage.map(str::to_owned),
            content_sha256: "ab".repeat(32),
            created: BTreeMap::from([("image_id".to_owned(), id.to_owned())]),
            reused: false,
            next_steps: vec![],
        }
    }

    #[test]
    fn upsert_replaces_the_same_target_and_stage_only() {
        let d = tempfile::tempdir().unwrap();
        let mut r = PublishRecord::load_or_new(d.path(), "node", &"ab".repeat(32)).unwrap();
        r.upsert(entry("aws", None, "ami-1"));
        r.upsert(entry("aws", Some("prod"), "ami-2"));
        r.upsert(entry("aws", None, "ami-3"));
        let ids: Vec<_> = r
            .targets
            .iter()
            .map(|p| p.created["image_id"].as_str())
            .collect();
        assert_eq!(ids, ["ami-3", "ami-2"]);
        std::fs::write(d.path().join(RECORD_FILE), r.to_json()).unwrap();
        let back = PublishRecord::load_or_new(d.path(), "node", &"ab".repeat(32)).unwrap();
        assert_eq!(back, r);
        // Other content: a new record.
        let other = PublishRecord::load_or_new(d.path(), "node", &"cd".repeat(32)).unwrap();
        assert!(other.targets.is_empty());
    }

    #[test]
    fn a_damaged_record_is_named_with_line_and_column() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(RECORD_FILE), "{\n  \"publish_version\": x").unwrap();
        let e = PublishRecord::load_or_new(d.path(), "n", "d")
            .unwrap_err()
            .to_string();
        assert!(e.contains("publish.json") && e.contains("line 2"), "{e}");
    }
}
