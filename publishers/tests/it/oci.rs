//! `oci:HOST/REPO[:TAG]` against Debian's docker-registry (the CNCF distribution registry
//! 2.8) on 127.0.0.1, read back with skopeo, tar and qemu-img: the artifact's layers and the
//! containerDisk's qcow2 byte for byte, a second publish reused with no request that uploads,
//! a publish to another repository mounted, credentials from an auth file never shown, and
//! the errors for missing and wrong credentials and an unreachable registry.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use exporters::Format;
use fixtures::registry::{LocalRegistry, Options, TokenAuth};
use fixtures::tools::{run_ok, tool};
use publishers::oci::{self, publish_with};
use publishers::record::{PublishRecord, RECORD_FILE};
use publishers::retry::Policy;
use publishers::{Error, Job, Published, Source};

use crate::common::{KUBERNETES_VERSION, NAME, fixture_output};

fn have_tools() -> bool {
    ["docker-registry", "skopeo", "qemu-img", "tar"]
        .iter()
        .all(|t| fixtures::tools::have(t))
}

fn quick() -> Policy {
    Policy {
        attempts: 3,
        first_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(40),
    }
}

fn options(auth_files: Vec<PathBuf>) -> oci::Options {
    oci::Options {
        auth_files,
        policy: quick(),
    }
}

use crate::common::captured;

/// The registry's access-log lines of requests nodeimg made with `method`.
fn requests(registry: &LocalRegistry, method: &str) -> Vec<String> {
    registry
        .log_text()
        .lines()
        .filter(|l| l.contains(&format!("\"{method} /v2/")) && l.contains("\"nodeimg/"))
        .map(str::to_owned)
        .collect()
}

/// Whether two files hold the same bytes.
fn same_bytes(a: &Path, b: &Path) -> bool {
    let (mut fa, mut fb) = (
        std::fs::File::open(a).unwrap(),
        std::fs::File::open(b).unwrap(),
    );
    if fa.metadata().unwrap().len() != fb.metadata().unwrap().len() {
        return false;
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    loop {
        let n = fa.read(&mut ba).unwrap();
        if n == 0 {
            return true;
        }
        fb.read_exact(&mut bb[..n]).unwrap();
        if ba[..n] != bb[..n] {
            return false;
        }
    }
}

fn skopeo_raw(reference: &str) -> serde_json::Value {
    let text = run_ok(tool("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{reference}"),
    ]));
    serde_json::from_str(&text).unwrap()
}

fn skopeo_copy(reference: &str, dir: &Path) {
    run_ok(tool("skopeo").args([
        "copy",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("dir:{}", dir.display()),
    ]));
}

/// The fixture output with only some of its disk formats (the credential tests need one).
fn only(source: &Source, formats: &[Format]) -> Source {
    let mut s = source.clone();
    s.manifest.artifacts.retain(|a| formats.contains(&a.format));
    s
}

#[test]
fn the_disks_and_a_containerdisk_are_pushed_read_back_reused_and_mounted() {
    if !have_tools() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = fixture_output(d.path());
    let source = Source::open(&out).unwrap();
    let registry = LocalRegistry::start_with(
        &d.path().join("storage"),
        &Options {
            log_requests: true,
            ..Options::default()
        },
    )
    .unwrap();
    let host = registry.host().to_owned();
    let job = Job {
        source: &source,
        stage: None,
    };
    let reference = format!("{host}/nodes/fixture");
    let none = options(vec![d.path().join("no-auth.json")]);
    let (first, log) = captured(|| publish_with(&job, &reference, &none));
    let first = first.unwrap();
    let tag = format!("{NAME}-{}", source.content_short());
    assert!(!first.reused);
    assert_eq!(first.created["reference"], format!("{reference}:{tag}"));
    assert_eq!(
        first.created["containerdisk_reference"],
        format!("{reference}:{tag}-containerdisk")
    );
    assert!(log.contains("uploaded"), "{log}");

    // The artifact, through skopeo: its manifest is the one recorded, one layer per disk.
    let artifact_ref = &first.created["reference"];
    let manifest = skopeo_raw(artifact_ref);
    let raw = run_ok(tool("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{artifact_ref}"),
    ]));
    assert_eq!(
        first.created["artifact_digest"],
        format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(raw.as_bytes()))
        )
    );
    assert_eq!(manifest["artifactType"], "application/vnd.nodeimg.disk.v1");
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.oci.empty.v1+json"
    );
    let ann = &manifest["annotations"];
    assert_eq!(ann["io.nodeimg.content-sha256"], source.content_sha256());
    assert_eq!(ann["io.nodeimg.kubeadm"], KUBERNETES_VERSION);
    assert_eq!(ann["org.opencontainers.image.title"], NAME);
    assert_eq!(
        ann["org.opencontainers.image.created"],
        bom::cyclonedx::rfc3339(source.manifest.source_date_epoch)
    );
    let disks: Vec<_> = source.manifest.disks().collect();
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), disks.len());
    let copied = d.path().join("artifact");
    skopeo_copy(artifact_ref, &copied);
    for (layer, disk) in layers.iter().zip(&disks) {
        assert_eq!(
            layer["annotations"]["org.opencontainers.image.title"],
            disk.file
        );
        assert_eq!(layer["digest"], format!("sha256:{}", disk.sha256));
        assert_eq!(
            layer["mediaType"],
            format!(
                "application/vnd.nodeimg.disk.{}",
                match disk.format {
                    Format::Gce => "gce.tar+gzip",
                    Format::Aws => "aws.vmdk",
                    f => f.name(),
                }
            )
        );
        assert!(
            same_bytes(&copied.join(&disk.sha256), &out.join(&disk.file)),
            "{} differs from the registry's layer",
            disk.file
        );
    }

    // The containerDisk: an amd64/linux image whose one tar layer holds disk/NAME.qcow2,
    // owned 107, the same bytes as the artifact, a qcow2 qemu-img reads.
    let cd_ref = &first.created["containerdisk_reference"];
    let inspect: serde_json::Value = serde_json::from_str(&run_ok(tool("skopeo").args([
        "inspect",
        "--tls-verify=false",
        &format!("docker://{cd_ref}"),
    ])))
    .unwrap();
    assert_eq!(inspect["Architecture"], "amd64");
    assert_eq!(inspect["Os"], "linux");
    assert_eq!(
        inspect["Digest"].as_str().unwrap(),
        first.created["containerdisk_digest"]
    );
    let cd_manifest = skopeo_raw(cd_ref);
    let cd_layers = cd_manifest["layers"].as_array().unwrap();
    assert_eq!(cd_layers.len(), 1);
    assert_eq!(
        cd_layers[0]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar"
    );
    let cd_dir = d.path().join("containerdisk");
    skopeo_copy(cd_ref, &cd_dir);
    let layer_hex = cd_layers[0]["digest"]
        .as_str()
        .unwrap()
        .trim_start_matches("sha256:");
    let layer_tar = cd_dir.join(layer_hex);
    let (qcow2, qcow2_artifact) = source.disk("oci", Format::Qcow2).unwrap();
    let listing = run_ok(
        tool("tar")
            .arg("--numeric-owner")
            .arg("-tvf")
            .arg(&layer_tar),
    );
    let member = format!("disk/{}", qcow2_artifact.file);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("-r--r-----") && l.contains("107/107") && l.ends_with(&member)),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("dr-xr-xr-x") && l.contains("107/107")),
        "{listing}"
    );
    let extracted = d.path().join("extracted");
    std::fs::create_dir(&extracted).unwrap();
    run_ok(
        tool("tar")
            .arg("-xf")
            .arg(&layer_tar)
            .arg("-C")
            .arg(&extracted),
    );
    assert!(same_bytes(&extracted.join(&member), &qcow2));
    let info = run_ok(
        tool("qemu-img")
            .args(["info", "--output=json"])
            .arg(extracted.join(&member)),
    );
    let info: serde_json::Value = serde_json::from_str(&info).unwrap();
    assert_eq!(info["format"], "qcow2");
    assert_eq!(info["virtual-size"], source.manifest.virtual_size);

    // Every uploaded blob was read back before the manifests were put.
    let gets = requests(&registry, "GET");
    let puts = requests(&registry, "PUT");
    let log_text = registry.log_text();
    let log_lines: Vec<&str> = log_text.lines().collect();
    let last_blob_get = log_lines
        .iter()
        .rposition(|l| l.contains("\"GET /v2/nodes/fixture/blobs/") && l.contains("\"nodeimg/"))
        .unwrap();
    let first_manifest_put = log_lines
        .iter()
        .position(|l| l.contains("\"PUT /v2/nodes/fixture/manifests/"))
        .unwrap();
    assert!(last_blob_get < first_manifest_put);
    assert!(gets.len() >= disks.len() + 3, "{gets:?}");
    assert!(!puts.is_empty());

    // Again: reused, and no request that writes.
    let writes = |r: &LocalRegistry| {
        ["POST", "PATCH", "PUT"]
            .iter()
            .map(|m| requests(r, m).len())
            .sum::<usize>()
    };
    let before = writes(&registry);
    let again = publish_with(&job, &reference, &none).unwrap();
    assert!(again.reused);
    assert_eq!(again.created, first.created);
    assert_eq!(writes(&registry), before);

    // Another repository of the registry, after publish.json names the first: every blob is
    // mounted, nothing uploaded.
    let mut record =
        PublishRecord::load_or_new(&out, &source.manifest.name, source.content_sha256()).unwrap();
    record.upsert(first.clone());
    std::fs::write(out.join(RECORD_FILE), record.to_json()).unwrap();
    let patches = requests(&registry, "PATCH").len();
    let other = format!("{host}/mirror/fixture");
    let (moved, log) = captured(|| publish_with(&job, &other, &none));
    let moved = moved.unwrap();
    assert!(!moved.reused);
    assert_eq!(requests(&registry, "PATCH").len(), patches);
    let mounts: Vec<_> = requests(&registry, "POST")
        .into_iter()
        .filter(|l| l.contains("/v2/mirror/fixture/blobs/uploads/?mount="))
        .collect();
    assert_eq!(mounts.len(), disks.len() + 3, "{mounts:?}");
    assert!(log.contains("mounted from nodes/fixture"), "{log}");
    assert_eq!(
        moved.created["artifact_digest"],
        first.created["artifact_digest"]
    );
    let mirrored = d.path().join("mirrored");
    skopeo_copy(&moved.created["reference"], &mirrored);
    let raw_disk = disks.iter().find(|a| a.format == Format::Raw).unwrap();
    assert!(same_bytes(
        &mirrored.join(&raw_disk.sha256),
        &out.join(&raw_disk.file)
    ));
}

#[test]
fn a_stage_makes_its_own_tag_and_a_missing_qcow2_is_refused_before_any_call() {
    let d = tempfile::tempdir().unwrap();
    let out = fixture_output(d.path());
    let source = Source::open(&out).unwrap();
    let raw_only = only(&source, &[Format::Raw]);
    let job = Job {
        source: &raw_only,
        stage: Some("dev"),
    };
    // A closed port: any call would fail with retries, not this refusal.
    let port = fixtures::emulators::free_port().unwrap();
    let e = publish_with(&job, &format!("127.0.0.1:{port}/n/i"), &options(vec![])).unwrap_err();
    assert!(matches!(e, Error::NotExported { .. }), "{e}");

    if !have_tools() {
        return;
    }
    let registry = LocalRegistry::start(&d.path().join("storage")).unwrap();
    let qcow2_only = only(&source, &[Format::Qcow2]);
    let job = Job {
        source: &qcow2_only,
        stage: Some("dev"),
    };
    let p = publish_with(&job, &format!("{}/n/i", registry.host()), &options(vec![])).unwrap();
    let tag = format!("{NAME}-{}-dev", source.content_short());
    assert!(
        p.created["reference"].ends_with(&format!("/n/i:{tag}")),
        "{p:?}"
    );
    let manifest = skopeo_raw(&p.created["reference"]);
    assert_eq!(manifest["annotations"]["io.nodeimg.stage"], "dev");
    // The same content without the stage is another tag, not reused from the staged one.
    let job = Job {
        source: &qcow2_only,
        stage: None,
    };
    let unstaged =
        publish_with(&job, &format!("{}/n/i", registry.host()), &options(vec![])).unwrap();
    assert!(!unstaged.reused);
}

fn htpasswd(dir: &Path, user: &str, password: &str) -> PathBuf {
    let line = run_ok(tool("htpasswd").args(["-nbB", user, password]));
    let path = dir.join("htpasswd");
    std::fs::write(&path, line.trim()).unwrap();
    path
}

fn auth_file(dir: &Path, name: &str, host: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine;
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    let path = dir.join(name);
    std::fs::write(
        &path,
        serde_json::json!({"auths": {host: {"auth": auth}}}).to_string(),
    )
    .unwrap();
    path
}

#[test]
fn credentials_come_from_the_auth_file_and_never_show() {
    if !have_tools() || !fixtures::tools::have("htpasswd") {
        return;
    }
    const USER: &str = "nodeimg-ci";
    const PASSWORD: &str = "SECRET-OCI-pw-7f3a9c";
    const WRONG: &str = "SECRET-OCI-wrong-41d2";
    let d = tempfile::tempdir().unwrap();
    let out = fixture_output(d.path());
    let source = only(&Source::open(&out).unwrap(), &[Format::Qcow2]);
    let registry = LocalRegistry::start_with(
        &d.path().join("storage"),
        &Options {
            htpasswd: Some(htpasswd(d.path(), USER, PASSWORD)),
            log_requests: true,
            ..Options::default()
        },
    )
    .unwrap();
    let host = registry.host().to_owned();
    let job = Job {
        source: &source,
        stage: None,
    };
    let reference = format!("{host}/secure/fixture");
    let secrets = [PASSWORD.to_owned(), WRONG.to_owned(), {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
    }];
    let mut seen = String::new();

    // No entry in any file: one error naming the files tried.
    let missing = [
        d.path().join("auth.json"),
        d.path().join("docker/config.json"),
    ];
    let (e, log) = captured(|| publish_with(&job, &reference, &options(missing.to_vec())));
    let e = e.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Credentials { .. }), "{text}");
    for f in &missing {
        assert!(text.contains(&f.display().to_string()), "{text}");
    }
    seen.push_str(&text);
    seen.push_str(&log);

    // A wrong password: the error names the file used, not the value.
    let wrong = auth_file(d.path(), "wrong.json", &host, USER, WRONG);
    let (e, log) = captured(|| publish_with(&job, &reference, &options(vec![wrong.clone()])));
    let e = e.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Credentials { .. }), "{text}");
    assert!(text.contains(&wrong.display().to_string()), "{text}");
    seen.push_str(&format!("{text}{e:?}{log}"));

    // The right one, in the second file looked at.
    let right = auth_file(d.path(), "right.json", &host, USER, PASSWORD);
    let files = vec![d.path().join("absent.json"), right];
    let (published, log) = captured(|| publish_with(&job, &reference, &options(files.clone())));
    let published: Published = published.unwrap();
    assert!(!published.reused);
    seen.push_str(&log);
    seen.push_str(&serde_json::to_string(&published).unwrap());
    seen.push_str(&format!("{published:?}"));
    let manifest = run_ok(tool("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("--creds={USER}:{PASSWORD}"),
        &format!("docker://{}", published.created["reference"]),
    ]));
    assert!(manifest.contains(source.content_sha256()));
    let (again, log) = captured(|| publish_with(&job, &reference, &options(files.clone())));
    assert!(again.unwrap().reused);
    seen.push_str(&log);

    for s in &secrets {
        assert!(!seen.contains(s.as_str()), "a secret showed:\n{seen}");
    }
    assert!(seen.contains("uploaded"), "{seen}");
    // The registry saw the pushes authenticated (and 401s before the login only).
    assert!(!requests(&registry, "PATCH").is_empty());
}

#[test]
fn an_unreachable_registry_is_retried_a_bounded_number_of_times() {
    let d = tempfile::tempdir().unwrap();
    let out = fixture_output(d.path());
    let source = only(&Source::open(&out).unwrap(), &[Format::Qcow2]);
    let job = Job {
        source: &source,
        stage: None,
    };
    let port = fixtures::emulators::free_port().unwrap();
    let (e, log) =
        captured(|| publish_with(&job, &format!("127.0.0.1:{port}/n/i"), &options(vec![])));
    let e = e.unwrap_err();
    match &e {
        Error::Retries { attempts, call, .. } => {
            assert_eq!(*attempts, 3);
            assert!(call.starts_with("GET /v2/n/i/manifests/"), "{call}");
        }
        other => panic!("{other}"),
    }
    assert!(
        log.contains("retry 1 of 2") && log.contains("retry 2 of 2"),
        "{log}"
    );
    assert!(!log.contains("retry 3"), "{log}");
}

#[test]
fn a_registry_that_refuses_writes_is_named_by_the_call_and_not_retried() {
    if !have_tools() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let out = fixture_output(d.path());
    let source = only(&Source::open(&out).unwrap(), &[Format::Qcow2]);
    let registry = LocalRegistry::start_with(
        &d.path().join("storage"),
        &Options {
            log_requests: true,
            read_only: true,
            ..Options::default()
        },
    )
    .unwrap();
    let job = Job {
        source: &source,
        stage: None,
    };
    let reference = format!("{}/ro/fixture", registry.host());
    let e = publish_with(&job, &reference, &options(vec![])).unwrap_err();
    match &e {
        Error::Call { call, why } => {
            assert_eq!(call, "POST /v2/ro/fixture/blobs/uploads", "{e}");
            assert!(why.starts_with("405"), "{e}");
        }
        other => panic!("{other}"),
    }
    assert_eq!(requests(&registry, "POST").len(), 1);
    assert!(requests(&registry, "PUT").is_empty());
}

#[test]
fn a_token_server_login_gives_the_bearer_tokens_the_pushes_and_mounts_use() {
    if !have_tools() || !fixtures::tools::have("python3") {
        return;
    }
    const USER: &str = "nodeimg-token-user";
    const PASSWORD: &str = "SECRET-OCI-token-pw-c81e";
    let d = tempfile::tempdir().unwrap();
    let out = fixture_output(d.path());
    let source = only(&Source::open(&out).unwrap(), &[Format::Qcow2]);
    let (key, cert) = (d.path().join("key.pem"), d.path().join("cert.pem"));
    run_ok(
        tool("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=nodeimg-test-token", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let port = fixtures::emulators::free_port().unwrap();
    let mut server = tool("python3");
    server
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/it/data/token_server.py"
        ))
        .arg(port.to_string())
        .arg(&key)
        .arg(&cert)
        .args(["nodeimg-test-issuer", USER, PASSWORD])
        .arg(d.path().join("deny"));
    let token_server = fixtures::emulators::Emulator::start(
        "token server",
        server,
        port,
        &d.path().join("token.log"),
    )
    .unwrap();
    let registry = LocalRegistry::start_with(
        &d.path().join("storage"),
        &Options {
            log_requests: true,
            token: Some(TokenAuth {
                realm: format!("{}/token", token_server.url()),
                service: "nodeimg-registry".into(),
                issuer: "nodeimg-test-issuer".into(),
                root_cert_bundle: cert.clone(),
            }),
            ..Options::default()
        },
    )
    .unwrap();
    let host = registry.host().to_owned();
    let job = Job {
        source: &source,
        stage: None,
    };
    let mut seen = String::new();

    // Anonymous: the token server refuses, the error names the files tried.
    let absent = d.path().join("absent.json");
    let e = publish_with(
        &job,
        &format!("{host}/tok/fixture"),
        &options(vec![absent.clone()]),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Credentials { .. })
            && e.to_string().contains(&absent.display().to_string()),
        "{e}"
    );
    // A wrong password: the file is named.
    let wrong = auth_file(
        d.path(),
        "wrong.json",
        &host,
        USER,
        "SECRET-OCI-token-wrong",
    );
    let e = publish_with(
        &job,
        &format!("{host}/tok/fixture"),
        &options(vec![wrong.clone()]),
    )
    .unwrap_err();
    assert!(
        matches!(e, Error::Credentials { .. })
            && e.to_string().contains(&wrong.display().to_string()),
        "{e}"
    );
    seen.push_str(&format!("{e} {e:?}"));

    let right = auth_file(d.path(), "right.json", &host, USER, PASSWORD);
    let (first, log) = captured(|| {
        publish_with(
            &job,
            &format!("{host}/tok/fixture"),
            &options(vec![right.clone()]),
        )
    });
    let first = first.unwrap();
    seen.push_str(&log);
    seen.push_str(&serde_json::to_string(&first).unwrap());
    assert!(!first.reused);
    assert!(!requests(&registry, "PATCH").is_empty());
    let manifest = run_ok(tool("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("--creds={USER}:{PASSWORD}"),
        &format!("docker://{}", first.created["reference"]),
    ]));
    assert!(manifest.contains(source.content_sha256()));

    // Another repository, mounting from the first: the token asks pull on it too.
    let mut record =
        PublishRecord::load_or_new(&out, &source.manifest.name, source.content_sha256()).unwrap();
    record.upsert(first.clone());
    std::fs::write(out.join(RECORD_FILE), record.to_json()).unwrap();
    let patches = requests(&registry, "PATCH").len();
    let (mirror, log) = captured(|| {
        publish_with(
            &job,
            &format!("{host}/tok/mirror"),
            &options(vec![right.clone()]),
        )
    });
    let mirror = mirror.unwrap();
    seen.push_str(&log);
    assert!(log.contains("mounted from tok/fixture"), "{log}");
    assert_eq!(requests(&registry, "PATCH").len(), patches);
    assert_eq!(
        mirror.created["artifact_digest"],
        first.created["artifact_digest"]
    );
    let tokens = token_server.log_text();
    assert!(
        tokens.lines().any(|l| l
            .contains("'repository:tok/mirror:pull,push', 'repository:tok/fixture:pull'")
            && l.ends_with("authorized=True")),
        "{tokens}"
    );

    // A mount source this login may no longer read: skipped with a warning, uploaded instead.
    std::fs::write(d.path().join("deny"), "tok/fixture\n").unwrap();
    let (third, log) = captured(|| {
        publish_with(
            &job,
            &format!("{host}/tok/third"),
            &options(vec![right.clone()]),
        )
    });
    let third = third.unwrap();
    seen.push_str(&log);
    assert!(
        log.contains("not mounting") && !log.contains("mounted from"),
        "{log}"
    );
    assert!(requests(&registry, "PATCH").len() > patches);
    assert_eq!(
        third.created["artifact_digest"],
        first.created["artifact_digest"]
    );

    assert!(!seen.contains(PASSWORD), "{seen}");
    assert!(!tokens.contains(PASSWORD));
}
