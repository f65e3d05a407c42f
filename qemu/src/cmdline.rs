//! A typed VM description turned into a `qemu-system-x86_64` command line (guest recipe §2).

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use diskimg::ImageFormat;

use crate::accel::Accel;
use crate::error::{Error, Result};
use crate::host::Firmware;

/// Longest path a unix socket address can hold (`sun_path` is 108 bytes, NUL included).
const MAX_SOCKET_PATH: usize = 107;

/// The virtio-serial port name the guest writes to when it is ready (the seed's beacon port).
pub use crate::seed::BEACON_PORT as READY_PORT;

/// QEMU's block driver for `format`; [`VmSpec::validate`] refuses a disk without one, so the
/// fallback is never used on a validated spec.
fn driver(format: ImageFormat) -> &'static str {
    format.qemu_driver().unwrap_or("raw")
}

/// A read-only extra disk (NoCloud seed, payload). `name` becomes the drive id and the virtio
/// serial, so the guest sees it as `/dev/disk/by-id/virtio-<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraDisk {
    /// 1–20 characters of `[a-z0-9-]`, not `root`.
    pub name: String,
    /// The image.
    pub path: PathBuf,
    /// Its format.
    pub format: ImageFormat,
}

/// Everything that makes one VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmSpec {
    /// The VM's private directory (created mode 0700): vars copy, logs, sockets.
    pub dir: PathBuf,
    /// vCPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u32,
    /// Accelerator.
    pub accel: Accel,
    /// UEFI firmware; the vars template is copied into `dir`.
    pub firmware: Firmware,
    /// The working (root) disk, written by the guest, boots first.
    pub root_disk: PathBuf,
    /// The root disk's format.
    pub root_format: ImageFormat,
    /// Extra disks, attached read-only.
    pub extra_disks: Vec<ExtraDisk>,
    /// Host port forwarded (on 127.0.0.1) to the guest's port 22; see [`pick_free_port`].
    pub ssh_port: u16,
}

/// Where a VM's files live inside its directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VmPaths {
    /// The per-VM copy of the UEFI variable store.
    pub vars: PathBuf,
    /// Serial console log.
    pub serial_log: PathBuf,
    /// QEMU's own stdout/stderr.
    pub qemu_log: PathBuf,
    /// QMP socket.
    pub qmp_sock: PathBuf,
    /// The readiness virtio-serial socket.
    pub ready_sock: PathBuf,
    /// QEMU's pid file.
    pub pid_file: PathBuf,
}

impl VmSpec {
    /// The file layout of this VM.
    pub fn paths(&self) -> VmPaths {
        let d = &self.dir;
        VmPaths {
            vars: d.join("OVMF_VARS.fd"),
            serial_log: d.join("serial.log"),
            qemu_log: d.join("qemu.log"),
            qmp_sock: d.join("qmp.sock"),
            ready_sock: d.join("ready.sock"),
            pid_file: d.join("qemu.pid"),
        }
    }

    fn bad(&self, reason: impl Into<String>) -> Error {
        Error::BadSpec {
            dir: self.dir.clone(),
            reason: reason.into(),
        }
    }

    /// Checks what [`VmSpec::args`] relies on.
    pub fn validate(&self) -> Result<()> {
        if self.cpus == 0 || self.cpus > 255 {
            return Err(self.bad(format!("cpus must be 1..=255, not {}", self.cpus)));
        }
        if self.memory_mib < 128 {
            return Err(self.bad(format!(
                "memory must be at least 128 MiB, not {}",
                self.memory_mib
            )));
        }
        if self.ssh_port == 0 {
            return Err(self.bad("ssh port 0 (pick one with pick_free_port)"));
        }
        let p = self.paths();
        for sock in [&p.qmp_sock, &p.ready_sock] {
            let len = sock.as_os_str().len();
            if len > MAX_SOCKET_PATH {
                return Err(self.bad(format!(
                    "socket path {} is {len} bytes, unix sockets allow {MAX_SOCKET_PATH}; use a shorter VM directory",
                    sock.display()
                )));
            }
        }
        let formats = std::iter::once(("root", self.root_format))
            .chain(self.extra_disks.iter().map(|d| (d.name.as_str(), d.format)));
        for (name, format) in formats {
            if format.qemu_driver().is_none() {
                return Err(self.bad(format!(
                    "disk {name:?} is {format}, an archive QEMU cannot attach as a disk"
                )));
            }
        }
        let mut seen: Vec<&str> = Vec::new();
        for d in &self.extra_disks {
            let ok = !d.name.is_empty()
                && d.name.len() <= 20
                && d.name != "root"
                && d.name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok {
                return Err(self.bad(format!(
                    "extra disk name {:?} must be 1-20 characters of [a-z0-9-] and not \"root\"",
                    d.name
                )));
            }
            if seen.contains(&d.name.as_str()) {
                return Err(self.bad(format!("extra disk name {:?} used twice", d.name)));
            }
            seen.push(&d.name);
        }
        Ok(())
    }

    /// Creates `dir` (mode 0700) and copies the vars template into it (mode 0600), then
    /// returns the arguments.
    pub fn prepare(&self) -> Result<Vec<OsString>> {
        self.validate()?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Error::io("creating VM directory", &self.dir, e))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("setting mode 0700 on", &self.dir, e))?;
        let p = self.paths();
        std::fs::copy(&self.firmware.vars_template, &p.vars)
            .map_err(|e| Error::io("copying UEFI vars template to", &p.vars, e))?;
        std::fs::set_permissions(&p.vars, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| Error::io("setting mode 0600 on", &p.vars, e))?;
        Ok(self.args())
    }

    /// The arguments (without the program), in the order of the guest recipe.
    pub fn args(&self) -> Vec<OsString> {
        let p = self.paths();
        let mut a = Args::default();
        a.flag("-no-user-config");
        a.flag("-nodefaults");
        a.pair("-display", "none");
        a.pair("-machine", "q35");
        a.pair("-accel", self.accel.as_str());
        if self.accel == Accel::Kvm {
            a.pair("-cpu", "host");
        }
        a.pair("-smp", &self.cpus.to_string());
        a.pair("-m", &self.memory_mib.to_string());
        a.opt(
            "-drive",
            &[
                ("if=pflash,format=raw,unit=0,readonly=on,file=", None),
                ("", Some(&self.firmware.code)),
            ],
        );
        a.opt(
            "-drive",
            &[
                ("if=pflash,format=raw,unit=1,file=", None),
                ("", Some(&p.vars)),
            ],
        );
        let fmt = driver(self.root_format);
        a.opt(
            "-drive",
            &[
                ("id=root,if=none,format=", None),
                (fmt, None),
                (",discard=unmap,detect-zeroes=unmap,file=", None),
                ("", Some(&self.root_disk)),
            ],
        );
        a.pair("-device", "virtio-blk-pci,drive=root,bootindex=0");
        for d in &self.extra_disks {
            let head = format!(
                "id={},if=none,format={},readonly=on,file=",
                d.name,
                driver(d.format)
            );
            a.opt("-drive", &[(&head, None), ("", Some(&d.path))]);
            a.pair(
                "-device",
                &format!("virtio-blk-pci,drive={0},serial={0}", d.name),
            );
        }
        a.pair(
            "-netdev",
            &format!(
                "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:{}-:22",
                self.ssh_port
            ),
        );
        a.pair("-device", "virtio-net-pci,netdev=n0,romfile=");
        a.pair("-device", "virtio-rng-pci");
        a.opt("-serial", &[("file:", None), ("", Some(&p.serial_log))]);
        a.opt(
            "-qmp",
            &[
                ("unix:", None),
                ("", Some(&p.qmp_sock)),
                (",server=on,wait=off", None),
            ],
        );
        a.pair("-device", "virtio-serial-pci,id=vser0");
        a.opt(
            "-chardev",
            &[
                ("socket,id=ready,server=on,wait=off,path=", None),
                ("", Some(&p.ready_sock)),
            ],
        );
        a.pair(
            "-device",
            &format!("virtserialport,bus=vser0.0,chardev=ready,name={READY_PORT}"),
        );
        a.opt("-pidfile", &[("", Some(&p.pid_file))]);
        a.0
    }
}

#[derive(Default)]
struct Args(Vec<OsString>);

impl Args {
    fn flag(&mut self, f: &str) {
        self.0.push(f.into());
    }
    fn pair(&mut self, f: &str, v: &str) {
        self.0.push(f.into());
        self.0.push(v.into());
    }
    /// An option value assembled from literal text and paths; paths get QEMU's comma escaping.
    fn opt(&mut self, f: &str, parts: &[(&str, Option<&PathBuf>)]) {
        let mut v = OsString::new();
        for (text, path) in parts {
            v.push(text);
            if let Some(p) = path {
                v.push(escape_commas(p.as_os_str()));
            }
        }
        self.0.push(f.into());
        self.0.push(v);
    }
}

/// QEMU option values separate on `,`; a literal comma in a path is written `,,`.
pub fn escape_commas(s: &OsStr) -> OsString {
    let mut out = Vec::with_capacity(s.len());
    for &b in s.as_bytes() {
        out.push(b);
        if b == b',' {
            out.push(b',');
        }
    }
    OsString::from_vec(out)
}

/// A free TCP port on 127.0.0.1 (bind port 0, read it, release it; QEMU binds it next).
pub fn pick_free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| Error::io("binding", Path::new("127.0.0.1:0"), e))?;
    let port = l
        .local_addr()
        .map_err(|e| Error::io("reading the address of", Path::new("127.0.0.1:0"), e))?
        .port();
    Ok(port)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            dir: "/vm/x".into(),
            cpus: 2,
            memory_mib: 2048,
            accel: Accel::Tcg,
            firmware: Firmware {
                code: "/fw/CODE.fd".into(),
                vars_template: "/fw/VARS.fd".into(),
            },
            root_disk: "/img/golden,1.raw".into(),
            root_format: ImageFormat::Raw,
            extra_disks: vec![
                ExtraDisk {
                    name: "seed".into(),
                    path: "/img/seed.img".into(),
                    format: ImageFormat::Raw,
                },
                ExtraDisk {
                    name: "payload".into(),
                    path: "/img/payload.img".into(),
                    format: ImageFormat::Raw,
                },
            ],
            ssh_port: 2222,
        }
    }

    fn strings(s: &VmSpec) -> Vec<String> {
        s.args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn values<'a>(a: &'a [String], flag: &str) -> Vec<&'a str> {
        a.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].as_str())
            .collect()
    }

    #[test]
    fn recipe_arguments() {
        let a = strings(&spec());
        assert!(a.contains(&"-nodefaults".to_owned()));
        assert_eq!(values(&a, "-display"), ["none"]);
        assert_eq!(values(&a, "-accel"), ["tcg"]);
        assert!(values(&a, "-cpu").is_empty());
        assert_eq!(values(&a, "-smp"), ["2"]);
        assert_eq!(values(&a, "-m"), ["2048"]);
        let net = values(&a, "-netdev");
        assert_eq!(
            net,
            ["user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22"]
        );
        let dev = values(&a, "-device");
        assert!(dev.contains(&"virtio-net-pci,netdev=n0,romfile="));
        assert!(dev.contains(&"virtio-blk-pci,drive=root,bootindex=0"));
        assert!(dev.contains(&"virtserialport,bus=vser0.0,chardev=ready,name=org.nodeimg.ready"));
        assert_eq!(values(&a, "-serial"), ["file:/vm/x/serial.log"]);
        assert_eq!(
            values(&a, "-qmp"),
            ["unix:/vm/x/qmp.sock,server=on,wait=off"]
        );
        assert_eq!(
            values(&a, "-chardev"),
            ["socket,id=ready,server=on,wait=off,path=/vm/x/ready.sock"]
        );
    }

    #[test]
    fn disks() {
        let a = strings(&spec());
        let d = values(&a, "-drive");
        assert_eq!(d.len(), 5);
        assert_eq!(
            d[0],
            "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd"
        );
        // the VM's own vars copy, writable
        assert_eq!(d[1], "if=pflash,format=raw,unit=1,file=/vm/x/OVMF_VARS.fd");
        // working disk: discard, zero detection, comma escaped, not read-only
        assert_eq!(
            d[2],
            "id=root,if=none,format=raw,discard=unmap,detect-zeroes=unmap,file=/img/golden,,1.raw"
        );
        // extra disks read-only
        assert_eq!(
            d[3],
            "id=seed,if=none,format=raw,readonly=on,file=/img/seed.img"
        );
        assert!(d[4].contains("readonly=on") && d[4].starts_with("id=payload,"));
        assert!(!d[2].contains("readonly"));
    }

    #[test]
    fn kvm_uses_host_cpu() {
        let mut s = spec();
        s.accel = Accel::Kvm;
        let a = strings(&s);
        assert_eq!(values(&a, "-accel"), ["kvm"]);
        assert_eq!(values(&a, "-cpu"), ["host"]);
    }

    #[test]
    fn validation() {
        assert!(spec().validate().is_ok());
        let mut s = spec();
        s.cpus = 0;
        assert!(s.validate().is_err());
        let mut s = spec();
        s.extra_disks[1].name = "seed".into();
        assert!(s.validate().unwrap_err().to_string().contains("twice"));
        let mut s = spec();
        s.extra_disks[0].name = "Bad,Name".into();
        assert!(s.validate().is_err());
        let mut s = spec();
        s.dir = PathBuf::from("/").join("d".repeat(120));
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("unix sockets")
        );
        let mut s = spec();
        s.ssh_port = 0;
        assert!(s.validate().is_err());
    }

    #[test]
    fn an_archive_is_refused_as_a_disk_and_vhd_uses_the_vpc_driver() {
        let mut s = spec();
        s.extra_disks[1].format = ImageFormat::Ova;
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("\"payload\" is ova"), "{err}");
        let mut s = spec();
        s.root_format = ImageFormat::Vhd;
        assert!(s.validate().is_ok());
        assert!(
            strings(&s)
                .iter()
                .any(|a| a.starts_with("id=root,if=none,format=vpc,"))
        );
    }

    #[test]
    fn prepare_creates_private_dir_and_vars_copy() {
        let t = tempfile::tempdir().unwrap();
        let tpl = t.path().join("VARS.fd");
        std::fs::write(&tpl, b"vars").unwrap();
        let mut s = spec();
        s.dir = t.path().join("vm");
        s.firmware.vars_template = tpl;
        s.prepare().unwrap();
        let m = std::fs::metadata(&s.dir).unwrap().permissions().mode();
        assert_eq!(m & 0o777, 0o700);
        assert_eq!(std::fs::read(s.paths().vars).unwrap(), b"vars");
    }

    #[test]
    fn free_port_is_nonzero() {
        assert_ne!(pick_free_port().unwrap(), 0);
    }
}
