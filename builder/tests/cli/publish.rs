//! `nodeimg publish` before anything is sent: a target whose export is missing is refused, a
//! damaged output fails verification, and in both cases no connection reaches the target's
//! endpoint (a listener counts them) and no `publish.json` is written. The uploads themselves
//! are tested against the emulators in `publishers`' integration tests and `publish_emulators`.

use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::{disk, nodeimg, out_str, run_guarded};

/// A listener on 127.0.0.1 that counts the connections it gets (and reads what they send).
struct Listener {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Listener {
    fn start() -> Listener {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for stream in l.incoming().flatten() {
                seen.fetch_add(1, Ordering::SeqCst);
                let mut stream = stream;
                let mut buf = [0u8; 4096];
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_millis(200)));
                let _ = stream.read(&mut buf);
            }
        });
        Listener { port, connections }
    }

    fn count(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn export(dir: &Path, formats: &str) -> PathBuf {
    let d = disk(dir, 64 << 20);
    let out = dir.join("out");
    let o = run_guarded(
        nodeimg()
            .arg("export")
            .arg(&d)
            .arg("--out")
            .arg(&out)
            .args(["--name", "node", "--formats", formats]),
    );
    assert!(o.status.success(), "{}", out_str(&o).1);
    out
}

#[test]
fn publish_refuses_a_target_whose_export_is_missing_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path(), "raw,qcow2");
    let gcs = Listener::start();
    let registry = Listener::start();
    let o = run_guarded(
        nodeimg()
            .arg("publish")
            .arg(&out)
            .args(["--to", "gcp:images"])
            .env("STORAGE_EMULATOR_HOST", format!("127.0.0.1:{}", gcs.port)),
    );
    let (_, err) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--to gcp:images needs the gce export")
            && err.contains("has only raw,qcow2")
            && err.contains("--formats gce"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "one error line: {err}");
    // An OCI target needs qcow2: an output without it is refused the same way.
    let second = dir.path().join("b");
    std::fs::create_dir(&second).unwrap();
    let out2 = export(&second, "raw");
    let o = run_guarded(nodeimg().arg("publish").arg(&out2).args([
        "--to",
        &format!("oci:127.0.0.1:{}/node/image", registry.port),
    ]));
    let (_, err) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("needs the qcow2 export"), "{err}");
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(
        (gcs.count(), registry.count()),
        (0, 0),
        "nothing may be sent"
    );
    assert!(!out.join("publish.json").exists() && !out2.join("publish.json").exists());
}

#[test]
fn publish_verifies_first_and_sends_nothing_when_an_artifact_changed() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path(), "raw,qcow2");
    // One byte of the qcow2's data changed, its size kept.
    let qcow2 = out.join("node.qcow2");
    let mut bytes = std::fs::read(&qcow2).unwrap();
    let at = bytes.len() - 100;
    bytes[at] ^= 0x5a;
    std::fs::write(&qcow2, &bytes).unwrap();
    let registry = Listener::start();
    let o = run_guarded(nodeimg().arg("publish").arg(&out).args([
        "--to",
        &format!("oci:127.0.0.1:{}/node/image", registry.port),
    ]));
    let (_, err) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("before publishing: nothing was sent") && err.contains("node.qcow2"),
        "{err}"
    );
    std::thread::sleep(std::time::Duration::from_millis(100));
    assert_eq!(registry.count(), 0, "nothing may be sent");
    assert!(!out.join("publish.json").exists());
}

#[test]
fn publish_to_vsphere_prints_the_exports_commands_and_calls_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = export(dir.path(), "ova");
    let o = run_guarded(nodeimg().arg("publish").arg(&out).args(["--to", "vsphere"]));
    let (stdout, err) = out_str(&o);
    assert!(o.status.success(), "{err}");
    let commands = std::fs::read_to_string(out.join("import-vsphere.txt")).unwrap();
    assert!(stdout.contains("does not upload to vSphere") && stdout.ends_with(&commands));
    assert!(
        commands.contains("govc") || commands.contains("ovftool"),
        "{commands}"
    );
    assert!(!out.join("publish.json").exists());
}

#[test]
fn publish_rejects_a_bad_target_or_stage_as_usage() {
    let dir = tempfile::tempdir().unwrap();
    for (args, want) in [
        (["--to", "s3:bucket"].as_slice(), "unknown target"),
        (["--to", "gcp"].as_slice(), "gcp needs a bucket"),
        (
            ["--to", "aws", "--stage", "Prod!"].as_slice(),
            "a stage is 1 to 20 of a-z",
        ),
    ] {
        let o = run_guarded(nodeimg().arg("publish").arg(dir.path()).args(args));
        let (_, err) = out_str(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
