//! First-boot checks, each passing and failing in the sandbox (SSH host keys and their
//! fingerprints are made by the real `ssh-keygen`).

use std::process::Command;

use super::check;
use super::sandbox::{Sandbox, install_stubs};
use crate::checks::{Check, CheckKind, FirstBoot, first_boot_checks};
use crate::debian12::DEBIAN_12;
use crate::error::Error;

const OLD_ID: &str = "0123456789abcdef0123456789abcdef";
const NEW_ID: &str = "fedcba9876543210fedcba9876543210";

fn boot(old_fps: Vec<String>) -> FirstBoot {
    FirstBoot {
        build_user: "builder".into(),
        old_machine_id: Some(OLD_ID.into()),
        old_host_key_fingerprints: old_fps,
        ignorable_failed_units: vec!["systemd-networkd-wait-online.service".into()],
    }
}

fn checks(old_fps: Vec<String>) -> Vec<Check> {
    first_boot_checks(&DEBIAN_12, &boot(old_fps)).unwrap()
}

/// Makes `/etc/ssh/ssh_host_{ed25519,ecdsa}_key(.pub)` with the real ssh-keygen and returns
/// their fingerprints.
fn host_keys(sb: &Sandbox) -> Vec<String> {
    sb.mkdir("/etc/ssh");
    let mut fps = Vec::new();
    for t in ["ed25519", "ecdsa"] {
        let key = sb.root().join(format!("etc/ssh/ssh_host_{t}_key"));
        let st = Command::new("ssh-keygen")
            .args(["-q", "-t", t, "-N", "", "-C", "root@debian", "-f"])
            .arg(&key)
            .status()
            .unwrap();
        assert!(st.success());
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()
            .unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        fps.push(text.split_whitespace().nth(1).unwrap().to_owned());
    }
    fps
}

/// A first boot where everything passes.
fn healthy_boot() -> (Sandbox, Vec<String>) {
    let sb = Sandbox::bare();
    install_stubs(&sb);
    sb.file("/etc/machine-id", &format!("{NEW_ID}\n"));
    let fps = host_keys(&sb);
    sb.set(
        "passwd/debian",
        "debian:x:1000:1000:Debian:/home/debian:/bin/bash\n",
    );
    sb.set("cloud-init.out", "...\nstatus: done\n");
    sb.unit("containerd.service", Some("enabled"), "active");
    sb.unit("kubelet.service", Some("enabled"), "activating");
    sb.set(
        "failed-units",
        "systemd-networkd-wait-online.service loaded failed failed Wait for Network to be Configured\n",
    );
    (sb, fps)
}

#[test]
fn every_first_boot_check_passes_on_a_good_boot() {
    let (sb, _) = healthy_boot();
    let old = vec![format!("SHA256:{}", "A".repeat(43))];
    let all = checks(old);
    let names: Vec<&str> = all.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "machine-id",
            "ssh-host-keys",
            "build-user-absent",
            "cloud-init-done",
            "service-containerd.service",
            "service-kubelet.service",
            "no-failed-units"
        ]
    );
    for c in &all {
        sb.pass(c);
    }
}

#[test]
fn machine_id() {
    let (sb, _) = healthy_boot();
    let c = check(&checks(vec![]), "machine-id");
    sb.file("/etc/machine-id", &format!("{OLD_ID}\n"));
    sb.fail(
        &c,
        &[&format!(
            "/etc/machine-id is still the build's {OLD_ID}, expected a new one"
        )],
    );
    sb.file("/etc/machine-id", "");
    sb.fail(
        &c,
        &["/etc/machine-id is empty or missing, expected a new machine id"],
    );
    sb.remove("/etc/machine-id");
    sb.fail(&c, &["empty or missing"]);
    sb.file("/etc/machine-id", "uninitialized\n");
    sb.fail(
        &c,
        &["/etc/machine-id is uninitialized, expected 32 hex digits"],
    );
    sb.file("/etc/machine-id", "0123\n");
    sb.fail(&c, &["is 0123, expected 32 hex digits"]);
    // no old id known: any valid id passes
    let mut b = boot(vec![]);
    b.old_machine_id = None;
    sb.file("/etc/machine-id", &format!("{OLD_ID}\n"));
    sb.pass(&check(
        &first_boot_checks(&DEBIAN_12, &b).unwrap(),
        "machine-id",
    ));
}

#[test]
fn ssh_host_keys() {
    let (sb, fps) = healthy_boot();
    sb.pass(&check(
        &checks(vec![format!("SHA256:{}", "B".repeat(43))]),
        "ssh-host-keys",
    ));
    let c = check(&checks(vec![fps[1].clone()]), "ssh-host-keys");
    sb.fail(&c, &[&format!("SSH host key /etc/ssh/ssh_host_ecdsa_key.pub has the build's fingerprint {}, expected a new key", fps[1])]);
    sb.file("/etc/ssh/ssh_host_ecdsa_key.pub", "garbage\n");
    sb.fail(
        &c,
        &[
            "ssh-keygen -lf /etc/ssh/ssh_host_ecdsa_key.pub",
            "expected a readable host key",
        ],
    );
    sb.remove("/etc/ssh");
    sb.fail(
        &c,
        &["no SSH host keys (/etc/ssh/ssh_host_*_key.pub), expected new ones"],
    );
}

#[test]
fn build_user() {
    let (sb, _) = healthy_boot();
    let c = check(&checks(vec![]), "build-user-absent");
    sb.set(
        "passwd/builder",
        "builder:x:1001:1001::/home/builder:/bin/sh\n",
    );
    sb.fail(&c, &["build user builder exists (builder:x:1001:1001::/home/builder:/bin/sh), expected absent"]);
    sb.unset("passwd/builder");
    sb.remove_tool("getent");
    sb.fail(
        &c,
        &["getent passwd builder exited 127, expected 2 (no such user)"],
    );
}

#[test]
fn cloud_init() {
    let (sb, _) = healthy_boot();
    let c = check(&checks(vec![]), "cloud-init-done");
    sb.set("cloud-init.out", "\nstatus: error\n");
    sb.set("cloud-init.rc", "1");
    sb.fail(&c, &["cloud-init status says error", "expected done"]);
    // 23.4+: "done" with recoverable errors exits 2, but it is done
    sb.set("cloud-init.out", "status: done\n");
    sb.set("cloud-init.rc", "2");
    sb.pass(&c);
    sb.set("cloud-init.out", "");
    sb.fail(&c, &["cloud-init status says nothing", "expected done"]);
}

#[test]
fn services_at_first_boot() {
    let (sb, _) = healthy_boot();
    let all = checks(vec![]);
    sb.unit("containerd.service", Some("enabled"), "failed");
    sb.fail(
        &check(&all, "service-containerd.service"),
        &["enabled and failed, expected enabled and active"],
    );
    sb.unit("kubelet.service", Some("enabled"), "active");
    sb.fail(
        &check(&all, "service-kubelet.service"),
        &["expected enabled and not active"],
    );
    assert_eq!(
        check(&all, "service-kubelet.service").kind,
        CheckKind::Service
    );
}

#[test]
fn failed_units() {
    let (sb, _) = healthy_boot();
    let c = check(&checks(vec![]), "no-failed-units");
    sb.set(
        "failed-units",
        "cloud-config.service loaded failed failed Apply the settings specified in cloud-config\n\
         systemd-networkd-wait-online.service loaded failed failed Wait for Network to be Configured\n\
         ● kubelet.service loaded failed failed kubelet\n",
    );
    sb.fail(
        &c,
        &["failed units: cloud-config.service kubelet.service, expected none"],
    );
    sb.set("failed-units", "");
    sb.pass(&c);
}

#[test]
fn bad_first_boot_inputs_name_their_field() {
    type Mutation = fn(&mut FirstBoot);
    let cases: [(Mutation, &str); 4] = [
        (|b| b.build_user = "root".into(), "build user"),
        (
            |b| b.old_machine_id = Some("x'; reboot".into()),
            "old machine id",
        ),
        (
            |b| b.old_host_key_fingerprints.push("MD5:aa:bb".into()),
            "old host key fingerprint",
        ),
        (
            |b| b.ignorable_failed_units.push("a b.service".into()),
            "ignorable failed unit",
        ),
    ];
    for (mutate, want) in cases {
        let mut b = boot(vec![]);
        mutate(&mut b);
        match first_boot_checks(&DEBIAN_12, &b) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, want),
            other => panic!("{want}: {other:?}"),
        }
    }
}
