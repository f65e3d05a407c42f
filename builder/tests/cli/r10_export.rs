//! Issue 10, export and build output directories: a failed or interrupted export keeps the
//! previous complete set verifiable; two runs into one directory never trample each other;
//! only raw disks are exported; bad names, duplicate properties and a `SOURCE_DATE_EPOCH`
//! no format can carry are refused; a failed export leaves no empty `--out` behind and
//! reports no phase done.

use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::{disk, listing, nodeimg, out_str};

/// Hang guard only (these machines are noisy): never a performance assertion.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// A 1 GiB GPT disk named `golden.raw` in `dir` with `data_mib` MiB of non-zero data, so an
/// export of it is still writing when the test acts.
fn big_disk(dir: &Path, data_mib: u64) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = disk(dir, 1 << 30);
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    let chunk = fixtures::pattern(99, 1 << 20);
    for i in 0..data_mib {
        file.write_all_at(&chunk, (64 << 20) + (i << 20)).unwrap();
    }
    file.sync_all().unwrap();
    path
}

fn export_cmd(disk: &Path, out: &Path, formats: &str) -> Command {
    let mut cmd = nodeimg();
    cmd.arg("export")
        .arg(disk)
        .arg("--out")
        .arg(out)
        .args(["--formats", formats]);
    cmd
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap()
}

fn verify(out: &Path) -> Output {
    run(nodeimg().arg("verify").arg(out))
}

fn pid(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).unwrap())
}

/// Kills a child left running by a failed assertion (and continues a stopped one).
struct Reap(Option<Child>);

impl Reap {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().unwrap()
    }
    fn wait(mut self) -> Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Reap {
    fn drop(&mut self) {
        if let Some(c) = &mut self.0 {
            let _ = kill(pid(c), Signal::SIGKILL);
            let _ = kill(pid(c), Signal::SIGCONT);
            let _ = c.wait();
        }
    }
}

/// Waits until `out` holds an export temporary (the export is writing); false when the child
/// ended first.
fn wait_for_partial(child: &mut Child, out: &Path) -> bool {
    let started = Instant::now();
    while !listing(out)
        .iter()
        .any(|f| f.starts_with(".nodeimg-partial."))
    {
        assert!(
            started.elapsed() < HANG_GUARD,
            "export never started writing"
        );
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) {
                found.push(format!("{}: {text}", entry.file_name().to_string_lossy()));
            }
        }
    }
    found
}

/// Starts an export of `disk` into `out` and waits until it is writing its temporaries.
fn export_in_progress(disk: &Path, out: &Path, formats: &str) -> Reap {
    let mut child = Reap(Some(
        export_cmd(disk, out, formats)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    assert!(
        wait_for_partial(child.child(), out),
        "the export ended before it wrote anything: {:?}",
        child.wait()
    );
    child
}

/// `out` verifies, holds exactly the raw + qcow2 set named golden (no temporaries, no lock
/// file) and, when given, still the `manifest` it had.
fn assert_set_intact(out: &Path, manifest: Option<&[u8]>) {
    let v = verify(out);
    assert!(
        v.status.success(),
        "the export no longer verifies: {}",
        out_str(&v).1
    );
    if let Some(m) = manifest {
        assert_eq!(std::fs::read(out.join("manifest.json")).unwrap(), m);
    }
    assert_eq!(
        listing(out),
        ["SHA256SUMS", "golden.qcow2", "golden.raw", "manifest.json"],
        "temporaries or the lock file left behind"
    );
}

fn complete_export(disk: &Path, out: &Path, formats: &str) -> Vec<u8> {
    let o = run(&mut export_cmd(disk, out, formats));
    assert!(o.status.success(), "{}", out_str(&o).1);
    let v = verify(out);
    assert!(v.status.success(), "{}", out_str(&v).1);
    std::fs::read(out.join("manifest.json")).unwrap()
}

#[test]
fn an_interrupted_export_keeps_the_previous_set_verifiable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let small = disk(dir.path(), 64 << 20);
    let old_manifest = complete_export(&small, &out, "raw,qcow2");

    let big = big_disk(&dir.path().join("big"), 256);
    let mut child = export_in_progress(&big, &out, "raw,qcow2");
    kill(pid(child.child()), Signal::SIGINT).unwrap();
    let o = child.wait();
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(
        processes_mentioning(&out.display().to_string()).is_empty(),
        "left running: {:?}",
        processes_mentioning(&out.display().to_string())
    );
    assert_set_intact(&out, Some(&old_manifest));
}

/// Unmounts the tmpfs when the test ends, however it ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn an_export_that_runs_out_of_space_keeps_the_previous_set_verifiable() {
    // /proc/self belongs to the effective user.
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        fixtures::tools::skip("mounting a small tmpfs to fill up needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("small-fs");
    std::fs::create_dir(&out).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=40m", "tmpfs"])
        .arg(&out)
        .status()
        .unwrap();
    if !mounted.success() {
        fixtures::tools::skip("mount -t tmpfs failed (no CAP_SYS_ADMIN here)");
        return;
    }
    let _mount = Mount(out.clone());
    let small = disk(dir.path(), 16 << 20);
    let old_manifest = complete_export(&small, &out, "raw,qcow2");

    // 64 MiB of data twice (raw and qcow2) cannot fit in 40 MiB.
    let big = big_disk(&dir.path().join("big"), 64);
    let o = run(&mut export_cmd(&big, &out, "raw,qcow2"));
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        !stderr.contains(": done"),
        "a phase reported done by a failed export: {stderr}"
    );
    assert_set_intact(&out, Some(&old_manifest));
}

#[test]
fn a_second_export_into_a_busy_directory_fails_at_once_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let big = big_disk(&dir.path().join("big"), 64);
    let mut first = export_in_progress(&big, &out, "raw,qcow2");
    // Freeze the first export mid-write so the second surely meets it running.
    kill(pid(first.child()), Signal::SIGSTOP).unwrap();
    let small = disk(dir.path(), 16 << 20);
    let second = run(&mut export_cmd(&small, &out, "raw"));
    let (_, stderr) = out_str(&second);
    let partials_after_second: Vec<String> = listing(&out)
        .into_iter()
        .filter(|f| f.starts_with(".nodeimg-partial."))
        .collect();
    kill(pid(first.child()), Signal::SIGCONT).unwrap();
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("in use by another nodeimg")
            && stderr.contains(&format!("pid {}", first.child().id()))
            && stderr.contains(&out.display().to_string()),
        "{stderr}"
    );
    assert!(
        !partials_after_second.is_empty(),
        "the second export removed the first one's temporaries"
    );
    let o = first.wait();
    assert!(o.status.success(), "{}", out_str(&o).1);
    assert_set_intact(&out, None);
}

#[test]
fn qcow2_and_vhd_inputs_are_refused_with_the_conversion_line() {
    let dir = tempfile::tempdir().unwrap();
    let raw = disk(dir.path(), 16 << 20);
    // A VHD of our own making.
    let vhds = dir.path().join("vhds");
    let o = run(&mut export_cmd(&raw, &vhds, "vhd"));
    assert!(o.status.success(), "{}", out_str(&o).1);
    let mut inputs = vec![("vhd", vhds.join("golden.vhd"), "-f vpc")];
    if fixtures::tools::have("qemu-img") {
        let qcow2 = dir.path().join("golden.qcow2");
        fixtures::tools::run_ok(
            Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", "qcow2"])
                .arg(&raw)
                .arg(&qcow2),
        );
        inputs.push(("qcow2", qcow2, "-f qcow2"));
    }
    if fixtures::tools::have("qemu-img") {
        // An empty disk makes a qcow2 whose size is not whole sectors: still named a qcow2.
        let empty = dir.path().join("empty.raw");
        std::fs::File::create(&empty)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        let qcow2 = dir.path().join("empty.qcow2");
        fixtures::tools::run_ok(
            Command::new("qemu-img")
                .args(["convert", "-f", "raw", "-O", "qcow2"])
                .arg(&empty)
                .arg(&qcow2),
        );
        inputs.push(("qcow2", qcow2, "-f qcow2"));
    }
    for (format, input, flag) in inputs {
        let out = dir.path().join(format!("out-{format}"));
        let o = run(&mut export_cmd(&input, &out, "raw"));
        let (_, stderr) = out_str(&o);
        assert_eq!(o.status.code(), Some(1), "{format}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!("is a {format} image, not a raw disk"))
                && stderr.contains(&format!("qemu-img convert {flag} -O raw"))
                && stderr.contains(&input.display().to_string()),
            "{stderr}"
        );
        assert!(!out.exists(), "{format}: --out created for a refused input");
    }
}

#[test]
fn a_format_nodeimg_cannot_read_is_named_not_exported_as_raw() {
    let dir = tempfile::tempdir().unwrap();
    // Whole sectors, so only the magic tells it from a raw disk.
    for (name, magic, what) in [
        ("disk.vhdx", &b"vhdxfile"[..], "is a VHDX image"),
        (
            "disk.vmdk",
            &b"# Disk DescriptorFile\n"[..],
            "is a VMDK descriptor",
        ),
    ] {
        let input = dir.path().join(name);
        let mut bytes = vec![0u8; 1 << 20];
        bytes[..magic.len()].copy_from_slice(magic);
        std::fs::write(&input, bytes).unwrap();
        let out = dir.path().join(format!("out-{name}"));
        refused(&mut export_cmd(&input, &out, "raw"), &out, &[what, name]);
    }
}

fn refused(cmd: &mut Command, out: &Path, wants: &[&str]) {
    let o = run(cmd);
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for w in wants {
        assert!(stderr.contains(w), "{w:?} missing: {stderr}");
    }
    assert!(!out.exists(), "--out created: {:?}", listing(out));
}

#[test]
fn a_name_that_reads_as_an_option_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16 << 20);
    let out = dir.path().join("out");
    refused(
        export_cmd(&d, &out, "raw,aws").arg("--name=-rf"),
        &out,
        &["\"-rf\"", "must start with a letter or digit"],
    );
    // The default name comes from the file name: the same rule.
    let dashed = dir.path().join("-rf.raw");
    std::fs::rename(&d, &dashed).unwrap();
    refused(
        &mut export_cmd(&dashed, &out, "raw"),
        &out,
        &["\"-rf\"", "must start with a letter or digit"],
    );
}

#[test]
fn a_property_key_given_twice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16 << 20);
    let out = dir.path().join("out");
    refused(
        export_cmd(&d, &out, "ova").args([
            "--property",
            "kubernetes=v1.30.2",
            "--property",
            "containerd=1.7",
            "--property",
            "kubernetes=v1.31.0",
        ]),
        &out,
        &["--property", "\"kubernetes\"", "twice"],
    );
}

#[test]
fn a_source_date_epoch_no_format_can_carry_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 16 << 20);
    let out = dir.path().join("out");
    for (value, wants) in [
        ("5241652096", ["SOURCE_DATE_EPOCH", "5241652095"]),
        ("99999999999999999999", ["SOURCE_DATE_EPOCH", "5241652095"]),
        ("-1", ["SOURCE_DATE_EPOCH", "non-negative"]),
    ] {
        refused(
            export_cmd(&d, &out, "raw,vhd,ova").env("SOURCE_DATE_EPOCH", value),
            &out,
            &wants,
        );
    }
    // The limit itself is carried by every format.
    let o = run(export_cmd(&d, &out, "raw,vhd,ova").env("SOURCE_DATE_EPOCH", "5241652095"));
    assert!(o.status.success(), "{}", out_str(&o).1);
    let v = verify(&out);
    assert!(v.status.success(), "{}", out_str(&v).1);
}

#[test]
fn a_failed_export_removes_the_out_it_created_and_reports_nothing_done() {
    let dir = tempfile::tempdir().unwrap();
    let d = disk(dir.path(), 64 << 20);
    let out = dir.path().join("new-out");
    // A 2 MiB file-size limit makes the first big write fail with EFBIG, like a full disk.
    let script = format!(
        "trap '' XFSZ; ulimit -f 2048; exec {} export {} --out {} --formats raw,vhd",
        env!("CARGO_BIN_EXE_nodeimg"),
        d.display(),
        out.display()
    );
    let o = run(Command::new("sh")
        .arg("-c")
        .arg(script)
        .env("NODEIMG_LOG", "warn"));
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("File too large"), "{stderr}");
    assert!(
        !stderr.contains(": done"),
        "a phase reported done by a failed export: {stderr}"
    );
    assert!(!out.exists(), "left behind: {:?}", listing(&out));
}

#[test]
fn a_second_build_of_the_same_name_into_the_same_out_fails_at_once_naming_the_holder() {
    let f = crate::build::fixture();
    // Another build of "node" holds OUT and is writing its staging directory.
    std::fs::create_dir_all(f.out.join(".node.partial")).unwrap();
    std::fs::write(f.out.join(".node.partial/build.log"), b"first build\n").unwrap();
    let holder = exporters::dir_lock::DirLock::acquire(&f.out, ".node.lock").unwrap();
    let o = run(nodeimg()
        .arg("build")
        .arg(&f.spec)
        .arg("--out")
        .arg(&f.out)
        .arg("--cache")
        .arg(&f.cache));
    let (_, stderr) = out_str(&o);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("in use by another nodeimg")
            && stderr.contains(&format!("pid {}", std::process::id())),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read(f.out.join(".node.partial/build.log")).unwrap(),
        b"first build\n",
        "the second build touched the first one's staging directory"
    );
    drop(holder);
    assert!(!f.out.join(".node.lock").exists());
}
