//! The NoCloud seed: `meta-data` and `user-data` rendered from a [`SeedSpec`] and packed into a
//! 1 MiB FAT12 image labelled `CIDATA`, made in-process with `fatfs` and byte-identical for the
//! same spec (fixed timestamps, volume id from a hash of the contents).
//!
//! What the seed does in the guest (cloud-init 22.4, Debian 12):
//! * `meta-data`: the instance id and the hostname.
//! * `user-data`: a `#cloud-config` document that creates the build user (groups `sudo`,
//!   `/bin/bash`, passwordless sudo, locked password, the build key), turns off password SSH and
//!   root login, repeats the runtime fixes of the image recipe (`locale: C.UTF-8`, no DSA host
//!   key), keeps apt away from the network, and arms the readiness beacon (see
//!   [`SeedSpec::render_user_data`]).
//! * No `network-config`: cloud-init's fallback (DHCP on the first NIC, rendered for networkd)
//!   is what gives the guest its slirp address, so SSH works; disabling it would cut SSH off.

use std::fmt::Write as _;
use std::io::{Cursor, Write as _};
use std::path::{Path, PathBuf};

use fatfs::{
    Date, DateTime, FileSystem, FormatVolumeOptions, FsOptions, Time, TimeProvider, format_volume,
};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The virtio-serial port name the beacon is written to (`/dev/virtio-ports/<name>` in the
/// guest; `-device virtserialport,name=<name>` on the QEMU side).
pub const BEACON_PORT: &str = "org.nodeimg.ready";

/// The FAT volume label cloud-init's NoCloud datasource looks for, padded to 11 bytes.
pub const SEED_LABEL: [u8; 11] = *b"CIDATA     ";

/// Size of the seed image: 1 MiB, which `fatfs` formats as FAT12.
pub const SEED_IMAGE_SIZE: usize = 1 << 20;

/// Name of the meta-data file in the seed.
pub const META_DATA: &str = "meta-data";

/// Name of the user-data file in the seed.
pub const USER_DATA: &str = "user-data";

/// Where cloud-init (22.4 and later) writes the outcome of its final stage: `{"v1":
/// {"datasource": ..., "errors": [...]}}`, pretty-printed, so an empty list reads
/// `"errors": []`.
pub const CLOUD_INIT_RESULT: &str = "/run/cloud-init/result.json";

/// The name of the transient systemd unit that sends the beacon.
pub const BEACON_UNIT: &str = "nodeimg-ready";

/// Every timestamp in the seed image: 2000-01-01 00:00:00 (any constant would do).
#[derive(Debug)]
struct FixedTime;

const FIXED_DATE: Date = Date {
    year: 2000,
    month: 1,
    day: 1,
};

impl TimeProvider for FixedTime {
    fn get_current_date(&self) -> Date {
        FIXED_DATE
    }
    fn get_current_date_time(&self) -> DateTime {
        DateTime {
            date: FIXED_DATE,
            time: Time {
                hour: 0,
                min: 0,
                sec: 0,
                millis: 0,
            },
        }
    }
}

static FIXED_TIME: FixedTime = FixedTime;

/// What goes into one NoCloud seed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSpec {
    /// cloud-init's instance id (`meta-data: instance-id`); a new one makes cloud-init run its
    /// per-instance modules again. 1–128 characters of `A-Z a-z 0-9 . _ : -`.
    pub instance_id: String,
    /// The guest's hostname (`meta-data: local-hostname`): RFC 1123, dot-separated labels of
    /// `a-z A-Z 0-9 -`, at most 253 characters.
    pub hostname: String,
    /// The build user: a Debian user name (`[a-z_][a-z0-9_-]*`, at most 32), not `root`.
    pub user: String,
    /// One `authorized_keys` line for the build user (`BuildKey::public_openssh`).
    pub authorized_key: String,
    /// The virtio-serial port name of the readiness beacon; normally [`BEACON_PORT`].
    pub beacon_port: String,
}

impl SeedSpec {
    /// A spec with the default beacon port [`BEACON_PORT`].
    pub fn new(
        instance_id: impl Into<String>,
        hostname: impl Into<String>,
        user: impl Into<String>,
        authorized_key: impl Into<String>,
    ) -> Self {
        Self {
            instance_id: instance_id.into(),
            hostname: hostname.into(),
            user: user.into(),
            authorized_key: authorized_key.into(),
            beacon_port: BEACON_PORT.to_owned(),
        }
    }

    /// The guest path of the beacon port.
    pub fn beacon_device(&self) -> String {
        format!("/dev/virtio-ports/{}", self.beacon_port)
    }

    /// The exact line the guest writes to the beacon port once cloud-init is done without
    /// errors: `READY <instance-id>\n`. (On a cloud-init error it writes
    /// `FAILED <instance-id> 1\n` instead.)
    pub fn ready_line(&self) -> String {
        format!("READY {}\n", self.instance_id)
    }

    /// Checks every field; the error names the field and the seed file it goes into.
    pub fn validate(&self) -> Result<()> {
        let fields: [(&str, &'static str, &str, FieldRule); 5] = [
            (
                META_DATA,
                "instance_id",
                &self.instance_id,
                instance_id_rule,
            ),
            (META_DATA, "hostname", &self.hostname, hostname_rule),
            (USER_DATA, "user", &self.user, user_rule),
            (
                USER_DATA,
                "authorized_key",
                &self.authorized_key,
                authorized_key_rule,
            ),
            (
                USER_DATA,
                "beacon_port",
                &self.beacon_port,
                beacon_port_rule,
            ),
        ];
        for (file, field, value, rule) in fields {
            check_no_control(file, field, value)?;
            rule(value).map_err(|reason| field_err(file, field, reason))?;
        }
        Ok(())
    }

    /// The `meta-data` file (YAML): `instance-id` and `local-hostname`, both quoted.
    pub fn render_meta_data(&self) -> Result<String> {
        self.validate()?;
        Ok(format!(
            "instance-id: {}\nlocal-hostname: {}\n",
            yaml_quote(&self.instance_id),
            yaml_quote(&self.hostname)
        ))
    }

    /// The `user-data` file: a `#cloud-config` document.
    ///
    /// **Readiness beacon.** The guest must report readiness only after cloud-init has
    /// *finished* (all four stages, including the final modules after `scripts-user`), so that
    /// `cloud-init status` is `done` when the host starts issuing commands. A plain `runcmd`
    /// entry runs inside `cloud-final.service` (module `scripts-user`), before the remaining
    /// final modules, and calling `cloud-init status --wait` from there would wait on itself.
    /// So `runcmd` only *starts* a transient unit and returns at once:
    ///
    /// ```text
    /// systemd-run --no-block --unit=nodeimg-ready -p After=cloud-final.service \
    ///     /bin/sh -c '<script>' nodeimg-ready <instance-id> /dev/virtio-ports/<port> \
    ///     /run/cloud-init/result.json
    /// ```
    ///
    /// `After=cloud-final.service` holds the unit until cloud-final has exited. The script then
    /// waits for cloud-init's `result.json` (written at the end of the final stage, with the
    /// errors of every stage; belt and braces), and writes the guest's ed25519 SSH host key as
    /// `HOSTKEY <openssh public key>` (so the host can pin it instead of trusting whatever
    /// answers on the forwarded port) followed by `READY <instance-id>` when the errors list is
    /// empty, or `FAILED <instance-id> 1` to the port. Why this shape:
    /// * plain shell instead of `cloud-init status --wait`: starting Python costs 5–8 s under
    ///   TCG, and the ordering already says cloud-init is done;
    /// * a transient unit leaves nothing behind in `/etc` of the golden image (a `write_files`
    ///   unit would have to be enabled and later removed by the seal step);
    /// * `runcmd` is given as an argument list, so cloud-init runs it without a shell and the
    ///   instance id and port path reach the script as positional parameters, never as code;
    /// * the script runs from `/bin/sh -c`, not from a file, so `/run` being `noexec`
    ///   (guest-recipe pitfall 12) does not matter;
    /// * `runcmd` is per-instance, so a re-boot with a new instance id arms a new beacon, and a
    ///   plain reboot with the same id sends none (the host then relies on SSH).
    pub fn render_user_data(&self) -> Result<String> {
        self.validate()?;
        let script = concat!(
            "r=\"$3\"; while [ ! -e \"$r\" ]; do sleep 0.2; done; { ",
            "k=/etc/ssh/ssh_host_ed25519_key.pub; ",
            "if [ -r \"$k\" ]; then printf 'HOSTKEY %s\\n' \"$(cat \"$k\")\"; fi; ",
            "if grep -q '\"errors\": \\[\\]' \"$r\"; then printf 'READY %s\\n' \"$1\"; ",
            "else printf 'FAILED %s 1\\n' \"$1\"; fi; } > \"$2\"",
        );
        let beacon_argv = [
            "systemd-run",
            "--quiet",
            "--no-block",
            &format!("--unit={BEACON_UNIT}"),
            "--property=After=cloud-final.service",
            "--description=nodeimg readiness beacon",
            "/bin/sh",
            "-c",
            script,
            BEACON_UNIT,
            &self.instance_id,
            &self.beacon_device(),
            CLOUD_INIT_RESULT,
        ];

        let mut y = String::new();
        // `write!` into a String cannot fail; the results are ignored on purpose.
        let _ = writeln!(y, "#cloud-config");
        let _ = writeln!(y, "# NoCloud seed rendered by nodeimg; do not edit.");
        let _ = writeln!(y, "users:");
        let _ = writeln!(y, "  - name: {}", yaml_quote(&self.user));
        let _ = writeln!(y, "    groups: [{}]", yaml_quote("sudo"));
        let _ = writeln!(y, "    shell: {}", yaml_quote("/bin/bash"));
        let _ = writeln!(y, "    sudo: {}", yaml_quote("ALL=(ALL) NOPASSWD:ALL"));
        let _ = writeln!(y, "    lock_passwd: true");
        let _ = writeln!(y, "    ssh_authorized_keys:");
        let _ = writeln!(y, "      - {}", yaml_quote(&self.authorized_key));
        let _ = writeln!(y, "disable_root: true");
        let _ = writeln!(y, "ssh_pwauth: false");
        let _ = writeln!(
            y,
            "# Runtime fixes from the image recipe (also baked into cloud.cfg.d)."
        );
        let _ = writeln!(y, "locale: {}", yaml_quote("C.UTF-8"));
        let _ = writeln!(
            y,
            "# ed25519 is the host key the beacon reports and the host pins (no DSA; an image's"
        );
        let _ = writeln!(
            y,
            "# own cloud.cfg.d may still add more; sealing removes host keys anyway)."
        );
        let _ = writeln!(y, "ssh_genkeytypes: [{}]", yaml_quote("ed25519"));
        let _ = writeln!(y, "# The guest network is restricted: never touch apt.");
        let _ = writeln!(y, "package_update: false");
        let _ = writeln!(y, "package_upgrade: false");
        let _ = writeln!(y, "package_reboot_if_required: false");
        let _ = writeln!(
            y,
            "# Readiness beacon: after cloud-init is done, write the ready line to {}.",
            self.beacon_device()
        );
        let _ = writeln!(y, "runcmd:");
        let argv: Vec<String> = beacon_argv.iter().map(|a| yaml_quote(a)).collect();
        let _ = writeln!(y, "  - [{}]", argv.join(", "));
        Ok(y)
    }

    /// The seed image: 1 MiB FAT12 labelled `CIDATA` (boot sector and root directory) with
    /// `meta-data` and `user-data` in the root directory, every timestamp fixed and the volume
    /// id taken from a SHA-256 of both files, so the same spec gives the same bytes.
    pub fn build_image(&self) -> Result<Vec<u8>> {
        let meta = self.render_meta_data()?;
        let user = self.render_user_data()?;
        let image = fat_image(&[(META_DATA, meta.as_bytes()), (USER_DATA, user.as_bytes())])?;
        tracing::debug!(
            instance_id = %self.instance_id,
            bytes = image.len(),
            "built the NoCloud seed image"
        );
        Ok(image)
    }

    /// Builds the image and writes it to `path` atomically (temporary file in the same
    /// directory, fsync, rename, fsync of the directory), mode 0644.
    pub fn write_image(&self, path: &Path) -> Result<()> {
        let image = self.build_image()?;
        crate::keys::write_atomic(path, &image, 0o644)?;
        tracing::info!(path = %path.display(), instance_id = %self.instance_id, "wrote the NoCloud seed");
        Ok(())
    }
}

/// A FAT image of [`SEED_IMAGE_SIZE`] bytes labelled [`SEED_LABEL`] holding `files` in its root
/// directory, in that order. Only root-directory files: fatfs 0.3.6 writes subdirectories that
/// fsck.fat complains about.
fn fat_image(files: &[(&'static str, &[u8])]) -> Result<Vec<u8>> {
    let fat_err = |op: &'static str, name: &'static str| {
        move |source: std::io::Error| Error::SeedImage {
            op,
            path: PathBuf::from(name),
            cause: source,
        }
    };
    let mut hash = Sha256::new();
    for (name, data) in files {
        hash.update(name.as_bytes());
        hash.update([0]);
        hash.update(u64::try_from(data.len()).unwrap_or(u64::MAX).to_le_bytes());
        hash.update(data);
    }
    let digest = hash.finalize();
    let volume_id = u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]);

    let mut disk = Cursor::new(vec![0u8; SEED_IMAGE_SIZE]);
    format_volume(
        &mut disk,
        FormatVolumeOptions::new()
            .volume_label(SEED_LABEL)
            .volume_id(volume_id),
    )
    .map_err(fat_err("formatting", "<volume>"))?;
    {
        let fs = FileSystem::new(&mut disk, FsOptions::new().time_provider(&FIXED_TIME))
            .map_err(fat_err("mounting", "<volume>"))?;
        {
            let root = fs.root_dir();
            for (name, data) in files {
                let mut file = root.create_file(name).map_err(fat_err("creating", name))?;
                file.truncate().map_err(fat_err("truncating", name))?;
                file.write_all(data).map_err(fat_err("writing", name))?;
                file.flush().map_err(fat_err("flushing", name))?;
            }
        }
        fs.unmount().map_err(fat_err("unmounting", "<volume>"))?;
    }
    Ok(disk.into_inner())
}

/// A YAML double-quoted scalar: `"` and `\` escaped, control characters as `\xNN`/`\uNNNN`
/// escapes (validation already refuses them in user-supplied fields; this keeps the output
/// well-formed whatever comes in).
pub fn yaml_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' || c == '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn field_err(file: &str, field: &'static str, reason: impl Into<String>) -> Error {
    Error::SeedField {
        path: PathBuf::from(file),
        field,
        reason: reason.into(),
    }
}

/// Refuses line breaks and other control characters, with a reason that says which.
fn check_no_control(file: &str, field: &'static str, value: &str) -> Result<()> {
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        let what = match c {
            '\n' | '\r' => "a line break".to_owned(),
            c => format!("the control character U+{:04X}", u32::from(c)),
        };
        return Err(field_err(file, field, format!("{value:?} contains {what}")));
    }
    Ok(())
}

/// What a field's value must be beyond having no control character: `Err` holds the reason.
type FieldRule = fn(&str) -> std::result::Result<(), String>;

fn instance_id_rule(v: &str) -> std::result::Result<(), String> {
    if v.is_empty() || v.len() > 128 {
        return Err("must be 1 to 128 characters".to_owned());
    }
    if let Some(c) = v
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        return Err(format!(
            "{v:?} contains {c:?}; allowed are A-Z a-z 0-9 . _ : -"
        ));
    }
    Ok(())
}

fn hostname_rule(v: &str) -> std::result::Result<(), String> {
    if v.is_empty() || v.len() > 253 {
        return Err("must be 1 to 253 characters".to_owned());
    }
    for label in v.split('.') {
        let ok = !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
        if !ok {
            return Err(format!(
                "{v:?}: label {label:?} is not 1 to 63 of a-z A-Z 0-9 - (no leading or trailing -)"
            ));
        }
    }
    Ok(())
}

/// A user name as `useradd` accepts it by default: `[a-z_][a-z0-9_-]*`, 1 to 32 characters.
pub fn is_user_name(name: &str) -> bool {
    let mut chars = name.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok =
        chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'));
    first_ok && rest_ok && name.len() <= 32
}

fn user_rule(v: &str) -> std::result::Result<(), String> {
    if !is_user_name(v) {
        return Err(format!(
            "{v:?} is not a user name ([a-z_][a-z0-9_-]*, at most 32)"
        ));
    }
    if v == "root" {
        return Err("the build user cannot be root".to_owned());
    }
    Ok(())
}

fn authorized_key_rule(v: &str) -> std::result::Result<(), String> {
    let mut fields = v.split_whitespace();
    let (Some(kind), Some(blob)) = (fields.next(), fields.next()) else {
        return Err("is not an authorized_keys line (<type> <base64> [comment])".to_owned());
    };
    let kind_ok = kind.starts_with("ssh-") || kind.starts_with("ecdsa-") || kind.starts_with("sk-");
    let blob_ok = blob
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '='));
    if !kind_ok || !blob_ok {
        return Err(format!(
            "{kind:?} … is not an authorized_keys line (<type> <base64> [comment])"
        ));
    }
    Ok(())
}

fn beacon_port_rule(v: &str) -> std::result::Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v != "."
        && v != ".."
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if !ok {
        return Err(format!(
            "{v:?} is not a virtio-serial port name (1 to 64 of A-Z a-z 0-9 . _ -)"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
