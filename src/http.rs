//! The HTTP client side shared by the AliDNS client and the echo-URL address source:
//! one place that sets timeouts, the address family, proxies and which CAs to trust.

// Without TLS the CA settings are still parsed (the config stays valid) but unused.
#![cfg_attr(not(feature = "tls"), allow(dead_code, unused_imports))]

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which IP family a connection must use (echo URLs must answer over the family
/// whose address we want to learn).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4 only.
    V4,
    /// IPv6 only.
    V6,
}

/// CA bundles tried in order when none is configured: OpenWrt's `ca-bundle`
/// (and Debian/Ubuntu/Alpine), Fedora/RHEL, and the BSD/macOS style single file.
pub const CA_BUNDLE_PATHS: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
    "/etc/ssl/ca-bundle.pem",
];

/// How to build an agent.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Connect and per-read timeout; the whole request is bounded by three times this.
    pub timeout: Duration,
    /// A CA bundle to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Restrict connections to one family.
    pub family: Option<Family>,
}

impl HttpOptions {
    /// Timeouts and trust as the config's `[DEFAULT]` section sets them.
    pub fn from_global(g: &crate::config::Global) -> HttpOptions {
        HttpOptions { timeout: Duration::from_secs(g.timeout), ca_file: g.ca_file.clone(), family: None }
    }
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions { timeout: Duration::from_secs(10), ca_file: None, family: None }
    }
}

/// A response reduced to what callers use; the body is read whole (bounded).
#[derive(Debug)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The `Date` header, seconds since the epoch, for clock-skew correction.
    pub date: Option<i64>,
    /// `x-acs-retry-after` in seconds.
    pub retry_after: Option<u64>,
    /// The body as text.
    pub body: String,
}

/// The largest body accepted; AliDNS pages of 500 records are well below this.
pub const MAX_BODY: u64 = 8 * 1024 * 1024;

/// Each transport layer's receive buffer (TCP, and TLS above it). The response head
/// must fit in it (a bigger one fails as "too big", the limit set one byte below);
/// AliDNS and echo services send under 2 KB of headers. ureq's default, 128 KiB per
/// buffer and layer, was 512 KiB of a TLS pass's 0.8 MB heap.
pub const INPUT_BUFFER: usize = 16 * 1024;

/// Each transport layer's send buffer: the request head (a signed AliDNS URL is under
/// 1 KB) goes out in one piece, so it must fit; the body is empty.
pub const OUTPUT_BUFFER: usize = 8 * 1024;

/// The cheap part of [`agent`]'s checks, for callers that build their agent late:
/// TLS compiled in when needed, and a configured `ca_file` that exists.
pub fn check(opts: &HttpOptions, needs_tls: bool) -> Result<()> {
    if !needs_tls {
        return Ok(());
    }
    if !cfg!(feature = "tls") {
        return Err(Error::Config("this build has no TLS support: use an http:// endpoint".into()));
    }
    match &opts.ca_file {
        Some(p) if !p.exists() => Err(no_ca_file(p)),
        _ => Ok(()),
    }
}

fn no_ca_file(p: &Path) -> Error {
    Error::Config(format!("ca_file {}: no such file", p.display()))
}

/// Builds an agent; `needs_tls` is false for http:// targets so a router without a
/// CA bundle can still talk to a plain-HTTP endpoint.
pub fn agent(opts: &HttpOptions, needs_tls: bool) -> Result<ureq::Agent> {
    check(opts, needs_tls)?;
    let mut b = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .user_agent(concat!("aliddns/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(opts.timeout))
        .timeout_per_read(Some(opts.timeout))
        .timeout_per_write(Some(opts.timeout))
        .timeout_global(Some(opts.timeout * 3))
        .max_redirects(3)
        .max_idle_connections(4)
        .max_idle_connections_per_host(2)
        .input_buffer_size(INPUT_BUFFER)
        .output_buffer_size(OUTPUT_BUFFER)
        .max_response_header_size(INPUT_BUFFER - 1);
    if let Some(f) = opts.family {
        b = b.ip_family(match f {
            Family::V4 => ureq::config::IpFamily::Ipv4Only,
            Family::V6 => ureq::config::IpFamily::Ipv6Only,
        });
        // Only echo URLs bind a family, and they must be asked directly: through a proxy
        // the answer is the proxy's address (honwen/luci-app-aliddns#31). Set on the agent,
        // not per request, which would link ureq's request-level config (~5 KB on mipsel).
        b = b.proxy(None);
    }
    #[cfg(feature = "tls")]
    if needs_tls {
        return Ok(crate::tls_client::agent(b.build(), tls_config(opts.ca_file.as_deref())?));
    }
    Ok(b.build().new_agent())
}

/// The roots to trust, in order: `ca_file`, `SSL_CERT_FILE`, the system bundles, the
/// embedded roots; then the rustls configuration over them.
#[cfg(feature = "tls")]
fn tls_config(ca_file: Option<&Path>) -> Result<std::sync::Arc<rustls::ClientConfig>> {
    let env_file = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let mut roots = None;
    if let Some(p) = ca_file {
        // An explicitly configured file must exist.
        roots = Some(load_roots(p)?.ok_or_else(|| no_ca_file(p))?);
    }
    if roots.is_none()
        && let Some(p) = env_file.as_deref()
    {
        roots = load_roots(p)?;
    }
    let system = system_bundle_paths();
    for p in &system {
        if roots.is_some() {
            break;
        }
        roots = load_roots(p)?;
    }
    let roots = match roots {
        Some(r) => r,
        None => embedded_roots(&system)?,
    };
    crate::tls_client::config(roots)
}

/// The trust anchors of a PEM bundle; None when the file does not exist. Read as a
/// stream, one certificate at a time, each reduced to its anchor at once: a 200 KB
/// bundle is never in memory whole, and no certificate is kept (peak RSS).
#[cfg(feature = "tls")]
fn load_roots(path: &Path) -> Result<Option<Vec<rustls::pki_types::TrustAnchor<'static>>>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::{Error as PemError, PemObject as _};
    let items = match CertificateDer::pem_file_iter(path) {
        Ok(items) => items,
        Err(PemError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Other(format!("CA bundle {}: {e}", path.display()))),
    };
    let mut roots = Vec::new();
    for item in items {
        match item {
            Ok(der) => roots.extend(crate::tls_client::anchor(&der)),
            Err(PemError::Io(e)) => return Err(Error::Other(format!("CA bundle {}: {e}", path.display()))),
            // A damaged section is skipped, as a bundle with one bad entry still works.
            Err(_) => {}
        }
    }
    if roots.is_empty() {
        return Err(Error::Other(format!("CA bundle {}: no certificate in it", path.display())));
    }
    roots.shrink_to_fit();
    Ok(Some(roots))
}

/// The system CA bundles to try, in order: [`CA_BUNDLE_PATHS`], unless the hidden,
/// test-only variable `ALIDDNS_TEST_CA_PATHS` (a `:`-separated list) replaces them, so
/// that tests/tls.rs can show the system-bundle step and the fallback after it without
/// touching the machine's /etc/ssl. It grants nothing `SSL_CERT_FILE` does not already.
#[cfg(feature = "tls")]
fn system_bundle_paths() -> Vec<PathBuf> {
    match std::env::var_os("ALIDDNS_TEST_CA_PATHS") {
        Some(list) => std::env::split_paths(&list).collect(),
        None => CA_BUNDLE_PATHS.iter().map(PathBuf::from).collect(),
    }
}

#[cfg(all(feature = "tls", feature = "embedded-roots"))]
fn embedded_roots(_tried: &[PathBuf]) -> Result<Vec<rustls::pki_types::TrustAnchor<'static>>> {
    Ok(webpki_roots::TLS_SERVER_ROOTS.to_vec())
}

#[cfg(all(feature = "tls", not(feature = "embedded-roots")))]
fn embedded_roots(tried: &[PathBuf]) -> Result<Vec<rustls::pki_types::TrustAnchor<'static>>> {
    let tried: Vec<_> = tried.iter().map(|p| p.display().to_string()).collect();
    Err(Error::Config(format!("no CA bundle found (tried {}); install ca-bundle or set ca_file", tried.join(", "))))
}

/// POSTs a request with an empty body (the signed parameters are in the URL, as
/// AliDNS RPC calls are sent) and reads the whole answer. The only method this
/// client sends; echo lookups build their GET in addr/echo.rs.
pub fn post(agent: &ureq::Agent, url: &str) -> Result<Response> {
    let resp = agent
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send_empty()
        .map_err(network_error)?;
    let status = resp.status().as_u16();
    let header = |name: &str| resp.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let date = header("date").and_then(|d| crate::clock::parse_http_date(&d));
    let retry_after = header("x-acs-retry-after").and_then(|v| v.trim().parse().ok());
    let body = resp.into_body().with_config().limit(MAX_BODY).read_to_string().map_err(network_error)?;
    Ok(Response { status, date, retry_after, body })
}

/// Classifies a transport failure: timeouts, resets and refusals are worth a retry
/// (the WAN may still be coming up); bad URLs and certificate errors are not.
pub fn network_error(e: ureq::Error) -> Error {
    use ureq::Error as E;
    // A refused certificate or handshake comes as an I/O error that wraps rustls' error:
    // retrying cannot help, and rustls' own text formats its details with `Debug`, which
    // the router builds compile to nothing, so it is told in our words (tls::describe).
    #[cfg(feature = "tls")]
    if let Some(t) = crate::tls::rustls_error(&e) {
        let message = format!("TLS: {}", crate::tls::describe(t));
        return Error::Network { message, transient: false, timed_out: false };
    }
    // Timeouts, I/O errors, failed connects, unknown hosts and protocol errors (and
    // whatever ureq adds later) are transient.
    let transient = !matches!(
        &e,
        E::BadUri(_)
            | E::Http(_)
            | E::InvalidProxyUrl
            | E::TooManyRedirects
            | E::RedirectFailed
            | E::BodyExceedsLimit(_)
            | E::Tls(_)
    );
    let timed_out = match &e {
        E::Timeout(_) => true,
        E::Io(io) => io.kind() == std::io::ErrorKind::TimedOut,
        _ => false,
    };
    Error::Network { message: e.to_string(), transient, timed_out }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_agent_needs_no_ca() {
        assert!(agent(&HttpOptions::default(), false).is_ok());
    }

    #[cfg(feature = "tls")]
    #[test]
    fn configured_ca_file_must_exist() {
        let opts = HttpOptions { ca_file: Some("/nonexistent/ca.pem".into()), ..Default::default() };
        let err = agent(&opts, true).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    }

    #[test]
    fn transport_buffers_are_small() {
        // ureq's default is 128 KiB each, per transport layer: 512 KiB of a TLS pass.
        for tls in [false, cfg!(feature = "tls")] {
            let a = agent(&HttpOptions::default(), tls).unwrap();
            assert_eq!(a.config().input_buffer_size(), INPUT_BUFFER);
            assert_eq!(a.config().output_buffer_size(), OUTPUT_BUFFER);
            assert_eq!(a.config().max_response_header_size(), INPUT_BUFFER - 1);
        }
    }

    /// Answers one request on loopback with `extra` bytes of headers and a body.
    fn answer_once(extra: usize) -> String {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", l.local_addr().unwrap());
        std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let (mut req, mut buf) = (Vec::new(), [0u8; 1024]);
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let pad = "x".repeat(extra);
            let _ = write!(s, "HTTP/1.1 200 OK\r\nX-Pad: {pad}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}");
        });
        url
    }

    #[test]
    fn response_heads_fit_the_input_buffer() {
        let a = agent(&HttpOptions { timeout: Duration::from_secs(5), ..Default::default() }, false).unwrap();
        let r = post(&a, &answer_once(INPUT_BUFFER / 2)).unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "{}"));
        // A head larger than the buffer is an error, not a hang or a cut header.
        let err = post(&a, &answer_once(INPUT_BUFFER + 1024)).unwrap_err();
        assert!(err.to_string().contains("too big"), "{err}");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn bundles_are_kept_as_trust_anchors_only() {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let fixture = |n: &str| std::fs::read(format!("{}/tests/fixtures/{n}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let (ca, other) = (fixture("ca.pem"), fixture("other-ca.pem"));
        // A certificate block whose DER does not parse is skipped, as rustls would.
        let junk = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let dir = std::env::temp_dir().join(format!("aliddns-roots-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bundle = dir.join("bundle.pem");
        std::fs::write(&bundle, [&ca[..], junk, &other[..]].concat()).unwrap();
        let roots = load_roots(&bundle);
        std::fs::remove_dir_all(&dir).unwrap();
        let roots = roots.unwrap().unwrap();
        let want: Vec<_> = [&ca, &other].iter().map(|pem| CertificateDer::from_pem_slice(pem).unwrap()).collect();
        assert_eq!(roots.len(), want.len());
        for (anchor, der) in roots.iter().zip(&want) {
            assert_eq!(Some(anchor), crate::tls_client::anchor(der).as_ref());
            // Subject and key only: much less than the certificate it came from.
            let kept = anchor.subject.len() + anchor.subject_public_key_info.len();
            assert!(kept < der.len() * 2 / 3, "{kept} of {}", der.len());
        }
        assert!(load_roots(Path::new("/nonexistent/ca.pem")).unwrap().is_none());
    }

    #[test]
    fn refused_connection_is_transient() {
        // Port 9 on loopback: nothing listens there in a test environment.
        let a = agent(&HttpOptions { timeout: Duration::from_secs(2), ..Default::default() }, false).unwrap();
        let err = post(&a, "http://127.0.0.1:9/").unwrap_err();
        assert!(err.retryable(), "{err}");
        assert!(matches!(err, Error::Network { timed_out: false, .. }), "{err}");
    }

    #[test]
    fn silent_server_is_a_timeout() {
        // The kernel completes the handshake from the backlog; nobody ever answers:
        // neither the HTTP answer nor, over https://, the TLS handshake may wait forever.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ca = Some(format!("{}/tests/fixtures/ca.pem", env!("CARGO_MANIFEST_DIR")).into());
        for (scheme, tls) in [("http", false), ("https", true)] {
            if tls && !cfg!(feature = "tls") {
                continue;
            }
            let url = format!("{scheme}://{}/", silent.local_addr().unwrap());
            let opts = HttpOptions { timeout: Duration::from_millis(200), ca_file: ca.clone(), family: None };
            let err = post(&agent(&opts, tls).unwrap(), &url).unwrap_err();
            assert!(matches!(err, Error::Network { timed_out: true, transient: true, .. }), "{scheme}: {err}");
        }
    }
}
