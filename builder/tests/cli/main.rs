//! The `nodeimg` binary as a user runs it: exit codes, one-line errors naming the path,
//! `--json`, progress lines when stderr is not a terminal, nothing half-written on failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod audit;
mod bom;
mod boot;
mod build;
mod conformance;
mod doctor;
mod fetch;
mod packages;
mod publish;
mod publish_emulators;
mod r10_children;
mod r10_export;
mod r10_fetch;
mod r10_inputs;
mod r10_readers;
mod s11_dry_run;
mod scan;

fn nodeimg() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nodeimg"));
    cmd.env_remove("SOURCE_DATE_EPOCH")
        .env("NODEIMG_LOG", "warn");
    cmd
}

/// Runs `cmd` to its end with a hang guard: a command still running after 120 s is killed and
/// the test fails (the bugs this guards against block forever — on a FIFO, on `/dev/zero` —
/// they are not slow); not a timing assertion.
fn run_guarded(cmd: &mut Command) -> Output {
    run_guarded_for(cmd, std::time::Duration::from_secs(120))
}

/// [`run_guarded`] with a guard of `limit`, for commands that move gigabytes. Output is read
/// while the command runs, so a chatty one never blocks on a full pipe.
fn run_guarded_for(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let err = String::from_utf8_lossy(&stderr.join().unwrap()).into_owned();
            let tail: String = err
                .chars()
                .rev()
                .take(4000)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            panic!("{cmd:?} still running after {limit:?} (killed): …{tail}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn out_str(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn disk(dir: &Path, size: u64) -> PathBuf {
    let path = dir.join("golden.raw");
    fixtures::gpt_disk::patterned_gpt_disk(&path, size, 3).unwrap();
    path
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn export_json_prints_the_manifest_and_no_progress() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 64 << 20);
    let out = dir.path().join("out");
    let o = nodeimg()
        .arg("export")
        .arg(&d)
        .arg("--out")
        .arg(&out)
        .args(["--formats", "raw,vhd", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stderr}");
    let manifest: serde_json::Value =
        serde_json::from_str(&stdout).expect("stdout is the manifest JSON");
    assert_eq!(manifest["name"], "golden");
    assert_eq!(manifest["virtual_size"], 64u64 << 20);
    assert!(
        !stderr.contains('%'),
        "progress drawn in --json mode: {stderr}"
    );
    assert_eq!(
        listing(&out),
        [
            "SHA256SUMS",
            "golden.raw",
            "golden.vhd",
            "import-azure.txt",
            "manifest.json"
        ]
    );
}

#[test]
fn export_without_a_terminal_prints_progress_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 64 << 20);
    let o = nodeimg()
        .arg("export")
        .arg(&d)
        .arg("--out")
        .arg(dir.path().join("o"))
        .args(["--formats", "raw"])
        .output()
        .unwrap();
    let (stdout, stderr) = out_str(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("export raw: 100%") && stderr.contains("export raw: done"),
        "{stderr}"
    );
    assert!(
        stdout.contains("content sha256") && stdout.contains("manifest:"),
        "{stdout}"
    );
}

#[test]
fn a_missing_disk_is_one_error_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let o = nodeimg()
        .arg("export")
        .arg(dir.path().join("absent.raw"))
        .arg("--out")
        .arg(dir.path().join("o"))
        .output()
        .unwrap();
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: ") && stderr.contains("absent.raw"),
        "{stderr}"
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let o = nodeimg()
        .args(["export", "x.raw", "--out", "o", "--formats", "raw,vmdk2"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        out_str(&o).1.contains("unknown format"),
        "{}",
        out_str(&o).1
    );
}

#[test]
fn a_bad_source_date_epoch_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16 << 20);
    let o = nodeimg()
        .env("SOURCE_DATE_EPOCH", "yesterday")
        .arg("export")
        .arg(&d)
        .arg("--out")
        .arg(dir.path().join("o"))
        .args(["--formats", "raw"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(
        out_str(&o).1.contains("SOURCE_DATE_EPOCH"),
        "{}",
        out_str(&o).1
    );
}

#[test]
fn a_full_disk_leaves_no_artifact_and_no_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 64 << 20);
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    // A 2 MiB file-size limit makes the first big write fail with EFBIG, like a full disk.
    let script = format!(
        "trap '' XFSZ; ulimit -f 2048; exec {} export {} --out {} --formats raw,vhd",
        env!("CARGO_BIN_EXE_nodeimg"),
        d.display(),
        out.display()
    );
    let o = Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("NODEIMG_LOG", "warn")
        .output()
        .unwrap();
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("File too large") && stderr.contains(".nodeimg-partial."),
        "{stderr}"
    );
    assert!(listing(&out).is_empty(), "left behind: {:?}", listing(&out));
}

#[test]
fn verify_names_a_tampered_artifact_and_inspect_shows_the_gpt() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 64 << 20);
    let out = dir.path().join("out");
    let o = nodeimg()
        .arg("export")
        .arg(&d)
        .arg("--out")
        .arg(&out)
        .args(["--formats", "raw,vhd"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out_str(&o).1);
    let ok = nodeimg().arg("verify").arg(&out).output().unwrap();
    assert!(ok.status.success(), "{}", out_str(&ok).1);
    assert!(
        out_str(&ok).0.contains("verified 3 artifacts"),
        "{}",
        out_str(&ok).0
    );

    let inspect = nodeimg()
        .arg("inspect")
        .arg(out.join("golden.vhd"))
        .arg("--json")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("inspect json");
    assert_eq!(v["format"], "vhd");
    assert_eq!(v["virtual_size"], 64u64 << 20);
    assert_eq!(v["gpt"]["partitions"][0]["name"], "EFI-SYSTEM");
    assert_eq!(v["gpt"]["partitions"][1]["name"], "root");

    let mut bytes = std::fs::read(out.join("golden.raw")).unwrap();
    bytes[(1 << 20) + 5] ^= 1;
    std::fs::write(out.join("golden.raw"), bytes).unwrap();
    let bad = nodeimg().arg("verify").arg(&out).output().unwrap();
    let (_, stderr) = out_str(&bad);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr.contains("golden.raw") && stderr.contains("sha256"),
        "{stderr}"
    );
}

#[test]
fn sigterm_mid_export_removes_partial_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 2 << 30);
    let out = dir.path().join("out");
    let mut child = nodeimg()
        .arg("export")
        .arg(&d)
        .arg("--out")
        .arg(&out)
        .args(["--formats", "raw,vhd,qcow2"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the export has created its temporaries, then interrupt it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while listing(&out)
        .iter()
        .all(|f| !f.starts_with(".nodeimg-partial."))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "export never started writing"
        );
        if child.try_wait().unwrap().is_some() {
            println!("SKIP: the export finished before it could be interrupted");
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    let (_, stderr) = out_str(&o);
    if o.status.code() == Some(0) {
        println!("SKIP: the export finished before the signal arrived");
        return;
    }
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(listing(&out).is_empty(), "left behind: {:?}", listing(&out));
}
