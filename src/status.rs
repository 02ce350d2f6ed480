//! `aliddns status`: what the last passes did to each configured record, read from
//! the config and the state file only (no credentials, no network), for people and
//! for the LuCI page (`--json`, a stable contract).

use crate::config::{Config, RecordConf};
use crate::json::{Array, Value, object};
use crate::state::{self, Entry, State};
use std::path::Path;

/// One configured record joined to its state entry.
pub struct RecordStatus<'a> {
    /// The record as configured.
    pub rec: &'a RecordConf,
    /// Whether it is kept current: enabled itself and in the global section.
    pub enabled: bool,
    /// What the state file knows about it; None before the first pass.
    pub entry: Option<&'a Entry>,
}

impl RecordStatus<'_> {
    /// `updated`, `created`, `unchanged`, `missing`, `failed`, `never` or `disabled`.
    pub fn result(&self) -> &'static str {
        match (self.enabled, self.entry) {
            (false, _) => "disabled",
            (true, None) => "never",
            (true, Some(e)) => e.result.as_str(),
        }
    }

    fn error(&self) -> Option<&str> {
        self.entry.filter(|_| self.enabled).and_then(|e| e.error.as_deref())
    }
}

/// Every configured record, enabled or not, in config order, with its state entry.
pub fn collect<'a>(cfg: &'a Config, st: &'a State) -> Vec<RecordStatus<'a>> {
    let mut out: Vec<RecordStatus<'a>> = cfg
        .records
        .iter()
        // With DDNS switched off globally, no record is kept current.
        .map(|r| (r, cfg.global.enabled))
        .chain(cfg.disabled.iter().map(|r| (r, false)))
        .map(|(rec, enabled)| RecordStatus {
            rec,
            enabled,
            entry: st.entries.get(&state::key(&rec.fqdn(), rec.rtype.as_str(), &rec.line_code)),
        })
        .collect();
    // Both lists are in file order; their header lines merge them back into one.
    out.sort_by_key(|s| s.rec.line);
    out
}

/// The `--json` document (see docs: the LuCI page depends on these names).
pub fn to_json(config_path: &Path, cfg: &Config, st: &State, running: bool) -> Value {
    let records: Array = collect(cfg, st)
        .iter()
        .map(|s| {
            let e = s.entry;
            object!({
                "section": s.rec.section,
                "name": s.rec.fqdn(),
                "domain": s.rec.domain,
                "rr": s.rec.sub_domain,
                "type": s.rec.rtype.as_str(),
                "line": s.rec.line_code,
                "enabled": s.enabled,
                "value": e.and_then(|e| e.value.as_deref()),
                "record_id": e.and_then(|e| e.record_id.as_deref()),
                "changed_at": e.and_then(|e| e.changed_at),
                "checked_at": e.and_then(|e| e.checked_at),
                "result": s.result(),
                "error": s.error(),
            })
        })
        .collect();
    object!({
        "config": config_path.display().to_string(),
        "state_file": cfg.global.state_file.display().to_string(),
        "running": running,
        "records" => Value::Array(records),
    })
}

/// How long ago `then` was, for people: `42s ago`, `5m ago`, `3h ago`, `2d ago`.
pub fn age(now: i64, then: Option<i64>) -> String {
    let Some(then) = then else { return "-".into() };
    let s = now - then;
    match s {
        ..0 => "in the future (clock changed?)".into(),
        0..120 => format!("{s}s ago"),
        120..7200 => format!("{}m ago", s / 60),
        7200..172_800 => format!("{}h ago", s / 3600),
        _ => format!("{}d ago", s / 86_400),
    }
}

/// The text form: a line about the daemon, then one aligned line per record.
pub fn to_text(cfg: &Config, st: &State, running: bool, now: i64) -> String {
    let mut out = format!(
        "daemon: {} (state file {})\n",
        if running { "running" } else { "not running" },
        cfg.global.state_file.display()
    );
    let mut rows = vec![["NAME", "TYPE", "LINE", "VALUE", "RESULT", "CHECKED", "ERROR"].map(String::from).to_vec()];
    for s in collect(cfg, st) {
        rows.push(vec![
            s.rec.fqdn(),
            s.rec.rtype.as_str().into(),
            s.rec.line_code.clone(),
            s.entry.and_then(|e| e.value.clone()).unwrap_or_else(|| "-".into()),
            s.result().into(),
            age(now, s.entry.and_then(|e| e.checked_at)),
            s.error().unwrap_or("").replace('\n', " "),
        ]);
    }
    let cols = rows[0].len();
    let widths: Vec<usize> = (0..cols).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < cols {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_document;
    use crate::state::LastResult;

    fn cfg() -> Config {
        let text = "[DEFAULT]\nstate_file=/run/s\n[home]\ndomain=example.com\nsub_domain=home\n\
                    [off]\nenabled=0\ndomain=example.com\nsub_domain=@\ntype=AAAA\n\
                    [nas]\ndomain=example.org\nsub_domain=nas\nline=telecom\n";
        Config::from_document(&parse_document(Path::new("/etc/aliddns.conf"), text).unwrap()).unwrap()
    }

    #[test]
    fn records_in_config_order_joined_to_the_state() {
        let c = cfg();
        let mut st = State::default();
        st.entries.insert(
            state::key("home.example.com", "A", "default"),
            Entry {
                value: Some("203.0.113.7".into()),
                record_id: Some("9".into()),
                checked_at: Some(1000),
                changed_at: Some(900),
                result: LastResult::Updated,
                error: None,
            },
        );
        // Read back by another parser than the printer's.
        let text = crate::json::to_string(&to_json(Path::new("/etc/aliddns.conf"), &c, &st, false));
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let recs = v["records"].as_array().unwrap();
        let names: Vec<&str> = recs.iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["home.example.com", "example.com", "nas.example.org"]);
        assert_eq!(recs[0]["result"], "updated");
        assert_eq!(recs[0]["changed_at"], 900);
        assert_eq!((recs[1]["enabled"].as_bool(), recs[1]["result"].as_str()), (Some(false), Some("disabled")));
        assert_eq!(recs[1]["rr"], "@");
        assert_eq!(recs[2]["result"], "never");
        assert!(recs[2]["value"].is_null() && recs[2]["checked_at"].is_null());
        assert_eq!(v["state_file"], "/run/s");
        let text = to_text(&c, &st, true, 1065);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("daemon: running"), "{text}");
        assert!(lines[2].contains("203.0.113.7") && lines[2].contains("65s ago"), "{text}");
        // Aligned: every column starts where its header does.
        let col = lines[1].find("RESULT").unwrap();
        assert!(lines[2..].iter().all(|l| l[col..].starts_with(['u', 'd', 'n'])), "{text}");
    }

    #[test]
    fn ages() {
        assert_eq!(age(100, None), "-");
        assert_eq!(age(100, Some(40)), "60s ago");
        assert_eq!(age(10_000, Some(100)), "2h ago");
        assert_eq!(age(1000, Some(100)), "15m ago");
        assert_eq!(age(1_000_000, Some(100)), "11d ago");
        assert!(age(0, Some(100)).contains("future"));
    }
}
