//! `nodeimg scan`: BOM and feed files written here, the real binary, its table, JSON and exit
//! codes.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::{Value, json};

use super::{nodeimg, out_str};

/// A BOM with the given (source, source version) packages and (component, version) pairs.
pub(super) fn bom(dir: &Path, packages: &[(&str, &str)], components: &[(&str, &str)]) -> PathBuf {
    let packages: Vec<Value> = packages
        .iter()
        .map(|(source, version)| {
            json!({"name": format!("{source}-bin"), "version": version, "architecture": "amd64",
                   "source": source, "source_version": version, "held": false})
        })
        .collect();
    let components: Vec<Value> = components
        .iter()
        .map(|(name, version)| {
            json!({"name": name, "version": version, "path": format!("/usr/bin/{name}"),
                   "sha256": "d".repeat(64), "source": "https://example.invalid/"})
        })
        .collect();
    let bom = json!({
        "format": "nodeimg-bom", "version": 1,
        "inputs": {"image": "t", "distro": "debian-12", "nodeimg_version": "0.1.0",
                   "spec_sha256": "a", "lock_sha256": "b", "base_image_sha256": "c"},
        "os": {"os_release": {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"},
               "kernel_release": "6.1.0-28-cloud-amd64", "kernel_cmdline": "ro"},
        "packages": packages, "components": components, "images": [],
        "config": {"sysctls": {}, "modules": {}, "containerd": {}}
    });
    let out = dir.join("out");
    std::fs::create_dir_all(&out).unwrap();
    let path = out.join("bom.json");
    std::fs::write(&path, serde_json::to_string_pretty(&bom).unwrap()).unwrap();
    path
}

fn resolved(fixed: &str, urgency: &str) -> Value {
    json!({"description": "d", "scope": "local", "releases": {
        "bookworm": {"status": "resolved", "fixed_version": fixed, "urgency": urgency,
                     "repositories": {"bookworm": fixed}},
        "trixie": {"status": "open", "urgency": "high", "repositories": {}}}})
}

/// A tracker export: openssl has a medium issue fixed later, bash one fixed already, `tilde`
/// an rc installed with the release as the fix, `epoch` an epoch over the fix, zlib an open one.
fn tracker(dir: &Path) -> PathBuf {
    let feed = json!({
        "openssl": {"CVE-2024-0001": resolved("3.0.15-1~deb12u1", "medium")},
        "bash": {"CVE-2022-3715": resolved("5.2.15-2", "low")},
        "tilde": {"CVE-2024-0002": resolved("1.0-1", "high")},
        "epoch": {"CVE-2024-0003": resolved("2.0-1", "high")},
        "zlib": {"CVE-2023-45853": {"releases": {"bookworm": {
            "status": "open", "urgency": "unimportant", "repositories": {}}}}},
    });
    let path = dir.join("tracker.json");
    std::fs::write(&path, serde_json::to_string(&feed).unwrap()).unwrap();
    path
}

fn standard_bom(dir: &Path) -> PathBuf {
    bom(
        dir,
        &[
            ("openssl", "3.0.14-1~deb12u2"),
            ("bash", "5.2.15-2"),
            ("tilde", "1.0~rc1-1"),
            ("epoch", "1:1.0-1"),
            ("zlib", "1:1.2.13.dfsg-1"),
        ],
        &[("runc", "v1.1.9"), ("kubelet", "v1.28.3")],
    )
}

pub(super) fn scan(bom: &Path, feeds: &[&Path], extra: &[&str]) -> Output {
    let mut cmd = nodeimg();
    cmd.arg("scan").arg(bom);
    for f in feeds {
        cmd.arg("--feed").arg(f);
    }
    cmd.args(extra).output().unwrap()
}

#[test]
fn scan_lists_tracker_findings_with_severity_and_fixed_version() {
    let dir = tempfile::tempdir().unwrap();
    let bom = standard_bom(dir.path());
    let feed = tracker(dir.path());
    // The output directory works as well as the file.
    let o = scan(bom.parent().unwrap(), &[&feed], &[]);
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let row = |id: &str| {
        stdout
            .lines()
            .find(|l| l.contains(id))
            .unwrap_or_else(|| panic!("{id} not listed:\n{stdout}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        stdout.contains("package openssl 3.0.14-1~deb12u2"),
        "{stdout}"
    );
    assert_eq!(
        row("CVE-2024-0001"),
        format!(
            "CVE-2024-0001 medium 3.0.14-1~deb12u2 3.0.15-1~deb12u1 {}",
            feed.display()
        )
    );
    assert!(
        row("CVE-2024-0002").contains("high 1.0~rc1-1 1.0-1"),
        "1.0~rc1 < 1.0"
    );
    assert!(row("CVE-2023-45853").contains("unimportant 1:1.2.13.dfsg-1 no fix yet"));
    assert!(
        !stdout.contains("CVE-2022-3715"),
        "bash is fixed:\n{stdout}"
    );
    assert!(!stdout.contains("CVE-2024-0003"), "1:1.0 > 2.0:\n{stdout}");
    assert!(
        stdout.contains("summary: 3 findings in 3 packages/components (1 high, 1 medium, 1 unimportant; 1 without a fix)"),
        "{stdout}"
    );
}

#[test]
fn fail_on_sets_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let bom = standard_bom(dir.path());
    let feed = tracker(dir.path());
    for (level, code) in [("critical", 0), ("high", 1), ("medium", 1), ("unknown", 1)] {
        let o = scan(&bom, &[&feed], &["--fail-on", level]);
        let (stdout, stderr) = out_str(&o);
        assert_eq!(
            o.status.code(),
            Some(code),
            "--fail-on {level}: {stdout}\n{stderr}"
        );
        assert!(
            stdout.contains(&format!("at or above --fail-on {level}")),
            "{stdout}"
        );
    }
    let o = scan(&bom, &[&feed], &["--fail-on", "severe"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown level is a usage error"
    );
}

#[test]
fn osv_records_match_components_and_json_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let bom = standard_bom(dir.path());
    let osv = json!({"vulns": [
        {"id": "GHSA-runc-1", "aliases": ["CVE-2024-21626"],
         "database_specific": {"severity": "HIGH"},
         "affected": [{"package": {"ecosystem": "Go", "name": "github.com/opencontainers/runc"},
                       "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0.0-rc93"}, {"fixed": "1.1.12"}]}]}]},
        {"id": "GHSA-k8s-1",
         "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
         "affected": [{"package": {"ecosystem": "Go", "name": "k8s.io/kubernetes"},
                       "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.28.0"}, {"fixed": "1.28.3"}]}]}]}
    ]});
    let feed = dir.path().join("osv.json");
    std::fs::write(&feed, serde_json::to_string(&osv).unwrap()).unwrap();
    let o = scan(&bom, &[&feed], &["--json", "--fail-on", "critical"]);
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let j: Value = serde_json::from_str(&stdout).expect("one JSON document");
    assert_eq!(j["format"], "nodeimg-scan");
    assert_eq!(j["feeds"][0]["kind"], "osv");
    assert_eq!(
        j["findings"],
        json!([{"kind": "component", "name": "runc", "installed": "v1.1.9", "id": "GHSA-runc-1",
                "severity": "high", "state": "fixed", "fixed_version": "1.1.12",
                "feed": feed.display().to_string()}]),
        "kubelet v1.28.3 is the fixed version"
    );
    assert_eq!(j["summary"]["failing"], 0, "{stdout}");
    assert_eq!(j["summary"]["by_severity"]["high"], 1, "{stdout}");
    let again = scan(&bom, &[&feed], &["--json", "--fail-on", "critical"]);
    assert_eq!(again.stdout, o.stdout, "the JSON is stable");
    let o = scan(&bom, &[&feed], &["--fail-on", "high"]);
    assert_eq!(o.status.code(), Some(1), "{}", out_str(&o).0);
}

#[test]
fn bad_feeds_are_one_error_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let bom = standard_bom(dir.path());
    let full = serde_json::to_string(&json!({"bash": {"CVE-1": resolved("1", "low")}})).unwrap();
    for (name, text, want) in [
        ("truncated.json", &full[..full.len() / 2], "truncated JSON"),
        ("html.json", "<html></html>", "not JSON"),
        (
            "schema.json",
            r#"{"bash": {"CVE-1": {"status": "open"}}}"#,
            "`bash`.`CVE-1`: no `releases` key",
        ),
        ("number.json", "3", "unknown feed kind"),
        (
            "osv.json",
            r#"{"id": "GHSA-1", "affected": [{"package": {"name": "x"}}]}"#,
            "no `ecosystem` key",
        ),
    ] {
        let feed = dir.path().join(name);
        std::fs::write(&feed, text).unwrap();
        let o = scan(&bom, &[&feed], &[]);
        let (stdout, stderr) = out_str(&o);
        assert_eq!(o.status.code(), Some(2), "{name}: {stderr}");
        assert!(stdout.is_empty(), "{name}: {stdout}");
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
        assert!(
            stderr.starts_with(&format!("error: {}: ", feed.display())) && stderr.contains(want),
            "{name}: want {want}: {stderr}"
        );
    }
    let o = scan(
        &dir.path().join("absent.json"),
        &[&dir.path().join("truncated.json")],
        &[],
    );
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr.starts_with("error: ") && stderr.contains("absent.json"),
        "{stderr}"
    );
    std::fs::write(&bom, "{\"format\": \"nodeimg-bom\"").unwrap();
    let o = scan(&bom, &[&dir.path().join("html.json")], &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out_str(&o).1.contains("bom.json: truncated JSON"),
        "{}",
        out_str(&o).1
    );
}
