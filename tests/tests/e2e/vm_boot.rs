//! The `qemu` crate's VM lifecycle against the Debian 12 cloud-image fixture, booted under the
//! probe's accelerator from a qcow2 overlay: readiness beacon with the host key, SSH (exit
//! codes, separate stdout/stderr, closed stdin, a refused wrong host key), SFTP upload, no
//! outbound network, ACPI power-off through QMP, no process left, the image untouched.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use diskimg::ImageFormat;
use qemu::ssh::{Exit, Ssh, SshTarget};
use qemu::vm::{StopHow, Vm};

use crate::vm_common::{
    fixture_or_skip, host_or_skip, overlay_vm_config, processes_mentioning, sha256,
};

/// From QEMU's start to the beacon (TCG on a loaded 2-core machine: 100–160 s seen).
const READY_TIMEOUT: Duration = Duration::from_secs(600);
const CMD: Option<Duration> = Some(Duration::from_secs(120));

fn run(ssh: &Ssh, cmd: &str) -> qemu::ssh::Output {
    ssh.output(cmd, CMD)
        .unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn vm_lifecycle_on_the_debian_cloud_fixture() {
    let test = "vm_lifecycle_on_the_debian_cloud_fixture";
    let Some((host, qemu_img)) = host_or_skip(test) else {
        return;
    };
    let Some(image) = fixture_or_skip(test) else {
        return;
    };
    let image_sha = sha256(&image);

    let dir = tempfile::Builder::new().prefix("vmlib").tempdir().unwrap();
    assert_eq!(
        builder::image_check::bootable_format(&image).unwrap(),
        ImageFormat::Qcow2
    );
    let config = overlay_vm_config(&host, &qemu_img, &image, dir.path(), "vm-lib-test");
    let mut vm = Vm::start(&config).unwrap();
    let pid = vm.pid();
    let ready = vm
        .wait_ready(READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    println!("READY after {ready:.1?}");
    let host_key = vm
        .host_key()
        .cloned()
        .expect("the beacon carries the host key");

    // A host key other than the one the guest reported is refused, at once.
    let impostor = qemu::BuildKey::generate().unwrap();
    let wrong = SshTarget {
        addr: SocketAddr::from(([127, 0, 0, 1], vm.ssh_port())),
        user: "builder".into(),
        key: Arc::new(impostor.private_key().clone()),
        host_key: Some(impostor.private_key().public_key().clone()),
    };
    let t = Instant::now();
    let e = Ssh::connect(&wrong, Instant::now() + Duration::from_secs(60)).unwrap_err();
    assert!(e.to_string().contains("host key"), "{e}");
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "retried a fatal host key mismatch"
    );
    assert_ne!(
        host_key.key_data(),
        impostor.private_key().public_key().key_data()
    );

    let ssh = vm
        .ssh(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));

    // Exit codes and separate streams.
    let o = run(&ssh, "echo out; echo err >&2; exit 7");
    assert_eq!(o.exit, Exit::Code(7));
    assert_eq!(text(&o.stdout), "out\n");
    assert_eq!(text(&o.stderr), "err\n");
    let o = run(&ssh, "id -un; hostname; sudo -n id -u");
    assert!(o.exit.success(), "{o:?}");
    assert_eq!(text(&o.stdout), "builder\nvm-lib-test\n0\n");
    let o = run(&ssh, "kill -KILL $$");
    assert_eq!(o.exit, Exit::Signal("KILL".into()), "{o:?}");
    // stdin is closed: `cat` sees end of file at once instead of hanging.
    let o = run(&ssh, "cat; echo after-cat");
    assert_eq!(text(&o.stdout), "after-cat\n");
    // cloud-init really finished before the beacon.
    let o = run(&ssh, "cloud-init status");
    assert_eq!(text(&o.stdout).trim(), "status: done", "{o:?}");

    // SFTP upload: bytes and mode arrive intact.
    let data: Vec<u8> = (0..3_000_000u32)
        .map(|i| i.wrapping_mul(2_654_435_761).to_le_bytes()[2])
        .collect();
    let local = dir.path().join("upload.bin");
    std::fs::write(&local, &data).unwrap();
    assert_eq!(
        ssh.upload(&local, "/tmp/upload.bin", 0o640).unwrap(),
        3_000_000
    );
    let o = run(
        &ssh,
        "sha256sum < /tmp/upload.bin; stat -c %a /tmp/upload.bin",
    );
    let want = sha256(&local);
    assert_eq!(text(&o.stdout), format!("{want}  -\n640\n"));

    // No outbound network: the guest has its slirp address (DHCP worked; 10.0.2.2 is on-link),
    // yet cannot open a TCP connection to the host (10.0.2.2 is the host's loopback in slirp)
    // nor resolve names. (restrict=on also leaves it without a default route.)
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let o = run(&ssh, "ip -4 -o addr show scope global");
    assert!(text(&o.stdout).contains("inet 10.0.2.15/24"), "{o:?}");
    let o = run(
        &ssh,
        &format!("timeout 10 bash -c 'echo hi > /dev/tcp/10.0.2.2/{port}'"),
    );
    assert!(!o.exit.success(), "the guest reached the host: {o:?}");
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        other => panic!("the guest connected out: {other:?}"),
    }
    let o = run(&ssh, "timeout 10 getent hosts deb.debian.org");
    assert!(!o.exit.success(), "DNS works in the guest: {o:?}");
    ssh.close();

    // ACPI power-off through QMP.
    let stopped = vm.stop(Duration::from_secs(120)).unwrap();
    println!("stopped: {stopped:?}");
    assert_eq!(stopped.how, StopHow::PoweredOff);
    drop(vm);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "QEMU pid {pid} still exists"
    );
    let left = processes_mentioning(dir.path());
    assert!(left.is_empty(), "processes left behind: {left}");
    assert_eq!(sha256(&image), image_sha, "the fixture image changed");
}
