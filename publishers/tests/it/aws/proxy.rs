//! A tiny HTTP/1.1 proxy in front of moto that answers some requests itself (a 503, a
//! throttling error) or damages an answer, to test retries and the read back. One request
//! per connection (`Connection: close` is forced both ways).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

/// What the proxy does with the `n`th request (1-based) whose head is given.
pub enum Action {
    /// Pass it to moto and its answer back.
    Forward,
    /// Answer it with this status line and body.
    Answer(&'static str, &'static str),
    /// Pass it to moto and flip the last byte of the answer's body.
    Corrupt,
}

/// Starts the proxy to moto at 127.0.0.1:`upstream`; returns its URL.
pub fn start(upstream: u16, rule: impl Fn(usize, &str) -> Action + Send + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for (i, conn) in listener.incoming().enumerate() {
            let Ok(mut client) = conn else { continue };
            let request = read_request(&mut client);
            let head = String::from_utf8_lossy(&request[..request.len().min(2048)]).into_owned();
            let action = rule(i + 1, &head);
            if let Action::Answer(status, body) = action {
                let _ = write!(
                    client,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                continue;
            }
            let Ok(mut server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let _ = server.write_all(&request);
            let mut answer = Vec::new();
            let _ = server.read_to_end(&mut answer);
            if matches!(action, Action::Corrupt) {
                let body_at = answer.windows(4).position(|w| w == b"\r\n\r\n");
                if body_at.is_some_and(|at| at + 4 < answer.len())
                    && let Some(last) = answer.last_mut()
                {
                    *last ^= 0xff;
                }
            }
            let _ = client.write_all(&answer);
        }
    });
    url
}

/// One request: the head, then Content-Length bytes of body, with `Connection: close`.
fn read_request(s: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte) {
            Ok(1) => buf.push(byte[0]),
            _ => return buf,
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse::<usize>().ok())
                .flatten()
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    let _ = s.read_exact(&mut body);
    let mut lines: Vec<String> = head
        .trim_end()
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(str::to_owned)
        .collect();
    lines.push("Connection: close".into());
    let mut out = (lines.join("\r\n") + "\r\n\r\n").into_bytes();
    out.extend(body);
    out
}
