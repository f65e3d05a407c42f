//! The seal: the last steps before the golden disk is final (node-role.md "Seal",
//! guest-recipe §4).
//!
//! Part A runs in the build user's SSH session, as several [`Step`]s. Its last step,
//! `seal-detach`, removes the build user's `authorized_keys` and sudoers file (so nothing can
//! run over SSH after it) and starts part B as a detached transient unit: the build user cannot
//! be deleted while its session lives (guest-recipe pitfall 11), and `/run` is noexec
//! (pitfall 12), so part B is `systemd-run … /bin/sh -c '<script>'` with no file to execute.
//! Part B ends the build user's session, deletes the user, empties the journal and the logs,
//! trims, and writes [`SEAL_MARKER`] on `/dev/console`; the host waits for that line in the
//! serial log (or [`SEAL_FAILED_MARKER`]), then powers the guest off over QMP. The SSH session
//! may be cut right after `seal-detach` returns: that is expected.

use std::fmt::Write as _;
use std::time::Duration;

use crate::distro::Distro;
use crate::error::Result;
use crate::shell::{self, quote, quote_words};
use crate::step::Step;

/// The user the build logs in as (made by cloud-init from the seed) and the seal deletes.
pub const BUILD_USER: &str = "nodeimg";
/// Written on `/dev/console` (the serial log) when part B has finished.
pub const SEAL_MARKER: &str = "SEAL-DONE";
/// Written on `/dev/console` when part B failed (followed by ` rc=<status>`).
pub const SEAL_FAILED_MARKER: &str = "SEAL-FAILED";
/// Name of part B's transient unit (`nodeimg-seal.service`).
pub const SEAL_UNIT: &str = "nodeimg-seal";
/// How long the host should wait for [`SEAL_MARKER`] after `seal-detach` returned (part B
/// takes ~6 s under TCG in guest-recipe §4, most of it `fstrim`; a big disk takes longer).
pub const SEAL_MARKER_TIMEOUT: Duration = Duration::from_secs(600);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Renders the seal for `distro` and the build user `build_user` (the user of the SSH session,
/// deleted by part B). The last step starts part B and must be the last thing run over SSH.
pub fn seal_steps(distro: &Distro, build_user: &str) -> Result<Vec<Step>> {
    shell::check_user_name("build user", build_user)?;
    Ok(vec![
        apt(),
        cloud_init(distro),
        identity(distro),
        scratch(),
        detach(distro, build_user),
    ])
}

fn apt() -> Step {
    let body = "\
apt-get clean
rm -rf /var/lib/apt/lists/*
";
    Step::new("seal-apt", secs(60), body)
}

fn cloud_init(distro: &Distro) -> Step {
    // Globs stay unquoted on purpose (they come from the distro's facts, not from input).
    let net = distro.cloud_init_network_files.join(" ");
    let body = format!(
        "cloud-init clean --logs --seed\n\
         # cloud-init re-renders MAC-matched network config for every new instance\n\
         rm -rf -- {net}\n"
    );
    Step::new("seal-cloud-init", secs(120), &body)
}

fn identity(distro: &Distro) -> Step {
    let body = format!(
        "truncate -s 0 /etc/machine-id\n\
         rm -f /var/lib/dbus/machine-id\n\
         rm -f /etc/ssh/ssh_host_*\n\
         rm -f /etc/udev/rules.d/70-persistent-net.rules\n\
         printf '%s\\n' {host} > /etc/hostname\n",
        host = quote(distro.sealed_hostname),
    );
    Step::new("seal-identity", secs(30), &body)
}

fn scratch() -> Step {
    let body = "\
# systemd-private-* belong to running services; systemd removes them when they stop
for d in /tmp /var/tmp; do
\tfind \"$d\" -mindepth 1 -maxdepth 1 ! -name 'systemd-private-*' -exec rm -rf -- {} +
done
for d in /root /home/*; do
\tif [ -d \"$d\" ]; then
\t\trm -f -- \"$d/.bash_history\" \"$d/.sh_history\" \"$d/.ash_history\" \"$d/.zsh_history\" \\
\t\t\t\"$d/.python_history\" \"$d/.lesshst\" \"$d/.viminfo\" \"$d/.wget-hsts\"
\tfi
done
rm -rf /var/crash/* /var/lib/systemd/coredump/*
for d in / /root; do
\tfind \"$d\" -maxdepth 1 -type f \\( -name core -o -name 'core.[0-9]*' \\) -delete
done
";
    Step::new("seal-scratch", secs(120), body)
}

fn detach(distro: &Distro, user: &str) -> Step {
    let part_b = seal_detached_script(distro, user);
    let u = quote(user);
    let body = format!(
        "home=$(getent passwd {u} | cut -d: -f6)\n\
         if [ -z \"$home\" ]; then\n\
         \techo {missing} >&2\n\
         \texit 1\n\
         fi\n\
         rm -f -- \"$home/.ssh/authorized_keys\" /etc/sudoers.d/90-cloud-init-users\n\
         # cloud-init writes root's authorized_keys too (disable_root); cloud-init makes it anew\n\
         rm -f /root/.ssh/authorized_keys\n\
         systemctl reset-failed {unit} 2>/dev/null || true\n\
         systemd-run --no-block {args} \\\n\
         \t/bin/sh -c {script} {unit_name}\n",
        missing = quote(&format!("build user {user} does not exist")),
        unit = quote(&format!("{SEAL_UNIT}.service")),
        args = quote_words([
            format!("--unit={SEAL_UNIT}"),
            "--description=nodeimg seal, part B".to_owned(),
        ]),
        script = quote(&part_b),
        unit_name = quote(SEAL_UNIT),
    );
    Step::new("seal-detach", secs(60), &body)
}

/// Part B of the seal, the script the `seal-detach` step hands to `systemd-run … /bin/sh -c`.
///
/// It never contains `${`: systemd expands `${NAME}` inside `ExecStart=` arguments, also for
/// transient units (before `--expand-environment=no`, systemd 254), so the script uses `$name`
/// only (and no `%`, to stay clear of unit specifiers). It ends with `echo SEAL-DONE > /dev/console`; any earlier failure writes
/// `SEAL-FAILED rc=<status>` there instead.
pub fn seal_detached_script(_distro: &Distro, build_user: &str) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "set -eu\n\
         exec </dev/null\n\
         trap 'rc=$?; if [ \"$rc\" -ne 0 ]; then echo \"{failed} rc=$rc\" > /dev/console; fi' EXIT\n\
         user={user}\n\
         # let the SSH command that started this unit report its exit status first\n\
         sleep 2\n\
         if loginctl show-user -- \"$user\" >/dev/null 2>&1; then\n\
         \tloginctl terminate-user -- \"$user\"\n\
         fi\n\
         i=0\n\
         while pgrep -u \"$user\" >/dev/null 2>&1; do\n\
         \ti=$((i + 1))\n\
         \tif [ \"$i\" -eq 30 ]; then\n\
         \t\tpkill -KILL -u \"$user\" || true\n\
         \tfi\n\
         \tif [ \"$i\" -ge 60 ]; then\n\
         \t\techo \"processes of $user still running after 60 s\" >&2\n\
         \t\texit 1\n\
         \tfi\n\
         \tsleep 1\n\
         done\n\
         userdel -r -- \"$user\"\n\
         rm -f -- \"/var/lib/systemd/linger/$user\"\n\
         journalctl --relinquish-var\n\
         if [ -d /var/log/journal ]; then\n\
         \tfind /var/log/journal -mindepth 1 -delete\n\
         fi\n\
         for f in /var/log/wtmp /var/log/btmp /var/log/lastlog; do\n\
         \tif [ -f \"$f\" ]; then\n\
         \t\ttruncate -s 0 \"$f\"\n\
         \tfi\n\
         done\n\
         rm -f /var/lib/wtmpdb/wtmp.db /var/lib/lastlog/lastlog2.db\n\
         find /var/log -type f \\( -name '*.gz' -o -name '*.xz' -o -name '*.[0-9]' -o -name '*.old' \\) -delete\n\
         find /var/log -type f -exec truncate -s 0 {{}} +\n\
         rc=0\n\
         fstrim -av || rc=$?\n\
         # 64: some filesystems do not support discard\n\
         if [ \"$rc\" -ne 0 ] && [ \"$rc\" -ne 64 ]; then\n\
         \techo \"fstrim -av failed with status $rc\" >&2\n\
         \texit \"$rc\"\n\
         fi\n\
         sync\n\
         trap - EXIT\n\
         echo {marker} > /dev/console\n",
        failed = SEAL_FAILED_MARKER,
        user = quote(build_user),
        marker = SEAL_MARKER,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian12::DEBIAN_12;
    use crate::error::Error;

    #[test]
    fn refuses_bad_build_users() {
        for bad in ["root", "a'b", "x; reboot", ""] {
            assert!(
                matches!(
                    seal_steps(&DEBIAN_12, bad),
                    Err(Error::InvalidInput {
                        field: "build user",
                        ..
                    })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn part_b_has_no_systemd_expansion_and_ends_with_marker() {
        let b = seal_detached_script(&DEBIAN_12, "builder");
        assert!(!b.contains("${"), "systemd would expand ${{…}}");
        assert!(!b.contains('%'), "keep systemd specifiers out of ExecStart");
        assert_eq!(b.lines().last(), Some("echo SEAL-DONE > /dev/console"));
        assert!(b.contains("user='builder'\n"));
        assert!(b.contains("userdel -r -- \"$user\"\n"));
        let fstrim = b.find("fstrim -av").unwrap();
        assert!(b.find("userdel").unwrap() < fstrim);
        assert!(b.find("journalctl --relinquish-var").unwrap() < fstrim);
        assert!(!b.contains("SEAL-DONE rc"));
    }

    #[test]
    fn detach_is_last_and_runs_part_b() {
        let steps = seal_steps(&DEBIAN_12, "builder").unwrap();
        let last = steps.last().unwrap();
        assert_eq!(last.name, "seal-detach");
        assert!(
            last.script
                .contains("systemd-run --no-block '--unit=nodeimg-seal' ")
        );
        assert!(last.script.contains("/etc/sudoers.d/90-cloud-init-users"));
        assert!(
            last.script
                .contains(&quote(&seal_detached_script(&DEBIAN_12, "builder")))
        );
        for s in &steps[..steps.len() - 1] {
            assert!(
                !s.script.contains("sudoers"),
                "{} locks out sudo early",
                s.name
            );
        }
    }
}
