//! A small, blocking, tolerant QMP client over QEMU's unix socket, speaking `qapi`'s types.
//!
//! Commands are `qapi::qmp` structs ([`Qmp::run`]: name and arguments from the type, the
//! `"return"` deserialized into its `Ok` type). Messages are JSON lines read into
//! [`serde_json::Value`]. Anything carrying `"event"` is kept as raw JSON (bounded queue),
//! whatever its name, so an event from a newer QEMU never breaks the connection;
//! [`typed_event`] gives the `qapi::qmp::Event` view of the ones this schema knows. Responses
//! are matched to commands by `"id"` and stray lines are logged and skipped. Where a newer QEMU
//! may add enum values, the view is our own (e.g. [`StatusInfo::status`] is a `String`, so a new
//! run state is not an error). Tested against QEMU 7.2; `qapi` 0.15 carries the QEMU 9.1 schema.
//!
//! After a read times out the connection is marked broken (a partial line may be buffered) and
//! every later call fails; reconnect if needed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Value, json};

use qapi::qmp;

use crate::error::{Error, Result};

/// The `qapi` view of a raw event, when the schema knows it; `None` for events newer than the
/// schema (or malformed ones), which stay available as raw JSON.
pub fn typed_event(raw: &Value) -> Option<qmp::Event> {
    serde_json::from_value(raw.clone()).ok()
}

/// Default time a command may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Events kept before the oldest are dropped.
pub const MAX_EVENTS: usize = 1024;

/// Longest accepted QMP line (`query-qmp-schema` is a few hundred KiB).
const MAX_LINE: u64 = 16 * 1024 * 1024;

/// The part of `query-status` we rely on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct StatusInfo {
    /// The run state (`prelaunch`, `running`, `paused`, `shutdown`, ... or a newer one).
    pub status: String,
    /// Whether vCPUs run.
    #[serde(default)]
    pub running: bool,
}

/// A negotiated QMP connection.
#[derive(Debug)]
pub struct Qmp {
    path: PathBuf,
    reader: BufReader<UnixStream>,
    writer: UnixStream,
    greeting: Value,
    events: VecDeque<Value>,
    next_id: u64,
    timeout: Duration,
    broken: bool,
}

impl Qmp {
    /// Connects to the socket at `path`, retrying for up to `within` while it does not exist
    /// yet or refuses (QEMU still starting), then reads the greeting and negotiates
    /// capabilities.
    pub fn connect(path: &Path, within: Duration) -> Result<Qmp> {
        let deadline = Instant::now() + within;
        let stream = loop {
            match UnixStream::connect(path) {
                Ok(s) => break s,
                Err(e)
                    if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::ConnectionRefused)
                        && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => return Err(Error::io("connecting to QMP socket", path, e)),
            }
        };
        Qmp::negotiate(path, stream)
    }

    /// Reads the greeting from an already connected `stream` and sends `qmp_capabilities`.
    pub fn negotiate(path: &Path, stream: UnixStream) -> Result<Qmp> {
        let writer = stream
            .try_clone()
            .map_err(|e| Error::io("cloning QMP socket", path, e))?;
        let mut q = Qmp {
            path: path.to_path_buf(),
            reader: BufReader::new(stream),
            writer,
            greeting: Value::Null,
            events: VecDeque::new(),
            next_id: 1,
            timeout: DEFAULT_TIMEOUT,
            broken: false,
        };
        let deadline = Instant::now() + q.timeout;
        let greeting = q.read_message(deadline)?;
        if greeting.get("QMP").is_none() {
            return Err(Error::qmp(path, format!("not a QMP greeting: {greeting}")));
        }
        tracing::debug!(path = %path.display(), version = %greeting["QMP"]["version"]["qemu"], "QMP greeting");
        q.greeting = greeting;
        q.execute("qmp_capabilities", None)?;
        Ok(q)
    }

    /// The greeting QEMU sent (`{"QMP": {"version": ..., "capabilities": [...]}}`).
    pub fn greeting(&self) -> &Value {
        &self.greeting
    }

    /// Sets how long each command (and [`Qmp::wait_event`] by default) may take.
    pub fn set_timeout(&mut self, timeout: Duration) {
        self.timeout = timeout;
    }

    /// Runs `command` with optional `arguments` and returns its `"return"` value.
    pub fn execute(&mut self, command: &str, arguments: Option<Value>) -> Result<Value> {
        let id = self.next_id;
        self.next_id += 1;
        let mut msg = json!({ "execute": command, "id": id });
        if let Some(args) = arguments {
            msg["arguments"] = args;
        }
        let span = tracing::debug_span!("qmp", command, id);
        let _g = span.enter();
        self.send(&msg)?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let m = self.read_message(deadline)?;
            if m.get("event").is_some() {
                self.push_event(m);
                continue;
            }
            let is_reply = m.get("return").is_some() || m.get("error").is_some();
            if !is_reply {
                tracing::debug!(message = %m, "ignoring unknown QMP message");
                continue;
            }
            if m.get("id").and_then(Value::as_u64) != Some(id) {
                tracing::warn!(message = %m, "ignoring QMP reply to another command");
                continue;
            }
            if let Some(err) = m.get("error") {
                let s = |k: &str| err.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                return Err(Error::QmpCommand {
                    path: self.path.clone(),
                    command: command.to_owned(),
                    class: s("class"),
                    desc: s("desc"),
                });
            }
            tracing::debug!("QMP command done");
            return Ok(m.get("return").cloned().unwrap_or(Value::Null));
        }
    }

    /// Runs the typed command `command` and deserializes its `"return"`.
    pub fn run<C: qapi::Command>(&mut self, command: C) -> Result<C::Ok> {
        let arguments = serde_json::to_value(&command)
            .map_err(|e| Error::qmp(&self.path, format!("encoding {}: {e}", C::NAME)))?;
        let arguments = match arguments {
            Value::Object(ref m) if m.is_empty() => None,
            Value::Null => None,
            other => Some(other),
        };
        let v = self.execute(C::NAME, arguments)?;
        serde_json::from_value(v.clone())
            .map_err(|e| Error::qmp(&self.path, format!("{} returned {v}: {e}", C::NAME)))
    }

    /// `query-status`, read into our tolerant [`StatusInfo`] (a run state newer than the
    /// `qapi` schema is not an error).
    pub fn query_status(&mut self) -> Result<StatusInfo> {
        let name = <qmp::query_status as qapi::Command>::NAME;
        let v = self.execute(name, None)?;
        serde_json::from_value(v.clone())
            .map_err(|e| Error::qmp(&self.path, format!("{name} returned {v}: {e}")))
    }

    /// `cont`: start or resume the vCPUs.
    pub fn cont(&mut self) -> Result<()> {
        self.run(qmp::cont {}).map(drop)
    }

    /// `system_powerdown`: ACPI power button (the guest decides).
    pub fn system_powerdown(&mut self) -> Result<()> {
        self.run(qmp::system_powerdown {}).map(drop)
    }

    /// `quit`: QEMU exits at once. QEMU closing the socket before replying counts as success.
    pub fn quit(&mut self) -> Result<()> {
        match self.run(qmp::quit {}) {
            Ok(_) => Ok(()),
            Err(Error::Qmp { reason, .. }) if reason.starts_with(CLOSED) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Takes the events received so far, oldest first, as raw JSON.
    pub fn take_events(&mut self) -> Vec<Value> {
        self.events.drain(..).collect()
    }

    /// Waits (at most `timeout`) for an event named `name`; earlier other events stay queued.
    pub fn wait_event(&mut self, name: &str, timeout: Duration) -> Result<Value> {
        if let Some(i) = self.events.iter().position(|e| e["event"] == name) {
            return Ok(self.events.remove(i).unwrap_or(Value::Null));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.read_message(deadline)?;
            if m["event"] == name {
                return Ok(m);
            }
            if m.get("event").is_some() {
                self.push_event(m);
            } else {
                tracing::debug!(message = %m, "ignoring QMP message while waiting for an event");
            }
        }
    }

    fn push_event(&mut self, ev: Value) {
        tracing::debug!(event = %ev["event"], "QMP event");
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(ev);
    }

    fn send(&mut self, msg: &Value) -> Result<()> {
        if self.broken {
            return Err(Error::qmp(
                &self.path,
                "connection broken by an earlier timeout",
            ));
        }
        let mut line = msg.to_string();
        line.push('\n');
        self.writer
            .write_all(line.as_bytes())
            .map_err(|e| match e.kind() {
                ErrorKind::BrokenPipe | ErrorKind::ConnectionReset => {
                    Error::qmp(&self.path, format!("{CLOSED} ({e})"))
                }
                _ => Error::io("writing to QMP socket", &self.path, e),
            })
    }

    /// Reads the next JSON object; non-JSON lines are logged and skipped.
    fn read_message(&mut self, deadline: Instant) -> Result<Value> {
        loop {
            if self.broken {
                return Err(Error::qmp(
                    &self.path,
                    "connection broken by an earlier timeout",
                ));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out());
            }
            self.reader
                .get_ref()
                .set_read_timeout(Some(left))
                .map_err(|e| Error::io("setting timeout on QMP socket", &self.path, e))?;
            let mut line = String::new();
            let n = match (&mut self.reader).take(MAX_LINE).read_line(&mut line) {
                Ok(n) => n,
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(self.timed_out());
                }
                Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                    return Err(Error::qmp(&self.path, format!("{CLOSED} ({e})")));
                }
                Err(e) => return Err(Error::io("reading QMP socket", &self.path, e)),
            };
            if n == 0 {
                return Err(Error::qmp(&self.path, CLOSED));
            }
            if !line.ends_with('\n') && u64::try_from(n).is_ok_and(|n| n >= MAX_LINE) {
                self.broken = true;
                return Err(Error::qmp(
                    &self.path,
                    format!("line longer than {MAX_LINE} bytes"),
                ));
            }
            let text = line.trim();
            if text.is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(text) {
                Ok(v) if v.is_object() => return Ok(v),
                Ok(v) => tracing::warn!(message = %v, "ignoring non-object QMP message"),
                Err(e) => tracing::warn!(line = text, error = %e, "ignoring non-JSON QMP line"),
            }
        }
    }

    fn timed_out(&mut self) -> Error {
        self.broken = true;
        Error::qmp(&self.path, format!("no answer within {:?}", self.timeout))
    }
}

/// How a closed connection is reported (the prefix [`Qmp::quit`] tolerates).
const CLOSED: &str = "connection closed by QEMU";

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;

    fn fake_server(
        script: impl FnOnce(&mut BufReader<UnixStream>, &mut UnixStream) + Send + 'static,
    ) -> (UnixStream, std::thread::JoinHandle<()>) {
        let (client, server) = UnixStream::pair().unwrap();
        let h = std::thread::spawn(move || {
            let mut w = server.try_clone().unwrap();
            let mut r = BufReader::new(server);
            w.write_all(b"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 11}}, \"capabilities\": [\"oob\"]}}\r\n").unwrap();
            script(&mut r, &mut w);
        });
        (client, h)
    }

    fn read_cmd(r: &mut BufReader<UnixStream>) -> Value {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        serde_json::from_str(&l).unwrap()
    }

    #[test]
    fn tolerates_unknown_events_stale_replies_and_garbage() {
        let (client, h) = fake_server(|r, w| {
            let c = read_cmd(r);
            assert_eq!(c["execute"], "qmp_capabilities");
            writeln!(w, "{}", json!({"return": {}, "id": c["id"]})).unwrap();
            let c = read_cmd(r);
            assert_eq!(c["execute"], "query-status");
            writeln!(w, "{}", json!({"event": "SOME_FUTURE_EVENT", "data": {"x": [1, 2]}, "timestamp": {"seconds": 1, "microseconds": 2}})).unwrap();
            writeln!(w, "this is not json").unwrap();
            writeln!(w, "{}", json!({"return": {}, "id": 999})).unwrap();
            writeln!(w, "{}", json!({"greeting-from-the-future": true})).unwrap();
            writeln!(w, "{}", json!({"return": {"status": "some-new-state", "running": false, "future-field": 1}, "id": c["id"]})).unwrap();
            let c = read_cmd(r);
            assert_eq!(c["execute"], "device_add");
            assert_eq!(c["arguments"]["driver"], "nope");
            writeln!(
                w,
                "{}",
                json!({"error": {"class": "GenericError", "desc": "bad driver"}, "id": c["id"]})
            )
            .unwrap();
            let c = read_cmd(r);
            assert_eq!(c["execute"], "quit");
            // close without replying
        });
        let mut q = Qmp::negotiate(Path::new("fake.sock"), client).unwrap();
        assert_eq!(q.greeting()["QMP"]["version"]["qemu"]["major"], 11);
        let s = q.query_status().unwrap();
        assert_eq!(s.status, "some-new-state");
        let ev = q.take_events();
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0]["event"], "SOME_FUTURE_EVENT");
        assert_eq!(ev[0]["data"]["x"][1], 2);
        let e = q
            .execute("device_add", Some(json!({"driver": "nope"})))
            .unwrap_err();
        assert!(matches!(e, Error::QmpCommand { .. }), "{e}");
        assert!(e.to_string().contains("bad driver"), "{e}");
        q.quit().unwrap();
        h.join().unwrap();
    }

    #[test]
    fn typed_commands_and_events() {
        let (client, h) = fake_server(|r, w| {
            let c = read_cmd(r);
            writeln!(w, "{}", json!({"return": {}, "id": c["id"]})).unwrap();
            let c = read_cmd(r);
            assert_eq!(c["execute"], "system_powerdown");
            assert!(c.get("arguments").is_none(), "{c}");
            let ts = json!({"seconds": 1_700_000_000u64, "microseconds": 5});
            writeln!(w, "{}", json!({"event": "POWERDOWN", "timestamp": ts})).unwrap();
            writeln!(w, "{}", json!({"return": {}, "id": c["id"]})).unwrap();
            let c = read_cmd(r);
            assert_eq!(c["execute"], "query-kvm");
            let kvm = json!({"enabled": false, "present": true});
            writeln!(w, "{}", json!({"return": kvm, "id": c["id"]})).unwrap();
            let ts = json!({"seconds": 1_700_000_001u64, "microseconds": 0});
            writeln!(
                w,
                "{}",
                json!({"event": "NOT_IN_ANY_SCHEMA", "timestamp": ts})
            )
            .unwrap();
            let c = read_cmd(r);
            assert_eq!(c["execute"], "quit");
        });
        let mut q = Qmp::negotiate(Path::new("fake.sock"), client).unwrap();
        q.system_powerdown().unwrap();
        let kvm = q.run(qmp::query_kvm {}).unwrap();
        assert!(!kvm.enabled && kvm.present);
        q.quit().unwrap();
        let ev = q.take_events();
        assert_eq!(ev.len(), 2, "{ev:?}");
        assert!(matches!(
            typed_event(&ev[0]),
            Some(qmp::Event::POWERDOWN { .. })
        ));
        assert_eq!(ev[1]["event"], "NOT_IN_ANY_SCHEMA");
        assert!(typed_event(&ev[1]).is_none());
        h.join().unwrap();
    }

    #[test]
    fn timeout_breaks_the_connection() {
        let (client, h) = fake_server(|r, w| {
            let c = read_cmd(r);
            writeln!(w, "{}", json!({"return": {}, "id": c["id"]})).unwrap();
            let _ = read_cmd(r);
            std::thread::sleep(Duration::from_millis(300));
        });
        let mut q = Qmp::negotiate(Path::new("fake.sock"), client).unwrap();
        q.set_timeout(Duration::from_millis(100));
        let e = q.query_status().unwrap_err();
        assert!(e.to_string().contains("no answer"), "{e}");
        let e = q.query_status().unwrap_err();
        assert!(e.to_string().contains("broken"), "{e}");
        h.join().unwrap();
    }

    #[test]
    fn rejects_non_qmp_peer() {
        let (client, mut server) = UnixStream::pair().unwrap();
        writeln!(server, "{}", json!({"hello": 1})).unwrap();
        let e = Qmp::negotiate(Path::new("fake.sock"), client).unwrap_err();
        assert!(e.to_string().contains("not a QMP greeting"), "{e}");
    }

    #[test]
    fn eof_is_an_error() {
        let (client, server) = UnixStream::pair().unwrap();
        drop(server);
        let e = Qmp::negotiate(Path::new("fake.sock"), client).unwrap_err();
        assert!(e.to_string().contains("closed"), "{e}");
    }
}
