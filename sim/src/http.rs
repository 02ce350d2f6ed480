//! A deliberately small HTTP/1.1 server on `std::net`: one thread per
//! connection, keep-alive and `Connection: close`, `Content-Length` and chunked
//! request bodies, optional TLS via rustls. Hand-written so faults can drop or
//! delay a connection at any point.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::Inner;
use crate::api::{self, Outcome, Response};

/// Poll interval of blocked reads, so connection threads notice shutdown.
const POLL: Duration = Duration::from_millis(100);
/// Idle keep-alive connections are closed after this long without a byte.
const IDLE: Duration = Duration::from_secs(60);
const MAX_HEAD: usize = 64 * 1024;
const MAX_BODY: usize = 1024 * 1024;

/// One parsed request.
pub(crate) struct Request {
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// First header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, TcpStream>>),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

impl Stream {
    /// Orderly end after the last response (TLS close_notify, then FIN).
    fn finish(mut self) {
        if let Stream::Tls(s) = &mut self {
            s.conn.send_close_notify();
        }
        let _ = self.flush();
        let tcp = match &self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        };
        let _ = tcp.shutdown(std::net::Shutdown::Write);
    }
}

/// Accepts connections until shutdown; each gets its own thread.
pub(crate) fn accept_loop(inner: Arc<Inner>, listener: TcpListener) {
    for conn in listener.incoming() {
        if inner.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let Ok(tcp) = conn else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let inner = inner.clone();
        let _ = std::thread::Builder::new().name("alidns-sim-conn".into()).spawn(move || serve(inner, tcp));
    }
}

fn serve(inner: Arc<Inner>, tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    if tcp.set_read_timeout(Some(POLL)).is_err() {
        return;
    }
    let mut stream = match &inner.tls {
        None => Stream::Plain(tcp),
        Some(cfg) => match rustls::ServerConnection::new(cfg.clone()) {
            Ok(conn) => Stream::Tls(Box::new(rustls::StreamOwned::new(conn, tcp))),
            Err(_) => return,
        },
    };
    let mut buf = Vec::new();
    loop {
        let (req, keep_alive) = match read_request(&inner, &mut stream, &mut buf) {
            Ok(Some(r)) => r,
            Ok(None) => return,
            Err(status) => {
                let resp = api::plain_response(&inner, status, "bad request");
                let _ = write_response(&mut stream, &resp, false);
                stream.finish();
                return;
            }
        };
        match api::handle(&inner, &req) {
            Outcome::Drop => return,
            Outcome::Respond(resp) => {
                if write_response(&mut stream, &resp, keep_alive).is_err() {
                    return;
                }
                if !keep_alive {
                    stream.finish();
                    return;
                }
            }
        }
    }
}

fn write_response(stream: &mut Stream, resp: &Response, keep_alive: bool) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nDate: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nx-acs-request-id: {}\r\nConnection: {}\r\n\r\n",
        resp.status,
        reason(resp.status),
        resp.date,
        resp.content_type,
        resp.body.len(),
        resp.request_id,
        if keep_alive { "keep-alive" } else { "close" }
    )
    .into_bytes();
    out.extend_from_slice(&resp.body);
    stream.write_all(&out)?;
    stream.flush()
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// Reads more bytes into `buf`. `Ok(false)` on EOF, idle timeout or shutdown.
fn fill(inner: &Inner, stream: &mut Stream, buf: &mut Vec<u8>) -> Result<bool, u16> {
    let started = Instant::now();
    let mut tmp = [0u8; 8192];
    loop {
        if inner.shutdown.load(Ordering::SeqCst) {
            return Ok(false);
        }
        match stream.read(&mut tmp) {
            Ok(0) => return Ok(false),
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                return Ok(true);
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                if started.elapsed() > IDLE {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Ok(false),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Reads one request (and leaves any pipelined bytes in `buf`). `Ok(None)` when
/// the connection ended cleanly; `Err(status)` for a malformed request.
fn read_request(inner: &Inner, stream: &mut Stream, buf: &mut Vec<u8>) -> Result<Option<(Request, bool)>, u16> {
    let head_end = loop {
        if let Some(i) = find(buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX_HEAD {
            return Err(431);
        }
        if !fill(inner, stream, buf)? {
            return Ok(None);
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    buf.drain(..head_end + 4);
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(400);
    };
    if method.is_empty() || !version.starts_with("HTTP/1.") {
        return Err(400);
    }
    let mut headers = Vec::new();
    for line in lines {
        let Some((k, v)) = line.split_once(':') else { return Err(400) };
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    // Absolute-form targets (proxies) carry scheme and host: keep only the path.
    let target = match target.find("://") {
        Some(i) => target[i + 3..].find('/').map(|j| &target[i + 3 + j..]).unwrap_or("/"),
        None => target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut req = Request {
        method: method.to_string(),
        path: path.to_string(),
        query: query.to_string(),
        headers,
        body: Vec::new(),
    };
    let connection = req.header("Connection").unwrap_or("").to_ascii_lowercase();
    let keep_alive =
        if version == "HTTP/1.0" { connection.contains("keep-alive") } else { !connection.contains("close") };
    if req.header("Expect").is_some_and(|e| e.eq_ignore_ascii_case("100-continue")) {
        let _ = stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").and_then(|_| stream.flush());
    }
    let chunked = req.header("Transfer-Encoding").is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked(inner, stream, buf)?.ok_or(400u16)?;
    } else if let Some(len) = req.header("Content-Length") {
        let len: usize = len.parse().map_err(|_| 400u16)?;
        if len > MAX_BODY {
            return Err(413);
        }
        while buf.len() < len {
            if !fill(inner, stream, buf)? {
                return Ok(None);
            }
        }
        req.body = buf.drain(..len).collect();
    }
    Ok(Some((req, keep_alive)))
}

fn read_chunked(inner: &Inner, stream: &mut Stream, buf: &mut Vec<u8>) -> Result<Option<Vec<u8>>, u16> {
    let mut body = Vec::new();
    loop {
        let line_end = loop {
            if let Some(i) = find(buf, b"\r\n") {
                break i;
            }
            if buf.len() > MAX_HEAD {
                return Err(400);
            }
            if !fill(inner, stream, buf)? {
                return Ok(None);
            }
        };
        let line = String::from_utf8_lossy(&buf[..line_end]).into_owned();
        buf.drain(..line_end + 2);
        let size_hex = line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| 400u16)?;
        if size == 0 {
            // Trailers (ignored) end with an empty line.
            loop {
                let end = loop {
                    if let Some(i) = find(buf, b"\r\n") {
                        break i;
                    }
                    if !fill(inner, stream, buf)? {
                        return Ok(None);
                    }
                };
                buf.drain(..end + 2);
                if end == 0 {
                    return Ok(Some(body));
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(413);
        }
        while buf.len() < size + 2 {
            if !fill(inner, stream, buf)? {
                return Ok(None);
            }
        }
        body.extend(buf.drain(..size));
        if &buf[..2] != b"\r\n" {
            return Err(400);
        }
        buf.drain(..2);
    }
}
