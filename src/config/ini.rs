//! The INI dialect of the original Python client (`/etc/aliddns.conf`).

use super::document::{
    ConfigError, Document, Entry, GLOBAL_KEYS, HTTPDNS_KEYS, NIC_FEATURE_KEYS, RECORD_KEYS, Section, SectionKind,
};
use std::path::Path;

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
            let known = [GLOBAL_KEYS, RECORD_KEYS, HTTPDNS_KEYS, NIC_FEATURE_KEYS].concat();
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
