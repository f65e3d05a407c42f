use super::*;

/// An excerpt of a Debian 12 cloud kernel booting under QEMU to a login prompt, with the
/// near-misses a scanner must not report (`DEBUG:`, `kernel.panic`, rescue.target, OOM
/// settings, `panic=` on the command line).
const CLEAN_BOOT: &str = "\
[    0.000000] Linux version 6.1.0-28-cloud-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.119-1 (2024-11-22)\r
[    0.000000] Command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-cloud-amd64 root=PARTUUID=5d3c5a1e-01 ro console=tty1 console=ttyS0,115200n8 panic=10\r
[    0.000000] BIOS-provided physical RAM map:\r
[    0.012345] Spectre V2 : Mitigation: Retpolines\r
[    0.145678] Kernel command line: BOOT_IMAGE=/boot/vmlinuz-6.1.0-28-cloud-amd64 root=PARTUUID=5d3c5a1e-01 ro console=tty1 console=ttyS0,115200n8\r
[    0.389012] ACPI: Core revision 20220331\r
[    0.912345] PCI: Using configuration type 1 for base access\r
[    1.234567] Freeing unused kernel image (initmem) memory: 2756K\r
[    1.401234] EXT4-fs (vda1): mounted filesystem with ordered data mode. Quota mode: none.\r
[    1.876543] systemd[1]: systemd 252.33-1~deb12u1 running in system mode (+PAM +AUDIT +SELINUX +APPARMOR +IMA +SMACK +SECCOMP +GCRYPT -GNUTLS +OPENSSL +ACL +BLKID +CURL +ELFUTILS +FIDO2 +IDN2 -IDN +IPTC +KMOD +LIBCRYPTSETUP +LIBFDISK +PCRE2 -PWQUALITY +P11KIT +QRENCODE +TPM2 +BZIP2 +LZ4 +XZ +ZLIB +ZSTD -BPF_FRAMEWORK -XKBCOMMON +UTMP +SYSVINIT default-hierarchy=unified)\r
\x1b[0;1;39mWelcome to \x1b[0m\x1b[0;1;31mDebian GNU/Linux 12 (bookworm)\x1b[0m!\r
[\x1b[0;32m  OK  \x1b[0m] Created slice \x1b[0;1;39msystem-getty.slice\x1b[0m - Slice /system/getty.\r
[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mlocal-fs.target\x1b[0m - Local File Systems.\r
         Starting \x1b[0;1;39msystemd-sysctl.service\x1b[0m - Apply Kernel Variables...\r
[    2.345678] systemd-sysctl[201]: Setting 'kernel.panic' to '10'\r
[    2.345901] systemd-sysctl[201]: Setting 'kernel.panic_on_oops' to '1'\r
[    2.401234] systemd[1]: rescue.target: Unit not needed, skipping\r
[    3.012345] overlay: loading out-of-tree module taints kernel.\r
[    3.123456] bridge: filtering via arp/ip/ip6tables is no longer available by default.\r
[    4.567890] cloud-init[402]: Cloud-init v. 22.4.2 running 'init-local' at Sat, 30 Nov 2024 09:00:00 +0000. Up 4.50 seconds.\r
[    5.678901] cloud-init[410]: 2024-11-30 09:00:01,234 - util.py[DEBUG]: Reading from /proc/uptime (quiet=False)\r
[    5.678902] cloud-init[410]: DEBUG: no segfault handler installed\r
[    6.111111] containerd[455]: time=\"2024-11-30T09:00:02Z\" level=info msg=\"starting containerd\" revision=\"1.6.20~ds1-1+deb12u1\" version=1.6.20~ds1\r
[    6.222222] containerd[455]: time=\"2024-11-30T09:00:02Z\" level=info msg=\"setting oom_score_adj -999\"\r
[\x1b[0;32m  OK  \x1b[0m] Started \x1b[0;1;39mcontainerd.service\x1b[0m - containerd container runtime.\r
[\x1b[0;32m  OK  \x1b[0m] Reached target \x1b[0;1;39mmulti-user.target\x1b[0m - Multi-User System.\r
\r
Debian GNU/Linux 12 k8s-node ttyS0\r
\r
k8s-node login: \r
";

fn kinds(text: &str) -> Vec<(FindingKind, usize)> {
    scan_console(text)
        .into_iter()
        .map(|f| (f.kind, f.line_number))
        .collect()
}

#[test]
fn a_clean_boot_has_no_findings() {
    assert_eq!(scan_console(CLEAN_BOOT), []);
    assert_eq!(scan_console(""), []);
}

#[test]
fn each_kind_is_found_with_its_line() {
    let cases: &[(&str, FindingKind)] = &[
        (
            "[   12.345678] Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
            FindingKind::KernelPanic,
        ),
        (
            "[   14.000001] Kernel panic - not syncing: Fatal exception",
            FindingKind::KernelPanic,
        ),
        (
            "[   33.123456] Oops: 0000 [#1] PREEMPT SMP NOPTI",
            FindingKind::Oops,
        ),
        (
            "[   33.123400] BUG: kernel NULL pointer dereference, address: 0000000000000008",
            FindingKind::Oops,
        ),
        (
            "[   61.000000] BUG: soft lockup - CPU#1 stuck for 22s! [kworker/1:2:123]",
            FindingKind::Oops,
        ),
        (
            "[   45.678901] general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] PREEMPT SMP NOPTI",
            FindingKind::Oops,
        ),
        (
            "[  101.234567] kube-apiserver[1234]: segfault at 0 ip 000055d5c0a1b2c3 sp 00007ffd1c2b3a40 error 4 in kube-apiserver[55d5c0000000+2a00000] likely on CPU 1 (core 1, socket 0)",
            FindingKind::Segfault,
        ),
        (
            "[  200.111111] Out of memory: Killed process 2345 (etcd) total-vm:10612344kB, anon-rss:3012345kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:6400kB oom_score_adj:-997",
            FindingKind::OomKill,
        ),
        (
            "[  200.111000] oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/containerd.service,task=etcd,pid=2345,uid=0",
            FindingKind::OomKill,
        ),
        (
            "You are in emergency mode. After logging in, type \"journalctl -xb\" to view",
            FindingKind::EmergencyShell,
        ),
        (
            "[    5.000000] systemd[1]: Entering emergency mode. Exit the shell to continue.",
            FindingKind::EmergencyShell,
        ),
        (
            "You are in rescue mode. After logging in, type \"journalctl -xb\" to view",
            FindingKind::EmergencyShell,
        ),
        (
            "[    3.456789] systemd[1]: kubelet.service: Found ordering cycle on containerd.service/start",
            FindingKind::OrderingCycle,
        ),
    ];
    for (line, kind) in cases {
        let log = format!("{}{line}\r\nlogin: \r\n", CLEAN_BOOT);
        let found = scan_console(&log);
        let want_line = CLEAN_BOOT.lines().count() + 1;
        assert_eq!(found.len(), 1, "{line}: {found:?}");
        assert_eq!(found[0].kind, *kind, "{line}");
        assert_eq!(found[0].line_number, want_line, "{line}");
        assert_eq!(found[0].line, *line);
    }
}

#[test]
fn findings_come_in_log_order_and_escapes_are_removed() {
    let log = "ok\n\
        [  200.1] oom-kill:constraint=CONSTRAINT_NONE,task=etcd,pid=2345\n\
        [  200.2] Out of memory: Killed process 2345 (etcd)\n\
        \x1b[0;1;31m[  300.0] Kernel panic - not syncing: Fatal exception\x1b[0m\r\n";
    assert_eq!(
        kinds(log),
        [
            (FindingKind::OomKill, 2),
            (FindingKind::OomKill, 3),
            (FindingKind::KernelPanic, 4)
        ]
    );
    let f = &scan_console(log)[2];
    assert_eq!(
        f.line,
        "[  300.0] Kernel panic - not syncing: Fatal exception"
    );
    assert_eq!(
        f.to_string(),
        "line 4: kernel-panic: [  300.0] Kernel panic - not syncing: Fatal exception"
    );
}

#[test]
fn words_inside_other_words_do_not_match() {
    for line in [
        "util.py[DEBUG]: DEBUG: loaded",
        "xBUG: nothing",
        "NoOops: here",
        "myoom-kill: test tool",
        "Reached target rescue.target",
    ] {
        assert_eq!(scan_console(line), [], "{line}");
    }
    assert_eq!(kinds("(BUG: x)"), [(FindingKind::Oops, 1)]);
}
