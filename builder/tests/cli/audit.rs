//! `nodeimg audit`: the Debian 12 fixture base image as it is, with one planted finding per
//! check (each check must fail and name the path), hand-sealed again (must pass), a small
//! synthetic sealed root, and bad input (one `error:` line naming the file, exit 2).

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{nodeimg, out_str};

/// Every check, as the report names them.
const CHECKS: &[&str] = &[
    "machine-id",
    "ssh-host-keys",
    "build-user",
    "authorized-keys",
    "cloud-init-instance",
    "shell-histories",
    "private-keys",
    "core-dumps",
    "apt-lists",
    "var-log-size",
    "journal-files",
];

pub(super) const FAKE_KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n";

/// Runs `nodeimg audit DISK ARGS…`: (exit code, stdout, stderr).
pub(super) fn audit(disk: &Path, args: &[&str]) -> (i32, String, String) {
    let o = nodeimg()
        .arg("audit")
        .arg(disk)
        .args(args)
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    (o.status.code().unwrap_or(-1), stdout, stderr)
}

/// The status word (`ok` or `FAIL`) the report gives `check`.
pub(super) fn status_of(stdout: &str, check: &str) -> String {
    stdout
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some(check))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no line for {check}:\n{stdout}"))
        .to_string()
}

/// The indented finding lines below `check`'s line.
pub(super) fn findings_of(stdout: &str, check: &str) -> Vec<String> {
    stdout
        .lines()
        .skip_while(|l| l.split_whitespace().nth(1) != Some(check))
        .skip(1)
        .take_while(|l| l.starts_with("       "))
        .map(|l| l.trim().to_string())
        .collect()
}

/// The Debian 12 fixture base image converted to raw in `dir`, and the byte offset of its root
/// partition; `None` (after printing why) when the fixture cannot be had here.
fn debian_raw(dir: &Path) -> Option<(PathBuf, u64)> {
    if !fixtures::tools::have("qemu-img") || !fixtures::tools::have("debugfs") {
        return None;
    }
    let qcow = match fixtures::cloud_image::debian12_cloud_qcow2() {
        Ok(p) => p,
        Err(e) => {
            fixtures::tools::skip(&format!("Debian 12 fixture image unavailable: {e:#}"));
            return None;
        }
    };
    let raw = dir.join("base.raw");
    fixtures::tools::run_ok(
        Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(&qcow)
            .arg(&raw),
    );
    let gpt = diskimg::inspect::inspect(&raw).unwrap().gpt.unwrap();
    let root = gpt.partitions.iter().max_by_key(|p| p.size).unwrap();
    Some((raw, root.first_lba * 512))
}

/// Runs the debugfs commands `cmds` read-write on the filesystem at `offset` of `img`.
fn debugfs_w(img: &Path, offset: u64, cmds: &[String]) {
    let file = img.with_extension("debugfs-cmds");
    std::fs::write(&file, cmds.join("\n") + "\n").unwrap();
    fixtures::tools::run_ok(
        Command::new("debugfs")
            .arg("-w")
            .arg("-f")
            .arg(&file)
            .arg(format!("{}?offset={offset}", img.display())),
    );
}

/// `debugfs cat PATH` on the filesystem at `offset` of `img`.
fn debugfs_cat(img: &Path, offset: u64, path: &str) -> Vec<u8> {
    Command::new("debugfs")
        .arg("-R")
        .arg(format!("cat {path}"))
        .arg(format!("{}?offset={offset}", img.display()))
        .output()
        .unwrap()
        .stdout
}

#[test]
fn debian_base_planted_findings_fail_and_hand_sealed_passes() {
    let dir = tempfile::tempdir().unwrap();
    let Some((raw, off)) = debian_raw(dir.path()) else {
        return;
    };
    // The fixture base image as built (never booted): its machine-id is empty and it has no
    // host keys, so only what its build left behind may fail.
    let qcow = fixtures::cloud_image::debian12_cloud_path();
    let (code, base_report, stderr) = audit(&qcow, &[]);
    println!("base image:\n{base_report}");
    assert!(matches!(code, 0 | 1), "{stderr}");
    for check in ["machine-id", "ssh-host-keys", "build-user", "private-keys"] {
        assert_eq!(status_of(&base_report, check), "ok", "{base_report}");
    }

    // Hand-seal the raw copy: remove whatever the base image's report found.
    let mut cmds = Vec::new();
    for check in CHECKS {
        for f in findings_of(&base_report, check) {
            if let Some(path) = f.split_whitespace().next().filter(|p| p.starts_with('/')) {
                cmds.push(format!("rm {path}"));
            }
        }
    }
    if !cmds.is_empty() {
        debugfs_w(&raw, off, &cmds);
    }
    let (code, sealed, stderr) = audit(&raw, &[]);
    assert_eq!(code, 0, "hand-sealed disk must pass:\n{sealed}{stderr}");
    assert!(sealed.contains("all passed"), "{sealed}");

    // Plant one finding per check.
    let host = dir.path().join("host");
    std::fs::create_dir(&host).unwrap();
    let put = |name: &str, data: &[u8]| {
        let p = host.join(name);
        std::fs::write(&p, data).unwrap();
        p.display().to_string()
    };
    let key = put("key", FAKE_KEY.as_bytes());
    let machine_id = put("machine-id", b"0123456789abcdef0123456789abcdef\n");
    let mut passwd = debugfs_cat(&raw, off, "/etc/passwd");
    assert!(passwd.starts_with(b"root:"), "cannot read /etc/passwd back");
    passwd.extend_from_slice(b"nodeimg:x:1000:1000::/home/nodeimg:/bin/bash\n");
    let passwd = put("passwd", &passwd);
    let small = put("small", b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA test\n");
    let big = put("big", &vec![b'x'; 2 << 20]);
    let cmds: Vec<String> = [
        "rm /etc/machine-id".to_string(),
        format!("write {machine_id} /etc/machine-id"),
        format!("write {key} /etc/ssh/ssh_host_ed25519_key"),
        "rm /etc/passwd".into(),
        format!("write {passwd} /etc/passwd"),
        "mkdir /home/nodeimg".into(),
        "mkdir /root/.ssh".into(),
        format!("write {small} /root/.ssh/authorized_keys"),
        format!("write {key} /root/.ssh/id_ed25519"),
        "mkdir /var/lib/cloud".into(),
        "mkdir /var/lib/cloud/instances".into(),
        "mkdir /var/lib/cloud/instances/i-0123".into(),
        format!("write {small} /root/.bash_history"),
        format!("write {small} /core"),
        format!("write {small} /var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease"),
        format!("write {big} /var/log/big.log"),
        "mkdir /var/log/journal".into(),
        "mkdir /var/log/journal/0123abcd".into(),
        format!("write {small} /var/log/journal/0123abcd/system.journal"),
    ]
    .into_iter()
    .collect();
    debugfs_w(&raw, off, &cmds);
    let junit = dir.path().join("audit.junit.xml");
    let (code, report, stderr) = audit(&raw, &["--junit", junit.to_str().unwrap()]);
    println!("planted:\n{report}");
    assert_eq!(code, 1, "{report}{stderr}");
    assert!(!stderr.contains("error:"), "{stderr}");
    let expect: &[(&str, &str)] = &[
        ("machine-id", "/etc/machine-id holds 33 bytes"),
        ("ssh-host-keys", "/etc/ssh/ssh_host_ed25519_key"),
        ("build-user", "/etc/passwd line"),
        ("build-user", "/home/nodeimg exists"),
        ("authorized-keys", "/root/.ssh/authorized_keys"),
        ("cloud-init-instance", "/var/lib/cloud/instances/i-0123"),
        ("shell-histories", "/root/.bash_history"),
        ("private-keys", "/root/.ssh/id_ed25519"),
        ("private-keys", "/etc/ssh/ssh_host_ed25519_key"),
        ("core-dumps", "/core"),
        (
            "apt-lists",
            "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease",
        ),
        ("var-log-size", "/var/log/big.log (2097152 bytes)"),
        ("journal-files", "/var/log/journal/0123abcd/system.journal"),
    ];
    for (check, needle) in expect {
        assert_eq!(status_of(&report, check), "FAIL", "{check}:\n{report}");
        assert!(
            findings_of(&report, check)
                .iter()
                .any(|f| f.contains(needle)),
            "{check} does not name {needle}:\n{report}"
        );
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"11\" failures=\"11\""), "{xml}");
    assert!(xml.contains("/root/.ssh/id_ed25519"), "{xml}");
    // The build user is a parameter: under another name, only the passwd line stays unflagged.
    let (_, other, _) = audit(&raw, &["--build-user", "someone"]);
    assert!(
        !findings_of(&other, "build-user")
            .iter()
            .any(|f| f.contains("/etc/passwd"))
    );
}

/// A small GPT disk whose root holds what a sealed root holds in the audited places.
fn sealed_synthetic(dir: &Path) -> PathBuf {
    let root = sealed_rootfs(dir);
    root_disk(dir, &root, 64 << 20, &[])
}

/// `DIR/rootfs`: the files a sealed root holds in the audited places.
pub(super) fn sealed_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    let mk = |p: &str| std::fs::create_dir_all(root.join(p)).unwrap();
    let w = |p: &str, d: &[u8]| std::fs::write(root.join(p), d).unwrap();
    for d in [
        "etc/ssh/sshd_config.d",
        "etc/sudoers.d",
        "root",
        "home",
        "var/lib/apt/lists/partial",
        "var/lib/dbus",
        "var/lib/cloud",
        "var/log/journal",
        "var/log/apt",
        "var/crash",
    ] {
        mk(d);
    }
    w("etc/machine-id", b"");
    w("etc/passwd", b"root:x:0:0:root:/root:/bin/bash\n");
    w("etc/group", b"root:x:0:\nsudo:x:27:\n");
    w("etc/ssh/sshd_config", b"PermitRootLogin no\n");
    w("etc/sudoers.d/README", b"# drop-ins go here\n");
    w("var/lib/apt/lists/lock", b"");
    w("var/log/apt/history.log", b"");
    w("root/.bashrc", b"# ~/.bashrc\n");
    std::os::unix::fs::symlink("/etc/machine-id", root.join("var/lib/dbus/machine-id")).unwrap();
    root
}

/// `DIR/sealed.raw`: a GPT disk of `size` bytes whose root partition is an ext4 filesystem
/// made from the tree `root` (`mkfs_args` passed to mkfs.ext4 too, e.g. `-N` for many files).
pub(super) fn root_disk(dir: &Path, root: &Path, size: u64, mkfs_args: &[&str]) -> PathBuf {
    let disk = dir.join("sealed.raw");
    // Not fixtures::ext4::ext4_disk: it puts each source under `N-name`, not at the root.
    std::fs::File::create(&disk).unwrap().set_len(size).unwrap();
    let (start, end) = fixtures::gpt_disk::write_gpt(&disk).unwrap();
    fixtures::tools::run_ok(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", "4096"])
            .args(mkfs_args)
            .arg("-E")
            .arg(format!("offset={start},root_owner=0:0"))
            .arg("-d")
            .arg(root)
            .arg(&disk)
            .arg(((end - start) / 4096).to_string()),
    );
    disk
}

#[test]
fn a_synthetic_sealed_root_passes_and_writes_junit() {
    if !fixtures::tools::have("mkfs.ext4") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let disk = sealed_synthetic(dir.path());
    let junit = dir.path().join("report.xml");
    let (code, stdout, stderr) = audit(&disk, &["--junit", junit.to_str().unwrap()]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    for check in CHECKS {
        assert_eq!(status_of(&stdout, check), "ok", "{stdout}");
    }
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("tests=\"11\" failures=\"0\""), "{xml}");
    assert!(
        xml.contains("<testcase name=\"machine-id\" classname=\"nodeimg.audit\""),
        "{xml}"
    );
}

#[test]
fn unreadable_disks_give_one_error_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let zeros = dir.path().join("zeros.raw");
    std::fs::File::create(&zeros)
        .unwrap()
        .set_len(16 << 20)
        .unwrap();
    let patterned = dir.path().join("patterned.raw");
    fixtures::gpt_disk::patterned_gpt_disk(&patterned, 32 << 20, 9).unwrap();
    let mut cases: Vec<(PathBuf, &str)> = vec![
        (zeros, "no GPT"),
        (patterned, "partition 2 is not ext4 (found magic"),
        (dir.path().join("missing.raw"), "missing.raw"),
    ];
    if fixtures::tools::have("mkfs.ext4") {
        // A real ext4 root whose superblock is then damaged (its checksum no longer matches).
        let src = dir.path().join("src");
        std::fs::create_dir(&src).unwrap();
        std::fs::write(src.join("f"), b"x").unwrap();
        let corrupt = dir.path().join("corrupt.raw");
        fixtures::ext4::ext4_disk(&corrupt, 64 << 20, &[src]).unwrap();
        let sb = fixtures::gpt_disk::ESP_FIRST_LBA * 512 + fixtures::gpt_disk::ESP_BYTES + 1024;
        use std::os::unix::fs::FileExt as _;
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&corrupt)
            .unwrap();
        f.write_all_at(&[0xff, 0xff, 0xff, 0x7f], sb + 0x4).unwrap();
        cases.push((corrupt, "superblock checksum mismatch"));
    }
    for (disk, needle) in cases {
        let (code, stdout, stderr) = audit(&disk, &[]);
        assert_eq!(code, 2, "{}: {stdout}{stderr}", disk.display());
        assert!(stdout.is_empty(), "{stdout}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(lines[0].contains(&disk.display().to_string()), "{stderr}");
        assert!(lines[0].contains(needle), "{needle}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
