//! `nodeimg fetch` of a spec with `[kubernetes] conformance` through the upstream-shaped
//! mirror made from real bits (`fixtures::upstream_mirror`): the test tarball and the source
//! at the spec's version, the test images derived from that source and pulled from the
//! mirror's registry under their upstream paths, the ones the mirror does not have reported.

use std::path::Path;
use std::process::Command;

use fixtures::upstream_mirror;
use inputs::cache::Cache;
use inputs::lock::Kind;

use super::{fetch, requests};
use crate::out_str;

fn sha256sum(path: &Path) -> String {
    let o = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(o.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&o.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

#[test]
fn fetch_with_conformance_locks_the_suite_source_and_test_images_from_the_mirror() {
    if !upstream_mirror::can_write_or_skip() {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let set = upstream_mirror::write(&d.path().join("mirror")).unwrap();
    let spec = upstream_mirror::write_spec_with(&set, d.path(), Some("quick")).unwrap();
    // The upstream spec resolves the node's packages from Debian's archive: not here.
    let mut text = std::fs::read_to_string(&spec).unwrap();
    text.push_str("\n[packages]\nfetch = false\n");
    std::fs::write(&spec, text).unwrap();
    let mirror = fixtures::mirror_server::serve(&set.dir).unwrap();
    let cache_dir = d.path().join("cache");
    let k8s = &set.versions.kubernetes;

    let o = fetch(&spec, &mirror.url, &cache_dir);
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    let lock_path = spec.with_extension("lock");
    let lock = inputs::lock::load(&lock_path).unwrap();
    lock.check_matches(&inputs::spec::load(&spec).unwrap())
        .unwrap();

    // The suite and the source, at the spec's version, from dl.k8s.io's paths.
    let suite = lock.of_kind(Kind::TestSuite).collect::<Vec<_>>();
    let [suite] = suite.as_slice() else {
        panic!("{suite:?}")
    };
    assert_eq!(suite.version.as_deref(), Some(k8s.as_str()));
    assert_eq!(
        suite.source,
        format!("https://dl.k8s.io/release/{k8s}/kubernetes-test-linux-amd64.tar.gz")
    );
    let source = lock.of_kind(Kind::TestSource).next().unwrap();
    assert_eq!(
        source.source,
        format!("https://dl.k8s.io/release/{k8s}/kubernetes-src.tar.gz")
    );
    assert_eq!(source.version.as_deref(), Some(k8s.as_str()));

    // One test image per made image, with its upstream reference; every other listed image
    // is named on stderr once and in the suite's note.
    let images = fixtures::node_e2e_images::images().unwrap();
    let mut locked: Vec<&str> = lock
        .of_kind(Kind::TestImage)
        .map(|a| a.image.as_deref().unwrap())
        .collect();
    locked.sort_unstable();
    let made: Vec<&str> = images.made.keys().map(String::as_str).collect();
    assert_eq!(locked, made);
    assert!(
        made.contains(&"docker.io/library/busybox:1.31.1"),
        "{made:?}"
    );
    for a in lock.of_kind(Kind::TestImage) {
        let reference = a.image.as_deref().unwrap();
        assert!(
            a.source.starts_with(&format!("{reference}@sha256:")),
            "{a:?}"
        );
    }
    let note = suite.note.as_deref().unwrap();
    assert!(
        note.contains(&format!("sha256 {}", source.sha256)),
        "{note}"
    );
    assert!(note.contains("getGPUDevicePluginImage()"), "{note}");
    assert!(!images.not_made.is_empty());
    for n in &images.not_made {
        let line = format!("not available: {}", n.reference);
        assert_eq!(stderr.matches(&line).count(), 1, "{line}: {stderr}");
        assert!(note.contains(&n.reference), "{}: {note}", n.reference);
    }

    // Every locked digest is that of the cached file, by an independent reader.
    let cache = Cache::new(&cache_dir);
    for a in &lock.artifacts {
        assert_eq!(sha256sum(&cache.path_of(&a.sha256)), a.sha256, "{}", a.name);
    }
    let lock_text = std::fs::read(&lock_path).unwrap();

    // Twice: nothing is requested at all, and the lock is the same.
    let before = mirror.server.seen().len();
    let o = fetch(&spec, &mirror.url, &cache_dir);
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stderr}");
    assert_eq!(requests(&mirror.server, before), Vec::<String>::new());
    assert!(stdout.contains("0 downloaded"), "{stdout}");
    assert_eq!(std::fs::read(&lock_path).unwrap(), lock_text);
    for n in &images.not_made {
        assert!(
            stderr.contains(&format!("not available: {}", n.reference)),
            "{stderr}"
        );
    }

    // A registry failing a test image (beyond the retries) fails fetch naming the image, and
    // no lock is written.
    std::fs::remove_file(&lock_path).unwrap();
    mirror
        .server
        .fail("/v2/library/busybox/manifests/1.29", 503, 10);
    let o = fetch(&spec, &mirror.url, &cache_dir);
    let (_, stderr) = out_str(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains("pulling the node conformance test image docker.io/library/busybox:1.29")
            && stderr.contains("HTTP 503"),
        "{stderr}"
    );
    assert!(!lock_path.exists(), "a lock was written");

    // A published checksum that does not match: fetch fails naming the URL and writes no lock.
    mirror
        .server
        .fail("/v2/library/busybox/manifests/1.29", 503, 0);
    let sums = set.dir.join(format!(
        "dl.k8s.io/release/{k8s}/kubernetes-test-linux-amd64.tar.gz.sha256"
    ));
    std::fs::write(&sums, format!("{}\n", "0".repeat(64))).unwrap();
    let o = fetch(&spec, &mirror.url, &cache_dir);
    let (_, stderr) = out_str(&o);
    assert!(!o.status.success());
    assert!(
        stderr.contains(&format!(
            "/dl.k8s.io/release/{k8s}/kubernetes-test-linux-amd64.tar.gz: sha256 mismatch: expected 0000"
        )),
        "{stderr}"
    );
    assert!(!lock_path.exists(), "a lock was written");
    assert!(
        !cache_dir.join("partial").read_dir().unwrap().any(|_| true),
        "parts left behind"
    );
}
