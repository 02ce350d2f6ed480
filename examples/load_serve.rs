//! Loopback load generator for `aliddns serve` (run by scripts/load-serve.sh).
//!
//! ```text
//! load_serve bench --url http://127.0.0.1:PORT/ --secret S --action DefaultRoute|GetRoutes
//!                  [--domain D] [--conns 4] [--seconds 5] [--max 200000]
//! load_serve idle  --url http://127.0.0.1:PORT/ --secret S --pid PID [--conns 1000] [--hold 5]
//! load_serve attack --url http://127.0.0.1:PORT/ --secret S --pid PID --action ATTACK [--seconds 5]
//! ```
//! `attack` runs one hostile client pattern (see [`ATTACKS`]) for `seconds`
//! while a legitimate client sends a `DefaultRoute` every 10 ms on a new
//! connection (the case that needs a free slot), and prints that client's
//! latency percentiles and failures with the server's peak RSS and CPU time.
//! Attackers connect from 127.0.0.2-127.0.0.17 (loopback, other "hosts"), the
//! legitimate client from 127.0.0.1.
//! `bench` keeps `conns` keep-alive connections busy (like GoEdge's Go client,
//! one request at a time per connection) and prints requests/s and latency
//! percentiles. `idle` opens `conns` connections (from 16 loopback addresses),
//! sends one request on each so
//! they become idle keep-alive connections, then reads the server's VmRSS/VmHWM
//! from /proc and checks it still answers at once. Only 127.0.0.1 is allowed,
//! and every loop is bounded in count and time.

#[path = "../tests/common/dos.rs"]
mod dos;

use sha1::{Digest, Sha1};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

struct Opts {
    mode: String,
    url: String,
    secret: String,
    action: String,
    domain: String,
    conns: usize,
    seconds: u64,
    max: u64,
    pid: u32,
    hold: u64,
}

fn opts() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mode = args.next().ok_or("mode: bench or idle")?;
    let mut o = Opts {
        mode,
        url: String::new(),
        secret: String::new(),
        action: "DefaultRoute".into(),
        domain: "example.com".into(),
        conns: 0,
        seconds: 5,
        max: 200_000,
        pid: 0,
        hold: 5,
    };
    while let Some(k) = args.next() {
        let v = args.next().ok_or(format!("{k} needs a value"))?;
        let num = |v: &str| v.parse::<u64>().map_err(|_| format!("{k}: not a number"));
        match k.as_str() {
            "--url" => o.url = v,
            "--secret" => o.secret = v,
            "--action" => o.action = v,
            "--domain" => o.domain = v,
            "--conns" => o.conns = num(&v)? as usize,
            "--seconds" => o.seconds = num(&v)?.min(60),
            "--max" => o.max = num(&v)?.min(5_000_000),
            "--pid" => o.pid = num(&v)? as u32,
            "--hold" => o.hold = num(&v)?.min(60),
            _ => return Err(format!("unknown option {k}")),
        }
    }
    if o.mode == "attack" && !ATTACKS.iter().any(|(a, _)| *a == o.action) {
        let names: Vec<&str> = ATTACKS.iter().map(|(a, _)| *a).collect();
        return Err(format!("--action: one of {}", names.join(", ")));
    }
    if !o.url.starts_with("http://127.0.0.1:") {
        return Err("only http://127.0.0.1:PORT/ is allowed".into());
    }
    Ok(o)
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

fn request(secret: &str, body: &str) -> Vec<u8> {
    use std::fmt::Write as _;
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    let token = Sha1::digest(format!("{secret}@{ts}").as_bytes()).iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    });
    format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Edge API/1.4.1\r\nContent-Length: {}\r\n\
         Content-Type: application/json\r\nTimestamp: {ts}\r\nToken: {token}\r\nAccept-Encoding: gzip\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Sends one request and reads one response; returns the status.
fn roundtrip(r: &mut BufReader<TcpStream>, req: &[u8]) -> std::io::Result<u16> {
    r.get_mut().write_all(req)?;
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let status = line.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some(v) = h.strip_prefix("Content-Length: ") {
            len = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    Ok(status)
}

fn connect(a: &str) -> std::io::Result<BufReader<TcpStream>> {
    let s = TcpStream::connect(a)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.set_nodelay(true)?;
    Ok(BufReader::new(s))
}

fn body_for(o: &Opts) -> String {
    match o.action.as_str() {
        "DefaultRoute" => r#"{"action":"DefaultRoute"}"#.to_string(),
        a => format!(r#"{{"action":"{a}","domain":"{}"}}"#, o.domain),
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn bench(o: &Opts) -> Result<(), String> {
    let conns = o.conns.max(1);
    let a = addr(&o.url);
    let body = body_for(o);
    let deadline = Instant::now() + Duration::from_secs(o.seconds);
    let per_conn = o.max / conns as u64;
    let started = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|_| {
            let (a, body, secret) = (a.clone(), body.clone(), o.secret.clone());
            std::thread::spawn(move || -> Result<(Vec<u32>, u64), String> {
                let mut c = connect(&a).map_err(|e| e.to_string())?;
                let mut lat = Vec::with_capacity(per_conn.min(1_000_000) as usize);
                let mut errors = 0;
                let mut req = request(&secret, &body);
                let mut made = Instant::now();
                for _ in 0..per_conn {
                    if Instant::now() >= deadline {
                        break;
                    }
                    if made.elapsed() > Duration::from_secs(1) {
                        req = request(&secret, &body); // fresh Timestamp, as GoEdge does per request
                        made = Instant::now();
                    }
                    let t = Instant::now();
                    match roundtrip(&mut c, &req) {
                        Ok(200) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
                        Ok(_) => errors += 1,
                        Err(_) => {
                            errors += 1;
                            c = connect(&a).map_err(|e| e.to_string())?;
                        }
                    }
                }
                Ok((lat, errors))
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for h in handles {
        let (lat, e) = h.join().map_err(|_| "client thread panicked")??;
        all.extend(lat);
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    all.sort_unstable();
    println!(
        "{}: {} requests in {:.1} s over {} connections = {:.0} req/s; latency p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; {} errors",
        o.action,
        all.len(),
        secs,
        conns,
        all.len() as f64 / secs,
        pct(&all, 0.50),
        pct(&all, 0.99),
        pct(&all, 1.0),
        errors
    );
    if errors > 0 { Err(format!("{errors} failed requests")) } else { Ok(()) }
}

fn proc_status(pid: u32) -> (String, String, String) {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let get =
        |k: &str| s.lines().find_map(|l| l.strip_prefix(k)).map(|v| v.trim().to_string()).unwrap_or_else(|| "?".into());
    (get("VmRSS:"), get("VmHWM:"), get("Threads:"))
}

fn idle(o: &Opts) -> Result<(), String> {
    let n = if o.conns == 0 { 1000 } else { o.conns.min(5000) };
    let a = addr(&o.url);
    let (rss0, hwm0, threads0) = proc_status(o.pid);
    println!("before: VmRSS {rss0}, VmHWM {hwm0}, threads {threads0}");
    let req = request(&o.secret, r#"{"action":"DefaultRoute"}"#);
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        // Spread over the attackers' addresses: one address may hold only 64.
        let c = attacker(i, &a).ok_or(format!("connection {i}: cannot connect"))?;
        c.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let mut c = BufReader::new(c);
        let status = roundtrip(&mut c, &req).map_err(|e| format!("connection {i}: {e}"))?;
        if status != 200 {
            return Err(format!("connection {i}: status {status}"));
        }
        held.push(c);
    }
    std::thread::sleep(Duration::from_millis(500));
    let (rss, hwm, threads) = proc_status(o.pid);
    println!("{n} idle keep-alive connections held: VmRSS {rss}, VmHWM {hwm}, threads {threads}");
    // The server still answers at once while they are held.
    let t = Instant::now();
    let mut c = connect(&a).map_err(|e| e.to_string())?;
    let status = roundtrip(&mut c, &req).map_err(|e| e.to_string())?;
    println!("a new client meanwhile: status {status} in {:.3} ms", t.elapsed().as_secs_f64() * 1000.0);
    std::thread::sleep(Duration::from_secs(o.hold));
    // All of them are still usable (not closed behind our back).
    let mut alive = 0;
    for c in held.iter_mut().take(n) {
        if matches!(roundtrip(c, &req), Ok(200)) {
            alive += 1;
        }
    }
    println!("after {} s: {alive}/{n} connections still served", o.hold);
    let (rss, hwm, threads) = proc_status(o.pid);
    println!("end: VmRSS {rss}, VmHWM {hwm}, threads {threads}");
    if status != 200 { Err("server did not answer".into()) } else { Ok(()) }
}

fn main() {
    let o = match opts() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("load_serve: {e}");
            std::process::exit(2);
        }
    };
    let r = match o.mode.as_str() {
        "bench" => bench(&o),
        "idle" => idle(&o),
        "attack" => attack(&o),
        m => Err(format!("unknown mode {m}")),
    };
    if let Err(e) = r {
        eprintln!("load_serve: {e}");
        std::process::exit(1);
    }
}

/// The hostile patterns of issue 9, by name, with what each does.
const ATTACKS: &[(&str, &str)] = &[
    ("wrong-token", "1,100 connections held open, each after one request with a wrong token (item 6)"),
    ("idle-waves", "waves of 1,100 connections that send nothing, renewed every second (item 6)"),
    ("no-read", "4 clients pipelining GetRoutes on a 2 KiB receive buffer, never reading (item 7)"),
    ("log-flood", "wrong-token requests back to back from 8 threads (item 8: log volume)"),
    ("big-body", "2 clients sending 16 MiB bodies whole before reading the answer (item 9)"),
    ("pre-auth-body", "800 connections sending a wrong-token head and 65,000 body bytes, held (item 12)"),
    ("table-full", "1,024 connections each holding an 8,000-byte unfinished head (items 12, 14: RSS)"),
    ("trickle", "1,024 connections trickling a head one byte at a time (item 13: CPU)"),
];

/// Attackers' source addresses (all loopback).
const SOURCES: u8 = 16;

/// The i-th attacker connection, spread over the source addresses.
fn attacker(i: usize, a: &str) -> Option<TcpStream> {
    let s = dos::connect_from(std::net::Ipv4Addr::new(127, 0, 0, 2 + (i % SOURCES as usize) as u8), a).ok()?;
    s.set_write_timeout(Some(Duration::from_secs(2))).ok()?;
    let _ = s.set_nodelay(true);
    Some(s)
}

fn signed_head(secret: &str, len: usize) -> Vec<u8> {
    let mut r = request(secret, "");
    // request() ends with the blank line: swap its Content-Length for ours.
    let text = String::from_utf8_lossy(&r).replace("Content-Length: 0\r\n", &format!("Content-Length: {len}\r\n"));
    r = text.into_bytes();
    r
}

/// Runs one attack pattern until `stop`; returns how many attacker requests or connections it made.
fn run_attack(name: &str, a: &str, secret: &str, stop: &'static std::sync::atomic::AtomicBool) -> u64 {
    use std::sync::atomic::Ordering::Relaxed;
    let wrong = "wrong-secret-wrong-secret-wrong!";
    let mut made = 0u64;
    match name {
        "wrong-token" => {
            let req = request(wrong, r#"{"action":"GetDomains"}"#);
            let mut held = std::collections::VecDeque::new();
            while !stop.load(Relaxed) {
                if let Some(mut s) = attacker(made as usize, a) {
                    let _ = s.write_all(&req);
                    held.push_back(s);
                    made += 1;
                }
                if held.len() >= 1100 {
                    held.pop_front();
                }
            }
        }
        "idle-waves" => {
            while !stop.load(Relaxed) {
                let wave: Vec<TcpStream> = (0..1100).filter_map(|i| attacker(i, a)).collect();
                made += wave.len() as u64;
                let t = Instant::now();
                while t.elapsed() < Duration::from_secs(1) && !stop.load(Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
        }
        "no-read" => {
            let req = request(secret, r#"{"action":"GetRoutes","domain":"example.com"}"#);
            let threads: Vec<_> = (0..4)
                .map(|i| {
                    let (a, req) = (a.to_string(), req.clone());
                    std::thread::spawn(move || {
                        let Some(mut s) = attacker(i, &a) else { return (0, None) };
                        let v: libc::c_int = 2048;
                        // SAFETY: setsockopt reads an int we own.
                        unsafe {
                            use std::os::fd::AsRawFd;
                            let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
                            let p = &v as *const _ as *const libc::c_void;
                            libc::setsockopt(s.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUF, p, len);
                        }
                        let mut n = 0;
                        while n < 100_000 && s.write_all(&req).is_ok() {
                            n += 1;
                        }
                        (n, Some(s)) // keep the stuck socket until the attack ends
                    })
                })
                .collect();
            let held: Vec<_> = threads.into_iter().filter_map(|t| t.join().ok()).collect();
            made = held.iter().map(|(n, _)| n).sum();
            while !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        "log-flood" => {
            let threads: Vec<_> = (0..8)
                .map(|i| {
                    let a = a.to_string();
                    std::thread::spawn(move || {
                        let req = request(wrong, r#"{"action":"GetDomains"}"#);
                        let mut n = 0u64;
                        while !stop.load(Relaxed) {
                            if let Some(mut s) = attacker(i + n as usize * 8, &a) {
                                let _ = s.write_all(&req);
                                let mut sink = Vec::new();
                                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                                let _ = s.read_to_end(&mut sink);
                                n += 1;
                            }
                        }
                        n
                    })
                })
                .collect();
            made = threads.into_iter().filter_map(|t| t.join().ok()).sum();
        }
        "big-body" => {
            let threads: Vec<_> = (0..2)
                .map(|i| {
                    let (a, secret) = (a.to_string(), secret.to_string());
                    std::thread::spawn(move || {
                        let chunk = vec![b'x'; 64 * 1024];
                        let mut n = 0u64;
                        while !stop.load(Relaxed) {
                            let Some(mut s) = attacker(i, &a) else { continue };
                            let ok = s.write_all(&signed_head(&secret, 16 << 20)).is_ok()
                                && (0..256).all(|_| s.write_all(&chunk).is_ok());
                            let mut answer = Vec::new();
                            let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
                            let _ = s.read_to_end(&mut answer);
                            if ok && answer.starts_with(b"HTTP/1.1 413 ") {
                                n += 1;
                            } else {
                                eprintln!("big-body: no readable 413 (body written: {ok})");
                            }
                        }
                        n
                    })
                })
                .collect();
            made = threads.into_iter().filter_map(|t| t.join().ok()).sum();
        }
        "pre-auth-body" => {
            let head = signed_head(wrong, 65_536);
            let body = vec![b'x'; 65_000];
            let mut held = Vec::new();
            for i in 0..800 {
                if stop.load(Relaxed) {
                    break;
                }
                if let Some(mut s) = attacker(i, a) {
                    let _ = s.write_all(&head);
                    let _ = s.write_all(&body);
                    held.push(s);
                    made += 1;
                }
            }
            while !stop.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        "table-full" | "trickle" => {
            let trickle = name == "trickle";
            let head = {
                let mut h = b"POST / HTTP/1.1\r\nContent-Length: 2\r\nX-Pad: ".to_vec();
                h.resize(if trickle { 8150 } else { 8000 }, b'a');
                h
            };
            let mut conns: Vec<(TcpStream, usize)> = Vec::new();
            let mut i = 0;
            while !stop.load(Relaxed) {
                // Top up to 1,024 (the server closes them at its deadlines or evicts them).
                while conns.len() < 1024 && !stop.load(Relaxed) {
                    let Some(mut s) = attacker(i, a) else { break };
                    i += 1;
                    made += 1;
                    let start = if trickle { 0 } else { head.len() };
                    if !trickle && s.write_all(&head).is_err() {
                        continue;
                    }
                    let _ = s.set_nonblocking(true);
                    conns.push((s, start));
                }
                // One byte per connection per round.
                conns.retain_mut(|(s, at)| {
                    let b = if *at < head.len() { head[*at] } else { b'a' };
                    match s.write(&[b]) {
                        Ok(0) => false,
                        Ok(_) => {
                            *at += 1;
                            true
                        }
                        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                    }
                });
                std::thread::sleep(Duration::from_millis(if trickle { 2 } else { 500 }));
            }
        }
        _ => {}
    }
    made
}

fn attack(o: &Opts) -> Result<(), String> {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    let a = addr(&o.url);
    // Leaked: one flag per run of this short-lived tool, shared with the attack threads.
    let stop: &'static AtomicBool = Box::leak(Box::new(AtomicBool::new(false)));
    let rss0 = dos::rss_kib(o.pid).unwrap_or(0);
    let cpu0 = dos::cpu_seconds(o.pid).unwrap_or(0.0);
    let attack = {
        let (name, a, secret) = (o.action.clone(), a.clone(), o.secret.clone());
        std::thread::spawn(move || run_attack(&name, &a, &secret, stop))
    };
    std::thread::sleep(Duration::from_millis(1000)); // let the attack build up
    let req = request(&o.secret, r#"{"action":"DefaultRoute"}"#);
    let (mut lat, mut failed, mut rss_max) = (Vec::new(), 0u32, rss0);
    let end = Instant::now() + Duration::from_secs(o.seconds.max(1));
    while Instant::now() < end {
        let t = Instant::now();
        let ok = connect(&a).and_then(|mut c| roundtrip(&mut c, &req));
        match ok {
            Ok(200) => lat.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32),
            _ => failed += 1,
        }
        rss_max = rss_max.max(dos::rss_kib(o.pid).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    let cpu = dos::cpu_seconds(o.pid).unwrap_or(0.0) - cpu0;
    stop.store(true, Relaxed);
    let made = attack.join().map_err(|_| "attack thread panicked")?;
    lat.sort_unstable();
    println!(
        "{:<14} legit DefaultRoute: {} ok, {} failed; p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms | server RSS {} -> peak {} KiB, CPU {:.2} s in {:.0} s | attacker: {made}",
        o.action,
        lat.len(),
        failed,
        pct(&lat, 0.50),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        rss0,
        rss_max,
        cpu,
        o.seconds as f64 + 1.0,
    );
    Ok(())
}
