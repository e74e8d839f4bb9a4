//! TLS for the `--tls-listen` listeners (rustls with the ring provider,
//! TLS 1.2 and 1.3, no client certificates). The certificate and key are read
//! once in `init`, before the executors start (blocking file reads are fine
//! there); every shard then shares the one acceptor. A handshake that fails or
//! does not finish within `HANDSHAKE_TIMEOUT` closes the connection with a
//! log line naming the peer.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures_rustls::TlsAcceptor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ServeArgs;

/// How long a client has to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

static ACCEPTOR: OnceLock<TlsAcceptor> = OnceLock::new();

/// Load the certificate chain and key when a TLS listener is configured.
pub fn init(args: &ServeArgs) -> Result<(), String> {
    let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) else {
        return Ok(());
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect)
        .map_err(|e| format!("reading TLS certificates from {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("reading TLS key from {}: {e}", key.display()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS configuration: {e}"))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("TLS certificate and key: {e}"))?;
    // A second `init` (tests that start brokers in one process) keeps the first.
    let _ = ACCEPTOR.set(TlsAcceptor::from(Arc::new(config)));
    Ok(())
}

/// The shared acceptor, once `init` loaded a certificate.
pub fn acceptor() -> Option<&'static TlsAcceptor> {
    ACCEPTOR.get()
}
