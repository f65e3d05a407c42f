//! An upload interrupted mid-way: a forwarding proxy in front of fake-gcs-server (which
//! points its upload `Location` at the proxy) drops the connection on the second chunk,
//! without answering. The publisher asks the session how much it holds; fake-gcs-server
//! finalizes the object short at that point (real Cloud Storage answers `308` with the range
//! instead), which the publisher sees and starts over in a new session. The object then holds
//! the whole tarball, read back before the image is made.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use publishers::Source;
use publishers::gcp::object_name;

use super::{BUCKET, PROJECT, publish, service_account_key, settings};
use fixtures::emulators::{ComputeServer, FakeGcs, Faults};

#[derive(Default)]
struct Seen {
    /// `METHOD Content-Range → status` of each request.
    lines: Vec<String>,
    chunk_puts: usize,
    /// Requests that carried an `Authorization` header.
    authorized: usize,
}

/// Forwards every request to `upstream`, except the `break_at`-th chunk `PUT`, whose
/// connection it closes unanswered.
fn start_proxy(listener: TcpListener, upstream: String, break_at: usize) -> Arc<Mutex<Seen>> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let shared = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let (shared, upstream) = (shared.clone(), upstream.clone());
            std::thread::spawn(move || forward(stream, &upstream, &shared, break_at));
        }
    });
    seen
}

fn forward(stream: TcpStream, upstream: &str, seen: &Mutex<Seen>, break_at: usize) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .max_redirects_will_error(false)
        .build()
        .into();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_owned(), target.to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let range = headers.get("content-range").cloned().unwrap_or_default();
        if headers.contains_key("authorization") {
            seen.lock().unwrap().authorized += 1;
        }
        if method == "PUT" && !body.is_empty() {
            let mut s = seen.lock().unwrap();
            s.chunk_puts += 1;
            if s.chunk_puts == break_at {
                s.lines.push(format!("{method} {range} → dropped"));
                return;
            }
        }
        let mut req = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(format!("{upstream}{target}"));
        for (k, v) in &headers {
            if !matches!(k.as_str(), "content-length" | "connection") {
                req = req.header(k, v);
            }
        }
        let mut resp = agent.run(req.body(body).unwrap()).unwrap();
        let status = resp.status().as_u16();
        seen.lock()
            .unwrap()
            .lines
            .push(format!("{method} {range} → {status}"));
        let mut out = format!("HTTP/1.1 {status} X\r\n");
        for name in ["location", "range", "content-type"] {
            if let Some(v) = resp.headers().get(name) {
                out.push_str(&format!("{name}: {}\r\n", v.to_str().unwrap()));
            }
        }
        let data = resp
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_vec()
            .unwrap();
        out.push_str(&format!("content-length: {}\r\n\r\n", data.len()));
        let mut w = stream.try_clone().unwrap();
        if w.write_all(out.as_bytes()).is_err() || w.write_all(&data).is_err() {
            return;
        }
    }
}

#[test]
fn an_interrupted_upload_starts_over_cleanly_and_the_object_is_whole() {
    let d = tempfile::tempdir().unwrap();
    let proxy = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_port = proxy.local_addr().unwrap().port();
    let Some(gcs) =
        FakeGcs::start(d.path(), Some(&format!("http://127.0.0.1:{proxy_port}"))).unwrap()
    else {
        return;
    };
    let seen = start_proxy(proxy, gcs.emulator.url(), 2);
    gcs.create_bucket(BUCKET, PROJECT).unwrap();
    let out = crate::common::fixture_output(d.path());
    let source = Source::open(&out).unwrap();
    let (key, _) = service_account_key(d.path(), Some(PROJECT));
    let compute = ComputeServer::start(Faults::default());
    let s = settings(
        Some(&format!("127.0.0.1:{proxy_port}")),
        &compute.endpoint(),
        &key,
    );

    let (got, log) = publish(&source, None, &s);
    let record = got.unwrap();
    assert!(!record.reused);
    let lines = seen.lock().unwrap().lines.clone();
    eprintln!("through the proxy: {lines:#?}");
    assert!(lines.iter().any(|l| l.ends_with("→ dropped")), "{lines:#?}");
    assert!(
        log.contains("starting the upload over in a new session (1 of 2)"),
        "{log}"
    );
    assert!(log.contains("storage.objects.insert"), "{log}");
    // The emulator is called without credentials, as Google's clients do.
    assert_eq!(seen.lock().unwrap().authorized, 0);
    // Two sessions were started.
    let sessions = lines.iter().filter(|l| l.starts_with("POST")).count();
    assert_eq!(sessions, 2, "{lines:#?}");

    // The object, straight from the emulator: the whole tarball.
    let object = object_name(&source.manifest.name, source.content_short());
    let held = ureq::get(&format!(
        "{}/download/storage/v1/b/{BUCKET}/o/{object}",
        gcs.url()
    ))
    .call()
    .unwrap()
    .body_mut()
    .with_config()
    .limit(1 << 30)
    .read_to_vec()
    .unwrap();
    let (tar_path, _) = source.disk("gcp", exporters::Format::Gce).unwrap();
    assert!(
        held == std::fs::read(&tar_path).unwrap(),
        "the object differs"
    );
    assert_eq!(compute.count("POST"), 1);
}
