//! HTTPS for benchmarks that want real TLS costs: a throwaway test CA, a server certificate it
//! signs for the names and IP addresses the clients dial, and the server side of the handshake.
//!
//! Clients trust the CA by adding its PEM to their roots (`SSL_CERT_FILE` for ims-action,
//! `NODE_EXTRA_CA_CERTS` for Node, a `cafile` for Python). Keys are ECDSA P-256, made fresh per
//! [`TestCa::generate`] and never written to disk; only the CA certificate is.

use std::net::{IpAddr, TcpStream};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{HandshakeKind, ServerConfig, ServerConnection, StreamOwned};

use super::state::State;

/// A test CA and the server configuration of a certificate it issued.
#[derive(Clone)]
pub struct TestCa {
    ca_pem: String,
    server_config: Arc<ServerConfig>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA and a server certificate for `names`: each entry is an IP address (an IP SAN)
    /// or a DNS name. An empty list means `127.0.0.1`, `::1` and `localhost`.
    pub fn generate(names: &[String]) -> Result<TestCa, String> {
        let failed = |what: &str, e: rcgen::Error| format!("test CA: {what}: {e}");
        let ca_key = KeyPair::generate().map_err(|e| failed("CA key", e))?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed("CA", e))?;
        ca_params.distinguished_name = name("adobe-emulator test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params
            .self_signed(&ca_key)
            .map_err(|e| failed("CA certificate", e))?;
        let issuer = Issuer::new(ca_params, ca_key);

        let defaults = ["127.0.0.1", "::1", "localhost"].map(String::from);
        let names = if names.is_empty() { &defaults[..] } else { names };
        let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(|e| failed("server", e))?;
        leaf.distinguished_name = name("adobe-emulator");
        for n in names {
            leaf.subject_alt_names.push(match n.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(
                    n.clone()
                        .try_into()
                        .map_err(|e| failed(&format!("name {n:?}"), e))?,
                ),
            });
        }
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().map_err(|e| failed("server key", e))?;
        let leaf_cert = leaf
            .signed_by(&leaf_key, &issuer)
            .map_err(|e| failed("server certificate", e))?;

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS server configuration: {e}"))?
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone(), ca_cert.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .map_err(|e| format!("TLS server certificate: {e}"))?;
        Ok(TestCa {
            ca_pem: ca_cert.pem(),
            server_config: Arc::new(server_config),
        })
    }

    /// The CA certificate, PEM: what clients add to their roots.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Vec<CertificateDer<'static>> {
        rustls::pki_types::pem::PemObject::pem_slice_iter(self.ca_pem.as_bytes())
            .filter_map(Result::ok)
            .collect()
    }

    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        Arc::clone(&self.server_config)
    }
}

fn name(common_name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    dn
}

/// A TLS connection whose handshake is done.
pub(crate) type TlsStream = StreamOwned<ServerConnection, TcpStream>;

/// Completes the server handshake on `sock` and counts it; `None` if it fails (the client
/// gave up, or does not trust the CA).
pub(crate) fn accept(mut sock: TcpStream, config: Arc<ServerConfig>, state: &State) -> Option<TlsStream> {
    let mut conn = ServerConnection::new(config).ok()?;
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            log::debug!("TLS handshake failed: {e}");
            state.count_tls_failure();
            return None;
        }
    }
    state.count_tls_handshake(conn.handshake_kind() == Some(HandshakeKind::Resumed));
    Some(StreamOwned::new(conn, sock))
}

/// Ends a TLS connection: close_notify, then the TCP shutdown.
pub(crate) fn close(stream: &mut TlsStream) {
    stream.conn.send_close_notify();
    let _ = stream.conn.complete_io(&mut stream.sock);
    let _ = stream.sock.shutdown(std::net::Shutdown::Both);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use std::io::{BufRead, BufReader, Read, Write};

    use rustls::{ClientConfig, ClientConnection, RootCertStore};

    use crate::{Emulator, OAuthClient};

    use super::*;

    fn client_config(ca: Option<&TestCa>) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        for der in ca.map(TestCa::ca_der).unwrap_or_default() {
            roots.add(der).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        Arc::new(
            ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth(),
        )
    }

    /// One HTTPS request on a new connection: (status, body), or the TLS/IO error text.
    fn get(emulator: &Emulator, config: &Arc<ClientConfig>, path: &str) -> Result<(u16, String), String> {
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let conn = ClientConnection::new(Arc::clone(config), name).unwrap();
        let sock = TcpStream::connect(emulator.host_port()).unwrap();
        let mut tls = StreamOwned::new(conn, sock);
        let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
        tls.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
        let mut reader = BufReader::new(tls);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).map_err(|e| e.to_string())?;
        let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut rest = Vec::new();
        // The emulator closes with close_notify, so reading to the end is clean.
        reader.read_to_end(&mut rest).map_err(|e| e.to_string())?;
        let text = String::from_utf8(rest).unwrap();
        let body = text.split_once("\r\n\r\n").unwrap().1.to_string();
        Ok((status, body))
    }

    #[test]
    fn https_with_a_trusted_test_ca_counts_connections_and_handshakes() {
        let ca = TestCa::generate(&[]).unwrap();
        assert!(ca.ca_pem().starts_with("-----BEGIN CERTIFICATE-----"));
        let emulator = Emulator::start_tls_on("127.0.0.1:0", &ca).unwrap();
        assert!(emulator.base_url().starts_with("https://127.0.0.1:"));
        emulator.add_oauth_client(OAuthClient {
            client_id: "c".into(),
            client_secret: "s".into(),
            scopes: vec!["openid".into()],
            org_id: "O@AdobeOrg".into(),
        });

        let trusting = client_config(Some(&ca));
        let (status, body) = get(&emulator, &trusting, "/__stats").unwrap();
        assert_eq!(status, 200);
        let stats: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(stats["connections"]["accepted"], 1);
        assert_eq!(stats["connections"]["tls_handshakes"], 1);

        // The same client config resumes its session on the next connection.
        let (status, _) = get(&emulator, &trusting, "/nowhere").unwrap();
        assert_eq!(status, 404);
        assert_eq!(emulator.request_count("/nowhere"), 1);

        // A client that does not trust the CA gets no answer, and the failure is counted.
        let stranger = client_config(None);
        let refused = get(&emulator, &stranger, "/__stats").unwrap_err();
        assert!(refused.contains("UnknownIssuer"), "{refused}");

        // Plain HTTP on a TLS port is not served either.
        let mut plain = TcpStream::connect(emulator.host_port()).unwrap();
        plain
            .write_all(b"GET /__stats HTTP/1.1\r\nhost: x\r\n\r\n")
            .unwrap();
        let mut answer = Vec::new();
        let _ = plain.read_to_end(&mut answer);
        assert!(!answer.starts_with(b"HTTP/1.1"));

        // The server counts a failed handshake after the client has given up: wait for it.
        let mut c = emulator.connection_stats();
        for _ in 0..500 {
            if c.tls_failed == 2 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            c = emulator.connection_stats();
        }
        assert_eq!(c.accepted, 4);
        assert_eq!((c.tls_handshakes, c.tls_resumed, c.tls_failed), (2, 1, 2));
    }

    #[test]
    fn the_certificate_names_the_addresses_clients_dial() {
        let ca = TestCa::generate(&["10.1.2.3".into(), "ims.test".into()]).unwrap();
        let emulator = Emulator::start_tls_on("127.0.0.1:0", &ca).unwrap();
        // Only the names given: 127.0.0.1 is not one of them now.
        let refused = get(&emulator, &client_config(Some(&ca)), "/__stats").unwrap_err();
        assert!(refused.contains("not valid for name"), "{refused}");
        assert!(TestCa::generate(&["caf\u{e9}.test".into()]).is_err(), "not IA5");
    }

    #[test]
    fn plain_http_stays_the_default() {
        let emulator = Emulator::start().unwrap();
        assert!(emulator.base_url().starts_with("http://127.0.0.1:"));
        let mut plain = TcpStream::connect(emulator.host_port()).unwrap();
        plain
            .write_all(b"GET /__stats HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        plain.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"));
        assert!(
            answer.contains(
                r#""connections":{"accepted":1,"tls_failed":0,"tls_handshakes":0,"tls_resumed":0}"#
            )
        );
    }
}
