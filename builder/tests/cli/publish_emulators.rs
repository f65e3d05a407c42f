//! `nodeimg publish` as a user runs it, against the local emulators (Azurite, docker-registry
//! with a login, fake-gcs-server with the Compute stand-in, moto): the fixture build (a 1 GiB
//! GPT disk exported to every format a target reads) published to each target with known secret
//! values in the standard places (environment, auth files), through the process environment
//! the way a CI job sets it; `publish.json` collects one entry per target; a second publish
//! is reused; and no secret appears in stdout, stderr (with `NODEIMG_LOG=debug`), or any file
//! of the output directory.

use std::path::{Path, PathBuf};
use std::process::Command;

use fixtures::emulators::{Azurite, ComputeServer, FakeGcs, Faults, Moto};
use fixtures::registry::{LocalRegistry, Options};

use super::{nodeimg, out_str, run_guarded, run_guarded_for};

/// The secrets planted, searched for in everything afterwards.
struct Secrets(Vec<String>);

impl Secrets {
    fn assert_absent(&self, what: &str, text: &str) {
        for s in &self.0 {
            assert!(
                !text.contains(s.as_str()),
                "{what} shows the secret {s:?}:\n{text}"
            );
        }
    }

    /// Every file in `dir` but the disk artifacts (which `nodeimg verify` shows unchanged).
    fn assert_absent_in_files(&self, dir: &Path) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() && path.metadata().unwrap().len() < 1 << 20 {
                let bytes = std::fs::read(&path).unwrap();
                for s in &self.0 {
                    assert!(
                        !bytes.windows(s.len()).any(|w| w == s.as_bytes()),
                        "{} holds the secret {s:?}",
                        path.display()
                    );
                }
            }
        }
    }
}

fn fixture_output(dir: &Path) -> PathBuf {
    let disk = dir.join("golden.raw");
    fixtures::gpt_disk::patterned_gpt_disk(&disk, 1 << 30, 17).unwrap();
    let out = dir.join("out");
    let o = run_guarded(
        nodeimg()
            .arg("export")
            .arg(&disk)
            .arg("--out")
            .arg(&out)
            // Every format a target reads (raw only adds a dense 1 GiB layer to the OCI push).
            .args(["--name", "node", "--formats", "qcow2,vhd,ova,gce,aws"]),
    );
    assert!(o.status.success(), "{}", out_str(&o).1);
    std::fs::remove_file(&disk).unwrap();
    out
}

fn publish(
    out: &Path,
    target: &str,
    env: &[(&str, String)],
    secrets: &Secrets,
) -> serde_json::Value {
    let mut cmd = nodeimg();
    cmd.arg("publish")
        .arg(out)
        .args(["--to", target, "--json"])
        .env("NODEIMG_LOG", "debug")
        .env("NODEIMG_PUBLISH_RETRY_MS", "50");
    set_env(&mut cmd, env);
    let started = std::time::Instant::now();
    let o = run_guarded_for(&mut cmd, std::time::Duration::from_secs(900));
    let (stdout, stderr) = out_str(&o);
    eprintln!(
        "publish --to {target}: {:.1} s",
        started.elapsed().as_secs_f64()
    );
    secrets.assert_absent("stdout", &stdout);
    secrets.assert_absent("stderr", &stderr);
    assert!(o.status.success(), "publish --to {target}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn set_env(cmd: &mut Command, env: &[(&str, String)]) {
    for (k, v) in env {
        cmd.env(k, v);
    }
}

fn htpasswd(dir: &Path, user: &str, password: &str) -> Option<PathBuf> {
    if !fixtures::tools::have("htpasswd") {
        return None;
    }
    let line =
        fixtures::tools::run_ok(fixtures::tools::tool("htpasswd").args(["-nbB", user, password]));
    let path = dir.join("htpasswd");
    std::fs::write(&path, line.trim()).unwrap();
    Some(path)
}

#[test]
fn publish_to_every_emulator_records_each_target_reuses_and_never_shows_a_secret() {
    if !fixtures::tools::have("docker-registry") {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let Some(azurite) = Azurite::start(d.path()).unwrap() else {
        return;
    };
    azurite.create_container("images").unwrap();
    let sas = azurite.account_sas("racwdl");
    let sig = sas.split("sig=").nth(1).unwrap().to_owned();

    let (user, password) = ("publisher", "SECRET-registry-pw-6f1c2e");
    let Some(htpasswd) = htpasswd(d.path(), user, password) else {
        return;
    };
    let registry = LocalRegistry::start_with(
        &d.path().join("registry"),
        &Options {
            htpasswd: Some(htpasswd),
            ..Options::default()
        },
    )
    .unwrap();
    let basic = base64_of(&format!("{user}:{password}"));
    let auth_file = d.path().join("auth.json");
    std::fs::write(
        &auth_file,
        serde_json::json!({"auths": {registry.host(): {"auth": basic}}}).to_string(),
    )
    .unwrap();
    let Some(gcs) = FakeGcs::start(d.path(), None).unwrap() else {
        return;
    };
    gcs.create_bucket("node-images", "nodeimg-cli").unwrap();
    let compute = ComputeServer::start(Faults::default());
    let key_id = "SECRET-gcp-key-id-93d1";
    let (key, pem) = fixtures::emulators::fake_gcs::service_account_key(
        d.path(),
        Some("nodeimg-cli"),
        key_id,
        "publisher@nodeimg-cli.iam.gserviceaccount.com",
    )
    .unwrap();
    let Some(moto) = Moto::start(d.path(), &[]).unwrap() else {
        return;
    };
    let aws_secret = "SECRET-aws-cli-2c7d91e0";
    let aws_env = [
        ("AWS_ACCESS_KEY_ID", "AKIDNODEIMGCLI0001".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", aws_secret.to_owned()),
        ("AWS_REGION", "eu-west-1".to_owned()),
        ("AWS_ENDPOINT_URL", moto.url()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        (
            "AWS_CONFIG_FILE",
            d.path().join("no-aws-config").display().to_string(),
        ),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            d.path().join("no-aws-credentials").display().to_string(),
        ),
    ];
    let mut planted = vec![
        sig,
        password.to_owned(),
        basic,
        key_id.to_owned(),
        aws_secret.to_owned(),
        // Not a secret to AWS, but nodeimg shows no part of a credential.
        "AKIDNODEIMGCLI0001".to_owned(),
    ];
    planted.extend(
        pem.lines()
            .filter(|l| !l.starts_with("-----") && l.len() > 40)
            .map(str::to_owned),
    );
    let secrets = Secrets(planted);

    let out = fixture_output(d.path());
    let azure_env = [(
        "AZURE_STORAGE_CONNECTION_STRING",
        azurite.connection_string(&sas),
    )];
    let oci_env = [("REGISTRY_AUTH_FILE", auth_file.display().to_string())];
    let gcp_env = [
        ("STORAGE_EMULATOR_HOST", gcs.host()),
        (
            "CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE",
            compute.endpoint(),
        ),
        ("GOOGLE_APPLICATION_CREDENTIALS", key.display().to_string()),
    ];
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let content = manifest["content_sha256"].as_str().unwrap();

    let azure = publish(&out, "azure:images", &azure_env, &secrets);
    assert_eq!(azure["content_sha256"], content);
    assert_eq!(azure["reused"], false);
    let blob_url = azure["created"]["blob_url"].as_str().unwrap();
    assert!(
        blob_url.starts_with(&azurite.endpoint) && !blob_url.contains('?'),
        "{blob_url}"
    );

    let oci_target = format!("oci:{}/nodeimg/node", registry.host());
    let oci = publish(&out, &oci_target, &oci_env, &secrets);
    assert_eq!(oci["reused"], false);
    assert!(
        oci["created"]["artifact_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );

    let gcp = publish(&out, "gcp:node-images", &gcp_env, &secrets);
    assert_eq!(gcp["reused"], false);
    assert_eq!(gcp["created"]["project"], "nodeimg-cli");
    let object = gcp["created"]["object"].as_str().unwrap();
    let tarball = std::fs::read(out.join("node.tar.gz")).unwrap();
    let held = ureq::get(&format!(
        "{}/download/storage/v1/b/node-images/o/{object}?alt=media",
        gcs.url()
    ))
    .call()
    .unwrap()
    .into_body()
    .with_config()
    .limit(u64::MAX)
    .read_to_vec()
    .unwrap();
    assert!(held == tarball, "the object is not the tar.gz");
    assert_eq!(compute.count("POST"), 1, "one images.insert");

    let aws = publish(&out, "aws", &aws_env, &secrets);
    assert_eq!(aws["reused"], false);
    assert_eq!(aws["created"]["region"], "eu-west-1");
    let snapshot = aws["created"]["snapshot_id"].as_str().unwrap().to_owned();
    assert!(
        snapshot.starts_with("snap-")
            && aws["created"]["image_id"]
                .as_str()
                .unwrap()
                .starts_with("ami-")
    );

    // Again: all found, nothing uploaded.
    assert_eq!(
        publish(&out, "azure:images", &azure_env, &secrets)["reused"],
        true
    );
    assert_eq!(
        publish(&out, &oci_target, &oci_env, &secrets)["reused"],
        true
    );
    assert_eq!(
        publish(&out, "gcp:node-images", &gcp_env, &secrets)["reused"],
        true
    );
    assert_eq!(compute.count("POST"), 1, "no second images.insert");
    let again = publish(&out, "aws", &aws_env, &secrets);
    assert_eq!(again["reused"], true);
    assert_eq!(again["created"]["snapshot_id"], snapshot.as_str());

    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("publish.json")).unwrap()).unwrap();
    assert_eq!(record["content_sha256"], content);
    let targets: Vec<&str> = record["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["target"].as_str().unwrap())
        .collect();
    assert_eq!(
        targets,
        [
            "azure:images",
            oci_target.as_str(),
            "gcp:node-images",
            "aws"
        ]
    );
    secrets.assert_absent_in_files(&out);
    // The output still verifies: publishing wrote only publish.json.
    let o = run_guarded(nodeimg().arg("verify").arg(&out));
    assert!(o.status.success(), "{}", out_str(&o).1);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
