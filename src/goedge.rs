//! The GoEdge/FlexCDN custom HTTP DNS wire format: the token, the actions, the
//! record object and how values and routes map to AliDNS's. `serve.rs` holds the
//! handler that uses it; the facts relied on here are in docs/protocol-notes.md,
//! "GoEdge / FlexCDN custom HTTP DNS": success is exactly 200 and every failure
//! another status (GoEdge never reads an error body); `route` and `value` must
//! round-trip exactly or every sync re-adds and deletes records; host-name values
//! carry a trailing dot; `DefaultRoute` is a bare `default`.

use crate::alidns::{LineInfo, Record};
use crate::config::Secret;
use crate::json::{self, Array, Object, Value, ValueExt, object};

/// The route code of AliDNS's default line, also our `DefaultRoute` answer.
pub const DEFAULT_ROUTE: &str = "default";

/// A failed request: the status GoEdge sees and the reason we log (and send).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fail {
    /// Non-200 HTTP status.
    pub status: u16,
    /// Why, for the log and for a human with curl.
    pub reason: String,
}

/// A [`Fail`] with this status and reason.
pub fn fail(status: u16, reason: impl Into<String>) -> Fail {
    Fail { status, reason: reason.into() }
}

/// The nine actions GoEdge sends, decided once from the body's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    GetDomains,
    DefaultRoute,
    GetRecords,
    GetRoutes,
    QueryRecord,
    QueryRecords,
    AddRecord,
    UpdateRecord,
    DeleteRecord,
}

impl Action {
    /// The action a name stands for; None for one GoEdge never sends.
    pub fn from_name(name: &str) -> Option<Action> {
        Some(match name {
            "GetDomains" => Action::GetDomains,
            "DefaultRoute" => Action::DefaultRoute,
            "GetRecords" => Action::GetRecords,
            "GetRoutes" => Action::GetRoutes,
            "QueryRecord" => Action::QueryRecord,
            "QueryRecords" => Action::QueryRecords,
            "AddRecord" => Action::AddRecord,
            "UpdateRecord" => Action::UpdateRecord,
            "DeleteRecord" => Action::DeleteRecord,
            _ => return None,
        })
    }

    /// The name on the wire (and in the audit log).
    pub fn name(self) -> &'static str {
        match self {
            Action::GetDomains => "GetDomains",
            Action::DefaultRoute => "DefaultRoute",
            Action::GetRecords => "GetRecords",
            Action::GetRoutes => "GetRoutes",
            Action::QueryRecord => "QueryRecord",
            Action::QueryRecords => "QueryRecords",
            Action::AddRecord => "AddRecord",
            Action::UpdateRecord => "UpdateRecord",
            Action::DeleteRecord => "DeleteRecord",
        }
    }

    /// Whether the body names a zone (`domain`), which must then be allowed.
    pub fn needs_domain(self) -> bool {
        !matches!(self, Action::GetDomains | Action::DefaultRoute)
    }
}

/// The body's `action`: missing, null or empty is `GetDomains` (GoEdge omits it
/// for the domain list); another type is a 400. The name is returned unparsed so
/// an unknown one can still be logged.
pub fn action_name(obj: &Object) -> Result<&str, Fail> {
    match obj.get("action") {
        None | Some(Value::Null) => Ok("GetDomains"),
        Some(Value::String(s)) if s.is_empty() => Ok("GetDomains"),
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(_) => Err(fail(400, "action must be a string")),
    }
}

/// The token GoEdge sends for this timestamp: lowercase hex SHA-1 of `secret@ts`.
pub fn token_for(secret: &Secret, ts: &str) -> String {
    use sha1::{Digest, Sha1};
    use std::fmt::Write as _;
    let mut h = Sha1::new();
    h.update(secret.expose().as_bytes());
    h.update(b"@");
    h.update(ts.as_bytes());
    h.finalize().iter().fold(String::with_capacity(40), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// A GoEdge record (`dnstypes.Record`), as decoded from a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoRecord {
    /// Provider record id (ours: the AliDNS RecordId).
    pub id: String,
    /// Relative name (`@` or empty for the apex).
    pub name: String,
    /// Upper-case type.
    pub rtype: String,
    /// Value; host names may end with a dot.
    pub value: String,
    /// Line code; empty means the default line.
    pub route: String,
    /// TTL; 0 means the zone's default.
    pub ttl: i64,
}

impl GoRecord {
    /// An AliDNS record as GoEdge compares it: upper-case type, host names with
    /// their trailing dot, `ttl` within an int32.
    pub fn from_alidns(r: &Record) -> GoRecord {
        let rtype = r.rtype.to_ascii_uppercase();
        GoRecord {
            id: r.id.clone(),
            name: r.rr.clone(),
            value: goedge_value(&rtype, &r.value),
            rtype,
            route: r.line.clone(),
            ttl: r.ttl.min(i32::MAX as u32).into(),
        }
    }

    /// The one JSON encoding of a record: keys in GoEdge's struct order, `id` a string.
    pub fn to_json(&self) -> String {
        format!(
            "{{\"id\":{},\"name\":{},\"type\":{},\"value\":{},\"route\":{},\"ttl\":{}}}",
            js(&self.id),
            js(&self.name),
            js(&self.rtype),
            js(&self.value),
            js(&self.route),
            self.ttl
        )
    }

    /// Refuses what AliDNS would reject anyway, before calling it.
    pub fn check_writable(&self) -> Result<(), Fail> {
        if self.rtype.is_empty() || self.rtype.len() > 10 || !self.rtype.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(fail(400, "record type is missing or malformed"));
        }
        if self.value.is_empty() {
            return Err(fail(400, "record value is empty"));
        }
        if self.value.len() > 4096 || self.name.len() > 253 || self.route.len() > 64 {
            return Err(fail(400, "record field too long"));
        }
        Ok(())
    }
}

/// An AliDNS record as GoEdge decodes it.
pub fn record_json(r: &Record) -> String {
    GoRecord::from_alidns(r).to_json()
}

/// A JSON array of AliDNS records in GoEdge's shape.
pub fn records_json<'a>(recs: impl ExactSizeIterator<Item = &'a Record>) -> String {
    let mut out = String::with_capacity(recs.len() * 110 + 2);
    out.push('[');
    for (i, r) in recs.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&record_json(r));
    }
    out.push(']');
    out
}

/// The `GetRoutes` answer for these lines: `[{name, code}]`, the default line
/// first when AliDNS does not list it, named by its display name when it has one.
pub fn routes_json(lines: &[LineInfo]) -> Vec<u8> {
    let mut routes = Array::new();
    if !lines.iter().any(|l| l.code == DEFAULT_ROUTE) {
        routes.push(object!({"name": "默认", "code": DEFAULT_ROUTE}));
    }
    for l in lines {
        if l.code.is_empty() {
            continue;
        }
        let name = [&l.display_name, &l.name, &l.code].into_iter().find(|s| !s.is_empty()).cloned().unwrap_or_default();
        routes.push(object!({"name": name, "code": l.code}));
    }
    json::to_string(&Value::Array(routes)).into_bytes()
}

fn js(s: &str) -> String {
    json::quote(s)
}

/// A string field: missing or null is empty, any other type is a 400.
pub fn str_field(obj: &Object, key: &str) -> Result<String, Fail> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(fail(400, format!("{key} must be a string"))),
    }
}

/// Decodes a GoEdge record as strictly as GoEdge encodes it.
pub fn record_field(obj: &Object, key: &str) -> Result<GoRecord, Fail> {
    let rec = match obj.get(key) {
        Some(Value::Object(m)) => m,
        None | Some(Value::Null) => return Err(fail(400, format!("{key} is missing"))),
        Some(_) => return Err(fail(400, format!("{key} must be an object"))),
    };
    let s = |k: &str| str_field(rec, k).map_err(|f| fail(400, format!("{key}.{}", f.reason)));
    let ttl = match rec.get("ttl") {
        None | Some(Value::Null) => 0,
        Some(n @ Value::Number(_)) => match n.as_i64() {
            Some(t) if (0..=i64::from(i32::MAX)).contains(&t) => t,
            _ => return Err(fail(400, format!("{key}.ttl must be a non-negative 32-bit integer"))),
        },
        Some(_) => return Err(fail(400, format!("{key}.ttl must be a number"))),
    };
    Ok(GoRecord { id: s("id")?, name: s("name")?, rtype: s("type")?, value: s("value")?, route: s("route")?, ttl })
}

/// GoEdge's empty name is the apex, which AliDNS calls `@`.
pub fn rr_of(name: &str) -> String {
    let n = name.trim();
    if n.is_empty() { "@".to_string() } else { n.to_string() }
}

/// Types whose value ends in a host name, which GoEdge writes and compares
/// with a trailing dot while AliDNS stores it without.
fn host_valued(rtype: &str) -> bool {
    matches!(rtype, "CNAME" | "MX" | "NS" | "SRV")
}

/// A GoEdge value as AliDNS stores it (host names without the trailing dot).
pub fn upstream_value(rtype: &str, value: &str) -> String {
    if host_valued(rtype) && value.len() > 1 { value.trim_end_matches('.').to_string() } else { value.to_string() }
}

/// An AliDNS value as GoEdge compares it (host names with the trailing dot).
fn goedge_value(rtype: &str, value: &str) -> String {
    if host_valued(rtype) && !value.is_empty() && !value.ends_with('.') {
        format!("{value}.")
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        for a in [
            Action::GetDomains,
            Action::DefaultRoute,
            Action::GetRecords,
            Action::GetRoutes,
            Action::QueryRecord,
            Action::QueryRecords,
            Action::AddRecord,
            Action::UpdateRecord,
            Action::DeleteRecord,
        ] {
            assert_eq!(Action::from_name(a.name()), Some(a));
        }
        assert_eq!(Action::from_name("getdomains"), None);
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(upstream_value("CNAME", "cdn.example.com."), "cdn.example.com");
        assert_eq!(goedge_value("CNAME", "cdn.example.com"), "cdn.example.com.");
        assert_eq!(upstream_value("TXT", "v."), "v.");
        assert_eq!(goedge_value("TXT", "v"), "v");
        assert_eq!(upstream_value("CNAME", "."), ".");
        assert_eq!(rr_of(" "), "@");
    }
}
