//! `cargo bench -p nodeimg-tests --bench boot_phases`: where the time of a boot goes, against
//! the hand-run recipe (guest-recipe.md §2) measured on the same machine in the same run.
//!
//! 1. The accelerator probe (KVM attempt with its deadline, and the TCG self-test).
//! 2. nodeimg's path (`qemu::vm`): QEMU start → readiness beacon (cloud-init done, host key
//!    pinned) → first SSH command done → ACPI power-off → QEMU exit, with serial-console
//!    milestones (firmware output, kernel, systemd, login prompt) taken by watching the log and
//!    the guest's own `systemd-analyze` split (kernel, userspace, the four cloud-init units).
//! 3. The recipe by hand: the same image as a raw copy, a seed made with mkfs.vfat + mcopy,
//!    the recipe's QEMU command line, `ssh … true` polled every second, then
//!    `cloud-init status --wait`, then QMP `system_powerdown`.
//!
//! Needs QEMU, OVMF, qemu-img, ssh, mkfs.vfat, mcopy and the cached fixture image (built on
//! first use, as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diskimg::ImageFormat;
use qemu::accel::{self, Accel};
use qemu::vm::{GuestName, Vm, VmConfig};

/// Serial console markers, in boot order (any of the `|`-separated needles; empty: any output).
const MARKERS: &[(&str, &str)] = &[
    ("first serial output (firmware)", ""),
    ("GRUB hands over: `Linux version`", "Linux version"),
    ("initramfs starts: `Run /init`", "Run /init as init process"),
    (
        "systemd in the root fs: `Welcome to Debian`",
        "Welcome to \u{1b}[1mDebian|Welcome to Debian",
    ),
    ("login prompt", "login:"),
];

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` asks for a list; this bench runs only under `cargo bench`.
    }
    for tool in ["ssh", "mkfs.vfat", "mcopy", "qemu-img"] {
        if fixtures::cloud_image::find_tool(tool).is_none() {
            println!("SKIP: {tool} not found (openssh-client, dosfstools, mtools, qemu-utils)");
            return;
        }
    }
    let host = match qemu::host::Host::discover() {
        Ok(h) => h,
        Err(e) => {
            println!("SKIP: {e}");
            return;
        }
    };
    let qemu_img = qemu::host::find_qemu_img().expect("qemu-img");
    let image = match fixtures::cloud_image::debian12_cloud_qcow2() {
        Ok(i) => i,
        Err(e) => {
            println!("SKIP: the fixture image cannot be built here: {e:#}");
            return;
        }
    };
    let work = tempfile::Builder::new()
        .prefix("nodeimg-bootbench")
        .tempdir()
        .expect("work dir");

    // 1. accelerator probe
    let t = Instant::now();
    let verdict = accel::probe_kvm(&host.qemu, accel::KVM_DEADLINE);
    let probe = t.elapsed();
    let tcg_self = accel::tcg_self_test(&host.qemu).expect("TCG self-test");
    println!(
        "accelerator probe: {:.2}s → {} ({})",
        probe.as_secs_f64(),
        verdict.accel,
        verdict.reason
    );
    println!("  TCG self-test guest: {:.2}s", tcg_self.as_secs_f64());
    let accel = verdict.accel;

    // 2. nodeimg
    println!("\n== nodeimg (qemu::vm, qcow2 overlay on the compressed fixture) ==");
    let ours = nodeimg_boot(&host, &qemu_img, &image, accel, work.path());

    // 3. by hand
    println!("\n== the recipe by hand (raw copy, mkfs.vfat seed, ssh polling) ==");
    let hand = hand_boot(&host, &qemu_img, &image, accel, work.path());

    println!("\n== summary (seconds; ratio = nodeimg / by hand, same machine, same run) ==");
    println!(
        "{:<44} {:>9} {:>9} {:>7}",
        "", "nodeimg", "by hand", "ratio"
    );
    let row = |name: &str, a: Duration, b: Duration| {
        println!(
            "{name:<44} {:>9.1} {:>9.1} {:>7.2}",
            a.as_secs_f64(),
            b.as_secs_f64(),
            a.as_secs_f64() / b.as_secs_f64()
        );
    };
    row(
        "QEMU start → ready (cloud-init done)",
        ours.ready,
        hand.ready,
    );
    row("powerdown → QEMU exit", ours.powerdown, hand.powerdown);
    println!(
        "ready → first SSH command done: nodeimg {:.1}s (by hand, SSH answers before cloud-init is done, at +{:.1}s)",
        ours.first_command.saturating_sub(ours.ready).as_secs_f64(),
        hand.first_command.as_secs_f64()
    );
    println!(
        "reference from guest-recipe.md (another day's machine): 36–40 s to ready, 1.2–1.4 s powerdown"
    );
}

struct Timings {
    ready: Duration,
    first_command: Duration,
    powerdown: Duration,
}

fn nodeimg_boot(
    host: &qemu::host::Host,
    qemu_img: &Path,
    image: &Path,
    accel: Accel,
    work: &Path,
) -> Timings {
    let dir = work.join("ours");
    std::fs::create_dir_all(&dir).unwrap();
    let overlay = dir.join("overlay.qcow2");
    qemu::overlay::create_overlay(qemu_img, image, ImageFormat::Qcow2, &overlay).unwrap();
    let config = VmConfig::new(
        dir.join("vm"),
        host,
        accel,
        overlay,
        ImageFormat::Qcow2,
        GuestName {
            instance_id: "iid-bootbench".into(),
            hostname: "bootbench".into(),
            user: "builder".into(),
        },
    );
    let mut vm = Vm::start(&config).expect("start");
    let watcher = SerialWatcher::start(vm.paths().serial_log.clone(), vm.started());
    let ready = vm
        .wait_ready(qemu::vm::READY_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let ssh = vm
        .ssh(qemu::vm::SSH_TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    let o = ssh.output("true", None).expect("first command");
    assert!(o.exit.success());
    let first_command = vm.started().elapsed();
    watcher.stop_and_print();
    println!(
        "  {:<42} +{:.1}s",
        "readiness beacon (cloud-init done)",
        ready.as_secs_f64()
    );
    println!(
        "  {:<42} +{:.1}s",
        "first SSH command done",
        first_command.as_secs_f64()
    );
    let split = ssh
        .output(
            "systemd-analyze | head -1; systemd-analyze blame | grep -E 'cloud-(init|config|final)' ; cloud-init analyze show 2>/dev/null | grep -E '^Finished stage' ",
            None,
        )
        .expect("systemd-analyze");
    println!("  guest view:");
    for line in String::from_utf8_lossy(&split.stdout).lines() {
        println!("    {}", line.trim());
    }
    ssh.close();
    let stopped = vm.stop(qemu::vm::POWERDOWN_TIMEOUT).expect("stop");
    println!(
        "  powerdown → QEMU exit: {:.2}s ({:?})",
        stopped.took.as_secs_f64(),
        stopped.how
    );
    Timings {
        ready,
        first_command,
        powerdown: stopped.took,
    }
}

fn hand_boot(
    host: &qemu::host::Host,
    qemu_img: &Path,
    image: &Path,
    accel: Accel,
    work: &Path,
) -> Timings {
    let dir = work.join("hand");
    std::fs::create_dir_all(dir.join("seed")).unwrap();
    let raw = dir.join("golden.raw");
    run(Command::new(qemu_img)
        .args(["convert", "-O", "raw"])
        .arg(image)
        .arg(&raw));
    let key = dir.join("key");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", ""])
        .arg("-f")
        .arg(&key));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    std::fs::write(
        dir.join("seed/meta-data"),
        "instance-id: iid-hand\nlocal-hostname: hand\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("seed/user-data"),
        format!(
            "#cloud-config\nusers: [{{name: builder, groups: [sudo], shell: /bin/bash, sudo: \"ALL=(ALL) NOPASSWD:ALL\", lock_passwd: true, ssh_authorized_keys: [\"{}\"]}}]\nssh_pwauth: false\n",
            public.trim()
        ),
    )
    .unwrap();
    let seed = dir.join("seed.img");
    run(Command::new("mkfs.vfat")
        .args(["-n", "cidata", "-C"])
        .arg(&seed)
        .arg("1024"));
    run(Command::new("mcopy")
        .arg("-i")
        .arg(&seed)
        .arg(dir.join("seed/user-data"))
        .arg(dir.join("seed/meta-data"))
        .arg("::/"));
    let vars = dir.join("vars.fd");
    std::fs::copy(&host.firmware.vars_template, &vars).unwrap();
    let port = qemu::cmdline::pick_free_port().unwrap();
    let serial = dir.join("serial.log");
    let qmp = dir.join("qmp.sock");
    let args: Vec<String> = vec![
        "-accel".into(),
        accel.as_str().into(),
        "-machine".into(),
        "q35".into(),
        "-m".into(),
        "2048".into(),
        "-smp".into(),
        "2".into(),
        "-nodefaults".into(),
        "-display".into(),
        "none".into(),
        "-drive".into(),
        format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={}",
            host.firmware.code.display()
        ),
        "-drive".into(),
        format!("if=pflash,format=raw,unit=1,file={}", vars.display()),
        "-drive".into(),
        format!(
            "id=root,if=none,file={},format=raw,discard=unmap,detect-zeroes=unmap",
            raw.display()
        ),
        "-device".into(),
        "virtio-blk-pci,drive=root,bootindex=0".into(),
        "-drive".into(),
        format!(
            "id=seed,if=none,format=raw,readonly=on,file={}",
            seed.display()
        ),
        "-device".into(),
        "virtio-blk-pci,drive=seed".into(),
        "-netdev".into(),
        format!("user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:22"),
        "-device".into(),
        "virtio-net-pci,netdev=n0,romfile=".into(),
        "-device".into(),
        "virtio-rng-pci".into(),
        "-serial".into(),
        format!("file:{}", serial.display()),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", qmp.display()),
    ];
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let started = Instant::now();
    let mut child =
        qemu::process::spawn(&host.qemu, &args, &dir.join("qemu.log"), "qemu (by hand)").unwrap();
    let watcher = SerialWatcher::start(serial, started);
    let ssh = |cmd: &str| {
        Command::new("ssh")
            .arg("-i")
            .arg(&key)
            .args([
                "-p",
                &port.to_string(),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "ConnectTimeout=5",
                "-o",
                "LogLevel=ERROR",
                "builder@127.0.0.1",
                cmd,
            ])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    let deadline = started + Duration::from_secs(900);
    while !ssh("true") {
        assert!(Instant::now() < deadline, "by hand: no SSH within 900 s");
        std::thread::sleep(Duration::from_secs(1));
    }
    let first_command = started.elapsed();
    assert!(ssh("cloud-init status --wait >/dev/null"));
    let ready = started.elapsed();
    watcher.stop_and_print();
    println!(
        "  {:<42} +{:.1}s",
        "SSH `true` succeeds",
        first_command.as_secs_f64()
    );
    println!(
        "  {:<42} +{:.1}s",
        "cloud-init status --wait returns",
        ready.as_secs_f64()
    );
    let t = Instant::now();
    let mut q = qemu::qmp::Qmp::connect(&qmp, Duration::from_secs(5)).unwrap();
    q.system_powerdown().unwrap();
    child
        .wait_timeout(Duration::from_secs(120))
        .expect("power off");
    let powerdown = t.elapsed();
    println!("  powerdown → QEMU exit: {:.2}s", powerdown.as_secs_f64());
    Timings {
        ready,
        first_command,
        powerdown,
    }
}

/// Polls a serial log and records when each of [`MARKERS`] first appears.
struct SerialWatcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Vec<(String, Option<Duration>)>>,
}

impl SerialWatcher {
    fn start(log: PathBuf, started: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut seen: Vec<Option<Duration>> = vec![None; MARKERS.len()];
            while !flag.load(Ordering::SeqCst) {
                let text = std::fs::read(&log).unwrap_or_default();
                let text = String::from_utf8_lossy(&text);
                for (i, (_, needle)) in MARKERS.iter().enumerate() {
                    let hit = if needle.is_empty() {
                        !text.is_empty()
                    } else {
                        needle.split('|').any(|n| text.contains(n))
                    };
                    if seen[i].is_none() && hit {
                        seen[i] = Some(started.elapsed());
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            MARKERS
                .iter()
                .zip(seen)
                .map(|((n, _), t)| ((*n).to_owned(), t))
                .collect()
        });
        SerialWatcher { stop, thread }
    }

    /// Stops watching and prints when each marker appeared.
    fn stop_and_print(self) {
        self.stop.store(true, Ordering::SeqCst);
        let milestones = self.thread.join().unwrap_or_default();
        for (name, at) in &milestones {
            println!(
                "  {name:<42} {}",
                at.map_or("not seen".into(), |t| format!("+{:.1}s", t.as_secs_f64()))
            );
        }
    }
}

fn run(cmd: &mut Command) {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        o.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}
