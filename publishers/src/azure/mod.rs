//! `--to azure:CONTAINER`: the fixed VHD as a page blob `NAME-CONTENT12[-STAGE].vhd` in the
//! container, through the Blob service REST API with a SAS from the environment
//! ([`credentials`]), ready for a managed disk or a gallery image version (the `az` commands
//! are returned as next steps).
//!
//! 1. Get Blob Properties: a blob of the name that is complete (`nodeimg_complete=true`), of
//!    the VHD's size and with the same content digest, stage and VHD digest in its metadata
//!    is reused and nothing is sent. One left incomplete by an interrupted publish is deleted
//!    and made again from the start (no resume).
//! 2. Put Blob makes the page blob of the VHD's exact size with the build's metadata and
//!    `nodeimg_complete=false`.
//! 3. Put Page writes the pages that hold data only (holes found by SEEK_DATA/SEEK_HOLE, zero
//!    pages skipped, the footer always), 512-aligned runs of at most 4 MiB, 4 at a time.
//! 4. Read back: Get Page Ranges must list exactly what was written, and the SHA-256 of the
//!    whole blob (ranged Get Blob of the listed ranges, zeros elsewhere) must equal the
//!    manifest's digest of the VHD file; else [`Error::ReadBack`].
//! 5. Set Blob Metadata marks it `nodeimg_complete=true`.
//!
//! Metadata names are C# identifiers, so the label keys are spelled `nodeimg_content_sha256`,
//! `nodeimg_stage`, `nodeimg_kubeadm`, …

pub mod credentials;
pub mod pages;
pub mod rest;

use std::collections::BTreeMap;
use std::fs::File;

use exporters::{Firmware, Format};

use crate::error::{Error, Result};
use crate::record::Published;
use crate::retry::{self, Policy};
use crate::source::keys;
use crate::{Job, Target};

pub use credentials::Access;
use rest::BlobClient;

/// Metadata: set to `true` only after the read-back matched.
pub const META_COMPLETE: &str = "nodeimg_complete";
/// Metadata: the content digest.
pub const META_CONTENT: &str = "nodeimg_content_sha256";
/// Metadata: the stage.
pub const META_STAGE: &str = "nodeimg_stage";
/// Metadata: the VHD file's SHA-256 (what the blob's bytes hash to).
pub const META_VHD: &str = "nodeimg_vhd_sha256";

/// Publishes the job's VHD to `container`, with the SAS and endpoint from the process
/// environment.
pub fn publish(job: &Job<'_>, container: &str) -> Result<Published> {
    publish_with_env(job, container, |name| std::env::var(name).ok())
}

/// [`publish`] with the environment read through `env` (the process's, or a test's map): the
/// credential variables ([`credentials`]) and [`retry::FIRST_DELAY_ENV`].
pub fn publish_with_env(
    job: &Job<'_>,
    container: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Published> {
    let target = Target::Azure {
        container: container.to_owned(),
    };
    check_container(container, &target)?;
    let source = job.source;
    let (path, artifact) = source.disk("azure", Format::Vhd)?;
    let access = Access::from_lookup(&env)?;
    let mut policy = Policy::default();
    if let Some(ms) = env(retry::FIRST_DELAY_ENV).and_then(|v| v.parse::<u64>().ok()) {
        policy.first_delay = std::time::Duration::from_millis(ms);
    }
    let stem = blob_stem(&source.manifest.name, source.content_short(), job.stage);
    let blob = format!("{stem}.vhd");
    let client = BlobClient::new(&access, container, &rest::encode(&blob), policy);
    let file = File::open(&path).map_err(|e| Error::Input {
        path: path.clone(),
        why: format!("opening: {e}"),
    })?;
    let size = file
        .metadata()
        .map_err(|e| Error::Input {
            path: path.clone(),
            why: e.to_string(),
        })?
        .len();
    if size != artifact.size || size == 0 || size % pages::PAGE != 0 {
        return Err(Error::Input {
            path,
            why: format!(
                "{size} bytes: a fixed VHD for a page blob is a non-zero multiple of 512 bytes, \
                 and the manifest says {}",
                artifact.size
            ),
        });
    }
    let mut meta = metadata(job, &artifact.sha256);
    let mut published = Published {
        target: target.to_string(),
        stage: job.stage.map(str::to_owned),
        content_sha256: source.content_sha256().to_owned(),
        created: BTreeMap::from([
            ("blob_url".to_owned(), client.url.clone()),
            ("container".to_owned(), container.to_owned()),
            ("blob".to_owned(), blob.clone()),
            ("size".to_owned(), size.to_string()),
        ]),
        reused: false,
        next_steps: next_steps(
            &client.url,
            &access.endpoint,
            &stem,
            source.manifest.firmware,
        ),
    };

    if let Some(found) = client.properties()? {
        let m = &found.metadata;
        let same = |k: &str| m.get(k) == meta.get(k);
        let complete = m.get(META_COMPLETE).map(String::as_str) == Some("true");
        if complete && same(META_CONTENT) && same(META_VHD) && same(META_STAGE) {
            if found.size == size && found.blob_type == "PageBlob" {
                tracing::info!(
                    "azure: {} holds this build already (content {}); nothing uploaded",
                    client.url,
                    source.content_short()
                );
                published.reused = true;
                return Ok(published);
            }
        } else if complete {
            return Err(Error::Call {
                call: "Put Blob".into(),
                why: format!(
                    "{} exists, finished, with other content ({META_CONTENT}={}); nodeimg does \
                     not overwrite it: delete it or publish with another --stage",
                    client.url,
                    m.get(META_CONTENT).map_or("none", String::as_str)
                ),
            });
        }
        tracing::warn!(
            "azure: {} exists but is not a finished upload of this build (an interrupted \
             publish); deleting it and starting over",
            client.url
        );
        client.delete()?;
    }

    meta.insert(META_COMPLETE.into(), "false".into());
    tracing::info!("azure: Put Blob {} (page blob, {size} bytes)", client.url);
    client.create_page_blob(size, &meta)?;
    let written = pages::upload(&client, &file, &path, size)?;
    tracing::info!(
        "azure: Put Page wrote {} bytes in {} ranges of {size}; reading back",
        pages::bytes(&written),
        written.len()
    );
    pages::read_back(&client, size, &written, &artifact.sha256)?;
    meta.insert(META_COMPLETE.into(), "true".into());
    client.set_metadata(&meta)?;
    tracing::info!("azure: {} is ready", client.url);
    Ok(published)
}

/// `NAME-CONTENT12[-STAGE]`, with characters a blob or disk name should not have made `-`.
pub fn blob_stem(name: &str, content_short: &str, stage: Option<&str>) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .collect()
    };
    match stage {
        Some(stage) => format!("{}-{content_short}-{}", clean(name), clean(stage)),
        None => format!("{}-{content_short}", clean(name)),
    }
}

/// A container name as the service accepts it: 3-63 of a-z, 0-9 and single `-`, starting
/// and ending with a letter or digit.
fn check_container(container: &str, target: &Target) -> Result<()> {
    let ok = (3..=63).contains(&container.len())
        && container
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !container.starts_with('-')
        && !container.ends_with('-')
        && !container.contains("--");
    if ok {
        Ok(())
    } else {
        Err(Error::BadTarget {
            given: target.to_string(),
            why: "a container name is 3-63 lowercase letters, digits and single hyphens, \
                  starting and ending with a letter or digit"
                .into(),
        })
    }
}

/// The blob's metadata: each label as `nodeimg_KEY` (a C# identifier), the VHD's digest.
fn metadata(job: &Job<'_>, vhd_sha256: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    for (k, v) in job.source.labels(job.stage) {
        let key = match k.as_str() {
            keys::NODEIMG => "nodeimg_version".to_owned(),
            other => format!("nodeimg_{}", identifier(other)),
        };
        m.entry(key).or_insert_with(|| header_value(&v));
    }
    m.insert(META_VHD.into(), vhd_sha256.to_owned());
    m
}

/// `s` lowercased with every character that is not a letter, digit or `_` made `_`.
fn identifier(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// `s` as a header value: visible ASCII kept, anything else percent-encoded.
fn header_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c == ' ' || (c.is_ascii_graphic() && c != '%') {
            out.push(c);
        } else {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        }
    }
    out.trim().to_owned()
}

/// The storage account's name: the host's first label on Azure, the first path segment on
/// an emulator (`http://127.0.0.1:10000/devstoreaccount1`).
fn account_name(endpoint: &str) -> String {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.contains(".blob.") {
        host.split('.').next().unwrap_or(host).to_owned()
    } else if !path.is_empty() {
        path.split('/').next().unwrap_or(path).to_owned()
    } else {
        "STORAGE_ACCOUNT".to_owned()
    }
}

/// The `az` commands that make a managed disk and an image, or a gallery image version,
/// from the blob (no SAS: Azure reads the blob with the caller's own rights).
fn next_steps(blob_url: &str, endpoint: &str, stem: &str, firmware: Firmware) -> Vec<String> {
    let generation = if firmware == Firmware::Uefi {
        "V2"
    } else {
        "V1"
    };
    let disk = stem.replace('.', "-");
    let account = account_name(endpoint);
    vec![
        format!(
            "az disk create -g RESOURCE_GROUP -n {disk} --os-type Linux --hyper-v-generation {generation} --source {blob_url} --source-storage-account-id $(az storage account show -n {account} --query id -o tsv)"
        ),
        format!(
            "az image create -g RESOURCE_GROUP -n {disk} --os-type Linux --hyper-v-generation {generation} --source {disk}"
        ),
        format!(
            "az sig image-version create -g RESOURCE_GROUP --gallery-name GALLERY --gallery-image-definition IMAGE_DEFINITION --gallery-image-version 1.0.0 --os-vhd-uri {blob_url} --os-vhd-storage-account $(az storage account show -n {account} --query id -o tsv)"
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_identifiers() {
        assert_eq!(
            blob_stem("node fixture", "0123456789ab", Some("dev")),
            "node-fixture-0123456789ab-dev"
        );
        assert_eq!(identifier("content-sha256"), "content_sha256");
        assert_eq!(header_value("1.6.20~ds1-1 é"), "1.6.20~ds1-1 %C3%A9");
        assert_eq!(
            account_name("http://127.0.0.1:10000/devstoreaccount1"),
            "devstoreaccount1"
        );
        assert_eq!(account_name("https://ci.blob.core.windows.net"), "ci");
    }

    #[test]
    fn bad_container_names_are_refused_before_anything() {
        for c in ["ab", "Images", "a--b", "-ab", "a_b"] {
            let t = Target::Azure {
                container: c.into(),
            };
            assert!(check_container(c, &t).is_err(), "{c}");
        }
        let t = Target::Azure {
            container: "images-1".into(),
        };
        assert!(check_container("images-1", &t).is_ok());
    }

    #[test]
    fn next_steps_name_the_generation_and_carry_no_query() {
        let s = next_steps(
            "https://ci.blob.core.windows.net/c/n-0123.vhd",
            "https://ci.blob.core.windows.net",
            "n-0123",
            Firmware::Uefi,
        );
        assert!(s[0].contains("--hyper-v-generation V2"), "{s:?}");
        assert!(s[2].contains("--os-vhd-uri https://ci.blob.core.windows.net/c/n-0123.vhd"));
        assert!(s.iter().all(|l| !l.contains('?')));
    }
}
