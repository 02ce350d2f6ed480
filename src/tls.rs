//! The TLS crypto provider: ring, cut down to what AliDNS and the common echo
//! services negotiate, so the router binary carries no code nobody uses.
//!
//! Kept: TLS 1.3 and 1.2, AES-GCM suites only (TLS_AES_128_GCM_SHA256 is mandatory
//! for every TLS 1.3 server, ECDHE+AES-GCM with RSA or ECDSA certificates is what
//! every TLS 1.2 server of the last decade offers), X25519 and P-256 key exchange,
//! and certificate signatures by RSA (PKCS#1 v1.5 and PSS, SHA-256/384/512) and
//! ECDSA (P-256, P-384) — what the public CAs issue and sign with. Left out:
//! ChaCha20-Poly1305, P-384 key exchange, Ed25519 certificates (no public CA issues
//! them), and for the client, private-key loading (aliddns never presents a client
//! certificate). `serve` over HTTPS uses the same set plus ring's loading of RSA and
//! ECDSA keys; its clients (GoEdge, Go's crypto/tls) offer AES-GCM and X25519/P-256.

use rustls::SignatureScheme;
use rustls::crypto::ring::{cipher_suite as cs, kx_group};
use rustls::crypto::{CryptoProvider, GetRandomFailed, KeyProvider, SecureRandom, WebPkiSupportedAlgorithms};
use rustls::pki_types::PrivateKeyDer;
use rustls::sign::SigningKey;
use std::sync::Arc;
use webpki::ring as alg;

/// The provider of every HTTPS request aliddns makes.
pub fn provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: vec![
            cs::TLS13_AES_128_GCM_SHA256,
            cs::TLS13_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
            cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
            cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        ],
        kx_groups: vec![kx_group::X25519, kx_group::SECP256R1],
        signature_verification_algorithms: SIGNATURES,
        secure_random: &OsRandom,
        key_provider: &NoKeys,
    }
}

/// The provider of `serve`'s HTTPS listener: [`provider`] that can load the
/// server's key (RSA or ECDSA; PKCS#8, PKCS#1 or SEC1 PEM).
pub fn server_provider() -> CryptoProvider {
    CryptoProvider { key_provider: &RingKeys, ..provider() }
}

/// Certificate and handshake signatures we verify. For TLS 1.2 an ECDSA scheme does
/// not fix the curve, so each maps to both curves (as rustls' own table does).
static SIGNATURES: WebPkiSupportedAlgorithms = WebPkiSupportedAlgorithms {
    all: &[
        alg::ECDSA_P256_SHA256,
        alg::ECDSA_P256_SHA384,
        alg::ECDSA_P384_SHA256,
        alg::ECDSA_P384_SHA384,
        alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
        alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
        alg::RSA_PKCS1_2048_8192_SHA256,
        alg::RSA_PKCS1_2048_8192_SHA384,
        alg::RSA_PKCS1_2048_8192_SHA512,
        alg::RSA_PKCS1_2048_8192_SHA256_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA384_ABSENT_PARAMS,
        alg::RSA_PKCS1_2048_8192_SHA512_ABSENT_PARAMS,
    ],
    mapping: &[
        (SignatureScheme::ECDSA_NISTP384_SHA384, &[alg::ECDSA_P384_SHA384, alg::ECDSA_P256_SHA384]),
        (SignatureScheme::ECDSA_NISTP256_SHA256, &[alg::ECDSA_P256_SHA256, alg::ECDSA_P384_SHA256]),
        (SignatureScheme::RSA_PSS_SHA512, &[alg::RSA_PSS_2048_8192_SHA512_LEGACY_KEY]),
        (SignatureScheme::RSA_PSS_SHA384, &[alg::RSA_PSS_2048_8192_SHA384_LEGACY_KEY]),
        (SignatureScheme::RSA_PSS_SHA256, &[alg::RSA_PSS_2048_8192_SHA256_LEGACY_KEY]),
        (SignatureScheme::RSA_PKCS1_SHA512, &[alg::RSA_PKCS1_2048_8192_SHA512]),
        (SignatureScheme::RSA_PKCS1_SHA384, &[alg::RSA_PKCS1_2048_8192_SHA384]),
        (SignatureScheme::RSA_PKCS1_SHA256, &[alg::RSA_PKCS1_2048_8192_SHA256]),
    ],
};

/// Randomness for handshakes from the OS (getrandom is already a dependency for nonces).
#[derive(Debug)]
struct OsRandom;

impl SecureRandom for OsRandom {
    fn fill(&self, buf: &mut [u8]) -> Result<(), GetRandomFailed> {
        getrandom::getrandom(buf).map_err(|_| GetRandomFailed)
    }
}

/// Refuses every private key: only servers and client-certificate users load one,
/// and leaving ring's signing code out saves flash.
#[derive(Debug)]
struct NoKeys;

impl KeyProvider for NoKeys {
    fn load_private_key(&self, _key: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        Err(rustls::Error::General("aliddns does not use client certificates".into()))
    }
}

/// ring's key loading for the server's own key: RSA or ECDSA, what public CAs
/// certify. Ed25519 keys are refused (their signing code alone is ~35 KB on MIPS).
#[derive(Debug)]
struct RingKeys;

impl KeyProvider for RingKeys {
    fn load_private_key(&self, key: PrivateKeyDer<'static>) -> Result<Arc<dyn SigningKey>, rustls::Error> {
        use rustls::crypto::ring::sign::{RsaSigningKey, any_ecdsa_type};
        if let Ok(rsa) = RsaSigningKey::new(&key) {
            return Ok(Arc::new(rsa));
        }
        any_ecdsa_type(&key)
            .map_err(|_| rustls::Error::General("not an RSA or ECDSA (P-256, P-384) private key".into()))
    }
}

/// Our own words for a TLS failure, in place of rustls's texts: those format their
/// details with `{:?}`, which the router builds compile to nothing (`-Z fmt-debug=none`,
/// docs/router-builds.md), so "invalid peer certificate: UnknownIssuer" would read
/// "invalid peer certificate: ". Each text names the cause, keeps rustls's variant name
/// (`UnknownIssuer`, `NotValidForName`, ...) for searching, and never uses Debug.
pub fn describe(e: &rustls::Error) -> String {
    use rustls::Error as E;
    match e {
        E::InvalidCertificate(c) => describe_certificate(c),
        E::AlertReceived(a) => {
            let name = a.as_str().unwrap_or("Unknown");
            format!("the server refused the TLS handshake: alert {name} ({})", u8::from(*a))
        }
        E::PeerIncompatible(_) => {
            "no TLS version, cipher suite or key exchange in common with the server (PeerIncompatible)".into()
        }
        E::PeerMisbehaved(_) => "the server broke the TLS protocol (PeerMisbehaved)".into(),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS (InvalidMessage): is this an HTTPS port?".into()
        }
        E::NoCertificatesPresented => "the server sent no certificate (NoCertificatesPresented)".into(),
        E::DecryptError => "a TLS record could not be decrypted (DecryptError)".into(),
        E::General(m) => format!("TLS error: {m}"),
        _ => "the TLS connection failed (Other)".into(),
    }
}

/// [`describe`] for a rejected certificate: the reasons users meet (a wrong clock on
/// a router that just booted, a bundle without the issuer, a captive portal's
/// certificate) each with its own text.
fn describe_certificate(c: &rustls::CertificateError) -> String {
    use rustls::CertificateError as C;
    let (what, token) = match c {
        C::UnknownIssuer => {
            ("its issuer is not among the trusted CAs (ca_file, SSL_CERT_FILE or the CA bundle)", "UnknownIssuer")
        }
        C::NotValidForNameContext { expected, presented } => {
            // webpki words the names with `{:?}`: empty in the router builds, left out then.
            let names: Vec<&str> = presented.iter().map(String::as_str).filter(|n| !n.is_empty()).collect();
            let only = if names.is_empty() { String::new() } else { format!(" (only for {})", names.join(", ")) };
            return format!(
                "certificate rejected (NotValidForName): it is not valid for name {}{only}",
                expected.to_str()
            );
        }
        C::NotValidForName => ("it is not valid for the name asked for", "NotValidForName"),
        C::Expired | C::ExpiredContext { .. } => ("it has expired, or the clock is wrong", "Expired"),
        C::NotValidYet | C::NotValidYetContext { .. } => ("it is not valid yet: is the clock right?", "NotValidYet"),
        C::Revoked => ("it has been revoked", "Revoked"),
        C::BadSignature => ("its signature is invalid", "BadSignature"),
        #[allow(deprecated)] // still what rustls 0.23 may return
        C::UnsupportedSignatureAlgorithm
        | C::UnsupportedSignatureAlgorithmContext { .. }
        | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            ("it is signed with an algorithm this client does not support", "UnsupportedSignatureAlgorithm")
        }
        C::BadEncoding => ("it is malformed", "BadEncoding"),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => ("it is not for TLS servers", "InvalidPurpose"),
        _ => ("its chain or its extensions are not acceptable", "Other"),
    };
    format!("certificate rejected ({token}): {what}")
}

/// The rustls error inside a ureq failure: the TLS layer (`tls_client.rs`) hands rustls'
/// errors on as an `io::Error` that wraps them.
pub fn rustls_error(e: &ureq::Error) -> Option<&rustls::Error> {
    match e {
        ureq::Error::Io(io) => io.get_ref()?.downcast_ref(),
        _ => None,
    }
}

/// Our own words for a PEM file that could not be read (see [`describe`] for why
/// not rustls-pki-types' texts, two of which print the offending part with `{:?}`).
pub fn describe_pem(e: &rustls::pki_types::pem::Error) -> String {
    use rustls::pki_types::pem::Error as P;
    match e {
        P::MissingSectionEnd { .. } => "a PEM section has no matching END line".into(),
        P::IllegalSectionStart { .. } => "a PEM section's BEGIN line is malformed".into(),
        P::Base64Decode(m) => format!("a PEM section is not valid base64: {m}"),
        P::Io(io) => io.to_string(),
        P::NoItemsFound => "no PEM section of the expected kind in the file".into(),
        _ => "not a readable PEM file".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_speaks_tls12_and_tls13() {
        let p = Arc::new(provider());
        let versions = [&rustls::version::TLS12, &rustls::version::TLS13];
        // rustls refuses a provider whose suites and kx groups do not fit the versions.
        assert!(rustls::ClientConfig::builder_with_provider(p.clone()).with_protocol_versions(&versions).is_ok());
        for v in versions {
            assert!(p.cipher_suites.iter().any(|s| s.version() == v), "{v:?}");
        }
        let mut buf = [0u8; 32];
        p.secure_random.fill(&mut buf).unwrap();
        assert_ne!(buf, [0u8; 32]);
    }

    #[test]
    fn rsa_and_ecdsa_verified_ed25519_not() {
        let schemes = SIGNATURES.supported_schemes();
        for s in
            [SignatureScheme::RSA_PSS_SHA256, SignatureScheme::RSA_PKCS1_SHA256, SignatureScheme::ECDSA_NISTP256_SHA256]
        {
            assert!(schemes.contains(&s), "{s:?}");
        }
        assert!(!schemes.contains(&SignatureScheme::ED25519));
    }

    #[test]
    fn only_the_server_loads_a_private_key() {
        use rustls::pki_types::pem::PemObject as _;
        let key = PrivateKeyDer::Pkcs8(vec![0u8; 16].into());
        assert!(NoKeys.load_private_key(key).is_err());
        let pem = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/server.key")).unwrap();
        let key = PrivateKeyDer::from_pem_slice(&pem).unwrap();
        assert!(RingKeys.load_private_key(key).is_ok(), "serve loads its key");
        // A throwaway Ed25519 key made for this test (`openssl genpkey -algorithm ed25519`).
        let ed = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIF3dqOpvHgNHbMwHJZSFKqMok4v68MzsA1YRyoF1BK6W\n-----END PRIVATE KEY-----\n";
        let err = RingKeys.load_private_key(PrivateKeyDer::from_pem_slice(ed.as_bytes()).unwrap()).unwrap_err();
        assert!(err.to_string().contains("RSA or ECDSA"), "{err}");
    }
}
