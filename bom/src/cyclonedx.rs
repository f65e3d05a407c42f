//! The BOM as a CycloneDX 1.5 JSON SBOM (`sbom.cdx.json`): distro packages as `pkg:deb`,
//! component files under `pkg:generic` components, images as `pkg:oci`, the OS as an
//! operating-system component, the inputs and node configuration as properties. The serial
//! number is derived from the BOM's content and the timestamp from SOURCE_DATE_EPOCH, so the
//! same BOM gives the same bytes.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::model::Bom;

/// The CycloneDX specification version written.
pub const SPEC_VERSION: &str = "1.5";

/// Percent-encodes everything but RFC 3986's unreserved characters (purl components; also
/// `nodeimg publish`'s URL path segments and query values).
pub fn pct(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12`.
pub fn deb_purl(distro_id: &str, distro: &str, name: &str, version: &str, arch: &str) -> String {
    format!(
        "pkg:deb/{}/{}@{}?arch={}&distro={}",
        pct(distro_id),
        pct(name),
        pct(version),
        pct(arch),
        pct(distro)
    )
}

/// `pkg:oci/pause@sha256%3A…?repository_url=k8s.gcr.io%2Fpause&tag=3.2`.
pub fn oci_purl(reference: &str, digest: &str) -> String {
    let (repo, tag) = split_reference(reference);
    let name = repo.rsplit('/').next().unwrap_or(repo).to_ascii_lowercase();
    let mut purl = format!(
        "pkg:oci/{}@{}?repository_url={}",
        pct(&name),
        pct(digest),
        pct(repo)
    );
    if let Some(tag) = tag {
        purl.push_str(&format!("&tag={}", pct(tag)));
    }
    purl
}

/// `pkg:generic/kubeadm@v1.20.2`.
pub fn generic_purl(name: &str, version: &str) -> String {
    format!("pkg:generic/{}@{}", pct(name), pct(version))
}

/// `registry/repo:tag` → (`registry/repo`, `tag`); a `:` in the registry's port is not a tag.
fn split_reference(reference: &str) -> (&str, Option<&str>) {
    let reference = reference.split('@').next().unwrap_or(reference);
    match reference.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, Some(tag)),
        _ => (reference, None),
    }
}

/// Days since 1970-01-01 → (year, month, day) in the proleptic Gregorian calendar.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

/// RFC 3339 UTC time of `epoch` seconds.
pub fn rfc3339(epoch: u64) -> String {
    let secs = i64::try_from(epoch).unwrap_or(i64::MAX / 2);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let t = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        t / 3600,
        t % 3600 / 60,
        t % 60
    )
}

/// `scheme://rest` with no whitespace: what CycloneDX accepts as an external reference URL.
fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
            && !rest.is_empty()
            && !s.chars().any(char::is_whitespace)
    })
}

fn prop(name: &str, value: &str) -> Value {
    json!({"name": name, "value": value})
}

/// Renders `bom` as CycloneDX 1.5 JSON (pretty, ending in a newline).
pub fn render(bom: &Bom, source_date_epoch: u64) -> String {
    let os_id = bom
        .os
        .os_release
        .get("ID")
        .cloned()
        .unwrap_or_else(|| "linux".into());
    let os_version = bom
        .os
        .os_release
        .get("VERSION_ID")
        .cloned()
        .unwrap_or_default();
    let mut components = vec![json!({
        "type": "operating-system",
        "bom-ref": "os",
        "name": os_id,
        "version": os_version,
        "description": bom.os.os_release.get("PRETTY_NAME").cloned().unwrap_or_default(),
        "properties": [
            prop("nodeimg:kernel:release", &bom.os.kernel_release),
            prop("nodeimg:kernel:cmdline", &bom.os.kernel_cmdline),
        ],
    })];
    for p in &bom.packages {
        let purl = deb_purl(
            &os_id,
            &bom.inputs.distro,
            &p.name,
            &p.version,
            &p.architecture,
        );
        components.push(json!({
            "type": "library",
            "bom-ref": purl,
            "name": p.name,
            "version": p.version,
            "purl": purl,
            "properties": [
                prop("nodeimg:deb:source", &p.source),
                prop("nodeimg:deb:source-version", &p.source_version),
                prop("nodeimg:deb:held", if p.held { "true" } else { "false" }),
            ],
        }));
    }
    let mut names: Vec<(&str, &str)> = bom
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.version.as_str()))
        .collect();
    names.dedup();
    for (name, version) in names {
        let files: Vec<Value> = bom
            .components
            .iter()
            .filter(|c| c.name == name && c.version == version)
            .map(|c| {
                json!({
                    "type": "file",
                    "bom-ref": format!("file:{}:{}", c.name, c.path),
                    "name": c.path,
                    "hashes": [{"alg": "SHA-256", "content": c.sha256}],
                })
            })
            .collect();
        let source = bom
            .components
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.source.clone())
            .unwrap_or_default();
        let purl = generic_purl(name, version);
        let mut component = json!({
            "type": "application",
            "bom-ref": purl,
            "name": name,
            "version": version,
            "purl": purl,
            "properties": [prop("nodeimg:source", &source)],
            "components": files,
        });
        // A lock's source is a URL for downloads, a description for locally made inputs
        // ("debian bookworm: …"); only a URL may be an external reference.
        if is_url(&source) {
            component["externalReferences"] = json!([{"type": "distribution", "url": source}]);
        }
        components.push(component);
    }
    for i in &bom.images {
        let purl = oci_purl(&i.reference, &i.digest);
        let (repo, tag) = split_reference(&i.reference);
        let hex = i.digest.strip_prefix("sha256:").unwrap_or(&i.digest);
        components.push(json!({
            "type": "container",
            "bom-ref": format!("image:{}", i.reference),
            "name": repo,
            "version": tag.unwrap_or(&i.digest),
            "purl": purl,
            "hashes": [{"alg": "SHA-256", "content": hex}],
        }));
    }
    let mut properties = vec![
        prop("nodeimg:input:spec-sha256", &bom.inputs.spec_sha256),
        prop("nodeimg:input:lock-sha256", &bom.inputs.lock_sha256),
        prop(
            "nodeimg:input:base-image-sha256",
            &bom.inputs.base_image_sha256,
        ),
        prop("nodeimg:input:distro", &bom.inputs.distro),
    ];
    for (k, v) in &bom.config.sysctls {
        properties.push(prop(&format!("nodeimg:sysctl:{k}"), v));
    }
    for (k, v) in &bom.config.modules {
        properties.push(prop(
            &format!("nodeimg:module:{k}"),
            if *v { "loaded" } else { "not loaded" },
        ));
    }
    for (k, v) in &bom.config.containerd {
        properties.push(prop(&format!("nodeimg:containerd:{k}"), v));
    }
    let bom_json = bom.to_json();
    let digest = Sha256::digest(bom_json.as_bytes());
    let serial =
        uuid::Builder::from_sha1_bytes(<[u8; 16]>::try_from(&digest[..16]).unwrap_or_default())
            .into_uuid();
    let doc = json!({
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": format!("urn:uuid:{serial}"),
        "version": 1,
        "metadata": {
            "timestamp": rfc3339(source_date_epoch),
            "tools": {"components": [{
                "type": "application",
                "name": "nodeimg",
                "version": bom.inputs.nodeimg_version,
            }]},
            "component": {
                "type": "operating-system",
                "bom-ref": "image",
                "name": bom.inputs.image,
                "version": bom.inputs.spec_sha256,
            },
            "properties": properties,
        },
        "components": components,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap_or_default();
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tests::sample;

    #[test]
    fn purls_encode_what_purl_requires() {
        assert_eq!(
            deb_purl("debian", "debian-12", "libc6", "1:2.36-9+deb12u4", "amd64"),
            "pkg:deb/debian/libc6@1%3A2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12"
        );
        assert_eq!(
            oci_purl("k8s.gcr.io/pause:3.2", "sha256:abc"),
            "pkg:oci/pause@sha256%3Aabc?repository_url=k8s.gcr.io%2Fpause&tag=3.2"
        );
        assert_eq!(
            oci_purl("localhost:5000/x/Etcd", "sha256:abc"),
            "pkg:oci/etcd@sha256%3Aabc?repository_url=localhost%3A5000%2Fx%2FEtcd"
        );
        assert_eq!(
            generic_purl("cni_plugins", "1.1.1"),
            "pkg:generic/cni_plugins@1.1.1"
        );
    }

    #[test]
    fn timestamps_follow_the_calendar() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn same_bom_same_bytes_and_content_changes_the_serial() {
        let bom = sample();
        let a = render(&bom, 1_700_000_000);
        assert_eq!(a, render(&bom, 1_700_000_000));
        let mut other = bom.clone();
        other.packages[0].version = "9".into();
        let b = render(&other, 1_700_000_000);
        let serial = |t: &str| {
            serde_json::from_str::<Value>(t).unwrap()["serialNumber"]
                .as_str()
                .unwrap()
                .to_owned()
        };
        assert_ne!(serial(&a), serial(&b));
        let v: Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["specVersion"], "1.5");
        let purls: Vec<&str> = v["components"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c["purl"].as_str())
            .collect();
        assert!(purls.iter().any(|p| p.starts_with("pkg:deb/debian/bash@")));
        assert!(purls.iter().any(|p| p.starts_with("pkg:oci/pause@sha256")));
        assert!(purls.contains(&"pkg:generic/kubeadm@v1.20.2"));
    }

    /// The CycloneDX organisation's validator (cyclonedx-python-lib and its bundled 1.5 schema)
    /// accepts the rendered SBOM, and rejects one with a malformed hash: it can fail.
    #[test]
    fn the_cyclonedx_validator_accepts_the_sbom() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("sbom.cdx.json");
        let mut bom = sample();
        let mut local = bom.components[0].clone();
        local.name = "containerd".into();
        local.source = "debian bookworm: containerd 1.6.20~ds1-1+b1".into();
        bom.components.push(local);
        std::fs::write(&good, render(&bom, 1_700_000_000)).unwrap();
        let verdict = fixtures::cyclonedx::validate(&good).expect("the validator runs");
        assert_eq!(verdict, None, "schema errors in {}", good.display());
        let bad = dir.path().join("bad.cdx.json");
        let mut v: Value = serde_json::from_str(&render(&sample(), 0)).unwrap();
        v["components"][1]["purl"] = json!(17);
        std::fs::write(&bad, v.to_string()).unwrap();
        let verdict = fixtures::cyclonedx::validate(&bad).expect("the validator runs");
        assert!(
            verdict.is_some_and(|e| e.contains("17")),
            "a number as purl is invalid"
        );
    }
}
