use super::*;

const GOOD: &str = r#"# fixture spec
[image]
name = "debian12-k8s"
distro = "debian-12"
firmware = "uefi"
disk_gib = 8

[base]
path = "base.qcow2"
sha256 = "0000000000000000000000000000000000000000000000000000000000000abc"
format = "qcow2"

[kubernetes]
version = "v1.20.2"

[components]
containerd = "1.6.20~ds1-1"
runc = "1.1.5+ds1-1"
crictl = "1.20.0-nodeimg-standin"
cni_plugins = "1.1.1+ds1-3"
pause = "3.2"

[export]
formats = ["vhd", "raw", "qcow2", "raw"]

[[files]]
source = "files/motd"
dest = "/etc/motd"
mode = "0644"

[[commands]]
name = "motd"
run = "chmod 0644 /etc/motd"

[[checks]]
name = "motd-present"
run = "test -s /etc/motd"
"#;

fn parse_at(text: &str) -> Result<Spec, SpecError> {
    parse(Path::new("/specs/node.toml"), text)
}

/// The error for `text`, as `line:column: message` (the path is checked once below).
fn err(text: &str) -> (usize, usize, String) {
    let e = parse_at(text).expect_err("must be refused");
    assert!(e.to_string().starts_with("/specs/node.toml:"), "{e}");
    (e.line, e.column, e.message)
}

#[test]
fn the_good_spec_parses_with_everything_resolved() {
    let s = parse_at(GOOD).unwrap();
    assert_eq!(s.image.name, "debian12-k8s");
    assert_eq!(s.image.distro, "debian-12");
    assert_eq!(s.image.firmware, Firmware::Uefi);
    assert_eq!(s.image.disk_gib, 8);
    assert_eq!(s.base.source, BaseSource::Path("/specs/base.qcow2".into()));
    assert_eq!(s.base.format, diskimg::ImageFormat::Qcow2);
    assert_eq!(s.kubernetes_version, "v1.20.2");
    assert_eq!(s.components.crictl, "1.20.0-nodeimg-standin");
    assert_eq!(s.formats, [Format::Raw, Format::Qcow2, Format::Vhd]);
    assert_eq!(s.files[0].source, PathBuf::from("/specs/files/motd"));
    assert_eq!(s.files[0].mode, 0o644);
    assert_eq!(s.commands[0].name, "motd");
    assert_eq!(s.checks[0].run, "test -s /etc/motd");
    assert_eq!(s.sha256, hex::encode(Sha256::digest(GOOD.as_bytes())));
}

#[test]
fn unknown_key_names_line_and_column() {
    let text = GOOD.replace("disk_gib = 8\n", "disk_gib = 8\ndisk_size = 9\n");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (7, 1), "{msg}");
    assert!(msg.contains("unknown field `disk_size`"), "{msg}");
}

#[test]
fn unknown_table_is_refused() {
    let text = format!("{GOOD}\n[network]\nmode = \"open\"\n");
    let (line, _, msg) = err(&text);
    assert_eq!(line, GOOD.lines().count() + 2, "{msg}");
    assert!(msg.contains("unknown field `network`"), "{msg}");
}

#[test]
fn wrong_type_names_the_value() {
    let text = GOOD.replace("disk_gib = 8", "disk_gib = \"8\"");
    let (line, col, msg) = err(&text);
    assert_eq!((line, col), (6, 12), "{msg}");
    assert!(msg.contains("invalid type"), "{msg}");
}

#[test]
fn missing_field_is_refused() {
    let text = GOOD.replace("runc = \"1.1.5+ds1-1\"\n", "");
    let (line, _, msg) = err(&text);
    assert!(msg.contains("missing field `runc`"), "{msg}");
    assert_eq!(line, 16, "the [components] table: {msg}");
}

/// Each broken rule is reported at the value that breaks it (line of `from` in GOOD, `col`).
#[test]
fn rule_violations_point_at_the_value() {
    for (from, to, col, want) in [
        ("sha256 = \"0000", "sha256 = \"X000", 10, "base.sha256"),
        (
            "firmware = \"uefi\"",
            "firmware = \"efi\"",
            12,
            "image.firmware",
        ),
        ("disk_gib = 8", "disk_gib = 0", 12, "image.disk_gib"),
        (
            "format = \"qcow2\"",
            "format = \"vhd\"",
            10,
            "base.format: \"vhd\": expected \"qcow2\" or \"raw\"",
        ),
        (
            "distro = \"debian-12\"",
            "distro = \"fedora-40\"",
            10,
            "unknown distro \"fedora-40\"; known: debian-12, debian-13, ubuntu-22.04, ubuntu-24.04",
        ),
        (
            "name = \"debian12-k8s\"",
            "name = \"Debian 12\"",
            8,
            "image.name",
        ),
        (
            "version = \"v1.20.2\"",
            "version = \"1.20\"",
            11,
            "kubernetes.version",
        ),
        (
            "\"vhd\", \"raw\"",
            "\"vhdx\", \"raw\"",
            12,
            "unknown format \"vhdx\"",
        ),
        (
            "dest = \"/etc/motd\"",
            "dest = \"etc/motd\"",
            8,
            "files.dest",
        ),
        ("mode = \"0644\"", "mode = \"0999\"", 8, "files.mode"),
        ("mode = \"0644\"", "mode = \"+644\"", 8, "files.mode"),
        ("mode = \"0644\"", "mode = \"64\"", 8, "files.mode"),
        ("mode = \"0644\"", "mode = \"00644\"", 8, "files.mode"),
        ("dest = \"/etc/motd\"", "dest = \"/\"", 8, "files.dest"),
        ("dest = \"/etc/motd\"", "dest = \"/etc/\"", 8, "files.dest"),
        (
            "dest = \"/etc/motd\"",
            "dest = \"/etc/../motd\"",
            8,
            "files.dest",
        ),
        (
            "run = \"test -s /etc/motd\"",
            "run = \"  \"",
            7,
            "checks.run",
        ),
    ] {
        let at = GOOD[..GOOD.find(from).expect(from)].matches('\n').count() + 1;
        let (line, column, msg) = err(&GOOD.replacen(from, to, 1));
        assert!(msg.contains(want), "{from} → {msg}");
        assert_eq!((line, column), (at, col), "{from} → {msg}");
    }
}

#[test]
fn base_needs_exactly_one_source() {
    let both = GOOD.replace(
        "format = \"qcow2\"",
        "format = \"qcow2\"\nurl = \"https://example.org/x.qcow2\"",
    );
    assert!(err(&both).2.contains("either path or url"));
    let none = GOOD.replace("path = \"base.qcow2\"\n", "");
    assert!(err(&none).2.contains("needs a path or a url"));
    let ftp = none.replace(
        "format = \"qcow2\"",
        "format = \"qcow2\"\nurl = \"ftp://x\"",
    );
    assert!(err(&ftp).2.contains("https://"));
    let url = none.replace(
        "format = \"qcow2\"",
        "format = \"qcow2\"\nurl = \"https://cloud.debian.org/x.qcow2\"",
    );
    assert_eq!(
        parse_at(&url).unwrap().base.source,
        BaseSource::Url("https://cloud.debian.org/x.qcow2".into())
    );
}

#[test]
fn duplicate_check_names_are_refused() {
    let text = format!("{GOOD}\n[[checks]]\nname = \"motd-present\"\nrun = \"true\"\n");
    let (line, col, msg) = err(&text);
    assert!(msg.contains("used twice"), "{msg}");
    assert_eq!((line, col), (GOOD.lines().count() + 3, 8));
}

#[test]
fn broken_toml_and_non_utf8_are_errors_not_panics() {
    let (line, _, msg) = err("[image\nname = 1");
    assert_eq!(line, 1, "{msg}");
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, b"[image]\nname = \"\xff\"\n").unwrap();
    let e = load(&p).unwrap_err();
    assert_eq!((e.line, e.column), (2, 9), "{e}");
    assert!(
        e.to_string().contains("bad.toml") && e.message.contains("UTF-8"),
        "{e}"
    );
    let e = load(&dir.path().join("missing.toml")).unwrap_err();
    assert!(
        e.to_string().contains("missing.toml") && e.message.contains("cannot read"),
        "{e}"
    );
}

/// The specs shipped under `examples/` work as written: they parse, the files they copy
/// exist, no digest is a placeholder of zeros, and `fetch` has a plan for each whose base
/// image is pinned (by the spec or by the distro's published checksum file).
#[test]
fn shipped_examples_parse_and_plan() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.contains(&"0".repeat(64)),
                "{}: a placeholder digest of zeros",
                path.display()
            );
            let spec = load(&path).unwrap_or_else(|e| panic!("{e}"));
            let planned = crate::fetch::plan::plan(&spec);
            let base = &planned[0];
            assert_eq!(base.kind, crate::lock::Kind::BaseImage);
            let published = matches!(
                &base.source,
                crate::fetch::plan::Source::Url {
                    checksum: crate::fetch::plan::Checksum::File { .. },
                    ..
                }
            );
            assert!(
                base.pinned_sha256.is_some() || published,
                "{}: the base image is pinned by nothing: {base:?}",
                path.display()
            );
            for f in &spec.files {
                assert!(
                    f.source.is_file(),
                    "{}: {} missing",
                    path.display(),
                    f.source.display()
                );
            }
            seen.push(spec.image.distro);
        }
    }
    seen.sort();
    assert_eq!(seen, ["debian-12", "ubuntu-22.04", "ubuntu-24.04"]);
}

#[test]
fn the_fetch_section_is_optional_and_strict() {
    assert_eq!(parse_at(GOOD).unwrap().fetch, FetchSection::default());
    let with = format!("{GOOD}\n[fetch]\nmirror = \"http://127.0.0.1:8080/m/\"\n");
    assert_eq!(
        parse_at(&with).unwrap().fetch.mirror.as_deref(),
        Some("http://127.0.0.1:8080/m")
    );
    let line = GOOD.lines().count() + 3;
    let bad = format!("{GOOD}\n[fetch]\nmirror = \"ftp://mirror\"\n");
    let (l, col, msg) = err(&bad);
    assert_eq!((l, col), (line, 10), "{msg}");
    assert!(
        msg.starts_with("fetch.mirror:") && msg.contains("http://"),
        "{msg}"
    );
    let hostless = format!("{GOOD}\n[fetch]\nmirror = \"https:///x\"\n");
    assert!(err(&hostless).2.contains("no host"));
    let query = format!("{GOOD}\n[fetch]\nmirror = \"http://m/?a=b\"\n");
    assert!(err(&query).2.contains("'?'"));
    let unknown = format!("{GOOD}\n[fetch]\nmirrors = \"http://m\"\n");
    assert!(err(&unknown).2.contains("unknown field `mirrors`"));
}

/// [`GOOD`] without its `base.sha256`.
fn without_base_sha256() -> String {
    GOOD.replace(
        "sha256 = \"0000000000000000000000000000000000000000000000000000000000000abc\"\n",
        "",
    )
}

/// Asserts that `text` is refused at `line:column` with a message starting `start`.
fn refused_at(text: &str, line: usize, column: usize, start: &str) {
    let (l, c, msg) = err(text);
    assert_eq!((l, c), (line, column), "{msg}");
    assert!(msg.starts_with(start), "{msg}");
}

#[test]
fn base_sha256_is_optional_where_something_else_pins_the_image() {
    // A path: the user's own file, hashed and locked.
    let no_sum = without_base_sha256();
    assert_eq!(parse_at(&no_sum).unwrap().base.sha256, None);
    // A URL on the distro's image host: its checksum file pins it.
    let debian = no_sum.replace(
        "path = \"base.qcow2\"",
        "url = \"https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2\"",
    );
    assert_eq!(parse_at(&debian).unwrap().base.sha256, None);
    // Anywhere else nothing would: an error at the key.
    let other = no_sum.replace(
        "path = \"base.qcow2\"",
        "url = \"https://example.org/debian.qcow2\"",
    );
    refused_at(
        &other,
        9,
        7,
        "base.sha256: is needed: \"https://example.org/debian.qcow2\" is not on debian-12's image host",
    );
}

/// `[base] keyring`: the key that signs the checksum file next to a url base, for a distro
/// that signs it; resolved against the spec's directory; refused at the key elsewhere.
#[test]
fn base_keyring_names_the_checksum_files_key_and_is_checked_at_the_key() {
    let no_sum = without_base_sha256();
    let ubuntu = no_sum.replace("distro = \"debian-12\"", "distro = \"ubuntu-22.04\"");
    // Any host: the keyring verifies the SHA256SUMS next to the image, which then pins it.
    let keyed = ubuntu.replace(
        "path = \"base.qcow2\"",
        "url = \"https://images.example/jammy/jammy.img\"\nkeyring = \"keys/images.gpg\"",
    );
    let s = parse_at(&keyed).unwrap();
    assert_eq!(
        s.base.keyring,
        Some(PathBuf::from("/specs/keys/images.gpg"))
    );
    assert_eq!(s.base.sha256, None);
    assert_eq!(parse_at(GOOD).unwrap().base.keyring, None);
    // Debian's SHA512SUMS is not signed: nothing for a keyring to verify.
    let debian = keyed.replace("distro = \"ubuntu-22.04\"", "distro = \"debian-12\"");
    refused_at(
        &debian,
        10,
        11,
        "base.keyring: debian-12 does not sign its checksum file (SHA512SUMS)",
    );
    // A path has no published checksum file.
    let path = ubuntu.replace(
        "path = \"base.qcow2\"",
        "path = \"base.qcow2\"\nkeyring = \"k.gpg\"",
    );
    refused_at(&path, 10, 11, "base.keyring: applies to a url only");
    let empty = keyed.replace("\"keys/images.gpg\"", "\"\"");
    assert_eq!(err(&empty).2, "base.keyring: is empty");
}

#[test]
fn skip_addons_and_pause_are_optional_and_checked() {
    let s = parse_at(GOOD).unwrap();
    assert!(s.skip_addons.is_empty());
    assert_eq!(s.components.pause.as_deref(), Some("3.2"));
    let text = GOOD
        .replace(
            "version = \"v1.20.2\"\n",
            "version = \"v1.20.2\"\nskip_addons = [\"kube-proxy\", \"coredns\", \"coredns\"]\n",
        )
        .replace("pause = \"3.2\"\n", "");
    let s = parse_at(&text).unwrap();
    assert_eq!(s.skip_addons, [Addon::CoreDns, Addon::KubeProxy]);
    assert_eq!(s.components.pause, None);
    let bad = GOOD.replace(
        "version = \"v1.20.2\"\n",
        "version = \"v1.20.2\"\nskip_addons = [\"coredns\", \"dns\"]\n",
    );
    let (line, col, msg) = err(&bad);
    assert_eq!((line, col), (15, 27), "{msg}");
    assert_eq!(
        msg,
        "kubernetes.skip_addons: \"dns\" is not an addon nodeimg can leave out (coredns, kube-proxy)"
    );
}

#[test]
fn conformance_is_off_by_default_and_checked() {
    assert_eq!(parse_at(GOOD).unwrap().conformance, None);
    let with = |v: &str| {
        GOOD.replace(
            "version = \"v1.20.2\"\n",
            &format!("version = \"v1.20.2\"\nconformance = \"{v}\"\n"),
        )
    };
    assert_eq!(
        parse_at(&with("quick")).unwrap().conformance,
        Some(Scope::Quick)
    );
    assert_eq!(
        parse_at(&with("full")).unwrap().conformance,
        Some(Scope::Full)
    );
    assert_eq!(parse_at(&with("off")).unwrap().conformance, None);
    let (line, col, msg) = err(&with("fast"));
    assert_eq!((line, col), (15, 15), "{msg}");
    assert_eq!(
        msg,
        "kubernetes.conformance: \"fast\": expected \"off\", \"quick\" or \"full\""
    );
}
