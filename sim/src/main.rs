//! `alidns-sim`: the simulator as a standalone process, for benchmark scripts.
//!
//! ```text
//! alidns-sim [--listen 127.0.0.1:PORT] [--key ID:SECRET]... [--domain NAME]...
//!            [--record DOMAIN,RR,TYPE,VALUE]... [--min-ttl N] [--tls CERT.pem,KEY.pem]
//! ```
//! Prints `listening on http://127.0.0.1:PORT/` (`https://` with `--tls`, which always
//! listens on an ephemeral port of 127.0.0.1) and serves until killed.
//! `GET /_sim/calls` returns `{"total":N,"by_action":{...}}`, `POST /_sim/reset`
//! zeroes the counts.

use std::io::Write as _;
use std::process::ExitCode;

use alidns_sim::Sim;

const USAGE: &str = "usage: alidns-sim [--listen 127.0.0.1:PORT] [--key ID:SECRET]... [--domain NAME]... \
                     [--record DOMAIN,RR,TYPE,VALUE]... [--min-ttl N] [--tls CERT.pem,KEY.pem]";

#[derive(Default)]
struct Args {
    listen: Option<String>,
    keys: Vec<(String, String)>,
    domains: Vec<String>,
    records: Vec<[String; 4]>,
    min_ttl: Option<u32>,
    tls: Option<(String, String)>,
}

fn parse(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    while let Some(flag) = argv.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (flag.clone(), None),
        };
        let mut value = || inline.clone().or_else(|| argv.next()).ok_or_else(|| format!("{name} needs a value"));
        match name.as_str() {
            "--listen" => a.listen = Some(value()?),
            "--key" => {
                let v = value()?;
                let (id, secret) = v.split_once(':').ok_or("--key wants ID:SECRET")?;
                a.keys.push((id.to_string(), secret.to_string()));
            }
            "--domain" => a.domains.push(value()?),
            "--record" => {
                let v = value()?;
                let parts: Vec<&str> = v.splitn(4, ',').collect();
                let [d, rr, t, val] = parts[..] else { return Err("--record wants DOMAIN,RR,TYPE,VALUE".into()) };
                a.records.push([d.into(), rr.into(), t.into(), val.into()]);
            }
            "--tls" => {
                let v = value()?;
                let (cert, key) = v.split_once(',').ok_or("--tls wants CERT.pem,KEY.pem")?;
                a.tls = Some((cert.to_string(), key.to_string()));
            }
            "--min-ttl" => a.min_ttl = Some(value()?.parse().map_err(|_| "--min-ttl wants a number")?),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("alidns-sim: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(if msg.is_empty() { 0 } else { 2 });
        }
    };
    let started = match &args.tls {
        Some((cert, key)) => {
            std::fs::read(cert).and_then(|c| Ok((c, std::fs::read(key)?))).map(|(c, k)| Sim::start_tls(&c, &k))
        }
        None => Sim::start_on(args.listen.as_deref().unwrap_or("127.0.0.1:0")),
    };
    let sim = match started {
        Ok(s) => s,
        Err(e) => {
            eprintln!("alidns-sim: cannot listen: {e}");
            return ExitCode::FAILURE;
        }
    };
    for (id, secret) in &args.keys {
        sim.add_key(id, secret);
    }
    for d in args.domains.iter().chain(args.records.iter().map(|r| &r[0])) {
        sim.add_domain(d);
        if let Some(ttl) = args.min_ttl {
            sim.set_min_ttl(d, ttl);
        }
    }
    for [d, rr, t, v] in &args.records {
        sim.add_record(d, rr, t, v, args.min_ttl.unwrap_or(600).max(600), "default");
    }
    let mut out = std::io::stdout();
    let _ = writeln!(out, "listening on {}", sim.endpoint());
    let _ = out.flush();
    loop {
        std::thread::park();
    }
}
