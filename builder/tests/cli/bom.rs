//! `nodeimg bom diff`: exit 0 when identical, 1 when different (grouped, readable, or JSON),
//! 2 with one `error:` line naming the file for a BOM that cannot be used.

use std::path::Path;

use serde_json::{Value, json};

use super::{nodeimg, out_str};

pub(super) fn bom() -> Value {
    json!({
        "format": "nodeimg-bom",
        "version": 1,
        "inputs": {
            "image": "img", "distro": "debian-12", "nodeimg_version": "0.1.0",
            "spec_sha256": "a".repeat(64), "lock_sha256": "b".repeat(64),
            "base_image_sha256": "c".repeat(64)
        },
        "os": {
            "os_release": {"ID": "debian", "VERSION_ID": "12"},
            "kernel_release": "6.1.0-28-cloud-amd64",
            "kernel_cmdline": "root=UUID=x ro"
        },
        "packages": [
            {"name": "bash", "version": "5.2.15-2+b7", "architecture": "amd64",
             "source": "bash", "source_version": "5.2.15-2", "held": false},
            {"name": "runc", "version": "1.1.5+ds1-1", "architecture": "amd64",
             "source": "runc", "source_version": "1.1.5+ds1-1", "held": true}
        ],
        "components": [
            {"name": "crictl", "version": "0.1.0-nodeimg-standin", "path": "/usr/local/bin/crictl",
             "sha256": "d".repeat(64), "source": "fixture"}
        ],
        "images": [{"reference": "k8s.gcr.io/pause:3.2", "digest": format!("sha256:{}", "e".repeat(64))}],
        "config": {
            "sysctls": {"net.ipv4.ip_forward": "1"},
            "modules": {"overlay": true},
            "containerd": {"SystemdCgroup": "true"}
        }
    })
}

pub(super) fn write(dir: &Path, name: &str, v: &Value) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_string_pretty(v).unwrap()).unwrap();
    p
}

#[test]
fn identical_boms_exit_0_and_a_build_directory_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &bom());
    let build = dir.path().join("build");
    std::fs::create_dir(&build).unwrap();
    write(&build, "bom.json", &bom());
    let o = nodeimg()
        .args(["bom", "diff"])
        .arg(&a)
        .arg(&build)
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("identical"), "{stdout}");
}

#[test]
fn a_bumped_component_is_exactly_the_change_reported() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &bom());
    let mut changed = bom();
    changed["components"][0]["version"] = json!("0.2.0-nodeimg-standin");
    changed["components"][0]["sha256"] = json!("f".repeat(64));
    changed["packages"].as_array_mut().unwrap().remove(0);
    let b = write(dir.path(), "b.json", &changed);
    let o = nodeimg()
        .args(["bom", "diff"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}{stderr}");
    assert!(
        stdout.contains("packages: 0 added, 1 removed, 0 changed"),
        "{stdout}"
    );
    assert!(stdout.contains("  - bash:amd64 5.2.15-2+b7"), "{stdout}");
    assert!(
        stdout.contains(
            "  ~ crictl /usr/local/bin/crictl version: 0.1.0-nodeimg-standin -> 0.2.0-nodeimg-standin"
        ),
        "{stdout}"
    );
    assert!(
        !stdout.contains("images:"),
        "images did not change: {stdout}"
    );
    let o = nodeimg()
        .args(["bom", "diff", "--json"])
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout).expect("stdout is JSON");
    assert_eq!(v["identical"], false);
    assert_eq!(v["components"]["changed"].as_array().unwrap().len(), 2);
    assert_eq!(v["images"]["changed"].as_array().unwrap().len(), 0);
}

#[test]
fn unusable_boms_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.json", &bom());
    let text = serde_json::to_string(&bom()).unwrap();
    let truncated = dir.path().join("truncated.json");
    std::fs::write(&truncated, &text[..text.len() / 2]).unwrap();
    let not_json = dir.path().join("notjson.json");
    std::fs::write(&not_json, "<html>").unwrap();
    let mut wrong = bom();
    wrong["packages"][0]["held"] = json!("yes");
    let wrong = write(dir.path(), "wrong.json", &wrong);
    let missing = dir.path().join("missing.json");
    let empty_dir = dir.path().join("emptydir");
    std::fs::create_dir(&empty_dir).unwrap();
    for (path, want) in [
        (&truncated, "truncated JSON"),
        (&not_json, "not JSON"),
        (&wrong, "wrong schema"),
        (&missing, "cannot read"),
        (&empty_dir.join("bom.json"), "cannot read"),
    ] {
        let arg = if path.ends_with("emptydir/bom.json") {
            &empty_dir
        } else {
            path
        };
        let o = nodeimg()
            .args(["bom", "diff"])
            .arg(&good)
            .arg(arg)
            .output()
            .unwrap();
        let (stdout, stderr) = out_str(&o);
        assert_eq!(o.status.code(), Some(2), "{}: {stderr}", path.display());
        assert!(stdout.is_empty(), "{stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(lines[0].contains(&path.display().to_string()), "{stderr}");
        assert!(lines[0].contains(want), "{want}: {stderr}");
    }
}
