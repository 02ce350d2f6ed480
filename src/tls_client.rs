//! HTTPS for the ureq agents: rustls over ureq's TCP transport, with a rustls client
//! configuration built here rather than by ureq. ureq's own TLS layer takes the CA roots
//! as whole certificates and keeps them for the agent's life beside the trust anchors it
//! derives from them; here each certificate of the bundle is reduced to its trust anchor
//! (subject, key, name constraints) as it is read, so a pass holds the roots once
//! (about 160 KB less heap with a 145-certificate bundle). Verification is rustls'
//! own, unchanged: TLS 1.3 and 1.2, the provider of [`crate::tls`].

use crate::error::{Error, Result};
use rustls::client::Resumption;
use rustls::pki_types::{CertificateDer, ServerName, TrustAnchor};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use std::sync::Arc;
use ureq::unversioned::resolver::DefaultResolver;
use ureq::unversioned::transport::{
    Buffers, ConnectProxyConnector, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, TcpConnector,
    Transport, TransportAdapter,
};

/// The trust anchor of one CA certificate (None when it does not parse, as rustls'
/// `add_parsable_certificates` skips such entries).
pub fn anchor(der: &CertificateDer<'_>) -> Option<TrustAnchor<'static>> {
    webpki::anchor_from_trusted_cert(der).ok().map(|a| a.to_owned())
}

/// The client configuration of every HTTPS connection: `roots`, TLS 1.3 and 1.2 with
/// the cut-down provider, no client certificate. A pass makes a few connections, each
/// agent pooling its own, so a handful of resumption tickets suffice (rustls keeps 256
/// by default, a 14 KB table).
pub fn config(roots: Vec<TrustAnchor<'static>>) -> Result<Arc<ClientConfig>> {
    let mut c = ClientConfig::builder_with_provider(Arc::new(crate::tls::provider()))
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| Error::Other(format!("TLS: {e}")))?
        .with_root_certificates(RootCertStore { roots })
        .with_no_client_auth();
    c.resumption = Resumption::in_memory_sessions(8);
    Ok(Arc::new(c))
}

/// An agent with `config` whose https:// connections use `tls` (proxies from the
/// environment as ureq's default connector has them; SOCKS is not compiled in).
pub fn agent(config: ureq::config::Config, tls: Arc<ClientConfig>) -> ureq::Agent {
    let chain = ().chain(ConnectProxyConnector::default()).chain(TcpConnector::default()).chain(Tls(tls));
    ureq::Agent::with_parts(config, chain, DefaultResolver::default())
}

/// The name the server's certificate must carry: a DNS name, or an IP address
/// (without the URL's brackets around an IPv6 one).
fn server_name(host: &str) -> Result<ServerName<'static>, ureq::Error> {
    let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    ServerName::try_from(host).map(|n| n.to_owned()).map_err(|_| ureq::Error::Tls("invalid TLS server name"))
}

/// Wraps the TCP transport of an https:// request in rustls.
#[derive(Debug)]
struct Tls(Arc<ClientConfig>);

impl<In: Transport> Connector<In> for Tls {
    type Out = Either<In, TlsTransport>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<In>) -> Result<Option<Self::Out>, ureq::Error> {
        let Some(tcp) = chained else { return Ok(None) };
        if !details.needs_tls() || tcp.is_tls() {
            return Ok(Some(Either::A(tcp)));
        }
        let name = server_name(details.uri.host().unwrap_or_default())?;
        let conn = ClientConnection::new(self.0.clone(), name).map_err(std::io::Error::other)?;
        // The handshake is bounded by what is left of the connect timeout, counted from
        // here (ureq's own layer counts from the TCP connect, through a crate-private call).
        let mut sock = TransportAdapter::new(tcp.boxed(), details.current_time.clone());
        sock.set_timeout(details.timeout);
        let mut stream = StreamOwned::new(conn, sock);
        stream.conn.complete_io(&mut stream.sock)?;
        let buffers = LazyBuffers::new(details.config.input_buffer_size(), details.config.output_buffer_size());
        Ok(Some(Either::B(TlsTransport { buffers, stream })))
    }
}

/// An established TLS connection: plaintext buffers above rustls.
struct TlsTransport {
    buffers: LazyBuffers,
    stream: StreamOwned<ClientConnection, TransportAdapter>,
}

impl std::fmt::Debug for TlsTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsTransport").field("tcp", &self.stream.sock.inner()).finish()
    }
}

impl Transport for TlsTransport {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        use std::io::Write as _;
        self.stream.sock.set_timeout(timeout);
        self.stream.write_all(&self.buffers.output()[..amount])?;
        Ok(())
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        use std::io::Read as _;
        self.stream.sock.set_timeout(timeout);
        let n = self.stream.read(self.buffers.input_append_buf())?;
        self.buffers.input_appended(n);
        Ok(n > 0)
    }

    fn is_open(&mut self) -> bool {
        self.stream.sock.get_mut().is_open()
    }

    fn is_tls(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_from_url_hosts() {
        let name = |h| server_name(h).map(|n| n.to_str().into_owned()).ok();
        assert_eq!(name("alidns.cn-hangzhou.aliyuncs.com").as_deref(), Some("alidns.cn-hangzhou.aliyuncs.com"));
        assert!(matches!(server_name("[2001:db8::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(server_name("127.0.0.1"), Ok(ServerName::IpAddress(_))));
        assert!(name("bad host").is_none());
    }
}
