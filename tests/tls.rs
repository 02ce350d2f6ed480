//! HTTPS as production uses it: the real binary talks TLS to the AliDNS simulator
//! and to a loopback echo server, with the test CA of tests/fixtures. Also runs
//! against the router builds under qemu (`ALIDDNS_BIN`/`ALIDDNS_RUNNER`).
//!
//! Trust order under test: `ca_file` → `SSL_CERT_FILE` → system bundle → embedded
//! roots (or, in a build without them, an error naming the paths tried). The system
//! bundle list is replaced through the test-only `ALIDDNS_TEST_CA_PATHS` (see
//! src/http.rs) so no test depends on the machine's /etc/ssl.

mod common;

use alidns_sim::Sim;
use common::{aliddns, tempdir};
use rustls::SupportedProtocolVersion;
use rustls::version::{TLS12, TLS13};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn read_fixture(name: &str) -> Vec<u8> {
    std::fs::read(fixture(name)).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// The loopback server certificate (127.0.0.1, signed by `ca.pem`) or the one for
/// `wrong.example` (signed by `other-ca.pem`).
#[derive(Clone, Copy)]
enum Cert {
    Localhost,
    WrongName,
}

impl Cert {
    fn pem(self) -> (Vec<u8>, Vec<u8>) {
        match self {
            Cert::Localhost => (read_fixture("server.pem"), read_fixture("server.key")),
            Cert::WrongName => (read_fixture("wrong-name.pem"), read_fixture("wrong-name.key")),
        }
    }
}

fn sim(cert: Cert, versions: &[&'static SupportedProtocolVersion]) -> Sim {
    let (c, k) = cert.pem();
    let sim = Sim::start_tls_versions(&c, &k, versions);
    sim.add_domain("example.com");
    sim.add_record("example.com", "www", "A", "198.51.100.1", 600, "default");
    sim
}

/// A loopback HTTPS "what is my IP" server that answers `203.0.113.7` and records
/// the TLS version of every request it served.
struct TlsEcho {
    url: String,
    served: Arc<Mutex<Vec<rustls::ProtocolVersion>>>,
}

impl TlsEcho {
    fn start(cert: Cert, versions: &[&'static SupportedProtocolVersion]) -> TlsEcho {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let (c, k) = cert.pem();
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(&c).collect::<Result<_, _>>().expect("certificate PEM");
        let key = PrivateKeyDer::from_pem_slice(&k).expect("key PEM");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(versions)
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .expect("certificate and key");
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("https://{}/", listener.local_addr().unwrap());
        let served = Arc::new(Mutex::new(Vec::new()));
        let log = served.clone();
        // Detached: the thread ends with the test process; one connection at a time.
        std::thread::spawn(move || {
            for tcp in listener.incoming() {
                let Ok(tcp) = tcp else { continue };
                let _ = tcp.set_read_timeout(Some(std::time::Duration::from_secs(10)));
                let Ok(conn) = rustls::ServerConnection::new(config.clone()) else { continue };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut req = Vec::new();
                let mut buf = [0u8; 2048];
                while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => req.extend_from_slice(&buf[..n]),
                    }
                }
                if !req.windows(4).any(|w| w == b"\r\n\r\n") {
                    continue; // handshake refused by the client, or no request
                }
                let body = "203.0.113.7\n";
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                if tls.write_all(answer.as_bytes()).and_then(|()| tls.flush()).is_ok() {
                    if let Some(v) = tls.conn.protocol_version() {
                        log.lock().unwrap().push(v);
                    }
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                }
            }
        });
        TlsEcho { url, served }
    }

    fn served(&self) -> Vec<rustls::ProtocolVersion> {
        self.served.lock().unwrap().clone()
    }
}

/// Where the binary looks for CAs in one test.
#[derive(Default)]
struct Trust<'a> {
    /// `ca_file` in the config.
    ca_file: Option<&'a str>,
    /// `SSL_CERT_FILE`.
    env_file: Option<&'a str>,
    /// The system bundle list (`ALIDDNS_TEST_CA_PATHS`); fixture names or absolute paths.
    system: &'a [&'a str],
}

fn path_of(name: &str) -> String {
    if name.starts_with('/') { name.to_string() } else { fixture(name).display().to_string() }
}

/// `aliddns -c CONF ARGS...` with a config for `endpoint` (and `ip_urls`), trusting as `trust` says.
fn run(endpoint: &str, ip_urls: &str, trust: &Trust, args: &[&str]) -> Output {
    run_in(&tempdir("tls"), endpoint, ip_urls, trust, args)
}

/// [`run`] with the config and state file in `dir`, which outlives the run.
fn run_in(dir: &Path, endpoint: &str, ip_urls: &str, trust: &Trust, args: &[&str]) -> Output {
    use std::os::unix::fs::PermissionsExt as _;
    let conf = dir.join("aliddns.conf");
    let mut text = format!(
        "[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint={endpoint}\nretry_delay_ms=10\ntimeout=5\n\
         state_file={}\n",
        dir.join("state").display()
    );
    if !ip_urls.is_empty() {
        text.push_str(&format!("ip_urls={ip_urls}\n"));
    }
    if let Some(ca) = trust.ca_file {
        text.push_str(&format!("ca_file={}\n", path_of(ca)));
    }
    text.push_str("[www]\ndomain=example.com\nsub_domain=www\ntype=A\n");
    std::fs::write(&conf, text).unwrap();
    // Holds a secret: mode 600 keeps the binary's warning about it out of stderr.
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut cmd: Command = aliddns();
    cmd.arg("-c").arg(&conf).args(args);
    cmd.env_remove("SSL_CERT_FILE").env_remove("SSL_CERT_DIR");
    if let Some(f) = trust.env_file {
        cmd.env("SSL_CERT_FILE", path_of(f));
    }
    let system: Vec<String> = trust.system.iter().map(|p| path_of(p)).collect();
    cmd.env("ALIDDNS_TEST_CA_PATHS", system.join(":"));
    cmd.output().expect("run aliddns")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `records list` against `sim`: Ok(stdout) or Err(stderr), asserting the exit codes.
fn list(sim: &Sim, trust: &Trust) -> Result<String, String> {
    let o = run(&sim.endpoint(), "", trust, &["records", "list", "example.com"]);
    match o.status.code() {
        Some(0) => Ok(stdout(&o)),
        Some(1) | Some(2) => Err(stderr(&o)),
        other => panic!("aliddns ended with {other:?}: {}", stderr(&o)),
    }
}

const CA: Trust = Trust { ca_file: Some("ca.pem"), env_file: None, system: &[] };

/// The features the binary under test was built with (`--version`).
fn features() -> Vec<String> {
    let o = aliddns().arg("--version").output().expect("run aliddns --version");
    let out = stdout(&o);
    let line = out.lines().find_map(|l| l.strip_prefix("features:")).unwrap_or_default();
    line.split_whitespace().map(String::from).collect()
}

/// HTTPS tests need a TLS build; an HTTP-only binary under test is reported and skipped.
fn has_tls() -> bool {
    let tls = features().iter().any(|f| f == "tls");
    if !tls {
        eprintln!("binary under test has no TLS: HTTPS tests skipped");
    }
    tls
}

#[test]
fn alidns_over_tls13_and_tls12() {
    if !has_tls() {
        return;
    }
    for versions in [&[&TLS13][..], &[&TLS12][..]] {
        let sim = sim(Cert::Localhost, versions);
        let out = list(&sim, &CA).unwrap_or_else(|e| panic!("records list over {versions:?}: {e}"));
        assert!(out.contains("www A 198.51.100.1"), "{out}");
        assert!(sim.count("DescribeDomainRecords") >= 1);
    }
}

#[test]
fn echo_url_over_tls13_and_tls12() {
    if !has_tls() {
        return;
    }
    for (versions, want) in
        [(&[&TLS13][..], rustls::ProtocolVersion::TLSv1_3), (&[&TLS12][..], rustls::ProtocolVersion::TLSv1_2)]
    {
        let echo = TlsEcho::start(Cert::Localhost, versions);
        let o = run("http://127.0.0.1:9/", &echo.url, &CA, &["ip", "--family", "4"]);
        assert_eq!(o.status.code(), Some(0), "ip over {want:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "203.0.113.7\n");
        assert_eq!(echo.served(), vec![want]);
    }
}

#[test]
fn update_pass_over_https_end_to_end() {
    if !has_tls() {
        return;
    }
    let sim = sim(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let echo = TlsEcho::start(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let o = run(&sim.endpoint(), &echo.url, &CA, &["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "www.example.com A 203.0.113.7 updated");
    let rec = sim.records("example.com").into_iter().find(|r| r.rr == "www").unwrap();
    assert_eq!(rec.value, "203.0.113.7");
    assert_eq!(echo.served().len(), 1);
}

#[test]
fn unknown_issuer_is_rejected() {
    if !has_tls() {
        return;
    }
    let other = Trust { ca_file: Some("other-ca.pem"), ..Default::default() };
    let sim = sim(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let err = list(&sim, &other).expect_err("a server signed by an untrusted CA must be refused");
    assert!(err.contains("UnknownIssuer"), "{err}");
    assert!(sim.calls().is_empty(), "no request may reach an unverified server");
    let echo = TlsEcho::start(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let o = run("http://127.0.0.1:9/", &echo.url, &other, &["ip", "--family", "4"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("UnknownIssuer"), "{}", stderr(&o));
    assert!(echo.served().is_empty());
}

#[test]
fn name_mismatch_is_rejected() {
    if !has_tls() {
        return;
    }
    // Signed by a trusted CA, but for wrong.example, not 127.0.0.1.
    let trust = Trust { ca_file: Some("other-ca.pem"), ..Default::default() };
    let sim = sim(Cert::WrongName, rustls::DEFAULT_VERSIONS);
    let err = list(&sim, &trust).expect_err("a certificate for another name must be refused");
    assert!(err.contains("not valid for name") && err.contains("127.0.0.1"), "{err}");
    assert!(sim.calls().is_empty());
    let echo = TlsEcho::start(Cert::WrongName, rustls::DEFAULT_VERSIONS);
    let o = run("http://127.0.0.1:9/", &echo.url, &trust, &["ip", "--family", "4"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("not valid for name"), "{}", stderr(&o));
    assert!(echo.served().is_empty());
}

#[test]
fn ca_file_comes_before_ssl_cert_file() {
    if !has_tls() {
        return;
    }
    let sim = sim(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let good = Trust { ca_file: Some("ca.pem"), env_file: Some("other-ca.pem"), system: &["other-ca.pem"] };
    list(&sim, &good).expect("ca_file is used");
    let bad = Trust { ca_file: Some("other-ca.pem"), env_file: Some("ca.pem"), system: &["ca.pem"] };
    let err = list(&sim, &bad).expect_err("ca_file alone is trusted, not merged with the others");
    assert!(err.contains("UnknownIssuer"), "{err}");
    let missing = Trust { ca_file: Some("/nonexistent/ca.pem"), env_file: Some("ca.pem"), system: &["ca.pem"] };
    let err = list(&sim, &missing).expect_err("a configured ca_file must exist");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn ssl_cert_file_comes_before_the_system_bundle() {
    if !has_tls() {
        return;
    }
    let sim = sim(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let good = Trust { env_file: Some("ca.pem"), system: &["other-ca.pem"], ..Default::default() };
    list(&sim, &good).expect("SSL_CERT_FILE is used");
    let bad = Trust { env_file: Some("other-ca.pem"), system: &["ca.pem"], ..Default::default() };
    let err = list(&sim, &bad).expect_err("SSL_CERT_FILE wins over the system bundle");
    assert!(err.contains("UnknownIssuer"), "{err}");
    // A SSL_CERT_FILE that does not exist is passed over.
    let gone = Trust { env_file: Some("/nonexistent/env.pem"), system: &["ca.pem"], ..Default::default() };
    list(&sim, &gone).expect("system bundle after a missing SSL_CERT_FILE");
}

#[test]
fn system_bundle_paths_are_tried_in_order() {
    if !has_tls() {
        return;
    }
    let sim = sim(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let skip_missing = Trust { system: &["/nonexistent/a.pem", "ca.pem", "other-ca.pem"], ..Default::default() };
    list(&sim, &skip_missing).expect("the first bundle that exists is used");
    let first_wins = Trust { system: &["/nonexistent/a.pem", "other-ca.pem", "ca.pem"], ..Default::default() };
    let err = list(&sim, &first_wins).expect_err("only the first existing bundle is used");
    assert!(err.contains("UnknownIssuer"), "{err}");
}

#[test]
fn without_any_bundle_embedded_roots_or_a_clear_error() {
    if !has_tls() {
        return;
    }
    let sim = sim(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let none = Trust { system: &["/nonexistent/a.pem", "/nonexistent/b.pem"], ..Default::default() };
    let err = list(&sim, &none).expect_err("the test CA is in no bundle");
    if features().iter().any(|f| f == "embedded-roots") {
        // The Mozilla roots compiled in were used: they do not know the test CA.
        assert!(err.contains("UnknownIssuer"), "{err}");
    } else {
        assert!(err.contains("no CA bundle found"), "{err}");
        assert!(err.contains("/nonexistent/a.pem") && err.contains("/nonexistent/b.pem"), "{err}");
    }
    assert!(sim.calls().is_empty());
}

#[test]
fn a_pass_without_api_calls_never_loads_the_ca_bundle() {
    if !has_tls() {
        return;
    }
    let sim = sim(Cert::Localhost, rustls::DEFAULT_VERSIONS);
    let echo = common::Echo::start("203.0.113.7\n");
    let dir = tempdir("tls-lazy");
    let bundle = dir.join("bundle.pem");
    std::fs::copy(fixture("ca.pem"), &bundle).unwrap();
    let ca = bundle.display().to_string();
    let trust = Trust { ca_file: Some(&ca), ..Default::default() };
    let o = run_in(&dir, &sim.endpoint(), &echo.url, &trust, &["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), "www.example.com A 203.0.113.7 updated");
    // The bundle goes bad; a pass that needs no API call does not notice...
    std::fs::write(&bundle, "not a certificate\n").unwrap();
    sim.reset_calls();
    let o = run_in(&dir, &sim.endpoint(), &echo.url, &trust, &["update"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(sim.calls().is_empty());
    // ...one that calls AliDNS loads it, and fails on it.
    let o = run_in(&dir, &sim.endpoint(), &echo.url, &trust, &["update", "--force"]);
    assert_ne!(o.status.code(), Some(0), "{}", stdout(&o));
    let all = format!("{}{}", stdout(&o), stderr(&o));
    assert!(all.contains("no certificate in it"), "{all}");
    assert!(sim.calls().is_empty());
}
