//! Loopback load generator for `aliddns serve` (run by scripts/load-serve.sh).
//!
//! ```text
//! load_serve bench --url http://127.0.0.1:PORT/ --secret S --action DefaultRoute|GetRoutes
//!                  [--domain D] [--conns 4] [--seconds 5] [--max 200000]
//! load_serve idle  --url http://127.0.0.1:PORT/ --secret S --pid PID [--conns 1000] [--hold 5]
//! ```
//! `bench` keeps `conns` keep-alive connections busy (like GoEdge's Go client,
//! one request at a time per connection) and prints requests/s and latency
//! percentiles. `idle` opens `conns` connections, sends one request on each so
//! they become idle keep-alive connections, then reads the server's VmRSS/VmHWM
//! from /proc and checks it still answers at once. Only 127.0.0.1 is allowed,
//! and every loop is bounded in count and time.

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
    if !o.url.starts_with("http://127.0.0.1:") {
        return Err("only http://127.0.0.1:PORT/ is allowed".into());
    }
    Ok(o)
}

fn addr(url: &str) -> String {
    url.trim_start_matches("http://").trim_end_matches('/').to_string()
}

fn request(secret: &str, body: &str) -> Vec<u8> {
    let ts = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs().to_string();
    let token: String = Sha1::digest(format!("{secret}@{ts}").as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
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
        let mut c = connect(&a).map_err(|e| format!("connection {i}: {e}"))?;
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
        m => Err(format!("unknown mode {m}")),
    };
    if let Err(e) = r {
        eprintln!("load_serve: {e}");
        std::process::exit(1);
    }
}
