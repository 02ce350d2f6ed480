//! A small, hardened HTTP/1.1 server on `std::net` for `serve`.
//!
//! Why not a crate: tiny_http has no read timeouts, no header-size limit and an
//! unbounded thread pool (router-packaging.md §5), and the async stacks are far
//! too big for a router binary. What `serve` needs is narrow: small POST bodies
//! with `Content-Length`, keep-alive for Go's HTTP client, optional TLS, and
//! hard bounds on everything a client controls.
//!
//! Design:
//! - One **reactor** thread owns the listener and every connection that is not
//!   being answered. It waits with `poll(2)` and reads without blocking, so an
//!   idle keep-alive connection, a client that connects and sends nothing, or a
//!   slowloris trickling bytes costs a socket and a small buffer, never a thread.
//!   TLS handshakes also run here, non-blocking.
//! - Only a **complete** request (head and body) is handed to the fixed pool of
//!   **worker** threads through a bounded queue. A worker runs the handler,
//!   writes the answer in blocking mode under a total write deadline, and gives
//!   a keep-alive connection back to the reactor.
//! - Bounds: open connections (`max_conns`, more are answered 503 and closed),
//!   request head size (431), header count (431), body size (413), a deadline
//!   from the first byte of a request to its last (408), an idle timeout between
//!   requests, and a write deadline. `Transfer-Encoding` is refused (501) and a
//!   body needs `Content-Length` (411): GoEdge's Go client always sends it.
//! - After an error answer the connection is shut for writing and drained
//!   briefly ("lingering close"), so the client reads the status instead of a
//!   reset.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bounds that keep a misbehaving client from exhausting the process.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Worker threads running the handler (and so, concurrent upstream calls).
    pub workers: usize,
    /// Open connections at most; more are answered 503 and closed at once.
    pub max_conns: usize,
    /// Request line plus headers, bytes.
    pub max_head: usize,
    /// Header lines at most.
    pub max_headers: usize,
    /// Request body, bytes.
    pub max_body: usize,
    /// From the first byte of a request (or the connect) to its last byte.
    pub request_timeout: Duration,
    /// How long a keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Total time to write one response.
    pub write_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            workers: 4,
            max_conns: 1024,
            max_head: 8 * 1024,
            max_headers: 64,
            max_body: 64 * 1024,
            request_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(10),
        }
    }
}

/// A complete request, as the handler sees it.
#[derive(Debug, Clone)]
pub struct Request {
    /// `POST`, `GET`, ... as sent.
    pub method: String,
    /// The request target (path and query) as sent.
    pub target: String,
    /// Header names and values in arrival order (values trimmed).
    pub headers: Vec<(String, String)>,
    /// The body (at most `max_body` bytes).
    pub body: Vec<u8>,
    /// The client's address, for logs.
    pub peer: SocketAddr,
}

impl Request {
    /// The first header of that name (names compare without case, as HTTP says).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// What the handler answers.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` value.
    pub content_type: &'static str,
    /// Extra headers (e.g. `Allow`).
    pub headers: Vec<(&'static str, String)>,
    /// The body, sent with `Content-Length`.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with a body of the given type.
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Response {
        Response { status, content_type, headers: Vec::new(), body: body.into() }
    }

    /// A short plain-text answer (the error reasons humans see with curl).
    pub fn text(status: u16, msg: &str) -> Response {
        let mut body = msg.as_bytes().to_vec();
        body.push(b'\n');
        Response::new(status, "text/plain; charset=utf-8", body)
    }

    /// Adds a header.
    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.push((name, value.into()));
        self
    }
}

/// The application: called on a worker thread for every complete request.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// TLS server settings (rustls), when the server speaks HTTPS.
#[cfg(feature = "tls")]
pub type TlsConfig = Arc<rustls::ServerConfig>;
/// Without the `tls` feature there is no TLS; this type has no values.
#[cfg(not(feature = "tls"))]
pub type TlsConfig = std::convert::Infallible;

#[cfg(feature = "tls")]
type TlsConn = rustls::ServerConnection;
#[cfg(not(feature = "tls"))]
enum TlsConn {}

/// The reason phrase of a status we send.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        413 => "Content Too Large",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------
// Request head parsing (pure, unit-tested).

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Head {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    /// Bytes of the head including the blank line.
    len: usize,
    body_len: usize,
    keep_alive: bool,
    expect_continue: bool,
}

/// Why a head was refused: status and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reject(u16, &'static str);

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Parses the head if it is complete: `Ok(None)` means "wait for more bytes".
fn parse_head(buf: &[u8], limits: &Limits) -> Result<Option<Head>, Reject> {
    // Tolerate blank lines before the request line (RFC 9112 §2.2).
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    let rest = &buf[skip..];
    let end = match find_head_end(rest) {
        Some(e) if skip + e <= limits.max_head => e,
        Some(_) => return Err(Reject(431, "request head too large")),
        None if buf.len() > limits.max_head => return Err(Reject(431, "request head too large")),
        None => return Ok(None),
    };
    let text = std::str::from_utf8(&rest[..end - 4]).map_err(|_| Reject(400, "request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (method, target, version) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(m), Some(t), Some(v), None) => (m, t, v),
        _ => return Err(Reject(400, "malformed request line")),
    };
    if !is_token(method) || target.is_empty() || target.bytes().any(|b| b.is_ascii_control()) {
        return Err(Reject(400, "malformed request line"));
    }
    let http10 = match version {
        "HTTP/1.1" => false,
        "HTTP/1.0" => true,
        v if v.starts_with("HTTP/") => return Err(Reject(505, "only HTTP/1.1 is supported")),
        _ => return Err(Reject(400, "malformed request line")),
    };
    let mut headers = Vec::new();
    for l in lines {
        if headers.len() >= limits.max_headers {
            return Err(Reject(431, "too many header fields"));
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(Reject(400, "malformed header field"));
        };
        if !is_token(name) || value.bytes().any(|b| b.is_ascii_control() && b != b'\t') {
            return Err(Reject(400, "malformed header field"));
        }
        headers.push((name.to_string(), value.trim_matches([' ', '\t']).to_string()));
    }
    fn get<'a>(headers: &'a [(String, String)], n: &'a str) -> impl Iterator<Item = &'a (String, String)> + 'a {
        headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(n))
    }
    if get(&headers, "transfer-encoding").next().is_some() {
        return Err(Reject(501, "Transfer-Encoding is not supported; send Content-Length"));
    }
    let mut body_len: Option<usize> = None;
    for (_, v) in get(&headers, "content-length") {
        if v.is_empty() || v.len() > 12 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Reject(400, "malformed Content-Length"));
        }
        let n: usize = v.parse().map_err(|_| Reject(400, "malformed Content-Length"))?;
        if body_len.is_some_and(|b| b != n) {
            return Err(Reject(400, "conflicting Content-Length"));
        }
        body_len = Some(n);
    }
    let body_len = match body_len {
        Some(n) if n > limits.max_body => return Err(Reject(413, "request body too large")),
        Some(n) => n,
        None if matches!(method, "POST" | "PUT" | "PATCH") => return Err(Reject(411, "Content-Length required")),
        None => 0,
    };
    let conn_tokens =
        |t: &str| get(&headers, "connection").any(|(_, v)| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(t)));
    let keep_alive = if http10 { conn_tokens("keep-alive") } else { !conn_tokens("close") };
    let expect_continue = !http10 && get(&headers, "expect").any(|(_, v)| v.eq_ignore_ascii_case("100-continue"));
    Ok(Some(Head {
        method: method.to_string(),
        target: target.to_string(),
        headers,
        len: skip + end,
        body_len,
        keep_alive,
        expect_continue,
    }))
}

/// The bytes of a response head and body.
fn encode(resp: &Response, keep_alive: bool, head_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(160 + resp.body.len());
    let date = crate::clock::http_date(crate::clock::system_now());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nDate: {date}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
        resp.status,
        reason(resp.status),
        resp.content_type,
        resp.body.len()
    );
    for (k, v) in &resp.headers {
        // Header values come from our own code, but never let one split the head.
        let v: String = v.chars().filter(|c| !c.is_control()).collect();
        let _ = write!(out, "{k}: {v}\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
    out
}

// ---------------------------------------------------------------------------
// Connections.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request to start (fresh or kept alive).
    Idle,
    /// Part of a request has arrived.
    Reading,
    /// An error answer was sent; reading and discarding until the peer closes.
    Draining,
}

struct Conn {
    sock: TcpStream,
    tls: Option<Box<TlsConn>>,
    peer: SocketAddr,
    buf: Vec<u8>,
    head: Option<Head>,
    phase: Phase,
    deadline: Instant,
    /// TLS records are waiting for the socket to become writable.
    want_write: bool,
    sent_continue: bool,
    drained: usize,
}

enum ReadOutcome {
    /// Bytes (maybe none) arrived; the connection is still open.
    Open,
    /// The peer closed (or broke) the connection.
    Closed,
}

const READ_CHUNK: usize = 16 * 1024;
const DRAIN_TIME: Duration = Duration::from_secs(2);
const DRAIN_BYTES: usize = 1024 * 1024;

impl Conn {
    fn new(sock: TcpStream, peer: SocketAddr, tls: Option<Box<TlsConn>>, limits: &Limits) -> Conn {
        Conn {
            sock,
            tls,
            peer,
            buf: Vec::new(),
            head: None,
            phase: Phase::Idle,
            deadline: Instant::now() + limits.request_timeout,
            want_write: false,
            sent_continue: false,
            drained: 0,
        }
    }

    /// Reads what is available without blocking, appending at most `room` bytes
    /// of plaintext to `buf` (or discarding them while draining).
    fn read_available(&mut self, room: usize) -> ReadOutcome {
        let mut tmp = [0u8; READ_CHUNK];
        let discard = self.phase == Phase::Draining;
        let want = if discard { READ_CHUNK } else { room.clamp(1, READ_CHUNK) };
        match self.tls.as_deref_mut() {
            None => match self.sock.read(&mut tmp[..want]) {
                Ok(0) => ReadOutcome::Closed,
                Ok(n) => {
                    if discard {
                        self.drained += n;
                    } else {
                        self.buf.extend_from_slice(&tmp[..n]);
                    }
                    ReadOutcome::Open
                }
                Err(e) if transient(&e) => ReadOutcome::Open,
                Err(_) => ReadOutcome::Closed,
            },
            Some(t) => {
                tls_read(t, &mut self.sock, &mut self.buf, &mut self.drained, discard, room, &mut self.want_write)
            }
        }
    }

    /// Best-effort, non-blocking write of a small message (error answers, 100 Continue).
    fn write_nonblocking(&mut self, bytes: &[u8]) {
        match self.tls.as_deref_mut() {
            None => {
                let _ = self.sock.write(bytes);
            }
            Some(t) => tls_queue(t, &mut self.sock, bytes, &mut self.want_write),
        }
    }

    /// Sends an error answer, shuts the write side and starts draining.
    fn reject(&mut self, status: u16, msg: &str) {
        let bytes = encode(&Response::text(status, msg), false, false);
        self.write_nonblocking(&bytes);
        if let Some(t) = self.tls.as_deref_mut() {
            tls_close(t, &mut self.sock);
        }
        let _ = self.sock.shutdown(Shutdown::Write);
        self.phase = Phase::Draining;
        self.buf = Vec::new();
        self.head = None;
        self.deadline = Instant::now() + DRAIN_TIME;
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted | io::ErrorKind::TimedOut)
}

#[cfg(feature = "tls")]
fn tls_read(
    t: &mut TlsConn,
    sock: &mut TcpStream,
    buf: &mut Vec<u8>,
    drained: &mut usize,
    discard: bool,
    room: usize,
    want_write: &mut bool,
) -> ReadOutcome {
    let mut closed = false;
    match t.read_tls(sock) {
        Ok(0) => closed = true,
        Ok(_) => {}
        Err(e) if transient(&e) => {}
        Err(_) => return ReadOutcome::Closed,
    }
    if t.process_new_packets().is_err() {
        // Send the alert rustls queued, then give up on the connection.
        let _ = t.write_tls(sock);
        return ReadOutcome::Closed;
    }
    let mut tmp = [0u8; READ_CHUNK];
    let mut left = room;
    loop {
        let want = if discard { READ_CHUNK } else { left.min(READ_CHUNK) };
        if want == 0 {
            break;
        }
        match t.reader().read(&mut tmp[..want]) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) if discard => *drained += n,
            Ok(n) => {
                buf.extend_from_slice(&tmp[..n]);
                left -= n;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return ReadOutcome::Closed,
        }
    }
    tls_flush(t, sock, want_write);
    if closed { ReadOutcome::Closed } else { ReadOutcome::Open }
}

#[cfg(feature = "tls")]
fn tls_flush(t: &mut TlsConn, sock: &mut TcpStream, want_write: &mut bool) {
    *want_write = false;
    while t.wants_write() {
        match t.write_tls(sock) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                *want_write = true;
                return;
            }
            Err(_) => return,
        }
    }
}

#[cfg(feature = "tls")]
fn tls_queue(t: &mut TlsConn, sock: &mut TcpStream, bytes: &[u8], want_write: &mut bool) {
    let _ = t.writer().write_all(bytes);
    tls_flush(t, sock, want_write);
}

#[cfg(feature = "tls")]
fn tls_close(t: &mut TlsConn, sock: &mut TcpStream) {
    t.send_close_notify();
    let mut w = false;
    tls_flush(t, sock, &mut w);
}

/// Blocking write of a whole response through TLS, bounded by `deadline`.
#[cfg(feature = "tls")]
fn tls_write_all(t: &mut TlsConn, sock: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    loop {
        if !data.is_empty() {
            let n = t.writer().write(data)?;
            data = &data[n..];
        }
        while t.wants_write() {
            set_timeout_until(sock, deadline)?;
            match t.write_tls(sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        if data.is_empty() {
            return Ok(());
        }
    }
}

#[cfg(not(feature = "tls"))]
fn tls_read(
    t: &mut TlsConn,
    _: &mut TcpStream,
    _: &mut Vec<u8>,
    _: &mut usize,
    _: bool,
    _: usize,
    _: &mut bool,
) -> ReadOutcome {
    match *t {}
}
#[cfg(not(feature = "tls"))]
fn tls_flush(t: &mut TlsConn, _: &mut TcpStream, _: &mut bool) {
    match *t {}
}
#[cfg(not(feature = "tls"))]
fn tls_queue(t: &mut TlsConn, _: &mut TcpStream, _: &[u8], _: &mut bool) {
    match *t {}
}
#[cfg(not(feature = "tls"))]
fn tls_close(t: &mut TlsConn, _: &mut TcpStream) {
    match *t {}
}
#[cfg(not(feature = "tls"))]
fn tls_write_all(t: &mut TlsConn, _: &mut TcpStream, _: &[u8], _: Instant) -> io::Result<()> {
    match *t {}
}

fn set_timeout_until(sock: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(io::Error::new(io::ErrorKind::TimedOut, "write deadline passed"));
    }
    sock.set_write_timeout(Some(left))
}

fn write_all_until(sock: &mut TcpStream, mut data: &[u8], deadline: Instant) -> io::Result<()> {
    while !data.is_empty() {
        set_timeout_until(sock, deadline)?;
        match sock.write(data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The server.

struct Job {
    conn: Conn,
    req: Request,
    keep_alive: bool,
}

struct Shared {
    limits: Limits,
    handler: Handler,
    stop: AtomicBool,
    /// Keep-alive connections that workers hand back to the reactor.
    returned: Mutex<Vec<Conn>>,
    /// Written (one byte) to wake the reactor's poll.
    wake_tx: UnixStream,
}

impl Shared {
    fn wake(&self) {
        let _ = (&self.wake_tx).write(&[1]);
    }
}

/// A running server: its address, and a way to stop it (tests) or wait for it.
pub struct Running {
    /// The address actually bound (useful with port 0).
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Running {
    /// Blocks until the server stops (for `serve`, never).
    pub fn wait(mut self) {
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }

    /// Stops accepting, closes idle connections and joins the threads.
    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake();
        self.wait();
    }
}

// rlim_t is u64 on some targets and u32 on others: the casts are for the latter.
#[allow(clippy::unnecessary_cast)]
/// Raises the soft open-files limit towards the hard one (routers often start
/// services with 1024) and returns how many connections fit under it.
fn fit_conns(want: usize) -> usize {
    // SAFETY: getrlimit/setrlimit only read/write the struct we pass.
    unsafe {
        let mut rl = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return want;
        }
        let target = (want as u64 + 64).min(rl.rlim_max as u64);
        if (rl.rlim_cur as u64) < target {
            let new = libc::rlimit { rlim_cur: target as libc::rlim_t, rlim_max: rl.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &new) == 0 {
                rl.rlim_cur = new.rlim_cur;
            }
        }
        want.min((rl.rlim_cur as u64).saturating_sub(64).max(8) as usize)
    }
}

/// Starts the reactor and the workers on an already bound listener.
pub fn start(
    listener: TcpListener,
    tls: Option<TlsConfig>,
    mut limits: Limits,
    handler: Handler,
) -> io::Result<Running> {
    let addr = listener.local_addr()?;
    listener.set_nonblocking(true)?;
    limits.workers = limits.workers.max(1);
    limits.max_conns = fit_conns(limits.max_conns.max(1));
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        limits: limits.clone(),
        handler,
        stop: AtomicBool::new(false),
        returned: Mutex::new(Vec::new()),
        wake_tx,
    });
    // Each connection has at most one job in flight, so this never fills up.
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job>(limits.max_conns);
    let rx = Arc::new(Mutex::new(rx));
    let mut threads = Vec::new();
    for i in 0..limits.workers {
        let (s, rx) = (shared.clone(), rx.clone());
        threads.push(std::thread::Builder::new().name(format!("httpd-worker-{i}")).spawn(move || worker(&s, &rx))?);
    }
    let s = shared.clone();
    threads.push(
        std::thread::Builder::new()
            .name("httpd-reactor".into())
            .spawn(move || reactor(&s, listener, wake_rx, tls, tx))?,
    );
    Ok(Running { addr, shared, threads })
}

fn worker(s: &Shared, rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = match rx.lock().unwrap_or_else(|p| p.into_inner()).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        let Job { mut conn, req, keep_alive } = job;
        let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (s.handler)(&req)))
            .unwrap_or_else(|_| Response::text(500, "internal error"));
        let keep = keep_alive && !s.stop.load(Ordering::Relaxed);
        let bytes = encode(&resp, keep, req.method == "HEAD");
        let deadline = Instant::now() + s.limits.write_timeout;
        if conn.sock.set_nonblocking(false).is_err() {
            continue;
        }
        let written = match conn.tls.as_deref_mut() {
            None => write_all_until(&mut conn.sock, &bytes, deadline),
            Some(t) => tls_write_all(t, &mut conn.sock, &bytes, deadline),
        };
        if written.is_err() {
            crate::log::debug(format!("httpd: {}: could not write the response", conn.peer));
            continue;
        }
        if !keep || conn.sock.set_nonblocking(true).is_err() {
            close_quietly(conn);
            continue;
        }
        conn.head = None;
        conn.sent_continue = false;
        if conn.buf.is_empty() {
            conn.phase = Phase::Idle;
            conn.deadline = Instant::now() + s.limits.idle_timeout;
            conn.buf = Vec::new(); // give back the capacity while idle
        } else {
            // The next request was pipelined behind this one: it is already under way.
            conn.phase = Phase::Reading;
            conn.deadline = Instant::now() + s.limits.request_timeout;
        }
        s.returned.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        s.wake();
    }
}

fn close_quietly(mut conn: Conn) {
    if let Some(t) = conn.tls.as_deref_mut() {
        tls_close(t, &mut conn.sock);
    }
    let _ = conn.sock.shutdown(Shutdown::Write);
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\ntoo busy, retry\n";

fn reactor(s: &Shared, listener: TcpListener, mut wake_rx: UnixStream, tls: Option<TlsConfig>, jobs: SyncSender<Job>) {
    let limits = &s.limits;
    let mut conns: Vec<Conn> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut last_busy_log: Option<Instant> = None;
    let room = limits.max_head + limits.max_body + 4;
    loop {
        if s.stop.load(Ordering::Relaxed) {
            return;
        }
        let mut ready: Vec<Conn> = Vec::new();
        for c in s.returned.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            if c.buf.is_empty() { conns.push(c) } else { ready.push(c) }
        }
        // Pipelined bytes left over from the previous request: parse them now.
        for c in ready {
            if let Some(c) = advance(c, limits, &jobs) {
                conns.push(c);
            }
        }

        fds.clear();
        fds.push(libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        fds.push(libc::pollfd { fd: wake_rx.as_raw_fd(), events: libc::POLLIN, revents: 0 });
        let now = Instant::now();
        let mut next = now + Duration::from_secs(1);
        for c in &conns {
            let mut ev = libc::POLLIN;
            if c.want_write {
                ev |= libc::POLLOUT;
            }
            fds.push(libc::pollfd { fd: c.sock.as_raw_fd(), events: ev, revents: 0 });
            next = next.min(c.deadline);
        }
        let timeout_ms = next.saturating_duration_since(now).as_millis().min(1000) as libc::c_int + 1;
        // SAFETY: `fds` is a valid, exclusively borrowed array of pollfd of the given length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout_ms) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                crate::log::warn(format!("httpd: poll failed: {e}"));
                std::thread::sleep(Duration::from_millis(50));
            }
            continue;
        }
        if fds[1].revents != 0 {
            let mut sink = [0u8; 256];
            while matches!(wake_rx.read(&mut sink), Ok(n) if n > 0) {}
        }

        // Existing connections first (their indices match fds[2..]).
        let now = Instant::now();
        let revents: Vec<libc::c_short> = fds[2..].iter().map(|p| p.revents).collect();
        let mut keep: Vec<Conn> = Vec::with_capacity(conns.len());
        for (c, rev) in conns.drain(..).zip(revents) {
            if let Some(c) = service(c, rev, now, room, limits, &jobs) {
                keep.push(c);
            }
        }
        conns = keep;

        if fds[0].revents != 0 {
            for _ in 0..256 {
                match listener.accept() {
                    Ok((sock, peer)) => {
                        if conns.len() >= limits.max_conns {
                            let _ = sock.set_nonblocking(true);
                            if tls.is_none() {
                                let _ = (&sock).write(BUSY);
                            }
                            let _ = sock.shutdown(Shutdown::Both);
                            if last_busy_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                                crate::log::warn(format!(
                                    "httpd: {} connections open (the limit); refusing {peer} and others for now",
                                    conns.len()
                                ));
                                last_busy_log = Some(Instant::now());
                            }
                            continue;
                        }
                        if sock.set_nonblocking(true).is_err() {
                            continue;
                        }
                        let _ = sock.set_nodelay(true);
                        let t = match &tls {
                            None => None,
                            Some(cfg) => match new_tls(cfg) {
                                Some(t) => Some(t),
                                None => continue,
                            },
                        };
                        conns.push(Conn::new(sock, peer, t, limits));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        crate::log::warn(format!("httpd: accept failed: {e}"));
                        std::thread::sleep(Duration::from_millis(100));
                        break;
                    }
                }
            }
        }
    }
}

/// Handles poll events and deadlines of one connection; returns it if it stays open.
fn service(
    mut c: Conn,
    rev: libc::c_short,
    now: Instant,
    room: usize,
    limits: &Limits,
    jobs: &SyncSender<Job>,
) -> Option<Conn> {
    if rev & libc::POLLOUT != 0
        && let Some(t) = c.tls.as_deref_mut()
    {
        tls_flush(t, &mut c.sock, &mut c.want_write);
    }
    if rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
        let was_empty = c.buf.is_empty();
        if let ReadOutcome::Closed = c.read_available(room.saturating_sub(c.buf.len())) {
            return None; // the peer went away
        }
        if c.phase == Phase::Draining {
            if c.drained > DRAIN_BYTES {
                return None;
            }
        } else {
            if was_empty && !c.buf.is_empty() {
                c.phase = Phase::Reading;
                c.deadline = now + limits.request_timeout;
            }
            c = advance(c, limits, jobs)?;
        }
    }
    // Checked even when bytes arrived, so trickling bytes cannot extend a deadline.
    if now >= c.deadline {
        if c.phase == Phase::Reading {
            crate::log::debug(format!("httpd: {}: request not complete in time", c.peer));
            c.reject(408, "request not complete in time");
            return Some(c);
        }
        return None; // idle or draining: just close
    }
    Some(c)
}

#[cfg(feature = "tls")]
fn new_tls(cfg: &TlsConfig) -> Option<Box<TlsConn>> {
    rustls::ServerConnection::new(cfg.clone()).ok().map(Box::new)
}
#[cfg(not(feature = "tls"))]
fn new_tls(cfg: &TlsConfig) -> Option<Box<TlsConn>> {
    match *cfg {}
}

/// Parses what a connection has buffered and dispatches a complete request.
/// Returns the connection if the reactor keeps it (still reading, or draining).
fn advance(mut c: Conn, limits: &Limits, jobs: &SyncSender<Job>) -> Option<Conn> {
    if c.head.is_none() {
        match parse_head(&c.buf, limits) {
            Ok(None) => return Some(c),
            Ok(Some(h)) => c.head = Some(h),
            Err(Reject(status, why)) => {
                crate::log::warn(format!("httpd: {}: {status} {why}", c.peer));
                c.reject(status, why);
                return Some(c);
            }
        }
    }
    let (total, expect) = match &c.head {
        Some(h) => (h.len + h.body_len, h.expect_continue),
        None => return Some(c),
    };
    if c.buf.len() < total {
        if expect && !c.sent_continue {
            c.sent_continue = true;
            c.write_nonblocking(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        return Some(c);
    }
    let head = c.head.take()?;
    let rest = c.buf.split_off(total);
    let body = c.buf[head.len..total].to_vec();
    c.buf = rest;
    let req = Request { method: head.method, target: head.target, headers: head.headers, body, peer: c.peer };
    match jobs.try_send(Job { conn: c, req, keep_alive: head.keep_alive }) {
        Ok(()) => None,
        Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
            let mut c = job.conn;
            c.reject(503, "too busy, retry");
            Some(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Limits {
        Limits { max_head: 256, max_body: 100, max_headers: 8, ..Limits::default() }
    }

    #[test]
    fn parses_a_goedge_request() {
        let raw = b"POST /dns HTTP/1.1\r\nHost: x\r\nContent-Length: 23\r\nTimestamp: 1\r\nToken:  ab \r\n\r\n{\"action\":\"GetDomains\"}";
        let h = parse_head(raw, &lim()).unwrap().unwrap();
        assert_eq!((h.method.as_str(), h.target.as_str(), h.body_len, h.keep_alive), ("POST", "/dns", 23, true));
        assert_eq!(h.len + h.body_len, raw.len());
        assert!(h.headers.contains(&("Token".to_string(), "ab".to_string())));
    }

    #[test]
    fn waits_for_the_whole_head() {
        assert_eq!(parse_head(b"POST / HTTP/1.1\r\nContent-Len", &lim()), Ok(None));
        assert_eq!(parse_head(b"", &lim()), Ok(None));
        // Leading blank lines are skipped.
        let h = parse_head(b"\r\nGET / HTTP/1.1\r\n\r\n", &lim()).unwrap().unwrap();
        assert_eq!(h.len, 2 + 18);
    }

    #[test]
    fn refuses_what_it_must() {
        let r = |raw: &[u8]| parse_head(raw, &lim()).map_err(|Reject(s, _)| s);
        assert_eq!(r(b"POST / HTTP/1.1\r\n\r\n"), Err(411));
        assert_eq!(r(b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n"), Err(413));
        assert_eq!(r(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), Err(501));
        assert_eq!(r(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), Err(400));
        assert_eq!(r(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"), Err(400));
        assert_eq!(r(b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n"), Err(400));
        assert_eq!(r(b"PRI * HTTP/2.0\r\n\r\n"), Err(505));
        assert_eq!(r(b"GET /\r\n\r\n"), Err(400));
        assert_eq!(r(b"GET / HTTP/1.1 x\r\n\r\n"), Err(400));
        assert_eq!(r(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"), Err(400));
        assert_eq!(r(b"GET / HTTP/1.1\r\nNoColon\r\n\r\n"), Err(400));
        assert_eq!(r(b"GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n"), Err(400));
        assert_eq!(r(b"GET /\xff HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(r(&[b'A'; 300]), Err(431));
        let many: Vec<u8> = [&b"GET / HTTP/1.1\r\n"[..], &b"A: b\r\n".repeat(9), b"\r\n"].concat();
        assert_eq!(r(&many), Err(431));
    }

    #[test]
    fn connection_semantics() {
        let ka = |raw: &[u8]| parse_head(raw, &lim()).unwrap().unwrap().keep_alive;
        assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        let h = parse_head(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", &lim());
        assert!(h.unwrap().unwrap().expect_continue);
    }

    #[test]
    fn never_panics_on_noise() {
        // A cheap deterministic fuzz: random bytes and mutations of a valid head.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let base = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc".to_vec();
        for i in 0..20_000 {
            let mut v = if i % 2 == 0 { base.clone() } else { (0..(next() % 300)).map(|_| next() as u8).collect() };
            for _ in 0..(next() % 6) {
                if v.is_empty() {
                    break;
                }
                let p = (next() as usize) % v.len();
                v[p] = next() as u8;
            }
            let _ = parse_head(&v, &lim());
        }
    }

    #[test]
    fn encodes_responses() {
        let r = Response::new(200, "text/plain", "default").with_header("Allow", "POST\r\nX: y");
        let s = String::from_utf8(encode(&r, true, false)).unwrap();
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains("Content-Length: 7\r\n"));
        assert!(s.contains("Allow: POSTX: y\r\n"));
        assert!(!s.contains("Connection: close"));
        assert!(s.ends_with("\r\n\r\ndefault"));
        let s = String::from_utf8(encode(&r, false, true)).unwrap();
        assert!(s.contains("Connection: close\r\n") && s.ends_with("\r\n\r\n"));
        let end = find_head_end(BUSY).unwrap();
        assert!(String::from_utf8_lossy(&BUSY[..end]).contains(&format!("Content-Length: {}", BUSY.len() - end)));
    }

    fn echo_server(limits: Limits) -> Running {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let h: Handler = Arc::new(|r: &Request| {
            if r.target == "/panic" {
                panic!("handler panic");
            }
            if r.target == "/slow" {
                std::thread::sleep(Duration::from_millis(300));
            }
            Response::new(200, "text/plain", [r.method.as_bytes(), b" ", &r.body].concat())
        });
        start(l, None, limits, h).unwrap()
    }

    /// Reads exactly one response (head byte by byte, then the body), never past
    /// it, so pipelined responses stay in the socket for the next call.
    fn read_response(s: &mut TcpStream) -> (u16, String) {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while find_head_end(&head).is_none() {
            match s.read(&mut byte) {
                Ok(0) | Err(_) => return (0, String::from_utf8_lossy(&head).to_string()),
                Ok(_) => head.push(byte[0]),
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).is_err() {
            return (0, head);
        }
        (head[9..12].parse().unwrap(), String::from_utf8_lossy(&body).to_string())
    }

    #[test]
    fn serves_keep_alive_pipelined_and_survives_a_panic() {
        let srv = echo_server(Limits::default());
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\nhiPOST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nyo!")
            .unwrap();
        assert_eq!(read_response(&mut s), (200, "POST hi".into()));
        assert_eq!(read_response(&mut s), (200, "POST yo!".into()));
        s.write_all(b"GET /panic HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s).0, 500);
        s.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s), (200, "GET ".into()));
        // Body split over several writes.
        s.write_all(b"POST / HTTP/1.1\r\nContent-").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"Length: 4\r\n\r\nab").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        s.write_all(b"cd").unwrap();
        assert_eq!(read_response(&mut s), (200, "POST abcd".into()));
        srv.stop();
    }

    #[test]
    fn slow_and_silent_clients_do_not_block_others() {
        // The request timeout is far above the bound on the good request's answer,
        // so a loaded CI machine cannot blur "answered at once" with "answered after
        // the stuck one timed out".
        let limits = Limits { workers: 1, request_timeout: Duration::from_millis(2000), ..Limits::default() };
        let srv = echo_server(limits);
        let mut idle: Vec<TcpStream> = (0..50).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
        let mut partial = TcpStream::connect(srv.addr).unwrap();
        partial.write_all(b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nab").unwrap();
        // With one worker, a good request is still answered at once.
        let t = Instant::now();
        let mut good = TcpStream::connect(srv.addr).unwrap();
        good.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut good).0, 200);
        assert!(t.elapsed() < Duration::from_millis(1500), "{:?}", t.elapsed());
        // The partial request times out with 408, the silent ones are closed.
        assert_eq!(read_response(&mut partial).0, 408);
        let mut b = [0u8; 1];
        idle[0].set_read_timeout(Some(Duration::from_secs(3))).unwrap();
        assert!(matches!(idle[0].read(&mut b), Ok(0) | Err(_)));
        idle.clear();
        srv.stop();
    }

    #[test]
    fn bounds_connections_and_bodies() {
        let limits = Limits { max_conns: 4, max_body: 10, ..Limits::default() };
        let srv = echo_server(limits);
        let held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
        std::thread::sleep(Duration::from_millis(100));
        let mut extra = TcpStream::connect(srv.addr).unwrap();
        assert_eq!(read_response(&mut extra).0, 503);
        drop(held);
        std::thread::sleep(Duration::from_millis(100));
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n01234567890").unwrap();
        assert_eq!(read_response(&mut s).0, 413);
        let mut s = TcpStream::connect(srv.addr).unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut s).0, 100);
        s.write_all(b"abc").unwrap();
        assert_eq!(read_response(&mut s), (200, "POST abc".into()));
        srv.stop();
    }
}
