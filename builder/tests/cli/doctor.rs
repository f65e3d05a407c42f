//! `nodeimg doctor`: the real host's report, a host without QEMU, a bad --work-dir.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{nodeimg, out_str};

/// The first `name` in `$PATH`, as the doctor finds it.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn first_line_of_version(tool: &Path) -> String {
    let out = fixtures::tools::run_ok(std::process::Command::new(tool).arg("--version"));
    out.lines().next().unwrap_or("").trim().to_owned()
}

#[test]
fn doctor_json_on_this_host_names_qemu_firmware_and_the_accelerator() {
    if !fixtures::tools::have("qemu-system-x86_64") || !fixtures::tools::have("qemu-img") {
        println!("SKIP: doctor_json_on_this_host needs qemu-system-x86_64 and qemu-img");
        return;
    }
    let qemu = on_path("qemu-system-x86_64").expect("qemu-system-x86_64 runs, so it is on PATH");
    let qemu_img = on_path("qemu-img").expect("qemu-img runs, so it is on PATH");
    let o = nodeimg()
        .env_remove("NODEIMG_QEMU")
        .args(["doctor", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let j: Value = serde_json::from_str(&stdout).expect("stdout is exactly one JSON document");
    assert_eq!(j["ok"], true, "{stdout}");
    assert!(
        j["verdict"].as_str().unwrap().starts_with("ready"),
        "{stdout}"
    );

    assert_eq!(j["qemu"]["status"], "ok");
    assert_eq!(j["qemu"]["source"], "search");
    assert_eq!(j["qemu"]["path"], qemu.to_str().unwrap());
    let line = first_line_of_version(&qemu);
    assert_eq!(j["qemu"]["version_line"], line.as_str());
    let version = j["qemu"]["version"].as_str().unwrap();
    assert!(
        version.split('.').count() == 3 && line.contains(&format!("version {version}")),
        "{version} vs {line}"
    );

    assert_eq!(j["firmware"]["status"], "ok");
    for key in ["code", "vars_template"] {
        let p = j["firmware"][key].as_str().unwrap();
        assert!(p.starts_with('/') && Path::new(p).is_file(), "{key}: {p}");
    }

    let acc = &j["accelerator"];
    assert_eq!(acc["status"], "ok", "{acc}");
    assert_eq!(acc["choice"], "auto");
    assert_eq!(acc["probed"], true);
    let accel = acc["accel"].as_str().unwrap();
    assert!(accel == "tcg" || accel == "kvm", "{accel}");
    assert!(!acc["reason"].as_str().unwrap().trim().is_empty(), "{acc}");
    assert!(acc["probe_ms"].as_u64().unwrap() < 60_000, "{acc}");

    assert_eq!(j["qemu_img"]["status"], "ok");
    assert_eq!(j["qemu_img"]["path"], qemu_img.to_str().unwrap());
    assert_eq!(
        j["qemu_img"]["version_line"],
        first_line_of_version(&qemu_img).as_str()
    );

    assert_eq!(j["disk"]["status"], "ok");
    assert_eq!(
        j["disk"]["work_dir"],
        std::env::temp_dir().display().to_string()
    );
    assert_eq!(j["disk"]["required_bytes"], 4u64 << 30);
    assert!(j["disk"]["free_bytes"].as_u64().unwrap() >= 8u64 << 30);
}

#[test]
fn doctor_prints_one_aligned_line_per_check_and_a_verdict() {
    if !fixtures::tools::have("qemu-system-x86_64") || !fixtures::tools::have("qemu-img") {
        println!(
            "SKIP: doctor_prints_one_aligned_line_per_check needs qemu-system-x86_64 and qemu-img"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let o = nodeimg()
        .env_remove("NODEIMG_QEMU")
        .args(["doctor", "--accel", "tcg", "--work-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(0), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    for (line, name) in lines
        .iter()
        .zip(["qemu", "firmware", "accelerator", "qemu-img", "disk"])
    {
        // label in 12 columns, status in 5, then the message from column 19 on
        assert!(
            line.starts_with(&format!("{name:<12} ok    ")) && !line[19..].starts_with(' '),
            "{stdout}"
        );
    }
    assert!(
        lines[2].contains("tcg requested explicitly"),
        "{}",
        lines[2]
    );
    assert!(
        lines[4].contains(&dir.path().display().to_string()),
        "{}",
        lines[4]
    );
    assert_eq!(
        lines[5],
        "verdict: ready — nodeimg build and boot can run here (accelerator tcg)"
    );
}

/// Whether `nodeimg` finds qemu-img with an empty `$PATH`: it falls back to /usr/bin and
/// /usr/libexec, as `nodeimg boot` does.
fn qemu_img_in_fallback_dirs() -> bool {
    ["/usr/bin/qemu-img", "/usr/libexec/qemu-img"]
        .iter()
        .any(|p| Path::new(p).is_file())
}

#[test]
fn doctor_without_qemu_exits_1_and_says_what_to_install() {
    let empty = tempfile::tempdir().unwrap();
    let absent = empty.path().join("absent").join("qemu-system-x86_64");
    let run = |json: bool| {
        let mut cmd = nodeimg();
        cmd.env("PATH", empty.path())
            .env("NODEIMG_QEMU", &absent)
            .arg("doctor");
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let qemu_img_found = qemu_img_in_fallback_dirs();

    let o = run(false);
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{stdout}");
    assert!(lines[0].starts_with("qemu         FAIL  "), "{stdout}");
    assert!(
        lines[0].contains(&format!(
            "NODEIMG_QEMU={}: not an executable file",
            absent.display()
        )),
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("accelerator  warn  not probed"),
        "{stdout}"
    );
    let qemu_img_status = if qemu_img_found { "ok  " } else { "FAIL" };
    assert!(
        lines[3].starts_with(&format!("qemu-img     {qemu_img_status}  ")),
        "{stdout}"
    );
    assert!(
        lines[5].starts_with("verdict: NOT READY — failed: qemu"),
        "{stdout}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: nodeimg build cannot run here; to fix: point NODEIMG_QEMU at"),
        "{stderr}"
    );
    assert!(
        stderr.contains("apt-get install qemu-system-x86 ovmf"),
        "{stderr}"
    );
    assert_eq!(
        stderr.contains("apt-get install qemu-utils"),
        !qemu_img_found,
        "{stderr}"
    );

    let o = run(true);
    let (stdout, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
    let j: Value = serde_json::from_str(&stdout).expect("stdout is exactly one JSON document");
    assert_eq!(j["ok"], false);
    assert_eq!(j["qemu"]["status"], "fail");
    assert_eq!(j["qemu"]["source"], "NODEIMG_QEMU");
    assert_eq!(j["qemu"]["path"], Value::Null);
    assert_eq!(j["qemu"]["version"], Value::Null);
    assert!(
        j["qemu"]["fix"]
            .as_str()
            .unwrap()
            .contains("apt-get install qemu-system-x86 ovmf"),
        "{stdout}"
    );
    assert_eq!(j["accelerator"]["status"], "warn");
    assert_eq!(j["accelerator"]["accel"], Value::Null);
    assert_eq!(j["accelerator"]["probed"], false);
    if qemu_img_found {
        assert_eq!(j["qemu_img"]["status"], "ok", "{stdout}");
    } else {
        assert_eq!(j["qemu_img"]["status"], "fail", "{stdout}");
        assert_eq!(
            j["qemu_img"]["fix"],
            "apt-get install qemu-utils (Debian/Ubuntu) or dnf install qemu-img (Fedora)"
        );
    }
    assert!(
        stderr.contains("apt-get install qemu-system-x86 ovmf"),
        "{stderr}"
    );
}

#[test]
fn doctor_with_a_missing_work_dir_is_one_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-dir");
    for extra in [&[][..], &["--json"][..]] {
        let o = nodeimg()
            .args(["doctor", "--accel", "tcg", "--work-dir"])
            .arg(&missing)
            .args(extra)
            .output()
            .unwrap();
        let (stdout, stderr) = out_str(&o);
        assert_eq!(o.status.code(), Some(1), "{stdout}\n{stderr}");
        assert_eq!(stdout, "", "nothing reported before the error");
        assert_eq!(
            stderr.trim_end(),
            format!(
                "error: --work-dir {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
    }
}
