//! A small Compute Engine endpoint for the tests (there is no emulator of `images.insert`): a
//! real HTTP server on 127.0.0.1 that records every request exactly as it arrived and answers
//! `images.get` (404 until inserted), `images.insert` (an Operation, `RUNNING`) and
//! `globalOperations.get` (`DONE`). What it recorded is checked against the compute v1
//! discovery document ([`super::discovery`]).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

/// One request as received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, …
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The body as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How the server misbehaves.
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    /// Answer this many requests with 503 first.
    pub unavailable_first: usize,
    /// Answer `images.insert` with 403.
    pub forbid_insert: bool,
    /// Finish the insert's operation with an error (and make no image).
    pub operation_error: bool,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    images: BTreeMap<String, Value>,
    faults: Faults,
    answered_503: usize,
}

/// The running server (its thread ends with the process).
pub struct ComputeServer {
    port: u16,
    state: Arc<Mutex<State>>,
}

impl ComputeServer {
    /// Starts it.
    pub fn start(faults: Faults) -> ComputeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            faults,
            ..State::default()
        }));
        let shared = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let shared = shared.clone();
                std::thread::spawn(move || serve(stream, &shared, port));
            }
        });
        ComputeServer { port, state }
    }

    /// gcloud's override value: `http://127.0.0.1:PORT/compute/v1/`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}/compute/v1/", self.port)
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests whose method is `method`.
    pub fn count(&self, method: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method)
            .count()
    }
}

fn serve(stream: TcpStream, state: &Mutex<State>, port: u16) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_owned(), target.to_owned());
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let rec = Recorded {
            method,
            target,
            headers,
            body,
        };
        let (status, answer) = answer(&rec, state, port);
        state.lock().unwrap().requests.push(rec);
        let text = answer.to_string();
        let reason = match status {
            200 => "OK",
            403 => "Forbidden",
            404 => "Not Found",
            503 => "Service Unavailable",
            _ => "Other",
        };
        let mut w = stream.try_clone().unwrap();
        if write!(
            w,
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
            text.len()
        )
        .is_err()
        {
            return;
        }
        let _ = w.flush();
    }
}

fn error(code: u16, message: &str) -> (u16, Value) {
    (
        code,
        json!({"error": {"code": code, "message": message, "errors": [{"message": message}]}}),
    )
}

fn answer(rec: &Recorded, state: &Mutex<State>, port: u16) -> (u16, Value) {
    let mut s = state.lock().unwrap();
    if s.answered_503 < s.faults.unavailable_first {
        s.answered_503 += 1;
        return error(503, "Backend unavailable, try again");
    }
    let path = rec.target.split('?').next().unwrap_or_default();
    let Some(rest) = path.strip_prefix("/compute/v1/projects/") else {
        return error(404, "unknown path");
    };
    let Some((project, rest)) = rest.split_once("/global/") else {
        return error(404, "unknown path");
    };
    let link = |kind: &str, name: &str| {
        format!("http://127.0.0.1:{port}/compute/v1/projects/{project}/global/{kind}/{name}")
    };
    match (rec.method.as_str(), rest.split_once('/')) {
        ("GET", Some(("images", name))) => match s.images.get(name) {
            Some(img) => (200, img.clone()),
            None => error(
                404,
                &format!("The resource 'projects/{project}/global/images/{name}' was not found"),
            ),
        },
        ("POST", None) if rest == "images" => {
            if s.faults.forbid_insert {
                return error(
                    403,
                    "Required 'compute.images.create' permission for 'projects/p/global/images/x'",
                );
            }
            let mut img: Value = serde_json::from_slice(&rec.body).unwrap_or(json!({}));
            let name = img["name"].as_str().unwrap_or_default().to_owned();
            img["selfLink"] = json!(link("images", &name));
            img["status"] = json!("READY");
            img["kind"] = json!("compute#image");
            if !s.faults.operation_error {
                s.images.insert(name.clone(), img);
            }
            (
                200,
                json!({
                    "kind": "compute#operation", "name": "operation-1", "status": "RUNNING",
                    "operationType": "insert", "targetLink": link("images", &name),
                    "selfLink": link("operations", "operation-1"),
                }),
            )
        }
        ("GET", Some(("operations", name))) if s.faults.operation_error => (
            200,
            json!({
                "kind": "compute#operation", "name": name, "status": "DONE", "progress": 100,
                "error": {"errors": [{"code": "QUOTA_EXCEEDED",
                    "message": "Quota 'IMAGES' exceeded. Limit: 2000.0 globally."}]},
            }),
        ),
        ("GET", Some(("operations", name))) => (
            200,
            json!({
                "kind": "compute#operation", "name": name, "status": "DONE", "progress": 100,
                "selfLink": link("operations", name),
            }),
        ),
        _ => error(404, "unknown path"),
    }
}
