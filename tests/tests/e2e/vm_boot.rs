//! Boots the Debian 12 cloud-image fixture under QEMU (TCG unless KVM really runs) from a qcow2
//! overlay with a NoCloud seed, waits for the readiness beacon `READY <instance-id>` on the
//! virtio-serial port, powers the guest down over QMP, and checks the fixture was not touched.

use std::io::{BufRead, BufReader, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qemu::accel::{self, AccelChoice};
use qemu::cmdline::{DiskFormat, ExtraDisk, VmSpec, pick_free_port};
use qemu::host::Host;
use qemu::process::{self, tail_lines};
use qemu::qmp::Qmp;
use qemu::{BuildKey, SeedSpec};

/// How long the guest may take from QEMU start to the beacon.
const READY_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the guest may take to power off after `system_powerdown`.
const POWERDOWN_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints `SKIP: why` and returns true, or fails when `NODEIMG_REQUIRE_TOOLS` is set.
fn skip(why: &str) -> bool {
    assert!(
        std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
        "{why} (NODEIMG_REQUIRE_TOOLS is set)"
    );
    println!("SKIP: {why}");
    true
}

fn serial_tail(serial: &Path) -> String {
    tail_lines(serial, 40).unwrap_or_else(|e| format!("<cannot read {}: {e}>", serial.display()))
}

/// Reads lines from the beacon socket until `ready` (or a `FAILED` line, QEMU's exit, or the
/// deadline). QEMU serves the socket (`server=on,wait=off`), so we connect as soon as it exists.
fn wait_ready(
    sock: &Path,
    ready: &str,
    child: &mut process::Child,
    deadline: Instant,
) -> Result<(), String> {
    let stream = loop {
        match UnixStream::connect(sock) {
            Ok(s) => break s,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
                    return Err(format!(
                        "QEMU exited with {s} before serving {}",
                        sock.display()
                    ));
                }
                if Instant::now() >= deadline {
                    return Err(format!("{} never appeared", sock.display()));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(format!("connecting to {}: {e}", sock.display())),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return Err("the beacon socket was closed".to_owned()),
            Ok(_) if line.ends_with('\n') => {
                let got = line.trim_end().to_owned();
                println!("beacon: {got:?}");
                if got == ready.trim_end() {
                    return Ok(());
                }
                if got.starts_with("FAILED") {
                    return Err(format!("the guest reported {got:?}"));
                }
                line.clear();
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(format!("reading {}: {e}", sock.display())),
        }
        if let Some(s) = child.try_wait().map_err(|e| e.to_string())? {
            return Err(format!("QEMU exited with {s} before the beacon"));
        }
        if Instant::now() >= deadline {
            return Err(format!("no beacon within {READY_TIMEOUT:?}"));
        }
    }
}

/// Whether any process's command line still mentions `needle` (our VM directory).
fn processes_mentioning(needle: &Path) -> String {
    let out = Command::new("pgrep")
        .arg("-af")
        .arg(needle)
        .output()
        .expect("pgrep (procps)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_debian_cloud_fixture_boots_to_the_readiness_beacon() {
    let host = match Host::discover() {
        Ok(h) => h,
        Err(e) => {
            skip(&e.to_string());
            return;
        }
    };
    let image_path = fixtures::cloud_image::debian12_cloud_path();
    if !image_path.is_file()
        && let Err(e) = fixtures::cloud_image::prerequisites()
    {
        skip(&format!("{e:#}"));
        return;
    }
    let t = Instant::now();
    let image = fixtures::cloud_image::debian12_cloud_qcow2().expect("the Debian 12 cloud image");
    println!(
        "fixture {} ready in {:.1?} ({} bytes)",
        image.display(),
        t.elapsed(),
        std::fs::metadata(&image).unwrap().len()
    );
    let image_sha = fixtures::cloud_image::file_sha256(&image).unwrap();

    let dir = tempfile::Builder::new().prefix("vmboot").tempdir().unwrap();
    let overlay = dir.path().join("overlay.qcow2");
    let out = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-F", "qcow2", "-b"])
        .arg(&image)
        .arg(&overlay)
        .output()
        .expect("qemu-img");
    assert!(out.status.success(), "qemu-img create: {out:?}");

    let key = BuildKey::generate().unwrap();
    let instance_id = format!("iid-vmboot-{}", std::process::id());
    let seed = SeedSpec::new(
        instance_id.as_str(),
        "vm-boot-test",
        "builder",
        key.public_openssh().unwrap(),
    );
    let seed_path = dir.path().join("seed.img");
    seed.write_image(&seed_path).unwrap();

    let verdict = accel::resolve(AccelChoice::Auto, &host.qemu);
    println!("accelerator: {} ({})", verdict.accel, verdict.reason);
    let spec = VmSpec {
        dir: dir.path().join("vm"),
        cpus: 2,
        memory_mib: 2048,
        accel: verdict.accel,
        firmware: host.firmware.clone(),
        root_disk: overlay.clone(),
        root_format: DiskFormat::Qcow2,
        extra_disks: vec![ExtraDisk {
            name: "seed".into(),
            path: seed_path,
            format: DiskFormat::Raw,
        }],
        ssh_port: pick_free_port().unwrap(),
    };
    let paths = spec.paths();
    let args = spec.prepare().unwrap();
    let started = Instant::now();
    let mut child = process::spawn(&host.qemu, &args, &paths.qemu_log, "qemu").unwrap();
    let pid = child.id();

    let ready = wait_ready(
        &paths.ready_sock,
        &seed.ready_line(),
        &mut child,
        started + READY_TIMEOUT,
    );
    if let Err(why) = ready {
        let serial = serial_tail(&paths.serial_log);
        let login = std::fs::read_to_string(&paths.serial_log)
            .unwrap_or_default()
            .contains("login:");
        drop(child);
        panic!(
            "{why} after {:.1?}; login prompt on serial: {login}; qemu log:\n{}\nlast 40 lines of serial.log:\n{serial}",
            started.elapsed(),
            tail_lines(&paths.qemu_log, 40).unwrap_or_default()
        );
    }
    println!("READY after {:.1?}", started.elapsed());

    let t = Instant::now();
    let mut qmp = Qmp::connect(&paths.qmp_sock, Duration::from_secs(10)).unwrap();
    qmp.system_powerdown().unwrap();
    let deadline = Instant::now() + POWERDOWN_TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() >= deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    match status {
        Some(s) => println!(
            "QEMU exited with {s} {:.1?} after system_powerdown",
            t.elapsed()
        ),
        None => {
            let quit = qmp.quit();
            let s = child.wait_timeout(Duration::from_secs(10));
            panic!(
                "the guest did not power off within {POWERDOWN_TIMEOUT:?} (quit: {quit:?}, then {s:?}); serial:\n{}",
                serial_tail(&paths.serial_log)
            );
        }
    }
    drop(qmp);
    drop(child);

    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU pid {pid} still exists"
    );
    let left = processes_mentioning(dir.path());
    assert!(left.is_empty(), "processes left behind: {left}");
    assert_eq!(
        fixtures::cloud_image::file_sha256(&image).unwrap(),
        image_sha,
        "the fixture image changed during the run"
    );
}
