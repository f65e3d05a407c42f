//! Compute Engine: the image's name, labels and `images.insert` body, and the calls
//! `images.get`, `images.insert` and `globalOperations.get` (the insert's operation polled
//! until `DONE`, bounded), through the compute v1 JSON API.
//!
//! Label spelling (Compute Engine allows keys and values of at most 63 characters of
//! `[a-z0-9_-]`, keys starting with a letter): keys and values are lowercased and every other
//! character becomes `_` (`v1.20.2` → `v1_20_2`). The 64-hex content digest does not fit in a
//! value: the `content-sha256` label holds its first 63 digits, and the image's description
//! holds the whole digest and every label's exact value; an earlier image is taken as this
//! content's only when both match.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use exporters::format::Firmware;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use ureq::Agent;

use super::auth::Auth;
use super::http::{Call, encode};
use crate::error::{Error, Result};
use crate::retry::{self, Policy};
use crate::source::{Source, keys};

/// The guest OS features of a UEFI Debian/Ubuntu image: boots with UEFI, multiqueue
/// virtio-scsi, the gVNIC network driver. The same list as the export's `import-gce.txt`
/// (`--guest-os-features`); a BIOS image has all but `UEFI_COMPATIBLE`.
pub const GUEST_OS_FEATURES: &[&str] = &["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"];
/// The image's architecture.
pub const ARCHITECTURE: &str = "X86_64";
/// Longest name, label key or label value.
const MAX: usize = 63;

const GET: &str = "compute.images.get";
const INSERT: &str = "compute.images.insert";
const OPERATION: &str = "compute.globalOperations.get";

/// The guest OS features for `firmware`.
pub fn guest_os_features(firmware: Firmware) -> Vec<&'static str> {
    GUEST_OS_FEATURES
        .iter()
        .copied()
        .filter(|f| firmware == Firmware::Uefi || *f != "UEFI_COMPATIBLE")
        .collect()
}

/// `NAME-SHORT[-STAGE]` as a Compute Engine resource name: lowercase, `[a-z0-9-]`, starting
/// with a letter, not ending with `-`, at most 63 characters (the name part is shortened so
/// the digest and the stage stay).
pub fn image_name(name: &str, short: &str, stage: Option<&str>) -> String {
    let spell = |s: &str| -> String {
        s.chars()
            .map(|c| c.to_ascii_lowercase())
            .map(|c| {
                if c.is_ascii_lowercase() || c.is_ascii_digit() {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    let mut suffix = format!("-{}", spell(short));
    if let Some(stage) = stage {
        suffix.push('-');
        suffix.push_str(&spell(stage));
    }
    suffix.truncate(MAX - 2);
    let mut head = spell(name);
    if !head.starts_with(|c: char| c.is_ascii_lowercase()) {
        head.insert_str(0, "img-");
    }
    head.truncate(MAX - suffix.len());
    let joined = format!("{}{}", head.trim_end_matches('-'), suffix);
    let mut out = String::with_capacity(joined.len());
    for c in joined.chars() {
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// A label key or value spelled as Compute Engine allows.
fn spell_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| c.to_ascii_lowercase())
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    out.truncate(MAX);
    out
}

/// The image's labels from [`Source::labels`], spelled for Compute Engine.
pub fn labels(source: &Source, stage: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in source.labels(stage) {
        let mut key = spell_label(&k);
        if !key.starts_with(|c: char| c.is_ascii_lowercase()) {
            key = spell_label(&format!("c-{key}"));
        }
        let value = if k == keys::CONTENT {
            v.chars().take(MAX).collect()
        } else {
            spell_label(&v)
        };
        out.entry(key).or_insert(value);
    }
    out
}

/// The description: the whole content digest, where the disk came from, and every label's
/// exact value.
pub fn description(source: &Source, stage: Option<&str>, gs_url: &str) -> String {
    let exact: Vec<String> = source
        .labels(stage)
        .into_iter()
        .filter(|(k, _)| k != keys::CONTENT)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    format!(
        "nodeimg {}: {}={} from {gs_url}; {}",
        source.manifest.name,
        keys::CONTENT,
        source.content_sha256(),
        exact.join(" ")
    )
}

/// The `images.insert` request body.
pub fn image_body(
    source: &Source,
    stage: Option<&str>,
    image: &str,
    bucket: &str,
    object: &str,
) -> Value {
    let features: Vec<Value> = guest_os_features(source.manifest.firmware)
        .into_iter()
        .map(|f| json!({ "type": f }))
        .collect();
    json!({
        "name": image,
        "description": description(source, stage, &format!("gs://{bucket}/{object}")),
        "rawDisk": {
            "source": format!("https://storage.googleapis.com/{bucket}/{}", encode(object)),
            "containerType": "TAR",
        },
        "guestOsFeatures": features,
        "architecture": ARCHITECTURE,
        "labels": labels(source, stage),
    })
}

/// Whether an existing image was made from `source`'s content: the digest label and the
/// whole digest in the description.
pub fn same_content(image: &Value, source: &Source) -> bool {
    let digest = source.content_sha256();
    let label = image
        .pointer(&format!("/labels/{}", keys::CONTENT))
        .and_then(Value::as_str);
    let description = image
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default();
    label.is_some_and(|l| digest.starts_with(l) && l.len() == digest.len().min(MAX))
        && description.contains(&format!("{}={digest}", keys::CONTENT))
}

/// A UUID (the form `requestId` takes) derived from the project and the image name, so a
/// retried insert is the same request to Compute Engine.
pub fn request_id(project: &str, image: &str) -> String {
    let d = Sha256::digest(format!("nodeimg images.insert {project} {image}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

/// Compute Engine at one endpoint, for one project.
pub struct Compute<'a> {
    /// The shared agent.
    pub agent: &'a Agent,
    /// `https://compute.googleapis.com/compute/v1/` (ends with `/`).
    pub base: String,
    /// The credentials.
    pub auth: &'a Auth,
    /// The project.
    pub project: String,
    /// The retry policy.
    pub policy: Policy,
    /// Between polls of an operation.
    pub poll: Duration,
    /// Longest wait for an operation.
    pub timeout: Duration,
}

impl Compute<'_> {
    fn url(&self, rest: &str) -> String {
        format!(
            "{}projects/{}/global/{rest}",
            self.base,
            encode(&self.project)
        )
    }

    fn call(
        &self,
        name: &'static str,
        method: &str,
        url: &str,
        body: Option<&Value>,
    ) -> Result<Option<Value>> {
        let token = self.auth.token()?;
        let tried = self.auth.describe();
        let call = Call {
            name,
            tried: &tried,
            token: Some(&token),
        };
        retry::run(name, &self.policy, || {
            let auth = call.auth().unwrap_or_default();
            let sent = match (method, body) {
                ("POST", Some(b)) => self
                    .agent
                    .post(url)
                    .header("Authorization", &auth)
                    .header("Content-Type", "application/json")
                    .send(b.to_string().as_bytes()),
                _ => self.agent.get(url).header("Authorization", &auth).call(),
            };
            let mut resp = sent.map_err(|e| call.transport(&e))?;
            match resp.status().as_u16() {
                200 => call.json(&mut resp).map(Some),
                404 if method == "GET" => Ok(None),
                409 if method == "POST" => Ok(None),
                _ => Err(call.failed(&mut resp)),
            }
        })
    }

    /// `images.get`: the image, or `None`.
    pub fn get(&self, image: &str) -> Result<Option<Value>> {
        self.call(
            GET,
            "GET",
            &self.url(&format!("images/{}", encode(image))),
            None,
        )
    }

    /// `images.insert`, then its operation polled until done. `false` when the image already
    /// exists (409: a concurrent or lost earlier insert); the caller checks it with
    /// [`Self::get`].
    pub fn insert(&self, body: &Value, image: &str) -> Result<bool> {
        let url = format!(
            "{}?requestId={}",
            self.url("images"),
            request_id(&self.project, image)
        );
        let Some(mut op) = self.call(INSERT, "POST", &url, Some(body))? else {
            return Ok(false);
        };
        let deadline = Instant::now() + self.timeout;
        loop {
            let status = op.get("status").and_then(Value::as_str).unwrap_or_default();
            if status == "DONE" {
                return match op.pointer("/error/errors").and_then(Value::as_array) {
                    Some(errors) if !errors.is_empty() => Err(Error::Call {
                        call: INSERT.into(),
                        why: errors
                            .iter()
                            .map(|e| {
                                format!(
                                    "{}: {}",
                                    e.get("code").and_then(Value::as_str).unwrap_or("ERROR"),
                                    e.get("message").and_then(Value::as_str).unwrap_or_default()
                                )
                            })
                            .collect::<Vec<_>>()
                            .join("; "),
                    }),
                    _ => Ok(true),
                };
            }
            let name = op
                .get("name")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Error::Call {
                    call: INSERT.into(),
                    why: format!("the operation has no name (status {status:?})"),
                })?;
            if Instant::now() >= deadline {
                return Err(Error::Call {
                    call: OPERATION.into(),
                    why: format!(
                        "operation {name} still {status} after {} s",
                        self.timeout.as_secs()
                    ),
                });
            }
            std::thread::sleep(self.poll);
            op = self
                .call(
                    OPERATION,
                    "GET",
                    &self.url(&format!("operations/{}", encode(&name))),
                    None,
                )?
                .ok_or_else(|| Error::Call {
                    call: OPERATION.into(),
                    why: format!("operation {name} is gone"),
                })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid_name(n: &str) -> bool {
        let mut chars = n.chars();
        n.len() <= MAX
            && chars.next().is_some_and(|c| c.is_ascii_lowercase())
            && n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !n.ends_with('-')
    }

    #[test]
    fn image_names_follow_rfc1035_and_keep_the_digest_and_stage() {
        assert_eq!(
            image_name("node-fixture", "0123456789ab", None),
            "node-fixture-0123456789ab"
        );
        assert_eq!(
            image_name("K8s_Node.v1.30", "0123456789ab", Some("Prod")),
            "k8s-node-v1-30-0123456789ab-prod"
        );
        assert_eq!(image_name("1node", "abc", None), "img-1node-abc");
        let long = image_name(&"n".repeat(100), "0123456789ab", Some("staging"));
        assert!(long.ends_with("-0123456789ab-staging"), "{long}");
        for n in [
            long,
            image_name("a--b__", "ff", Some("-x-")),
            image_name("", "0123456789ab", None),
            image_name("ü", "0123456789ab", Some(&"s".repeat(80))),
        ] {
            assert!(valid_name(&n), "{n}");
        }
    }

    #[test]
    fn labels_are_spelled_for_compute_engine() {
        assert_eq!(spell_label("v1.20.2"), "v1_20_2");
        assert_eq!(spell_label("1.6.20~ds1-1"), "1_6_20_ds1-1");
        assert_eq!(spell_label("Debian-12"), "debian-12");
        assert_eq!(spell_label(&"x".repeat(70)).len(), MAX);
    }

    #[test]
    fn guest_os_features_follow_the_firmware() {
        assert_eq!(
            guest_os_features(Firmware::Uefi),
            ["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"]
        );
        assert_eq!(
            guest_os_features(Firmware::Bios),
            ["VIRTIO_SCSI_MULTIQUEUE", "GVNIC"]
        );
    }

    #[test]
    fn request_ids_are_stable_uuids() {
        let a = request_id("p", "img");
        assert_eq!(a, request_id("p", "img"));
        assert_ne!(a, request_id("p", "img-prod"));
        let parts: Vec<usize> = a.split('-').map(str::len).collect();
        assert_eq!(parts, [8, 4, 4, 4, 12]);
        assert!(a.as_bytes()[14] == b'5', "{a}");
    }
}
