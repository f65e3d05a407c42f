//! `--to azure:CONTAINER` against Azurite (the Azure Storage emulator): the fixture's VHD
//! published as a page blob by SAS, then read back independently (a plain Get Blob of the
//! whole blob compared byte for byte with the VHD, Get Page Ranges against the VHD's non-zero
//! pages, the metadata by Get Blob Properties); published again (reused, ETag unchanged);
//! published over an interrupted upload (started over); and the bad inputs: a wrong SAS, a
//! read-only SAS, no credentials, an unreachable endpoint. The SAS's signature is searched for
//! in every record, error and log line.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use fixtures::emulators::azurite::ACCOUNT;
use fixtures::emulators::{Azurite, free_port};
use publishers::azure::{self, credentials};
use publishers::{Error, Job, Published, Source};

const CONTAINER: &str = "images";

fn azurite(dir: &Path) -> Option<Azurite> {
    Azurite::start(dir).unwrap()
}

fn account_sas(sp: &str) -> String {
    fixtures::emulators::azurite_account_sas(sp)
}

/// The signature of `sas`, as sent and decoded.
fn signature(sas: &str) -> [String; 2] {
    let sig = sas
        .split('&')
        .find_map(|p| p.strip_prefix("sig="))
        .unwrap()
        .to_owned();
    let decoded = sig
        .replace("%2B", "+")
        .replace("%2F", "/")
        .replace("%3D", "=");
    [sig, decoded]
}

fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> + use<> {
    let m: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect();
    move |k| m.get(k).cloned()
}

fn connection_string(endpoint: &str, sas: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            credentials::CONNECTION_STRING,
            format!("BlobEndpoint={endpoint};SharedAccessSignature={sas}"),
        ),
        (publishers::retry::FIRST_DELAY_ENV, "20".into()),
    ]
}

use crate::common::captured as logged;

/// A plain request to the emulator with the SAS (not through the publisher's code).
fn raw(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> ureq::http::Response<ureq::Body> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut req = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-ms-version", "2021-08-06");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    agent.run(req.body(body.to_vec()).unwrap()).unwrap()
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The VHD's non-zero 512-byte pages as merged `[start, end)` ranges, computed from the file.
fn nonzero_pages(vhd: &Path) -> Vec<(u64, u64)> {
    let mut f = std::fs::File::open(vhd).unwrap();
    let mut buf = vec![0u8; 1 << 20];
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut at = 0u64;
    loop {
        let n = read_full(&mut f, &mut buf);
        if n == 0 {
            break;
        }
        for page in buf[..n].chunks(512) {
            if page.iter().any(|&b| b != 0) {
                match out.last_mut() {
                    Some(last) if last.1 == at => last.1 += page.len() as u64,
                    _ => out.push((at, at + page.len() as u64)),
                }
            }
            at += page.len() as u64;
        }
    }
    out
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> usize {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]).unwrap() {
            0 => break,
            k => n += k,
        }
    }
    n
}

/// Get Page Ranges by a plain request, merged.
fn listed_pages(url: &str) -> Vec<(u64, u64)> {
    let mut resp = raw("GET", &format!("{url}&comp=pagelist"), &[], b"");
    assert_eq!(resp.status().as_u16(), 200);
    let xml = resp.body_mut().read_to_string().unwrap();
    let mut out: Vec<(u64, u64)> = Vec::new();
    for part in xml.split("<PageRange>").skip(1) {
        let num = |tag: &str| -> u64 {
            let s = part.split(&format!("<{tag}>")).nth(1).unwrap();
            s.split('<').next().unwrap().parse().unwrap()
        };
        let (s, e) = (num("Start"), num("End") + 1);
        match out.last_mut() {
            Some(last) if last.1 == s => last.1 = e,
            _ => out.push((s, e)),
        }
    }
    out
}

/// The whole blob by one plain Get Blob, compared byte for byte with `vhd`.
fn assert_blob_is(url: &str, vhd: &Path) {
    let resp = raw("GET", url, &[], b"");
    assert_eq!(resp.status().as_u16(), 200);
    let len = std::fs::metadata(vhd).unwrap().len();
    assert_eq!(header(&resp, "content-length"), len.to_string());
    let mut blob = resp.into_body().into_with_config().limit(u64::MAX).reader();
    let mut file = std::fs::File::open(vhd).unwrap();
    let (mut a, mut b) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut at = 0u64;
    loop {
        let n = read_full(&mut file, &mut a);
        let m = read_full(&mut blob, &mut b);
        assert_eq!(n, m, "length differs at {at}");
        assert!(
            a[..n] == b[..m],
            "the blob differs from the VHD in the MiB at {at}"
        );
        if n == 0 {
            break;
        }
        at += n as u64;
    }
    assert_eq!(at, len);
}

fn fixture(dir: &Path) -> (PathBuf, Source) {
    let out = common_fixture(dir);
    let source = Source::open(&out).unwrap();
    (out, source)
}

fn common_fixture(dir: &Path) -> PathBuf {
    crate::common::fixture_output(dir)
}

fn assert_no_secret(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} holds the SAS signature: {text}"
        );
    }
}

#[test]
fn azure_page_blob_is_published_read_back_reused_and_restarted() {
    let d = tempfile::tempdir().unwrap();
    let Some(az) = azurite(d.path()) else { return };
    let (out, source) = fixture(d.path());
    let sas = account_sas("racwdl");
    let secrets: Vec<String> = [signature(&sas).to_vec(), vec![sas.clone()]].concat();
    let created = raw(
        "PUT",
        &format!("{}/{CONTAINER}?restype=container&{sas}", az.endpoint),
        &[],
        b"",
    );
    assert_eq!(created.status().as_u16(), 201, "creating the container");
    let vhd = out.join(format!("{}.vhd", crate::common::NAME));
    let job = Job {
        source: &source,
        stage: Some("dev"),
    };
    let vars = connection_string(&az.endpoint, &sas);

    // First publish.
    let (published, log) = logged(|| azure::publish_with_env(&job, CONTAINER, env(&vars)));
    let published: Published = published.unwrap();
    assert!(!published.reused);
    assert_eq!(published.target, format!("azure:{CONTAINER}"));
    assert_eq!(published.stage.as_deref(), Some("dev"));
    let blob = format!("{}-{}-dev.vhd", crate::common::NAME, source.content_short());
    let blob_url = format!("{}/{CONTAINER}/{blob}", az.endpoint);
    assert_eq!(published.created["blob_url"], blob_url);
    assert_eq!(published.created["blob"], blob);
    assert_eq!(published.created["container"], CONTAINER);
    let size = std::fs::metadata(&vhd).unwrap().len();
    assert_eq!(published.created["size"], size.to_string());
    assert!(log.contains("Put Page wrote"), "{log}");
    let record = serde_json::to_string_pretty(&published).unwrap();
    eprintln!("first publish:\n{log}{record}");
    assert_no_secret("the record", &record, &secrets);
    assert_no_secret("the log", &log, &secrets);
    assert!(
        published
            .next_steps
            .iter()
            .any(|s| s.contains("az disk create")
                && s.contains("--hyper-v-generation V2")
                && s.contains(&blob_url)),
        "{:?}",
        published.next_steps
    );
    assert!(
        published
            .next_steps
            .iter()
            .any(|s| s.contains("az sig image-version create")
                && s.contains(&format!("--os-vhd-uri {blob_url}"))),
        "{:?}",
        published.next_steps
    );
    assert_no_secret("the next steps", &published.next_steps.join("\n"), &secrets);

    // What Azurite holds, read independently.
    let sas_url = format!("{blob_url}?{sas}");
    assert_blob_is(&sas_url, &vhd);
    let want = nonzero_pages(&vhd);
    let listed = listed_pages(&sas_url);
    assert_eq!(listed, want, "the page ranges are the VHD's non-zero pages");
    let stored: u64 = listed.iter().map(|(s, e)| e - s).sum();
    assert!(
        stored < size / 10,
        "sparse: {stored} of {size} bytes in pages"
    );
    assert_eq!(listed.last().unwrap().1, size, "the footer is a page");
    let head = raw("HEAD", &sas_url, &[], b"");
    assert_eq!(header(&head, "x-ms-blob-type"), "PageBlob");
    assert_eq!(header(&head, "x-ms-meta-nodeimg_complete"), "true");
    assert_eq!(
        header(&head, "x-ms-meta-nodeimg_content_sha256"),
        source.content_sha256()
    );
    assert_eq!(header(&head, "x-ms-meta-nodeimg_stage"), "dev");
    assert_eq!(
        header(&head, "x-ms-meta-nodeimg_kubeadm"),
        crate::common::KUBERNETES_VERSION
    );
    assert_eq!(header(&head, "x-ms-meta-nodeimg_os"), "debian-12");
    let (_, vhd_artifact) = source.disk("azure", exporters::Format::Vhd).unwrap();
    assert_eq!(
        header(&head, "x-ms-meta-nodeimg_vhd_sha256"),
        vhd_artifact.sha256
    );
    let etag = header(&head, "etag");

    // Second publish: found, nothing sent.
    let (again, log) = logged(|| azure::publish_with_env(&job, CONTAINER, env(&vars)));
    let again = again.unwrap();
    eprintln!("second publish:\n{log}");
    assert!(again.reused, "{log}");
    assert_eq!(again.created, published.created);
    assert!(!log.contains("Put Page"), "{log}");
    let head = raw("HEAD", &sas_url, &[], b"");
    assert_eq!(header(&head, "etag"), etag, "the blob was not touched");

    // Interrupted: an incomplete blob of the name with a stray page where the VHD has zeros.
    let stray = want
        .windows(2)
        .find(|w| w[1].0 - w[0].1 >= 512)
        .map(|w| w[0].1)
        .unwrap();
    let made = raw(
        "PUT",
        &sas_url,
        &[
            ("x-ms-blob-type", "PageBlob"),
            ("x-ms-blob-content-length", &size.to_string()),
            ("x-ms-meta-nodeimg_content_sha256", source.content_sha256()),
            ("x-ms-meta-nodeimg_stage", "dev"),
            ("x-ms-meta-nodeimg_complete", "false"),
        ],
        b"",
    );
    assert_eq!(made.status().as_u16(), 201);
    let range = format!("bytes={stray}-{}", stray + 511);
    let page = raw(
        "PUT",
        &format!("{sas_url}&comp=page"),
        &[("x-ms-page-write", "update"), ("x-ms-range", &range)],
        &[0xAA; 512],
    );
    assert_eq!(page.status().as_u16(), 201);
    let (third, log) = logged(|| azure::publish_with_env(&job, CONTAINER, env(&vars)));
    let third = third.unwrap();
    eprintln!("over an interrupted upload:\n{log}");
    assert!(!third.reused);
    assert!(log.contains("starting over"), "{log}");
    assert_blob_is(&sas_url, &vhd);
    assert_eq!(listed_pages(&sas_url), want, "no stray page is left");
    assert_no_secret("the log", &log, &secrets);

    // The read-back refuses a blob whose pages or bytes differ from what is expected.
    let access = credentials::Access::from_lookup(env(&vars)).unwrap();
    let client = azure::rest::BlobClient::new(
        &access,
        CONTAINER,
        &azure::rest::encode(&blob),
        publishers::retry::Policy::default(),
    );
    azure::pages::read_back(&client, size, &want, &vhd_artifact.sha256).unwrap();
    let e = azure::pages::read_back(&client, size, &want[1..], &vhd_artifact.sha256).unwrap_err();
    assert!(
        matches!(e, Error::ReadBack { .. }) && e.to_string().contains("page ranges"),
        "{e}"
    );
    let e = azure::pages::read_back(&client, size, &want, &"0".repeat(64)).unwrap_err();
    assert!(
        matches!(&e, Error::ReadBack { got, .. } if *got == vhd_artifact.sha256),
        "{e}"
    );
    assert_no_secret("the read-back error", &e.to_string(), &secrets);

    // A finished blob of the name with other content is not overwritten.
    let other = "f".repeat(64);
    let set = raw(
        "PUT",
        &format!("{sas_url}&comp=metadata"),
        &[
            ("x-ms-meta-nodeimg_content_sha256", other.as_str()),
            ("x-ms-meta-nodeimg_complete", "true"),
        ],
        b"",
    );
    assert_eq!(set.status().as_u16(), 200);
    let etag = header(&raw("HEAD", &sas_url, &[], b""), "etag");
    let e = azure::publish_with_env(&job, CONTAINER, env(&vars)).unwrap_err();
    assert!(
        matches!(&e, Error::Call { call, .. } if call == "Put Blob")
            && e.to_string().contains("other content"),
        "{e}"
    );
    assert_eq!(header(&raw("HEAD", &sas_url, &[], b""), "etag"), etag);
}

/// A server that answers every request `503 ServerBusy`, as a throttled storage account
/// does; returns its endpoint and how many requests it answered.
fn busy_server() -> (String, Arc<Mutex<u32>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(Mutex::new(0u32));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                match stream.read(&mut byte) {
                    Ok(1) => head.push(byte[0]),
                    _ => break,
                }
            }
            *seen.lock().unwrap() += 1;
            let _ = stream.write_all(
                b"HTTP/1.1 503 The server is busy.\r\nx-ms-error-code: ServerBusy\r\n\
                  Content-Length: 0\r\nConnection: close\r\n\r\n",
            );
        }
    });
    (format!("http://127.0.0.1:{port}/{ACCOUNT}"), count)
}

/// A TCP proxy to 127.0.0.1:`port` that answers the connections `fail` picks (by number,
/// from 1) `503 ServerBusy` and passes the others through; returns the endpoint through it.
fn flaky_proxy(port: u16, fail: fn(u32) -> bool) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let own = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut n = 0;
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { return };
            n += 1;
            if fail(n) {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match client.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let _ = client.write_all(
                    b"HTTP/1.1 503 The server is busy.\r\nx-ms-error-code: ServerBusy\r\n\
                      Content-Length: 0\r\nConnection: close\r\n\r\n",
                );
                continue;
            }
            let Ok(server) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
                return;
            };
            let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let (mut client, mut server) = (client, server);
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut c2, &mut s2);
                let _ = s2.shutdown(std::net::Shutdown::Write);
            });
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut server, &mut client);
                let _ = client.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    format!("http://127.0.0.1:{own}/{ACCOUNT}")
}

#[test]
fn azure_bad_credentials_and_endpoints_name_the_source_never_the_sas() {
    let d = tempfile::tempdir().unwrap();
    let Some(az) = azurite(d.path()) else { return };
    let (_out, source) = fixture(d.path());
    let good = account_sas("racwdl");
    let created = raw(
        "PUT",
        &format!("{}/{CONTAINER}?restype=container&{good}", az.endpoint),
        &[],
        b"",
    );
    assert_eq!(created.status().as_u16(), 201);
    let job = Job {
        source: &source,
        stage: None,
    };

    // No credentials: one error naming the variables, before anything is sent.
    let e = azure::publish_with_env(&job, CONTAINER, env(&[])).unwrap_err();
    assert!(matches!(e, Error::Credentials { .. }), "{e}");
    let text = e.to_string();
    eprintln!("no credentials: {text}");
    for var in [
        credentials::CONNECTION_STRING,
        credentials::ACCOUNT,
        credentials::SAS_TOKEN,
    ] {
        assert!(text.contains(var), "{text}");
    }

    // A container that does not exist: Put Blob names it.
    let e = azure::publish_with_env(
        &job,
        "no-such-container",
        env(&connection_string(&az.endpoint, &good)),
    )
    .unwrap_err();
    eprintln!("no container: {e}");
    assert!(
        matches!(&e, Error::Call { call, why } if call == "Put Blob" && why.contains("ContainerNotFound")),
        "{e}"
    );

    // A SAS with a wrong signature: refused at the first call, which is named with the
    // variable; the signature is nowhere.
    let wrong = good.replace(
        &signature(&good)[0],
        "SECRET-AZURE-sig-0123456789abcdefXYZ%3D",
    );
    let secrets = vec![
        "SECRET-AZURE-sig-0123456789abcdefXYZ".to_owned(),
        wrong.clone(),
    ];
    let (r, log) = logged(|| {
        azure::publish_with_env(
            &job,
            CONTAINER,
            env(&connection_string(&az.endpoint, &wrong)),
        )
    });
    let e = r.unwrap_err();
    let text = e.to_string();
    eprintln!("wrong SAS: {text}\n{log}");
    assert!(matches!(e, Error::Credentials { .. }), "{text}");
    assert!(
        text.contains("Get Blob Properties") && text.contains(credentials::CONNECTION_STRING),
        "{text}"
    );
    assert_no_secret("the error", &text, &secrets);
    assert_no_secret("the error's Debug", &format!("{e:?}"), &secrets);
    assert_no_secret("the log", &log, &secrets);

    // A read-only SAS through AZURE_STORAGE_ACCOUNT-style variables cannot reach Azurite
    // (that form means https://ACCOUNT.blob.core.windows.net), so the connection string
    // carries it: refused at Put Blob, named.
    let read_only = account_sas("rl");
    let (r, log) = logged(|| {
        azure::publish_with_env(
            &job,
            CONTAINER,
            env(&connection_string(&az.endpoint, &read_only)),
        )
    });
    let text = r.unwrap_err().to_string();
    eprintln!("read-only SAS: {text}\n{log}");
    assert!(
        text.contains("Put Blob") && text.contains(credentials::CONNECTION_STRING),
        "{text}"
    );
    let ro_secrets: Vec<String> = [signature(&read_only).to_vec(), vec![read_only]].concat();
    assert_no_secret("the error", &text, &ro_secrets);
    assert_no_secret("the log", &log, &ro_secrets);

    // An endpoint nothing listens on: bounded retries, each printed, then Error::Retries.
    let port = free_port().unwrap();
    let closed = format!("http://127.0.0.1:{port}/{ACCOUNT}");
    let (r, log) = logged(|| {
        azure::publish_with_env(&job, CONTAINER, env(&connection_string(&closed, &good)))
    });
    let e = r.unwrap_err();
    eprintln!("closed port: {e}\n{log}");
    assert!(
        matches!(&e, Error::Retries { call, attempts: 5, .. } if call == "Get Blob Properties"),
        "{e}"
    );
    assert!(e.to_string().contains("connection refused"), "{e}");
    let retries = log.lines().filter(|l| l.contains("retry ")).count();
    assert_eq!(retries, 4, "{log}");
    let good_secrets: Vec<String> = [signature(&good).to_vec(), vec![good.clone()]].concat();
    assert_no_secret("the error", &e.to_string(), &good_secrets);
    assert_no_secret("the log", &log, &good_secrets);

    // A busy service (503 ServerBusy on every call): bounded retries, each printed.
    let (busy, answered) = busy_server();
    let (r, log) =
        logged(|| azure::publish_with_env(&job, CONTAINER, env(&connection_string(&busy, &good))));
    let e = r.unwrap_err();
    eprintln!("busy: {e}\n{log}");
    assert!(matches!(&e, Error::Retries { attempts: 5, .. }), "{e}");
    assert!(e.to_string().contains("HTTP 503 ServerBusy"), "{e}");
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("ServerBusy") && l.contains("retry "))
            .count(),
        4,
        "{log}"
    );
    assert_eq!(*answered.lock().unwrap(), 5);
    assert_no_secret("the error", &e.to_string(), &good_secrets);
    assert_no_secret("the log", &log, &good_secrets);

    // Busy twice, then answering: the retries are printed and the publish completes.
    let port: u16 = az
        .endpoint
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let through = flaky_proxy(port, |n| n <= 2);
    let job = Job {
        source: &source,
        stage: Some("retried"),
    };
    let (r, log) = logged(|| {
        azure::publish_with_env(&job, CONTAINER, env(&connection_string(&through, &good)))
    });
    eprintln!("busy twice:\n{log}");
    let published = r.unwrap();
    assert!(!published.reused);
    assert_eq!(
        log.lines()
            .filter(|l| l.contains("ServerBusy") && l.contains("retry "))
            .count(),
        2,
        "{log}"
    );
    let blob = published.created["blob"].clone();
    let head = raw(
        "HEAD",
        &format!("{}/{CONTAINER}/{blob}?{good}", az.endpoint),
        &[],
        b"",
    );
    assert_eq!(header(&head, "x-ms-meta-nodeimg_complete"), "true");
    assert_no_secret("the log", &log, &good_secrets);

    // Busy on the 2nd and 3rd connections: the Put Page workers open them (Get Blob
    // Properties and Put Blob share the first); their retries are printed too.
    let through = flaky_proxy(port, |n| n == 2 || n == 3);
    let job = Job {
        source: &source,
        stage: Some("pages-retried"),
    };
    let (r, log) = logged(|| {
        azure::publish_with_env(&job, CONTAINER, env(&connection_string(&through, &good)))
    });
    eprintln!("busy during Put Page:\n{log}");
    assert!(!r.unwrap().reused);
    assert!(
        log.lines()
            .any(|l| l.contains("Put Page: HTTP 503 ServerBusy") && l.contains("retry 1 of 4")),
        "{log}"
    );
    assert_no_secret("the log", &log, &good_secrets);
}
