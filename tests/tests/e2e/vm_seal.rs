//! The `distros` seal, run for real: boot the Debian 12 fixture from an overlay, run every seal
//! step over SSH, wait for part B's marker on the serial console, power off over QMP, then read
//! the sealed root file system offline (`debugfs`, no mount) and check what the seal promises:
//! empty machine-id, no SSH host keys, no build user or home, no cloud-init instance data.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use qemu::vm::{StopHow, Vm};

use crate::vm_common::{fixture_or_skip, host_or_skip, overlay_vm_config};

fn debugfs(image: &Path, offset: u64, request: &str) -> String {
    let out = Command::new("debugfs")
        .arg("-R")
        .arg(request)
        .arg(format!("{}?offset={offset}", image.display()))
        .output()
        .expect("debugfs (e2fsprogs)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn vm_seal_leaves_no_identity_on_the_disk() {
    let test = "vm_seal_leaves_no_identity_on_the_disk";
    let Some((host, qemu_img)) = host_or_skip(test) else {
        return;
    };
    if !fixtures::tools::have("debugfs") {
        return;
    }
    let Some(image) = fixture_or_skip(test) else {
        return;
    };
    let distro = distros::find("debian-12").unwrap();
    let dir = tempfile::Builder::new().prefix("vmseal").tempdir().unwrap();
    let config = overlay_vm_config(&host, &qemu_img, &image, dir.path(), "vm-seal-test");
    let overlay = config.root_disk.clone();
    let mut vm = Vm::start(&config).unwrap();
    vm.wait_ready(Duration::from_secs(600))
        .unwrap_or_else(|e| panic!("{e}"));
    let ssh = vm
        .ssh(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"));
    let steps = distros::seal_steps(distro, "builder").unwrap();
    let last = steps.len() - 1;
    for (i, step) in steps.iter().enumerate() {
        let out = ssh.output(&step.remote_command(), Some(step.timeout));
        match &out {
            Ok(o) => println!(
                "seal step {}: {} {}",
                step.name,
                o.exit,
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => println!("seal step {}: {e}", step.name),
        }
        match out {
            Ok(o) if o.exit.success() => {}
            // The last step starts part B, which may cut the session: not an error.
            Ok(_) | Err(_) if i == last => {}
            other => panic!("seal step {} failed: {other:?}", step.name),
        }
    }
    ssh.close();
    let serial = vm.paths().serial_log.clone();
    let deadline = Instant::now() + Duration::from_secs(150);
    loop {
        // The serial log is not UTF-8 throughout (firmware output): read it lossily.
        let log = String::from_utf8_lossy(&std::fs::read(&serial).unwrap_or_default()).into_owned();
        if log.contains(distros::seal::SEAL_FAILED_MARKER) {
            panic!("{}", vm.failure("part B reported SEAL-FAILED"));
        }
        if log.contains(distros::seal::SEAL_MARKER) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            vm.failure("no SEAL-DONE on the serial console")
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let stopped = vm.stop(Duration::from_secs(120)).unwrap();
    assert_eq!(stopped.how, StopHow::PoweredOff);
    drop(vm);

    let sealed = dir.path().join("sealed.raw");
    fixtures::tools::run_ok(
        Command::new(&qemu_img)
            .args(["convert", "-q", "-O", "raw"])
            .arg(&overlay)
            .arg(&sealed),
    );
    let gpt = diskimg::inspect::inspect(&sealed)
        .unwrap()
        .gpt
        .expect("gpt");
    let root = gpt.partitions.last().expect("root partition");
    let offset = root.first_lba * 512;
    let machine_id = debugfs(&sealed, offset, "stat /etc/machine-id");
    assert!(machine_id.contains("Size: 0"), "{machine_id}");
    let ssh_dir = debugfs(&sealed, offset, "ls -l /etc/ssh");
    assert!(
        ssh_dir.contains("sshd_config"),
        "debugfs could not list /etc/ssh: {ssh_dir}"
    );
    assert!(!ssh_dir.contains("ssh_host_"), "host keys left: {ssh_dir}");
    let passwd = debugfs(&sealed, offset, "cat /etc/passwd");
    assert!(passwd.contains("root:x:0:0"), "{passwd}");
    assert!(!passwd.contains("builder:"), "build user left: {passwd}");
    let home = debugfs(&sealed, offset, "ls /home");
    assert!(!home.contains("builder"), "home left: {home}");
    let sudoers = debugfs(&sealed, offset, "ls /etc/sudoers.d");
    assert!(!sudoers.contains("90-cloud-init-users"), "{sudoers}");
    let cloud = debugfs(&sealed, offset, "ls /var/lib/cloud");
    assert!(
        !cloud.contains("instance"),
        "cloud-init instance data left: {cloud}"
    );
}
