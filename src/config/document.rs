//! A parsed config file before any value is interpreted: the sections and
//! entries both formats (INI, UCI) produce, the located error every config
//! problem becomes, and the keys each kind of section may hold. The parsers
//! (`ini.rs`, `uci.rs`) build a [`Document`]; `mod.rs` turns it into a typed
//! `Config`; neither needs the other.

use crate::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};

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

impl SectionKind {
    /// The kind's name, spelled out (not `Debug`, which the router builds compile to
    /// nothing): part of the fingerprint `summary` gives procd.
    pub fn tag(&self) -> &'static str {
        match self {
            SectionKind::Global => "Global",
            SectionKind::Feature(_) => "Feature",
            SectionKind::HttpDns => "HttpDns",
            SectionKind::Record => "Record",
        }
    }
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

// The keys the parser knows, per section: anything else is warned about as unknown.
// docs/configuration.md documents exactly these, so a key added here goes there too.

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
