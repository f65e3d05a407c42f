//! The fixture build the target tests publish: a 1 GiB GPT disk with patterned data (a few MiB,
//! holes elsewhere) exported to every format by the real exporter, with a `bom.json` added to
//! the manifest's build section as `nodeimg build` adds it, so labels carry real BOM versions.

use std::path::{Path, PathBuf};

use exporters::manifest::{BuildFile, BuildSection, MANIFEST_FILE, SUMS_FILE};
use exporters::{ExportOptions, Manifest, NoProgress};
use sha2::{Digest, Sha256};

/// The name the fixture is exported under.
pub const NAME: &str = "node-fixture";

/// The BOM's component versions the labels must carry.
pub const KUBERNETES_VERSION: &str = "v1.20.2";
/// containerd's.
pub const CONTAINERD_VERSION: &str = "1.6.20~ds1-1";

/// Exports the fixture into `dir/out` and returns that directory.
pub fn fixture_output(dir: &Path) -> PathBuf {
    let disk = dir.join("golden.raw");
    fixtures::gpt_disk::patterned_gpt_disk(&disk, 1 << 30, 11).unwrap();
    let out = dir.join("out");
    let options = ExportOptions::new(NAME);
    exporters::export(&disk, &out, &options, &NoProgress).unwrap();
    std::fs::remove_file(&disk).unwrap();
    add_bom(&out);
    out
}

fn add_bom(out: &Path) {
    let bom = serde_json::json!({
        "format": "nodeimg-bom",
        "version": 1,
        "inputs": {
            "image": NAME, "distro": "debian-12", "nodeimg_version": "0.1.0",
            "spec_sha256": "a".repeat(64), "lock_sha256": "b".repeat(64),
            "base_image_sha256": "c".repeat(64)
        },
        "os": {
            "os_release": {"ID": "debian", "VERSION_ID": "12", "VERSION_CODENAME": "bookworm"},
            "kernel_release": "6.1.0-28-cloud-amd64",
            "kernel_cmdline": "root=LABEL=root"
        },
        "packages": [],
        "components": [
            {"name": "containerd", "version": CONTAINERD_VERSION, "path": "/usr/bin/containerd",
             "sha256": "d".repeat(64), "source": "debian"},
            {"name": "kubeadm", "version": KUBERNETES_VERSION, "path": "/usr/bin/kubeadm",
             "sha256": "e".repeat(64), "source": "dl.k8s.io"}
        ],
        "images": [],
        "config": {"sysctls": {}, "modules": {}, "containerd": {}}
    });
    let text = serde_json::to_string_pretty(&bom).unwrap();
    std::fs::write(out.join(bom::BOM_FILE), &text).unwrap();
    let mut manifest = Manifest::load(out).unwrap();
    manifest.build = Some(BuildSection {
        files: vec![BuildFile {
            file: bom::BOM_FILE.into(),
            size: text.len() as u64,
            sha256: hex::encode(Sha256::digest(text.as_bytes())),
        }],
        record: serde_json::json!({}),
    });
    std::fs::write(out.join(SUMS_FILE), manifest.sums()).unwrap();
    std::fs::write(out.join(MANIFEST_FILE), manifest.to_json()).unwrap();
}

/// Runs `f` with everything it logs (every level, as `nodeimg` would print it with
/// `NODEIMG_LOG=trace`) captured; returns its value and the text.
pub fn captured<T>(f: impl FnOnce() -> T) -> (T, String) {
    #[derive(Clone)]
    struct Buf(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf(std::sync::Arc::default());
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let out = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (out, text)
}

/// The fixture must pass the real verifier, as `nodeimg publish` checks first.
#[test]
fn the_fixture_output_verifies_and_has_bom_labels() {
    let d = tempfile::tempdir().unwrap();
    let out = fixture_output(d.path());
    exporters::verify::verify(&out, &NoProgress).unwrap();
    let source = publishers::Source::open(&out).unwrap();
    let labels = source.labels(Some("dev"));
    assert_eq!(labels["kubeadm"], KUBERNETES_VERSION);
    assert_eq!(labels["containerd"], CONTAINERD_VERSION);
    assert_eq!(labels["os"], "debian-12");
    assert_eq!(labels["stage"], "dev");
    assert_eq!(labels["content-sha256"], source.manifest.content_sha256);
}
