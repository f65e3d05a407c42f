//! Tests of the NoCloud seed: rendering, validation, determinism, and the image as the system's
//! FAT tools (dosfstools, util-linux, mtools) see it. A missing tool prints a SKIP line.

use super::*;
use crate::keys::BuildKey;
use serde_norway::Value;
use std::process::{Command, Output};

const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFbTc0k2cIcvYB5zXxkRgPG3KBFbyvYbTqrGq4bG3Y3o nodeimg-build";

fn spec() -> SeedSpec {
    SeedSpec::new("iid-nodeimg-test-1", "k8s-golden-build", "builder", KEY)
}

/// Runs a tool, or returns None (after a SKIP line) when it is not installed.
fn run(test: &str, tool: &str, args: &[&std::ffi::OsStr]) -> Option<Output> {
    match Command::new(tool)
        .args(args)
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C")
        .output()
    {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("NODEIMG_REQUIRE_TOOLS").is_none(),
                "{test}: {tool} not found"
            );
            eprintln!("SKIP {test}: {tool} not found");
            None
        }
        Err(e) => panic!("running {tool}: {e}"),
    }
}

fn image_file(spec: &SeedSpec) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("seed.img");
    spec.write_image(&path).unwrap();
    (dir, path)
}

#[test]
fn meta_data_is_quoted_yaml() {
    assert_eq!(
        spec().render_meta_data().unwrap(),
        "instance-id: \"iid-nodeimg-test-1\"\nlocal-hostname: \"k8s-golden-build\"\n"
    );
}

#[test]
fn user_data_has_the_user_the_key_the_fixes_and_the_beacon() {
    let s = spec();
    let y = s.render_user_data().unwrap();
    assert!(y.starts_with("#cloud-config\n"), "{y}");
    for want in [
        "  - name: \"builder\"\n",
        "    groups: [\"sudo\"]\n",
        "    shell: \"/bin/bash\"\n",
        "    sudo: \"ALL=(ALL) NOPASSWD:ALL\"\n",
        "    lock_passwd: true\n",
        &format!("      - \"{KEY}\"\n"),
        "disable_root: true\n",
        "ssh_pwauth: false\n",
        "locale: \"C.UTF-8\"\n",
        "ssh_genkeytypes: [\"ed25519\"]\n",
        "package_update: false\n",
        "runcmd:\n",
        "\"--property=After=cloud-final.service\"",
        "\"/dev/virtio-ports/org.nodeimg.ready\"",
        "\"iid-nodeimg-test-1\"",
        "\"/run/cloud-init/result.json\"",
        "READY %s\\\\n",
    ] {
        assert!(y.contains(want), "missing {want:?} in\n{y}");
    }
    assert_eq!(s.ready_line(), "READY iid-nodeimg-test-1\n");
    assert_eq!(s.beacon_device(), "/dev/virtio-ports/org.nodeimg.ready");
    // The runcmd entry is the last thing in the document.
    assert!(
        y.trim_end()
            .lines()
            .last()
            .unwrap()
            .starts_with("  - [\"systemd-run\"")
    );
}

/// The beacon script, run by a real shell with the same positional parameters the runcmd entry
/// gives it (the result file pointed at a temporary one), writes exactly the ready line when
/// cloud-init's result has no errors and the FAILED line otherwise.
#[test]
fn beacon_script_writes_the_ready_line() {
    let s = spec();
    let y = s.render_user_data().unwrap();
    let argv = beacon_argv(&y);
    assert_eq!(argv[argv.len() - 1], "/run/cloud-init/result.json");
    let script = &argv[argv.len() - 5];
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result.json");
    for (errors, want) in [
        ("[]", s.ready_line()),
        (
            "[\n   \"('scripts_user', RuntimeError('...'))\"\n  ]",
            "FAILED iid-nodeimg-test-1 1\n".to_owned(),
        ),
    ] {
        // The shape cloud-init 22.4 writes (json.dumps, indent=1, sorted keys).
        std::fs::write(
            &result,
            format!(
                "{{\n \"v1\": {{\n  \"datasource\": \"DataSourceNoCloud [seed=/dev/vdb]\",\n  \"errors\": {errors}\n }}\n}}\n"
            ),
        )
        .unwrap();
        let port = dir.path().join("port");
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .arg("nodeimg-ready")
            .arg(&s.instance_id)
            .arg(&port)
            .arg(&result)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        // The host key line comes first when this machine has an ed25519 host key.
        let written = std::fs::read_to_string(&port).unwrap();
        let (hostkey, last) = written.split_at(written.trim_end().rfind('\n').map_or(0, |i| i + 1));
        assert_eq!(last, want);
        let expected_key = std::fs::read_to_string("/etc/ssh/ssh_host_ed25519_key.pub")
            .map(|k| format!("HOSTKEY {}\n", k.trim_end()))
            .unwrap_or_default();
        assert_eq!(hostkey, expected_key);
    }
}

/// The runcmd beacon entry, as cloud-init will see it after YAML parsing.
fn beacon_argv(user_data: &str) -> Vec<String> {
    let v: Value = serde_norway::from_str(user_data).unwrap();
    let runcmd = v["runcmd"].as_sequence().unwrap();
    assert_eq!(runcmd.len(), 1);
    runcmd[0]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn user_data_parses_as_yaml_with_the_expected_shape() {
    let s = spec();
    let v: Value = serde_norway::from_str(&s.render_user_data().unwrap()).unwrap();
    let users = v["users"].as_sequence().unwrap();
    assert_eq!(users.len(), 1);
    let u = &users[0];
    assert_eq!(u["name"].as_str(), Some("builder"));
    assert_eq!(u["groups"][0].as_str(), Some("sudo"));
    assert_eq!(u["shell"].as_str(), Some("/bin/bash"));
    assert_eq!(u["sudo"].as_str(), Some("ALL=(ALL) NOPASSWD:ALL"));
    assert_eq!(u["lock_passwd"].as_bool(), Some(true));
    assert_eq!(u["ssh_authorized_keys"][0].as_str(), Some(KEY));
    assert_eq!(v["disable_root"].as_bool(), Some(true));
    assert_eq!(v["ssh_pwauth"].as_bool(), Some(false));
    assert_eq!(v["locale"].as_str(), Some("C.UTF-8"));
    assert_eq!(v["package_update"].as_bool(), Some(false));
    let argv = beacon_argv(&s.render_user_data().unwrap());
    assert_eq!(argv[0], "systemd-run");
    assert!(argv.contains(&"--no-block".to_owned()));
    assert!(argv.contains(&"--property=After=cloud-final.service".to_owned()));
    let n = argv.len();
    assert_eq!(argv[n - 7..n - 5], ["/bin/sh", "-c"]);
    assert_eq!(argv[n - 4], BEACON_UNIT);
    assert_eq!(argv[n - 3], s.instance_id);
    assert_eq!(argv[n - 2], "/dev/virtio-ports/org.nodeimg.ready");
    assert_eq!(argv[n - 1], CLOUD_INIT_RESULT);

    let m: Value = serde_norway::from_str(&s.render_meta_data().unwrap()).unwrap();
    assert_eq!(m["instance-id"].as_str(), Some("iid-nodeimg-test-1"));
    assert_eq!(m["local-hostname"].as_str(), Some("k8s-golden-build"));
}

#[test]
fn yaml_quote_round_trips_through_a_yaml_parser() {
    for raw in [
        "plain",
        "a\"b\\c",
        "x\ny\r\tz\u{7}\u{1b}",
        "héllo: # not a comment",
        "- [not, a, list]",
        "true",
        "~",
        "'single'",
        "\u{2028}\u{feff}end",
        "",
    ] {
        let doc = format!("k: {}\n", yaml_quote(raw));
        let v: Value = serde_norway::from_str(&doc).unwrap();
        assert_eq!(v["k"].as_str(), Some(raw), "{doc}");
    }
}

#[test]
fn newline_in_hostname_or_instance_id_is_refused_naming_the_field() {
    let mut s = spec();
    s.hostname = "k8s\nruncmd: [reboot]".into();
    let e = s.build_image().unwrap_err().to_string();
    assert!(e.contains("field hostname"), "{e}");
    assert!(e.contains("line break"), "{e}");
    assert!(e.starts_with("meta-data:"), "{e}");

    let mut s = spec();
    s.instance_id = "iid\n".into();
    let e = s.render_meta_data().unwrap_err().to_string();
    assert!(e.contains("field instance_id"), "{e}");

    let mut s = spec();
    s.authorized_key = format!("{KEY}\nssh-ed25519 AAAA other");
    let e = s.render_user_data().unwrap_err().to_string();
    assert!(e.contains("field authorized_key"), "{e}");
}

#[test]
fn other_bad_fields_are_refused() {
    type Breaker = fn(&mut SeedSpec);
    let cases: [(&str, Breaker); 9] = [
        ("instance_id", |s| s.instance_id = String::new()),
        ("instance_id", |s| s.instance_id = "iid;reboot".into()),
        ("hostname", |s| s.hostname = "-bad".into()),
        ("hostname", |s| s.hostname = "a..b".into()),
        ("user", |s| s.user = "root".into()),
        ("user", |s| s.user = "Builder".into()),
        ("authorized_key", |s| s.authorized_key = "nonsense".into()),
        ("beacon_port", |s| s.beacon_port = "../x".into()),
        ("beacon_port", |s| s.beacon_port = String::new()),
    ];
    for (field, break_it) in cases {
        let mut s = spec();
        break_it(&mut s);
        let e = s.validate().unwrap_err().to_string();
        assert!(e.contains(&format!("field {field}:")), "{e}");
    }
    assert!(spec().validate().is_ok());
}

#[test]
fn yaml_quote_escapes() {
    assert_eq!(yaml_quote("a\"b\\c"), r#""a\"b\\c""#);
    assert_eq!(yaml_quote("x\ny\u{7}"), r#""x\ny\u0007""#);
    assert_eq!(yaml_quote("héllo: #"), "\"héllo: #\"");
}

#[test]
fn image_is_deterministic_and_depends_on_the_key() {
    let a = spec().build_image().unwrap();
    let b = spec().build_image().unwrap();
    assert_eq!(a.len(), SEED_IMAGE_SIZE);
    assert!(a == b, "two builds of the same spec differ");

    let key = BuildKey::generate().unwrap();
    let mut other = spec();
    other.authorized_key = key.public_openssh().unwrap();
    let c = other.build_image().unwrap();
    assert!(a != c, "a different key gave the same image");

    // The volume id (FAT12/16 BPB offset 39) differs too, as it hashes the contents.
    assert_ne!(a[39..43], c[39..43]);
    // Boot sector signature.
    assert_eq!(a[510..512], [0x55, 0xAA]);
}

#[test]
fn image_reads_back_with_fatfs() {
    let img = spec().build_image().unwrap();
    let fs = FileSystem::new(Cursor::new(img), FsOptions::new()).unwrap();
    assert_eq!(fs.fat_type(), fatfs::FatType::Fat12);
    assert_eq!(fs.volume_label(), "CIDATA");
    assert_eq!(
        fs.read_volume_label_from_root_dir().unwrap().as_deref(),
        Some("CIDATA")
    );
    let names: Vec<String> = fs
        .root_dir()
        .iter()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [META_DATA, USER_DATA]);
    let mut text = String::new();
    std::io::Read::read_to_string(&mut fs.root_dir().open_file(USER_DATA).unwrap(), &mut text)
        .unwrap();
    assert_eq!(text, spec().render_user_data().unwrap());
}

#[test]
fn write_image_is_atomic_and_complete() {
    let (dir, path) = image_file(&spec());
    assert_eq!(std::fs::read(&path).unwrap(), spec().build_image().unwrap());
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["seed.img"]);
    let mut bad = spec();
    bad.hostname = "a\nb".into();
    let err = bad.write_image(&path).unwrap_err();
    assert!(matches!(
        err,
        Error::SeedField {
            field: "hostname",
            ..
        }
    ));
    // The old image is untouched.
    assert_eq!(std::fs::read(&path).unwrap(), spec().build_image().unwrap());
}

#[test]
fn fsck_fat_finds_nothing() {
    let (_dir, path) = image_file(&spec());
    let Some(out) = run(
        "fsck_fat_finds_nothing",
        "fsck.fat",
        &["-n".as_ref(), path.as_os_str()],
    ) else {
        return;
    };
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fsck.fat -n: {text}");
    // Clean means: the version banner and the summary, nothing else. fsck.fat counts the
    // volume label entry as a file, hence 3 for meta-data, user-data and the label.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "fsck.fat -n: {text}");
    assert!(
        lines[1].ends_with(": 3 files, 4/2003 clusters"),
        "fsck.fat -n: {text}"
    );
}

#[test]
fn blkid_sees_vfat_cidata() {
    let (_dir, path) = image_file(&spec());
    let Some(out) = run(
        "blkid_sees_vfat_cidata",
        "blkid",
        &[
            "-p".as_ref(),
            "-o".as_ref(),
            "export".as_ref(),
            path.as_os_str(),
        ],
    ) else {
        return;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.contains(&"LABEL=CIDATA"), "{text}");
    assert!(lines.contains(&"TYPE=vfat"), "{text}");
    assert!(lines.contains(&"VERSION=FAT12"), "{text}");
}

#[test]
fn mtools_list_and_read_both_files() {
    let s = spec();
    let (_dir, path) = image_file(&s);
    let img = path.as_os_str();
    for (name, want) in [
        (USER_DATA, s.render_user_data().unwrap()),
        (META_DATA, s.render_meta_data().unwrap()),
    ] {
        let target = format!("::{name}");
        let Some(out) = run(
            "mtools_list_and_read_both_files",
            "mtype",
            &["-i".as_ref(), img, target.as_ref()],
        ) else {
            return;
        };
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    }
    let Some(out) = run(
        "mtools_list_and_read_both_files",
        "mdir",
        &["-i".as_ref(), img, "-b".as_ref(), "::".as_ref()],
    ) else {
        return;
    };
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().map(str::trim).collect();
    assert_eq!(names, ["::/meta-data", "::/user-data"], "{text}");
}
