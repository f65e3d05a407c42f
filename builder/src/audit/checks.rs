//! The seal hygiene rules. Each agrees with what `distros::seal` does to a golden disk: it
//! flags what the seal removes or empties, and nothing a correctly sealed disk keeps.

use diskimg::ext4::{Ext4, FileKind};

use super::view::{Found, View};
use super::{AuditError, AuditOptions};

/// A check: returns its findings (empty when it passes), each naming a path.
pub(crate) type CheckFn = fn(&mut View<'_>, &AuditOptions) -> Result<Vec<String>, AuditError>;

/// A named check.
pub(crate) struct Check {
    /// Its name, the JUnit case name.
    pub name: &'static str,
    /// What it requires, in words.
    pub description: &'static str,
    /// The rule.
    pub run: CheckFn,
}

/// Every check, in report order.
pub(crate) const CHECKS: &[Check] = &[
    Check {
        name: "machine-id",
        description: "/etc/machine-id exists and is empty; /var/lib/dbus/machine-id is absent or a symlink to it",
        run: machine_id,
    },
    Check {
        name: "ssh-host-keys",
        description: "no /etc/ssh/ssh_host_* files",
        run: ssh_host_keys,
    },
    Check {
        name: "build-user",
        description: "the build user has no passwd/shadow/group/gshadow line, home, sudoers drop-in or linger file",
        run: build_user,
    },
    Check {
        name: "authorized-keys",
        description: "no authorized_keys files under /root and /home",
        run: authorized_keys,
    },
    Check {
        name: "cloud-init-instance",
        description: "no cloud-init instance data under /var/lib/cloud",
        run: cloud_init,
    },
    Check {
        name: "shell-histories",
        description: "no shell or tool histories in /root and /home/*",
        run: histories,
    },
    Check {
        name: "private-keys",
        description: "no PEM or OpenSSH private keys under /root, /home and /etc/ssh",
        run: private_keys,
    },
    Check {
        name: "core-dumps",
        description: "no core dumps in /var/crash, /var/lib/systemd/coredump, / and /root",
        run: core_dumps,
    },
    Check {
        name: "apt-lists",
        description: "/var/lib/apt/lists holds nothing but lock and empty partial/ and auxfiles/",
        run: apt_lists,
    },
    Check {
        name: "var-log-size",
        description: "regular files under /var/log total at most the limit",
        run: var_log_size,
    },
    Check {
        name: "journal-files",
        description: "no files under /var/log/journal",
        run: journal_files,
    },
];

/// Shell and tool histories the seal deletes from every home.
pub const HISTORY_FILES: &[&str] = &[
    ".bash_history",
    ".sh_history",
    ".ash_history",
    ".zsh_history",
    ".python_history",
    ".lesshst",
    ".viminfo",
    ".wget-hsts",
];

fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::File => "a regular file",
        FileKind::Dir => "a directory",
        FileKind::Symlink => "a symlink",
        _ => "a special file",
    }
}

fn machine_id(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut findings = Vec::new();
    match v.get("/etc/machine-id")? {
        None => findings.push("/etc/machine-id is missing (it must exist and be empty)".into()),
        Some(i) if !i.is_file() => findings.push(format!(
            "/etc/machine-id is {} (an empty regular file is expected)",
            kind_name(i.kind())
        )),
        Some(i) if i.size != 0 => findings.push(format!(
            "/etc/machine-id holds {} bytes (it must be empty)",
            i.size
        )),
        Some(_) => {}
    }
    if let Some(i) = v.get("/var/lib/dbus/machine-id")? {
        let ok = i.is_symlink() && {
            let target = v.fs.read_link(&i)?;
            target == b"/etc/machine-id" || target == b"../../../etc/machine-id"
        };
        if !ok {
            findings.push(format!(
                "/var/lib/dbus/machine-id is {} of {} bytes (absent or a symlink to /etc/machine-id expected)",
                kind_name(i.kind()),
                i.size
            ));
        }
    }
    Ok(findings)
}

fn ssh_host_keys(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    Ok(v.list("/etc/ssh")?
        .unwrap_or_default()
        .iter()
        .filter(|e| e.name.starts_with(b"ssh_host_"))
        .map(|e| format!("/etc/ssh/{}", e.name()))
        .collect())
}

/// Whether `user` appears in `text` as a whole word (user names are `[a-z0-9_.-]`).
fn mentions(text: &str, user: &str) -> bool {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '$')))
        .any(|w| w == user)
}

fn build_user(v: &mut View<'_>, o: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let user = o.build_user.as_str();
    let mut findings = Vec::new();
    for file in ["/etc/passwd", "/etc/shadow", "/etc/group", "/etc/gshadow"] {
        let Some(data) = v.read(file, 16 << 20)? else {
            continue;
        };
        let text = String::from_utf8_lossy(&data);
        for (n, line) in (1..).zip(text.lines()) {
            let mut fields = line.split(':');
            let name = fields.next().unwrap_or("");
            // group/gshadow: the last field lists members.
            let member = (file.ends_with("group") || file.ends_with("gshadow"))
                && line
                    .rsplit(':')
                    .next()
                    .is_some_and(|m| m.split(',').any(|m| m.trim() == user));
            if name == user || member {
                findings.push(format!("{file} line {n} names {user}: {line}"));
            }
        }
    }
    for path in [
        format!("/home/{user}"),
        format!("/var/lib/systemd/linger/{user}"),
        "/etc/sudoers.d/90-cloud-init-users".to_string(),
    ] {
        if let Some(i) = v.get(&path)? {
            findings.push(format!("{path} exists ({})", kind_name(i.kind())));
        }
    }
    for e in v.list("/etc/sudoers.d")?.unwrap_or_default() {
        let path = format!("/etc/sudoers.d/{}", e.name());
        if path.ends_with("/90-cloud-init-users") {
            continue;
        }
        if let Some(data) = v.read(&path, 1 << 20)?
            && mentions(&String::from_utf8_lossy(&data), user)
        {
            findings.push(format!("{path} mentions {user}"));
        }
    }
    Ok(findings)
}

/// Visits every file under /root and /home; a walk that could not finish is a finding.
fn walk_homes(
    v: &mut View<'_>,
    findings: &mut Vec<String>,
    mut visit: impl FnMut(&mut Ext4, Found, &mut Vec<String>) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    for root in ["/root", "/home"] {
        walk(v, root, findings, &mut visit)?;
    }
    Ok(())
}

/// [`View::walk`] with `visit` adding to `findings`; a walk that stopped at a limit adds why,
/// so the check fails rather than passing on what it did not see.
fn walk(
    v: &mut View<'_>,
    root: &str,
    findings: &mut Vec<String>,
    mut visit: impl FnMut(&mut Ext4, Found, &mut Vec<String>) -> Result<(), AuditError>,
) -> Result<(), AuditError> {
    let mut found = Vec::new();
    let incomplete = v.walk(root, |fs, f| visit(fs, f, &mut found))?;
    found.sort();
    findings.extend(found);
    findings.extend(incomplete);
    Ok(())
}

fn authorized_keys(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut findings = Vec::new();
    walk_homes(v, &mut findings, |_, f, out| {
        let name = f.path.rsplit('/').next().unwrap_or("");
        if name == "authorized_keys" || name == "authorized_keys2" {
            out.push(format!("{} ({} bytes)", f.path, f.inode.size));
        }
        Ok(())
    })?;
    Ok(findings)
}

fn cloud_init(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut findings = Vec::new();
    if let Some(i) = v.get("/var/lib/cloud/instance")? {
        findings.push(format!(
            "/var/lib/cloud/instance exists ({})",
            kind_name(i.kind())
        ));
    }
    for dir in ["/var/lib/cloud/instances", "/var/lib/cloud/data"] {
        for e in v.list(dir)?.unwrap_or_default() {
            findings.push(format!("{dir}/{}", e.name()));
        }
    }
    Ok(findings)
}

fn histories(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut dirs = vec!["/root".to_string()];
    for e in v.list("/home")?.unwrap_or_default() {
        dirs.push(format!("/home/{}", e.name()));
    }
    let mut findings = Vec::new();
    for d in dirs {
        for name in HISTORY_FILES {
            let path = format!("{d}/{name}");
            if let Some(i) = v.get(&path)? {
                findings.push(format!("{path} ({} bytes)", i.size));
            }
        }
    }
    Ok(findings)
}

/// Whether the start of a file looks like a private key.
fn is_private_key(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head);
    text.contains("OPENSSH PRIVATE KEY")
        || text
            .find("-----BEGIN")
            .is_some_and(|at| text[at..].contains("PRIVATE KEY-----"))
}

fn private_keys(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut findings = Vec::new();
    let mut visit = |fs: &mut Ext4, f: Found, out: &mut Vec<String>| {
        if f.inode.is_file() && is_private_key(&fs.read_file(&f.inode, 1024)?) {
            out.push(f.path);
        }
        Ok(())
    };
    walk_homes(v, &mut findings, &mut visit)?;
    walk(v, "/etc/ssh", &mut findings, &mut visit)?;
    Ok(findings)
}

/// `core` or `core.<digits>`, as the seal's `find -name core -o -name 'core.[0-9]*'`.
fn is_core_name(name: &str) -> bool {
    name == "core"
        || name
            .strip_prefix("core.")
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
}

fn core_dumps(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut findings = Vec::new();
    for dir in ["/var/crash", "/var/lib/systemd/coredump"] {
        for e in v.list(dir)?.unwrap_or_default() {
            findings.push(format!("{dir}/{}", e.name()));
        }
    }
    for dir in ["", "/root"] {
        for e in v
            .list(if dir.is_empty() { "/" } else { dir })?
            .unwrap_or_default()
        {
            if is_core_name(&e.name()) && v.fs.inode(e.ino)?.is_file() {
                findings.push(format!("{dir}/{}", e.name()));
            }
        }
    }
    Ok(findings)
}

fn apt_lists(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    const LISTS: &str = "/var/lib/apt/lists";
    let mut findings = Vec::new();
    for e in v.list(LISTS)?.unwrap_or_default() {
        let name = e.name().into_owned();
        let path = format!("{LISTS}/{name}");
        let inode = v.fs.inode(e.ino)?;
        match name.as_str() {
            "lock" if inode.is_file() => {}
            "partial" | "auxfiles" if inode.is_dir() => {
                for inner in v.list(&path)?.unwrap_or_default() {
                    findings.push(format!("{path}/{}", inner.name()));
                }
            }
            _ => findings.push(format!("{path} ({} bytes)", inode.size)),
        }
    }
    Ok(findings)
}

fn var_log_size(v: &mut View<'_>, o: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut files: Vec<(String, u64)> = Vec::new();
    let incomplete = v.walk("/var/log", |_, f| {
        if f.inode.is_file() {
            files.push((f.path, f.inode.size));
        }
        Ok(())
    })?;
    let total: u64 = files.iter().map(|(_, size)| size).sum();
    let mut findings = Vec::new();
    if total > o.var_log_limit {
        files.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        findings.push(format!(
            "/var/log holds {total} bytes in {} regular files (limit {} bytes); largest:",
            files.len(),
            o.var_log_limit
        ));
        findings.extend(
            files
                .iter()
                .take(10)
                .map(|(path, size)| format!("{path} ({size} bytes)")),
        );
    }
    findings.extend(incomplete);
    Ok(findings)
}

fn journal_files(v: &mut View<'_>, _: &AuditOptions) -> Result<Vec<String>, AuditError> {
    let mut findings = Vec::new();
    walk(v, "/var/log/journal", &mut findings, |_, f, out| {
        if !f.inode.is_dir() {
            out.push(format!("{} ({} bytes)", f.path, f.inode.size));
        }
        Ok(())
    })?;
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_key_headers() {
        assert!(is_private_key(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl"));
        assert!(is_private_key(b"junk\n-----BEGIN RSA PRIVATE KEY-----\n"));
        assert!(is_private_key(b"-----BEGIN PRIVATE KEY-----\n"));
        assert!(is_private_key(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n"));
        assert!(!is_private_key(b"-----BEGIN PUBLIC KEY-----\n"));
        assert!(!is_private_key(b"ssh-ed25519 AAAA comment\n"));
    }

    #[test]
    fn core_names_follow_the_seal() {
        assert!(is_core_name("core"));
        assert!(is_core_name("core.1234"));
        assert!(!is_core_name("core.d"));
        assert!(!is_core_name("corefile"));
    }

    #[test]
    fn user_mentions_are_whole_words() {
        assert!(mentions("nodeimg ALL=(ALL) NOPASSWD:ALL", "nodeimg"));
        assert!(!mentions("nodeimg-boot ALL=(ALL) ALL", "nodeimg"));
        assert!(!mentions("%sudo ALL=(ALL:ALL) ALL", "nodeimg"));
    }
}
