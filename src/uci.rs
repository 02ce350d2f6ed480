//! OpenWrt's UCI syntax (`/etc/config/aliddns`), read by the binary itself into the
//! same format-neutral [`Document`] as the INI file, so `aliddns -c /etc/config/aliddns`
//! needs no shell glue. The rules are libuci's (`file.c`), as `uci commit`/`uci export`
//! write them and as people type them:
//!
//! - `config TYPE ['NAME']`, `option KEY 'VALUE'`, `list KEY 'VALUE'` (one entry per
//!   line), `package NAME` (ignored); the short forms `c`, `o`, `l`, `p` too;
//! - a value is one word made of concatenated parts: `'single'` (literal, may span
//!   lines), `"double"` (a backslash takes the next character literally), and unquoted
//!   text (same backslash rule); so `'it'\''s'` is `it's`, the way uci writes a `'`;
//! - `#` outside quotes ends the line, `;` separates two commands on one line, a
//!   backslash at the end of a line continues it;
//! - a second `config` with the same name reopens that section; a later `option`
//!   replaces an earlier one of the same key, `list` appends.
//!
//! Section types map onto [`SectionKind`]: `global`, `record`, `httpdns`. Any other
//! type is an error rather than a warning: with UCI the type is what a person typed
//! in `uci add aliddns recrod`, and ignoring it would drop that record without a
//! sound while the daemon kept "succeeding" with nothing to do. Unknown *options*
//! stay warnings, as in the INI format.

use crate::config::{ConfigError, Document, Entry, Section, SectionKind};
use std::path::Path;

/// Whether `text` is UCI rather than INI: its first line that is neither blank nor a
/// comment is a `config …` or `package …` command.
pub fn looks_like_uci(text: &str) -> bool {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in text.lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') || t.starts_with(';') {
            continue;
        }
        let mut words = t.splitn(2, [' ', '\t']);
        let first = words.next().unwrap_or("");
        let rest = words.next().unwrap_or("").trim_start();
        return matches!(first, "config" | "package") && !rest.is_empty() && !rest.starts_with(['=', ':']);
    }
    false
}

/// One command: its words, unquoted, and the line it starts on.
struct Command {
    line: usize,
    words: Vec<String>,
}

/// A lexing failure: line, message and the option it occurred in, if known.
struct LexError(usize, String, Option<String>);

/// Splits UCI text into commands, following libuci's quoting rules.
struct Lexer {
    chars: Vec<char>,
    pos: usize,
    line: usize,
}

impl Lexer {
    fn new(text: &str) -> Self {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Lexer { chars: text.chars().collect(), pos: 0, line: 1 }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn peek_at(&self, n: usize) -> Option<char> {
        self.chars.get(self.pos + n).copied()
    }

    /// A backslash followed by a line end (`\n` or `\r\n`), at the current position.
    fn at_continuation(&self) -> bool {
        self.peek() == Some('\\')
            && (self.peek_at(1) == Some('\n') || (self.peek_at(1) == Some('\r') && self.peek_at(2) == Some('\n')))
    }

    /// Skips a backslash-newline continuation at the current position.
    fn skip_continuation(&mut self) {
        self.pos += 1;
        if self.peek() == Some('\r') {
            self.pos += 1;
        }
        self.pos += 1;
        self.line += 1;
    }

    /// The next command, or None at the end of the text.
    fn next_command(&mut self) -> Result<Option<Command>, LexError> {
        let mut words: Vec<String> = Vec::new();
        let mut start = self.line;
        loop {
            match self.peek() {
                None => return Ok((!words.is_empty()).then_some(Command { line: start, words })),
                Some(' ' | '\t' | '\r') => self.pos += 1,
                Some('\n') => {
                    self.pos += 1;
                    self.line += 1;
                    if !words.is_empty() {
                        return Ok(Some(Command { line: start, words }));
                    }
                }
                Some(';') => {
                    self.pos += 1;
                    if !words.is_empty() {
                        return Ok(Some(Command { line: start, words }));
                    }
                }
                Some('#') => {
                    while !matches!(self.peek(), None | Some('\n')) {
                        self.pos += 1;
                    }
                }
                Some('\\') if self.at_continuation() => self.skip_continuation(),
                Some(_) => {
                    if words.is_empty() {
                        start = self.line;
                    }
                    // Name the option a broken quote belongs to; its text is never shown.
                    let key = match words.as_slice() {
                        [cmd, key] if matches!(cmd.as_str(), "option" | "o" | "list" | "l") => Some(key.clone()),
                        _ => None,
                    };
                    words.push(self.word().map_err(|LexError(l, m, _)| LexError(l, m, key))?);
                }
            }
        }
    }

    /// One word: quoted and unquoted parts up to unquoted whitespace, `;` or `#`.
    fn word(&mut self) -> Result<String, LexError> {
        let mut w = String::new();
        loop {
            match self.peek() {
                None | Some(' ' | '\t' | '\r' | '\n' | ';' | '#') => return Ok(w),
                Some('\'') => {
                    let opened = self.line;
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => return Err(LexError(opened, "a ' quote is never closed".into(), None)),
                            Some('\'') => {
                                self.pos += 1;
                                break;
                            }
                            Some(c) => {
                                self.quoted_char(&mut w, c);
                            }
                        }
                    }
                }
                Some('"') => {
                    let opened = self.line;
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => return Err(LexError(opened, "a \" quote is never closed".into(), None)),
                            Some('"') => {
                                self.pos += 1;
                                break;
                            }
                            Some('\\') if self.at_continuation() => self.skip_continuation(),
                            Some('\\') => {
                                self.pos += 1;
                                match self.peek() {
                                    None => return Err(LexError(opened, "a \" quote is never closed".into(), None)),
                                    Some(c) => self.quoted_char(&mut w, c),
                                }
                            }
                            Some(c) => self.quoted_char(&mut w, c),
                        }
                    }
                }
                Some('\\') if self.at_continuation() => self.skip_continuation(),
                Some('\\') => {
                    self.pos += 1;
                    if let Some(c) = self.peek() {
                        self.quoted_char(&mut w, c);
                    }
                }
                Some(c) => {
                    w.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    /// Takes `c` (at the current position) into a quoted value; a line end stays in the
    /// value (multi-line values), a `\r` before it does not.
    fn quoted_char(&mut self, w: &mut String, c: char) {
        self.pos += 1;
        match c {
            '\n' => {
                self.line += 1;
                w.push('\n');
            }
            '\r' if self.peek() == Some('\n') => {}
            c => w.push(c),
        }
    }
}

/// A word as messages show it: quoted when it is short and has no spaces. A long
/// word (an AccessKey secret is 30 characters) or one that swallowed lines is not
/// shown: it may be a secret pasted on a line of its own.
fn shown(word: &str) -> String {
    if word.chars().any(|c| c.is_whitespace() || c.is_control()) || word.chars().count() > 20 {
        format!("(a word of {} characters, not shown)", word.chars().count())
    } else {
        format!("'{word}'")
    }
}

/// Whether a quoted value holds, past its first line, a line that starts with a UCI
/// command: the sign of a quote left open on the option's own line.
fn swallowed_a_command(value: &str) -> bool {
    value.lines().skip(1).any(|l| {
        let first = l.split_whitespace().next().unwrap_or_default();
        matches!(first, "config" | "option" | "list" | "package")
    })
}

/// `[A-Za-z0-9_]+`: what uci accepts for section and option names.
fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Printable ASCII without spaces: what uci accepts for a section type.
fn valid_type(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (33..=126).contains(&b))
}

/// How a section is named in messages: `config record 'www'` or
/// `config record (anonymous, line 7)`.
fn describe(section: &Section, utype: &str) -> String {
    if section.name.is_empty() {
        format!("config {utype} (anonymous, line {})", section.line)
    } else {
        format!("config {utype} '{}'", section.name)
    }
}

/// Parses UCI text into a [`Document`]. Errors name the file, the line and, past the
/// first `config` line, the section they occur in.
pub fn parse_uci(path: &Path, text: &str) -> Result<Document, ConfigError> {
    let err = |line: usize, key: Option<&str>, message: String| ConfigError::at(path, line, key, message);
    let mut doc = Document { path: path.to_path_buf(), sections: Vec::new() };
    // The UCI type of each section, parallel to doc.sections, for messages.
    let mut types: Vec<String> = Vec::new();
    let mut current: Option<usize> = None;
    let mut lexer = Lexer::new(text);
    loop {
        let in_section = |current: Option<usize>, doc: &Document, types: &[String]| match current {
            Some(i) => format!(" (in {})", describe(&doc.sections[i], &types[i])),
            None => String::new(),
        };
        let cmd = match lexer.next_command() {
            Ok(Some(cmd)) => cmd,
            Ok(None) => break,
            Err(LexError(line, msg, key)) => {
                return Err(err(line, key.as_deref(), format!("{msg}{}", in_section(current, &doc, &types))));
            }
        };
        let line = cmd.line;
        let words = &cmd.words;
        if let Some(c) =
            words.iter().flat_map(|w| w.chars()).find(|&c| (c as u32) < 32 && !matches!(c, '\t' | '\n' | '\r'))
        {
            let where_ = in_section(current, &doc, &types);
            return Err(err(line, None, format!("control character U+{:04X} in the text{where_}", c as u32)));
        }
        match words[0].as_str() {
            "package" | "p" => {}
            "config" | "c" => {
                let Some(utype) = words.get(1).filter(|t| !t.is_empty()) else {
                    return Err(err(line, None, "'config' needs a section type, e.g. config record 'www'".into()));
                };
                if !valid_type(utype) {
                    return Err(err(line, None, format!("{} is not a valid section type", shown(utype))));
                }
                let name = words.get(2).cloned().unwrap_or_default();
                if !name.is_empty() && !valid_name(&name) {
                    return Err(err(
                        line,
                        None,
                        format!("section name {} may only contain letters, digits and _", shown(&name)),
                    ));
                }
                if words.len() > 3 {
                    return Err(err(
                        line,
                        None,
                        format!("too many words after 'config {utype}': one type and at most one name"),
                    ));
                }
                let kind = match utype.as_str() {
                    "global" => SectionKind::Global,
                    "record" => SectionKind::Record,
                    "httpdns" => SectionKind::HttpDns,
                    other => {
                        return Err(err(
                            line,
                            None,
                            format!("unknown section type {}: expected global, record or httpdns", shown(other)),
                        ));
                    }
                };
                if !name.is_empty()
                    && let Some(i) = doc.sections.iter().position(|s| s.name == name)
                {
                    if doc.sections[i].kind != kind {
                        return Err(err(
                            line,
                            None,
                            format!(
                                "section '{name}' is already a '{}' section (line {}), not '{utype}'",
                                types[i], doc.sections[i].line
                            ),
                        ));
                    }
                    // uci semantics: the same name reopens the section.
                    current = Some(i);
                    continue;
                }
                if matches!(kind, SectionKind::Global | SectionKind::HttpDns)
                    && let Some(prev) = doc.sections.iter().find(|s| s.kind == kind)
                {
                    return Err(err(
                        line,
                        None,
                        format!("a second '{utype}' section; the first is at line {}", prev.line),
                    ));
                }
                doc.sections.push(Section { kind, name, line, entries: Vec::new() });
                types.push(utype.clone());
                current = Some(doc.sections.len() - 1);
            }
            cmd @ ("option" | "o" | "list" | "l") => {
                let is_list = cmd.starts_with('l');
                let word = if is_list { "list" } else { "option" };
                let Some(i) = current else {
                    return Err(err(line, None, format!("'{word}' before the first 'config' line")));
                };
                let label = describe(&doc.sections[i], &types[i]);
                let Some(key) = words.get(1).filter(|k| !k.is_empty()) else {
                    return Err(err(line, None, format!("'{word}' without a name (in {label})")));
                };
                if !valid_name(key) {
                    return Err(err(
                        line,
                        None,
                        format!("option name {} may only contain letters, digits and _ (in {label})", shown(key)),
                    ));
                }
                let key = key.to_ascii_lowercase();
                // A quote left open swallows the lines after it, secrets included: such
                // values are described by their lines, never shown.
                let last = line + words.iter().map(|w| w.matches('\n').count()).sum::<usize>();
                let unclosed = words[2..].iter().any(|w| swallowed_a_command(w));
                if unclosed {
                    return Err(err(
                        line,
                        Some(&key),
                        format!(
                            "the value runs on to line {last} over other commands (in {label}): \
                             is a closing quote missing on line {line}?"
                        ),
                    ));
                }
                if words.len() > 3 {
                    return Err(err(
                        line,
                        Some(&key),
                        format!("more than one value (in {label}); quote a value that contains spaces"),
                    ));
                }
                let value = words.get(2).cloned().unwrap_or_default();
                let section = &mut doc.sections[i];
                if !is_list {
                    section.entries.retain(|e| e.key != key);
                }
                section.entries.push(Entry { key, value, line });
            }
            other => {
                return Err(err(
                    line,
                    None,
                    format!(
                        "unknown command {}: expected config, option or list{}",
                        shown(other),
                        in_section(current, &doc, &types)
                    ),
                ));
            }
        }
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Ipv6Prefer, RecordType, parse_document};

    fn doc(text: &str) -> Result<Document, ConfigError> {
        parse_uci(Path::new("/etc/config/aliddns"), text)
    }

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_document(&parse_document(Path::new("/etc/config/aliddns"), text)?)
    }

    fn values<'a>(d: &'a Document, section: usize, key: &'a str) -> Vec<&'a str> {
        d.sections[section].all(key).map(|e| e.value.as_str()).collect()
    }

    /// The default `/etc/config/aliddns` the package installs.
    const SHIPPED: &str = include_str!("../openwrt/files/aliddns.config");

    /// A filled-in router config, written the way people write them.
    const SAMPLE: &str = "\
# /etc/config/aliddns
config global 'global'
\toption enabled '1'
\toption access_id 'LTAI5tExample'
\toption access_key 'S3cr3tKey'
\toption interval '300'
\toption verify_interval '3600'
\tlist ip_urls 'https://ip.3322.net'
\tlist ip_urls 'https://myip.ipip.net/s'
\tlist ipv6_urls 'https://6.ipw.cn'

config record 'home4'
\toption domain 'example.com'
\toption rr 'home'
\toption type 'A'
\toption interface 'pppoe-wan'
\toption ttl '600'
\toption create '1'

config record 'home6'
\toption domain 'example.com'
\toption rr 'home'
\toption type 'AAAA'
\toption interface 'pppoe-wan'
\toption line 'telecom'

config record 'nas6'
\toption enabled '0'
\toption domain 'example.com'
\toption rr 'nas'
\toption type 'AAAA'
\toption interface 'br-lan'
\toption ipv6_suffix '::211:32ff:fe12:3456'

config httpdns 'httpdns'
\toption enabled '1'
\toption listen '192.168.1.1:8053'
\toption secret '0123456789abcdef0123'
\tlist domains 'example.com'
\tlist domains 'Example.NET'
";

    /// Written by the real `uci` (libuci from the libuci-sys crate's vendored
    /// source, see openwrt/tests/gen-uci-fixture.sh): `uci set`/`add`/`add_list`,
    /// then `uci commit`, with values that need its quoting.
    const UCI_COMMITTED: &str = include_str!("../openwrt/tests/fixtures/uci-commit.conf");
    /// The same package through `uci export` (adds a `package` line).
    const UCI_EXPORTED: &str = include_str!("../openwrt/tests/fixtures/uci-export.conf");

    #[test]
    fn detects_the_format() {
        assert!(looks_like_uci(SHIPPED));
        assert!(looks_like_uci(SAMPLE));
        assert!(looks_like_uci(UCI_EXPORTED));
        assert!(looks_like_uci("\u{feff}\n# c\n\nconfig\tglobal\n"));
        assert!(looks_like_uci("package aliddns\n"));
        assert!(!looks_like_uci("[DEFAULT]\naccess_id=x\n"));
        assert!(!looks_like_uci("; comment\n[DEFAULT]\n"));
        assert!(!looks_like_uci("config = x\n"));
        assert!(!looks_like_uci("configure=1\n"));
        assert!(!looks_like_uci(""));
    }

    #[test]
    fn reads_the_shipped_default_config() {
        let c = load(SHIPPED).unwrap();
        assert!(!c.global.enabled, "the package must install disabled");
        assert!(c.records.is_empty());
        let h = c.httpdns.expect("an httpdns section is shipped");
        assert!(!h.enabled);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn the_shipped_examples_parse_when_uncommented() {
        // Every commented `option`/`list`/`config` line of the shipped file, uncommented,
        // must still be valid, so the examples can be trusted.
        let uncommented: String = SHIPPED
            .lines()
            .map(|l| {
                let t = l.trim_start();
                match t.strip_prefix('#').map(str::trim_start) {
                    Some(rest) if ["config ", "option ", "list "].iter().any(|w| rest.starts_with(w)) => {
                        format!("{rest}\n")
                    }
                    _ => format!("{l}\n"),
                }
            })
            .collect();
        // While global.enabled is 0 the records inherit it and are all skipped.
        assert!(load(&uncommented).unwrap().records.is_empty());
        let c = load(&uncommented.replacen("option enabled '0'", "option enabled '1'", 1)).unwrap();
        assert!(c.records.len() >= 2, "{uncommented}");
        assert!(c.records.iter().any(|r| r.rtype == RecordType::A));
        assert!(c.records.iter().any(|r| r.rtype == RecordType::Aaaa));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn reads_the_sample() {
        let c = load(SAMPLE).unwrap();
        assert!(c.global.enabled);
        assert_eq!(c.global.access_id.as_deref(), Some("LTAI5tExample"));
        assert_eq!(c.global.access_key.as_ref().unwrap().expose(), "S3cr3tKey");
        assert_eq!(c.global.interval, 300);
        assert_eq!(c.global.ip_urls, vec!["https://ip.3322.net", "https://myip.ipip.net/s"]);
        assert_eq!(c.global.ipv6_urls, vec!["https://6.ipw.cn"]);
        // nas6 is disabled: skipped.
        assert_eq!(c.records.len(), 2);
        let (a, aaaa) = (&c.records[0], &c.records[1]);
        assert_eq!((a.section.as_str(), a.fqdn().as_str(), a.rtype), ("home4", "home.example.com", RecordType::A));
        assert_eq!(a.interface.as_deref(), Some("pppoe-wan"));
        assert_eq!(a.ttl, Some(600));
        assert!(a.create);
        assert_eq!((aaaa.rtype, aaaa.line_code.as_str()), (RecordType::Aaaa, "telecom"));
        assert_eq!(aaaa.ipv6_prefer, Ipv6Prefer::Stable);
        let h = c.httpdns.unwrap();
        assert!(h.enabled);
        assert_eq!(h.listen.as_deref(), Some("192.168.1.1:8053"));
        assert_eq!(h.domains, vec!["example.com", "example.net"]);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn global_enabled_defaults_to_true_and_reads_zero() {
        assert!(load("config global\n").unwrap().global.enabled);
        assert!(!load("config global\n\toption enabled 0\n").unwrap().global.enabled);
        assert!(load("config global\n\toption enabled 'yes'\n").unwrap().global.enabled);
        let e = load("config global\n\toption enabled 'maybe'\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (2, Some("enabled")));
    }

    #[test]
    fn reads_what_uci_commit_wrote() {
        let d = doc(UCI_COMMITTED).unwrap();
        check_uci_written(&d);
        let d = doc(UCI_EXPORTED).unwrap();
        check_uci_written(&d);
        // And the typed config from it.
        let c = load(UCI_COMMITTED).unwrap();
        assert_eq!(c.global.on_change.as_deref(), Some("logger -t aliddns \"changed: $1\" 'quoted' \\ok"));
        assert_eq!(c.global.access_key.as_ref().unwrap().expose(), "k'e\"y\\#;$x");
        assert_eq!(c.records.len(), 3);
        assert_eq!(c.records[1].section, "", "an anonymous section has no name");
        assert_eq!(c.records[1].fqdn(), "v6.example.com");
        assert_eq!(c.records[2].fqdn(), "example.org");
        assert_eq!(c.httpdns.unwrap().domains, vec!["example.com", "example.org"]);
    }

    fn check_uci_written(d: &Document) {
        let kinds: Vec<&SectionKind> = d.sections.iter().map(|s| &s.kind).collect();
        assert_eq!(
            kinds,
            [
                &SectionKind::Global,
                &SectionKind::Record,
                &SectionKind::Record,
                &SectionKind::Record,
                &SectionKind::HttpDns
            ]
        );
        assert_eq!(d.sections[0].name, "global");
        assert_eq!(values(d, 0, "access_key"), ["k'e\"y\\#;$x"]);
        assert_eq!(values(d, 0, "on_change"), ["logger -t aliddns \"changed: $1\" 'quoted' \\ok"]);
        assert_eq!(values(d, 0, "ip_urls"), ["https://a.example/ip", "https://b.example/ip?x=1&y='2'"]);
        assert_eq!(values(d, 0, "security_token"), ["line one\nline two"]);
        assert_eq!(d.sections[1].name, "www4");
        assert_eq!(d.sections[2].name, "", "uci commit writes anonymous sections without a name");
        assert_eq!(values(d, 2, "type"), ["AAAA"]);
        assert_eq!(values(d, 3, "rr"), ["@"]);
        assert_eq!(values(d, 4, "domains"), ["example.com", "example.org"]);
    }

    #[test]
    fn quoting_rules() {
        let d = doc(concat!(
            "config global\n",
            "  option a unquoted\n",
            "  option b \"double \\\"quoted\\\" \\\\ \\n\"\n",
            "  option c 'it'\\''s'\n",
            "  option d pre'fix'\"ed\"post # comment\n",
            "  option e ''\n",
            "  option f\n",
            "  option g 'multi\n line'\n",
            "  option h long\\\n  \n",
            "  option i esc\\ aped\n",
            "  option j 'x' ; option k 'y'\n",
            "  o l short\n",
            "  option m \"cont\\\ninued\"\n",
            "\toption\tn\t'tab'\r\n",
        ))
        .unwrap();
        let get = |k: &str| d.sections[0].get(k).map(|e| e.value.clone()).unwrap();
        assert_eq!(get("a"), "unquoted");
        assert_eq!(get("b"), "double \"quoted\" \\ n");
        assert_eq!(get("c"), "it's");
        assert_eq!(get("d"), "prefixedpost");
        assert_eq!(get("e"), "");
        assert_eq!(get("f"), "");
        assert_eq!(get("g"), "multi\n line");
        assert_eq!(get("h"), "long");
        assert_eq!(get("i"), "esc aped");
        assert_eq!((get("j"), get("k")), ("x".into(), "y".into()));
        assert_eq!(get("l"), "short");
        assert_eq!(get("m"), "continued");
        assert_eq!(get("n"), "tab");
        // Line numbers follow multi-line values and continuations.
        assert_eq!(d.sections[0].get("h").unwrap().line, 10);
        assert_eq!(d.sections[0].get("i").unwrap().line, 12);
        assert_eq!(d.sections[0].get("n").unwrap().line, 17);
    }

    #[test]
    fn lists_option_override_and_reopened_sections() {
        let d = doc("config global 'g'\n\
             \tlist ip_urls 'http://a/'\n\
             \tlist ip_urls 'http://b/'\n\
             \toption interval '60'\n\
             \toption interval '120'\n\
             config record 'r'\n\
             \toption domain 'example.com'\n\
             config global 'g'\n\
             \tlist ip_urls 'http://c/'\n\
             \toption ip_urls 'http://d/'\n\
             \tlist ip_urls 'http://e/'\n")
        .unwrap();
        assert_eq!(d.sections.len(), 2, "reopening 'g' adds no section");
        assert_eq!(values(&d, 0, "interval"), ["120"]);
        // `option` replaces the whole list; a later `list` appends to it, as in uci.
        assert_eq!(values(&d, 0, "ip_urls"), ["http://d/", "http://e/"]);
        let c = load("config global\n\tlist ip_urls 'http://a/'\n\tlist ip_urls 'http://b/, http://c/'\n").unwrap();
        assert_eq!(c.global.ip_urls, ["http://a/", "http://b/", "http://c/"]);
    }

    #[test]
    fn anonymous_sections() {
        let c = load(
            "config global\n\toption enabled 1\n\
             config record\n\toption domain example.com\n\toption rr a\n\
             config record\n\toption domain example.com\n\toption rr b\n\toption type AAAA\n",
        )
        .unwrap();
        assert_eq!(c.records.len(), 2);
        assert_eq!((c.records[0].sub_domain.as_str(), c.records[0].line), ("a", 3));
        assert_eq!((c.records[1].sub_domain.as_str(), c.records[1].rtype), ("b", RecordType::Aaaa));
        let e = load("config record\n\toption domain example.com\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (1, Some("sub_domain")));
    }

    #[test]
    fn an_unclosed_quote_never_echoes_the_lines_it_swallowed() {
        for (text, line, key) in [
            // One more stray quote later closes the open one: the value swallows lines.
            (
                "config global\n\toption interval '300\n\toption access_key 'MY SECRET'\n\toption debug '1\n",
                2,
                "interval",
            ),
            (
                "config global\n\toption interval '300\n\toption access_key 'MYSECRET'\n\toption debug 1'\n",
                2,
                "interval",
            ),
            ("config global\n\toption access_key 'MYSECRET\n\toption access_id 'LTAIx'\n", 3, "access_key"),
            (
                "config global\n\toption timeout \"5\n\tlist ip_urls 'http://a/'\n\toption access_key MYSECRET\"\n",
                2,
                "timeout",
            ),
        ] {
            let e = load(text).unwrap_err();
            assert_eq!((e.line, e.key.as_deref()), (line, Some(key)), "{text:?}: {e}");
            assert!(!e.to_string().contains("SECRET"), "{e}");
        }
        let e = doc("config 'global MYSECRET'\n").unwrap_err();
        assert!(!e.to_string().contains("MYSECRET"), "{e}");
        // A secret pasted on a line of its own.
        let e = doc("config global\n\tAbCdEfGhIjKlMnOpQrStUvWxYz1234\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(!e.to_string().contains("AbCdEfGhIjKlMnOpQrStUvWxYz1234"), "{e}");
    }

    #[test]
    fn errors_name_file_line_and_section() {
        let e = doc("config global\nconfig recrod 'www'\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "/etc/config/aliddns:2: unknown section type 'recrod': expected global, record or httpdns"
        );
        let e = doc("config record 'www'\n\toption domain example.com\n\toption rr 'home\n").unwrap_err();
        assert_eq!(e.to_string(), "/etc/config/aliddns:3: rr: a ' quote is never closed (in config record 'www')");
        let e = doc("config record\n\toption rr my home\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(e.key.as_deref(), Some("rr"));
        assert!(e.message.contains("config record (anonymous, line 1)"), "{e}");
        assert!(e.message.contains("quote a value"), "{e}");
        let e = doc("# c\noption a b\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "'option' before the first 'config' line"));
        let e = doc("config global\n\topton a b\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(
            e.message.starts_with("unknown command 'opton'")
                && e.message.ends_with("(in config global (anonymous, line 1))")
        );
        let e = doc("config\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = doc("config record 'w-w'\n").unwrap_err();
        assert!(e.message.contains("letters, digits and _"), "{e}");
        let e = doc("config global\n\toption 'a-b' x\n").unwrap_err();
        assert!(e.message.contains("option name 'a-b'"), "{e}");
        let e = doc("config global 'a'\nconfig global 'b'\n").unwrap_err();
        assert_eq!((e.line, e.message.as_str()), (2, "a second 'global' section; the first is at line 1"));
        let e = doc("config record 'x'\nconfig httpdns 'x'\n").unwrap_err();
        assert!(e.message.contains("already a 'record' section (line 1)"), "{e}");
        let e = doc("config global\n\toption a \"x\\\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = doc("config global a b\n").unwrap_err();
        assert!(e.message.contains("too many words"), "{e}");
        let e = doc("config global\n\toption a 'x\u{1}'\n").unwrap_err();
        assert!(e.message.contains("U+0001"), "{e}");
        // Typed errors keep the UCI line of the option.
        let e = load("config global\n\n\toption interval 'soon'\n").unwrap_err();
        assert_eq!(e.to_string(), "/etc/config/aliddns:3: interval: 'soon' must be a whole number from 10 to 604800");
    }

    #[test]
    fn unknown_options_warn() {
        let c = load("config record 'r'\n\toption domain example.com\n\toption rr w\n\toption colour blue\n").unwrap();
        assert_eq!(c.warnings.len(), 1);
        assert!(c.warnings[0].contains(":4: colour: unknown key"), "{:?}", c.warnings);
    }

    #[test]
    fn ini_still_goes_to_the_ini_parser() {
        let c = load("[DEFAULT]\naccess_id=x\n[r]\ndomain=example.com\nsub_domain=www\n").unwrap();
        assert_eq!(c.records.len(), 1);
        assert!(c.global.enabled);
    }

    #[test]
    fn garbage_never_panics() {
        let seeds = [
            "config",
            "config ",
            "config '",
            "config \"",
            "config \"\\",
            "config x\\",
            "config record 'a'\\",
            "option",
            "list",
            "config global\noption",
            "config global\nlist a",
            "c g\no\\\n",
            ";;;;",
            "#\n#",
            "config 'a'#",
            "config record ''",
            "\u{feff}config global",
            "config global\n\toption a '\u{0}'",
            "config global\r\n",
            "config \u{1F600}",
            "config record 'é'",
            "\\",
            "'",
            "\"",
            "config global\n\toption a \"\\'\"",
        ];
        for s in seeds {
            let _ = doc(s);
            let _ = load(s);
        }
        // Every prefix and a few byte-level mutations of real files.
        for text in [SAMPLE, UCI_COMMITTED, SHIPPED] {
            let chars: Vec<char> = text.chars().collect();
            for n in (0..chars.len()).step_by(7) {
                let prefix: String = chars[..n].iter().collect();
                let _ = load(&prefix);
            }
            let mut state = 0x2545_f491_u32;
            for _ in 0..300 {
                let mut m = chars.clone();
                for _ in 0..4 {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    let i = state as usize % m.len();
                    m[i] = ['\'', '"', '\\', '\n', '#', ';', ' ', 'x', '\0'][(state >> 8) as usize % 9];
                }
                let s: String = m.into_iter().collect();
                let _ = load(&s);
            }
        }
    }
}
