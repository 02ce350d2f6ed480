//! `aliddns check --summary` (hidden): what the OpenWrt init script needs to know
//! about the config, as shell assignments it can `eval`. The binary is the one
//! authority on the config — its ranges, its secret rules, its interface fallbacks —
//! so the script asks instead of re-implementing them with `uci_validate_section`.

use crate::config::{Config, Document, SectionKind};
use crate::serve::Settings;
use sha1::{Digest, Sha1};
use std::fmt::Write as _;

/// The answer, one `ALIDDNS_NAME=value` line each (see `to_shell`).
#[derive(Debug, PartialEq, Eq)]
pub struct Summary {
    /// The global `enabled`: whether `run` has anything to do at all.
    pub enabled: bool,
    /// Enabled records.
    pub records: usize,
    /// Interfaces the records read their address from, each once, in config order.
    pub devices: Vec<String>,
    /// Some record follows the default route or the echo URLs (no interface, or
    /// `auto`): any interface coming up may change its address.
    pub any_interface: bool,
    /// Whether `serve` is enabled and its settings are valid.
    pub serve: bool,
    /// Why an enabled `serve` cannot start (`FILE:LINE: what is wrong`).
    pub serve_error: Option<String>,
    /// Fingerprint of what `run` reads (global, feature and record sections).
    pub main_inputs: String,
    /// Fingerprint of what `serve` reads (global and httpdns sections).
    pub serve_inputs: String,
}

impl Summary {
    /// Summarises a loaded config and the document it came from.
    pub fn new(cfg: &Config, doc: &Document) -> Summary {
        let mut devices: Vec<String> = Vec::new();
        let mut any_interface = false;
        for rec in &cfg.records {
            match rec.interface.as_deref().or(cfg.global.nic_interface.as_deref()) {
                None | Some("auto") => any_interface = true,
                Some(dev) if !devices.iter().any(|d| d == dev) => devices.push(dev.to_string()),
                Some(_) => {}
            }
        }
        let serve_error = match &cfg.httpdns {
            Some(h) if h.enabled => Settings::from_config(cfg, None).err().map(|e| e.to_string()),
            _ => None,
        };
        Summary {
            enabled: cfg.global.enabled,
            records: cfg.records.len(),
            devices,
            any_interface,
            serve: cfg.httpdns.as_ref().is_some_and(|h| h.enabled) && serve_error.is_none(),
            serve_error,
            main_inputs: inputs(doc, |k| {
                matches!(k, SectionKind::Global | SectionKind::Feature(_) | SectionKind::Record)
            }),
            serve_inputs: inputs(doc, |k| matches!(k, SectionKind::Global | SectionKind::HttpDns)),
        }
    }

    /// Shell assignments, every value quoted so `eval` takes it literally.
    pub fn to_shell(&self) -> String {
        let flag = |b: bool| if b { "1" } else { "0" };
        let lines = [
            ("ENABLED", flag(self.enabled).to_string()),
            ("RECORDS", self.records.to_string()),
            ("DEVICES", self.devices.join(" ")),
            ("ANY", flag(self.any_interface).to_string()),
            ("SERVE", flag(self.serve).to_string()),
            ("SERVE_ERROR", self.serve_error.clone().unwrap_or_default()),
            ("MAIN_INPUTS", self.main_inputs.clone()),
            ("SERVE_INPUTS", self.serve_inputs.clone()),
        ];
        let mut out = String::new();
        for (name, value) in lines {
            let _ = writeln!(out, "ALIDDNS_{name}={}", sh_quote(&value));
        }
        out
    }
}

/// A short fingerprint of the sections `wanted` selects: procd restarts an instance
/// whose environment changed, so giving each instance the fingerprint of only what
/// it reads restarts only the instance a config change concerns. A hash, never the
/// values themselves: the sections hold secrets.
fn inputs(doc: &Document, wanted: impl Fn(&SectionKind) -> bool) -> String {
    let mut h = Sha1::new();
    for s in doc.sections.iter().filter(|s| wanted(&s.kind)) {
        h.update(format!("{}\0{}\0", s.kind.tag(), s.name).as_bytes());
        for e in &s.entries {
            h.update(e.key.as_bytes());
            h.update(b"\0");
            h.update(e.value.as_bytes());
            h.update(b"\0");
        }
        h.update(b"\n");
    }
    h.finalize().iter().take(8).fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

/// `'value'`, with each `'` written as `'\''`.
fn sh_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_document;
    use std::path::Path;

    fn summary(text: &str) -> Summary {
        let doc = parse_document(Path::new("/etc/config/aliddns"), text).unwrap();
        let cfg = Config::from_document(&doc).unwrap();
        Summary::new(&cfg, &doc)
    }

    const UCI: &str = "config global 'global'\n\toption access_key 'k'\n\toption interface 'pppoe-wan'\n\n\
        config record 'a'\n\toption domain 'example.com'\n\toption rr 'home'\n\n\
        config record 'b'\n\toption domain 'example.com'\n\toption rr 'home'\n\toption type 'AAAA'\n\n\
        config record 'c'\n\toption domain 'example.com'\n\toption rr 'lan'\n\toption interface 'br-lan'\n\n\
        config record 'off'\n\toption enabled '0'\n\toption domain 'example.com'\n\toption rr 'x'\n\toption interface 'eth9'\n\n\
        config httpdns 'httpdns'\n\toption secret 'short'\n";

    #[test]
    fn records_devices_and_serve() {
        let s = summary(UCI);
        assert!(s.enabled);
        assert_eq!(s.records, 3);
        assert_eq!(s.devices, ["pppoe-wan", "br-lan"], "the global interface is every record's default");
        assert!(!s.any_interface);
        assert!(!s.serve);
        let e = s.serve_error.as_deref().unwrap();
        assert!(e.contains("/etc/config/aliddns:25:") && e.contains("secret is too short"), "{e}");
        assert!(!e.contains("short'"), "never the secret itself: {e}");
    }

    #[test]
    fn auto_and_no_interface_follow_any_interface() {
        let s = summary("[DEFAULT]\naccess_key=k\n[www]\ndomain=example.com\nsub_domain=www\n");
        assert!(s.any_interface && s.devices.is_empty());
        let s = summary(&UCI.replace("option interface 'br-lan'", "option interface 'auto'"));
        assert!(s.any_interface);
        assert_eq!(s.devices, ["pppoe-wan"]);
    }

    #[test]
    fn each_fingerprint_follows_only_its_instances_sections() {
        let base = summary(UCI);
        let secret = summary(&UCI.replace("'short'", "'0123456789abcdef'"));
        assert!(secret.serve && secret.serve_error.is_none());
        assert_eq!(secret.main_inputs, base.main_inputs, "a serve-only change keeps run");
        assert_ne!(secret.serve_inputs, base.serve_inputs);
        let record = summary(&UCI.replace("option rr 'lan'", "option rr 'lan2'"));
        assert_ne!(record.main_inputs, base.main_inputs);
        assert_eq!(record.serve_inputs, base.serve_inputs, "a record change keeps serve");
        let global = summary(&UCI.replace("access_key 'k'", "access_key 'k2'"));
        assert!(global.main_inputs != base.main_inputs && global.serve_inputs != base.serve_inputs);
        assert_eq!(base.main_inputs.len(), 16);
    }

    #[test]
    fn the_init_scripts_variable_is_no_config_override() {
        // The init script passes ALIDDNS_INPUTS to each instance; ALIDDNS_<KEY>
        // overrides a global key, so no key may be called `inputs`.
        assert!(!crate::config::GLOBAL_KEYS.contains(&"inputs"));
    }

    #[test]
    fn shell_output_quotes_everything() {
        let s = Summary {
            enabled: true,
            records: 2,
            devices: vec!["eth0".into(), "pppoe-wan".into()],
            any_interface: false,
            serve: false,
            serve_error: Some("it's $(bad) `x`".into()),
            main_inputs: "00ff".into(),
            serve_inputs: "ff00".into(),
        };
        assert_eq!(
            s.to_shell(),
            "ALIDDNS_ENABLED='1'\nALIDDNS_RECORDS='2'\nALIDDNS_DEVICES='eth0 pppoe-wan'\nALIDDNS_ANY='0'\n\
             ALIDDNS_SERVE='0'\nALIDDNS_SERVE_ERROR='it'\\''s $(bad) `x`'\nALIDDNS_MAIN_INPUTS='00ff'\n\
             ALIDDNS_SERVE_INPUTS='ff00'\n"
        );
    }
}
