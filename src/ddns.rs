//! The DDNS reconcile pass behind `update` and `run`: for each configured record,
//! find the wanted address, and touch AliDNS only when needed — no API call when
//! the state file says the value is published and was verified recently, one
//! lookup otherwise, and an update or create only when the value differs.

use crate::addr::{AddrRequest, Detector};
use crate::alidns::{Client, Record, RecordSpec, UpdateOutcome, values_equal};
use crate::config::{Config, RecordConf, RecordType};
use crate::error::Error;
use crate::http::{Family, HttpOptions};
use crate::log;
use crate::signal;
use crate::state::{self, LastResult, Lock, State};
use std::net::IpAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How a pass behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct PassOptions {
    /// Ignore the state file and ask AliDNS about every record.
    pub force: bool,
    /// Change nothing; print what would be done.
    pub dry_run: bool,
}

/// What happened to one record.
#[derive(Debug)]
pub enum Outcome {
    /// AliDNS already had the value.
    Unchanged,
    /// The record was changed from the old value.
    Updated(String),
    /// The record was added.
    Created,
    /// No such record and `create` is off.
    Missing,
    /// Something failed; the record may be stale.
    Failed(Error),
    /// Dry run: what would be done.
    Plan(String),
}

/// One line of the pass's report.
#[derive(Debug)]
pub struct RecordReport {
    /// `www.example.com`.
    pub name: String,
    /// `A` or `AAAA`.
    pub rtype: &'static str,
    /// The wanted value, if it could be found.
    pub value: Option<IpAddr>,
    /// The result.
    pub outcome: Outcome,
}

impl RecordReport {
    /// `www.example.com A 203.0.113.7 updated`, the documented line format.
    pub fn line(&self) -> String {
        let value = self.value.map_or_else(|| "-".into(), |v| v.to_string());
        let what = match &self.outcome {
            Outcome::Unchanged => "unchanged".to_string(),
            Outcome::Updated(_) => "updated".to_string(),
            Outcome::Created => "created".to_string(),
            Outcome::Missing => "missing".to_string(),
            Outcome::Failed(Error::Api(e)) => format!("failed: {}: {}", e.code, e.message),
            Outcome::Failed(e) => format!("failed: {e}"),
            Outcome::Plan(p) => format!("dry-run: {p}"),
        };
        format!("{} {} {} {}", self.name, self.rtype, value, what)
    }

    /// How the line is logged: changes stand out (notice), failures are errors.
    pub fn level(&self) -> log::Level {
        match self.outcome {
            Outcome::Updated(_) | Outcome::Created => log::Level::Notice,
            Outcome::Missing | Outcome::Failed(_) => log::Level::Error,
            Outcome::Unchanged | Outcome::Plan(_) => log::Level::Info,
        }
    }

    /// Whether this record is not known to be current.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Failed(_) | Outcome::Missing)
    }
}

/// Counts over a pass, for the log.
#[derive(Debug, Default)]
pub struct PassSummary {
    /// Per-record results in config order.
    pub reports: Vec<RecordReport>,
    /// HTTP requests made to AliDNS.
    pub api_calls: u32,
}

impl PassSummary {
    /// Whether any record failed or is missing (exit status 1).
    pub fn any_failed(&self) -> bool {
        self.reports.iter().any(RecordReport::failed)
    }
}

/// Runs one pass over every record of `cfg`. `client` is None only for a dry run
/// without credentials.
///
/// The state file records each record's last result (and error) for `status`, but is
/// written only when something in it changed: a pass served entirely from the file
/// writes nothing. It only ever claims what AliDNS holds: a missing or failed record
/// is never trusted, and before AliDNS is changed the old claim is withdrawn on disk
/// (or the file removed), so a crash or a failed save cannot leave a stale claim.
pub fn pass(cfg: &Config, client: Option<&Client>, opts: PassOptions) -> PassSummary {
    let g = &cfg.global;
    let calls_before = client.map_or(0, Client::calls);
    let _lock = if opts.dry_run {
        None
    } else {
        match Lock::acquire(&g.state_file, PASS_LOCK_WAIT) {
            Ok(lock) => lock,
            Err(busy) => return not_run(cfg, busy),
        }
    };
    // Loaded even with --force, which only skips the cache check: entries of
    // other records must survive the rewrite.
    let mut disk = Disk { path: &g.state_file, held: State::load(&g.state_file) };
    let mut st = disk.held.clone();
    let mut detector = Detector::new(HttpOptions::from_global(g));
    let mut summary = PassSummary::default();
    for rec in &cfg.records {
        let name = rec.fqdn();
        let rtype = rec.rtype.as_str();
        let key = state::key(&name, rtype, &rec.line_code);
        let mut report = RecordReport { name: name.clone(), rtype, value: None, outcome: Outcome::Unchanged };
        let req = AddrRequest {
            family: if rec.rtype == RecordType::A { Family::V4 } else { Family::V6 },
            interface: rec.interface.as_deref().or(g.nic_interface.as_deref()),
            ipv6_suffix: rec.ipv6_suffix,
            prefer: rec.ipv6_prefer,
            urls: if rec.rtype == RecordType::A { &g.ip_urls } else { &g.ipv6_urls },
        };
        let wanted = match detector.detect(&req) {
            Ok(d) => {
                for w in &d.warnings {
                    log::warn(format!("{name} {rtype}: {w}"));
                }
                log::debug(format!("{name} {rtype}: wanted {} from {}", d.addr, d.source));
                d.addr
            }
            Err(e) => {
                if !opts.dry_run {
                    note(&mut st, &key, None, &Err(&e), false);
                }
                report.outcome = Outcome::Failed(e);
                summary.reports.push(report);
                continue;
            }
        };
        report.value = Some(wanted);
        let value = wanted.to_string();
        let now = crate::clock::system_now();
        let cached = st.entries.get(&key).filter(|e| e.fresh_value(now, g.verify_interval) == Some(value.as_str()));
        if let (Some(e), false) = (cached, opts.force) {
            log::debug(format!(
                "{name} {rtype}: published as {value} and verified {}s ago; no API call",
                now - e.checked_at.unwrap_or(now)
            ));
            report.outcome =
                if opts.dry_run { Outcome::Plan("unchanged (state file)".into()) } else { Outcome::Unchanged };
            summary.reports.push(report);
            continue;
        }
        let Some(client) = client else {
            report.outcome = Outcome::Plan(format!(
                "would compare with {name} {rtype} on line {} at AliDNS (no credentials)",
                rec.line_code
            ));
            summary.reports.push(report);
            continue;
        };
        let mut before_change = || if opts.dry_run { Ok(()) } else { withdraw(&mut disk, &mut st, &key) };
        let outcome = reconcile(client, rec, &value, opts.dry_run, &mut before_change);
        if !opts.dry_run {
            let asked = matches!(&outcome, Ok(_) | Err(Error::Api(_)));
            match &outcome {
                Ok((out, id)) => {
                    note(&mut st, &key, Some((&value, id)), &Ok(out), asked);
                    if let Outcome::Updated(old) = out {
                        on_change(cfg, rec, "updated", old, &value, id);
                    } else if let Outcome::Created = out {
                        on_change(cfg, rec, "created", "", &value, id);
                    }
                }
                Err(e) => note(&mut st, &key, None, &Err(e), asked),
            }
        }
        report.outcome = match outcome {
            Ok((o, _)) => o,
            Err(e) => Outcome::Failed(e),
        };
        summary.reports.push(report);
    }
    // Forget records no longer in the config (or disabled), so the file does not grow forever.
    st.entries.retain(|k, _| cfg.records.iter().any(|r| state::key(&r.fqdn(), r.rtype.as_str(), &r.line_code) == *k));
    if !opts.dry_run
        && st != disk.held
        && let Err(e) = st.save_or_discard(&g.state_file)
    {
        log::warn(e);
    }
    summary.api_calls = client.map_or(0, Client::calls) - calls_before;
    summary
}

/// How long a pass waits for the one before it: far longer than a pass takes, even
/// over a line that drops some requests, so giving up means the other pass is stuck
/// (or has been retrying a dead line for a quarter of an hour), never a race.
pub const PASS_LOCK_WAIT: Duration = Duration::from_secs(15 * 60);

/// The summary of a pass that did not run. Queued behind another pass, it has
/// nothing to report; given up on a stuck one, every record failed (exit status 1,
/// and `run` tries again sooner).
fn not_run(cfg: &Config, busy: state::Busy) -> PassSummary {
    let mut summary = PassSummary::default();
    match busy {
        state::Busy::TimedOut { .. } => {
            let why = busy.to_string();
            for rec in &cfg.records {
                summary.reports.push(RecordReport {
                    name: rec.fqdn(),
                    rtype: rec.rtype.as_str(),
                    value: None,
                    outcome: Outcome::Failed(Error::Other(why.clone())),
                });
            }
        }
        state::Busy::Queued | state::Busy::Stopped => log::info(busy.to_string()),
    }
    summary
}

/// What the state file on disk holds, as far as this pass knows.
struct Disk<'a> {
    path: &'a std::path::Path,
    held: State,
}

/// Before AliDNS is changed: if the file on disk claims a value for `key`, withdraws
/// that claim on disk first. Should the save fail and the file survive removal, the
/// change is not made (the record fails): afterwards the file would claim a value
/// AliDNS no longer holds.
fn withdraw(disk: &mut Disk<'_>, st: &mut State, key: &str) -> Result<(), Error> {
    if disk.held.entries.get(key).is_none_or(|e| e.value.is_none()) {
        return Ok(());
    }
    if let Some(e) = st.entries.get_mut(key) {
        e.value = None;
    }
    let saved = st
        .save_or_discard(disk.path)
        .map_err(|e| Error::Other(format!("{e}: not changing AliDNS while it claims the old value")))?;
    disk.held = if saved { st.clone() } else { State::default() };
    Ok(())
}

/// Records a record's result in the state. `published` is the value and RecordId
/// AliDNS holds after a successful reconcile; `asked` whether AliDNS answered
/// (which alone advances `checked_at`).
fn note(st: &mut State, key: &str, published: Option<(&str, &str)>, outcome: &Result<&Outcome, &Error>, asked: bool) {
    let now = crate::clock::system_now();
    let e = st.entries.entry(key.to_string()).or_insert(state::Entry {
        value: None,
        record_id: None,
        checked_at: None,
        changed_at: None,
        result: LastResult::Failed,
        error: None,
    });
    if asked {
        e.checked_at = Some(now);
    }
    e.error = None;
    match outcome {
        Ok(out) => {
            e.result = match out {
                Outcome::Updated(_) => LastResult::Updated,
                Outcome::Created => LastResult::Created,
                Outcome::Missing => LastResult::Missing,
                _ => LastResult::Unchanged,
            };
            if matches!(out, Outcome::Updated(_) | Outcome::Created) {
                e.changed_at = Some(now);
            }
            let published = published.filter(|_| e.result.published());
            e.value = published.map(|(v, _)| v.to_string());
            e.record_id = published.map(|(_, id)| id.to_string()).filter(|id| !id.is_empty());
            if e.result == LastResult::Missing {
                e.error = Some("no such record at AliDNS, and create is off".into());
            }
        }
        Err(err) => {
            // What AliDNS holds after a failed change is not known; after a failure
            // before any change it still holds the value (kept for `status`, but a
            // failed entry is never trusted as published).
            if asked {
                e.value = None;
            }
            e.result = LastResult::Failed;
            e.error = Some(error_text(err));
        }
    }
}

/// The text stored as a record's error: AliDNS's `Code: Message`, or the local reason.
pub fn error_text(e: &Error) -> String {
    match e {
        Error::Api(a) => format!("{}: {}", a.code, a.message),
        other => other.to_string(),
    }
}

/// Brings one record to `value`; returns the outcome and the RecordId.
/// `before_change` runs just before AliDNS is changed; its error stops the change.
fn reconcile(
    client: &Client,
    rec: &RecordConf,
    value: &str,
    dry_run: bool,
    before_change: &mut dyn FnMut() -> Result<(), Error>,
) -> Result<(Outcome, String), Error> {
    let rtype = rec.rtype.as_str();
    let name = rec.fqdn();
    let found = lookup(client, rec)?;
    if found.is_empty() {
        if !rec.create {
            return Ok((Outcome::Missing, String::new()));
        }
        if dry_run {
            return Ok((Outcome::Plan(format!("would create with value {value}")), String::new()));
        }
        let spec = spec(rec, value, None);
        before_change()?;
        return match client.add_domain_record(&rec.domain, &spec) {
            Ok(id) => Ok((Outcome::Created, id)),
            Err(e) if e.code() == Some("DomainRecordDuplicate") => {
                // Another run created it between our lookup and our add.
                let again = lookup(client, rec)?;
                match again.iter().find(|r| values_equal(rtype, &r.value, value)) {
                    Some(r) => Ok((Outcome::Unchanged, r.id.clone())),
                    None => Err(e),
                }
            }
            Err(e) => Err(e),
        };
    }
    if found.len() > 1 {
        log::warn(format!(
            "{name} {rtype}: {} records on line {} ({}); only one is kept current, the others are left alone",
            found.len(),
            rec.line_code,
            found.iter().map(|r| r.id.as_str()).collect::<Vec<_>>().join(", ")
        ));
    }
    // Prefer a record that already has the value, else the oldest (lowest id).
    let target = found.iter().find(|r| values_equal(rtype, &r.value, value)).unwrap_or(&found[0]);
    let ttl_ok = rec.ttl.is_none_or(|t| t == target.ttl);
    if values_equal(rtype, &target.value, value) && ttl_ok {
        return Ok((Outcome::Unchanged, target.id.clone()));
    }
    if target.locked {
        return Err(Error::Other(format!(
            "record {} is locked at AliDNS; unlock it to let aliddns update it",
            target.id
        )));
    }
    if dry_run {
        return Ok((
            Outcome::Plan(format!("would update record {} from {}", target.id, target.value)),
            target.id.clone(),
        ));
    }
    before_change()?;
    match client.update_domain_record(&target.id, &spec(rec, value, Some(target)))? {
        UpdateOutcome::Updated => Ok((Outcome::Updated(target.value.clone()), target.id.clone())),
        UpdateOutcome::Unchanged => Ok((Outcome::Unchanged, target.id.clone())),
    }
}

fn lookup(client: &Client, rec: &RecordConf) -> Result<Vec<Record>, Error> {
    let mut found = client.describe_sub_domain_records(
        &rec.fqdn(),
        Some(&rec.domain),
        Some(rec.rtype.as_str()),
        Some(&rec.line_code),
    )?;
    // The lookup is by full name; keep exactly this RR (a zone may hold a.b and b).
    found.retain(|r| r.rr.eq_ignore_ascii_case(&rec.sub_domain));
    found.sort_by(|a, b| numeric_id(&a.id).cmp(&numeric_id(&b.id)).then_with(|| a.id.cmp(&b.id)));
    Ok(found)
}

fn numeric_id(id: &str) -> u128 {
    id.parse().unwrap_or(u128::MAX)
}

fn spec(rec: &RecordConf, value: &str, current: Option<&Record>) -> RecordSpec {
    RecordSpec {
        rr: rec.sub_domain.clone(),
        rtype: rec.rtype.as_str().to_string(),
        value: value.to_string(),
        // Send the current TTL unless one is configured: AliDNS may reset omitted ones.
        ttl: rec.ttl.or(current.map(|c| c.ttl)),
        line: Some(rec.line_code.clone()),
        priority: None,
    }
}

/// Runs the `on_change` hook with the change in environment variables, bounded
/// in time so a hanging script cannot stall the daemon.
fn on_change(cfg: &Config, rec: &RecordConf, action: &str, old: &str, new: &str, id: &str) {
    let Some(cmd) = &cfg.global.on_change else { return };
    let child = Command::new("/bin/sh")
        .arg("-c")
        .arg(cmd)
        .env("ALIDDNS_ACTION", action)
        .env("ALIDDNS_NAME", rec.fqdn())
        .env("ALIDDNS_DOMAIN", &rec.domain)
        .env("ALIDDNS_RR", &rec.sub_domain)
        .env("ALIDDNS_TYPE", rec.rtype.as_str())
        .env("ALIDDNS_LINE", &rec.line_code)
        .env("ALIDDNS_OLD", old)
        .env("ALIDDNS_NEW", new)
        .env("ALIDDNS_RECORD_ID", id)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .env_remove("ALIBABA_CLOUD_SECURITY_TOKEN")
        .env_remove("ALIDDNS_ACCESS_KEY")
        .env_remove("ALIDDNS_SECURITY_TOKEN")
        .stdin(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(c) => c,
        Err(e) => {
            log::warn(format!("on_change: cannot start /bin/sh: {e}"));
            return;
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return,
            Ok(Some(status)) => {
                log::warn(format!("on_change for {} exited with {status}", rec.fqdn()));
                return;
            }
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                log::warn(format!("on_change for {} still running after 60s; killed", rec.fqdn()));
                return;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                log::warn(format!("on_change: {e}"));
                return;
            }
        }
    }
}

/// `aliddns run`: a pass every `interval` seconds until SIGTERM. A failed pass is
/// retried sooner (30 s, doubling up to the interval), so a WAN or clock that is
/// not ready at boot costs seconds, not a whole interval.
pub fn run_loop(cfg: &Config, client: Option<&Client>) {
    signal::install();
    // Held until the daemon exits, so `status` can tell that it runs.
    let _daemon = state::DaemonLock::acquire(&cfg.global.state_file);
    let interval = Duration::from_secs(cfg.global.interval);
    let mut retry = Duration::from_secs(30);
    log::info(format!(
        "aliddns {} running: {} record(s), every {}s",
        env!("CARGO_PKG_VERSION"),
        cfg.records.len(),
        cfg.global.interval
    ));
    while !signal::stop_requested() {
        let summary = pass(cfg, client, PassOptions::default());
        for r in &summary.reports {
            // Quiet when nothing happened, to keep the router's log readable.
            if !matches!(r.outcome, Outcome::Unchanged) || log::verbose() {
                log::log(r.level(), r.line());
            }
        }
        let wait = if summary.any_failed() {
            let w = retry.min(interval);
            retry = (retry * 2).min(interval);
            log::info(format!("pass had failures; next try in {}s", w.as_secs()));
            w
        } else {
            retry = Duration::from_secs(30);
            interval
        };
        // Until the next pass is due, asleep unless a signal arrives.
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || signal::stop_requested() {
                break;
            }
            if signal::take_pass_request() {
                log::info("SIGUSR1: pass now");
                break;
            }
            signal::wait(Some(left));
        }
    }
    log::info("stopping");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(value: Option<&str>) -> state::Entry {
        state::Entry {
            value: value.map(str::to_string),
            record_id: Some("7".into()),
            checked_at: Some(1000),
            changed_at: None,
            result: LastResult::Unchanged,
            error: None,
        }
    }

    #[test]
    fn a_pass_that_did_not_run_fails_every_record_only_when_it_gave_up() {
        let text = "[DEFAULT]\naccess_id=i\naccess_key=k\n[www]\ndomain=example.com\nsub_domain=www\n\
                    [v6]\ndomain=example.com\nsub_domain=v6\ntype=AAAA\n";
        let doc = crate::config::parse_document(std::path::Path::new("t.conf"), text).unwrap();
        let cfg = Config::from_document(&doc).unwrap();
        let busy = state::Busy::TimedOut { lock: "/var/run/aliddns/state.lock".into(), waited: PASS_LOCK_WAIT };
        let summary = not_run(&cfg, busy);
        let lines: Vec<_> = summary.reports.iter().map(RecordReport::line).collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("www.example.com A - failed: another aliddns pass has held "), "{}", lines[0]);
        assert!(lines[1].starts_with("v6.example.com AAAA - failed: "), "{}", lines[1]);
        assert!(lines[0].contains("/var/run/aliddns/state.lock for 900s"), "{}", lines[0]);
        assert!(summary.any_failed());
        // Queued behind a running pass (or stopping): nothing failed, nothing to report.
        for busy in [state::Busy::Queued, state::Busy::Stopped] {
            let summary = not_run(&cfg, busy);
            assert!(summary.reports.is_empty() && !summary.any_failed());
        }
    }

    #[test]
    fn a_claim_that_cannot_be_withdrawn_stops_the_change() {
        let dir = std::env::temp_dir().join(format!("aliddns-withdraw-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("state/x")).unwrap();
        let key = state::key("www.example.com", "A", "default");
        let mut held = State::default();
        held.entries.insert(key.clone(), entry(Some("203.0.113.7")));
        // The "state file" is a non-empty directory: it can be neither replaced,
        // removed nor emptied, even by root.
        let path = dir.join("state");
        let mut disk = Disk { path: &path, held: held.clone() };
        let mut st = held.clone();
        let e = withdraw(&mut disk, &mut st, &key).unwrap_err().to_string();
        assert!(e.contains("not changing AliDNS"), "{e}");
        // Nothing to withdraw (no claim on disk): the change may go ahead without a write.
        let mut disk = Disk { path: &path, held: State::default() };
        assert!(withdraw(&mut disk, &mut st, &key).is_ok());
        // A writable file: the claim is withdrawn on disk before the change.
        let path = dir.join("ok");
        held.save(&path).unwrap();
        let mut disk = Disk { path: &path, held: held.clone() };
        let mut st = held;
        withdraw(&mut disk, &mut st, &key).unwrap();
        assert_eq!(State::load(&path).entries[&key], entry(None));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
