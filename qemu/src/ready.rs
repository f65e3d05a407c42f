//! Waiting for the guest's readiness beacon: the lines the seed's transient unit writes to the
//! virtio-serial port once cloud-init is done (see [`crate::seed::SeedSpec::render_user_data`]):
//! an optional `HOSTKEY <openssh public key>`, then `READY <instance-id>` or
//! `FAILED <instance-id> <rc>`.

use std::io::{BufRead, BufReader, ErrorKind};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use russh::keys::PublicKey;

use crate::process::Child;
use crate::stall::SerialWatch;

/// How often the wait looks at QEMU and the clock while nothing arrives.
const POLL: Duration = Duration::from_millis(200);

/// What the guest reported when it became ready.
#[derive(Debug, Clone)]
pub struct Beacon {
    /// Its ed25519 SSH host key, when it sent one.
    pub host_key: Option<PublicKey>,
}

/// Why the guest did not become ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotReady {
    /// The deadline passed.
    Timeout(Duration),
    /// QEMU exited first.
    QemuExited(String),
    /// cloud-init finished with errors (`FAILED <iid> <rc>`).
    CloudInitFailed(String),
    /// The beacon port broke.
    Port(String),
    /// The guest's kernel stalled before its init started (the console line saying so; see
    /// [`crate::stall`]).
    EarlyStall(String),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotReady::Timeout(t) => write!(
                f,
                "the guest did not report ready within {t:?} (no readiness beacon)"
            ),
            NotReady::QemuExited(s) => write!(f, "QEMU exited ({s}) before the guest was ready"),
            NotReady::CloudInitFailed(line) => {
                write!(
                    f,
                    "cloud-init finished with errors: the guest reported {line:?}"
                )
            }
            NotReady::Port(why) => write!(f, "readiness port: {why}"),
            NotReady::EarlyStall(line) => write!(
                f,
                "the guest's kernel stalled before its init started (serial console: {line:?})"
            ),
        }
    }
}

/// What one beacon line means.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// `HOSTKEY <key>` with a key that parses.
    HostKey(Box<PublicKey>),
    /// `READY <expected instance id>`.
    Ready,
    /// `FAILED <expected instance id> ...`.
    Failed,
    /// Anything else (another instance's beacon, noise): ignored.
    Other,
}

/// Classifies one line (without its newline) for `instance_id`.
pub fn parse_line(line: &str, instance_id: &str) -> Line {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("READY"), Some(id)) if id == instance_id => Line::Ready,
        (Some("FAILED"), Some(id)) if id == instance_id => Line::Failed,
        (Some("HOSTKEY"), Some(_)) => {
            let key = line["HOSTKEY".len()..].trim();
            match PublicKey::from_openssh(key) {
                Ok(k) => Line::HostKey(Box::new(k)),
                Err(_) => Line::Other,
            }
        }
        _ => Line::Other,
    }
}

/// Connects to the beacon socket `sock` (QEMU serves it) and reads lines until this instance's
/// `READY`, its `FAILED`, QEMU's exit, a kernel stall before init on the serial console
/// `watch` follows, or `deadline`.
pub fn wait_for_beacon(
    sock: &Path,
    instance_id: &str,
    child: &mut Child,
    watch: &mut SerialWatch,
    deadline: Instant,
    started: Instant,
) -> Result<Beacon, NotReady> {
    let mut exited = |child: &mut Child| -> Result<(), NotReady> {
        if let Some(line) = watch.early_stall() {
            return Err(NotReady::EarlyStall(line));
        }
        match child.try_wait() {
            Ok(Some(s)) => Err(NotReady::QemuExited(s.to_string())),
            Ok(None) => Ok(()),
            Err(e) => Err(NotReady::QemuExited(e.to_string())),
        }
    };
    let timeout = || NotReady::Timeout(deadline.saturating_duration_since(started));
    let stream = loop {
        match UnixStream::connect(sock) {
            Ok(s) => break s,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused) => {
                exited(child)?;
                if Instant::now() >= deadline {
                    return Err(timeout());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => {
                return Err(NotReady::Port(format!(
                    "connecting to {}: {e}",
                    sock.display()
                )));
            }
        }
    };
    stream
        .set_read_timeout(Some(POLL))
        .map_err(|e| NotReady::Port(e.to_string()))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut host_key = None;
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return Err(NotReady::Port("QEMU closed the socket".to_owned())),
            Ok(_) if line.ends_with('\n') => {
                let got = line.trim_end();
                tracing::debug!(line = got, "beacon");
                match parse_line(got, instance_id) {
                    Line::HostKey(k) => host_key = Some(*k),
                    Line::Ready => return Ok(Beacon { host_key }),
                    Line::Failed => return Err(NotReady::CloudInitFailed(got.to_owned())),
                    Line::Other => {}
                }
                line.clear();
            }
            Ok(_) => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => return Err(NotReady::Port(format!("reading {}: {e}", sock.display()))),
        }
        exited(child)?;
        if Instant::now() >= deadline {
            return Err(timeout());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let key = crate::BuildKey::generate().unwrap();
        let openssh = key.public_openssh().unwrap();
        assert_eq!(parse_line("READY iid-1", "iid-1"), Line::Ready);
        assert_eq!(parse_line("READY iid-2", "iid-1"), Line::Other);
        assert_eq!(parse_line("FAILED iid-1 2", "iid-1"), Line::Failed);
        assert_eq!(parse_line("FAILED iid-0 2", "iid-1"), Line::Other);
        assert_eq!(parse_line("", "iid-1"), Line::Other);
        assert_eq!(parse_line("HOSTKEY garbage", "iid-1"), Line::Other);
        match parse_line(&format!("HOSTKEY {openssh}"), "iid-1") {
            Line::HostKey(k) => assert_eq!(k.key_data(), key.private_key().public_key().key_data()),
            other => panic!("{other:?}"),
        }
    }
}
