//! `--syslog` as the OpenWrt init script uses it: the real binary sends each line
//! to a datagram socket (a stand-in for /dev/log, injected with the test-only
//! `ALIDDNS_SYSLOG_SOCKET`), facility daemon, with a priority per line. `check`
//! reports the config's first error with file, line and key.

mod common;

use alidns_sim::Sim;
use common::{Echo, TempDir, aliddns, tempdir};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SECRET: &str = "s3cretKeyNeverLogged";

/// A bound datagram socket in a temp dir (removed with the sink) whose thread reads
/// what the binary sends while it runs, as a syslog daemon does (the kernel
/// queues only a few datagrams).
struct LogSink {
    dir: TempDir,
    path: PathBuf,
    lines: Arc<Mutex<Vec<String>>>,
}

impl LogSink {
    fn new() -> LogSink {
        let dir = tempdir("syslog");
        let path = dir.join("log");
        let sock = UnixDatagram::bind(&path).expect("bind the test syslog socket");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // Ends when the test process exits; the socket file goes with the dir.
            while let Ok(n) = sock.recv(&mut buf) {
                sink.lock().unwrap().push(String::from_utf8_lossy(&buf[..n]).into_owned());
            }
        });
        LogSink { dir, path, lines }
    }

    /// Every datagram received since the last call, as `(priority, text after the
    /// tag)`. The binary has exited, so a short wait covers datagrams in flight.
    fn drain(&self) -> Vec<(u8, String)> {
        std::thread::sleep(Duration::from_millis(100));
        self.lines.lock().unwrap().drain(..).map(|d| parse(&d)).collect()
    }
}

/// `<PRI>Mmm dd hh:mm:ss aliddns[PID]: text` -> (PRI, text); panics on any other shape.
fn parse(datagram: &str) -> (u8, String) {
    let rest = datagram.strip_prefix('<').unwrap_or_else(|| panic!("no <PRI>: {datagram:?}"));
    let (pri, rest) = rest.split_once('>').unwrap_or_else(|| panic!("no <PRI>: {datagram:?}"));
    let pri: u8 = pri.parse().unwrap_or_else(|_| panic!("bad PRI: {datagram:?}"));
    let b = rest.as_bytes();
    assert!(rest.len() > 16 && b[3] == b' ' && b[9] == b':' && b[15] == b' ', "no RFC 3164 timestamp: {datagram:?}");
    let (tag, text) = rest[16..].split_once(": ").unwrap_or_else(|| panic!("no tag: {datagram:?}"));
    assert!(tag.starts_with("aliddns[") && tag.ends_with(']'), "tag {tag:?} in {datagram:?}");
    (pri, text.to_string())
}

fn run(sink: &LogSink, conf: &Path, args: &[&str]) -> Output {
    aliddns()
        .arg("--syslog")
        .arg("-c")
        .arg(conf)
        .args(args)
        .env("ALIDDNS_SYSLOG_SOCKET", &sink.path)
        .output()
        .expect("run aliddns")
}

const DAEMON_ERR: u8 = 27;
const DAEMON_WARNING: u8 = 28;
const DAEMON_NOTICE: u8 = 29;
const DAEMON_INFO: u8 = 30;
const DAEMON_DEBUG: u8 = 31;

#[test]
fn update_logs_changes_as_notice_failures_as_err_warnings_as_warning() {
    let sim = Sim::start();
    sim.add_domain("example.com");
    sim.add_key("LTAItestid0001", SECRET);
    let echo = Echo::start("203.0.113.7\n");
    let sink = LogSink::new();
    let conf = sink.dir.join("aliddns.conf");
    std::fs::write(
        &conf,
        format!(
            "[DEFAULT]\naccess_id=LTAItestid0001\naccess_key={SECRET}\nendpoint={}\nip_urls={}\nstate_file={}\n\
             retry_delay_ms=10\nno_such_key=1\n\
             [www]\ndomain=example.com\nsub_domain=www\ncreate=true\n\
             [gone]\ndomain=example.com\nsub_domain=gone\n",
            sim.endpoint(),
            echo.url,
            sink.dir.join("state").display()
        ),
    )
    .unwrap();

    let o = run(&sink, &conf, &["-v", "update"]);
    assert_eq!(o.status.code(), Some(1), "the missing record fails the pass");
    assert!(o.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&o.stdout));
    assert!(o.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&o.stderr));
    let lines = sink.drain();
    let find = |needle: &str| {
        lines
            .iter()
            .find(|(_, t)| t.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?} in {lines:#?}"))
    };
    assert_eq!(find("www.example.com A 203.0.113.7 created").0, DAEMON_NOTICE);
    assert_eq!(find("gone.example.com A 203.0.113.7 missing").0, DAEMON_ERR);
    assert_eq!(find("no_such_key").0, DAEMON_WARNING);
    assert!(lines.iter().any(|(p, _)| *p == DAEMON_DEBUG), "-v sends debug lines: {lines:#?}");
    for (p, t) in &lines {
        assert!((DAEMON_ERR..=DAEMON_DEBUG).contains(p), "facility daemon only: <{p}> {t}");
        assert!(!t.contains(SECRET), "secret in a log line: {t}");
        assert!(!t.starts_with("error: ") && !t.starts_with("warning: "), "level is in the priority: {t}");
    }

    // A second pass changes nothing: one routine line per record is info, not notice.
    run(&sink, &conf, &["update"]);
    let lines = sink.drain();
    let www = lines.iter().find(|(_, t)| t.contains("www.example.com A 203.0.113.7 unchanged"));
    assert_eq!(www.map(|l| l.0), Some(DAEMON_INFO), "{lines:#?}");
}

#[test]
fn check_logs_the_precise_config_error_at_err_and_a_summary_at_info() {
    let sink = LogSink::new();
    let conf = sink.dir.join("aliddns");
    std::fs::write(
        &conf,
        format!(
            "config global 'global'\n\toption enabled '1'\n\toption access_key '{SECRET}'\n\toption interval '5'\n"
        ),
    )
    .unwrap();
    let o = run(&sink, &conf, &["check"]);
    assert_eq!(o.status.code(), Some(2));
    let lines = sink.drain();
    let want = format!("{}:4: interval: '5' must be a whole number from 10 to 604800", conf.display());
    assert!(lines.iter().any(|(p, t)| *p == DAEMON_ERR && t.contains(&want)), "{lines:#?}");
    assert!(lines.iter().all(|(_, t)| !t.contains(SECRET)), "{lines:#?}");

    std::fs::write(
        &conf,
        "config global 'global'\n\toption enabled '1'\n\toption interval '60'\n\n\
         config record\n\toption domain 'example.com'\n\toption rr 'www'\n",
    )
    .unwrap();
    let o = run(&sink, &conf, &["check"]);
    assert_eq!(o.status.code(), Some(0), "no credentials are needed to check");
    let lines = sink.drain();
    let want = format!("{}: ok: DDNS enabled, 1 record(s), every 60s; serve off", conf.display());
    assert_eq!(lines, vec![(DAEMON_INFO, want)]);
}

#[test]
fn check_without_syslog_prints_to_stdout_and_stderr() {
    let dir = tempdir("check");
    let conf = dir.join("aliddns.conf");
    std::fs::write(&conf, "[DEFAULT]\ninterval=60\n[httpdns]\nsecret=short\n").unwrap();
    let o = aliddns().arg("-c").arg(&conf).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("secret is too short") && !err.contains("short\n"), "{err}");

    std::fs::write(&conf, "[DEFAULT]\ninterval=60\n[www]\ndomain=example.com\nsub_domain=www\n").unwrap();
    let o = aliddns().arg("-c").arg(&conf).arg("check").output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!("{}: ok: DDNS enabled, 1 record(s), every 60s; serve off\n", conf.display())
    );
}

#[test]
fn without_a_syslog_daemon_lines_still_reach_stderr() {
    let dir = tempdir("nosyslog");
    let conf = dir.join("aliddns.conf");
    std::fs::write(&conf, "[DEFAULT]\ninterval=5\n").unwrap();
    let o = aliddns()
        .args(["--syslog", "-c"])
        .arg(&conf)
        .arg("check")
        .env("ALIDDNS_SYSLOG_SOCKET", dir.join("nobody-listens"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("interval: '5' must be"), "{err}");
}
