//! AliDNS RPC signature V1 (`SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`).
//!
//! Byte-exact to the published rules (docs/protocol-notes.md, "AliDNS: signature V1",
//! which also says where each test vector comes from): RFC 3986 percent-encoding with
//! uppercase hex, parameters sorted by byte order of their names, the canonical string
//! encoded a second time inside the string-to-sign, and `secret + "&"` as the HMAC key.

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::fmt::Write as _;

/// Percent-encodes a string the way AliDNS canonicalizes it: everything but
/// `A-Z a-z 0-9 - _ . ~` becomes `%XY` (uppercase hex) per UTF-8 byte.
pub fn percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() + s.len() / 2);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
    out
}

/// The canonicalized query string: every parameter except `Signature`, sorted by
/// name in byte order, each `pe(name)=pe(value)`, joined with `&`.
pub fn canonical_query<K: AsRef<str>, V: AsRef<str>>(params: &[(K, V)]) -> String {
    let mut sorted: Vec<(&str, &str)> =
        params.iter().map(|(k, v)| (k.as_ref(), v.as_ref())).filter(|(k, _)| *k != "Signature").collect();
    sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::new();
    for (i, (k, v)) in sorted.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&percent_encode(k));
        out.push('=');
        out.push_str(&percent_encode(v));
    }
    out
}

/// `METHOD&%2F&pe(canonical query)`: what the server recomputes and compares.
pub fn string_to_sign<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)]) -> String {
    format!("{}&{}&{}", method.to_ascii_uppercase(), percent_encode("/"), percent_encode(&canonical_query(params)))
}

/// Base64 of HMAC-SHA1(key, msg); the primitive the SDK vectors test directly.
pub fn hmac_sha1_base64(key: &[u8], msg: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha1> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(msg);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The `Signature` parameter for a request signed with `secret`.
pub fn signature<K: AsRef<str>, V: AsRef<str>>(method: &str, params: &[(K, V)], secret: &str) -> String {
    let key = format!("{secret}&");
    hmac_sha1_base64(key.as_bytes(), string_to_sign(method, params).as_bytes())
}

/// A fresh `SignatureNonce`: 128 random bits as lowercase hex, like the SDKs' MD5 nonces.
pub fn nonce() -> String {
    let mut buf = [0u8; 16];
    if getrandom::getrandom(&mut buf).is_err() {
        // No entropy source (very old kernel): fall back to time and a counter,
        // still unique per process, which is all the server checks.
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let c = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // The low 64 bits of the nanoseconds: what changes between calls.
        buf[..8].copy_from_slice(&t.to_le_bytes()[..8]);
        buf[8..12].copy_from_slice(&c.to_le_bytes());
        buf[12..].copy_from_slice(&pid.to_le_bytes());
    }
    buf.iter().fold(String::with_capacity(32), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[(&str, &str)]) -> Vec<(String, String)> {
        s.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn percent_encoding_rules() {
        assert_eq!(percent_encode("AZaz09-_.~"), "AZaz09-_.~");
        assert_eq!(percent_encode(" "), "%20");
        assert_eq!(percent_encode("*"), "%2A");
        assert_eq!(percent_encode("/+=&@:%"), "%2F%2B%3D%26%40%3A%25");
        assert_eq!(percent_encode("中"), "%E4%B8%AD");
        assert_eq!(percent_encode(""), "");
    }

    #[test]
    fn v1_alidns_doc_example() {
        let params = p(&[
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeDomainRecords"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("DomainName", "example.com"),
            ("SignatureNonce", "f59ed6a9-83fc-473b-9cc6-99c95df3856e"),
            ("SignatureVersion", "1.0"),
            ("Version", "2015-01-09"),
            ("Timestamp", "2016-03-24T16:41:54Z"),
        ]);
        assert_eq!(
            canonical_query(&params),
            "AccessKeyId=testid&Action=DescribeDomainRecords&DomainName=example.com&Format=XML&SignatureMethod=HMAC-SHA1&SignatureNonce=f59ed6a9-83fc-473b-9cc6-99c95df3856e&SignatureVersion=1.0&Timestamp=2016-03-24T16%3A41%3A54Z&Version=2015-01-09"
        );
        assert_eq!(
            string_to_sign("GET", &params),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeDomainRecords%26DomainName%3Dexample.com%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Df59ed6a9-83fc-473b-9cc6-99c95df3856e%26SignatureVersion%3D1.0%26Timestamp%3D2016-03-24T16%253A41%253A54Z%26Version%3D2015-01-09"
        );
        assert_eq!(signature("GET", &params, "testsecret"), "uRpHwaSEt3J+6KQD//svCh/x+pI=");
    }

    fn ecs_example(ts_name: &str) -> Vec<(String, String)> {
        p(&[
            (ts_name, "2016-02-23T12:46:24Z"),
            ("Format", "XML"),
            ("AccessKeyId", "testid"),
            ("Action", "DescribeRegions"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"),
            ("Version", "2014-05-26"),
            ("SignatureVersion", "1.0"),
        ])
    }

    #[test]
    fn v2_ecs_doc_example() {
        let params = ecs_example("Timestamp");
        assert_eq!(
            string_to_sign("GET", &params),
            "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"
        );
        assert_eq!(signature("GET", &params, "testsecret"), "OLeaidS1JvxuMvnyHOwuJ+uX5qY=");
        // As it must travel in a URL.
        assert_eq!(percent_encode(&signature("GET", &params, "testsecret")), "OLeaidS1JvxuMvnyHOwuJ%2BuX5qY%3D");
    }

    #[test]
    fn v2b_ecs_doc_example_with_typo_timestamp_name() {
        // `TimeStamp` sorts before `Version` but after `SignatureVersion` by byte order.
        assert_eq!(signature("GET", &ecs_example("TimeStamp"), "testsecret"), "CT9X0VtwR86fNWSnsc6v8YGOjuE=");
    }

    #[test]
    fn v4_current_rpc_doc_example() {
        let params = p(&[
            ("AccessKeyId", "testid"),
            ("Action", "DescribeDedicatedHosts"),
            ("Format", "JSON"),
            ("RegionId", "cn-beijing"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "edb2b34af0af9a6d14deaf7c1a5315eb"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2023-03-13T08:34:30Z"),
            ("Version", "2014-05-26"),
        ]);
        assert_eq!(signature("GET", &params, "testsecret"), "9NaGiOspFP5UPcwX8Iwt2YJXXuk=");
    }

    fn go_sdk_params() -> Vec<(String, String)> {
        p(&[
            ("AccessKeyId", "accessKeyId"),
            ("Action", ""),
            ("Format", "JSON"),
            ("RegionId", "regionId"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "MOCK_UUID"),
            ("SignatureType", ""),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "mock date"),
            ("Version", ""),
        ])
    }

    #[test]
    fn v5_go_sdk_vector() {
        let params = go_sdk_params();
        assert_eq!(
            string_to_sign("GET", &params),
            "GET&%2F&AccessKeyId%3DaccessKeyId%26Action%3D%26Format%3DJSON%26RegionId%3DregionId%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3DMOCK_UUID%26SignatureType%3D%26SignatureVersion%3D1.0%26Timestamp%3Dmock%2520date%26Version%3D"
        );
        assert_eq!(signature("GET", &params, "accessKeySecret"), "7loPmFjvDnzOVnQeQNj85S6nFGY=");
    }

    #[test]
    fn v5_go_sdk_vector_with_sts_token() {
        let mut params = go_sdk_params();
        params.push(("SecurityToken".into(), "accessKeyStsToken".into()));
        assert_eq!(signature("GET", &params, "accessKeySecret"), "5Nxdcler+ihqWqv0Hr2On4PsBf4=");
    }

    #[test]
    fn v5_go_sdk_canonicalization_only() {
        let none: Vec<(String, String)> = vec![];
        assert_eq!(string_to_sign("GET", &none), "GET&%2F&");
        assert_eq!(string_to_sign("GET", &p(&[("key", "value")])), "GET&%2F&key%3Dvalue");
        assert_eq!(string_to_sign("GET", &p(&[("q", "value"), ("key", "value")])), "GET&%2F&key%3Dvalue%26q%3Dvalue");
        assert_eq!(
            string_to_sign("GET", &p(&[("key", "value"), ("q", "http://domain/?q=value&q2=value2")])),
            "GET&%2F&key%3Dvalue%26q%3Dhttp%253A%252F%252Fdomain%252F%253Fq%253Dvalue%2526q2%253Dvalue2"
        );
    }

    #[test]
    fn signature_parameter_is_never_signed() {
        let mut params = p(&[("key", "value")]);
        params.push(("Signature".into(), "whatever".into()));
        assert_eq!(string_to_sign("GET", &params), "GET&%2F&key%3Dvalue");
    }

    #[test]
    fn hmac_primitive_vectors() {
        assert_eq!(hmac_sha1_base64(b"secret", b"source"), "Jv4yi8SobFhg5t1C7nWLbhBSFZQ=");
        assert_eq!(hmac_sha1_base64(b"secret", "中文unicode".as_bytes()), "szlfHs3WVaO/HgY3Cg7/uyXDaRw=");
        assert_eq!(hmac_sha1_base64(b"accessKeySecretsuffix", b"string to sign"), "Dqy7QZhP4TyQUDa3SBSFXopJaIo=");
    }

    fn v6(method_extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v = p(&[
            ("AccessKeyId", "testid"),
            ("Format", "JSON"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "5f4dcc3b5aa765d61d8327deb882cf99"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", "2024-01-02T03:04:05Z"),
            ("Version", "2015-01-09"),
        ]);
        v.extend(p(method_extra));
        v
    }

    #[test]
    fn v6a_add_apex_a_record() {
        let params = v6(&[
            ("Action", "AddDomainRecord"),
            ("DomainName", "example.com"),
            ("RR", "@"),
            ("Type", "A"),
            ("Value", "203.0.113.7"),
            ("TTL", "600"),
            ("Line", "default"),
        ]);
        assert_eq!(
            canonical_query(&params),
            "AccessKeyId=testid&Action=AddDomainRecord&DomainName=example.com&Format=JSON&Line=default&RR=%40&SignatureMethod=HMAC-SHA1&SignatureNonce=5f4dcc3b5aa765d61d8327deb882cf99&SignatureVersion=1.0&TTL=600&Timestamp=2024-01-02T03%3A04%3A05Z&Type=A&Value=203.0.113.7&Version=2015-01-09"
        );
        assert_eq!(
            string_to_sign("POST", &params),
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DAddDomainRecord%26DomainName%3Dexample.com%26Format%3DJSON%26Line%3Ddefault%26RR%3D%2540%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D5f4dcc3b5aa765d61d8327deb882cf99%26SignatureVersion%3D1.0%26TTL%3D600%26Timestamp%3D2024-01-02T03%253A04%253A05Z%26Type%3DA%26Value%3D203.0.113.7%26Version%3D2015-01-09"
        );
        assert_eq!(signature("POST", &params, "testsecret"), "pqPiuFyOHb+oiHlbLPQ7velfri0=");
    }

    #[test]
    fn v6b_add_wildcard_txt_with_spaces() {
        let params = v6(&[
            ("Action", "AddDomainRecord"),
            ("DomainName", "example.com"),
            ("RR", "*"),
            ("Type", "TXT"),
            ("Value", "v=spf1 include:spf.example.net ~all"),
            ("TTL", "600"),
        ]);
        assert_eq!(
            canonical_query(&params),
            "AccessKeyId=testid&Action=AddDomainRecord&DomainName=example.com&Format=JSON&RR=%2A&SignatureMethod=HMAC-SHA1&SignatureNonce=5f4dcc3b5aa765d61d8327deb882cf99&SignatureVersion=1.0&TTL=600&Timestamp=2024-01-02T03%3A04%3A05Z&Type=TXT&Value=v%3Dspf1%20include%3Aspf.example.net%20~all&Version=2015-01-09"
        );
        assert_eq!(signature("POST", &params, "testsecret"), "4/Z1nQkfhzjznPHIlm9Eq2G9Y+8=");
    }

    #[test]
    fn v6c_describe_sub_domain_records_get() {
        let params = v6(&[
            ("Action", "DescribeSubDomainRecords"),
            ("SubDomain", "home.example.com"),
            ("Type", "AAAA"),
            ("PageSize", "100"),
        ]);
        assert_eq!(
            canonical_query(&params),
            "AccessKeyId=testid&Action=DescribeSubDomainRecords&Format=JSON&PageSize=100&SignatureMethod=HMAC-SHA1&SignatureNonce=5f4dcc3b5aa765d61d8327deb882cf99&SignatureVersion=1.0&SubDomain=home.example.com&Timestamp=2024-01-02T03%3A04%3A05Z&Type=AAAA&Version=2015-01-09"
        );
        assert_eq!(signature("GET", &params, "testsecret"), "xC5tcRsFhU4q/MbBy8JpanmsRYY=");
    }

    #[test]
    fn v6d_update_with_reserved_and_utf8_characters() {
        let params = v6(&[
            ("Action", "UpdateDomainRecord"),
            ("RecordId", "9999985"),
            ("RR", "a/b+c=d&e"),
            ("Type", "TXT"),
            ("Value", "中文 \"quoted\" *star* ~tilde~"),
        ]);
        assert_eq!(
            canonical_query(&params),
            "AccessKeyId=testid&Action=UpdateDomainRecord&Format=JSON&RR=a%2Fb%2Bc%3Dd%26e&RecordId=9999985&SignatureMethod=HMAC-SHA1&SignatureNonce=5f4dcc3b5aa765d61d8327deb882cf99&SignatureVersion=1.0&Timestamp=2024-01-02T03%3A04%3A05Z&Type=TXT&Value=%E4%B8%AD%E6%96%87%20%22quoted%22%20%2Astar%2A%20~tilde~&Version=2015-01-09"
        );
        assert_eq!(
            string_to_sign("POST", &params),
            "POST&%2F&AccessKeyId%3Dtestid%26Action%3DUpdateDomainRecord%26Format%3DJSON%26RR%3Da%252Fb%252Bc%253Dd%2526e%26RecordId%3D9999985%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D5f4dcc3b5aa765d61d8327deb882cf99%26SignatureVersion%3D1.0%26Timestamp%3D2024-01-02T03%253A04%253A05Z%26Type%3DTXT%26Value%3D%25E4%25B8%25AD%25E6%2596%2587%2520%2522quoted%2522%2520%252Astar%252A%2520~tilde~%26Version%3D2015-01-09"
        );
        assert_eq!(signature("POST", &params, "testsecret"), "9G0szJCCnrmi1+Xrhp/Z+vKKVnc=");
    }

    #[test]
    fn v6e_describe_domain_records_with_sts_token() {
        let params = v6(&[
            ("Action", "DescribeDomainRecords"),
            ("DomainName", "example.com"),
            ("RRKeyWord", "www"),
            ("TypeKeyWord", "A"),
            ("SearchMode", "ADVANCED"),
            ("PageNumber", "1"),
            ("PageSize", "500"),
            ("SecurityToken", "CAIS+token/with=chars"),
        ]);
        assert_eq!(
            canonical_query(&params),
            "AccessKeyId=testid&Action=DescribeDomainRecords&DomainName=example.com&Format=JSON&PageNumber=1&PageSize=500&RRKeyWord=www&SearchMode=ADVANCED&SecurityToken=CAIS%2Btoken%2Fwith%3Dchars&SignatureMethod=HMAC-SHA1&SignatureNonce=5f4dcc3b5aa765d61d8327deb882cf99&SignatureVersion=1.0&Timestamp=2024-01-02T03%3A04%3A05Z&TypeKeyWord=A&Version=2015-01-09"
        );
        assert_eq!(signature("GET", &params, "testsecret"), "/sNE6iZejgn5R4sA8pWk0MjLfew=");
    }

    #[test]
    fn sdk_captured_requests_sign_identically() {
        // The old Python SDK's AddDomainRecord as it went on the wire (POST, with RegionId
        // and an empty SignatureType).
        let params = v6(&[
            ("Action", "AddDomainRecord"),
            ("DomainName", "example.com"),
            ("RR", "@"),
            ("Type", "A"),
            ("Value", "203.0.113.7"),
            ("TTL", "600"),
            ("RegionId", "cn-hangzhou"),
            ("SignatureType", ""),
        ]);
        let params: Vec<(String, String)> =
            params.into_iter().map(|(k, v)| if k == "Format" { (k, "JSON".into()) } else { (k, v) }).collect();
        assert_eq!(signature("POST", &params, "testsecret"), "0X9htRljsXp7xKIac/B3g9R9YnI=");
        // The Tea SDK in v2 mode sends Format=json (lower case) and no Line.
        let tea: Vec<(String, String)> = v6(&[
            ("Action", "AddDomainRecord"),
            ("DomainName", "example.com"),
            ("RR", "@"),
            ("Type", "A"),
            ("Value", "203.0.113.7"),
            ("TTL", "600"),
        ])
        .into_iter()
        .map(|(k, v)| if k == "Format" { (k, "json".into()) } else { (k, v) })
        .collect();
        assert_eq!(signature("POST", &tea, "testsecret"), "70Fnmok7UAmobsVup2qmuhwha80=");
    }

    /// Random vectors computed by the official Python SDK (`scripts/sdk-interop.py`,
    /// run by `.ci/steps/30-sdk-interop.sh`); skipped when the file is not given.
    #[test]
    fn official_sdk_vectors() {
        let Some(path) = std::env::var_os("ALIDDNS_SDK_VECTORS") else { return };
        let text = std::fs::read_to_string(path).expect("vectors file");
        let vectors: serde_json::Value = serde_json::from_str(&text).expect("vectors JSON");
        let vectors = vectors.as_array().expect("an array");
        assert!(!vectors.is_empty());
        for v in vectors {
            let params: Vec<(String, String)> = v["params"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let method = v["method"].as_str().unwrap();
            assert_eq!(string_to_sign(method, &params), v["string_to_sign"].as_str().unwrap(), "{v}");
            assert_eq!(signature(method, &params, v["secret"].as_str().unwrap()), v["signature"].as_str().unwrap());
        }
        eprintln!("{} official SDK vectors match", vectors.len());
    }

    #[test]
    fn nonces_are_fresh_and_hex() {
        let a = nonce();
        let b = nonce();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
