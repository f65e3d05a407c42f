use std::path::Path;

use super::*;

const SHA: &str = "a3b1c2d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90";

fn good() -> String {
    format!(
        r#"version = 1

[[artifact]]
name = "base"
kind = "base-image"
source = "fixture: debian 12"
size = 10
sha256 = "{SHA}"

[[artifact]]
name = "kubeadm"
kind = "binary"
component = "kubeadm"
version = "v1.20.2"
source = "https://dl.k8s.io/release/v1.20.2/bin/linux/amd64/kubeadm"
size = 3
sha256 = "{SHA}"
dest = "/usr/bin/kubeadm"
mode = "0755"

[[artifact]]
name = "pause"
kind = "image"
component = "pause"
version = "3.2"
source = "fixture"
size = 3
sha256 = "{SHA}"
image = "k8s.gcr.io/pause:3.2"
"#
    )
}

fn err(text: &str) -> String {
    parse(Path::new("x.lock"), text).unwrap_err().to_string()
}

#[test]
fn a_good_lock_parses_and_renders_back_to_the_same_artifacts() {
    let lock = parse(Path::new("x.lock"), &good()).unwrap();
    assert_eq!(lock.artifacts.len(), 3);
    assert_eq!(lock.base().name, "base");
    assert_eq!(lock.artifacts[1].mode_bits(), Some(0o755));
    assert_eq!(lock.of_kind(Kind::Image).count(), 1);
    let again = parse(Path::new("y.lock"), &render(&lock.artifacts)).unwrap();
    assert_eq!(again.artifacts, lock.artifacts);
}

#[test]
fn the_lock_path_sits_next_to_the_spec() {
    assert_eq!(
        path_for_spec(Path::new("/a/b/fixture.toml")),
        Path::new("/a/b/fixture.lock")
    );
}

#[test]
fn errors_name_the_file_line_column_and_key() {
    let text = good().replace("kind = \"binary\"", "kind = \"tarball\"");
    let e = err(&text);
    assert!(e.starts_with("x.lock:12:8: "), "{e}");
    assert!(e.contains("tarball"), "{e}");

    let text = good().replace("dest = \"/usr/bin/kubeadm\"", "dest = \"usr/bin/kubeadm\"");
    let e = err(&text);
    assert!(e.starts_with("x.lock:18:8: artifact.dest:"), "{e}");

    let text = good().replace("mode = \"0755\"", "mode = \"rwx\"");
    assert!(err(&text).contains("artifact.mode"));

    let text = good().replacen(&format!("sha256 = \"{SHA}\""), "sha256 = \"abc\"", 1);
    let e = err(&text);
    assert!(e.starts_with("x.lock:8:10: artifact.sha256:"), "{e}");

    let text = good().replace("image = \"k8s.gcr.io/pause:3.2\"", "");
    assert!(err(&text).contains("artifact.image"));

    let text = good().replace("name = \"pause\"", "name = \"kubeadm\"");
    assert!(err(&text).contains("given twice"));

    let text = good().replace("component = \"pause\"", "component = \"coredns\"");
    assert!(err(&text).contains("artifact.component"));

    let text = good().replace("version = 1", "version = 2");
    assert!(err(&text).contains("lock format 2"));

    let text = good().replace("size = 3\n", "size = 3\nurl = \"x\"\n");
    assert!(err(&text).contains("unknown field"), "{}", err(&text));

    let text = good().replace("kind = \"base-image\"", "kind = \"deb\"");
    assert!(err(&text).contains("exactly one base-image"));
}

#[test]
fn a_truncated_lock_is_an_error_not_a_panic() {
    let text = good();
    for cut in (0..text.len()).step_by(7) {
        let _ = parse(Path::new("x.lock"), &text[..cut]);
    }
    assert!(err(&text[..40]).starts_with("x.lock:"));
}

#[test]
fn deb_artifacts_and_the_packages_record_round_trip() {
    let text = format!(
        "{}\n[[artifact]]\nname = \"deb-libstdc++6\"\nkind = \"deb\"\nversion = \"1:12.2.0-14+deb12u1\"\n\
         architecture = \"amd64\"\nsuite = \"bookworm-security\"\nsource = \"http://a/pool/l.deb\"\n\
         size = 3\nsha256 = \"{SHA}\"\n",
        good()
    );
    let lock = parse(Path::new("x.lock"), &text).unwrap();
    let deb = lock.of_kind(Kind::Deb).next().unwrap();
    assert_eq!(deb.version.as_deref(), Some("1:12.2.0-14+deb12u1"));
    assert_eq!(deb.suite.as_deref(), Some("bookworm-security"));
    assert_eq!(lock.packages, None);
    let set = PackageSet {
        wanted: vec!["conntrack".into(), "socat".into()],
        base_sha256: SHA.into(),
        sources: vec!["http://a bookworm | main | /k.gpg".into()],
    };
    let rendered = render_with_packages(&lock.artifacts, Some(&set));
    let again = parse(Path::new("y.lock"), &rendered).unwrap();
    assert_eq!(again.artifacts, lock.artifacts);
    assert_eq!(again.packages, Some(set));
    // Without deb fields or a record, the text is what it always was.
    assert!(!render(&parse(Path::new("x.lock"), &good()).unwrap().artifacts).contains("suite"));
}

#[test]
fn deb_fields_belong_to_debs_only() {
    let binary_with_suite =
        good().replace("mode = \"0755\"", "mode = \"0755\"\nsuite = \"bookworm\"");
    assert!(err(&binary_with_suite).contains("artifact.suite: a binary artifact has no suite"));
    let bad_name = format!(
        "{}\n[[artifact]]\nname = \"deb-Conntrack\"\nkind = \"deb\"\nsource = \"s\"\nsize = 1\nsha256 = \"{SHA}\"\n",
        good()
    );
    assert!(
        err(&bad_name).contains("[a-z0-9._+-]"),
        "{}",
        err(&bad_name)
    );
}

/// The node conformance inputs: a test-image names its reference, a test-suite is at the
/// spec's Kubernetes version and there is one.
#[test]
fn test_suite_and_test_images() {
    let suite = |version: &str| {
        format!(
            "\n[[artifact]]\nname = \"kubernetes-test-{version}\"\nkind = \"test-suite\"\nversion = \"{version}\"\n\
             source = \"https://dl.k8s.io/{version}/kubernetes-test-linux-amd64.tar.gz\"\nsize = 3\nsha256 = \"{SHA}\"\n"
        )
    };
    let image = format!(
        "\n[[artifact]]\nname = \"test-agnhost\"\nkind = \"test-image\"\nsource = \"fixture\"\nsize = 3\n\
         sha256 = \"{SHA}\"\nimage = \"k8s.gcr.io/e2e-test-images/agnhost:2.21\"\n"
    );
    let text = format!("{}{}{image}", good(), suite("v1.20.2"));
    let lock = parse(Path::new("x.lock"), &text).unwrap();
    assert_eq!(lock.of_kind(Kind::TestSuite).count(), 1);
    assert_eq!(
        lock.of_kind(Kind::TestImage)
            .next()
            .unwrap()
            .image
            .as_deref(),
        Some("k8s.gcr.io/e2e-test-images/agnhost:2.21")
    );
    let again = parse(Path::new("y.lock"), &render(&lock.artifacts)).unwrap();
    assert_eq!(again.artifacts, lock.artifacts);
    let no_ref = text.replace("image = \"k8s.gcr.io/e2e-test-images/agnhost:2.21\"\n", "");
    assert!(err(&no_ref).contains("artifact.image"), "{}", err(&no_ref));

    check::test_suite_matches(&lock, "v1.20.2", "refresh").unwrap();
    let other = parse(
        Path::new("x.lock"),
        &format!("{}{}", good(), suite("v1.21.0")),
    )
    .unwrap();
    let e = check::test_suite_matches(&other, "v1.20.2", "refresh").unwrap_err();
    assert!(
        e.contains("test-suite kubernetes-test-v1.21.0 is for Kubernetes \"v1.21.0\" but the spec pins v1.20.2; refresh"),
        "{e}"
    );
    let two = parse(
        Path::new("x.lock"),
        &format!(
            "{}{}{}",
            good(),
            suite("v1.20.2"),
            suite("v1.20.2").replace("name = \"kubernetes-test-v1.20.2\"", "name = \"second\"")
        ),
    )
    .unwrap();
    let e = check::test_suite_matches(&two, "v1.20.2", "refresh").unwrap_err();
    assert!(e.contains("are both a test-suite"), "{e}");
}
