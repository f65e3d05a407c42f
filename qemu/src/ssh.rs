//! SSH to a guest with `russh`, behind a blocking API: log in with the build key, run commands
//! with their output streamed and their exit status returned, upload files over SFTP.
//!
//! Each [`Ssh`] owns a single-threaded tokio runtime; callers stay synchronous. The guest's host
//! key is pinned when the readiness beacon reported it (`HOSTKEY` line), so whatever else might
//! answer on the forwarded 127.0.0.1 port is refused.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use russh::client::{self, Handle};
use russh::keys::{PrivateKey, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};
use russh::{ChannelMsg, Disconnect};
use russh_sftp::client::SftpSession;
use russh_sftp::protocol::{FileAttributes, OpenFlags};
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};

/// How long one connection attempt (TCP, key exchange, authentication) may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between connection attempts while the guest's sshd is not up yet.
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// SFTP upload chunk.
const UPLOAD_CHUNK: usize = 256 * 1024;

/// Where and as whom to log in.
#[derive(Clone)]
pub struct SshTarget {
    /// `127.0.0.1:<forwarded port>`.
    pub addr: SocketAddr,
    /// The build user.
    pub user: String,
    /// The build key.
    pub key: Arc<PrivateKey>,
    /// The guest's host key, when known; any other key is refused.
    pub host_key: Option<PublicKey>,
}

impl SshTarget {
    /// `user@addr`, for messages.
    pub fn label(&self) -> String {
        format!("{}@{}", self.user, self.addr)
    }
}

/// Which output stream a chunk of command output came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a remote command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(u32),
    /// It was killed by this signal (e.g. `KILL`).
    Signal(String),
    /// The channel closed without an exit status (sshd or the connection died).
    Unknown,
}

impl Exit {
    /// Exit code 0.
    pub fn success(&self) -> bool {
        *self == Exit::Code(0)
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exit::Code(c) => write!(f, "exit code {c}"),
            Exit::Signal(s) => write!(f, "signal {s}"),
            Exit::Unknown => write!(f, "no exit status (connection lost)"),
        }
    }
}

/// A finished command's captured output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    /// How it ended.
    pub exit: Exit,
    /// Everything it wrote to stdout.
    pub stdout: Vec<u8>,
    /// Everything it wrote to stderr.
    pub stderr: Vec<u8>,
}

/// Accepts the server when its key is the pinned one (or when nothing is pinned).
struct HostKeyCheck {
    pinned: Option<PublicKey>,
}

impl client::Handler for HostKeyCheck {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> std::result::Result<bool, Self::Error> {
        let PublicKeyOrCertificate::PublicKey { key, .. } = offered else {
            return Ok(false);
        };
        Ok(match &self.pinned {
            Some(pinned) => pinned.key_data() == key.key_data(),
            None => true,
        })
    }
}

/// An authenticated SSH connection to a guest.
pub struct Ssh {
    runtime: tokio::runtime::Runtime,
    handle: Handle<HostKeyCheck>,
    label: String,
}

impl std::fmt::Debug for Ssh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ssh")
            .field("target", &self.label)
            .finish_non_exhaustive()
    }
}

fn ssh_err(label: &str, op: &'static str, reason: impl std::fmt::Display) -> Error {
    Error::Ssh {
        target: label.to_owned(),
        op,
        reason: reason.to_string(),
    }
}

impl Ssh {
    /// Connects and authenticates, retrying until `deadline` while the guest is not answering
    /// yet (slirp accepts the TCP connection even before sshd listens). A host key that differs
    /// from the pinned one is refused at once, without retrying.
    pub fn connect(target: &SshTarget, deadline: Instant) -> Result<Ssh> {
        let label = target.label();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| ssh_err(&label, "starting the SSH runtime", e))?;
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = runtime.block_on(async {
                tokio::time::timeout(ATTEMPT_TIMEOUT, connect_once(target)).await
            });
            let why = match result {
                Ok(Ok(handle)) => {
                    tracing::debug!(target = %label, attempts, "SSH connected");
                    return Ok(Ssh {
                        runtime,
                        handle,
                        label,
                    });
                }
                Ok(Err(Attempt::Fatal(e))) => return Err(e),
                Ok(Err(Attempt::Retry(why))) => why,
                Err(_) => format!("no answer within {ATTEMPT_TIMEOUT:?}"),
            };
            tracing::debug!(target = %label, attempts, %why, "SSH not ready yet");
            if Instant::now() + RETRY_PAUSE >= deadline {
                return Err(ssh_err(
                    &label,
                    "connecting",
                    format!("gave up after {attempts} attempt(s); last: {why}"),
                ));
            }
            std::thread::sleep(RETRY_PAUSE);
        }
    }

    /// `user@addr`.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Runs `command` (through the login shell of the build user) with stdin closed, passing
    /// each chunk of output to `sink` as it arrives. `timeout` bounds the whole command.
    pub fn exec(
        &self,
        command: &str,
        timeout: Option<Duration>,
        sink: &mut dyn FnMut(Stream, &[u8]),
    ) -> Result<Exit> {
        let label = &self.label;
        let run = async {
            let mut channel = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| ssh_err(label, "opening a session", e))?;
            channel
                .exec(true, command)
                .await
                .map_err(|e| ssh_err(label, "starting a command", e))?;
            channel
                .eof()
                .await
                .map_err(|e| ssh_err(label, "closing the command's stdin", e))?;
            let mut exit = Exit::Unknown;
            while let Some(msg) = channel.wait().await {
                match msg {
                    ChannelMsg::Data { data } => sink(Stream::Stdout, &data),
                    ChannelMsg::ExtendedData { data, ext: 1 } => sink(Stream::Stderr, &data),
                    ChannelMsg::ExitStatus { exit_status } => exit = Exit::Code(exit_status),
                    ChannelMsg::ExitSignal { signal_name, .. } => {
                        exit = Exit::Signal(format!("{signal_name:?}"));
                    }
                    ChannelMsg::Failure => {
                        return Err(ssh_err(label, "starting a command", "the guest refused"));
                    }
                    _ => {}
                }
            }
            Ok(exit)
        };
        match timeout {
            None => self.runtime.block_on(run),
            Some(t) => self
                .runtime
                .block_on(async { tokio::time::timeout(t, run).await })
                .map_err(|_| {
                    ssh_err(
                        label,
                        "running a command",
                        format!("{command:?} did not finish within {t:?}"),
                    )
                })?,
        }
    }

    /// Runs `command` and collects its output.
    pub fn output(&self, command: &str, timeout: Option<Duration>) -> Result<Output> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let exit = self.exec(command, timeout, &mut |stream, data| match stream {
            Stream::Stdout => stdout.extend_from_slice(data),
            Stream::Stderr => stderr.extend_from_slice(data),
        })?;
        Ok(Output {
            exit,
            stdout,
            stderr,
        })
    }

    /// Uploads `data` to `remote` (created or truncated, with permission bits `mode`) over
    /// SFTP, as the build user.
    pub fn upload_bytes(&self, data: &[u8], remote: &str, mode: u32) -> Result<()> {
        let label = &self.label;
        self.runtime.block_on(async {
            let channel = self
                .handle
                .channel_open_session()
                .await
                .map_err(|e| ssh_err(label, "opening an SFTP session", e))?;
            channel
                .request_subsystem(true, "sftp")
                .await
                .map_err(|e| ssh_err(label, "starting the SFTP subsystem", e))?;
            let sftp = SftpSession::new(channel.into_stream())
                .await
                .map_err(|e| ssh_err(label, "starting the SFTP subsystem", e))?;
            let attrs = FileAttributes {
                permissions: Some(mode & 0o7777),
                ..FileAttributes::empty()
            };
            let mut file = sftp
                .open_with_flags_and_attributes(
                    remote,
                    OpenFlags::CREATE | OpenFlags::TRUNCATE | OpenFlags::WRITE,
                    attrs,
                )
                .await
                .map_err(|e| {
                    ssh_err(label, "creating the remote file", format!("{remote}: {e}"))
                })?;
            for chunk in data.chunks(UPLOAD_CHUNK) {
                file.write_all(chunk).await.map_err(|e| {
                    ssh_err(label, "writing the remote file", format!("{remote}: {e}"))
                })?;
            }
            file.shutdown()
                .await
                .map_err(|e| ssh_err(label, "closing the remote file", format!("{remote}: {e}")))?;
            sftp.close()
                .await
                .map_err(|e| ssh_err(label, "closing the SFTP session", e))?;
            Ok(())
        })
    }

    /// Uploads the local file `local` to `remote` with permission bits `mode`.
    pub fn upload(&self, local: &Path, remote: &str, mode: u32) -> Result<u64> {
        let data = std::fs::read(local).map_err(|e| Error::io("reading", local, e))?;
        self.upload_bytes(&data, remote, mode)?;
        Ok(u64::try_from(data.len()).unwrap_or(u64::MAX))
    }

    /// Says goodbye to the server (best effort).
    pub fn close(self) {
        let _ = self.runtime.block_on(async {
            self.handle
                .disconnect(Disconnect::ByApplication, "", "en")
                .await
        });
    }
}

enum Attempt {
    Retry(String),
    Fatal(Error),
}

async fn connect_once(target: &SshTarget) -> std::result::Result<Handle<HostKeyCheck>, Attempt> {
    let label = target.label();
    let config = Arc::new(client::Config {
        inactivity_timeout: None,
        keepalive_interval: Some(Duration::from_secs(15)),
        ..Default::default()
    });
    let check = HostKeyCheck {
        pinned: target.host_key.clone(),
    };
    let mut handle = match client::connect(config, target.addr, check).await {
        Ok(h) => h,
        Err(russh::Error::UnknownKey) => {
            return Err(Attempt::Fatal(ssh_err(
                &label,
                "checking the host key",
                "the server's host key is not the one the guest reported on its readiness port",
            )));
        }
        Err(e) => return Err(Attempt::Retry(e.to_string())),
    };
    let key = PrivateKeyWithHashAlg::new(Arc::clone(&target.key), None);
    match handle.authenticate_publickey(&target.user, key).await {
        Ok(r) if r.success() => Ok(handle),
        Ok(_) => Err(Attempt::Retry(format!(
            "the guest refused the build key for {}",
            target.user
        ))),
        Err(e) => Err(Attempt::Retry(e.to_string())),
    }
}
