//! A small, hardened HTTP/1.1 server on `std::net` for `serve`.
//!
//! Why not a crate: tiny_http has no read timeouts, no header-size limit and an
//! unbounded thread pool (docs/design.md, "Dependencies"), and the async stacks are far
//! too big for a router binary. What `serve` needs is narrow: small POST bodies
//! with `Content-Length`, keep-alive for Go's HTTP client, optional TLS, and
//! hard bounds on everything a client controls. Request heads are parsed by
//! `httparse` (fuzzed, used by hyper); the limits and statuses around it are ours.
//!
//! Design:
//! - One **reactor** thread owns the listener and every socket. It waits with
//!   `poll(2)` and reads and writes without blocking, so an idle keep-alive
//!   connection, a client that sends nothing, a slowloris trickling bytes or a
//!   client that never reads its answers costs a socket and a bounded buffer,
//!   never a thread. TLS handshakes also run here.
//! - As soon as a request head is parsed, the [`Service`] may refuse it
//!   ([`Service::admit`]: authentication) before a byte of the body is read;
//!   a refused connection gets its answer and is closed.
//! - Only a **complete** admitted request is handed to the fixed pool of
//!   **worker** threads. A worker runs the handler, writes what the socket takes
//!   at once, and always gives the connection back to the reactor, which sends
//!   the rest (one response at a time: a connection whose answer is not out is
//!   not read from, so a client pipelining without reading stalls only itself).
//! - Bounds: open sockets (`max_conns`, counting those at the workers, and
//!   `max_conns_per_peer`; when full, the oldest idle or unauthenticated
//!   connection is evicted for a new one), head size (431), header count (431),
//!   body size (413), a deadline from the first byte of a request to its last
//!   (408), a short deadline for a connection that has not been admitted yet,
//!   an idle timeout between requests, and a write deadline. `Transfer-Encoding`
//!   is refused (501) and a body needs `Content-Length` (411): GoEdge's Go client
//!   always sends it.
//! - After an error answer the connection is shut for writing and the rest of
//!   the declared body is read and discarded (bounded in bytes and time), so a
//!   client that writes its whole body before reading still reads the status
//!   instead of a reset.
//!
//! Size: about 950 code lines in one file on purpose. The transport ([`Io`]),
//! a connection's phases and deadlines, and the reactor's counts (open, busy,
//! per peer) keep their bounds only together: every path that closes, evicts or
//! hands over a connection updates them, and reading that in one place is what
//! makes it reviewable. Head parsing and response encoding (~150 lines) are the
//! part that could move out if the file grows.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The bounds that keep a misbehaving client from exhausting the process.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Worker threads running the handler (and so, concurrent upstream calls).
    pub workers: usize,
    /// Open client sockets at most, wherever they are (reactor or workers).
    pub max_conns: usize,
    /// Open sockets from one client address at most.
    pub max_conns_per_peer: usize,
    /// Request line plus headers, bytes.
    pub max_head: usize,
    /// Header lines at most (at most [`MAX_HEADERS`]).
    pub max_headers: usize,
    /// Request body, bytes.
    pub max_body: usize,
    /// From the first byte of a request to its last.
    pub request_timeout: Duration,
    /// From the connect to a head the service admitted (authentication).
    pub unadmitted_timeout: Duration,
    /// How long an admitted keep-alive connection may wait for its next request.
    pub idle_timeout: Duration,
    /// Total time to write one response.
    pub write_timeout: Duration,
}

/// The largest `max_headers` (the parser's header array lives on the stack).
pub const MAX_HEADERS: usize = 64;

impl Default for Limits {
    /// Sized for a router: GoEdge's largest request (AddRecord/UpdateRecord) is
    /// about 9 KiB, so 32 KiB of body leaves room for long TXT values; 512
    /// connections of unauthenticated heads cost at most 4 MiB of buffers.
    fn default() -> Self {
        Limits {
            workers: 4,
            max_conns: 512,
            max_conns_per_peer: 64,
            max_head: 8 * 1024,
            max_headers: MAX_HEADERS,
            max_body: 32 * 1024,
            request_timeout: Duration::from_secs(10),
            unadmitted_timeout: Duration::from_secs(5),
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
    /// The body (at most `max_body` bytes; empty when [`Service::admit`] sees it).
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

/// The application served.
pub trait Service: Send + Sync {
    /// Called on the reactor as soon as a head is parsed, before any body is
    /// read: a cheap check such as authentication. A refusal is sent and the
    /// connection closed, so a refused client holds neither memory nor a slot.
    fn admit(&self, _head: &Request) -> Result<(), Response> {
        Ok(())
    }

    /// Called on a worker thread for every complete admitted request.
    fn handle(&self, req: &Request) -> Response;
}

impl<F: Fn(&Request) -> Response + Send + Sync> Service for F {
    fn handle(&self, req: &Request) -> Response {
        self(req)
    }
}

/// The application, shared by the reactor and the workers.
pub type Handler = Arc<dyn Service>;

/// TLS server settings (rustls), when the server speaks HTTPS.
#[cfg(feature = "tls")]
pub type TlsConfig = Arc<rustls::ServerConfig>;
/// Without the `tls` feature there is no TLS; this type has no values.
#[cfg(not(feature = "tls"))]
pub type TlsConfig = std::convert::Infallible;

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
#[derive(Debug, Clone)]
struct Head {
    /// Method, target and headers; the body is filled in once it has arrived.
    req: Request,
    /// Bytes of the head including the blank line.
    len: usize,
    body_len: usize,
    keep_alive: bool,
    expect_continue: bool,
}

/// Why a head was refused: status and a short reason.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reject(u16, &'static str);

/// Finds the end of a request head, resuming where the previous call stopped,
/// so each byte is looked at once however the head is split across reads.
#[derive(Debug, Default, Clone)]
struct HeadScan {
    /// Bytes of the buffer already looked at.
    pos: usize,
    /// A byte other than CR/LF was seen (blank lines before a request are skipped).
    started: bool,
    /// 0: inside a line, 1: just after LF, 2: just after LF CR.
    state: u8,
}

impl HeadScan {
    /// The length of the head (through its blank line) once `buf` holds it.
    fn feed(&mut self, buf: &[u8]) -> Option<usize> {
        for &b in &buf[self.pos.min(buf.len())..] {
            self.pos += 1;
            if !self.started {
                if b == b'\r' || b == b'\n' {
                    continue;
                }
                self.started = true;
            }
            self.state = match (self.state, b) {
                (1 | 2, b'\n') => return Some(self.pos),
                (1, b'\r') => 2,
                (_, b'\n') => 1,
                _ => 0,
            };
        }
        None
    }
}

/// Parses a complete head (`buf[..end]`, as found by [`HeadScan`]).
fn parse_head(buf: &[u8], end: usize, limits: &Limits, peer: SocketAddr) -> Result<Head, Reject> {
    if end > limits.max_head {
        return Err(Reject(431, "request head too large"));
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut slots[..limits.max_headers.clamp(1, MAX_HEADERS)]);
    match parsed.parse(&buf[..end]) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(Reject(400, "malformed request head")),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject(431, "too many header fields")),
        Err(httparse::Error::Version) if is_other_http_version(buf) => {
            return Err(Reject(505, "only HTTP/1.1 is supported"));
        }
        Err(httparse::Error::Version | httparse::Error::Token) => return Err(Reject(400, "malformed request line")),
        Err(_) => return Err(Reject(400, "malformed header field")),
    }
    let (Some(method), Some(target), Some(version)) = (parsed.method, parsed.path, parsed.version) else {
        return Err(Reject(400, "malformed request line"));
    };
    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let value = std::str::from_utf8(h.value).map_err(|_| Reject(400, "header value is not UTF-8"))?;
        headers.push((h.name.to_string(), value.trim_matches([' ', '\t']).to_string()));
    }
    let all = |n: &'static str| headers.iter().filter(move |(k, _)| k.eq_ignore_ascii_case(n));
    if all("transfer-encoding").next().is_some() {
        return Err(Reject(501, "Transfer-Encoding is not supported; send Content-Length"));
    }
    let mut body_len: Option<usize> = None;
    for (_, v) in all("content-length") {
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
        Some(n) => n,
        None if matches!(method, "POST" | "PUT" | "PATCH") => return Err(Reject(411, "Content-Length required")),
        None => 0,
    };
    let http10 = version == 0;
    let has_token = |name, t: &str| all(name).any(|(_, v)| v.split(',').any(|x| x.trim().eq_ignore_ascii_case(t)));
    let keep_alive = if http10 { has_token("connection", "keep-alive") } else { !has_token("connection", "close") };
    let expect_continue = !http10 && all("expect").any(|(_, v)| v.eq_ignore_ascii_case("100-continue"));
    let target = std::str::from_utf8(target.as_bytes()).map_err(|_| Reject(400, "malformed request line"))?;
    Ok(Head {
        req: Request { method: method.to_string(), target: target.to_string(), headers, body: Vec::new(), peer },
        len: end,
        body_len,
        keep_alive,
        expect_continue,
    })
}

/// Whether the request line names an HTTP version other than 1.x (505, not 400).
fn is_other_http_version(buf: &[u8]) -> bool {
    let line = buf.split(|&b| b == b'\n').find(|l| !l.iter().all(|&b| b == b'\r')).unwrap_or_default();
    line.rsplit(|&b| b == b' ')
        .next()
        .and_then(|v| v.strip_prefix(b"HTTP/"))
        .is_some_and(|v| v.first().is_some_and(u8::is_ascii_digit) && !v.starts_with(b"1."))
}

/// Appends the bytes of a response head and body to `out`.
fn encode(out: &mut Vec<u8>, resp: &Response, keep_alive: bool, head_only: bool) {
    out.reserve(160 + resp.body.len());
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
        let _ = write!(out, "{k}: ");
        for c in v.chars().filter(|c| !c.is_control()) {
            let mut b = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&resp.body);
    }
}

// ---------------------------------------------------------------------------
// Transport.

/// One client's byte stream, plain TCP or TLS over it; always non-blocking.
/// Reads and writes carry plaintext; `WouldBlock` means "wait for poll".
/// Builds without the `tls` feature have only the plain variant.
enum Io {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tls::Stream>),
}

impl Io {
    /// Wraps an accepted socket: TLS when the server has a TLS config. None when
    /// the TLS session cannot be set up (the socket is then dropped).
    fn new(sock: TcpStream, tls: Option<TlsConfig>) -> Option<Io> {
        match tls {
            None => Some(Io::Plain(sock)),
            #[cfg(feature = "tls")]
            Some(cfg) => tls::Stream::new(sock, cfg).map(|t| Io::Tls(Box::new(t))),
        }
    }

    /// The socket of a plain connection; None under TLS.
    #[cfg(target_os = "linux")]
    fn plain(&self) -> Option<&TcpStream> {
        match self {
            Io::Plain(sock) => Some(sock),
            #[cfg(feature = "tls")]
            Io::Tls(_) => None,
        }
    }

    /// The socket, for poll(2).
    fn sock(&self) -> &TcpStream {
        match self {
            Io::Plain(sock) => sock,
            #[cfg(feature = "tls")]
            Io::Tls(t) => &t.sock,
        }
    }

    /// Reads plaintext; `Ok(0)` when the peer closed.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(sock) => sock.read(out),
            #[cfg(feature = "tls")]
            Io::Tls(t) => t.read(out),
        }
    }

    /// Reads and throws away at most `max` bytes (and at most `scratch.len()`);
    /// `Ok(0)` when the peer closed.
    fn discard(&mut self, scratch: &mut [u8], max: usize) -> io::Result<usize> {
        let len = max.min(scratch.len());
        #[cfg(target_os = "linux")]
        if let Some(sock) = self.plain() {
            // TCP's MSG_TRUNC drops the bytes in the kernel instead of copying
            // them out (tcp(7)): discarding a 16 MiB body costs little CPU.
            // SAFETY: `scratch` is valid for `len` bytes, whatever the kernel does with it.
            let n = unsafe { libc::recv(sock.as_raw_fd(), scratch.as_mut_ptr().cast(), len, libc::MSG_TRUNC) };
            return if n < 0 { Err(io::Error::last_os_error()) } else { Ok(n as usize) };
        }
        self.read(&mut scratch[..len])
    }

    /// Takes as much plaintext as the transport accepts now.
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Io::Plain(sock) => sock.write(data),
            #[cfg(feature = "tls")]
            Io::Tls(t) => t.write(data),
        }
    }

    /// Sends encrypted records still queued (TLS); `Ok(true)` when none are left.
    fn flush(&mut self) -> io::Result<bool> {
        match self {
            Io::Plain(_) => Ok(true),
            #[cfg(feature = "tls")]
            Io::Tls(t) => t.flush(),
        }
    }

    /// Bytes are queued inside the transport (TLS handshake or records).
    fn wants_write(&self) -> bool {
        match self {
            Io::Plain(_) => false,
            #[cfg(feature = "tls")]
            Io::Tls(t) => t.conn.wants_write(),
        }
    }

    /// Says goodbye (TLS close_notify) and shuts the write side.
    fn shutdown_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Io::Tls(t) = self {
            t.close();
        }
        let _ = self.sock().shutdown(Shutdown::Write);
    }
}

fn transient(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted)
}

/// The TLS half of [`Io`]: rustls driven over a non-blocking socket.
#[cfg(feature = "tls")]
mod tls {
    use super::transient;
    use std::io::{self, Read, Write};
    use std::net::TcpStream;

    pub struct Stream {
        pub sock: TcpStream,
        pub conn: rustls::ServerConnection,
    }

    impl Stream {
        pub fn new(sock: TcpStream, cfg: super::TlsConfig) -> Option<Stream> {
            rustls::ServerConnection::new(cfg).ok().map(|conn| Stream { sock, conn })
        }

        pub fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            loop {
                match self.conn.reader().read(out) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if self.conn.read_tls(&mut self.sock)? == 0 {
                    return Ok(0);
                }
                if let Err(e) = self.conn.process_new_packets() {
                    // Send the alert rustls queued, then give up on the connection.
                    let _ = self.conn.write_tls(&mut self.sock);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
                self.flush()?; // handshake answers
            }
        }

        pub fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            if !self.flush()? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = self.conn.writer().write(data)?;
            self.flush()?;
            if n == 0 && !data.is_empty() { Err(io::ErrorKind::WouldBlock.into()) } else { Ok(n) }
        }

        pub fn flush(&mut self) -> io::Result<bool> {
            while self.conn.wants_write() {
                match self.conn.write_tls(&mut self.sock) {
                    Ok(_) => {}
                    Err(e) if transient(&e) => return Ok(false),
                    Err(e) => return Err(e),
                }
            }
            Ok(true)
        }

        pub fn close(&mut self) {
            self.conn.send_close_notify();
            let _ = self.flush();
        }
    }
}

// ---------------------------------------------------------------------------
// Connections.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request to start (fresh or kept alive).
    Idle,
    /// Part of a request has arrived.
    Reading,
    /// A response is going out; nothing is read meanwhile.
    Writing,
    /// An error answer is going out; the rest of the request is read and discarded.
    Draining,
}

struct Conn {
    io: Io,
    peer: SocketAddr,
    /// Received bytes of the current request (and, at most, its end).
    buf: Vec<u8>,
    scan: HeadScan,
    head: Option<Head>,
    phase: Phase,
    /// When the phase began (eviction takes the oldest first).
    since: Instant,
    deadline: Instant,
    /// A head of this connection was admitted by the service.
    admitted: bool,
    /// Bytes to send, from `out_pos` on.
    out: Vec<u8>,
    out_pos: usize,
    /// Close once `out` is sent (instead of waiting for the next request).
    close_after: bool,
    sent_continue: bool,
    /// Bytes still to read and discard while draining.
    discard: usize,
    /// The write side is shut (draining).
    shut: bool,
}

/// How a flush ended.
enum Flushed {
    Done,
    Pending,
    Failed,
}

/// Bytes read and thrown away after an error answer, beyond the declared body.
const DRAIN_SLACK: usize = 256 * 1024;
/// The most a client may still send after an error answer (a whole 16 MiB body fits).
const DRAIN_MAX: usize = 32 * 1024 * 1024;
/// How long an error answer's connection stays open for the rest of the request.
const DRAIN_TIME: Duration = Duration::from_secs(5);
/// Size of the reactor's one read buffer.
const READ_CHUNK: usize = 16 * 1024;
/// Pending connections the kernel queues for `accept`.
const LISTEN_BACKLOG: libc::c_int = 1024;
/// Size of the reactor's scratch buffer: reads use `READ_CHUNK` of it, discards all.
const SCRATCH: usize = 64 * 1024;

impl Conn {
    fn new(io: Io, peer: SocketAddr, limits: &Limits, now: Instant) -> Conn {
        Conn {
            io,
            peer,
            buf: Vec::new(),
            scan: HeadScan::default(),
            head: None,
            phase: Phase::Idle,
            since: now,
            deadline: now + limits.unadmitted_timeout,
            admitted: false,
            out: Vec::new(),
            out_pos: 0,
            close_after: false,
            sent_continue: false,
            discard: 0,
            shut: false,
        }
    }

    fn set_phase(&mut self, phase: Phase, now: Instant, deadline: Instant) {
        self.phase = phase;
        self.since = now;
        self.deadline = deadline;
    }

    /// Whether poll should wake us for bytes from the client.
    fn wants_read(&self) -> bool {
        match self.phase {
            Phase::Idle | Phase::Reading => true,
            Phase::Draining => self.discard > 0,
            Phase::Writing => false,
        }
    }

    fn pending_out(&self) -> bool {
        self.out_pos < self.out.len() || self.io.wants_write()
    }

    /// Writes what the socket takes now.
    fn flush(&mut self) -> Flushed {
        loop {
            match self.io.flush() {
                Ok(true) => {}
                Ok(false) => return Flushed::Pending,
                Err(_) => return Flushed::Failed,
            }
            if self.out_pos >= self.out.len() {
                self.out.clear();
                self.out_pos = 0;
                if self.out.capacity() > READ_CHUNK {
                    self.out = Vec::new(); // a large answer's memory goes back at once
                }
                return Flushed::Done;
            }
            match self.io.write(&self.out[self.out_pos..]) {
                Ok(0) => return Flushed::Failed,
                Ok(n) => self.out_pos += n,
                Err(e) if transient(&e) => return Flushed::Pending,
                Err(_) => return Flushed::Failed,
            }
        }
    }

    /// How many more bytes the current request may still need.
    fn room(&self, limits: &Limits) -> usize {
        match &self.head {
            // One byte past the limit tells "too large" from "exactly full".
            None => (limits.max_head + 1).saturating_sub(self.buf.len()),
            Some(h) => (h.len + h.body_len).saturating_sub(self.buf.len()),
        }
    }

    /// Queues an error answer, then shuts the write side and discards what the
    /// client still sends of this request (bounded), so it can read the answer.
    fn reject(&mut self, resp: &Response, now: Instant) {
        let owed = self.head.as_ref().map_or(0, |h| (h.len + h.body_len).saturating_sub(self.buf.len()));
        encode(&mut self.out, resp, false, false);
        self.close_after = true;
        self.discard = owed.saturating_add(DRAIN_SLACK).min(DRAIN_MAX);
        self.buf = Vec::new();
        self.head = None;
        self.set_phase(Phase::Draining, now, now + DRAIN_TIME);
        if let Flushed::Done = self.flush() {
            self.shut_if_answered();
        }
    }

    /// While draining: once the answer is out, shut the write side (the client
    /// sees the end of the answer) and keep reading what it still sends.
    fn shut_if_answered(&mut self) {
        if self.phase == Phase::Draining && !self.shut && !self.pending_out() {
            self.io.shutdown_write();
            self.shut = true;
        }
    }
}

/// Rank for eviction: lower goes first; `None` is never evicted.
fn evict_rank(c: &Conn) -> Option<u8> {
    match c.phase {
        Phase::Draining => Some(0),
        Phase::Idle | Phase::Reading if !c.admitted => Some(1),
        Phase::Idle => Some(2),
        _ => None,
    }
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
    /// Connections workers hand back to the reactor (every job comes back).
    returned: Mutex<Vec<Conn>>,
    /// Written (one byte) to wake the reactor's poll.
    wake_tx: UnixStream,
    /// Open connections and those at the workers, as of the reactor's last wait:
    /// lets a test wait for the reactor instead of sleeping.
    open: AtomicUsize,
    busy: AtomicUsize,
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

    /// Open connections and those at the workers, as the reactor last saw them.
    #[cfg(test)]
    fn connections(&self) -> (usize, usize) {
        (self.shared.open.load(Ordering::SeqCst), self.shared.busy.load(Ordering::SeqCst))
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
    // std listens with a backlog of 128: a storm of connects would overflow it and
    // GoEdge's SYN would wait for a retransmit (1 s). Listening again raises it
    // (Linux caps it at net.core.somaxconn).
    // SAFETY: listen(2) on a socket we own.
    unsafe { libc::listen(listener.as_raw_fd(), LISTEN_BACKLOG) };
    limits.workers = limits.workers.max(1);
    limits.max_conns = fit_conns(limits.max_conns.max(1));
    limits.max_conns_per_peer = limits.max_conns_per_peer.clamp(1, limits.max_conns);
    let (wake_tx, wake_rx) = UnixStream::pair()?;
    wake_tx.set_nonblocking(true)?;
    wake_rx.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        limits: limits.clone(),
        handler,
        stop: AtomicBool::new(false),
        returned: Mutex::new(Vec::new()),
        wake_tx,
        open: AtomicUsize::new(0),
        busy: AtomicUsize::new(0),
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
    threads.push(std::thread::Builder::new().name("httpd-reactor".into()).spawn(move || {
        let mut r = Reactor::new(&s, tls, tx);
        r.run(listener, wake_rx);
    })?);
    Ok(Running { addr, shared, threads })
}

fn worker(s: &Shared, rx: &Mutex<Receiver<Job>>) {
    loop {
        let Ok(job) = rx.lock().unwrap_or_else(|p| p.into_inner()).recv() else {
            return;
        };
        let Job { mut conn, req, keep_alive } = job;
        let resp = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.handler.handle(&req)))
            .unwrap_or_else(|_| Response::text(500, "internal error"));
        let keep = keep_alive && !s.stop.load(Ordering::Relaxed);
        encode(&mut conn.out, &resp, keep, req.method == "HEAD");
        conn.close_after = !keep;
        // Whatever the socket does not take now, the reactor sends later.
        let _ = conn.flush();
        s.returned.lock().unwrap_or_else(|p| p.into_inner()).push(conn);
        s.wake();
    }
}

const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nContent-Length: 16\r\nConnection: close\r\n\r\ntoo busy, retry\n";

/// The reactor's state: every connection not at a worker, and the counts that
/// bound all of them.
struct Reactor<'a> {
    s: &'a Shared,
    tls: Option<TlsConfig>,
    jobs: SyncSender<Job>,
    conns: Vec<Conn>,
    /// Connections at the workers.
    busy: usize,
    /// Open sockets per client address (reactor and workers).
    per_peer: HashMap<IpAddr, usize>,
    scratch: Vec<u8>,
    last_busy_log: Option<Instant>,
}

impl<'a> Reactor<'a> {
    fn new(s: &'a Shared, tls: Option<TlsConfig>, jobs: SyncSender<Job>) -> Reactor<'a> {
        Reactor {
            s,
            tls,
            jobs,
            conns: Vec::new(),
            busy: 0,
            per_peer: HashMap::new(),
            scratch: vec![0u8; SCRATCH],
            last_busy_log: None,
        }
    }

    fn open(&self) -> usize {
        self.conns.len() + self.busy
    }

    fn run(&mut self, listener: TcpListener, mut wake_rx: UnixStream) {
        let mut fds: Vec<libc::pollfd> = Vec::new();
        let mut revents: Vec<libc::c_short> = Vec::new();
        loop {
            if self.s.stop.load(Ordering::Relaxed) {
                return;
            }
            crate::log::flush_suppressed();
            self.collect_returned();

            fds.clear();
            fds.push(libc::pollfd { fd: listener.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            fds.push(libc::pollfd { fd: wake_rx.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            let now = Instant::now();
            let mut next = now + Duration::from_secs(1);
            for c in &self.conns {
                let mut ev = 0;
                if c.wants_read() {
                    ev |= libc::POLLIN;
                }
                if c.pending_out() {
                    ev |= libc::POLLOUT;
                }
                fds.push(libc::pollfd { fd: c.io.sock().as_raw_fd(), events: ev, revents: 0 });
                next = next.min(c.deadline);
            }
            let timeout_ms = next.saturating_duration_since(now).as_millis().min(1000) as libc::c_int + 1;
            self.s.open.store(self.open(), Ordering::SeqCst);
            self.s.busy.store(self.busy, Ordering::SeqCst);
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
            revents.clear();
            revents.extend(fds[2..].iter().map(|p| p.revents));
            let conns = std::mem::take(&mut self.conns);
            for (c, &rev) in conns.into_iter().zip(&revents) {
                let c = self.service(c, rev, now);
                self.keep(c);
            }

            if fds[0].revents != 0 {
                self.accept_all(&listener);
            }
        }
    }

    /// Takes back the connections the workers are done with.
    fn collect_returned(&mut self) {
        let back: Vec<Conn> = std::mem::take(&mut *self.s.returned.lock().unwrap_or_else(|p| p.into_inner()));
        for c in back {
            self.busy -= 1;
            let c = self.returned(c, Instant::now());
            self.keep(c);
        }
    }

    /// Puts a connection (back) into the table. `None` is one the reactor no
    /// longer holds: closed (and forgotten) or handed to a worker (counted busy).
    fn keep(&mut self, c: Option<Conn>) {
        if let Some(c) = c {
            self.conns.push(c);
        }
    }

    /// A worker is done with a connection: send the rest of its answer, then go on.
    fn returned(&mut self, mut c: Conn, now: Instant) -> Option<Conn> {
        if c.pending_out() {
            c.set_phase(Phase::Writing, now, now + self.s.limits.write_timeout);
            return Some(c);
        }
        self.finish_response(c, now)
    }

    fn accept_all(&mut self, listener: &TcpListener) {
        let s = self.s;
        let limits = &s.limits;
        for _ in 0..256 {
            let (sock, peer) = match listener.accept() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    crate::log::warn_limited("httpd accept", format!("httpd: accept failed: {e}"));
                    std::thread::sleep(Duration::from_millis(100));
                    return;
                }
            };
            let ip = peer.ip();
            let mut room = self.make_room(ip);
            if !room {
                // Connections answered during this burst of accepts may be waiting
                // to be taken back from the workers (and then be idle): look again.
                self.collect_returned();
                room = self.make_room(ip);
            }
            if !room || sock.set_nonblocking(true).is_err() {
                self.refuse(sock, peer);
                continue;
            }
            let _ = sock.set_nodelay(true);
            let Some(io) = Io::new(sock, self.tls.as_ref().cloned()) else { continue };
            *self.per_peer.entry(ip).or_insert(0) += 1;
            let now = Instant::now();
            let c = Conn::new(io, peer, limits, now);
            // A client usually sends its request right behind the connect.
            let c = self.service(c, libc::POLLIN, now);
            self.keep(c);
        }
    }

    /// Whether a connection from `ip` fits, evicting one if needed.
    fn make_room(&mut self, ip: IpAddr) -> bool {
        let limits = &self.s.limits;
        if self.per_peer.get(&ip).copied().unwrap_or(0) >= limits.max_conns_per_peer {
            self.evict(Some(ip))
        } else if self.open() >= limits.max_conns {
            self.evict(None)
        } else {
            true
        }
    }

    /// Closes the best victim (of that peer, if given); false when there is none.
    fn evict(&mut self, of: Option<IpAddr>) -> bool {
        let victim = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| of.is_none_or(|ip| c.peer.ip() == ip))
            .filter_map(|(i, c)| evict_rank(c).map(|r| (r, c.since, i)))
            .min()
            .map(|(_, _, i)| i);
        match victim {
            Some(i) => {
                let c = self.conns.swap_remove(i);
                crate::log::debug(format!("httpd: {}: evicted for a new connection", c.peer));
                self.forget(c);
                true
            }
            None => false,
        }
    }

    fn refuse(&mut self, sock: TcpStream, peer: SocketAddr) {
        let _ = sock.set_nonblocking(true);
        if self.tls.is_none() {
            let _ = (&sock).write(BUSY);
        }
        let _ = sock.shutdown(Shutdown::Both);
        if self.last_busy_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
            let held = self.conns.iter().filter(|c| c.peer.ip() == peer.ip()).count();
            crate::log::warn(format!(
                "httpd: {} connections open ({} at the workers; {} from {}, {held} of them waiting), none idle; \
                 refusing {peer} and others for now",
                self.open(),
                self.busy,
                self.per_peer.get(&peer.ip()).copied().unwrap_or(0),
                peer.ip()
            ));
            self.last_busy_log = Some(Instant::now());
        }
    }

    /// Drops a connection the reactor no longer keeps, updating the counts.
    fn forget(&mut self, c: Conn) {
        let ip = c.peer.ip();
        if let Some(n) = self.per_peer.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(&ip);
            }
        }
        drop(c);
    }

    /// Handles poll events and deadlines of one connection; returns it if it stays open.
    fn service(&mut self, mut c: Conn, rev: libc::c_short, now: Instant) -> Option<Conn> {
        if rev & (libc::POLLOUT | libc::POLLERR | libc::POLLHUP) != 0 && c.pending_out() {
            match c.flush() {
                Flushed::Failed => return self.drop_conn(c),
                Flushed::Done if c.phase == Phase::Writing => return self.finish_response(c, now),
                Flushed::Pending | Flushed::Done => {}
            }
        }
        c.shut_if_answered();
        if c.phase == Phase::Draining && c.discard == 0 && !c.pending_out() {
            return self.drop_conn(c); // answered, and the request is read: done
        }
        if rev & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 && c.wants_read() {
            c = self.read(c, now)?;
        }
        // Checked even when bytes arrived, so trickling bytes cannot extend a deadline.
        if now >= c.deadline {
            if c.phase == Phase::Reading {
                crate::log::debug(format!("httpd: {}: request not complete in time", c.peer));
                c.reject(&Response::text(408, "request not complete in time"), now);
                return Some(c);
            }
            return self.drop_conn(c); // idle, draining or stuck writing: just close
        }
        Some(c)
    }

    fn drop_conn(&mut self, c: Conn) -> Option<Conn> {
        self.forget(c);
        None
    }

    /// Reads what is there, as far as the current request needs, and acts on it.
    fn read(&mut self, mut c: Conn, now: Instant) -> Option<Conn> {
        let s = self.s;
        let limits = &s.limits;
        loop {
            let draining = c.phase == Phase::Draining;
            let want = if draining { c.discard } else { c.room(limits).min(READ_CHUNK) };
            if want == 0 {
                return if draining && !c.pending_out() { self.drop_conn(c) } else { Some(c) };
            }
            let got =
                if draining { c.io.discard(&mut self.scratch, want) } else { c.io.read(&mut self.scratch[..want]) };
            match got {
                // The peer is done sending; an answer still going out is finished first.
                Ok(0) if draining && c.pending_out() => {
                    c.discard = 0;
                    return Some(c);
                }
                Ok(0) => return self.drop_conn(c), // the peer went away
                Ok(n) if draining => c.discard -= n,
                Ok(n) => {
                    if c.phase == Phase::Idle {
                        // A request begins: a whole one must arrive in time.
                        let by = if c.admitted { now + limits.request_timeout } else { c.deadline };
                        c.set_phase(Phase::Reading, now, by);
                    }
                    // Grow by doubling, but never past what this request may hold
                    // (`want` is within that bound): a head of 8,000 bytes and a
                    // trickled byte must not cost 16 KiB.
                    let need = c.buf.len() + n;
                    if need > c.buf.capacity() {
                        let cap = (c.buf.capacity() * 2).clamp(need, c.buf.len() + c.room(limits));
                        c.buf.reserve_exact(cap - c.buf.len());
                    }
                    c.buf.extend_from_slice(&self.scratch[..n]);
                    c = self.advance(c, now)?;
                    if c.phase != Phase::Reading {
                        return Some(c);
                    }
                }
                Err(e) if transient(&e) => return Some(c),
                Err(_) => return self.drop_conn(c),
            }
        }
    }

    /// Parses what a connection has buffered and dispatches a complete request
    /// (then the reactor no longer holds it: `None`).
    fn advance(&mut self, mut c: Conn, now: Instant) -> Option<Conn> {
        let s = self.s;
        let limits = &s.limits;
        if c.head.is_none() {
            let refused = match c.scan.feed(&c.buf) {
                None if c.buf.len() > limits.max_head => Err(Reject(431, "request head too large")),
                None => return Some(c),
                Some(end) => parse_head(&c.buf, end, limits, c.peer),
            };
            let head = match refused {
                Ok(h) => h,
                Err(Reject(status, why)) => {
                    crate::log::warn_limited(why, format!("httpd: {}: {status} {why}", c.peer));
                    c.reject(&Response::text(status, why), now);
                    return Some(c);
                }
            };
            let body_len = head.body_len;
            c.head = Some(head);
            let admitted = s.handler.admit(&c.head.as_ref()?.req);
            if let Err(resp) = admitted {
                // Refused (authentication): answer, drain the body, close.
                c.reject(&resp, now);
                return Some(c);
            }
            if !c.admitted {
                c.admitted = true;
                c.deadline = now + limits.request_timeout;
            }
            if body_len > limits.max_body {
                crate::log::warn_limited("body too large", format!("httpd: {}: 413 request body too large", c.peer));
                c.reject(&Response::text(413, "request body too large"), now);
                return Some(c);
            }
        }
        let (total, expect) = match &c.head {
            Some(h) => (h.len + h.body_len, h.expect_continue),
            None => return Some(c),
        };
        if c.buf.len() < total {
            if expect && !c.sent_continue {
                c.sent_continue = true;
                c.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                if let Flushed::Failed = c.flush() {
                    return self.drop_conn(c);
                }
            }
            return Some(c);
        }
        let head = c.head.take()?;
        // The buffer becomes the body (no copy); what follows stays for the next request.
        let mut body = std::mem::take(&mut c.buf);
        c.buf = body.split_off(total);
        body.drain(..head.len);
        let req = Request { body, ..head.req };
        c.scan = HeadScan::default();
        c.sent_continue = false;
        match self.jobs.try_send(Job { conn: c, req, keep_alive: head.keep_alive }) {
            Ok(()) => {
                self.busy += 1;
                None
            }
            Err(TrySendError::Full(job)) | Err(TrySendError::Disconnected(job)) => {
                let mut c = job.conn;
                c.reject(&Response::text(503, "too busy, retry"), now);
                Some(c)
            }
        }
    }

    /// A response is out: close, or wait for (or start on) the next request.
    fn finish_response(&mut self, mut c: Conn, now: Instant) -> Option<Conn> {
        let s = self.s;
        let limits = &s.limits;
        if c.close_after {
            c.io.shutdown_write();
            return self.drop_conn(c);
        }
        if c.buf.is_empty() {
            c.buf = Vec::new(); // give back the capacity while idle
            c.set_phase(Phase::Idle, now, now + limits.idle_timeout);
        } else {
            // The next request was pipelined behind this one: it is already under way.
            c.set_phase(Phase::Reading, now, now + limits.request_timeout);
            c = self.advance(c, now)?;
            if c.phase != Phase::Reading {
                return Some(c);
            }
        }
        // Bytes may wait inside the transport (TLS) or the socket: look now.
        self.service(c, libc::POLLIN, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim() -> Limits {
        Limits { max_head: 256, max_body: 100, max_headers: 8, ..Limits::default() }
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:9".parse().unwrap()
    }

    /// Finds the head as the reactor does, then parses it: `Ok(None)` = wait for more.
    fn parse(buf: &[u8], limits: &Limits) -> Result<Option<Head>, Reject> {
        match HeadScan::default().feed(buf) {
            None if buf.len() > limits.max_head => Err(Reject(431, "request head too large")),
            None => Ok(None),
            Some(end) => parse_head(buf, end, limits, peer()).map(Some),
        }
    }

    #[test]
    fn parses_a_goedge_request() {
        let raw = b"POST /dns HTTP/1.1\r\nHost: x\r\nContent-Length: 23\r\nTimestamp: 1\r\nToken:  ab \r\n\r\n{\"action\":\"GetDomains\"}";
        let h = parse(raw, &lim()).unwrap().unwrap();
        assert_eq!(
            (h.req.method.as_str(), h.req.target.as_str(), h.body_len, h.keep_alive),
            ("POST", "/dns", 23, true)
        );
        assert_eq!(h.len + h.body_len, raw.len());
        assert!(h.req.headers.contains(&("Token".to_string(), "ab".to_string())));
    }

    #[test]
    fn waits_for_the_whole_head() {
        assert!(matches!(parse(b"POST / HTTP/1.1\r\nContent-Len", &lim()), Ok(None)));
        assert!(matches!(parse(b"", &lim()), Ok(None)));
        // Leading blank lines are skipped.
        let h = parse(b"\r\nGET / HTTP/1.1\r\n\r\n", &lim()).unwrap().unwrap();
        assert_eq!(h.len, 2 + 18);
    }

    #[test]
    fn refuses_what_it_must() {
        let r = |raw: &[u8]| parse(raw, &lim()).map(|_| ()).map_err(|Reject(s, _)| s);
        assert_eq!(r(b"POST / HTTP/1.1\r\n\r\n"), Err(411));
        // The body limit is checked after admission (see the server tests).
        assert_eq!(r(b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n"), Ok(()));
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
        let ka = |raw: &[u8]| parse(raw, &lim()).unwrap().unwrap().keep_alive;
        assert!(ka(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.1\r\nConnection: Close\r\n\r\n"));
        assert!(!ka(b"GET / HTTP/1.0\r\n\r\n"));
        assert!(ka(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
        let h = parse(b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", &lim());
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
            let _ = parse(&v, &lim());
        }
    }

    #[test]
    fn encodes_responses() {
        let r = Response::new(200, "text/plain", "default").with_header("Allow", "POST\r\nX: y");
        let enc = |keep, head_only| {
            let mut out = Vec::new();
            encode(&mut out, &r, keep, head_only);
            String::from_utf8(out).unwrap()
        };
        let s = enc(true, false);
        assert!(s.starts_with("HTTP/1.1 200 OK\r\n"), "{s}");
        assert!(s.contains("Content-Length: 7\r\n"));
        assert!(s.contains("Allow: POSTX: y\r\n"));
        assert!(!s.contains("Connection: close"));
        assert!(s.ends_with("\r\n\r\ndefault"));
        let s = enc(false, true);
        assert!(s.contains("Connection: close\r\n") && s.ends_with("\r\n\r\n"));
        let end = HeadScan::default().feed(BUSY).unwrap();
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
        while HeadScan::default().feed(&head).is_none() {
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

    /// Waits until the reactor reports `(open, busy)` connections passing `ok`
    /// (5 s at most, then fails with what it last saw).
    fn wait_for(srv: &Running, what: &str, ok: impl Fn((usize, usize)) -> bool) {
        let t = Instant::now();
        while !ok(srv.connections()) {
            assert!(t.elapsed() < Duration::from_secs(5), "{what}: (open, busy) = {:?}", srv.connections());
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    #[test]
    fn bounds_connections_and_bodies() {
        let limits = Limits { max_conns: 4, max_body: 10, ..Limits::default() };
        let srv = echo_server(limits);
        // A full table of idle connections: the oldest makes room for a new one.
        let mut held: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
        wait_for(&srv, "four idle connections accepted", |(open, _)| open == 4);
        let mut extra = TcpStream::connect(srv.addr).unwrap();
        extra.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(read_response(&mut extra), (200, "GET ".into()));
        assert_eq!(read_response(&mut held[0]).0, 0, "the oldest idle connection was closed");
        drop((held, extra));
        wait_for(&srv, "closed connections forgotten", |(open, _)| open == 0);
        // Connections at the workers count and are never evicted: then 503.
        let mut slow: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(srv.addr).unwrap()).collect();
        for s in &mut slow {
            s.write_all(b"GET /slow HTTP/1.1\r\n\r\n").unwrap();
        }
        wait_for(&srv, "four requests at the workers", |(_, busy)| busy == 4);
        let mut extra = TcpStream::connect(srv.addr).unwrap();
        assert_eq!(read_response(&mut extra).0, 503);
        for s in &mut slow {
            assert_eq!(read_response(s).0, 200);
        }
        drop(slow);
        wait_for(&srv, "closed connections forgotten", |(open, _)| open == 0);
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

    #[test]
    fn head_scan_looks_at_each_byte_once() {
        let raw = b"\r\nPOST / HTTP/1.1\r\nA: b\r\n\r\nbody";
        let mut scan = HeadScan::default();
        for n in 0..raw.len() {
            if let Some(end) = scan.feed(&raw[..=n]) {
                assert_eq!((end, scan.pos), (raw.len() - 4, n + 1));
                return;
            }
            assert_eq!(scan.pos, n + 1);
        }
        panic!("no end found");
    }

    #[test]
    fn bare_newlines_end_a_head_too() {
        assert_eq!(HeadScan::default().feed(b"GET / HTTP/1.1\nA: b\n\nx"), Some(21));
        assert_eq!(HeadScan::default().feed(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
    }
}
