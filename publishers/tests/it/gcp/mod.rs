//! `--to gcp:BUCKET` against fake-gcs-server (Cloud Storage: the resumable upload, the
//! object's metadata and the read-back) and a local Compute Engine endpoint whose recorded
//! `images.insert` request is checked against Google's compute v1 discovery document (no
//! emulator of Compute Engine exists). Credentials: a throwaway service-account key made with
//! openssl, whose secret values are searched for in every output.

mod discovery;
mod interrupted;

use std::path::{Path, PathBuf};
use std::time::Duration;

use fixtures::emulators::{Emulator, free_port};
use publishers::gcp::{CredentialsSource, Settings, compute, object_name};
use publishers::retry::Policy;
use publishers::{Error, Job, Published, Source};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use fixtures::emulators::{ComputeServer, FakeGcs, Faults};

const BUCKET: &str = "nodeimg-publish-test";
const PROJECT: &str = "nodeimg-test-project";
const CLIENT_EMAIL: &str = "publisher@nodeimg-test-project.iam.gserviceaccount.com";
const KEY_ID: &str = "SECRET-GCP-KEYID-5f3c9a17e2";

/// fake-gcs-server with `BUCKET` made, or `None` (skipped).
fn start_fake_gcs(dir: &Path) -> Option<FakeGcs> {
    let gcs = FakeGcs::start(dir, None).unwrap()?;
    gcs.create_bucket(BUCKET, PROJECT).unwrap();
    Some(gcs)
}

/// A service-account key file with a fresh RSA key; returns its path and the key's PEM.
fn service_account_key(dir: &Path, project: Option<&str>) -> (PathBuf, String) {
    fixtures::emulators::fake_gcs::service_account_key(dir, project, KEY_ID, CLIENT_EMAIL).unwrap()
}

/// Lines of the PEM's body (each long enough to be unmistakable).
fn pem_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() > 40)
        .map(str::to_owned)
        .collect()
}

fn settings(gcs: Option<&str>, compute: &str, key: &Path) -> Settings {
    Settings {
        storage_emulator: gcs.map(str::to_owned),
        compute_endpoint: compute.to_owned(),
        credentials: CredentialsSource::Env(key.to_owned()),
        project: None,
        policy: Policy {
            attempts: 3,
            first_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(40),
        },
        chunk: 256 << 10,
        poll: Duration::from_millis(20),
        operation_timeout: Duration::from_secs(30),
    }
}

use crate::common::captured;

fn object_resource(gcs: &Emulator, object: &str) -> Value {
    let text = ureq::get(&format!("{}/storage/v1/b/{BUCKET}/o/{object}", gcs.url()))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

fn publish(
    source: &Source,
    stage: Option<&str>,
    s: &Settings,
) -> (publishers::Result<Published>, String) {
    captured(|| publishers::gcp::publish_with(&Job { source, stage }, BUCKET, s))
}

fn assert_no_secrets(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what} holds a secret: {text}");
    }
}

#[test]
fn publishes_the_gce_tarball_to_fake_gcs_and_an_image_request_the_discovery_document_accepts() {
    let d = tempfile::tempdir().unwrap();
    let Some(gcs) = start_fake_gcs(d.path()) else {
        return;
    };
    let Some(doc) = discovery::document() else {
        return;
    };
    let out = common_fixture(d.path());
    let source = Source::open(&out).unwrap();
    let (key, pem) = service_account_key(d.path(), Some(PROJECT));
    let mut secrets = pem_lines(&pem);
    secrets.push(KEY_ID.to_owned());
    // Two 503s first: retried, each retry printed.
    let compute = ComputeServer::start(Faults {
        unavailable_first: 2,
        ..Faults::default()
    });
    let host = gcs.url().trim_start_matches("http://").to_owned();
    let s = settings(Some(&host), &compute.endpoint(), &key);

    let (got, log) = publish(&source, None, &s);
    let record = got.unwrap();
    assert_no_secrets("the log", &log, &secrets);
    assert_no_secrets(
        "the record",
        &serde_json::to_string(&record).unwrap(),
        &secrets,
    );
    assert_eq!(
        log.matches("compute.images.get: HTTP 503").count(),
        2,
        "{log}"
    );
    assert!(log.contains("retry 1 of 2"), "{log}");

    // The object, fetched independently (the emulator's download path, plain HTTP), is the
    // tarball byte for byte, with the metadata.
    let (tar_path, artifact) = source.disk("gcp", exporters::Format::Gce).unwrap();
    let object = object_name(&source.manifest.name, source.content_short());
    assert!(artifact.size > 256 << 10, "more than one chunk is sent");
    let mut held = Vec::new();
    std::io::copy(
        &mut ureq::get(&format!(
            "{}/download/storage/v1/b/{BUCKET}/o/{object}",
            gcs.url()
        ))
        .call()
        .unwrap()
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .reader(),
        &mut held,
    )
    .unwrap();
    let tarball = std::fs::read(&tar_path).unwrap();
    assert!(
        held == tarball,
        "the object differs from {}",
        tar_path.display()
    );
    assert_eq!(hex::encode(Sha256::digest(&held)), artifact.sha256);
    let res = object_resource(&gcs, &object);
    assert_eq!(res["size"], artifact.size.to_string());
    assert_eq!(
        res["metadata"]["nodeimg-content-sha256"],
        source.content_sha256()
    );
    assert_eq!(
        res["metadata"]["nodeimg-artifact-sha256"],
        artifact.sha256.as_str()
    );
    assert_eq!(
        res["metadata"]["nodeimg-name"],
        source.manifest.name.as_str()
    );
    let generation = res["generation"].clone();

    // The record.
    let image = compute::image_name(&source.manifest.name, source.content_short(), None);
    assert!(!record.reused);
    assert_eq!(record.target, format!("gcp:{BUCKET}"));
    assert_eq!(record.created["bucket"], BUCKET);
    assert_eq!(record.created["object"], object);
    assert_eq!(
        record.created["object_url"],
        format!("gs://{BUCKET}/{object}")
    );
    assert_eq!(record.created["project"], PROJECT);
    assert_eq!(record.created["image"], image);
    assert_eq!(
        record.created["image_url"],
        format!(
            "{}projects/{PROJECT}/global/images/{image}",
            compute.endpoint()
        )
    );

    // The images.insert request, as Compute Engine would get it.
    let inserts: Vec<_> = compute
        .requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .collect();
    assert_eq!(inserts.len(), 1);
    let insert = &inserts[0];
    let errors = discovery::check(&doc, "images", "insert", insert);
    assert!(errors.is_empty(), "{errors:#?}");
    let body = insert.json();
    assert_eq!(body["name"], image.as_str());
    assert_eq!(
        body["rawDisk"]["source"],
        format!("https://storage.googleapis.com/{BUCKET}/{object}")
    );
    assert_eq!(body["architecture"], "X86_64");
    let features: Vec<&str> = body["guestOsFeatures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(source.manifest.firmware, exporters::Firmware::Uefi);
    assert_eq!(
        features,
        ["UEFI_COMPATIBLE", "VIRTIO_SCSI_MULTIQUEUE", "GVNIC"]
    );
    // The same list as the export's import-gce.txt tells gcloud.
    let instructions = std::fs::read_to_string(out.join("import-gce.txt")).unwrap();
    assert!(
        instructions.contains(&format!("--guest-os-features={}", features.join(","))),
        "{instructions}"
    );
    let labels = body["labels"].as_object().unwrap();
    let key_re = regex::Regex::new("^[a-z][a-z0-9_-]{0,62}$").unwrap();
    let value_re = regex::Regex::new("^[a-z0-9_-]{0,63}$").unwrap();
    for (k, v) in labels {
        assert!(key_re.is_match(k), "label key {k}");
        assert!(value_re.is_match(v.as_str().unwrap()), "label {k}={v}");
    }
    assert_eq!(labels["content-sha256"], &source.content_sha256()[..63]);
    assert_eq!(labels["kubeadm"], "v1_20_2");
    assert_eq!(labels["containerd"], "1_6_20_ds1-1");
    assert_eq!(labels["os"], "debian-12");
    let description = body["description"].as_str().unwrap();
    assert!(description.contains(&format!("content-sha256={}", source.content_sha256())));
    assert!(
        description.contains("containerd=1.6.20~ds1-1"),
        "{description}"
    );
    let (path, query) = insert.target.split_once('?').unwrap();
    assert_eq!(
        path,
        format!("/compute/v1/projects/{PROJECT}/global/images")
    );
    let uuid = regex::Regex::new(
        "^requestId=[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$",
    )
    .unwrap();
    assert!(uuid.is_match(query), "{query}");
    // Every Compute call carried the service account's self-signed JWT, never the key.
    for r in compute.requests() {
        let auth = &r.headers["authorization"];
        let jwt = auth.strip_prefix("Bearer ").unwrap();
        let claims = jwt_claims(jwt);
        assert_eq!(claims["iss"], CLIENT_EMAIL);
        assert_no_secrets("a request", &format!("{:?}", r.headers), &pem_lines(&pem));
        // The access token itself is a credential too.
        let token = [jwt.to_owned()];
        assert_no_secrets("the log", &log, &token);
        assert_no_secrets(
            "the record",
            &serde_json::to_string(&record).unwrap(),
            &token,
        );
    }
    let calls: Vec<String> = compute
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.target.split('?').next().unwrap()))
        .collect();
    let base = format!("/compute/v1/projects/{PROJECT}/global");
    assert_eq!(
        calls,
        [
            format!("GET {base}/images/{image}"),
            format!("GET {base}/images/{image}"),
            format!("GET {base}/images/{image}"),
            format!("POST {base}/images"),
            format!("GET {base}/operations/operation-1"),
            format!("GET {base}/images/{image}"),
        ]
    );

    // Again: the image is found by name and digest; nothing uploaded, nothing inserted.
    let (again, log) = publish(&source, None, &s);
    let again = again.unwrap();
    assert!(again.reused, "{again:?}");
    assert_eq!(again.created, record.created);
    assert_eq!(compute.count("POST"), 1);
    assert_eq!(object_resource(&gcs, &object)["generation"], generation);
    assert!(log.contains("already holds this content"), "{log}");

    // Another stage: a new image from the same object, which is read back but not uploaded.
    let (staged, log) = publish(&source, Some("Prod"), &s);
    let staged = staged.unwrap();
    assert!(!staged.reused);
    assert_eq!(staged.created["image"], format!("{image}-prod"));
    assert_eq!(staged.created["object"], object);
    assert_eq!(compute.count("POST"), 2);
    assert_eq!(object_resource(&gcs, &object)["generation"], generation);
    assert!(log.contains("not uploading it again"), "{log}");
    let last = compute
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST")
        .unwrap();
    assert!(discovery::check(&doc, "images", "insert", &last).is_empty());
    assert_eq!(last.json()["labels"]["stage"], "prod");
}

/// The fixture output; its tarball is big enough for several 256 KiB chunks.
fn common_fixture(dir: &Path) -> PathBuf {
    crate::common::fixture_output(dir)
}

fn jwt_claims(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64url(part)).unwrap()
}

fn base64url(s: &str) -> Vec<u8> {
    let mut bits = 0u32;
    let mut n = 0;
    let mut out = Vec::new();
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => continue,
        };
        bits = (bits << 6) | u32::from(v);
        n += 6;
        if n >= 8 {
            n -= 8;
            out.push(u8::try_from((bits >> n) & 0xff).unwrap());
        }
    }
    out
}

/// The validator finds what Compute Engine would refuse: a misspelled field, a value not in
/// an enum, a wrong type, a missing required field, a wrong path or method.
#[test]
fn the_discovery_check_catches_what_compute_engine_would_refuse() {
    let Some(doc) = discovery::document() else {
        return;
    };
    let good = json!({
        "name": "node-fixture-0123456789ab",
        "rawDisk": {"source": "https://storage.googleapis.com/b/o.tar.gz", "containerType": "TAR"},
        "guestOsFeatures": [{"type": "UEFI_COMPATIBLE"}, {"type": "GVNIC"}],
        "architecture": "X86_64",
        "labels": {"content-sha256": "ab"},
    });
    let req = |method: &str, target: &str, body: &Value| fixtures::emulators::compute::Recorded {
        method: method.into(),
        target: target.into(),
        headers: Default::default(),
        body: serde_json::to_vec(body).unwrap(),
    };
    let path = "/compute/v1/projects/p-1/global/images";
    assert!(discovery::check(&doc, "images", "insert", &req("POST", path, &good)).is_empty());
    let bad = |edit: &dyn Fn(&mut Value), want: &str| {
        let mut b = good.clone();
        edit(&mut b);
        let errors = discovery::check(&doc, "images", "insert", &req("POST", path, &b));
        assert!(
            errors.iter().any(|e| e.contains(want)),
            "{want}: {errors:?}"
        );
    };
    bad(
        &|b| b["rawDisk"]["sourceUrl"] = json!("x"),
        "rawDisk.sourceUrl: no such field",
    );
    bad(
        &|b| b["guestOsFeature"] = json!([]),
        "guestOsFeature: no such field",
    );
    bad(
        &|b| b["guestOsFeatures"][1]["type"] = json!("GVNIC_V2"),
        "not one of the enum",
    );
    bad(
        &|b| b["architecture"] = json!("x86_64"),
        "not one of the enum",
    );
    bad(
        &|b| b["labels"]["n"] = json!(1),
        "labels.n: 1 is not of type string",
    );
    bad(
        &|b| b["guestOsFeatures"] = json!({"type": "GVNIC"}),
        "is not of type array",
    );
    bad(&|b| b["name"] = json!("Node_1"), "does not match");
    bad(
        &|b| {
            b.as_object_mut().unwrap().remove("name");
        },
        "Image.name is required",
    );
    let errors = discovery::check(&doc, "images", "insert", &req("PUT", path, &good));
    assert!(
        errors.iter().any(|e| e.contains("method PUT")),
        "{errors:?}"
    );
    let errors = discovery::check(
        &doc,
        "images",
        "insert",
        &req("POST", "/compute/v1/projects/p/images", &good),
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("does not match the template")),
        "{errors:?}"
    );
    let errors = discovery::check(
        &doc,
        "images",
        "insert",
        &req("POST", &format!("{path}?requestID=1"), &good),
    );
    assert!(
        errors.iter().any(|e| e.contains("requestID is not one")),
        "{errors:?}"
    );
}

#[test]
fn bad_credentials_unreachable_storage_and_a_forbidden_insert_are_named() {
    let d = tempfile::tempdir().unwrap();
    let Some(gcs) = start_fake_gcs(d.path()) else {
        return;
    };
    let out = common_fixture(d.path());
    let source = Source::open(&out).unwrap();
    let compute = ComputeServer::start(Faults::default());
    let host = gcs.url().trim_start_matches("http://").to_owned();

    // A missing file: the variable and the path are named.
    let missing = d.path().join("no-such-key.json");
    let (got, _) = publish(
        &source,
        None,
        &settings(Some(&host), &compute.endpoint(), &missing),
    );
    let e = got.unwrap_err();
    eprintln!("a missing key file: {e}");
    assert!(matches!(e, Error::Credentials { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains(&format!(
            "GOOGLE_APPLICATION_CREDENTIALS={}",
            missing.display()
        )),
        "{text}"
    );

    // A key whose private key is not one: named, the values nowhere.
    let broken = d.path().join("broken.json");
    let fake_pem = "-----BEGIN PRIVATE KEY-----\nSECRET-GCP-PRIVATE-KEY-not-a-key-0123456789abcdef0123456789\n-----END PRIVATE KEY-----\n";
    std::fs::write(
        &broken,
        serde_json::to_vec(&json!({
            "type": "service_account", "project_id": PROJECT, "private_key_id": KEY_ID,
            "private_key": fake_pem, "client_email": CLIENT_EMAIL,
            "token_uri": "https://oauth2.googleapis.com/token",
        }))
        .unwrap(),
    )
    .unwrap();
    let (got, log) = publish(
        &source,
        None,
        &settings(Some(&host), &compute.endpoint(), &broken),
    );
    let e = got.unwrap_err();
    eprintln!("a broken key: {e}");
    let text = format!("{e} {e:?} {log}");
    assert!(matches!(e, Error::Credentials { .. }), "{e:?}");
    assert!(text.contains(&broken.display().to_string()), "{text}");
    for secret in ["SECRET-GCP-PRIVATE-KEY", KEY_ID] {
        assert!(!text.contains(secret), "{text}");
    }
    assert_eq!(
        compute.requests().len(),
        0,
        "nothing sent without credentials"
    );

    // No project anywhere: what was tried is named.
    let (key, pem) = service_account_key(d.path(), None);
    let (got, _) = publish(
        &source,
        None,
        &settings(Some(&host), &compute.endpoint(), &key),
    );
    let text = got.unwrap_err().to_string();
    eprintln!("no project: {text}");
    assert!(
        text.contains("GOOGLE_CLOUD_PROJECT") && text.contains("project_id"),
        "{text}"
    );

    // Cloud Storage unreachable: bounded retries, each printed, then the call named.
    let closed = free_port().unwrap();
    let mut s = settings(
        Some(&format!("127.0.0.1:{closed}")),
        &compute.endpoint(),
        &key,
    );
    s.project = Some(PROJECT.into());
    let (got, log) = publish(&source, None, &s);
    let e = got.unwrap_err();
    eprintln!("storage unreachable: {e}\n{log}");
    assert!(
        matches!(&e, Error::Retries { call, attempts: 3, .. } if call == "storage.objects.get"),
        "{e:?}"
    );
    assert!(
        log.contains("storage.objects.get") && log.contains("retry 2 of 2"),
        "{log}"
    );
    assert_eq!(log.matches("retry ").count(), 2, "{log}");
    assert_no_secrets("the log", &format!("{e} {log}"), &pem_lines(&pem));

    // A forbidden images.insert: the call named; the object is there (read back), no image.
    let forbidding = ComputeServer::start(Faults {
        forbid_insert: true,
        ..Faults::default()
    });
    let mut s = settings(Some(&host), &forbidding.endpoint(), &key);
    s.project = Some(PROJECT.into());
    let (got, log) = publish(&source, None, &s);
    let e = got.unwrap_err();
    eprintln!("a forbidden insert: {e}");
    assert!(
        matches!(&e, Error::Call { call, why } if call == "compute.images.insert" && why.contains("403")),
        "{e:?}"
    );
    assert_no_secrets("the error", &format!("{e} {e:?} {log}"), &pem_lines(&pem));
    let object = object_name(&source.manifest.name, source.content_short());
    assert_eq!(
        object_resource(&gcs, &object)["metadata"]["nodeimg-content-sha256"],
        source.content_sha256()
    );

    // An insert whose operation ends in an error (a quota): the call and the error named.
    let failing = ComputeServer::start(Faults {
        operation_error: true,
        ..Faults::default()
    });
    let mut s = settings(Some(&host), &failing.endpoint(), &key);
    s.project = Some(PROJECT.into());
    let (got, _) = publish(&source, None, &s);
    let e = got.unwrap_err();
    eprintln!("a failed operation: {e}");
    assert!(
        matches!(&e, Error::Call { call, why } if call == "compute.images.insert" && why.contains("QUOTA_EXCEEDED")),
        "{e:?}"
    );
}
