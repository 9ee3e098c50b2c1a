//! Bytes from a client into a TLS listener's rustls server connection, built
//! by `sluice::security::tls::server_config` (certificate made at start-up,
//! client certificates requested), and any plaintext that comes out split
//! into request frames as the broker reads them.
#![no_main]

use std::io::Read;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use rustls::{ServerConfig, ServerConnection};
use sluice::config::{ClientAuth, Pem, TlsConfig};
use sluice::protocol::frame::{decode_request_body, frame_length, parse_request};
use sluice::security::principal::SslPrincipalMapper;

/// `sasl.receive.buffer.bytes`' default: the frame limit before authentication.
const FRAME_BYTES_MAX: usize = 512 * 1024;

fn config() -> &'static Arc<ServerConfig> {
    static CONFIG: OnceLock<Arc<ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let dir = std::env::temp_dir().join(format!("sluice-fuzz-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, certified.cert.pem()).expect("write certificate");
        std::fs::write(&key, certified.signing_key.serialize_pem()).expect("write key");
        let tls = TlsConfig {
            certificate_chain: Pem::File(cert.clone()),
            private_key: Pem::File(key),
            truststore: Some(Pem::File(cert)),
            client_auth: ClientAuth::Requested,
            principal_mapping_rules: "DEFAULT".into(),
        };
        let config = sluice::security::tls::server_config(&tls).expect("server config");
        let _ = std::fs::remove_dir_all(&dir);
        config
    })
}

/// Splits `plaintext` into frames as the broker's connection loop does,
/// stopping where it would close the connection or wait for more bytes.
fn frames(plaintext: &[u8]) {
    let mut rest = plaintext;
    while let Some((prefix, after)) = rest.split_first_chunk::<4>() {
        let Ok(length) = frame_length(*prefix, FRAME_BYTES_MAX) else { return };
        let Some(body) = after.get(..length) else { return };
        let Ok(frame) = parse_request(bytes::Bytes::copy_from_slice(body)) else { return };
        let _ = decode_request_body(frame.api_key, frame.header.request_api_version, frame.body);
        rest = &after[length..];
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(mut conn) = ServerConnection::new(config().clone()) else { return };
    let mut input = data;
    let mut plaintext = Vec::new();
    let mut outgoing = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match conn.read_tls(&mut input) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let failed = conn.process_new_packets().is_err();
        // The server's answer (handshake messages or an alert) goes nowhere.
        while conn.wants_write() {
            if conn.write_tls(&mut outgoing).is_err() {
                break;
            }
        }
        outgoing.clear();
        if failed {
            break;
        }
        loop {
            match conn.reader().read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => plaintext.extend_from_slice(&buf[..n]),
            }
        }
    }
    if let Some(certs) = conn.peer_certificates() {
        if let Some(cert) = certs.first() {
            let _ = SslPrincipalMapper::default().principal_for_certificate(cert);
        }
    }
    frames(&plaintext);
});
