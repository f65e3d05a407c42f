//! Host discovery and the accelerator probe against the real QEMU.

use std::time::Duration;

use qemu::accel::{self, Accel, AccelChoice};

use crate::common::{host_or_skip, qemu_or_skip};

#[test]
fn discovers_host() {
    let Some(h) = host_or_skip("discovers_host") else {
        return;
    };
    assert!(h.qemu.is_file());
    assert!(h.qemu_version.major >= 6, "{h:?}");
    assert!(h.firmware.code.is_file() && h.firmware.vars_template.is_file());
    let j = serde_json::to_value(&h).unwrap();
    assert!(j["qemu_version_line"].as_str().unwrap().contains("QEMU"));
}

/// The probe guest exits with the expected code under TCG: the probe itself is right.
#[test]
fn tcg_self_test_runs_probe_guest() {
    let Some(q) = qemu_or_skip("tcg_self_test_runs_probe_guest") else {
        return;
    };
    let took = accel::tcg_self_test(&q).unwrap();
    assert!(took < Duration::from_secs(30));
}

/// On this kind of machine (no nested virtualisation, `/dev/kvm` present but guests crawl),
/// the verdict is TCG and the reason says KVM did not run the guest.
#[test]
fn probe_verdict() {
    let Some(q) = qemu_or_skip("probe_verdict") else {
        return;
    };
    let t = std::time::Instant::now();
    let v = accel::resolve(AccelChoice::Auto, &q);
    let took = t.elapsed();
    // The probe's deadline is behaviour, not speed: a KVM guest that never runs is killed at
    // KVM_DEADLINE, so the verdict comes shortly after it, never minutes later.
    assert!(
        took < accel::KVM_DEADLINE + std::time::Duration::from_secs(10),
        "the probe took {took:?}, its deadline is {:?}",
        accel::KVM_DEADLINE
    );
    // cached: the same answer again
    assert_eq!(accel::resolve(AccelChoice::Auto, &q), v);
    if std::env::var_os("NODEIMG_EXPECT_KVM").is_some() {
        assert_eq!(v.accel, Accel::Kvm, "{v:?}");
    } else if v.accel == Accel::Kvm {
        println!(
            "SKIP: probe_verdict: this host really runs KVM guests: {}",
            v.reason
        );
    } else {
        assert!(
            v.reason.contains("KVM did not run") || v.reason.contains("/dev/kvm"),
            "{v:?}"
        );
    }
}
