//! Command-line parsing and dispatch. Each command is a small function that turns
//! arguments into calls on the modules that do the work, and errors into the
//! documented exit status (0 ok, 1 API/network failure, 2 usage/config error).

use crate::alidns::{Client, ClientOptions, Credentials, RecordFilter, RecordSpec, UpdateOutcome};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::json::{self, Value, object};
use crate::log;
use pico_args::Arguments;
use std::ffi::OsString;
use std::path::PathBuf;

const MAIN_HELP: &str = "\
aliddns - keep Alibaba Cloud DNS records pointed at this machine's addresses

Usage: aliddns [OPTIONS] COMMAND [ARGS]

Commands:
  update                     one pass over all configured records (cron, hotplug)
  run                        a pass every `interval` seconds, in the foreground (procd, systemd)
  ip                         print the address a record would be set to
  status                     what the last passes did to each record (no network)
  serve                      answer GoEdge/FlexCDN custom HTTP DNS requests
  check                      validate the config only (no network, no credentials)
  domains                    list the account's domains
  lines DOMAIN               list the resolution lines (线路) of a domain
  records list|add|update|delete
                             look at and change records by hand

Options:
  -c, --config FILE          config file [default: /etc/aliddns.conf, or
                             /etc/config/aliddns when only that one exists]
      --endpoint URL         AliDNS endpoint [default: https://alidns.aliyuncs.com/]
      --json                 list commands print a JSON array
  -v, --verbose              debug output on stderr (never shows secrets)
      --syslog               log to syslog (facility daemon, a priority per line)
                             instead of stderr; `update` logs its results too
  -h, --help                 this help; `aliddns COMMAND --help` for a command's
  -V, --version              version, target and features

Credentials come from the config file ([DEFAULT] access_id, access_key) or from
ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET and
ALIBABA_CLOUD_SECURITY_TOKEN; never from the command line.

Exit status: 0 success, 1 AliDNS or network failure, 2 usage or config error.
";

const DOMAINS_HELP: &str = "\
Usage: aliddns domains [--json]

Lists the domains (zones) of the account, one a line.
";

const LINES_HELP: &str = "\
Usage: aliddns lines DOMAIN [--json]

Lists the resolution lines (线路) DOMAIN may use, `CODE NAME` one a line.
The CODE is what `--line` and the `line` config key take.
";

const RECORDS_HELP: &str = "\
Usage:
  aliddns records list DOMAIN [--rr RR] [--type TYPE] [--line CODE] [--json]
  aliddns records add DOMAIN RR TYPE VALUE [--ttl N] [--line CODE] [--priority N]
  aliddns records update ID RR TYPE VALUE [--ttl N] [--line CODE] [--priority N]
  aliddns records delete ID

list    prints `ID RR TYPE VALUE TTL LINE STATUS` per record
add     prints the new record's id
update  prints `updated ID` or `unchanged ID` (identical values are not an error);
        TTL and line stay as they are unless given
delete  prints `deleted ID`

RR is the host record: www, a.b, * (wildcard) or @ (the domain itself).
";

const UPDATE_HELP: &str = "\
Usage: aliddns update [--force] [--dry-run]

One pass over every record in the config: reads each wanted address, and changes
AliDNS only where it differs. Prints one line per record:
  NAME TYPE VALUE unchanged|updated|created|missing|failed: CODE: MESSAGE

  --force     ignore the state file: ask AliDNS about every record
  --dry-run   change nothing; print what would be compared and done

Exit status: 0 every record current, 1 some record failed, 2 config error.
";

const RUN_HELP: &str = "\
Usage: aliddns run

Runs `update` every `interval` seconds (config [DEFAULT] interval, default 600)
in the foreground, for procd and systemd. SIGUSR1 starts a pass at once; SIGTERM
and SIGINT exit cleanly between passes. Transient failures never end the loop.
While it runs it holds a lock on `STATE_FILE.daemon`, which `aliddns status` probes.
";

const IP_HELP: &str = "\
Usage: aliddns ip [--interface IF] [--family 4|6]

Prints the address aliddns would publish, alone on stdout (exit 1 when there is
none). IF is a Linux interface name (eth0, pppoe-wan, br-lan) or `auto` for the
default route's. Without --interface, IPv4 comes from the echo URLs (ip_urls) and
IPv6 from the default route's interface. With -v, every candidate is listed with
the reason it was kept or dropped.
";

const CHECK_HELP: &str = "\
Usage: aliddns check

Reads and validates the config as `update`, `run` and `serve` would, without
network or credentials. Prints one summary line and exits 0, or reports the first
error (FILE:LINE: KEY: what is wrong) and exits 2. The OpenWrt init script logs
that line when its own validation fails.
";

const STATUS_HELP: &str = "\
Usage: aliddns status [--json]

Reads the config and the state file (no credentials, no network) and prints
whether an `aliddns run` daemon is running, then one line per configured record:
  NAME TYPE LINE VALUE RESULT CHECKED ERROR
RESULT is updated, created, unchanged, missing, failed, never (no pass yet) or
disabled. --json prints one object with config, state_file, running and records.

Exit status: 0, or 2 on a config error.
";

const SERVE_HELP: &str = "\
Usage: aliddns serve [--listen ADDR:PORT]

Serves the GoEdge/FlexCDN \"custom HTTP DNS\" protocol and turns each action into
AliDNS calls. Settings are in the config's [httpdns] section (secret is required).
";

/// A command: its name on the command line, its `--help` text and what runs it
/// (after the config is loaded). `help` itself is not one: it needs no config.
struct Command {
    name: &'static str,
    help: &'static str,
    run: fn(&Ctx, Arguments) -> Result<i32>,
}

/// Every command, in the order of the main help.
const COMMANDS: &[Command] = &[
    Command { name: "update", help: UPDATE_HELP, run: cmd_update },
    Command { name: "run", help: RUN_HELP, run: cmd_run },
    Command { name: "ip", help: IP_HELP, run: cmd_ip },
    Command { name: "status", help: STATUS_HELP, run: cmd_status },
    Command { name: "serve", help: SERVE_HELP, run: cmd_serve },
    Command { name: "check", help: CHECK_HELP, run: cmd_check },
    Command { name: "domains", help: DOMAINS_HELP, run: cmd_domains },
    Command { name: "lines", help: LINES_HELP, run: cmd_lines },
    Command { name: "records", help: RECORDS_HELP, run: cmd_records },
];

/// Options every command shares.
pub struct Ctx {
    /// The loaded config (empty when the default file does not exist).
    pub config: Config,
    /// `--endpoint`, which beats the config's `endpoint`.
    pub endpoint: Option<String>,
    /// `--json`.
    pub json: bool,
    /// The config file named by `-c`, or the default one chosen.
    pub path: PathBuf,
}

impl Ctx {
    /// An AliDNS client from the config and environment.
    pub fn client(&self) -> Result<Client> {
        let creds = Credentials::resolve(&self.config.global)?;
        Client::new(creds, ClientOptions::from_global(&self.config.global, self.endpoint.as_deref()))
    }
}

/// Runs the command line; returns the process exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            log::error(&e);
            e.exit_code()
        }
    }
}

fn usage(msg: impl Into<String>) -> Error {
    Error::Usage(msg.into())
}

fn arg_err(e: pico_args::Error) -> Error {
    usage(e.to_string())
}

fn run(args: Vec<OsString>) -> Result<i32> {
    let mut args = Arguments::from_vec(args);
    let help = args.contains(["-h", "--help"]);
    if args.contains(["-V", "--version"]) {
        print!("{}", version_text());
        return Ok(0);
    }
    let verbose = args.contains(["-v", "--verbose"]);
    let json = args.contains("--json");
    if args.contains("--syslog") {
        log::use_syslog();
    }
    let config_path: Option<PathBuf> = args.opt_value_from_str(["-c", "--config"]).map_err(arg_err)?;
    let endpoint: Option<String> = args.opt_value_from_str("--endpoint").map_err(arg_err)?;
    if let Some(e) = &endpoint
        && !(e.starts_with("http://") || e.starts_with("https://"))
    {
        return Err(usage(format!("--endpoint '{e}' must start with https:// or http://")));
    }
    let cmd = args.subcommand().map_err(arg_err)?;
    let Some(cmd) = cmd else {
        print!("{MAIN_HELP}");
        return Ok(if help { 0 } else { 2 });
    };
    if cmd == "help" {
        print!("{MAIN_HELP}");
        return Ok(0);
    }
    let Some(command) = COMMANDS.iter().find(|c| c.name == cmd) else {
        return Err(usage(format!("unknown command '{cmd}'; see aliddns --help")));
    };
    if help {
        print!("{}", command.help);
        return Ok(0);
    }
    log::set_verbose(verbose);
    let explicit = config_path.is_some();
    let path = config_path.unwrap_or_else(config::default_path);
    let config = Config::load_or_default(&path, explicit)?;
    if config.global.debug {
        log::set_verbose(true);
    }
    for w in &config.warnings {
        log::warn(w);
    }
    let ctx = Ctx { config, endpoint, json, path };
    (command.run)(&ctx, args)
}

/// `aliddns --version`: version, target triple and compiled-in features.
pub fn version_text() -> String {
    let mut features = Vec::new();
    if cfg!(feature = "tls") {
        features.push("tls");
    }
    if cfg!(feature = "embedded-roots") {
        features.push("embedded-roots");
    }
    format!(
        "aliddns {} ({})\nfeatures: {}\n",
        env!("CARGO_PKG_VERSION"),
        env!("ALIDDNS_TARGET"),
        if features.is_empty() { "none".to_string() } else { features.join(" ") }
    )
}

/// Remaining positional arguments; anything still looking like an option is an error.
fn positionals(args: Arguments, want: &[&str]) -> Result<Vec<String>> {
    let rest = args.finish();
    let mut out = Vec::new();
    for a in rest {
        let s = a
            .into_string()
            .map_err(|a| usage(format!("argument {} is not UTF-8", log::quoted(&a.to_string_lossy()))))?;
        if s.starts_with("--") || (s.starts_with('-') && s.len() == 2 && !s.as_bytes()[1].is_ascii_digit()) {
            return Err(usage(format!("unknown option '{s}'")));
        }
        out.push(s);
    }
    if out.len() != want.len() {
        return Err(usage(format!(
            "expected {} argument{} ({}), got {}",
            want.len(),
            if want.len() == 1 { "" } else { "s" },
            want.join(" "),
            out.len()
        )));
    }
    Ok(out)
}

fn print_json(v: &Value) {
    println!("{}", json::to_string(v));
}

fn cmd_domains(ctx: &Ctx, args: Arguments) -> Result<i32> {
    positionals(args, &[])?;
    let domains = ctx.client()?.describe_domains()?;
    if ctx.json {
        print_json(&Value::Array(
            domains.iter().map(|d| object!({"domain": d.name, "id": d.id, "record_count": d.record_count})).collect(),
        ));
    } else {
        for d in domains {
            println!("{}", d.name);
        }
    }
    Ok(0)
}

fn cmd_lines(ctx: &Ctx, args: Arguments) -> Result<i32> {
    let p = positionals(args, &["DOMAIN"])?;
    let lines = ctx.client()?.describe_support_lines(Some(&p[0]))?;
    if ctx.json {
        print_json(&Value::Array(
            lines
                .iter()
                .map(|l| object!({"code": l.code, "name": l.name, "display_name": l.display_name, "father_code": l.father_code}))
                .collect(),
        ));
    } else {
        for l in lines {
            let name = if l.display_name.is_empty() { &l.name } else { &l.display_name };
            println!("{} {}", l.code, name);
        }
    }
    Ok(0)
}

/// A client when credentials exist; for a dry run, their absence is not an error.
fn client_for_pass(ctx: &Ctx, dry_run: bool) -> Result<Option<Client>> {
    if dry_run && Credentials::find(&ctx.config.global).is_none() {
        log::info("dry run without credentials: detecting addresses only");
        return Ok(None);
    }
    ctx.client().map(Some)
}

/// Whether DDNS is switched off (UCI `option enabled '0'` in the global section);
/// then update and run succeed without doing anything.
fn ddns_disabled(ctx: &Ctx) -> bool {
    if ctx.config.global.enabled {
        return false;
    }
    log::info("DDNS is disabled (enabled=0 in the global section); nothing to do");
    true
}

fn no_records(ctx: &Ctx) -> Result<()> {
    if !ctx.config.records.is_empty() {
        return Ok(());
    }
    Err(Error::Config(match &ctx.config.path {
        Some(p) => format!("{}: no records configured (add a section with domain= and sub_domain=)", p.display()),
        // A newcomer's first run: say that the file is missing, not that it is empty.
        None => format!(
            "neither {} nor {} exists and no -c FILE was given, so there are no records to update \
             (examples/aliddns.conf in the source tree is a sample config)",
            config::DEFAULT_PATH,
            config::OPENWRT_PATH
        ),
    }))
}

fn cmd_update(ctx: &Ctx, mut args: Arguments) -> Result<i32> {
    let opts = crate::ddns::PassOptions { force: args.contains("--force"), dry_run: args.contains("--dry-run") };
    positionals(args, &[])?;
    if ddns_disabled(ctx) {
        return Ok(0);
    }
    no_records(ctx)?;
    let client = client_for_pass(ctx, opts.dry_run)?;
    let summary = crate::ddns::pass(&ctx.config, client.as_ref(), opts);
    for r in &summary.reports {
        if log::to_syslog() {
            log::log(r.level(), r.line());
        } else {
            println!("{}", r.line());
        }
    }
    log::debug(format!("{} AliDNS API call(s)", summary.api_calls));
    Ok(if summary.any_failed() { 1 } else { 0 })
}

fn cmd_run(ctx: &Ctx, args: Arguments) -> Result<i32> {
    positionals(args, &[])?;
    if ddns_disabled(ctx) {
        return Ok(0);
    }
    no_records(ctx)?;
    let client = ctx.client()?;
    crate::ddns::run_loop(&ctx.config, Some(&client));
    Ok(0)
}

/// `aliddns check`: what a start would object to, found without starting.
/// The hidden `--summary` prints shell assignments for the OpenWrt init script instead.
fn cmd_check(ctx: &Ctx, mut args: Arguments) -> Result<i32> {
    let summary = args.contains("--summary");
    positionals(args, &[])?;
    let cfg = &ctx.config;
    let Some(path) = &cfg.path else {
        return Err(Error::Config(format!("{}: no such file", ctx.path.display())));
    };
    if summary {
        let doc = config::read_document(path, true)?;
        print!("{}", crate::summary::Summary::new(cfg, &doc).to_shell());
        return Ok(0);
    }
    let ddns = if cfg.global.enabled {
        format!("DDNS enabled, {} record(s), every {}s", cfg.records.len(), cfg.global.interval)
    } else {
        "DDNS disabled".to_string()
    };
    let serve = match &cfg.httpdns {
        Some(h) if h.enabled => format!("serve on {}", crate::serve::Settings::from_config(cfg, None)?.listen),
        _ => "serve off".to_string(),
    };
    let line = format!("{}: ok: {ddns}; {serve}", path.display());
    if log::to_syslog() {
        log::info(&line);
    } else {
        println!("{line}");
    }
    Ok(0)
}

fn cmd_status(ctx: &Ctx, args: Arguments) -> Result<i32> {
    positionals(args, &[])?;
    let g = &ctx.config.global;
    let st = crate::state::State::load(&g.state_file);
    let running = crate::state::daemon_running(&g.state_file);
    if ctx.json {
        print_json(&crate::status::to_json(&ctx.path, &ctx.config, &st, running));
    } else {
        print!("{}", crate::status::to_text(&ctx.config, &st, running, crate::clock::system_now()));
    }
    Ok(0)
}

fn cmd_ip(ctx: &Ctx, mut args: Arguments) -> Result<i32> {
    use crate::addr::{AddrRequest, Detector};
    use crate::http::{Family, HttpOptions};
    let interface: Option<String> = args.opt_value_from_str("--interface").map_err(arg_err)?;
    let family = match args.opt_value_from_str::<_, String>("--family").map_err(arg_err)?.as_deref() {
        None | Some("4") => Family::V4,
        Some("6") => Family::V6,
        Some(other) => return Err(usage(format!("--family takes 4 or 6, not '{other}'"))),
    };
    positionals(args, &[])?;
    let g = &ctx.config.global;
    let mut detector = Detector::new(HttpOptions::from_global(g));
    let req = AddrRequest {
        family,
        interface: interface.as_deref().or(g.nic_interface.as_deref()),
        ipv6_suffix: None,
        prefer: g.ipv6_prefer,
        urls: if family == Family::V4 { &g.ip_urls } else { &g.ipv6_urls },
    };
    match detector.detect(&req) {
        Ok(d) => {
            if log::verbose() {
                eprint!("{}", crate::addr::describe(&d));
            } else {
                for w in &d.warnings {
                    log::warn(w);
                }
            }
            println!("{}", d.addr);
            Ok(0)
        }
        Err(e) => {
            log::error(&e);
            Ok(1)
        }
    }
}

fn cmd_serve(ctx: &Ctx, mut args: Arguments) -> Result<i32> {
    let listen: Option<String> = args.opt_value_from_str("--listen").map_err(arg_err)?;
    positionals(args, &[])?;
    let creds = Credentials::resolve(&ctx.config.global)?;
    let mut opts = ClientOptions::from_global(&ctx.config.global, ctx.endpoint.as_deref());
    // GoEdge gives up on a provider after 10 s: keep each upstream call, retries
    // included, well inside that (a request times out after 3 x 2.5 s at worst).
    opts.http.timeout = opts.http.timeout.min(std::time::Duration::from_millis(2500));
    opts.budget = Some(std::time::Duration::from_secs(7));
    let client = std::sync::Arc::new(Client::new(creds, opts)?);
    crate::serve::run(&ctx.config, client, listen)?;
    Ok(0)
}

fn opt_u32(args: &mut Arguments, name: &'static str) -> Result<Option<u32>> {
    args.opt_value_from_fn(name, |s: &str| s.parse::<u32>()).map_err(|_| usage(format!("{name} takes a whole number")))
}

/// `FIRST RR TYPE VALUE [--ttl N] [--line CODE] [--priority N]`, shared by add and update.
fn record_args(mut args: Arguments, first: &str) -> Result<(String, RecordSpec)> {
    let ttl = opt_u32(&mut args, "--ttl")?;
    let priority = opt_u32(&mut args, "--priority")?;
    let line: Option<String> = args.opt_value_from_str("--line").map_err(arg_err)?;
    let mut p = positionals(args, &[first, "RR", "TYPE", "VALUE"])?.into_iter();
    let mut next = || p.next().unwrap_or_default();
    let first = next();
    let spec = RecordSpec { rr: next(), rtype: next().to_ascii_uppercase(), value: next(), ttl, line, priority };
    Ok((first, spec))
}

fn cmd_records(ctx: &Ctx, mut args: Arguments) -> Result<i32> {
    let sub: Option<String> = args.subcommand().map_err(arg_err)?;
    match sub.as_deref() {
        Some("list") => {
            let filter = RecordFilter {
                rr: args.opt_value_from_str("--rr").map_err(arg_err)?,
                rtype: args.opt_value_from_str::<_, String>("--type").map_err(arg_err)?.map(|t| t.to_ascii_uppercase()),
                line: args.opt_value_from_str("--line").map_err(arg_err)?,
            };
            let p = positionals(args, &["DOMAIN"])?;
            let recs = ctx.client()?.describe_domain_records(&p[0], &filter)?;
            if ctx.json {
                print_json(&Value::Array(
                    recs.iter()
                        .map(|r| {
                            object!({"id": r.id, "domain": r.domain, "rr": r.rr, "type": r.rtype, "value": r.value,
                                   "ttl": r.ttl, "line": r.line, "status": r.status, "priority": r.priority,
                                   "locked": r.locked})
                        })
                        .collect(),
                ));
            } else {
                for r in recs {
                    println!("{} {} {} {} {} {} {}", r.id, r.rr, r.rtype, r.value, r.ttl, r.line, r.status);
                }
            }
            Ok(0)
        }
        Some("add") => {
            let (domain, spec) = record_args(args, "DOMAIN")?;
            let id = ctx.client()?.add_domain_record(&domain, &spec)?;
            println!("{id}");
            Ok(0)
        }
        Some("update") => {
            let (id, given) = record_args(args, "ID")?;
            let client = ctx.client()?;
            // AliDNS may reset an omitted TTL or line to its default: send the current ones.
            let cur = client.describe_domain_record_info(&id)?;
            let spec = RecordSpec {
                ttl: given.ttl.or(Some(cur.ttl)),
                line: given.line.clone().or(Some(cur.line.clone())),
                priority: given.priority.or(cur.priority),
                ..given
            };
            let outcome = if crate::alidns::spec_matches(&cur, &spec) {
                UpdateOutcome::Unchanged
            } else {
                client.update_domain_record(&id, &spec)?
            };
            match outcome {
                UpdateOutcome::Updated => println!("updated {id}"),
                UpdateOutcome::Unchanged => println!("unchanged {id}"),
            }
            Ok(0)
        }
        Some("delete") => {
            let p = positionals(args, &["ID"])?;
            ctx.client()?.delete_domain_record(&p[0])?;
            println!("deleted {}", p[0]);
            Ok(0)
        }
        Some(other) => Err(usage(format!("unknown records command '{other}'; use list, add, update or delete"))),
        None => Err(usage("records needs list, add, update or delete; see aliddns records --help")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_args(a: &[&str]) -> Result<i32> {
        run(a.iter().map(OsString::from).collect())
    }

    #[test]
    fn version_names_target_and_features() {
        let v = version_text();
        assert!(v.starts_with(&format!("aliddns {} (", env!("CARGO_PKG_VERSION"))));
        assert!(v.contains(env!("ALIDDNS_TARGET")));
        assert!(v.contains("features: "));
    }

    #[test]
    fn usage_errors_exit_2() {
        assert_eq!(run_args(&["frobnicate"]).unwrap_err().exit_code(), 2);
        assert_eq!(run_args(&["--endpoint", "ftp://x", "domains"]).unwrap_err().exit_code(), 2);
        assert_eq!(run_args(&["-c", "/nonexistent/aliddns.conf", "domains"]).unwrap_err().exit_code(), 2);
        assert_eq!(run_args(&["records"]).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_main_help_lists_every_command() {
        for c in COMMANDS {
            assert!(MAIN_HELP.contains(&format!("\n  {}", c.name)), "{} missing from the main help", c.name);
            assert!(c.help.starts_with(&format!("Usage: aliddns {}", c.name)) || c.name == "records", "{}", c.name);
        }
    }

    #[test]
    fn help_exits_0() {
        assert_eq!(run_args(&["--help"]).unwrap(), 0);
        assert_eq!(run_args(&["records", "--help"]).unwrap(), 0);
    }
}
