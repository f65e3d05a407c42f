use super::*;

fn run(scope: Scope) -> ConformanceRun {
    ConformanceRun {
        scope,
        fs_uuid: "0f1e2d3c-4b5a-4978-a695-b4c3d2e1f0ab".into(),
        images: vec![(
            "images/busybox_1.29.tar".into(),
            "docker.io/library/busybox:1.29".into(),
        )],
        offline_skips: vec![OfflineSkip {
            name: "should be able to pull image [NodeConformance]".into(),
            reason: "pulls from a registry on the internet".into(),
        }],
        after_kubeadm: true,
        deadline: Duration::from_secs(1800),
    }
}

/// Whether `grep -E` (whose escapes agree with Go's RE2 for these characters) finds `regex`
/// in `line`.
fn grep_matches(regex: &str, line: &str) -> bool {
    let out = child_process::Command::new("grep", Duration::from_secs(10))
        .args(["-Ec", "-e", regex])
        .stdin_bytes(format!("{line}\n").into_bytes())
        .run_status()
        .unwrap();
    out.stdout_lossy().trim() == "1"
}

#[test]
fn quick_focus_matches_each_quick_test_literally_and_nothing_like_it() {
    let focus = run(Scope::Quick).focus();
    for name in QUICK {
        assert!(grep_matches(&focus, name), "{name}");
    }
    // A near miss: parentheses and dots are literal, not groups or wildcards.
    assert!(!grep_matches(
        &focus,
        "[sig-storage] EmptyDir volumes should support root,0644,tmpfs [LinuxOnly] [NodeConformance] [Conformance]"
    ));
    assert!(
        !grep_matches(
            &focus,
            "[sig-storage] Secrets should be consumable from pods in volume with mappings [NodeConformance] [Conformance]"
        ) || QUICK.iter().any(|q| q.contains("with mappings"))
    );
    assert_eq!(run(Scope::Full).focus(), FOCUS);
    assert_eq!(literal("a.b(c)[d]|e*"), r"a\.b\(c\)\[d\]\|e\*");
}

#[test]
fn skip_has_upstreams_tags_and_every_offline_skip() {
    let skip = run(Scope::Full).skip();
    for tag in ["[Flaky]", "[Slow]", "[Serial]", "[Disruptive]"] {
        assert!(grep_matches(&skip, &format!("some test {tag}")), "{tag}");
    }
    assert!(grep_matches(
        &skip,
        "[k8s.io] Container Runtime blackbox test when running a container with a new image should be able to pull image [NodeConformance]"
    ));
    assert!(!grep_matches(
        &skip,
        "[k8s.io] Pods should get a host IP [NodeConformance] [Conformance]"
    ));
}

#[test]
fn bad_parameters_are_named() {
    let mut r = run(Scope::Quick);
    r.images[0].0 = "../etc/passwd".into();
    let e = steps(&r).unwrap_err().to_string();
    assert!(e.contains("test image file"), "{e}");
    let mut r = run(Scope::Quick);
    r.images[0].1 = "busybox;reboot".into();
    let e = steps(&r).unwrap_err().to_string();
    assert!(e.contains("test image"), "{e}");
    let mut r = run(Scope::Quick);
    r.offline_skips[0].reason = "two\nlines".into();
    let e = steps(&r).unwrap_err().to_string();
    assert!(e.contains("offline skip"), "{e}");
    let mut r = run(Scope::Quick);
    r.fs_uuid = "$(reboot)".into();
    let e = steps(&r).unwrap_err().to_string();
    assert!(e.contains("test disk UUID"), "{e}");
}

#[test]
fn steps_in_order_with_the_deadline_on_the_suite() {
    let s = steps(&run(Scope::Quick)).unwrap();
    let names: Vec<&str> = s.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "conformance-node-reset",
            "conformance-disk-mount",
            "conformance-images",
            "conformance-kubelet",
            "conformance-suite"
        ]
    );
    assert_eq!(s[4].timeout, Duration::from_secs(1800));
    assert!(s[0].script.contains("tasks kill"), "{}", s[0].script);
    let mut r = run(Scope::Quick);
    r.after_kubeadm = false;
    assert!(!steps(&r).unwrap()[0].script.contains("tasks kill"));
    assert!(s[3].script.contains("--node-ip=10.0.2.15"));
    assert!(s[3].script.contains("server: https://127.0.0.1:6443"));
}

/// The suite step under a real sh with a fake suite binary and `systemctl`: the arguments
/// arrive as one word each; the suite's exit status is the step's; a run that wrote no JUnit report fails the step, saying so. The reports come back
/// as one document.
#[test]
fn suite_step_passes_the_status_and_needs_the_report() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let bin = d.path().join("bin");
    let disk = d.path().join("disk");
    let work = d.path().join("work");
    for dir in [&bin, &disk, &work.join("report")] {
        std::fs::create_dir_all(dir).unwrap();
    }
    std::fs::write(work.join("token"), "abc").unwrap();
    let exe = |path: &std::path::Path, body: &str| {
        std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    };
    exe(&bin.join("systemctl"), "exit 0");
    let args = d.path().join("args");
    exe(
        &disk.join(SUITE_BINARY),
        &format!(
            "for a in \"$@\"; do printf '%s\\n' \"$a\"; done > {args}\n\
             echo 'W1206 util.go:104] Health check on \"https://127.0.0.1:6443/healthz\" failed'\n\
             echo 'Ran 3 of 335 Specs'\n\
             if [ -n \"$WRITE_REPORT\" ]; then\n\
             \tprintf '<?xml version=\"1.0\"?>\\n<testsuite><testcase name=\"a\"/></testsuite>\\n' > {work}/report/junit_nodeimg_01.xml\n\
             \tprintf '<?xml version=\"1.0\"?>\\n<testsuite><testcase name=\"b\"/></testsuite>\\n' > {work}/report/junit_nodeimg_02.xml\n\
             fi\n\
             exit \"$SUITE_EXIT\"",
            args = args.display(),
            work = work.display(),
        ),
    );
    let script = run(Scope::Quick)
        .suite()
        .script
        .replace(TEST_DISK.mount, &disk.display().to_string())
        .replace(WORK_DIR, &work.display().to_string());
    let go = |exit: &str, report: &str| {
        for n in ["01", "02"] {
            let _ = std::fs::remove_file(work.join(format!("report/junit_nodeimg_{n}.xml")));
        }
        child_process::Command::new("/bin/sh", Duration::from_secs(30))
            .arg("-c")
            .arg(&script)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env("SUITE_EXIT", exit)
            .env("WRITE_REPORT", report)
            .run_status()
            .unwrap()
    };
    let ok = go("0", "1");
    assert!(ok.status.success(), "{ok:?}");
    assert!(ok.stdout_lossy().contains("Ran 3 of 335 Specs"), "{ok:?}");
    assert!(!ok.stdout_lossy().contains("Health check"), "{ok:?}");
    let got = std::fs::read_to_string(&args).unwrap();
    let words: Vec<&str> = got.lines().collect();
    let focus = format!("--ginkgo.focus={}", run(Scope::Quick).focus());
    assert!(words.contains(&focus.as_str()), "{got}");
    assert!(words.contains(&"--ginkgo.flakeAttempts=2"), "{got}");
    assert!(words.contains(&"--bearer-token=abc"), "{got}");
    assert!(words.contains(&"--conformance=true"), "{got}");
    // Every report as one document.
    let reports = child_process::Command::new("/bin/sh", Duration::from_secs(30))
        .arg("-c")
        .arg(reports_command().replace(WORK_DIR, &work.display().to_string()))
        .run_status()
        .unwrap();
    assert_eq!(
        reports.stdout_lossy(),
        "<reports>\n<testsuite><testcase name=\"a\"/></testsuite>\n<testsuite><testcase name=\"b\"/></testsuite>\n</reports>\n"
    );
    let failed = go("1", "1");
    assert_eq!(failed.status.code(), Some(1), "{failed:?}");
    let no_report = go("0", "");
    assert!(!no_report.status.success(), "{no_report:?}");
    assert!(
        no_report
            .stderr_tail
            .contains("the suite wrote no JUnit report"),
        "{no_report:?}"
    );
}

/// ext4 keeps at most 16 bytes of a label (mkfs.ext4 cuts a longer one, and `blkid -L` then
/// finds nothing): the first build with a 19-byte label could not mount its test disk.
#[test]
fn read_only_disk_labels_fit_ext4() {
    for disk in [TEST_DISK, crate::payload::PAYLOAD_DISK] {
        assert!(disk.label.len() <= 16, "{}", disk.label);
    }
}
