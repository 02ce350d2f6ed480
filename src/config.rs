//! The config file: the original aliyun-ddns-client `ddns.conf` (INI) as a superset,
//! parsed into a format-neutral [`Document`] and then into typed [`Config`]. Every
//! error names the file, line and key; unknown keys are warnings, not failures.

use crate::error::{Error, Result};
use std::fmt;
use std::net::Ipv6Addr;
use std::path::{Path, PathBuf};

/// Where the config is looked for when `-c` is not given.
pub const DEFAULT_PATH: &str = "/etc/aliddns.conf";
/// OpenWrt's UCI config, used when `-c` is not given and [`DEFAULT_PATH`] does not
/// exist, so `aliddns status` (or `update`) just works on a router.
pub const OPENWRT_PATH: &str = "/etc/config/aliddns";

/// The config file used when `-c` is not given.
pub fn default_path() -> PathBuf {
    pick_default(Path::new(DEFAULT_PATH), Path::new(OPENWRT_PATH))
}

fn pick_default(primary: &Path, openwrt: &Path) -> PathBuf {
    if !primary.exists() && openwrt.exists() { openwrt } else { primary }.to_path_buf()
}

/// Where the state file lives by default: RAM on OpenWrt, so no flash wear.
pub const DEFAULT_STATE_FILE: &str = "/var/run/aliddns/state";
/// AliDNS's public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://alidns.aliyuncs.com/";

/// What a section configures, whatever the file format called it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionKind {
    /// `[DEFAULT]` (INI) or `config global` (UCI): credentials and run-wide settings.
    Global,
    /// `[feature_NAME]`: the original client's optional features.
    Feature(String),
    /// `[httpdns]` (INI) or `config httpdns` (UCI): the `serve` bridge.
    HttpDns,
    /// Any other INI section, or `config record`: one DNS record to keep current.
    Record,
}

/// One `key=value` (INI) or `option`/`list` (UCI) line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Lowercased key.
    pub key: String,
    /// Value with surrounding whitespace (and UCI quoting) removed.
    pub value: String,
    /// 1-based line number, for error messages.
    pub line: usize,
}

/// A section of either format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// What the section configures.
    pub kind: SectionKind,
    /// The INI section name, or the UCI section name (may be empty when anonymous).
    pub name: String,
    /// 1-based line of the header.
    pub line: usize,
    /// Entries in file order; a UCI `list` gives one entry per value.
    pub entries: Vec<Entry>,
}

impl Section {
    /// The last value given for `key` (later lines override earlier ones).
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }

    /// Every value given for `key`, in order (UCI lists).
    pub fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Entry> + 'a {
        self.entries.iter().filter(move |e| e.key == key)
    }

    /// How the section is named in messages: `[www]` or `record 'www'`.
    pub fn label(&self) -> String {
        if self.name.is_empty() { format!("section at line {}", self.line) } else { format!("[{}]", self.name) }
    }
}

/// A parsed file, before any key is interpreted.
#[derive(Debug, Clone, Default)]
pub struct Document {
    /// The file it came from, for messages.
    pub path: PathBuf,
    /// Sections in file order.
    pub sections: Vec<Section>,
}

/// A config problem located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, 0 when the problem is the file as a whole.
    pub line: usize,
    /// The key concerned, if any.
    pub key: Option<String>,
    /// What is wrong and, where it helps, what is expected.
    pub message: String,
}

impl ConfigError {
    /// A problem at `line` (0 = the file as a whole), about `key` if given.
    pub fn at(path: &Path, line: usize, key: Option<&str>, message: String) -> ConfigError {
        ConfigError { path: path.to_path_buf(), line, key: key.map(str::to_string), message }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
        }
        if let Some(k) = &self.key {
            write!(f, ": {k}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e.to_string())
    }
}

/// Parses the INI dialect of Python's ConfigParser as the original client used it:
/// `[section]`, `key=value` or `key: value`, `#`/`;` comment lines, indented
/// continuation lines, case-insensitive keys.
pub fn parse_ini(path: &Path, text: &str) -> Result<Document, ConfigError> {
    let err = |line: usize, key: Option<&str>, message: String| ConfigError::at(path, line, key, message);
    let mut doc = Document { path: path.to_path_buf(), sections: Vec::new() };
    for (idx, raw) in text.lines().enumerate() {
        let lineno = idx + 1;
        let raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if raw.starts_with([' ', '\t']) {
            // Continuation of the previous value (ConfigParser multi-line values).
            if let Some(e) = doc.sections.last_mut().and_then(|s| s.entries.last_mut()) {
                e.value.push('\n');
                e.value.push_str(line);
                continue;
            }
        }
        if let Some(rest) = line.strip_prefix('[') {
            let Some(name) = rest.strip_suffix(']') else {
                return Err(err(lineno, None, "the section header lacks the closing ']'".into()));
            };
            let name = name.trim().to_string();
            if name.is_empty() {
                return Err(err(lineno, None, "empty section name".into()));
            }
            if let Some(prev) = doc.sections.iter().find(|s| s.name == name) {
                return Err(err(lineno, None, format!("section [{name}] already defined at line {}", prev.line)));
            }
            let kind = if name == "DEFAULT" {
                SectionKind::Global
            } else if let Some(f) = name.strip_prefix("feature_") {
                SectionKind::Feature(f.to_string())
            } else if name.eq_ignore_ascii_case("httpdns") {
                SectionKind::HttpDns
            } else {
                SectionKind::Record
            };
            doc.sections.push(Section { kind, name, line: lineno, entries: Vec::new() });
            continue;
        }
        let pos = line.find(['=', ':']);
        let Some(pos) = pos else {
            // The line is not echoed: it may be `access_key SECRET` missing its '='.
            let first = line.split_whitespace().next().unwrap_or_default();
            // Named only when it is one of ours: a lone word could be the secret itself.
            let first = first.to_ascii_lowercase();
            let known = [GLOBAL_KEYS, RECORD_KEYS, HTTPDNS_KEYS, &["enable"]].concat();
            let key = known.contains(&first.as_str()).then_some(first.as_str());
            return Err(err(lineno, key, "expected 'key = value' (no '=' or ':' on the line)".into()));
        };
        let key = line[..pos].trim().to_ascii_lowercase();
        let value = line[pos + 1..].trim().to_string();
        if key.is_empty() {
            return Err(err(lineno, None, "a value without a key".into()));
        }
        let Some(section) = doc.sections.last_mut() else {
            return Err(err(lineno, Some(&key), "key outside of any [section]; put it under [DEFAULT]".into()));
        };
        section.entries.push(Entry { key, value, line: lineno });
    }
    Ok(doc)
}

/// Parses a config file of either supported format, detected from its content:
/// UCI (`/etc/config/aliddns`, see [`crate::uci`]) when the first command is
/// `config …` or `package …`, INI otherwise.
pub fn parse_document(path: &Path, text: &str) -> Result<Document, ConfigError> {
    if crate::uci::looks_like_uci(text) { crate::uci::parse_uci(path, text) } else { parse_ini(path, text) }
}

/// Redacts itself in `Debug` so a secret never reaches a log by accident.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is used (signing, token checks).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// Whether the secret is empty (treated as absent).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Record type a DDNS record may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordType {
    /// IPv4.
    A,
    /// IPv6.
    Aaaa,
}

impl RecordType {
    /// The AliDNS `Type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
        }
    }
}

/// Which of several equally good IPv6 addresses wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ipv6Prefer {
    /// Stable (EUI-64 or stable-privacy) addresses first: what a server should publish.
    #[default]
    Stable,
    /// RFC 4941 temporary addresses first.
    Temporary,
}

/// Run-wide settings (`[DEFAULT]` / `config global`).
#[derive(Debug, Clone)]
pub struct Global {
    /// AccessKey ID.
    pub access_id: Option<String>,
    /// AccessKey secret.
    pub access_key: Option<Secret>,
    /// STS token, for temporary credentials.
    pub security_token: Option<Secret>,
    /// AliDNS endpoint URL.
    pub endpoint: Option<String>,
    /// Seconds between passes of `run`.
    pub interval: u64,
    /// Verbose logging, as `-v`.
    pub debug: bool,
    /// The cache of what was published.
    pub state_file: PathBuf,
    /// IPv4 echo URLs, tried in order.
    pub ip_urls: Vec<String>,
    /// IPv6 echo URLs, tried in order.
    pub ipv6_urls: Vec<String>,
    /// Per-request network timeout, seconds.
    pub timeout: u64,
    /// Seconds a cached "already published" stays trusted without asking AliDNS.
    pub verify_interval: u64,
    /// Shell command run after a record changed.
    pub on_change: Option<String>,
    /// Retries after the first attempt, for transient failures.
    pub retries: u32,
    /// First backoff delay in milliseconds; doubles each retry, with jitter.
    pub retry_delay_ms: u64,
    /// CA bundle to trust instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// Default IPv6 choice among equals.
    pub ipv6_prefer: Ipv6Prefer,
    /// `[feature_public_ip_from_nic]`: take addresses from this interface.
    pub nic_interface: Option<String>,
    /// `enabled` (default true): when false, `update` and `run` do nothing (the
    /// OpenWrt package installs with `option enabled '0'`). `serve` is governed by
    /// the httpdns section's own `enabled`.
    pub enabled: bool,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            access_id: None,
            access_key: None,
            security_token: None,
            endpoint: None,
            interval: 600,
            debug: false,
            state_file: PathBuf::from(DEFAULT_STATE_FILE),
            ip_urls: Vec::new(),
            ipv6_urls: Vec::new(),
            timeout: 10,
            verify_interval: 3600,
            on_change: None,
            retries: 3,
            retry_delay_ms: 1000,
            ca_file: None,
            ipv6_prefer: Ipv6Prefer::Stable,
            nic_interface: None,
            enabled: true,
        }
    }
}

/// One record to keep pointed at an address.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordConf {
    /// The section it came from, for messages.
    pub section: String,
    /// Line of the section header.
    pub line: usize,
    /// The zone, e.g. `example.com`.
    pub domain: String,
    /// The RR: `www`, `a.b`, `*` or `@`.
    pub sub_domain: String,
    /// A or AAAA.
    pub rtype: RecordType,
    /// TTL to set; None keeps what the record has (600 on create).
    pub ttl: Option<u32>,
    /// AliDNS line code.
    pub line_code: String,
    /// Add the record when it does not exist.
    pub create: bool,
    /// Interface to read the address from; `auto` = default route's.
    pub interface: Option<String>,
    /// Interface ID appended to the interface's /64 prefix.
    pub ipv6_suffix: Option<Ipv6Addr>,
    /// IPv6 choice among equals for this record.
    pub ipv6_prefer: Ipv6Prefer,
}

impl RecordConf {
    /// `www.example.com`, `example.com` for `@`.
    pub fn fqdn(&self) -> String {
        if self.sub_domain == "@" { self.domain.clone() } else { format!("{}.{}", self.sub_domain, self.domain) }
    }
}

/// `[httpdns]`: the GoEdge custom HTTP DNS bridge.
#[derive(Debug, Clone, Default)]
pub struct HttpDnsConf {
    /// Whether the section enables serve (UCI `enabled`; INI: present means yes).
    pub enabled: bool,
    /// `ADDR:PORT` to listen on.
    pub listen: Option<String>,
    /// Shared secret with GoEdge.
    pub secret: Option<Secret>,
    /// Allowed domains; empty = all of the account.
    pub domains: Vec<String>,
    /// Allowed clock difference in seconds.
    pub max_skew: Option<u64>,
    /// PEM certificate chain for HTTPS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    pub tls_key: Option<PathBuf>,
    /// Line of the section, for messages.
    pub line: usize,
}

/// The whole typed config.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it came from (None when no file was read).
    pub path: Option<PathBuf>,
    /// Run-wide settings.
    pub global: Global,
    /// Enabled records in file order.
    pub records: Vec<RecordConf>,
    /// Records switched off with `enabled=0` (those that are complete), for `status`.
    pub disabled: Vec<RecordConf>,
    /// The serve bridge's settings, when the section exists.
    pub httpdns: Option<HttpDnsConf>,
    /// Non-fatal findings (unknown keys), to print once.
    pub warnings: Vec<String>,
}

// The keys the parser knows, per section: anything else is warned about as unknown.
// tests/docs.rs reads these lists to check that docs/configuration.md documents
// exactly them, so a key added here must be documented there.

/// Keys of `[DEFAULT]` / `config global` (record keys are accepted there too, as defaults).
pub const GLOBAL_KEYS: &[&str] = &[
    "access_id",
    "access_key",
    "security_token",
    "endpoint",
    "interval",
    "debug",
    "state_file",
    "ip_urls",
    "ipv6_urls",
    "timeout",
    "verify_interval",
    "on_change",
    "retries",
    "retry_delay_ms",
    "ca_file",
    "ipv6_prefer",
    "enabled",
];
/// Keys of a record section (`[NAME]` / `config record`).
pub const RECORD_KEYS: &[&str] = &[
    "domain",
    "sub_domain",
    "rr",
    "type",
    "ttl",
    "line",
    "create",
    "interface",
    "ipv6_suffix",
    "ipv6_prefer",
    "enabled",
];
/// Keys of `[httpdns]` / `config httpdns`.
pub const HTTPDNS_KEYS: &[&str] = &["enabled", "listen", "secret", "domains", "max_skew", "tls_cert", "tls_key"];

/// Keys of `[feature_public_ip_from_nic]`, the original client's only feature section.
pub const NIC_FEATURE_KEYS: &[&str] = &["enable", "interface"];

/// Typed access to a section's values with located errors.
struct Reader<'a> {
    path: &'a Path,
    section: &'a Section,
    /// INI `[DEFAULT]` values are inherited by every section, as in ConfigParser.
    defaults: Option<&'a Section>,
}

impl<'a> Reader<'a> {
    fn entry(&self, key: &str) -> Option<&'a Entry> {
        self.section.get(key).or_else(|| self.defaults.and_then(|d| d.get(key)))
    }

    fn err(&self, e: &Entry, message: String) -> ConfigError {
        ConfigError { path: self.path.to_path_buf(), line: e.line, key: Some(e.key.clone()), message }
    }

    fn missing(&self, key: &str) -> ConfigError {
        ConfigError {
            path: self.path.to_path_buf(),
            line: self.section.line,
            key: Some(key.into()),
            message: format!("required in {}", self.section.label()),
        }
    }

    fn string(&self, key: &str) -> Option<String> {
        self.entry(key).map(|e| e.value.clone()).filter(|v| !v.is_empty())
    }

    fn boolean(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.entry(key) {
            None => Ok(default),
            Some(e) if e.value.is_empty() => Ok(default),
            Some(e) => parse_bool(&e.value)
                .ok_or_else(|| self.err(e, format!("{} is not a boolean (true/false)", shown(&e.value)))),
        }
    }

    fn number(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.entry(key) {
            None => Ok(None),
            Some(e) if e.value.is_empty() => Ok(None),
            Some(e) => match e.value.parse::<u64>() {
                Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(self.err(e, format!("{} must be a whole number from {min} to {max}", shown(&e.value)))),
            },
        }
    }

    fn list(&self, key: &str) -> Vec<String> {
        // Comma- or space-separated in one value, or repeated (UCI `list`).
        let own: Vec<&Entry> = self.section.all(key).collect();
        let entries: Vec<&Entry> =
            if own.is_empty() { self.defaults.map(|d| d.all(key).collect()).unwrap_or_default() } else { own };
        entries
            .iter()
            .flat_map(|e| e.value.split([',', ' ', '\n', '\t']))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// `[httpdns] domains`, checked entry by entry. An entry that is not a zone
    /// name is an error, never skipped: a list that lost its only entry would
    /// widen to every domain of the account.
    fn httpdns_domains(&self) -> Result<Vec<String>, ConfigError> {
        let mut out = Vec::new();
        for e in self.section.all("domains") {
            if e.value.trim().is_empty() {
                return Err(self.err(e, "is empty: name the zones, or remove the key to allow every zone".into()));
            }
            for piece in e.value.split(',') {
                let names: Vec<&str> = piece.split_whitespace().collect();
                if names.is_empty() {
                    return Err(self.err(e, "has an empty entry (two commas, or one at an end)".into()));
                }
                for name in names {
                    match crate::serve::normalize_domain(name) {
                        Some(d) => out.push(d),
                        None => {
                            return Err(self.err(
                                e,
                                format!("'{name}' is not a domain name: write bare zone names, e.g. example.com, separated by commas or spaces"),
                            ));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    fn ipv6_prefer(&self, default: Ipv6Prefer) -> Result<Ipv6Prefer, ConfigError> {
        match self.entry("ipv6_prefer") {
            None => Ok(default),
            Some(e) => match e.value.to_ascii_lowercase().as_str() {
                "" => Ok(default),
                "stable" | "public" => Ok(Ipv6Prefer::Stable),
                "temporary" | "temp" | "privacy" => Ok(Ipv6Prefer::Temporary),
                _ => Err(self.err(e, format!("{} must be 'stable' or 'temporary'", shown(&e.value)))),
            },
        }
    }

    fn warn_unknown(&self, known: &[&str], warnings: &mut Vec<String>) {
        for e in &self.section.entries {
            if !known.contains(&e.key.as_str()) {
                warnings.push(format!(
                    "{}:{}: {}: unknown key in {}, ignored",
                    self.path.display(),
                    e.line,
                    e.key,
                    self.section.label()
                ));
            }
        }
    }
}

/// A value as error messages show it: quoted when it is one short line. A value of
/// several lines (an unclosed quote, an indented line taken as a continuation) may
/// have swallowed the lines after it, secrets included, so it is never echoed.
pub fn shown(value: &str) -> String {
    let lines = value.lines().count();
    if lines > 1 {
        format!("a value of {lines} lines (a quote not closed, or an indented line after it?)")
    } else if value.chars().count() > 80 || value.chars().any(char::is_control) {
        format!("a value of {} characters", value.chars().count())
    } else {
        format!("'{value}'")
    }
}

/// Parses `true/false`, `yes/no`, `on/off`, `1/0` as ConfigParser and UCI do.
pub fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" | "enabled" => Some(true),
        "0" | "false" | "no" | "off" | "disabled" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Interprets a parsed document.
    pub fn from_document(doc: &Document) -> Result<Config, ConfigError> {
        let path = doc.path.as_path();
        let mut cfg = Config { path: Some(doc.path.clone()), ..Default::default() };
        let global_section = doc.sections.iter().find(|s| s.kind == SectionKind::Global);
        let empty = Section { kind: SectionKind::Global, name: "DEFAULT".into(), line: 0, entries: vec![] };
        let gs = global_section.unwrap_or(&empty);
        let g = Reader { path, section: gs, defaults: None };
        // Record-level keys are allowed in DEFAULT (inherited), so they are not unknown there.
        let mut global_known: Vec<&str> = GLOBAL_KEYS.to_vec();
        global_known.extend(RECORD_KEYS);
        g.warn_unknown(&global_known, &mut cfg.warnings);
        let gl = &mut cfg.global;
        gl.enabled = g.boolean("enabled", true)?;
        gl.access_id = g.string("access_id");
        gl.access_key = g.string("access_key").map(Secret::new);
        gl.security_token = g.string("security_token").map(Secret::new);
        gl.endpoint = g.string("endpoint");
        if let Some(e) = g.entry("endpoint").filter(|e| !e.value.is_empty())
            && !(e.value.starts_with("http://") || e.value.starts_with("https://"))
        {
            return Err(g.err(e, format!("{} must start with http:// or https://", shown(&e.value))));
        }
        gl.interval = g.number("interval", 10, 86_400 * 7)?.unwrap_or(gl.interval);
        gl.debug = g.boolean("debug", false)?;
        if let Some(s) = g.string("state_file") {
            gl.state_file = PathBuf::from(s);
        }
        gl.ip_urls = g.list("ip_urls");
        gl.ipv6_urls = g.list("ipv6_urls");
        for (key, urls) in [("ip_urls", &gl.ip_urls), ("ipv6_urls", &gl.ipv6_urls)] {
            if let Some(bad) = urls.iter().find(|u| !(u.starts_with("http://") || u.starts_with("https://"))) {
                let e = g.entry(key).expect("a listed URL has an entry");
                return Err(g.err(e, format!("{} is not an http:// or https:// URL", shown(bad))));
            }
        }
        gl.timeout = g.number("timeout", 1, 300)?.unwrap_or(gl.timeout);
        gl.verify_interval = g.number("verify_interval", 0, 86_400 * 30)?.unwrap_or(gl.verify_interval);
        gl.on_change = g.string("on_change");
        gl.retries = g.number("retries", 0, 10)?.map(|n| n as u32).unwrap_or(gl.retries);
        gl.retry_delay_ms = g.number("retry_delay_ms", 0, 60_000)?.unwrap_or(gl.retry_delay_ms);
        gl.ca_file = g.string("ca_file").map(PathBuf::from);
        gl.ipv6_prefer = g.ipv6_prefer(Ipv6Prefer::Stable)?;
        let default_prefer = gl.ipv6_prefer;

        for s in &doc.sections {
            match &s.kind {
                SectionKind::Global => {}
                SectionKind::Feature(name) => {
                    let r = Reader { path, section: s, defaults: None };
                    if name == "public_ip_from_nic" {
                        r.warn_unknown(NIC_FEATURE_KEYS, &mut cfg.warnings);
                        if r.boolean("enable", false)? {
                            match r.string("interface") {
                                Some(i) => cfg.global.nic_interface = Some(i),
                                None => return Err(r.missing("interface")),
                            }
                        }
                    } else {
                        cfg.warnings.push(format!(
                            "{}:{}: unknown feature section {}, ignored",
                            path.display(),
                            s.line,
                            s.label()
                        ));
                    }
                }
                SectionKind::HttpDns => {
                    let r = Reader { path, section: s, defaults: None };
                    r.warn_unknown(HTTPDNS_KEYS, &mut cfg.warnings);
                    cfg.httpdns = Some(HttpDnsConf {
                        enabled: r.boolean("enabled", true)?,
                        listen: r.string("listen"),
                        secret: r.string("secret").map(Secret::new),
                        domains: r.httpdns_domains()?,
                        max_skew: r.number("max_skew", 1, 86_400)?,
                        tls_cert: r.string("tls_cert").map(PathBuf::from),
                        tls_key: r.string("tls_key").map(PathBuf::from),
                        line: s.line,
                    });
                }
                SectionKind::Record => {
                    let r = Reader { path, section: s, defaults: global_section };
                    r.warn_unknown(RECORD_KEYS, &mut cfg.warnings);
                    if r.boolean("enabled", true)? {
                        if let Some(rec) = read_record(&r, default_prefer)? {
                            cfg.records.push(rec);
                        }
                    } else if let Ok(Some(rec)) = read_record(&r, default_prefer) {
                        // Only for `status`; a disabled record may be incomplete.
                        cfg.disabled.push(rec);
                    }
                }
            }
        }
        Ok(cfg)
    }

    /// Loads `path` and applies `ALIDDNS_*` environment overrides. A missing file is
    /// an empty config only when it is the default path (credentials may come from
    /// the environment), an error otherwise.
    pub fn load_or_default(path: &Path, explicit: bool) -> Result<Config> {
        let mut doc = if !explicit && !path.exists() {
            Document { path: path.to_path_buf(), sections: Vec::new() }
        } else {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Error::Config(format!("{}: cannot read: {e}", path.display())))?;
            parse_document(path, &text)?
        };
        apply_env_overrides(&mut doc, |k| std::env::var(k).ok());
        let mut cfg = Config::from_document(&doc)?;
        if !explicit && !path.exists() {
            cfg.path = None;
        } else if let Some(w) = world_readable_secret(path, &cfg) {
            cfg.warnings.push(w);
        }
        Ok(cfg)
    }
}

/// A warning when the file holds a secret that every local user can read.
fn world_readable_secret(path: &Path, cfg: &Config) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let has_secret = cfg.global.access_key.is_some()
        || cfg.global.security_token.is_some()
        || cfg.httpdns.as_ref().is_some_and(|h| h.secret.is_some());
    let mode = std::fs::metadata(path).ok()?.permissions().mode();
    (has_secret && mode & 0o004 != 0).then(|| {
        format!(
            "{} holds a secret and is readable by every user (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )
    })
}

/// Lets `ALIDDNS_<KEY>` (e.g. `ALIDDNS_STATE_FILE`, `ALIDDNS_IP_URLS`) override any
/// run-wide key, for systemd `Environment=` lines and containers; the file stays
/// the place for everything per record.
pub fn apply_env_overrides(doc: &mut Document, env: impl Fn(&str) -> Option<String>) {
    let overrides: Vec<Entry> = GLOBAL_KEYS
        .iter()
        .filter_map(|k| {
            env(&format!("ALIDDNS_{}", k.to_ascii_uppercase())).map(|v| Entry {
                key: k.to_string(),
                value: v.trim().to_string(),
                line: 0,
            })
        })
        .collect();
    if overrides.is_empty() {
        return;
    }
    if !doc.sections.iter().any(|s| s.kind == SectionKind::Global) {
        doc.sections.insert(0, Section { kind: SectionKind::Global, name: "DEFAULT".into(), line: 0, entries: vec![] });
    }
    let g = doc.sections.iter_mut().find(|s| s.kind == SectionKind::Global).expect("inserted above");
    // The environment replaces the file's value; for a list key (ip_urls, repeated
    // UCI `list` lines) that means the whole list, not one more item.
    g.entries.retain(|e| !overrides.iter().any(|o| o.key == e.key));
    g.entries.extend(overrides);
}

fn read_record(r: &Reader<'_>, default_prefer: Ipv6Prefer) -> Result<Option<RecordConf>, ConfigError> {
    let s = r.section;
    let domain = r.string("domain").ok_or_else(|| r.missing("domain"))?.trim_end_matches('.').to_ascii_lowercase();
    if !valid_name(&domain) || !domain.contains('.') {
        let e = r.entry("domain").expect("domain was read");
        return Err(r.err(e, format!("{} is not a domain name like example.com", shown(&domain))));
    }
    let sub_entry = r.entry("sub_domain").or_else(|| r.entry("rr"));
    let sub_domain = match sub_entry {
        Some(e) if !e.value.trim().is_empty() => e.value.trim().to_string(),
        _ => return Err(r.missing("sub_domain")),
    };
    if sub_domain != "@" && !valid_rr(&sub_domain) {
        let e = sub_entry.expect("checked above");
        return Err(r.err(e, format!("{} is not a host record (www, a.b, *, @)", shown(&sub_domain))));
    }
    let rtype = match r.entry("type") {
        None => RecordType::A,
        Some(e) => match e.value.to_ascii_uppercase().as_str() {
            "" | "A" => RecordType::A,
            "AAAA" => RecordType::Aaaa,
            other => return Err(r.err(e, format!("{} is not supported: type must be A or AAAA", shown(other)))),
        },
    };
    let ttl = r.number("ttl", 1, 86_400)?.map(|n| n as u32);
    let line_code = r.string("line").unwrap_or_else(|| "default".into());
    let create = r.boolean("create", false)?;
    let interface = r.string("interface");
    let ipv6_suffix = match r.entry("ipv6_suffix").filter(|e| !e.value.is_empty()) {
        None => None,
        Some(e) => {
            let v: Ipv6Addr = e
                .value
                .parse()
                .map_err(|_| r.err(e, format!("{} is not an IPv6 interface ID like ::1234", shown(&e.value))))?;
            if rtype != RecordType::Aaaa {
                return Err(r.err(e, "only applies to type=AAAA records".into()));
            }
            Some(v)
        }
    };
    Ok(Some(RecordConf {
        section: s.name.clone(),
        line: s.line,
        domain,
        sub_domain,
        rtype,
        ttl,
        line_code,
        create,
        interface,
        ipv6_suffix,
        ipv6_prefer: r.ipv6_prefer(default_prefer)?,
    }))
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

fn valid_rr(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').enumerate().all(|(i, l)| {
            (l == "*" && i == 0)
                || (!l.is_empty()
                    && l.len() <= 63
                    && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGINAL: &str = "[DEFAULT]
# access id obtains from aliyun
access_id=LTAI4Gexample
# access key obtains from aliyun
access_key=s3cr3t
# it is not used at this moment, you can just ignore it
interval=600
# turn on debug mode or not
debug=true

[DomainRecord1]
# domain name, like google.com
domain=example.com
# subdomain name, like www, blog, bbs, *, @, ...
sub_domain=www
# resolve type, 'A', 'AAAA'..., currently it only supports 'A'
type=A

[feature_public_ip_from_nic]
enable=false
interface=eth0
";

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_document(&parse_document(Path::new("/etc/ddns.conf"), text)?)
    }

    #[test]
    fn reads_the_original_example() {
        let c = load(ORIGINAL).unwrap();
        assert_eq!(c.global.access_id.as_deref(), Some("LTAI4Gexample"));
        assert_eq!(c.global.access_key.as_ref().unwrap().expose(), "s3cr3t");
        assert_eq!(c.global.interval, 600);
        assert!(c.global.debug);
        assert_eq!(c.global.nic_interface, None);
        assert_eq!(c.records.len(), 1);
        let r = &c.records[0];
        assert_eq!((r.domain.as_str(), r.sub_domain.as_str(), r.rtype), ("example.com", "www", RecordType::A));
        assert_eq!(r.line_code, "default");
        assert!(!r.create);
        assert_eq!(r.fqdn(), "www.example.com");
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(!format!("{:?}", c).contains("s3cr3t"));
    }

    #[test]
    fn nic_feature_enabled() {
        let c = load(&ORIGINAL.replace("enable=false", "enable=true")).unwrap();
        assert_eq!(c.global.nic_interface.as_deref(), Some("eth0"));
    }

    #[test]
    fn new_keys() {
        let c = load(
            "[DEFAULT]\naccess_id=a\naccess_key=b\nendpoint=http://127.0.0.1:9/\nip_urls=http://a/, http://b/\n\
             verify_interval=0\nretries=0\nipv6_prefer=temporary\n\
             [home6]\ndomain=Example.COM.\nsub_domain=@\ntype=aaaa\nttl=60\nline=telecom\ncreate=yes\n\
             interface=auto\nipv6_suffix=::1234\n[w]\ndomain=example.org\nsub_domain=*.lan\n",
        )
        .unwrap();
        assert_eq!(c.global.ip_urls, vec!["http://a/", "http://b/"]);
        assert_eq!(c.global.verify_interval, 0);
        let r = &c.records[0];
        assert_eq!(r.domain, "example.com");
        assert_eq!(r.fqdn(), "example.com");
        assert_eq!(r.rtype, RecordType::Aaaa);
        assert_eq!(r.ttl, Some(60));
        assert_eq!(r.line_code, "telecom");
        assert!(r.create);
        assert_eq!(r.interface.as_deref(), Some("auto"));
        assert_eq!(r.ipv6_suffix, Some("::1234".parse().unwrap()));
        assert_eq!(r.ipv6_prefer, Ipv6Prefer::Temporary);
        assert_eq!(c.records[1].sub_domain, "*.lan");
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let e = load("[DEFAULT]\ninterval=soon\n").unwrap_err();
        assert_eq!(e.to_string(), "/etc/ddns.conf:2: interval: 'soon' must be a whole number from 10 to 604800");
        let e = load("[r]\ndomain=example.com\nsub_domain=www\ntype=MX\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (4, Some("type")));
        let e = load("[r]\ndomain=example.com\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (1, Some("sub_domain")));
        let e = load("access_id=x\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = load("[a]\n[a]\n").unwrap_err();
        assert!(e.message.contains("already defined at line 1"));
        let e = load("[DEFAULT\n").unwrap_err();
        assert!(e.message.contains("closing"));
        let e = load("[r]\ndomain=example.com\nsub_domain=www\nipv6_suffix=::1\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("ipv6_suffix"));
        let e = load("[DEFAULT]\nendpoint=alidns.aliyuncs.com\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("endpoint"));
    }

    #[test]
    fn syntax_errors_never_echo_a_secret() {
        for (text, line, key) in [
            ("[DEFAULT]\naccess_id=LTAIx\naccess_key MYSECRET0123\n", 3, Some("access_key")),
            ("[DEFAULT]\nMYSECRET0123\n", 2, None),
            // An indented line continues the value before it.
            ("[DEFAULT]\ninterval=600x\n  access_key=MYSECRET0123\n", 2, Some("interval")),
            ("[DEFAULT]\nendpoint=alidns\n  access_key=MYSECRET0123\n", 2, Some("endpoint")),
            ("[DEFAULT MYSECRET0123\n", 1, None),
        ] {
            let e = load(text).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (line, key), "{text:?}: {e}");
            assert!(!e.to_string().contains("MYSECRET0123"), "{e}");
        }
        let e = load("[DEFAULT]\ninterval=soon\n").unwrap_err();
        assert!(e.to_string().contains("'soon'"), "a one-line value is still shown: {e}");
    }

    #[test]
    fn unknown_keys_warn() {
        let c = load("[DEFAULT]\ncolour=blue\n[r]\ndomain=example.com\nsub_domain=www\nfoo=1\n").unwrap();
        assert_eq!(c.warnings.len(), 2);
        assert!(c.warnings[0].contains(":2: colour: unknown key"));
        assert!(c.warnings[1].contains(":6: foo: unknown key in [r]"));
    }

    #[test]
    fn default_section_values_are_inherited() {
        let c = load("[DEFAULT]\ntype=AAAA\n[r]\ndomain=example.com\nsub_domain=www\n").unwrap();
        assert_eq!(c.records[0].rtype, RecordType::Aaaa);
    }

    #[test]
    fn colon_separator_comments_and_continuations() {
        let c = load("; c\n[DEFAULT]\naccess_id: abc\nip_urls = http://a/\n  http://b/\n").unwrap();
        assert_eq!(c.global.access_id.as_deref(), Some("abc"));
        assert_eq!(c.global.ip_urls, vec!["http://a/", "http://b/"]);
    }

    #[test]
    fn httpdns_section() {
        let c = load("[httpdns]\nlisten=127.0.0.1:8053\nsecret=0123456789abcdef\ndomains=a.com, B.com\n").unwrap();
        let h = c.httpdns.unwrap();
        assert!(h.enabled);
        assert_eq!(h.domains, vec!["a.com", "b.com"]);
        assert_eq!(h.secret.unwrap().expose(), "0123456789abcdef");
    }

    #[test]
    fn httpdns_domains_fail_closed() {
        let c = load("[httpdns]\nsecret=0123456789abcdef\ndomains=a.com b.com.,c.com\n").unwrap();
        assert_eq!(c.httpdns.unwrap().domains, vec!["a.com", "b.com", "c.com"]);
        for bad in ["\"example.com\"", "example.com;", "a.com,,b.com", "a.com,", ",a.com", "", "a/b.com"] {
            let e = load(&format!("[httpdns]\nsecret=0123456789abcdef\ndomains={bad}\n")).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains(":3: domains: "), "{bad}: {msg}");
        }
    }

    #[test]
    fn environment_overrides_global_keys() {
        let mut doc = parse_document(Path::new("/etc/ddns.conf"), "[DEFAULT]\ninterval=600\n").unwrap();
        apply_env_overrides(&mut doc, |k| match k {
            "ALIDDNS_INTERVAL" => Some("60".into()),
            "ALIDDNS_STATE_FILE" => Some("/tmp/s".into()),
            _ => None,
        });
        let c = Config::from_document(&doc).unwrap();
        assert_eq!(c.global.interval, 60);
        assert_eq!(c.global.state_file, PathBuf::from("/tmp/s"));
        // A list from the environment replaces the file's list, in both formats.
        for text in [
            "[DEFAULT]\nip_urls=http://file-a/, http://file-b/\nipv6_urls=http://file6/\n",
            "config global\n\tlist ip_urls 'http://file-a/'\n\tlist ip_urls 'http://file-b/'\n\tlist ipv6_urls 'http://file6/'\n",
        ] {
            let mut doc = parse_document(Path::new("/etc/ddns.conf"), text).unwrap();
            apply_env_overrides(&mut doc, |k| match k {
                "ALIDDNS_IP_URLS" => Some("http://env-a/ http://env-b/".into()),
                "ALIDDNS_IPV6_URLS" => Some("http://env6/".into()),
                _ => None,
            });
            let c = Config::from_document(&doc).unwrap();
            assert_eq!(c.global.ip_urls, vec!["http://env-a/", "http://env-b/"], "{text}");
            assert_eq!(c.global.ipv6_urls, vec!["http://env6/"], "{text}");
        }
        let mut empty = Document::default();
        apply_env_overrides(&mut empty, |k| (k == "ALIDDNS_ACCESS_ID").then(|| "x".to_string()));
        assert_eq!(Config::from_document(&empty).unwrap().global.access_id.as_deref(), Some("x"));
        let mut bad = Document::default();
        apply_env_overrides(&mut bad, |k| (k == "ALIDDNS_TIMEOUT").then(|| "never".to_string()));
        let e = Config::from_document(&bad).unwrap_err();
        assert_eq!(e.key.as_deref(), Some("timeout"));
    }

    #[test]
    fn warns_about_a_world_readable_secret() {
        use std::os::unix::fs::PermissionsExt;
        let p = std::env::temp_dir().join(format!("aliddns-perm-{}.conf", std::process::id()));
        std::fs::write(&p, "[DEFAULT]\naccess_id=a\naccess_key=b\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let c = Config::load_or_default(&p, true).unwrap();
        assert!(c.warnings.iter().any(|w| w.contains("chmod 600")), "{:?}", c.warnings);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Config::load_or_default(&p, true).unwrap().warnings.is_empty());
        let _ = std::fs::remove_file(&p);
    }

    #[test]
    fn default_path_falls_back_to_the_openwrt_config() {
        let dir = std::env::temp_dir().join(format!("aliddns-defpath-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (ini, uci) = (dir.join("aliddns.conf"), dir.join("aliddns"));
        assert_eq!(pick_default(&ini, &uci), ini, "neither exists: the documented default");
        std::fs::write(&uci, "config global 'global'\n").unwrap();
        assert_eq!(pick_default(&ini, &uci), uci);
        std::fs::write(&ini, "[DEFAULT]\n").unwrap();
        assert_eq!(pick_default(&ini, &uci), ini, "the INI file wins when both exist");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn garbage_never_panics() {
        for text in ["\u{feff}[DEFAULT]\n", "[", "=", "[x]\n=\n", "[x]\n\u{0}\n", "  \n\t\n", "[ ]\n"] {
            let _ = load(text);
        }
    }
}
