//! The documentation is tested: the commands and config examples in README.md,
//! README.zh-CN.md and every page under docs/ (both languages) are run by the real
//! binary against the AliDNS simulator, the config keys of docs/configuration.md are
//! checked against the parser's own key lists, and every relative link must resolve.
//!
//! # Extraction rules (follow them when you write documentation)
//!
//! Files: `README.md`, `README.zh-CN.md` and every `*.md` under `docs/`.
//!
//! 1. **```console blocks**: a line `$ aliddns ARGS` is a command; the lines after it,
//!    up to the next line starting with `$ ` or the end of the block, are its expected
//!    standard output (show stderr, e.g. `-v` output, in a ```text block instead).
//!    The only shell allowed after the arguments is `| head -N`. The commands of one
//!    block run in order against one simulator, so a record added by one is there
//!    for the next. The output is compared line by line, by shape: a token that is
//!    an IP address matches any IP address, a token of digits any digits (and a
//!    documented record id is replaced by the real one in later commands), another
//!    token with a digit (a time, a duration) any token with a digit, JSON arrays
//!    match when their objects have the same keys; any other token must be equal.
//!    Lines starting with `$ ` that do not run `aliddns` are not run.
//! 2. **```sh blocks** (also `bash`, `shell`): a line whose first word is `aliddns`,
//!    `./target/release/aliddns` or a path ending in `bin/aliddns` is a command; it
//!    ends at the first unquoted `#`, `;`, `&`, `|`, `<` or `>`. Its output is not
//!    compared. Other lines are not run.
//! 3. **How a command runs**: `-c FILE` is replaced by a test config (credentials and
//!    endpoint of the simulator, a state file in a temp dir, the echo URLs of a
//!    loopback echo server, one record `home.example.com AAAA` on `pppoe-wan`, and an
//!    `[httpdns]` section on 127.0.0.1; the account has one zone, `example.com`) — except `-c examples/aliddns.conf`, which
//!    runs the shipped sample as it is, without credentials. Without `-c`, the test
//!    config is added. `--endpoint` gets the simulator's URL, `--listen` a loopback
//!    port. Addresses come from the captured router in `tests/fixtures/proc-router`
//!    (devices `pppoe-wan`, `br-lan`, `eth0`, `lo`; `auto` is `pppoe-wan`).
//!    `update` gets `--dry-run` (and its output is then not compared); `run` and
//!    `serve` are started, must log a first line while still running, and must exit 0
//!    on SIGTERM. Every other command must exit 0 (the sample: 0, or 1 with one line per
//!    record saying why there is no address).
//! 4. **```ini and ```uci blocks** are config examples: each is written to a file,
//!    with the simulator's credentials and endpoint and the test's state file and
//!    echo URLs set through `ALIDDNS_*` overrides. `aliddns check` must accept it
//!    (exit 0, no "unknown" warning); when it has records, `update --dry-run` must
//!    exit 0 or 1 (a record that does not exist yet is `missing`) and no record may
//!    fail to get an address. Fragments are fine (a lone `[httpdns]` section). An
//!    example that is meant to be wrong goes in a ```text block.
//! 5. **Keys**: in `docs/configuration.md` (and its zh-CN twin), a table under a
//!    heading naming a section (`` `[DEFAULT]` ``, `` `config record` ``,
//!    `` `[httpdns]` ``, `` `[feature_public_ip_from_nic]` ``) lists that section's
//!    keys in backticks in its first column. They must be exactly the lists the
//!    parser uses (`GLOBAL_KEYS`, `RECORD_KEYS`, `HTTPDNS_KEYS`, `NIC_FEATURE_KEYS`,
//!    found by name anywhere under `src/`, today `src/config/document.rs`), and the
//!    binary must accept each without a warning.
//! 6. **Links**: a relative link `[text](path#anchor)` must name an existing file and,
//!    with `#anchor`, a heading of it (GitHub's slugs). A page with a twin in the other
//!    language (`docs/X.md` and `docs/zh-CN/X.md`, `README.md` and `README.zh-CN.md`)
//!    links to it.

mod common;

use alidns_sim::Sim;
use common::{Echo, TempDir, aliddns, tempdir};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const PROC_ROUTER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/proc-router");
/// `getifaddrs` stand-in matching the captured router: public IPv4 on the PPPoE link.
const IPV4_ADDRS: &str = "lo 127.0.0.1\neth0 192.168.0.2\npppoe-wan 203.0.113.7\nbr-lan 192.168.1.1\n";
const SAMPLE: &str = "examples/aliddns.conf";
/// No doc command may take longer than this (a network timeout would).
const DEADLINE: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------- extraction

/// A fenced code block of a Markdown file.
struct Block {
    file: PathBuf,
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    body: Vec<String>,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", rel(&self.file), self.line)
    }
}

fn rel(p: &Path) -> String {
    p.strip_prefix(ROOT).unwrap_or(p).display().to_string()
}

/// README.md, README.zh-CN.md and docs/**/*.md.
fn doc_files() -> Vec<PathBuf> {
    let mut files = vec![PathBuf::from(ROOT).join("README.md")];
    let zh = PathBuf::from(ROOT).join("README.zh-CN.md");
    if zh.exists() {
        files.push(zh);
    }
    let mut dirs = vec![PathBuf::from(ROOT).join("docs")];
    while let Some(d) = dirs.pop() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files
}

fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    let mut open: Option<(usize, usize, String)> = None; // (line, fence indent, lang)
    let mut body = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let indent = raw.len() - raw.trim_start().len();
        let t = raw.trim_start();
        match &open {
            None if t.starts_with("```") => {
                let lang = t.trim_start_matches('`').split_whitespace().next().unwrap_or("").to_string();
                open = Some((i + 1, indent, lang));
                body.clear();
            }
            None => {}
            Some((line, _, lang)) if t.starts_with("```") => {
                out.push(Block {
                    file: file.to_path_buf(),
                    line: *line,
                    lang: lang.clone(),
                    body: std::mem::take(&mut body),
                });
                open = None;
            }
            Some((_, fence_indent, _)) => {
                // Code in a list item is indented like its fence.
                let cut = indent.min(*fence_indent);
                body.push(raw[cut..].to_string());
            }
        }
    }
    assert!(open.is_none(), "{}: unclosed code fence", rel(file));
    out
}

/// Splits a shell line into words, honouring quotes; stops at the first unquoted
/// shell operator or comment. Returns the words and whether it stopped early.
fn shell_words(line: &str) -> (Vec<String>, Option<String>) {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    let mut rest = None;
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                in_word = true;
                for c in chars.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    cur.push(c);
                }
            }
            '"' => {
                in_word = true;
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => cur.extend(chars.next()),
                        c => cur.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                cur.extend(chars.next());
            }
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '#' | ';' | '&' | '|' | '<' | '>' if !in_word || c != '#' => {
                let mut r = String::from(c);
                r.extend(chars.by_ref());
                rest = Some(r);
                break;
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    (words, rest)
}

fn is_aliddns(word: &str) -> bool {
    // Not /etc/init.d/aliddns: that is the OpenWrt service script.
    word == "aliddns" || word.ends_with("bin/aliddns") || word.ends_with("release/aliddns")
}

/// One documented command.
struct DocCommand {
    at: String,
    args: Vec<String>,
    /// `| head -N`.
    head: Option<usize>,
    /// Expected stdout lines; None when the docs do not show it (```sh blocks).
    expected: Option<Vec<String>>,
}

fn console_commands(b: &Block) -> Vec<DocCommand> {
    let mut cmds: Vec<DocCommand> = Vec::new();
    let mut current: Option<DocCommand> = None;
    for (i, line) in b.body.iter().enumerate() {
        if let Some(cmdline) = line.strip_prefix("$ ") {
            cmds.extend(current.take());
            let (words, rest) = shell_words(cmdline);
            if !words.first().is_some_and(|w| is_aliddns(w)) {
                continue;
            }
            let head = rest.map(|r| {
                let r = r.trim();
                let n = r
                    .strip_prefix('|')
                    .map(str::trim)
                    .and_then(|r| r.strip_prefix("head -"))
                    .and_then(|n| n.parse().ok());
                n.unwrap_or_else(|| {
                    panic!(
                        "{}:{}: only `| head -N` may follow a console command, not {r:?}",
                        rel(&b.file),
                        b.line + 1 + i
                    )
                })
            });
            current = Some(DocCommand {
                at: format!("{}:{}", rel(&b.file), b.line + 1 + i),
                args: words[1..].to_vec(),
                head,
                expected: Some(Vec::new()),
            });
        } else if let Some(c) = current.as_mut() {
            c.expected.as_mut().unwrap().push(line.clone());
        }
    }
    cmds.extend(current);
    cmds
}

fn sh_commands(b: &Block) -> Vec<DocCommand> {
    let mut out = Vec::new();
    for (i, line) in b.body.iter().enumerate() {
        let (words, _) = shell_words(line.trim());
        if words.first().is_some_and(|w| is_aliddns(w)) {
            out.push(DocCommand {
                at: format!("{}:{}", rel(&b.file), b.line + 1 + i),
                args: words[1..].to_vec(),
                head: None,
                expected: None,
            });
        }
    }
    out
}

// ---------------------------------------------------------------- the test world

/// A simulator, an echo server and a test config, shared by the commands of a block.
struct World {
    sim: Sim,
    echo: Echo,
    /// Removed with everything in it when the world is dropped.
    dir: TempDir,
    conf: PathBuf,
    ipv4: PathBuf,
}

impl World {
    fn new() -> World {
        let sim = Sim::start();
        sim.add_domain("example.com");
        let echo = Echo::start("203.0.113.7\n");
        let dir = tempdir("docs");
        let ipv4 = dir.join("ipv4");
        std::fs::write(&ipv4, IPV4_ADDRS).unwrap();
        let conf = dir.join("aliddns.conf");
        write_private(
            &conf,
            &format!(
                "[DEFAULT]\naccess_id=testid\naccess_key=testsecret\nendpoint={}\nstate_file={}\n\
                 ip_urls={}\nipv6_urls={}\nretry_delay_ms=10\ninterval=600\n\n\
                 [home6]\ndomain=example.com\nsub_domain=home\ntype=AAAA\ninterface=pppoe-wan\ncreate=true\n\n\
                 [httpdns]\nlisten=127.0.0.1:0\nsecret=0123456789abcdef0123\ndomains=example.com\n",
                sim.endpoint(),
                dir.join("state").display(),
                echo.url,
                echo.url,
            ),
        );
        World { sim, echo, dir, conf, ipv4 }
    }

    /// The binary with the captured router as its address source.
    fn cmd(&self) -> Command {
        let mut c = aliddns();
        c.env("ALIDDNS_PROC_ROOT", PROC_ROUTER)
            .env("ALIDDNS_IPV4_ADDRS", &self.ipv4)
            .env("ALIDDNS_STATE_FILE", self.dir.join("state"));
        c
    }

    /// Overrides that point any config at the simulator and the test's files.
    fn overrides(&self, c: &mut Command) {
        c.env("ALIDDNS_ACCESS_ID", "testid")
            .env("ALIDDNS_ACCESS_KEY", "testsecret")
            .env("ALIDDNS_ENDPOINT", self.sim.endpoint())
            .env("ALIDDNS_STATE_FILE", self.dir.join("state"))
            .env("ALIDDNS_IP_URLS", &self.echo.url)
            .env("ALIDDNS_IPV6_URLS", &self.echo.url)
            .env("ALIDDNS_RETRY_DELAY_MS", "10");
    }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// Runs to completion within [`DEADLINE`].
fn output(mut c: Command, at: &str) -> Output {
    let child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn aliddns");
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(o) => o.expect("wait for aliddns"),
        Err(_) => {
            // SAFETY: kill(2) on the pid of our own child.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
            panic!("{at}: still running after {DEADLINE:?}");
        }
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Where a global option takes a value.
fn takes_value(opt: &str) -> bool {
    matches!(opt, "-c" | "--config" | "--endpoint")
}

/// The subcommand: the first word that is not a global option or its value.
fn subcommand(args: &[String]) -> Option<&str> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        if takes_value(a) {
            i += 2;
        } else if a.starts_with('-') {
            i += 1;
        } else {
            return Some(a);
        }
    }
    None
}

/// Rewrites a documented command for the test world (rule 3); returns the args and
/// whether it uses the shipped sample config.
fn rewrite(world: &World, args: &[String], ids: &HashMap<String, String>) -> (Vec<String>, bool) {
    let mut out = Vec::new();
    let mut sample = false;
    let mut has_config = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let (opt, inline) = match a.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_string())),
            _ => (a, None),
        };
        let value = || inline.clone().or_else(|| args.get(i + 1).cloned()).unwrap_or_default();
        let step = if inline.is_some() { 1 } else { 2 };
        match opt {
            "-c" | "--config" => {
                has_config = true;
                if value() == SAMPLE {
                    sample = true;
                    out.extend(["-c".to_string(), format!("{ROOT}/{SAMPLE}")]);
                } else {
                    out.extend(["-c".to_string(), world.conf.display().to_string()]);
                }
                i += step;
            }
            "--endpoint" => {
                out.extend(["--endpoint".to_string(), world.sim.endpoint()]);
                i += step;
            }
            "--listen" => {
                out.extend(["--listen".to_string(), "127.0.0.1:0".to_string()]);
                i += step;
            }
            _ => {
                out.push(ids.get(a).cloned().unwrap_or_else(|| a.to_string()));
                i += 1;
            }
        }
    }
    if !has_config {
        out.splice(0..0, ["-c".to_string(), world.conf.display().to_string()]);
    }
    if subcommand(&out) == Some("update") && !out.iter().any(|a| a == "--dry-run") {
        out.push("--dry-run".into());
    }
    (out, sample)
}

// ---------------------------------------------------------------- output shapes

fn is_ip(t: &str) -> bool {
    t.parse::<std::net::IpAddr>().is_ok()
}

fn has_digit(t: &str) -> bool {
    t.bytes().any(|b| b.is_ascii_digit())
}

fn is_digits(t: &str) -> bool {
    !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit())
}

/// The shape of a JSON value: object keys and value kinds, recursively.
fn json_shape(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Array(a) => {
            format!("[{}]", a.iter().map(json_shape).collect::<BTreeSet<_>>().into_iter().collect::<Vec<_>>().join("|"))
        }
        Value::Object(o) => {
            format!("{{{}}}", o.iter().map(|(k, v)| format!("{k}:{}", json_shape(v))).collect::<Vec<_>>().join(","))
        }
        Value::String(_) => "s".into(),
        Value::Number(_) => "n".into(),
        Value::Bool(_) => "b".into(),
        Value::Null => "null".into(),
    }
}

/// Compares one documented output line with an actual one (rule 1); learns ids.
fn same_shape(expected: &str, actual: &str, ids: &mut HashMap<String, String>) -> bool {
    if let (Ok(e), Ok(a)) =
        (serde_json::from_str::<serde_json::Value>(expected), serde_json::from_str::<serde_json::Value>(actual))
        && (e.is_array() || e.is_object())
    {
        // `null` fields (e.g. an A record's priority) have no fixed kind; compare keys.
        let keys = |v: &serde_json::Value| json_shape(v).replace(":null", ":s").replace(":n", ":s").replace(":b", ":s");
        return keys(&e) == keys(&a);
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.split_whitespace().collect(), actual.split_whitespace().collect());
    if e.len() != a.len() {
        return false;
    }
    let mut learned = Vec::new();
    for (e, a) in e.iter().zip(&a) {
        let ok = if is_ip(e) {
            is_ip(a)
        } else if is_digits(e) {
            learned.push((e.to_string(), a.to_string()));
            is_digits(a)
        } else if has_digit(e) {
            has_digit(a) // times, durations, sizes: `17:02:11`, `42s`, `3.1MB`
        } else {
            e == a
        };
        if !ok {
            return false;
        }
    }
    for (e, a) in learned {
        ids.entry(e).or_insert(a);
    }
    true
}

// ---------------------------------------------------------------- running commands

/// Runs one documented command in `world`; panics with the location on failure.
fn run_doc_command(world: &World, c: &DocCommand, ids: &mut HashMap<String, String>) {
    let (args, sample) = rewrite(world, &c.args, ids);
    let sub = subcommand(&args).unwrap_or("");
    let shown = format!("aliddns {}", c.args.join(" "));
    if matches!(sub, "run" | "serve") && !args.iter().any(|a| a == "-h" || a == "--help") {
        return run_daemon(world, c, &args, &shown);
    }
    let mut cmd = world.cmd();
    cmd.args(&args);
    let o = output(cmd, &c.at);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    let code = o.status.code();
    if sample {
        check_sample_output(&c.at, &shown, code, &out, &err);
        return;
    }
    assert_eq!(code, Some(0), "{}: `{shown}` (run as {args:?}) exited {code:?}\nstdout:\n{out}stderr:\n{err}", c.at);
    let Some(expected) = &c.expected else { return };
    if sub == "update" && !c.args.iter().any(|a| a == "--dry-run") {
        return; // run as a dry run: its output says "dry-run", not what the docs show
    }
    let mut actual: Vec<&str> = out.lines().collect();
    if let Some(n) = c.head {
        actual.truncate(n);
    }
    let expected: Vec<&str> = expected.iter().map(String::as_str).filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(
        expected.len(),
        actual.len(),
        "{}: `{shown}` printed {} lines, the docs show {}\nactual:\n{out}",
        c.at,
        actual.len(),
        expected.len()
    );
    for (e, a) in expected.iter().zip(&actual) {
        assert!(same_shape(e, a, ids), "{}: `{shown}`: the docs show\n  {e}\nbut it printed\n  {a}", c.at);
    }
}

/// The sample config on a machine with no credentials: a plan per record, or a line
/// per record saying why there is no public address; never a config error.
fn check_sample_output(at: &str, shown: &str, code: Option<i32>, out: &str, err: &str) {
    assert!(matches!(code, Some(0 | 1)), "{at}: `{shown}` exited {code:?}\nstdout:\n{out}stderr:\n{err}");
    if !shown.contains("update") {
        return;
    }
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{at}: one line per record of {SAMPLE}:\n{out}{err}");
    for l in lines {
        assert!(
            l.contains(" dry-run: ") || l.split_once(" - failed: ").is_some_and(|(_, why)| why.len() > 10),
            "{at}: neither a plan nor a reason: {l}"
        );
    }
}

/// `run` and `serve`: started, they log their first line (a pass's result, or
/// "listening") while still running, and exit 0 on SIGTERM.
fn run_daemon(world: &World, c: &DocCommand, args: &[String], shown: &str) {
    use std::io::{BufRead, BufReader, Read};
    let mut cmd = world.cmd();
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child: Child = cmd.spawn().expect("spawn aliddns");
    let mut stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut first = String::new();
        let _ = stderr.read_line(&mut first);
        let _ = tx.send(first.clone());
        let mut rest = String::new();
        let _ = stderr.read_to_string(&mut rest);
        first + &rest
    });
    let first = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    if let Some(status) = child.try_wait().unwrap() {
        panic!("{}: `{shown}` exited at once ({status})\nstderr:\n{}", c.at, reader.join().unwrap());
    }
    assert!(!first.is_empty(), "{}: `{shown}` logged nothing within 10 s", c.at);
    // SAFETY: kill(2) on the pid of our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{}: `{shown}` did not stop on SIGTERM", c.at);
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let log = reader.join().unwrap();
    assert_eq!(status.code(), Some(0), "{}: `{shown}` on SIGTERM: {status}\nstderr:\n{log}", c.at);
}

#[test]
fn documented_commands_run_against_the_simulator() {
    let mut count = 0;
    for file in doc_files() {
        for b in blocks(&file) {
            let cmds = match b.lang.as_str() {
                "console" => console_commands(&b),
                "sh" | "bash" | "shell" => sh_commands(&b),
                _ => continue,
            };
            if cmds.is_empty() {
                continue;
            }
            let world = World::new();
            let mut ids = HashMap::new();
            for c in &cmds {
                eprintln!("{}: aliddns {}", c.at, c.args.join(" "));
                run_doc_command(&world, c, &mut ids);
                count += 1;
            }
        }
    }
    // The README's own dry run and the command reference are there at least.
    assert!(count >= 12, "only {count} documented commands found: is the extraction broken?");
}

// ---------------------------------------------------------------- config examples

/// Whether a config example has a record section.
fn has_records(lang: &str, body: &str) -> bool {
    body.lines().map(str::trim).any(|l| match lang {
        "uci" => l.starts_with("config record"),
        _ => {
            l.starts_with('[')
                && l.ends_with(']')
                && !matches!(l, "[DEFAULT]" | "[httpdns]")
                && !l.starts_with("[feature_")
        }
    })
}

#[test]
fn documented_config_examples_load_cleanly() {
    let mut count = 0;
    for file in doc_files() {
        for b in blocks(&file).into_iter().filter(|b| matches!(b.lang.as_str(), "ini" | "uci")) {
            let world = World::new();
            let body = b.body.join("\n") + "\n";
            let path = world.dir.join(if b.lang == "uci" { "aliddns.uci" } else { "aliddns.ini" });
            write_private(&path, &body);
            let run = |args: &[&str]| {
                let mut cmd = world.cmd();
                world.overrides(&mut cmd);
                cmd.arg("-c").arg(&path).args(args);
                let o = output(cmd, &b.at());
                (o.status.code(), text(&o.stdout), text(&o.stderr))
            };
            // `check` validates every section as update, run and serve would.
            let (code, out, err) = run(&["check"]);
            assert_eq!(
                code,
                Some(0),
                "{}: `aliddns check` of the example failed\nstdout:\n{out}stderr:\n{err}",
                b.at()
            );
            assert!(!err.contains("unknown"), "{}: config example has unknown keys or sections:\n{err}", b.at());
            if has_records(&b.lang, &body) {
                let (code, out, err) = run(&["update", "--dry-run"]);
                assert!(
                    matches!(code, Some(0 | 1)),
                    "{}: dry run exited {code:?}\nstdout:\n{out}stderr:\n{err}",
                    b.at()
                );
                assert!(!out.contains(" failed: "), "{}: a record of the example gets no address:\n{out}{err}", b.at());
            }
            count += 1;
        }
    }
    assert!(count >= 4, "only {count} config examples found: is the extraction broken?");
}

// ---------------------------------------------------------------- keys

/// Every Rust source file under src/, concatenated: the key lists are found by
/// name wherever the config module keeps them.
fn all_sources() -> String {
    let mut out = String::new();
    let mut dirs = vec![PathBuf::from(ROOT).join("src")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push_str(&std::fs::read_to_string(&p).unwrap());
            }
        }
    }
    out
}

/// The string list `pub const NAME: &[&str] = &[...]` in src/.
fn code_list(src: &str, name: &str) -> BTreeSet<String> {
    let start = src.find(&format!("pub const {name}: &[&str] = &[")).unwrap_or_else(|| {
        panic!("no `pub const {name}: &[&str]` under src/: tests/docs.rs reads the parser's key lists from there")
    });
    let body = &src[start..];
    let body = &body[body.find("= &[").unwrap() + 4..body.find("];").unwrap()];
    body.split(',').map(|s| s.trim().trim_matches('"').to_string()).filter(|s| !s.is_empty()).collect()
}

/// The lines of a Markdown text outside fenced code (a closing fence line counts as outside).
fn outside_fences(text: &str) -> impl Iterator<Item = &str> {
    let mut in_fence = false;
    text.lines().filter(move |line| {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        !in_fence
    })
}

/// Section → keys documented in the tables of a configuration page (rule 5).
fn documented_keys(page: &Path) -> BTreeMap<&'static str, BTreeSet<String>> {
    let text = std::fs::read_to_string(page).unwrap_or_else(|e| panic!("{}: {e}", rel(page)));
    let mut out: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut section: Option<&'static str> = None;
    for line in outside_fences(&text) {
        if line.starts_with('#') {
            section = [
                ("`[DEFAULT]`", "global"),
                ("`config record`", "record"),
                ("`[httpdns]`", "httpdns"),
                ("`[feature_public_ip_from_nic]`", "feature"),
            ]
            .iter()
            .find(|(tag, _)| line.contains(tag))
            .map(|(_, s)| *s);
            continue;
        }
        let (Some(s), Some(row)) = (section, line.strip_prefix('|')) else { continue };
        let first = row.split('|').next().unwrap_or("");
        for (i, part) in first.split('`').enumerate() {
            if i % 2 == 1
                && !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            {
                out.entry(s).or_default().insert(part.to_string());
            }
        }
    }
    out
}

/// Whether the binary treats `key` as unknown in a section. `key=` (empty: the
/// default for most keys) comes first, before a minimal valid section. An unknown
/// key is warned about and ignored (exit 0); a known one is accepted, or, where an
/// empty value is not allowed, rejected with an error naming that key (exit 2).
fn warns_about(world: &World, section: &str, key: &str) -> bool {
    let (header, base) = match section {
        "global" => ("[DEFAULT]", ""),
        "record" => ("[probe]", "domain=example.com\nsub_domain=home\ntype=AAAA\ninterface=pppoe-wan\n"),
        "httpdns" => ("[httpdns]", "secret=0123456789abcdef0123\n"),
        "feature" => ("[feature_public_ip_from_nic]", ""),
        other => panic!("no section {other}"),
    };
    let path = world.dir.join(format!("probe-{section}-{key}.conf"));
    write_private(&path, &format!("{header}\n{key}=\n{base}"));
    let mut cmd = world.cmd();
    world.overrides(&mut cmd);
    cmd.arg("-c").arg(&path).arg("check");
    let o = output(cmd, &format!("probe {section} {key}"));
    let err = text(&o.stderr);
    match o.status.code() {
        Some(0) => err.contains(&format!(": {key}: unknown key")),
        Some(2) if err.contains(&format!(":2: {key}: ")) => false,
        code => panic!("probe {section} {key}: exit {code:?}: {err}"),
    }
}

#[test]
fn configuration_pages_document_exactly_the_keys_the_parser_knows() {
    let src = all_sources();
    let code: BTreeMap<&str, BTreeSet<String>> = [
        ("global", code_list(&src, "GLOBAL_KEYS")),
        ("record", code_list(&src, "RECORD_KEYS")),
        ("httpdns", code_list(&src, "HTTPDNS_KEYS")),
        ("feature", code_list(&src, "NIC_FEATURE_KEYS")),
    ]
    .into_iter()
    .collect();
    let world = World::new();
    // The lists read from the source are the ones the binary uses, and the probe works.
    for (section, keys) in &code {
        assert!(!keys.is_empty(), "no {section} keys read from src/");
        for k in keys {
            assert!(!warns_about(&world, section, k), "the binary warns about {k} in {section}: stale key list?");
        }
        assert!(warns_about(&world, section, "no_such_key_for_docs"), "the unknown-key probe of {section} is broken");
    }
    let mut pages = vec![PathBuf::from(ROOT).join("docs/configuration.md")];
    let zh = PathBuf::from(ROOT).join("docs/zh-CN/configuration.md");
    if zh.exists() {
        pages.push(zh);
    }
    for page in pages {
        let docs = documented_keys(&page);
        for (section, keys) in &code {
            let documented = docs.get(section).cloned().unwrap_or_default();
            let undocumented: Vec<_> = keys.difference(&documented).collect();
            let unknown: Vec<_> = documented.difference(keys).collect();
            assert!(
                undocumented.is_empty() && unknown.is_empty(),
                "{}: {section} keys: the parser knows {undocumented:?} but the page does not document them; \
                 the page documents {unknown:?} but the parser does not know them",
                rel(&page)
            );
        }
    }
}

// ---------------------------------------------------------------- links

/// GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

fn anchors(file: &Path) -> BTreeSet<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = BTreeSet::new();
    for line in outside_fences(&text) {
        if !line.starts_with('#') {
            continue;
        }
        let s = slug(line.trim_start_matches('#'));
        let n = seen.entry(s.clone()).or_insert(0);
        out.insert(if *n == 0 { s.clone() } else { format!("{s}-{n}") });
        *n += 1;
    }
    out
}

/// Relative link targets `(path#anchor)` of a Markdown file, outside code.
fn links(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).unwrap();
    let mut out = Vec::new();
    for line in outside_fences(&text) {
        let mut rest = line;
        while let Some(i) = rest.find("](") {
            rest = &rest[i + 2..];
            let Some(end) = rest.find(')') else { break };
            let target = &rest[..end];
            if !target.contains("://") && !target.starts_with("mailto:") {
                out.push(target.to_string());
            }
            rest = &rest[end..];
        }
    }
    out
}

#[test]
fn links_resolve_and_pages_link_their_twins() {
    let files = doc_files();
    for file in &files {
        let dir = file.parent().unwrap();
        for target in links(file) {
            let (path, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let dest = if path.is_empty() { file.clone() } else { dir.join(path) };
            assert!(dest.exists(), "{}: link to {target}: no such file", rel(file));
            if !anchor.is_empty() {
                assert!(
                    anchors(&dest).contains(anchor),
                    "{}: link to {target}: {} has no heading with that anchor (has: {:?})",
                    rel(file),
                    rel(&dest),
                    anchors(&dest)
                );
            }
        }
    }
    let root = PathBuf::from(ROOT);
    let mut twins = vec![(root.join("README.md"), root.join("README.zh-CN.md"), "README.zh-CN.md", "README.md")];
    for f in files.iter().filter(|f| f.parent() == Some(&root.join("docs/zh-CN"))) {
        let name = f.file_name().unwrap().to_str().unwrap();
        twins.push((root.join("docs").join(name), f.clone(), "", ""));
    }
    for (en, zh, _, _) in &twins {
        if !zh.exists() {
            continue;
        }
        assert!(en.exists(), "{} has no English twin {}", rel(zh), rel(en));
        let to_zh = links(en).iter().any(|l| dir_join(en, l) == *zh);
        let to_en = links(zh).iter().any(|l| dir_join(zh, l) == *en);
        assert!(to_zh, "{} does not link to its Chinese twin {}", rel(en), rel(zh));
        assert!(to_en, "{} does not link to its English twin {}", rel(zh), rel(en));
    }
}

/// The file a relative link of `from` points at, normalised.
fn dir_join(from: &Path, link: &str) -> PathBuf {
    let path = link.split('#').next().unwrap_or("");
    let mut out = from.parent().unwrap().to_path_buf();
    for part in Path::new(path).components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(p) => out.push(p),
            _ => {}
        }
    }
    out
}

// ---------------------------------------------------------------- the sample config

/// The shipped sample needs neither credentials nor network: on a router it prints
/// the plan, on a machine without a public address one reason per record, quickly.
#[test]
fn sample_config_dry_run_needs_no_credentials_or_network() {
    let sample = format!("{ROOT}/{SAMPLE}");
    let world = World::new();
    // On the captured PPPoE router: a plan for both records.
    let mut cmd = world.cmd();
    cmd.args(["-c", &sample, "update", "--dry-run"]);
    let o = output(cmd, "sample on the router");
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(0), "{out}{}", text(&o.stderr));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("home.example.com A 203.0.113.7 dry-run: "), "{out}");
    assert!(lines[1].starts_with("home.example.com AAAA 2") && lines[1].contains(" dry-run: "), "{out}");
    assert!(text(&o.stderr).contains("without credentials"), "{}", text(&o.stderr));

    // A machine with only a private IPv4 and no IPv6 default route: one reason each.
    let bare = world.dir.join("proc-bare/net");
    std::fs::create_dir_all(&bare).unwrap();
    std::fs::write(
        bare.join("route"),
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
         eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n",
    )
    .unwrap();
    std::fs::write(bare.join("ipv6_route"), "").unwrap();
    std::fs::write(bare.join("if_inet6"), "").unwrap();
    let ipv4 = world.dir.join("ipv4-private");
    std::fs::write(&ipv4, "lo 127.0.0.1\neth0 192.168.1.23\n").unwrap();
    let started = Instant::now();
    let o = output(
        {
            let mut c = aliddns();
            c.env("ALIDDNS_PROC_ROOT", bare.parent().unwrap())
                .env("ALIDDNS_IPV4_ADDRS", &ipv4)
                .env("ALIDDNS_STATE_FILE", world.dir.join("state"))
                .args(["-c", &sample, "update", "--dry-run"]);
            c
        },
        "sample on a bare machine",
    );
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    assert!(started.elapsed() < Duration::from_secs(5), "no network timeout: {:?}", started.elapsed());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(lines[0].starts_with("home.example.com A - failed: eth0") && lines[0].contains("non-public IPv4"), "{out}");
    assert!(
        lines[1].starts_with("home.example.com AAAA - failed: interface=auto: no usable IPv6 default route"),
        "{out}"
    );
    assert!(!out.contains("echo URL"), "asked the network: {out}");
}
