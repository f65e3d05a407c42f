//! A plain HTTP/1.1 file server on 127.0.0.1 for the fetch tests: serves a directory, honours
//! `Range: bytes=N-` with 206, records every request, can cut one response short (send the
//! full `Content-Length`, half the body, close) to test resuming, and passes `/v2/` requests
//! through to a registry, so one mirror URL serves files and images. It can also answer a
//! path with an error status a number of times, or serve it with one byte flipped once.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// The request path.
    pub path: String,
    /// Its `Range` header.
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    cut_once: HashSet<String>,
    fail: HashMap<String, (u16, u32)>,
    flip_once: HashSet<String>,
    registry: Option<String>,
    token: Option<String>,
}

/// The running server (threads end with the test process).
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    state: Arc<Mutex<State>>,
}

impl Server {
    /// Serves `root`, and `/v2/` from the registry at `registry` (`host:port`).
    pub fn start(root: &Path, registry: Option<&str>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(Mutex::new(State {
            registry: registry.map(str::to_owned),
            ..State::default()
        }));
        let root = root.to_path_buf();
        let st = Arc::clone(&state);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let root = root.clone();
                let st = Arc::clone(&st);
                std::thread::spawn(move || {
                    let _ = serve(conn, &root, &st);
                });
            }
        });
        Server { url, state }
    }

    /// The next response for `path` stops after half its body.
    pub fn cut_once(&self, path: &str) {
        self.state.lock().unwrap().cut_once.insert(path.to_owned());
    }

    /// The next `times` requests for `path` are answered with `status` and no body.
    pub fn fail(&self, path: &str, status: u16, times: u32) {
        self.state
            .lock()
            .unwrap()
            .fail
            .insert(path.to_owned(), (status, times));
    }

    /// The next response for `path` has its middle byte flipped.
    pub fn flip_once(&self, path: &str) {
        self.state.lock().unwrap().flip_once.insert(path.to_owned());
    }

    /// `/v2/` requests need `Authorization: Bearer <token>`: without it the answer is 401
    /// with a bearer challenge whose realm is this server's `/token`, which hands it out.
    pub fn require_token(&self, token: &str) {
        self.state.lock().unwrap().token = Some(token.to_owned());
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

fn serve(conn: TcpStream, root: &Path, state: &Mutex<State>) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut range = None;
    let mut auth = None;
    let mut forwarded = String::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "range" {
                range = Some(v.trim().to_owned());
            }
            if k == "authorization" {
                auth = Some(v.trim().to_owned());
            }
            if k != "host" && k != "connection" {
                forwarded.push_str(&h);
            }
        }
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let (cut, flip, fail, registry, token) = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            path: path.clone(),
            range: range.clone(),
        });
        let fail = match s.fail.get_mut(&path) {
            Some((status, times)) if *times > 0 => {
                *times -= 1;
                Some(*status)
            }
            _ => None,
        };
        (
            s.cut_once.remove(&path),
            s.flip_once.remove(&path),
            fail,
            s.registry.clone(),
            s.token.clone(),
        )
    };
    let mut conn = conn;
    if let Some(status) = fail {
        return write!(
            conn,
            "HTTP/1.1 {status} Busy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
    }
    if let Some(token) = token {
        if path.starts_with("/token?") {
            let body = format!("{{\"token\":\"{token}\"}}");
            return write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        if path.starts_with("/v2/") && auth != Some(format!("Bearer {token}")) {
            let me = conn.local_addr()?;
            let repo = path.trim_start_matches("/v2/");
            let repo = repo.split("/manifests/").next().unwrap_or(repo);
            let repo = repo.split("/blobs/").next().unwrap_or(repo);
            return write!(
                conn,
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://{me}/token\",service=\"test-registry\",scope=\"repository:{repo}:pull\"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    }
    if let Some(reg) = registry.filter(|_| path.starts_with("/v2/")) {
        let mut upstream = TcpStream::connect(&reg)?;
        write!(
            upstream,
            "GET {path} HTTP/1.1\r\nHost: {reg}\r\n{forwarded}Connection: close\r\n\r\n"
        )?;
        std::io::copy(&mut upstream, &mut conn)?;
        return conn.flush();
    }
    let file: PathBuf = root.join(path.trim_start_matches('/'));
    let Ok(mut data) = std::fs::read(&file)
        .map_err(drop)
        .and_then(|d| if path.contains("..") { Err(()) } else { Ok(d) })
    else {
        return conn.write_all(
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
    };
    if flip && !data.is_empty() {
        let mid = data.len() / 2;
        data[mid] ^= 0x01;
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let (status, body, extra) = match start {
        Some(n) if n >= data.len() => {
            let head = format!(
                "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                data.len()
            );
            return conn.write_all(head.as_bytes());
        }
        Some(n) => (
            "206 Partial Content",
            &data[n..],
            format!(
                "Content-Range: bytes {n}-{}/{}\r\n",
                data.len() - 1,
                data.len()
            ),
        ),
        None => ("200 OK", &data[..], String::new()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\n{extra}Accept-Ranges: bytes\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    if cut {
        conn.write_all(&body[..body.len() / 2])?;
        conn.flush()?;
        return conn.shutdown(std::net::Shutdown::Both);
    }
    conn.write_all(body)?;
    conn.flush()
}
