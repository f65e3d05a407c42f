use std::process::Command;

use super::*;

fn case(name: &str, ms: u64, outcome: Outcome) -> CaseResult {
    CaseResult {
        name: name.into(),
        classname: "nodeimg.node.debian-12".into(),
        duration: Duration::from_millis(ms),
        outcome,
    }
}

fn sample() -> Vec<CaseResult> {
    vec![
        case("version-containerd", 1250, Outcome::Passed),
        case(
            "version-kubelet",
            30,
            Outcome::Failed {
                message: "kubelet --version says v1.20.1, expected v1.20.2".into(),
                output: "kubelet --version says v1.20.1, expected v1.20.2\n".into(),
            },
        ),
        case(
            "weird <&>\"' name",
            5,
            Outcome::Failed {
                message: "a \"quoted\" <tag> & 'apos'\nsecond line\twith tab".into(),
                output: "\x1b[31mred\x1b[0m\0nul\r\nline ]]> end \u{FFFF} é ✓\n".into(),
            },
        ),
        case(
            "container-run",
            0,
            Outcome::Skipped {
                message: "containerd is not running".into(),
            },
        ),
    ]
}

#[test]
fn counts_and_structure() {
    let xml = render("nodeimg checks", &sample());
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"nodeimg checks\" tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\" time=\"1.285\">\n"));
    assert!(xml.contains("  <testsuite name=\"nodeimg checks\" tests=\"4\" failures=\"2\" errors=\"0\" skipped=\"1\" time=\"1.285\">\n"));
    assert!(xml.contains(
        "    <testcase name=\"version-containerd\" classname=\"nodeimg.node.debian-12\" time=\"1.250\"/>\n"
    ));
    assert!(xml.contains(
        "      <failure message=\"kubelet --version says v1.20.1, expected v1.20.2\">kubelet --version says v1.20.1, expected v1.20.2\n</failure>\n"
    ));
    assert!(xml.contains("      <skipped message=\"containerd is not running\"/>\n"));
    assert!(!xml.contains("timestamp"));
    assert_eq!(xml, render("nodeimg checks", &sample()), "deterministic");
    let empty = render("none", &[]);
    assert!(empty.contains("tests=\"0\" failures=\"0\" errors=\"0\" skipped=\"0\" time=\"0.000\""));
}

#[test]
fn escaping() {
    let xml = render("s", &sample());
    assert!(xml.contains("name=\"weird &lt;&amp;&gt;&quot;&apos; name\""));
    assert!(xml.contains(
        "message=\"a &quot;quoted&quot; &lt;tag&gt; &amp; &apos;apos&apos;&#10;second line&#9;with tab\""
    ));
    assert!(
        xml.contains(
            ">\\x1b[31mred\\x1b[0m\\x00nul&#13;\nline ]]&gt; end \\u{FFFF} é ✓\n</failure>"
        )
    );
    assert!(!xml.contains('\u{1b}'));
    assert!(!xml.contains('\0'));
    assert!(!xml.contains('\r'));
    assert_eq!(
        escape("\u{7f}\u{85}", false),
        "\u{7f}\u{85}",
        "allowed in XML 1.0"
    );
}

fn xmllint(args: &[&str], xml: &str) -> Option<std::process::Output> {
    if !fixtures::tools::have("xmllint") {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).unwrap();
    Some(
        Command::new("xmllint")
            .args(args)
            .arg(&file)
            .output()
            .unwrap(),
    )
}

#[test]
fn xmllint_accepts_the_report_and_rejects_broken_xml() {
    let Some(bad) = xmllint(&["--noout"], "<a><b></a>\u{1b}") else {
        return;
    };
    assert!(!bad.status.success(), "xmllint must be able to fail");
    let out = xmllint(&["--noout"], &render("nodeimg checks", &sample())).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the parsed document keeps the text: xmllint --xpath reads the failure message back
    let out = xmllint(
        &["--xpath", "string(//testcase[2]/failure/@message)"],
        &render("nodeimg checks", &sample()),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "kubelet --version says v1.20.1, expected v1.20.2\n"
    );
    // newline and tab in an attribute survive parsing
    let out = xmllint(
        &["--xpath", "string(//testcase[3]/failure/@message)"],
        &render("nodeimg checks", &sample()),
    )
    .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "a \"quoted\" <tag> & 'apos'\nsecond line\twith tab\n"
    );
}

#[test]
fn xmllint_validates_against_the_schema() {
    let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/src/junit/junit-subset.xsd");
    let schema = ["--noout", "--schema", xsd];
    let Some(out) = xmllint(&schema, &render("nodeimg checks", &sample())) else {
        return;
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = xmllint(&schema, &render("none", &[])).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // the schema itself can fail: a testcase without time
    let broken = render("s", &sample()).replace(" time=\"1.250\"", "");
    let out = xmllint(&schema, &broken).unwrap();
    assert!(!out.status.success());
}

#[test]
fn write_is_atomic_and_replaces() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("junit.xml");
    write(&path, "first", &sample()[..1]).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        render("first", &sample()[..1])
    );
    write(&path, "second", &sample()).unwrap();
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        render("second", &sample())
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["junit.xml"], "no temporary file left behind");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o644);
    // a missing directory is an error, not a panic
    let err = write(&dir.path().join("no/such/junit.xml"), "s", &[]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}
