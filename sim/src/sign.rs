//! The simulator's own implementation of AliDNS RPC signature V1 (HMAC-SHA1,
//! `SignatureVersion=1.0`), written independently of the `aliddns` crate so a
//! shared bug cannot make both sides agree on a wrong signature.
//!
//! Public so that tests can hand-craft raw requests to the simulator; tests of the
//! client should prefer the published vectors over this code.

use std::collections::BTreeMap;

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};

/// RFC 3986 percent-encoding of the UTF-8 bytes, as the signature needs it:
/// only `A-Z a-z 0-9 - _ . ~` stay literal, everything else becomes `%XY`
/// with upper-case hex (space is `%20`, `*` is `%2A`, `~` stays `~`).
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// Decodes one `application/x-www-form-urlencoded` component: `%XY` escapes and
/// `+` as space (the real service decodes a raw `+` in the query as a space too,
/// which is why an unencoded `+` in `Signature` fails). A `%` not followed by two
/// hex digits is kept literally; invalid UTF-8 is replaced by U+FFFD.
pub fn form_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a query string or form body into decoded `(name, value)` pairs, in
/// order. Empty pieces (`a=1&&b=2`) are skipped; a piece without `=` has an
/// empty value.
pub fn parse_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| match piece.split_once('=') {
            Some((k, v)) => (form_decode(k), form_decode(v)),
            None => (form_decode(piece), String::new()),
        })
        .collect()
}

/// `CanonicalizedQueryString`: every parameter except `Signature`, sorted by name
/// (byte order), `enc(name)=enc(value)` joined with `&`; empty values kept.
pub fn canonicalized_query(params: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    for (name, value) in params {
        if name == "Signature" {
            continue;
        }
        if !out.is_empty() {
            out.push('&');
        }
        out.push_str(&percent_encode(name));
        out.push('=');
        out.push_str(&percent_encode(value));
    }
    out
}

/// `METHOD&%2F&enc(CanonicalizedQueryString)` — what the server signs and what it
/// quotes back in `SignatureDoesNotMatch` messages.
pub fn string_to_sign(method: &str, params: &BTreeMap<String, String>) -> String {
    format!("{}&{}&{}", method, percent_encode("/"), percent_encode(&canonicalized_query(params)))
}

/// `Base64(HMAC-SHA1(secret + "&", string_to_sign))`.
pub fn signature(secret: &str, string_to_sign: &str) -> String {
    let key = format!("{secret}&");
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key.as_bytes()).expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_rules() {
        assert_eq!(percent_encode("a b*c~d/e+f=g&h@i:j%中"), "a%20b%2Ac~d%2Fe%2Bf%3Dg%26h%40i%3Aj%25%E4%B8%AD");
    }

    #[test]
    fn decode_rules() {
        assert_eq!(form_decode("a+b%20c%2Bd%zz%4"), "a b c+d%zz%4");
        assert_eq!(form_decode("%E4%B8%AD"), "中");
        assert_eq!(form_decode("%"), "%");
        assert_eq!(form_decode("%4"), "%4");
        assert_eq!(form_decode("%41"), "A");
        assert_eq!(
            parse_form("a=1&&b&c=x%3Dy"),
            vec![("a".into(), "1".into()), ("b".into(), String::new()), ("c".into(), "x=y".into())]
        );
    }

    #[test]
    fn doc_vector_v1() {
        // The AliDNS documentation's example (docs/protocol-notes.md, "AliDNS: signature V1").
        let params: BTreeMap<String, String> = [
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeDomainRecords"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("DomainName", "example.com"),
            ("SignatureNonce", "f59ed6a9-83fc-473b-9cc6-99c95df3856e"),
            ("SignatureVersion", "1.0"),
            ("Version", "2015-01-09"),
            ("Timestamp", "2016-03-24T16:41:54Z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let sts = string_to_sign("GET", &params);
        assert_eq!(
            sts,
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDomainRecords%26DomainName%3Dexample.com%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Df59ed6a9-83fc-473b-9cc6-99c95df3856e%26SignatureVersion%3D1.0%26Timestamp%3D2016-03-24T16%253A41%253A54Z%26Version%3D2015-01-09"
        );
        assert_eq!(signature("testsecret", &sts), "uRpHwaSEt3J+6KQD//svCh/x+pI=");
    }
}
