//! A TLS listener's rustls server configuration, built from Kafka's PEM
//! settings, and the file stamps that tell when to build it again (a renewed
//! certificate is picked up without a restart).

use std::io::Read;
use std::sync::Arc;
use std::time::SystemTime;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use sluice_core::config::{ClientAuth, Pem, TlsConfig};
use sluice_core::constants::PEM_FILE_BYTES_MAX;

/// Reads PEM text from a file (bounded) or the config itself.
fn pem_bytes(pem: &Pem, what: &str) -> Result<Vec<u8>, String> {
    match pem {
        Pem::Inline(text) => Ok(text.as_bytes().to_vec()),
        Pem::File(path) => {
            let file = std::fs::File::open(path).map_err(|e| format!("{what} {}: {e}", path.display()))?;
            let mut bytes = Vec::new();
            file.take(PEM_FILE_BYTES_MAX + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| format!("{what} {}: {e}", path.display()))?;
            if bytes.len() as u64 > PEM_FILE_BYTES_MAX {
                return Err(format!("{what} {}: larger than {PEM_FILE_BYTES_MAX} bytes", path.display()));
            }
            Ok(bytes)
        }
    }
}

fn certificates(pem: &Pem, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let bytes = pem_bytes(pem, what)?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{what}: bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what}: no CERTIFICATE block"));
    }
    Ok(certs)
}

/// The rustls configuration of a TLS listener: its certificate chain and key,
/// and with `ssl.client.auth` the verifier of client certificates against the truststore.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain = certificates(&tls.certificate_chain, "ssl.keystore certificate chain")?;
    let key_bytes = pem_bytes(&tls.private_key, "ssl.keystore key")?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => {
            "ssl.keystore key: no unencrypted PRIVATE KEY block (encrypted keys are not supported)".to_string()
        }
        e => format!("ssl.keystore key: {e}"),
    })?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?;
    let builder = match tls.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        ClientAuth::Requested | ClientAuth::Required => {
            let trusted = tls.truststore.as_ref().ok_or("ssl.client.auth needs ssl.truststore.location")?;
            let mut roots = RootCertStore::empty();
            for cert in certificates(trusted, "ssl.truststore")? {
                roots.add(cert).map_err(|e| format!("ssl.truststore: {e}"))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier =
                if tls.client_auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("ssl.truststore: {e}"))?)
        }
    };
    let config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("ssl.keystore: the key does not fit the certificate chain: {e}"))?;
    Ok(Arc::new(config))
}

/// The modification times and sizes of a listener's certificate files: when
/// they change, [`server_config`] runs again.
pub fn stamp(tls: &TlsConfig) -> Vec<Option<(SystemTime, u64)>> {
    [Some(&tls.certificate_chain), Some(&tls.private_key), tls.truststore.as_ref()]
        .into_iter()
        .flatten()
        .map(|pem| match pem {
            Pem::Inline(_) => None,
            Pem::File(path) => std::fs::metadata(path).ok().and_then(|m| Some((m.modified().ok()?, m.len()))),
        })
        .collect()
}
