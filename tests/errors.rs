//! What a user reads when a request fails: each common failure gives a non-empty
//! text that names its cause. The router builds compile `{:?}` to nothing
//! (`-Z fmt-debug=none`, docs/router-builds.md), so a message that leaned on `Debug`
//! — ours or a dependency's — would come out blank there; CI runs these tests
//! against those builds under qemu (`ALIDDNS_BIN`/`ALIDDNS_RUNNER`).

mod common;

use alidns_sim::{Fault, Sim};
use common::{aliddns, tempdir};
use std::path::{Path, PathBuf};
use std::process::Output;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// `aliddns records list example.com` against `endpoint`, with `extra` config lines;
/// returns the error line(s) after asserting a failed run.
fn failure(endpoint: &str, extra: &str) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempdir("errors");
    let conf = dir.join("aliddns.conf");
    let text = format!(
        "[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint={endpoint}\nretry_delay_ms=10\nretries=0\n{extra}"
    );
    std::fs::write(&conf, text).unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o: Output = aliddns()
        .arg("-c")
        .arg(&conf)
        .args(["records", "list", "example.com"])
        .env_remove("SSL_CERT_FILE")
        .env("ALIDDNS_TEST_CA_PATHS", "/nonexistent/ca.pem")
        .output()
        .expect("run aliddns");
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(1), "{err}");
    err
}

/// The `error:` line of `err` must hold every one of `wants` and no blank part: a `{:?}`
/// that printed nothing leaves "...: " at the end, "()" or "( )" behind.
fn assert_names(err: &str, wants: &[&str]) {
    let line = err.lines().find(|l| l.starts_with("error:")).unwrap_or_else(|| panic!("no error line in: {err}"));
    eprintln!("{line}"); // shown with --nocapture: what users of the build under test read
    let text = line.trim_end();
    let blank = text.ends_with(':') || ["()", "( ", " )", ":  ", ": ;", ": ,"].iter().any(|b| text.contains(b));
    assert!(!blank, "blank part in: {line}");
    for w in wants {
        assert!(line.contains(w), "{w:?} missing from: {line}");
    }
}

fn has_tls() -> bool {
    let o = aliddns().arg("--version").output().expect("run aliddns --version");
    let tls = String::from_utf8_lossy(&o.stdout).lines().any(|l| l.starts_with("features:") && l.contains(" tls"));
    if !tls {
        eprintln!("binary under test has no TLS: HTTPS tests skipped");
    }
    tls
}

fn tls_sim(cert: &str, key: &str) -> Sim {
    let sim = Sim::start_tls(&std::fs::read(fixture(cert)).unwrap(), &std::fs::read(fixture(key)).unwrap());
    sim.add_domain("example.com");
    sim
}

#[test]
fn unknown_issuer_names_the_cause() {
    if !has_tls() {
        return;
    }
    let sim = tls_sim("server.pem", "server.key");
    let ca = format!("ca_file={}\n", fixture("other-ca.pem").display());
    let err = failure(&sim.endpoint(), &ca);
    assert_names(&err, &["TLS", "certificate rejected", "UnknownIssuer", "issuer"]);
}

#[test]
fn a_refused_certificate_is_not_retried() {
    if !has_tls() {
        return;
    }
    let sim = tls_sim("server.pem", "server.key");
    let extra = format!("ca_file={}\nretries=2\n", fixture("other-ca.pem").display());
    let err = failure(&sim.endpoint(), &extra);
    assert!(!err.contains("retry"), "a certificate does not change on a retry: {err}");
    assert_names(&err, &["UnknownIssuer"]);
}

#[test]
fn name_mismatch_names_the_host() {
    if !has_tls() {
        return;
    }
    let sim = tls_sim("wrong-name.pem", "wrong-name.key");
    let ca = format!("ca_file={}\n", fixture("other-ca.pem").display());
    let err = failure(&sim.endpoint(), &ca);
    assert_names(&err, &["NotValidForName", "not valid for name 127.0.0.1"]);
    // The names the certificate is for come from webpki's `{:?}`: shown by builds that
    // keep Debug text (the host build), left out — not left empty — by the router builds.
    if std::env::var_os("ALIDDNS_BIN").is_none() {
        assert_names(&err, &["(only for", "wrong.example"]);
    }
}

#[test]
fn tls_to_a_plain_http_port_says_so() {
    if !has_tls() {
        return;
    }
    // A plain-HTTP server that answers whatever arrives (here, a TLS ClientHello).
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let https = format!("https://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::{Read as _, Write as _};
        if let Ok((mut tcp, _)) = listener.accept() {
            let _ = tcp.read(&mut [0u8; 1024]);
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let ca = format!("ca_file={}\n", fixture("ca.pem").display());
    let err = failure(&https, &ca);
    assert_names(&err, &["TLS", "InvalidMessage", "HTTPS port"]);
}

#[test]
fn connection_refused_names_the_cause() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let err = failure(&format!("http://127.0.0.1:{port}/"), "");
    // qemu-user 7.2 has been seen to hand getsockopt(SO_ERROR) the host's errno untranslated:
    // an emulated MIPS binary (ECONNREFUSED is 146 there) then reads 111, for which libc has
    // no text. On a MIPS router the kernel's 146 reads "Connection refused".
    let emulated_mips = std::env::var("ALIDDNS_RUNNER").is_ok_and(|r| r.starts_with("qemu-mips"));
    let cause = if emulated_mips && !err.contains("refused") { "os error 111" } else { "refused" };
    assert_names(&err, &["network", cause]);
}

#[test]
fn timeout_names_the_cause() {
    let sim = Sim::start();
    sim.add_domain("example.com");
    sim.inject(Fault::Delay { count: 1, ms: 2500, action: None });
    let err = failure(&sim.endpoint(), "timeout=1\n");
    assert_names(&err, &["network", "timeout"]);
}

#[test]
fn a_non_json_answer_names_the_cause() {
    let sim = Sim::start();
    sim.add_domain("example.com");
    sim.inject(Fault::Garbage { count: 1, action: None });
    let err = failure(&sim.endpoint(), "");
    assert_names(&err, &["JSON"]);
}

#[test]
fn an_alidns_error_carries_code_and_message() {
    let sim = Sim::start();
    sim.add_domain("example.com");
    sim.inject(Fault::Error {
        count: 1,
        status: 400,
        code: "InvalidDomainName.NoExist".into(),
        message: "The specified domain name does not exist.".into(),
        action: None,
    });
    let err = failure(&sim.endpoint(), "");
    assert_names(&err, &["InvalidDomainName.NoExist", "The specified domain name does not exist.", "HTTP 400"]);
}
