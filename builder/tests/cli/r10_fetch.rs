//! Issue 10 item 5: `fetch` never goes silent. Against mirrors made here on 127.0.0.1 (one
//! that accepts and never answers, one that refuses, one that is busy, cuts a body short and
//! serves a torn file once): every failed attempt is logged with its number, URL and reason as
//! it happens, an artifact is bounded by `--deadline` (named in the final error), and every
//! download shows progress lines when stderr is not a terminal. The only time bound is a
//! generous hang guard.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::fetch::{BASE_URL, K8S, bytes, sha256, static_images, upstream, write_spec};
use super::nodeimg;
use fixtures::mirror_server::Server;

/// Far above what any case here needs (the slowest takes about 5 s): a hang guard only.
const HANG_GUARD: Duration = Duration::from_secs(180);

/// Runs `nodeimg fetch SPEC --mirror MIRROR --cache CACHE EXTRA…` with stderr in a file (not a
/// terminal); kills it if it outlives the hang guard. Returns the exit status and stderr.
fn fetch_guarded(spec: &Path, mirror: &str, cache: &Path, extra: &[&str]) -> (ExitStatus, String) {
    let dir = spec.parent().unwrap();
    let err_path = dir.join("stderr.txt");
    let mut child = nodeimg()
        .env("NODEIMG_LOG", "warn")
        .arg("fetch")
        .arg(spec)
        .args(["--mirror", mirror, "--cache"])
        .arg(cache)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > HANG_GUARD {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "nodeimg fetch still running after {HANG_GUARD:?}: {}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    (status, std::fs::read_to_string(&err_path).unwrap())
}

/// A mirror that accepts every connection and never says a word (the connections are kept
/// open until the test process ends).
fn silent_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held: Vec<TcpStream> = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
        }
    });
    url
}

/// A mirror that answers every request with 200 and a 1000-byte `Content-Length`, then sends
/// one byte every 300 ms: never idle for long, never done in time.
fn trickling_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut conn = conn;
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let head = "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nConnection: close\r\n\r\n";
                if conn.write_all(head.as_bytes()).is_err() {
                    return;
                }
                for _ in 0..1000 {
                    std::thread::sleep(Duration::from_millis(300));
                    if conn.write_all(b"x").and_then(|()| conn.flush()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    url
}

/// Lines of `stderr` that report a failed attempt.
fn retry_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| l.contains(" failed: ") && l.contains("attempt "))
        .collect()
}

fn assert_nothing_left(dir: &Path, cache: &Path) {
    assert!(!dir.join("node.lock").exists(), "a lock was written");
    let partial = cache.join("partial");
    let left: Vec<_> = std::fs::read_dir(&partial)
        .map(|r| r.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in {}: {left:?}", partial.display());
}

#[test]
fn a_mirror_that_never_answers_logs_every_retry_and_fails_naming_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &format!("url = \"{BASE_URL}\""),
        &"a".repeat(64),
    );
    let cache = dir.path().join("cache");
    let mirror = silent_mirror();
    let (status, stderr) = fetch_guarded(
        &spec,
        &mirror,
        &cache,
        &["--timeout", "1s", "--deadline", "5s"],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    // The base image's checksum file is the first request.
    let sums = format!(
        "{mirror}/{}/SHA512SUMS",
        BASE_URL
            .split_once("://")
            .unwrap()
            .1
            .rsplit_once('/')
            .unwrap()
            .0
    );
    let retries = retry_lines(&stderr);
    for n in [1, 2] {
        let want =
            format!("{sums}: attempt {n} of 5 failed: timeout: no response within 1s (--timeout)");
        assert!(
            retries.iter().any(|l| l.contains(&want)),
            "no line `{want}` in:\n{stderr}"
        );
    }
    let last = stderr.lines().last().unwrap_or("");
    assert!(
        last.starts_with("error: fetching base-image: ")
            && last.contains(&format!(
                "{sums}: the deadline of 5s for this artifact passed (raise it with --deadline)"
            )),
        "{stderr}"
    );
    // Each failed attempt was logged before the final error, not with it.
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
    assert_nothing_left(dir.path(), &cache);

    // A mirror that refuses connections: the same, with the reason said.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("http://127.0.0.1:{port}");
    let (status, stderr) = fetch_guarded(
        &spec,
        &refused,
        &cache,
        &["--timeout", "1s", "--deadline", "3s"],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    let retries = retry_lines(&stderr);
    assert!(
        retries.len() >= 2
            && retries
                .iter()
                .all(|l| l.contains(&refused) && l.contains("failed: connection refused")),
        "{stderr}"
    );
    assert!(
        stderr.contains("the deadline of 3s for this artifact passed"),
        "{stderr}"
    );
    assert_nothing_left(dir.path(), &cache);
}

#[test]
fn a_mirror_that_trickles_is_stopped_by_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &format!("url = \"{BASE_URL}\""),
        &"a".repeat(64),
    );
    let cache = dir.path().join("cache");
    let mirror = trickling_mirror();
    let (status, stderr) = fetch_guarded(
        &spec,
        &mirror,
        &cache,
        &["--timeout", "2s", "--deadline", "3s"],
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    // Bytes kept coming (no per-read timeout), so only the deadline ended the attempt.
    let retries = retry_lines(&stderr);
    assert!(
        retries.len() == 1
            && retries[0].contains("attempt 1 of 5 failed: timeout: the deadline passed after ")
            && retries[0].contains(" of 1000 bytes"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the deadline of 3s for this artifact passed (raise it with --deadline) after 1 attempts"),
        "{stderr}"
    );
    assert_nothing_left(dir.path(), &cache);
}

#[test]
fn bad_timeouts_are_usage_errors_naming_the_option() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(
        dir.path(),
        &format!("url = \"{BASE_URL}\""),
        &"a".repeat(64),
    );
    for (option, value, why) in [
        ("--timeout", "0", "must be more than zero"),
        (
            "--timeout",
            "1.5s",
            "is not a duration such as 90s, 5m or 2h",
        ),
        ("--deadline", "5d", "is not a duration"),
        ("--deadline", "200h", "at most 168h"),
        ("--deadline", "-1", "is not a duration"),
    ] {
        let o = nodeimg()
            .arg("fetch")
            .arg(&spec)
            .args(["--cache"])
            .arg(dir.path().join("c"))
            .arg(format!("{option}={value}"))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{option} {value}: {stderr}");
        assert!(
            stderr.contains(&format!(
                "invalid value '{value}' for '{option} <DURATION>'"
            )) && stderr.contains(why),
            "{option} {value}: {stderr}"
        );
    }
    assert!(!dir.path().join("c").exists());
}

#[test]
fn a_busy_mirror_is_retried_with_each_retry_logged_and_every_download_shows_progress() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let base_sha = upstream(&root);
    let blob = static_images(&root);
    let server = Server::start(&root, None).unwrap();
    let base_path = format!("/{}", BASE_URL.split_once("://").unwrap().1);
    server.fail(&base_path, 503, 2);
    let spec = write_spec(dir.path(), &format!("url = \"{BASE_URL}\""), &base_sha);
    let cache = dir.path().join("cache");
    let (status, stderr) = fetch_guarded(&spec, &server.url, &cache, &[]);
    assert!(status.success(), "{stderr}");
    let base_url = format!("{}{base_path}", server.url);
    let retries = retry_lines(&stderr);
    assert_eq!(retries.len(), 2, "{stderr}");
    for (line, want) in retries.iter().zip([
        format!("{base_url}: attempt 1 of 5 failed: HTTP 503; retrying in 500ms"),
        format!("{base_url}: attempt 2 of 5 failed: HTTP 503; retrying in 1s"),
    ]) {
        assert!(line.contains("WARN") && line.ends_with(&want), "{line}");
    }
    assert!(dir.path().join("node.lock").exists());

    // Progress: every download has a line with its size (and total) and rate, the base
    // image, a registry manifest and a blob among them.
    for (url, size) in [
        (base_url.clone(), "3.0 MiB of 3.0 MiB (100%)".to_owned()),
        (
            format!("{}{blob}", server.url),
            "68.3 KiB of 68.3 KiB (100%)".to_owned(),
        ),
        (
            format!("{}/v2/pause/manifests/3.9", server.url),
            "B (100%)".to_owned(),
        ),
    ] {
        let line = stderr
            .lines()
            .find(|l| l.starts_with(&format!("download {url}: ")))
            .unwrap_or_else(|| panic!("no progress line for {url}:\n{stderr}"));
        assert!(
            line.contains(&size) && line.contains(" s, ") && line.ends_with("/s"),
            "{line}"
        );
    }
    let downloads = stderr
        .lines()
        .filter(|l| l.starts_with("download "))
        .count();
    // 11 files, 8 checksum files, 7 images with a manifest and two blobs each.
    assert!(downloads >= 11 + 8 + 7 * 3, "{downloads}:\n{stderr}");
    assert!(
        !stderr.contains('\r') && !stderr.contains("\u{1b}[?25l"),
        "a bar was drawn without a terminal:\n{stderr}"
    );
}

#[test]
fn a_cut_body_and_a_torn_file_are_retried_with_their_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("mirror");
    let base_sha = upstream(&root);
    static_images(&root);
    let server = Server::start(&root, None).unwrap();
    let kubeadm = format!("/dl.k8s.io/release/{K8S}/bin/linux/amd64/kubeadm");
    let kubelet = format!("/dl.k8s.io/release/{K8S}/bin/linux/amd64/kubelet");
    server.cut_once(&kubeadm);
    server.flip_once(&kubelet);
    let spec = write_spec(dir.path(), &format!("url = \"{BASE_URL}\""), &base_sha);
    let cache = dir.path().join("cache");
    let (status, stderr) = fetch_guarded(&spec, &server.url, &cache, &[]);
    assert!(status.success(), "{stderr}");
    let retries = retry_lines(&stderr);
    assert_eq!(retries.len(), 2, "{stderr}");
    let cut = format!(
        "{}{kubeadm}: attempt 1 of 5 failed: short read: the body broke off after 100000 of 200000 bytes",
        server.url
    );
    assert!(retries.iter().any(|l| l.contains(&cut)), "{stderr}");
    let torn = format!(
        "{}{kubelet}: attempt 1 of 2 failed: sha256 mismatch: expected {}",
        server.url,
        sha256(&bytes(11, 200_000))
    );
    assert!(retries.iter().any(|l| l.contains(&torn)), "{stderr}");
    let lock = inputs::lock::load(&dir.path().join("node.lock")).unwrap();
    let kubelet_entry = lock.artifacts.iter().find(|a| a.name == "kubelet").unwrap();
    assert_eq!(kubelet_entry.sha256, sha256(&bytes(11, 200_000)));
}
