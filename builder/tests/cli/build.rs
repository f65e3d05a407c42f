//! `nodeimg build` refusing bad inputs before any VM starts: a broken spec, no lock, a lock
//! made for other pins, a missing or corrupt cache entry. Each is one error naming the file or
//! artifact and the command that fixes it, exit 1, and nothing written to the output.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::{listing, nodeimg, out_str};

pub(super) struct Fixture {
    pub(super) _dir: tempfile::TempDir,
    pub(super) spec: PathBuf,
    pub(super) lock: PathBuf,
    pub(super) cache: PathBuf,
    pub(super) out: PathBuf,
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn put(cache: &Path, data: &[u8]) -> String {
    let s = sha(data);
    let dir = cache.join("cas/sha256");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(&s), data).unwrap();
    s
}

/// A spec, a matching lock and a cache with every entry; the base image is a small raw file.
pub(super) fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let base = vec![0u8; 4096];
    let base_sha = put(&cache, &base);
    let spec = dir.path().join("node.toml");
    std::fs::write(
        &spec,
        format!(
            r#"[image]
name = "node"
distro = "debian-12"
firmware = "uefi"
disk_gib = 2

[base]
url = "https://example.invalid/base.raw"
sha256 = "{base_sha}"
format = "raw"

[kubernetes]
version = "v1.20.2"

[components]
containerd = "1.6.20"
runc = "1.1.5"
crictl = "0.1.0-nodeimg-standin"
cni_plugins = "1.1.1"
pause = "3.2"

[export]
formats = ["qcow2"]
"#
        ),
    )
    .unwrap();
    let mut lock = format!(
        "version = 1\n\n[[artifact]]\nname = \"base\"\nkind = \"base-image\"\nsource = \"test\"\nsize = {}\nsha256 = \"{base_sha}\"\n",
        base.len()
    );
    let bins = [
        ("kubeadm", "v1.20.2"),
        ("kubelet", "v1.20.2"),
        ("kubectl", "v1.20.2"),
        ("containerd", "1.6.20"),
        ("runc", "1.1.5"),
        ("crictl", "0.1.0-nodeimg-standin"),
        ("cni_plugins", "1.1.1"),
    ];
    for (name, version) in bins {
        let data = format!("{name} {version}\n");
        let s = put(&cache, data.as_bytes());
        lock.push_str(&format!(
            "\n[[artifact]]\nname = \"{}\"\nkind = \"binary\"\ncomponent = \"{name}\"\nversion = \"{version}\"\nsource = \"test\"\nsize = {}\nsha256 = \"{s}\"\ndest = \"/usr/bin/{name}\"\nmode = \"0755\"\n",
            name.replace('_', "-"),
            data.len()
        ));
    }
    let pause = b"pause image archive";
    let s = put(&cache, pause);
    lock.push_str(&format!(
        "\n[[artifact]]\nname = \"pause\"\nkind = \"image\"\ncomponent = \"pause\"\nversion = \"3.2\"\nsource = \"test\"\nsize = {}\nsha256 = \"{s}\"\nimage = \"k8s.gcr.io/pause:3.2\"\n",
        pause.len()
    ));
    let lock_path = dir.path().join("node.lock");
    std::fs::write(&lock_path, lock).unwrap();
    let out = dir.path().join("out");
    Fixture {
        spec,
        lock: lock_path,
        cache,
        out,
        _dir: dir,
    }
}

impl Fixture {
    /// `nodeimg build SPEC --out OUT --cache CACHE` of this fixture.
    pub(super) fn build_command(&self) -> std::process::Command {
        let mut cmd = nodeimg();
        cmd.arg("build")
            .arg(&self.spec)
            .arg("--out")
            .arg(&self.out)
            .arg("--cache")
            .arg(&self.cache);
        cmd
    }
}

/// Pins containerd 1.7.0 in `f`'s spec, which its lock (made for 1.6.20) does not match;
/// returns what the one error about it must say.
pub(super) fn pin_other_containerd(f: &Fixture) -> [&'static str; 4] {
    let text = std::fs::read_to_string(&f.spec).unwrap();
    std::fs::write(
        &f.spec,
        text.replace("containerd = \"1.6.20\"", "containerd = \"1.7.0\""),
    )
    .unwrap();
    [
        "node.lock",
        "containerd 1.6.20",
        "pins 1.7.0",
        "nodeimg fetch",
    ]
}

fn build(f: &Fixture) -> (bool, String) {
    let o = f.build_command().output().unwrap();
    let (_, stderr) = out_str(&o);
    assert!(o.status.code() == Some(1) || o.status.success(), "{o:?}");
    (o.status.success(), stderr)
}

fn refused(f: &Fixture, wants: &[&str]) {
    let (ok, stderr) = build(f);
    assert!(!ok, "the build should be refused");
    for w in wants {
        assert!(stderr.contains(w), "missing {w:?} in: {stderr}");
    }
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{stderr}"
    );
    assert!(listing(&f.out).is_empty(), "{:?}", listing(&f.out));
}

#[test]
fn build_refuses_a_broken_spec_naming_line_and_column() {
    let f = fixture();
    let text = std::fs::read_to_string(&f.spec).unwrap();
    std::fs::write(&f.spec, text.replace("disk_gib = 2", "disk_gib = \"2\"")).unwrap();
    refused(&f, &["node.toml:5:12", "expected u64"]);
}

#[test]
fn build_refuses_a_spec_without_a_lock() {
    let f = fixture();
    std::fs::remove_file(&f.lock).unwrap();
    refused(&f, &["node.lock", "no lock", "nodeimg fetch"]);
}

#[test]
fn build_refuses_a_lock_made_for_other_pins() {
    let f = fixture();
    let wants = pin_other_containerd(&f);
    refused(&f, &wants);
}

#[test]
fn build_refuses_a_missing_cache_entry() {
    let f = fixture();
    let lock = inputs::lock::load(&f.lock).unwrap();
    let kubelet = lock.component("kubelet").next().unwrap();
    std::fs::remove_file(f.cache.join("cas/sha256").join(&kubelet.sha256)).unwrap();
    refused(&f, &["kubelet", "not in the cache", "nodeimg fetch"]);
}

#[test]
fn build_refuses_a_corrupt_cache_entry() {
    let f = fixture();
    let lock = inputs::lock::load(&f.lock).unwrap();
    let runc = lock.component("runc").next().unwrap();
    let path = f.cache.join("cas/sha256").join(&runc.sha256);
    let mut data = std::fs::read(&path).unwrap();
    data[0] ^= 1;
    std::fs::write(&path, data).unwrap();
    refused(&f, &["runc", "has sha256", "nodeimg fetch"]);
}

#[test]
fn build_refuses_a_corrupt_lock_naming_line_and_column() {
    let f = fixture();
    let text = std::fs::read_to_string(&f.lock).unwrap();
    std::fs::write(
        &f.lock,
        text.replacen("kind = \"binary\"", "kind = \"tarball\"", 1),
    )
    .unwrap();
    refused(&f, &["node.lock:12:", "tarball"]);
}

/// The end of a build without a VM: export the golden disk, add the build's files and record
/// to the manifest, publish; then the real `nodeimg verify` checks it all, and catches a changed
/// build file.
#[test]
fn build_output_is_exported_recorded_published_and_verified() {
    use builder::pipeline::{export, output, publish, validate};
    use builder::report;
    let f = fixture();
    let inputs = builder::pipeline::inputs::load(&f.spec, &inputs::cache::Cache::new(&f.cache))
        .expect("inputs");
    let staging = builder::pipeline::staging_dir(&f.out, "node");
    std::fs::create_dir_all(&staging).unwrap();
    fixtures::gpt_disk::patterned_gpt_disk(&staging.join(output::GOLDEN), 64 << 20, 5).unwrap();
    for name in [
        output::SERIAL_LOG,
        output::BOOT_TEST_SERIAL_LOG,
        bom::BOM_FILE,
        bom::SBOM_FILE,
    ] {
        std::fs::write(staging.join(name), format!("{name}\n")).unwrap();
    }
    validate::write_junit(&staging, "node", &[]).unwrap();
    let reporter = report::Reporter::new(report::Mode::Lines);
    reporter.open_log(&staging.join(output::BUILD_LOG)).unwrap();
    let opts = builder::pipeline::BuildOptions {
        spec: f.spec.clone(),
        out: f.out.clone(),
        cache: f.cache.clone(),
        accel: qemu::accel::AccelChoice::Auto,
        memory_mib: 2048,
        cpus: 2,
        keep_going: false,
        no_kubeadm_test: false,
        conformance: None,
        source_date_epoch: 0,
    };
    let manifest = reporter
        .phase("export", || {
            export::export(&opts, &inputs, &staging, &reporter)
        })
        .unwrap();
    reporter.close_log().unwrap();
    // The exporters' manifest and sums are gone: the build writes its own, last.
    assert!(!staging.join("manifest.json").exists() && manifest.build.is_none());
    assert!(!staging.join("SHA256SUMS").exists());
    let record = publish::BootTestRecord {
        kubeadm_ran: false,
        conformance: None,
    };
    publish::write_manifest(manifest, &inputs, &staging, &reporter, &record).unwrap();
    let final_dir = f.out.join("node");
    publish::publish(&staging, &final_dir).unwrap();
    assert!(!staging.exists());
    assert_eq!(listing(&f.out), ["node"]);

    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(final_dir.join("manifest.json")).unwrap())
            .unwrap();
    let files: Vec<&str> = m["build"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["file"].as_str().unwrap())
        .collect();
    assert_eq!(
        files,
        [
            "golden.raw",
            "validation.junit.xml",
            "build.log",
            "serial.log",
            "boot-test-serial.log",
            "bom.json",
            "sbom.cdx.json"
        ]
    );
    let record = &m["build"]["record"];
    assert_eq!(record["spec_sha256"], inputs.spec.sha256);
    assert_eq!(record["lock_sha256"], inputs.lock.sha256);
    assert_eq!(record["kubeadm_test"], "skipped");
    assert!(record["phase_seconds"]["export"].is_number(), "{record}");
    let sums = std::fs::read_to_string(final_dir.join("SHA256SUMS")).unwrap();
    assert!(
        sums.contains("  golden.raw\n") && sums.contains("  build.log\n"),
        "{sums}"
    );

    let verify = || nodeimg().arg("verify").arg(&final_dir).output().unwrap();
    let o = verify();
    assert!(o.status.success(), "{}", out_str(&o).1);
    std::fs::write(final_dir.join(output::BUILD_LOG), "edited\n").unwrap();
    let o = verify();
    assert_eq!(o.status.code(), Some(1));
    assert!(out_str(&o).1.contains("build.log"), "{}", out_str(&o).1);
}
