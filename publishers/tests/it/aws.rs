//! `--to aws` against moto in server mode (one moto per test, its request recorder on).
//!
//! Each publish runs in a child process (this test binary, running only [`child_publish`])
//! with an environment built from scratch — no `AWS_*` variable of ours, `HOME` a temporary
//! directory — so the SDK's default chain sees exactly the credentials, profile files or web
//! identity a test gives, as `nodeimg publish` would. The child captures every tracing event
//! (TRACE and up) into a file; the tests search it, the record, the error and the child's
//! stdout and stderr for the secrets they set.
//!
//! What moto holds is read through a different client, boto3 from moto's own venv: the
//! snapshot's blocks (ListSnapshotBlocks / GetSnapshotBlock), images and snapshots with their
//! tags, and, from moto's request recording, the exact parameters of the RegisterImage,
//! PutSnapshotBlock and CompleteSnapshot requests (moto keeps only an AMI's name and
//! description, so its boot mode, ENA, IMDS, root device and gp3 volume are checked on the
//! request as sent).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use fixtures::emulators::{Moto, free_port};
use fixtures::tools::tool;
use serde_json::Value;

mod proxy;
use sha2::{Digest, Sha256};

const SECRET_KEY: &str = "SECRET-AWS-xyz-9f3e1c";
const ACCESS_KEY: &str = "AKIDNODEIMGTEST0001";
const PROFILE_SECRET: &str = "SECRET-AWS-profile-7b2a44";
const OIDC_TOKEN: &str = "SECRET-OIDC-token-5d81e0";
const BLOCK: usize = 512 * 1024;

/// Environment variable that makes [`child_publish`] run (the output dir).
const CHILD_DIR: &str = "NODEIMG_AWS_TEST_DIR";
const CHILD_STAGE: &str = "NODEIMG_AWS_TEST_STAGE";
const CHILD_RESULT: &str = "NODEIMG_AWS_TEST_RESULT";
const CHILD_LOG: &str = "NODEIMG_AWS_TEST_LOG";

fn moto(dir: &Path) -> Option<Moto> {
    moto_with(dir, &[])
}

fn moto_with(dir: &Path, env: &[(&str, &str)]) -> Option<Moto> {
    Moto::start(dir, env).unwrap()
}

/// What a child publish produced.
#[derive(Debug)]
struct Run {
    record: Option<Value>,
    error: Option<String>,
    /// The result file, the tracing log, the child's stdout and stderr.
    everything: String,
    log: String,
}

impl Run {
    fn ok(&self) -> &Value {
        self.record
            .as_ref()
            .unwrap_or_else(|| panic!("publish failed: {:?}\nlog:\n{}", self.error, self.log))
    }
    fn err(&self) -> &str {
        self.error
            .as_deref()
            .unwrap_or_else(|| panic!("publish succeeded: {:?}", self.record))
    }
    fn assert_no_secret(&self, secrets: &[&str]) {
        for s in secrets {
            assert!(
                !self.everything.contains(s),
                "{s} leaked:\n{}",
                self.everything
            );
        }
    }
}

/// Runs `publish(out, --to aws, stage)` in a child with `env` only (plus HOME, PATH and the
/// retry delay).
fn publish(out: &Path, stage: Option<&str>, env: &[(&str, String)]) -> Run {
    let work = tempfile::tempdir_in(out.parent().unwrap()).unwrap();
    let result = work.path().join("result.json");
    let log = work.path().join("trace.log");
    let mut cmd = tool(std::env::current_exe().unwrap());
    cmd.args([
        "aws::child_publish",
        "--exact",
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AWS_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("HOME", work.path())
        .env("NODEIMG_PUBLISH_RETRY_MS", "20")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env(CHILD_DIR, out)
        .env(CHILD_RESULT, &result)
        .env(CHILD_LOG, &log)
        .timeout(Duration::from_secs(900));
    if let Some(stage) = stage {
        cmd.env(CHILD_STAGE, stage);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let output = fixtures::tools::run(cmd);
    let text = std::fs::read_to_string(&result).unwrap_or_else(|_| {
        panic!(
            "the child wrote no result ({}):\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    Run {
        record: v.get("record").cloned(),
        error: v.get("error").and_then(Value::as_str).map(str::to_owned),
        everything: format!(
            "{text}\n{log_text}\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
        log: log_text,
    }
}

/// The publish itself, in the child process [`publish`] starts; does nothing otherwise.
#[test]
#[ignore = "run by the aws tests in a child process with its own environment"]
fn child_publish() {
    let Some(dir) = std::env::var_os(CHILD_DIR) else {
        return;
    };
    let result = PathBuf::from(std::env::var_os(CHILD_RESULT).unwrap());
    let log = std::fs::File::create(std::env::var_os(CHILD_LOG).unwrap()).unwrap();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(log))
        .finish();
    let stage = std::env::var(CHILD_STAGE).ok();
    let source = publishers::Source::open(Path::new(&dir)).unwrap();
    let job = publishers::Job {
        source: &source,
        stage: stage.as_deref(),
    };
    let out = tracing::subscriber::with_default(subscriber, || {
        publishers::publish(&job, &publishers::Target::Aws)
    });
    let v = match out {
        Ok(p) => serde_json::json!({ "record": p }),
        Err(e) => serde_json::json!({ "error": e.to_string() }),
    };
    std::fs::write(result, v.to_string()).unwrap();
}

fn env_creds(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY.into()),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
    ]
}

/// What boto3 reads from moto: the blocks of `snapshot` (index → "sha256:len"), every image
/// and snapshot of the account, and the recorded EBS/EC2 requests.
fn moto_state(m: &Moto, snapshot: Option<&str>) -> Value {
    let python = fixtures::emulators::emulators_dir().join("venv/bin/python");
    let script = r#"
import base64, hashlib, json, sys
from urllib.parse import parse_qsl, urlparse
import boto3
url, snap, recording = sys.argv[1], sys.argv[2], sys.argv[3]
kw = dict(endpoint_url=url, region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
ebs, ec2 = boto3.client("ebs", **kw), boto3.client("ec2", **kw)
blocks = {}
if snap:
    listed = ebs.list_snapshot_blocks(SnapshotId=snap)
    for b in listed["Blocks"]:
        got = ebs.get_snapshot_block(SnapshotId=snap, BlockIndex=b["BlockIndex"],
                                     BlockToken=b["BlockToken"])
        data = got["BlockData"].read()
        blocks[str(b["BlockIndex"])] = {
            "data": hashlib.sha256(data).hexdigest() + ":" + str(len(data)),
            "checksum": got.get("Checksum"), "algorithm": got.get("ChecksumAlgorithm"),
            "length": got.get("DataLength"), "token": b["BlockToken"]}
requests = []
with open(recording) as f:
    for line in f:
        # moto serves requests on threads and appends each to the recording unlocked, so
        # concurrent PutSnapshotBlock entries (700 KB each) can interleave: those lines are
        # skipped. The calls checked here are made one at a time.
        try:
            e = json.loads(line)
        except ValueError:
            continue
        body = e.get("body") or ""
        if e.get("body_encoded"):
            raw = base64.b64decode(body)
        else:
            raw = body.encode()
        h = {k.lower(): v for k, v in e["headers"].items() if k.lower().startswith("x-amz-")
             and k.lower() not in ("x-amz-security-token", "x-amz-date", "x-amz-content-sha256")}
        form = {}
        if raw[:7] == b"Action=":
            form = dict(parse_qsl(raw.decode()))
        requests.append({"method": e["method"], "path": urlparse(e["url"]).path,
                         "headers": h, "form": form})
print(json.dumps({
    "blocks": blocks,
    "images": ec2.describe_images(Owners=["self"])["Images"],
    # moto ignores OwnerIds=self and lists its own stock snapshots: only nodeimg's.
    "snapshots": ec2.describe_snapshots(
        Filters=[{"Name": "tag-key", "Values": ["nodeimg:content-sha256"]}])["Snapshots"],
    "requests": requests,
}, default=str))
"#;
    let mut cmd = tool(python);
    cmd.args([
        "-c",
        script,
        &m.emulator.url(),
        snapshot.unwrap_or(""),
        m.recording.to_str().unwrap(),
    ])
    .env("AWS_EC2_METADATA_DISABLED", "true");
    serde_json::from_str(&fixtures::tools::run_ok(cmd)).unwrap()
}

/// The artifact's non-zero 512 KiB blocks, read through diskimg: index → "sha256:len".
fn expected_blocks(out: &Path) -> BTreeMap<String, String> {
    let source = publishers::Source::open(out).unwrap();
    let (path, _) = source.disk("aws", exporters::Format::Aws).unwrap();
    let (mut image, _) = diskimg::format::open_image(&path).unwrap();
    let size = image.virtual_size();
    let mut map = BTreeMap::new();
    let mut buf = vec![0u8; BLOCK];
    let mut whole = Sha256::new();
    for index in 0..size.div_ceil(BLOCK as u64) {
        let offset = index * BLOCK as u64;
        let len = usize::try_from((size - offset).min(BLOCK as u64)).unwrap();
        buf.fill(0);
        image.read_at(offset, &mut buf[..len]).unwrap();
        whole.update(&buf[..len]);
        if buf.iter().any(|&b| b != 0) {
            map.insert(
                index.to_string(),
                format!("{}:{BLOCK}", hex::encode(Sha256::digest(&buf))),
            );
        }
    }
    assert_eq!(hex::encode(whole.finalize()), source.content_sha256());
    map
}

fn tags(v: &Value) -> BTreeMap<String, String> {
    v["Tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            (
                t["Key"].as_str().unwrap().to_owned(),
                t["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn requests<'a>(state: &'a Value, f: impl Fn(&Value) -> bool + 'a) -> Vec<&'a Value> {
    state["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| f(r))
        .collect()
}

/// One field of each stored block, by index.
fn stored(state: &Value, field: &str) -> BTreeMap<String, String> {
    state["blocks"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v[field].as_str().unwrap().to_owned()))
        .collect()
}

fn is_action(action: &'static str) -> impl Fn(&Value) -> bool {
    move |r| r["form"]["Action"] == action
}

#[test]
fn publishes_reads_back_registers_and_then_reuses() {
    let d = tempfile::tempdir().unwrap();
    let Some(m) = moto(d.path()) else { return };
    let out = crate::common::fixture_output(d.path());
    let source = publishers::Source::open(&out).unwrap();
    let content = source.content_sha256().to_owned();
    let env = env_creds(&m.emulator.url());

    let first = publish(&out, Some("dev"), &env);
    let record = first.ok().clone();
    first.assert_no_secret(&[SECRET_KEY]);
    assert_eq!(record["target"], "aws");
    assert_eq!(record["stage"], "dev");
    assert_eq!(record["content_sha256"], content.as_str());
    assert_eq!(record["reused"], false);
    let created = &record["created"];
    assert_eq!(created["region"], "us-east-1");
    let snap = created["snapshot_id"].as_str().unwrap().to_owned();
    let image_id = created["image_id"].as_str().unwrap().to_owned();
    let name = format!("{}-{}-dev", crate::common::NAME, source.content_short());
    assert_eq!(created["image_name"], name.as_str());
    assert!(
        first.log.contains(&format!("read back {snap}")),
        "{}",
        first.log
    );

    // What moto holds, through boto3: the blocks, byte for byte (by SHA-256 each, and
    // nothing where the disk is zeros), the image and the snapshot with their tags.
    let state = moto_state(&m, Some(&snap));
    let want = expected_blocks(&out);
    assert!(!want.is_empty());
    assert_eq!(stored(&state, "data"), want);
    let images = state["images"].as_array().unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0]["ImageId"], image_id.as_str());
    assert_eq!(images[0]["Name"], name.as_str());
    for resource in [&images[0], &state["snapshots"].as_array().unwrap()[0]] {
        let t = tags(resource);
        assert_eq!(t["nodeimg:content-sha256"], content, "{resource}");
        assert_eq!(t["nodeimg:stage"], "dev");
        assert_eq!(t["nodeimg:name"], crate::common::NAME);
        assert_eq!(t["nodeimg:kubeadm"], crate::common::KUBERNETES_VERSION);
        assert_eq!(t["nodeimg:containerd"], crate::common::CONTAINERD_VERSION);
        assert_eq!(t["nodeimg:os"], "debian-12");
    }
    assert_eq!(state["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(state["snapshots"][0]["SnapshotId"], snap.as_str());
    assert_eq!(state["snapshots"][0]["VolumeSize"], 1);

    // Each block as moto stored it: 512 KiB, with its SHA-256 (base64) and the algorithm;
    // the completion with the count and the linear aggregate (SHA-256 over the blocks'
    // SHA-256s in index order); the AMI's facts as sent.
    let mut linear = Sha256::new();
    let mut by_index: Vec<(u64, &String)> =
        want.iter().map(|(k, v)| (k.parse().unwrap(), v)).collect();
    by_index.sort();
    for (index, sum) in by_index {
        let block = &state["blocks"][index.to_string()];
        let raw = hex::decode(&sum[..64]).unwrap();
        assert_eq!(
            block["checksum"],
            aws_smithy_types::base64::encode(&raw).as_str()
        );
        assert_eq!(block["algorithm"], "SHA256");
        assert_eq!(block["length"], 524288);
        linear.update(raw);
    }
    let complete = requests(&state, |r| {
        r["method"] == "POST" && r["path"].as_str().unwrap().contains("/completion")
    });
    assert_eq!(complete.len(), 1);
    let h = &complete[0]["headers"];
    assert_eq!(
        h["x-amz-changedblockscount"],
        want.len().to_string().as_str()
    );
    assert_eq!(h["x-amz-checksum-aggregation-method"], "LINEAR");
    assert_eq!(h["x-amz-checksum-algorithm"], "SHA256");
    assert_eq!(
        h["x-amz-checksum"],
        aws_smithy_types::base64::encode(linear.finalize()).as_str()
    );
    let start = requests(&state, |r| {
        r["method"] == "POST" && r["path"] == "/snapshots"
    });
    assert_eq!(start.len(), 1);
    let register = requests(&state, is_action("RegisterImage"));
    assert_eq!(register.len(), 1);
    let f = &register[0]["form"];
    assert_eq!(f["Name"], name.as_str());
    assert_eq!(f["BootMode"], "uefi");
    assert_eq!(f["EnaSupport"], "true");
    assert_eq!(f["ImdsSupport"], "v2.0");
    assert_eq!(f["Architecture"], "x86_64");
    assert_eq!(f["VirtualizationType"], "hvm");
    assert_eq!(f["SriovNetSupport"], "simple");
    assert_eq!(f["RootDeviceName"], "/dev/xvda");
    assert_eq!(f["BlockDeviceMapping.1.DeviceName"], "/dev/xvda");
    assert_eq!(f["BlockDeviceMapping.1.Ebs.SnapshotId"], snap.as_str());
    assert_eq!(f["BlockDeviceMapping.1.Ebs.VolumeType"], "gp3");
    assert_eq!(f["BlockDeviceMapping.1.Ebs.VolumeSize"], "1");
    assert_eq!(f["BlockDeviceMapping.1.Ebs.DeleteOnTermination"], "true");
    assert_eq!(f["TagSpecification.1.ResourceType"], "image");
    assert_eq!(f["TagSpecification.1.Tag.1.Key"], "nodeimg:content-sha256");
    assert_eq!(f["TagSpecification.1.Tag.1.Value"], content.as_str());
    // The read back (a GetSnapshotBlock per block) came before the registration.
    let all = state["requests"].as_array().unwrap();
    let reg_at = all.iter().position(is_action("RegisterImage")).unwrap();
    let gets_before = all[..reg_at]
        .iter()
        .filter(|r| r["method"] == "GET" && r["path"].as_str().unwrap().contains("/blocks/"))
        .count();
    assert_eq!(gets_before, want.len());
    let tokens = stored(&state, "token");

    // Again: found by its tags, nothing uploaded or registered.
    let second = publish(&out, Some("dev"), &env);
    let again = second.ok();
    second.assert_no_secret(&[SECRET_KEY]);
    assert_eq!(again["reused"], true);
    assert_eq!(again["created"], record["created"]);
    let after = moto_state(&m, Some(&snap));
    assert_eq!(
        stored(&after, "token"),
        tokens,
        "no block was written again"
    );
    assert_eq!(requests(&after, is_action("RegisterImage")).len(), 1);
    assert_eq!(after["images"].as_array().unwrap().len(), 1);
    assert_eq!(after["snapshots"].as_array().unwrap().len(), 1);

    // Another stage is another image.
    let prod = publish(&out, Some("prod"), &env);
    assert_eq!(prod.ok()["reused"], false);
    assert_ne!(prod.ok()["created"]["image_id"], image_id.as_str());
}

#[test]
fn a_snapshot_without_image_is_registered_and_a_bad_one_replaced() {
    let d = tempfile::tempdir().unwrap();
    let Some(m) = moto(d.path()) else { return };
    let out = crate::common::fixture_output(d.path());
    let source = publishers::Source::open(&out).unwrap();
    let content = source.content_sha256().to_owned();
    let env = env_creds(&m.emulator.url());
    let first = publish(&out, None, &env);
    let snap = first.ok()["created"]["snapshot_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let image = first.ok()["created"]["image_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let tokens = stored(&moto_state(&m, Some(&snap)), "token");

    // The image is gone (as if registration had failed): the snapshot is read back and
    // registered, nothing uploaded.
    let python = fixtures::emulators::emulators_dir().join("venv/bin/python");
    let boto = |code: &str| {
        let mut cmd = tool(&python);
        cmd.args(["-c", &format!(
            "import boto3\nkw=dict(endpoint_url='{}', region_name='us-east-1', aws_access_key_id='t', aws_secret_access_key='t')\nec2=boto3.client('ec2', **kw)\nebs=boto3.client('ebs', **kw)\n{code}",
            m.emulator.url()
        )]);
        fixtures::tools::run_ok(cmd)
    };
    boto(&format!("ec2.deregister_image(ImageId='{image}')"));
    let second = publish(&out, None, &env);
    let rec = second.ok();
    assert_eq!(rec["reused"], false);
    assert_eq!(rec["created"]["snapshot_id"], snap.as_str());
    assert_ne!(rec["created"]["image_id"], image.as_str());
    assert!(
        second
            .log
            .contains(&format!("{snap} already holds content"))
    );
    let state = moto_state(&m, Some(&snap));
    assert_eq!(
        stored(&state, "token"),
        tokens,
        "no block was written again"
    );
    assert_eq!(requests(&state, is_action("RegisterImage")).len(), 2);

    // A snapshot with this content's tags that holds something else (an interrupted
    // upload): read back, refused, deleted, and a new one uploaded.
    boto(&format!(
        "ec2.deregister_image(ImageId='{}')\nec2.delete_snapshot(SnapshotId='{snap}')\nebs.start_snapshot(VolumeSize=1, Tags=[{{'Key': 'nodeimg:content-sha256', 'Value': '{content}'}}])",
        rec["created"]["image_id"].as_str().unwrap()
    ));
    let third = publish(&out, None, &env);
    let rec = third.ok();
    assert!(third.log.contains("starting over"), "{}", third.log);
    let state = moto_state(&m, rec["created"]["snapshot_id"].as_str());
    assert_eq!(stored(&state, "data"), expected_blocks(&out));
    let snapshots = state["snapshots"].as_array().unwrap();
    assert_eq!(snapshots.len(), 1, "the bad snapshot was deleted");
}

#[test]
fn profile_files_and_per_service_endpoints() {
    let d = tempfile::tempdir().unwrap();
    let Some(m) = moto(d.path()) else { return };
    let out = crate::common::fixture_output(d.path());
    let config = d.path().join("aws-config");
    let credentials = d.path().join("aws-credentials");
    std::fs::write(&config, "[profile ci]\nregion = eu-west-1\n").unwrap();
    std::fs::write(
        &credentials,
        format!(
            "[ci]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {PROFILE_SECRET}\n"
        ),
    )
    .unwrap();
    let url = m.emulator.url();
    let env = vec![
        ("AWS_CONFIG_FILE", config.display().to_string()),
        (
            "AWS_SHARED_CREDENTIALS_FILE",
            credentials.display().to_string(),
        ),
        ("AWS_PROFILE", "ci".to_owned()),
        ("AWS_ENDPOINT_URL_EBS", url.clone()),
        ("AWS_ENDPOINT_URL_EC2", url),
    ];
    let run = publish(&out, None, &env);
    run.assert_no_secret(&[PROFILE_SECRET]);
    // The capture is live: the SDK's own TRACE events are in it (the secret is not).
    assert!(run.log.contains("EC2.DescribeSnapshots") && run.log.contains("TRACE"));
    assert_eq!(run.ok()["created"]["region"], "eu-west-1");
    assert!(
        run.ok()["created"]["image_id"]
            .as_str()
            .unwrap()
            .starts_with("ami-")
    );
}

#[test]
fn web_identity_through_sts() {
    let d = tempfile::tempdir().unwrap();
    let Some(m) = moto(d.path()) else { return };
    let out = crate::common::fixture_output(d.path());
    let token = d.path().join("oidc-token");
    std::fs::write(&token, OIDC_TOKEN).unwrap();
    let env = vec![
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::123456789012:role/nodeimg-ci".to_owned(),
        ),
        ("AWS_ROLE_SESSION_NAME", "nodeimg-test".to_owned()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", m.emulator.url()),
    ];
    let run = publish(&out, None, &env);
    run.assert_no_secret(&[OIDC_TOKEN]);
    assert!(
        run.ok()["created"]["image_id"]
            .as_str()
            .unwrap()
            .starts_with("ami-")
    );
    let state = moto_state(&m, None);
    let sts = requests(&state, is_action("AssumeRoleWithWebIdentity"));
    assert!(!sts.is_empty(), "the credentials came from STS");
    assert_eq!(
        sts[0]["form"]["RoleArn"],
        "arn:aws:iam::123456789012:role/nodeimg-ci"
    );
}

#[test]
fn missing_credentials_name_the_chain_and_send_nothing() {
    let d = tempfile::tempdir().unwrap();
    let out = crate::common::fixture_output(d.path());
    let closed = free_port().unwrap();
    let env = vec![
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_PROFILE", "nodeimg-absent".to_owned()),
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{closed}")),
    ];
    let run = publish(&out, None, &env);
    let e = run.err();
    println!("error: {e}");
    assert!(
        e.starts_with("aws: credentials from the AWS default chain"),
        "{e}"
    );
    assert!(e.contains("AWS_ACCESS_KEY_ID not set"), "{e}");
    assert!(e.contains("AWS_PROFILE=nodeimg-absent"), "{e}");
    assert!(e.contains(".aws/config"), "{e}");
    assert!(e.contains("web identity"), "{e}");
    assert!(!run.log.contains("; retry "), "{}", run.log);
}

#[test]
fn an_unreachable_endpoint_is_retried_a_bounded_number_of_times() {
    let d = tempfile::tempdir().unwrap();
    let out = crate::common::fixture_output(d.path());
    let closed = free_port().unwrap();
    let run = publish(
        &out,
        None,
        &env_creds(&format!("http://127.0.0.1:{closed}")),
    );
    let e = run.err();
    println!("error: {e}");
    assert!(
        e.starts_with("ec2:DescribeSnapshots: gave up after 5 attempts"),
        "{e}"
    );
    for n in 1..=4 {
        assert!(run.log.contains(&format!("retry {n} of 4")), "{}", run.log);
    }
    run.assert_no_secret(&[SECRET_KEY]);
}

#[test]
fn throttling_and_5xx_are_retried_then_succeed() {
    let d = tempfile::tempdir().unwrap();
    let Some(m) = moto(d.path()) else { return };
    let out = crate::common::fixture_output(d.path());
    // The first three requests: 503, throttled (EC2's RequestLimitExceeded), 503.
    let url = proxy::start(m.emulator.port(), |n, _| match n {
        1 | 3 => proxy::Action::Answer("503 Service Unavailable", "service unavailable"),
        2 => proxy::Action::Answer(
            "400 Bad Request",
            "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>slow down</Message></Error></Errors></Response>",
        ),
        _ => proxy::Action::Forward,
    });
    let run = publish(&out, None, &env_creds(&url));
    assert!(
        run.ok()["created"]["image_id"]
            .as_str()
            .unwrap()
            .starts_with("ami-")
    );
    for n in 1..=3 {
        assert!(
            run.log.contains(&format!("; retry {n} of 4")),
            "{}",
            run.log
        );
    }
    assert!(run.log.contains("RequestLimitExceeded"), "{}", run.log);
    assert!(run.log.contains("HTTP 503"), "{}", run.log);
}

#[test]
fn a_block_that_reads_back_wrong_registers_nothing() {
    let d = tempfile::tempdir().unwrap();
    let Some(m) = moto(d.path()) else { return };
    let out = crate::common::fixture_output(d.path());
    // Every GetSnapshotBlock answer has its last byte flipped on the way.
    let url = proxy::start(m.emulator.port(), |_, head| {
        if head.starts_with("GET /snapshots/") && head.contains("/blocks/") {
            proxy::Action::Corrupt
        } else {
            proxy::Action::Forward
        }
    });
    let run = publish(&out, None, &env_creds(&url));
    let e = run.err();
    println!("error: {e}");
    assert!(e.starts_with("read back snapshot snap-"), "{e}");
    assert!(e.ends_with("nothing was registered"), "{e}");
    let state = moto_state(&m, None);
    assert_eq!(requests(&state, is_action("RegisterImage")).len(), 0);
    assert!(state["images"].as_array().unwrap().is_empty());
    assert!(
        state["snapshots"].as_array().unwrap().is_empty(),
        "the snapshot that read back wrong was deleted"
    );
}

#[test]
fn a_denied_call_is_named_and_refused_credentials_name_their_source() {
    let d = tempfile::tempdir().unwrap();
    // moto checks IAM policies after its first three calls: the user, its key, its policy
    // (everything but ec2:DescribeImages; with IAM checks on, moto 5.2.5 also answers
    // ebs:CompleteSnapshot 403 whatever the policy, so the denied call is an EC2 one).
    let Some(m) = moto_with(d.path(), &[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]) else {
        return;
    };
    let out = crate::common::fixture_output(d.path());
    let python = fixtures::emulators::emulators_dir().join("venv/bin/python");
    let mut cmd = tool(python);
    cmd.args([
        "-c",
        r#"
import json, sys, boto3
iam = boto3.client("iam", endpoint_url=sys.argv[1], region_name="us-east-1",
                   aws_access_key_id="setup", aws_secret_access_key="setup")
iam.create_user(UserName="ci")
key = iam.create_access_key(UserName="ci")["AccessKey"]
iam.put_user_policy(UserName="ci", PolicyName="no-describe-images", PolicyDocument=json.dumps({
    "Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:DescribeImages", "Resource": "*"}]}))
print(key["AccessKeyId"], key["SecretAccessKey"])
"#,
        &m.emulator.url(),
    ]);
    let keys = fixtures::tools::run_ok(cmd);
    let (id, secret) = keys.trim().split_once(' ').unwrap();
    let mut env = env_creds(&m.emulator.url());
    env.retain(|(k, _)| !k.starts_with("AWS_ACCESS_KEY_ID") && *k != "AWS_SECRET_ACCESS_KEY");
    env.push(("AWS_ACCESS_KEY_ID", id.to_owned()));
    env.push(("AWS_SECRET_ACCESS_KEY", secret.to_owned()));
    let run = publish(&out, None, &env);
    let e = run.err();
    println!("error: {e}");
    assert!(
        e.starts_with("ec2:DescribeImages: permission denied"),
        "{e}"
    );
    assert!(e.contains("AccessDenied"), "{e}");
    run.assert_no_secret(&[secret]);
    assert!(!run.log.contains("; retry "), "not retried:\n{}", run.log);

    // A key moto does not know: refused, naming where the credentials came from.
    let run = publish(&out, None, &env_creds(&m.emulator.url()));
    let e = run.err();
    println!("error: {e}");
    assert!(
        e.starts_with("aws: credentials from the AWS default chain: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{e}"
    );
    assert!(
        e.contains("refused them") && e.contains("AuthFailure"),
        "{e}"
    );
    run.assert_no_secret(&[SECRET_KEY]);
}
