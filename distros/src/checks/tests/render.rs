//! Rendering: validation, user checks (headers: `tests/it/content.rs`; `sh -n` and shellcheck
//! on every script: the harness in `tests/it/syntax.rs`).

use super::sandbox::Sandbox;
use super::{expectations, node_checks};
use crate::checks::{CheckKind, user_check};
use crate::debian12::DEBIAN_12;
use crate::error::Error;

#[test]
fn rendering_is_deterministic_and_names_are_unique() {
    assert_eq!(node_checks(), node_checks());
    for d in crate::all() {
        let checks = crate::checks::node_checks(d, &expectations()).unwrap();
        for (i, c) in checks.iter().enumerate() {
            assert!(checks[..i].iter().all(|p| p.name != c.name), "{}", c.name);
        }
        // each distro's own auto-upgrade units
        for u in d.auto_upgrade_units {
            assert!(checks.iter().any(|c| c.name == format!("service-off-{u}")));
        }
    }
}

#[test]
fn bad_expectations_name_their_field() {
    type Mutation = fn(&mut crate::checks::Expectations);
    let cases: [(Mutation, &str); 9] = [
        (
            |e| e.kubernetes = "v1.20.2; reboot".into(),
            "kubernetes version",
        ),
        (|e| e.containerd = String::new(), "containerd version"),
        (|e| e.runc = "1.1.5'".into(), "runc version"),
        (|e| e.cni_plugins = "$(id)".into(), "CNI plugins version"),
        (|e| e.crictl = "-1".into(), "crictl version"),
        (
            |e| e.pause_image = "k8s.gcr.io/pause:3.1".into(),
            "pause image",
        ),
        (|e| e.images.push("sha256:abcd".into()), "image"),
        (
            |e| e.sysctls.push(("kernel.panic".into(), "5".into())),
            "sysctl key",
        ),
        (|e| e.held_packages.push("kubelet".into()), "held package"),
    ];
    for (mutate, want) in cases {
        let mut e = expectations();
        mutate(&mut e);
        match crate::checks::node_checks(&DEBIAN_12, &e) {
            Err(Error::InvalidInput { field, .. }) => assert_eq!(field, want),
            other => panic!("{want}: {other:?}"),
        }
    }
}

#[test]
fn user_checks_pass_fail_and_validate() {
    let sb = Sandbox::bare();
    sb.file("/etc/hosts", "127.0.0.1 localhost\n");
    let ok = user_check(
        "hosts",
        "grep -q localhost \"$NODEIMG_CHECK_ROOT/etc/hosts\"",
    )
    .unwrap();
    assert_eq!(ok.name, "user-hosts");
    assert_eq!(ok.kind, CheckKind::User);
    sb.pass(&ok);
    let bad = user_check(
        "hosts-k8s",
        "#!/bin/sh\nif ! grep -q k8s-cp \"$NODEIMG_CHECK_ROOT/etc/hosts\"; then\n  echo 'no k8s-cp in /etc/hosts, expected one'\n  exit 1\nfi\n",
    )
    .unwrap();
    assert_eq!(bad.script.matches("#!/bin/sh").count(), 1);
    sb.fail(&bad, &["no k8s-cp in /etc/hosts, expected one"]);
    for (name, script) in [
        ("", "true"),
        ("-x", "true"),
        ("a b", "true"),
        ("a'b", "true"),
        ("ok", ""),
        ("ok", "  \n"),
        ("ok", "true\0"),
    ] {
        assert!(
            matches!(user_check(name, script), Err(Error::InvalidInput { .. })),
            "{name:?} {script:?}"
        );
    }
}

// `sh -n` and shellcheck over every check: the harness in `tests/it/syntax.rs`.

/// On a host with network (this one reaches Debian's mirror), the no-outbound-network check
/// fails and says why.
#[test]
fn the_no_network_check_fails_where_there_is_network() {
    use std::time::Duration;
    let check = crate::checks::no_outbound_network_check();
    assert_eq!(check.name, "no-outbound-network");
    assert_eq!(check.kind, CheckKind::Network);
    assert_eq!(check.timeout, crate::step::MIN_STEP_TIMEOUT);
    let resolves = child_process::Command::new("getent", Duration::from_secs(30))
        .args(["hosts", "deb.debian.org"])
        .run()
        .is_ok();
    if !resolves {
        println!("SKIP: deb.debian.org does not resolve here; nothing to show failing");
        return;
    }
    let o = child_process::Command::new("/bin/sh", Duration::from_secs(60))
        .arg("-c")
        .arg(&check.script)
        .run_status()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        o.stdout_lossy().contains("deb.debian.org resolves"),
        "{o:?}"
    );
}
