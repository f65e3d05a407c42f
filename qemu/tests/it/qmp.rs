//! QMP against a real QEMU, and the VmSpec command line accepted by a real QEMU.

use std::ffi::OsString;
use std::time::Duration;

use diskimg::ImageFormat;
use qemu::accel::Accel;
use qemu::cmdline::{ExtraDisk, VmSpec, pick_free_port};
use qemu::process;
use qemu::qmp::Qmp;

use crate::common::{host_or_skip, qemu_or_skip};

#[test]
fn qmp_lifecycle_with_real_qemu() {
    let Some(q) = qemu_or_skip("qmp_lifecycle_with_real_qemu") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("qmp.sock");
    let mut qmp_arg = OsString::from("unix:");
    qmp_arg.push(&sock);
    qmp_arg.push(",server=on,wait=off");
    let args: Vec<OsString> = vec![
        "-S".into(),
        "-M".into(),
        "q35".into(),
        "-accel".into(),
        "tcg".into(),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-qmp".into(),
        qmp_arg,
    ];
    let mut child = process::spawn(&q, &args, &dir.path().join("qemu.log"), "qemu").unwrap();
    let mut qmp = Qmp::connect(&sock, Duration::from_secs(20)).unwrap();
    assert!(qmp.greeting()["QMP"]["version"]["qemu"]["major"].is_u64());
    assert_eq!(qmp.query_status().unwrap().status, "prelaunch");
    qmp.cont().unwrap();
    let st = qmp.query_status().unwrap();
    assert_eq!(st.status, "running");
    assert!(st.running);
    qmp.wait_event("RESUME", Duration::from_secs(10)).unwrap();
    // an error reply does not break the connection
    let e = qmp.execute("no-such-command", None).unwrap_err();
    assert!(matches!(e, qemu::Error::QmpCommand { .. }), "{e}");
    assert_eq!(qmp.query_status().unwrap().status, "running");
    qmp.quit().unwrap();
    let status = child.wait_timeout(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status}");
}

#[test]
fn vmspec_command_line_is_accepted_by_qemu() {
    let Some(h) = host_or_skip("vmspec_command_line_is_accepted_by_qemu") else {
        return;
    };
    let t = tempfile::tempdir().unwrap();
    let disk = |name: &str| {
        let p = t.path().join(name);
        std::fs::File::create(&p)
            .unwrap()
            .set_len(1024 * 1024)
            .unwrap();
        p
    };
    let spec = VmSpec {
        dir: t.path().join("vm"),
        cpus: 1,
        memory_mib: 256,
        accel: Accel::Tcg,
        firmware: h.firmware.clone(),
        root_disk: disk("root,1.raw"),
        root_format: ImageFormat::Raw,
        extra_disks: vec![ExtraDisk {
            name: "seed".into(),
            path: disk("seed.img"),
            format: ImageFormat::Raw,
        }],
        ssh_port: pick_free_port().unwrap(),
    };
    let mut args = spec.prepare().unwrap();
    args.push("-S".into());
    let p = spec.paths();
    let mut child = process::spawn(&h.qemu, &args, &p.qemu_log, "qemu").unwrap();
    let mut qmp = match Qmp::connect(&p.qmp_sock, Duration::from_secs(20)) {
        Ok(q) => q,
        Err(e) => panic!("{e}; qemu log:\n{}", child.stderr_tail()),
    };
    assert_eq!(qmp.query_status().unwrap().status, "prelaunch");
    // the disks are there, the extra one read-only
    let blocks = qmp.execute("query-block", None).unwrap();
    let blocks = blocks.as_array().unwrap();
    let seed = blocks.iter().find(|b| b["device"] == "seed").unwrap();
    assert_eq!(seed["inserted"]["ro"], true);
    let root = blocks.iter().find(|b| b["device"] == "root").unwrap();
    assert_eq!(root["inserted"]["ro"], false);
    // the ssh port is taken by QEMU's hostfwd
    assert!(std::net::TcpListener::bind(("127.0.0.1", spec.ssh_port)).is_err());
    assert!(p.ready_sock.exists());
    assert!(p.pid_file.exists());
    qmp.quit().unwrap();
    let status = child.wait_timeout(Duration::from_secs(20)).unwrap();
    assert!(status.success(), "{status}");
}
