use super::*;

fn tests_inputs() -> TestInputs {
    let input = |name: &str, kind: Kind, image: Option<&str>| Input {
        artifact: ::inputs::lock::Artifact {
            name: name.into(),
            kind,
            component: None,
            version: (kind == Kind::TestSuite).then(|| "v1.20.2".into()),
            architecture: None,
            suite: None,
            source: "test".into(),
            size: 1,
            sha256: "0".repeat(64),
            dest: None,
            mode: None,
            image: image.map(Into::into),
            note: None,
        },
        path: PathBuf::from("/nonexistent"),
    };
    TestInputs {
        suite: input("kubernetes-test", Kind::TestSuite, None),
        images: vec![input(
            "test-busybox",
            Kind::TestImage,
            Some("docker.io/library/busybox:1.29"),
        )],
    }
}

fn tar_gz(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::fast(),
    ));
    for (name, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o755);
        h.set_cksum();
        b.append_data(&mut h, name, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap()
}

#[test]
fn members_come_out_of_the_tarball_or_the_error_names_it() {
    let d = tempfile::tempdir().unwrap();
    let good = d.path().join("kubernetes-test-linux-amd64.tar.gz");
    std::fs::write(
        &good,
        tar_gz(&[
            ("kubernetes/test/bin/e2e.test", b"e"),
            ("kubernetes/test/bin/ginkgo", b"ginkgo runner"),
            (
                "kubernetes/test/bin/e2e_node.test",
                b"#!/bin/sh\necho suite\n",
            ),
        ]),
    )
    .unwrap();
    let suite = d.path().join("e2e_node.test");
    let runner = d.path().join("ginkgo");
    let members = [
        (SUITE_MEMBER, suite.as_path()),
        ("kubernetes/test/bin/ginkgo", runner.as_path()),
    ];
    let shas = extract_members(&good, &members).unwrap();
    assert_eq!(std::fs::read(&suite).unwrap(), b"#!/bin/sh\necho suite\n");
    assert_eq!(std::fs::read(&runner).unwrap(), b"ginkgo runner");
    assert_eq!(
        shas,
        [
            hex::encode(Sha256::digest(b"#!/bin/sh\necho suite\n")),
            hex::encode(Sha256::digest(b"ginkgo runner"))
        ]
    );
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&suite).unwrap().permissions().mode() & 0o777,
        0o755
    );

    let lacking = d.path().join("other.tar.gz");
    std::fs::write(
        &lacking,
        tar_gz(&[("kubernetes/test/bin/e2e_node.test", b"x")]),
    )
    .unwrap();
    let e = format!("{:#}", extract_members(&lacking, &members).unwrap_err());
    assert!(
        e.contains("other.tar.gz: no kubernetes/test/bin/ginkgo in it"),
        "{e}"
    );
    let not_gz = d.path().join("plain.tar.gz");
    std::fs::write(&not_gz, b"this is not gzip").unwrap();
    let e = format!("{:#}", extract_members(&not_gz, &members).unwrap_err());
    assert!(e.contains("plain.tar.gz"), "{e}");
}

/// A report as ginkgo 1.11's JUnit reporter writes it: every spec, unfocused ones as skipped,
/// a retried flake once per attempt.
const REPORT: &str = r#"<reports>
  <testsuite name="E2eNode Suite" tests="6" failures="2" errors="0" time="300.5">
      <testcase name="[k8s.io] Pods should get a host IP [NodeConformance] [Conformance]" classname="E2eNode Suite" time="20.25"></testcase>
      <testcase name="[sig-storage] Secrets should be consumable from pods in volume [NodeConformance] [Conformance]" classname="E2eNode Suite" time="31">
          <failure type="Failure">/go/src/secrets.go:99&#xA;Expected pod to succeed</failure>
      </testcase>
      <testcase name="[sig-storage] Secrets should be consumable from pods in volume [NodeConformance] [Conformance]" classname="E2eNode Suite" time="28"></testcase>
      <testcase name="[k8s.io] Pods should be updated [NodeConformance] [Conformance]" classname="E2eNode Suite" time="0">
          <skipped></skipped>
      </testcase>
      <testcase name="[k8s.io] Container Runtime blackbox test when running a container with a new image should be able to pull image [NodeConformance]" classname="E2eNode Suite" time="0">
          <skipped></skipped>
      </testcase>
      <testcase name="[k8s.io] Probing container should be restarted with a exec &#34;cat /tmp/health&#34; liveness probe [NodeConformance] [Conformance]" classname="E2eNode Suite" time="70">
          <failure type="Failure">probe.go:1&#xA;timed out</failure>
      </testcase>
  </testsuite>
  <testsuite name="E2eNode Suite" tests="1" failures="0" errors="0" time="1">
      <testcase name="[k8s.io] Something [Serial] [NodeConformance]" classname="E2eNode Suite" time="0"><skipped></skipped></testcase>
  </testsuite>
</reports>"#;

#[test]
fn report_cases_keep_the_focused_ones_and_the_last_attempt() {
    let t = tests_inputs();
    let quick = run_plan(&t, Scope::Quick, "u".into(), true);
    let (found, counts) = cases(REPORT, &quick, "v1.20.2").unwrap();
    let names: Vec<&str> = found.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 3, "{names:#?}");
    assert!(found.iter().all(|c| c.classname == CLASS));
    let secrets = found.iter().find(|c| c.name.contains("Secrets")).unwrap();
    assert!(secrets.passed(), "the retry passed: {secrets:?}");
    let probe = found.iter().find(|c| c.name.contains("Probing")).unwrap();
    assert_eq!(probe.failure(), Some("probe.go:1"));
    assert_eq!(probe.duration, Duration::from_secs(70));
    assert_eq!(
        (counts.focused, counts.passed, counts.failed, counts.skipped),
        (3, 2, 1, 0)
    );
    assert_eq!(counts.scope, "quick");

    let full = run_plan(&t, Scope::Full, "u".into(), true);
    let (found, counts) = cases(REPORT, &full, "v1.20.2").unwrap();
    assert_eq!(
        (counts.focused, counts.passed, counts.failed, counts.skipped),
        (5, 2, 1, 2),
        "{found:#?}"
    );
    let pull = found
        .iter()
        .find(|c| c.name.contains("pull image"))
        .unwrap();
    assert!(
        pull.failure()
            .unwrap()
            .starts_with("skipped offline: pulls images"),
        "{pull:?}"
    );
    let updated = found
        .iter()
        .find(|c| c.name.contains("be updated"))
        .unwrap();
    assert_eq!(
        updated.failure(),
        Some("skipped by the suite (see its output)")
    );
    assert!(!found.iter().any(|c| c.name.contains("[Serial]")));
}

#[test]
fn a_failed_before_suite_counts_and_an_empty_or_broken_report_is_an_error() {
    let t = tests_inputs();
    let run = run_plan(&t, Scope::Quick, "u".into(), false);
    let before = r#"<testsuite><testcase name="[BeforeSuite] BeforeSuite" classname="E2eNode Suite" time="43.6"><failure type="Failure">e2e_node_suite_test.go:199&#xA;should be able to start node services.</failure></testcase>
    <testcase name="[k8s.io] Pods should get a host IP [NodeConformance] [Conformance]" classname="E2eNode Suite" time="0"><failure type="Failure">BeforeSuite failed</failure></testcase></testsuite>"#;
    let (found, counts) = cases(before, &run, "v1.20.2").unwrap();
    assert_eq!(found.len(), 2);
    assert_eq!((counts.focused, counts.failed), (1, 2));
    let e = cases_err(
        "<testsuite><testcase name=\"x\"><skipped/></testcase></testsuite>",
        &run,
    );
    assert!(e.contains("lists no test its focus selects"), "{e}");
    let e = cases_err("<testsuite><testcase", &run);
    assert!(e.contains("JUnit report"), "{e}");
}

fn cases_err(xml: &str, run: &ConformanceRun) -> String {
    format!("{:#}", cases(xml, run, "v1.20.2").unwrap_err())
}

#[test]
fn the_run_names_each_image_on_the_disk_and_has_the_scopes_deadline() {
    let t = tests_inputs();
    let run = run_plan(&t, Scope::Full, "u".into(), false);
    assert_eq!(
        run.images,
        [(
            "images/test-busybox.tar".to_owned(),
            "docker.io/library/busybox:1.29".to_owned()
        )]
    );
    assert_eq!(run.deadline, FULL_DEADLINE);
}
