//! Writes seed inputs for the fuzz targets, produced by the encoders:
//! a default request of every served API at every served version, record
//! batches with every codec, a small valid segment, SASL client messages
//! (whole SCRAM and OAUTHBEARER logins the target accepts, checked here),
//! principal mapping rules and a certificate, and TLS ClientHellos.
//!
//! Usage: cargo run --bin seeds (from fuzz/); writes fuzz/corpus/<target>/.

mod fixtures;

use std::path::Path;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
use sluice::protocol::versions::SUPPORTED;
use sluice::security::oauthbearer::{OAuthBearerConfig, OAuthBearerServer, OAuthBearerValidator, OAuthStep};
use sluice::security::scram::{ScramMechanism, ScramServer, ScramStep};

use fixtures::*;

fn default_request(api: ApiKey) -> Option<RequestKind> {
    use kafka_protocol::messages::*;
    Some(match api {
        ApiKey::Produce => RequestKind::Produce(ProduceRequest::default()),
        ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
        ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(FindCoordinatorRequest::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(DescribeGroupsRequest::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(DescribeConfigsRequest::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(AlterConfigsRequest::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default()),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(CreatePartitionsRequest::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
        ApiKey::IncrementalAlterConfigs => {
            RequestKind::IncrementalAlterConfigs(IncrementalAlterConfigsRequest::default())
        }
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(OffsetDeleteRequest::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ApiKey::DescribeTopicPartitions => {
            RequestKind::DescribeTopicPartitions(DescribeTopicPartitionsRequest::default())
        }
        ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(DescribeQuorumRequest::default()),
        ApiKey::UpdateFeatures => RequestKind::UpdateFeatures(UpdateFeaturesRequest::default()),
        _ => return None,
    })
}

fn batch(compression: Compression, count: usize) -> BytesMut {
    let records: Vec<Record> = (0..count)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: Some(Bytes::from(format!("key-{i}"))),
            value: Some(Bytes::from(vec![b'v'; 40])),
            headers: Default::default(),
        })
        .collect();
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(&mut buf, &records, &RecordEncodeOptions { version: 2, compression }).unwrap();
    buf
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

/// A whole SCRAM login of [`SCRAM_USER`] (client-first NUL client-final),
/// checked against the server the target runs.
fn scram_login(mechanism: ScramMechanism, gs2_header: &str, client_nonce: &str) -> Vec<u8> {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;
    use ring::{digest, hmac};
    let (hmac_algorithm, digest_algorithm) = match mechanism {
        ScramMechanism::Sha256 => (hmac::HMAC_SHA256, &digest::SHA256),
        ScramMechanism::Sha512 => (hmac::HMAC_SHA512, &digest::SHA512),
    };
    let salted = &SCRAM_SALTED_PASSWORD[..mechanism.hash_len()];
    let client_key = hmac::sign(&hmac::Key::new(hmac_algorithm, salted), b"Client Key");
    let stored_key = digest::digest(digest_algorithm, client_key.as_ref());
    let first_bare = format!("n={SCRAM_USER},r={client_nonce}");
    let client_first = format!("{gs2_header}{first_bare}");
    let nonce = format!("{client_nonce}{SCRAM_NONCE_SUFFIX}");
    let server_first = format!("r={nonce},s={},i={SCRAM_ITERATIONS}", STANDARD.encode(SCRAM_SALT));
    let without_proof = format!("c={},r={nonce}", STANDARD.encode(gs2_header));
    let auth_message = format!("{first_bare},{server_first},{without_proof}");
    let signature = hmac::sign(&hmac::Key::new(hmac_algorithm, stored_key.as_ref()), auth_message.as_bytes());
    let proof: Vec<u8> = client_key.as_ref().iter().zip(signature.as_ref()).map(|(k, s)| k ^ s).collect();
    let client_final = format!("{without_proof},p={}", STANDARD.encode(proof));

    let mut server = ScramServer::with_nonce_suffix(mechanism, SCRAM_NONCE_SUFFIX).unwrap();
    let lookup = |user: &str| (user == SCRAM_USER).then(|| scram_credential(mechanism));
    assert_eq!(server.step(client_first.as_bytes(), &lookup), Ok(ScramStep::Continue(server_first.into_bytes())));
    assert!(matches!(server.step(client_final.as_bytes(), &lookup), Ok(ScramStep::Done { .. })), "{mechanism} seed");
    format!("{client_first}\0{client_final}").into_bytes()
}

fn sasl_seed(mode: u8, body: &[u8]) -> Vec<u8> {
    let mut seed = vec![mode];
    seed.extend_from_slice(body);
    seed
}

/// Claims the target's validators accept at [`NOW_MS`]: the default one
/// without an audience, the strict one with it.
fn valid_claims(subject: &str, audience: bool) -> String {
    let now = NOW_MS / 1000;
    let aud = if audience { format!(r#""aud":["{JWT_AUDIENCE}","other"],"#) } else { String::new() };
    format!(
        r#"{{"sub":"{subject}",{aud}"iss":"{JWT_ISSUER}","iat":{},"nbf":{},"exp":{},"scope":["kafka","read"],"jti":"seed-1"}}"#,
        now - 60,
        now - 60,
        now + 3600
    )
}

/// Seeds for `sasl_exchange`, one per mode and more for the exchanges.
fn sasl_seeds() -> Vec<(String, Vec<u8>)> {
    let mut seeds = Vec::new();
    let first = format!("n,,n={SCRAM_USER},r=fyko+d2lbbFgONRv9qkxdawL");
    seeds.push(("scram-client-first".into(), sasl_seed(mode::SCRAM, first.as_bytes())));
    seeds.push(("scram-unknown-user".into(), sasl_seed(mode::SCRAM, b"n,,n=nobody,r=rOprNGfwEbeRWgbNEkqO")));
    seeds.push(("scram-extensions".into(), sasl_seed(mode::SCRAM, b"n,a=user,n=user,r=abc,tokenauth=false,ext=1")));
    for (name, mechanism) in [("sha256", ScramMechanism::Sha256), ("sha512", ScramMechanism::Sha512)] {
        let login = scram_login(mechanism, "n,,", "fyko+d2lbbFgONRv9qkxdawL");
        let mut again = login.clone();
        again.extend_from_slice(b"\0c=biws,r=x,p=AAAA");
        let authzid = scram_login(mechanism, &format!("n,a={SCRAM_USER},"), "3rfcNHYJY1ZVvWVs7j");
        seeds.push((format!("scram-{name}-login"), sasl_seed(mode::SCRAM, &login)));
        seeds.push((format!("scram-{name}-login-again"), sasl_seed(mode::SCRAM, &again)));
        seeds.push((format!("scram-{name}-authzid"), sasl_seed(mode::SCRAM, &authzid)));
    }

    seeds.push(("plain".into(), sasl_seed(mode::PLAIN, b"\0alice\0alice-secret")));
    seeds.push(("plain-authzid".into(), sasl_seed(mode::PLAIN, b"admin\0admin\0wrong")));
    seeds.push(("jaas".into(), sasl_seed(mode::JAAS, JAAS.as_bytes())));
    seeds.push((
        "jaas-quoting".into(),
        sasl_seed(
            mode::JAAS,
            br#"/* c */ org.apache.kafka.common.security.plain.PlainLoginModule Required // line
  user_bob='b\'o\"b' user_x=word "user_q"="\u0041\t\n";"#,
        ),
    ));

    // OAUTHBEARER: a token each validator accepts, checked here.
    let token = jwt(JWT_HEADER.as_bytes(), valid_claims("alice", false).as_bytes());
    let token_with_audience = jwt(JWT_HEADER.as_bytes(), valid_claims("alice", true).as_bytes());
    let plain = OAuthBearerConfig::new("file:///fuzz/jwks.json");
    let mut strict = plain.clone();
    strict.expected_audience = vec![JWT_AUDIENCE.to_owned()];
    strict.expected_issuer = Some(JWT_ISSUER.to_owned());
    for (config, token) in [(plain, &token), (strict, &token_with_audience)] {
        let validator = OAuthBearerValidator::new(&config, JWKS).unwrap();
        assert_eq!(validator.key_count(), 2);
        let step = OAuthBearerServer::new().step(&oauth_initial_response("alice", token), &validator, NOW_MS);
        assert!(matches!(step, Ok(OAuthStep::Done { .. })), "OAUTHBEARER seed: {step:?}");
    }
    let mut with_extensions = b"n,a=alice,\x01auth=Bearer ".to_vec();
    with_extensions.extend_from_slice(token.as_bytes());
    with_extensions.extend_from_slice(b"\x01traceId=abc 123\x01host=localhost\x01\x01");
    seeds.push(("oauth-initial-response".into(), sasl_seed(mode::OAUTH_EXCHANGE, &oauth_initial_response("", &token))));
    seeds.push((
        "oauth-initial-response-audience".into(),
        sasl_seed(mode::OAUTH_EXCHANGE, &oauth_initial_response("alice", &token_with_audience)),
    ));
    seeds.push(("oauth-extensions".into(), sasl_seed(mode::OAUTH_EXCHANGE, &with_extensions)));
    let expired = jwt(JWT_HEADER.as_bytes(), br#"{"sub":"alice","iat":1,"exp":2}"#);
    let mut rejected = oauth_initial_response("", &expired);
    rejected.extend_from_slice(b"\0\x01");
    seeds.push(("oauth-error-acknowledged".into(), sasl_seed(mode::OAUTH_EXCHANGE, &rejected)));
    seeds.push(("oauth-token".into(), sasl_seed(mode::OAUTH_TOKEN, token.as_bytes())));
    let es256 = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImZ1enotZWMifQ.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
    seeds.push(("oauth-token-es256".into(), sasl_seed(mode::OAUTH_TOKEN, es256.as_bytes())));
    seeds.push(("oauth-signed-claims".into(), sasl_seed(mode::OAUTH_SIGNED, valid_claims(" bob ", false).as_bytes())));
    seeds.push((
        "oauth-signed-claims-audience".into(),
        sasl_seed(mode::OAUTH_SIGNED, valid_claims("bob", true).as_bytes()),
    ));
    seeds.push((
        "oauth-signed-odd-claims".into(),
        sasl_seed(
            mode::OAUTH_SIGNED,
            format!(
                r#"{{"alg":"HS256"}}{}{{"sub":"svc","aud":"sluice","iss":"{JWT_ISSUER}","iat":1.5e9,"exp":9.99e18,"scope":"a b","nbf":null}}"#,
                '\0'
            )
            .as_bytes(),
        ),
    ));

    seeds.push((
        "principal-rules".into(),
        sasl_seed(mode::PRINCIPAL_RULES, b"RULE:^CN=([^,]+),OU=eng,.*$/$1/L, DEFAULT\0CN=Alice,OU=eng,O=Sluice,C=US"),
    ));
    seeds.push((
        "principal-rules-groups".into(),
        sasl_seed(
            mode::PRINCIPAL_RULES,
            b"RULE:^CN=(?P<cn>[^,]+)(,.*)?$/${cn}@$2\\$9/U,RULE:.*\\/x/y/,\0CN=a\\,b,OU=eng",
        ),
    ));
    let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.distinguished_name.push(rcgen::DnType::CommonName, " Alice, \"Jr\"+#1 ");
    params.distinguished_name.push(rcgen::DnType::OrganizationalUnitName, "eng");
    params.distinguished_name.push(rcgen::DnType::OrganizationName, "Sluice");
    params.distinguished_name.push(rcgen::DnType::CountryName, "US");
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    seeds.push(("subject-dn".into(), sasl_seed(mode::SUBJECT_DN, cert.der())));
    seeds
}

/// The first flight of a rustls client offering `versions`.
fn client_hello(versions: &[&'static rustls::SupportedProtocolVersion]) -> Vec<u8> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

fn main() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut count = 0;
    for range in SUPPORTED {
        for version in range.accepted_min..=range.max {
            let Some(request) = default_request(range.api_key) else { continue };
            let header = RequestHeader::default()
                .with_request_api_key(range.api_key as i16)
                .with_request_api_version(version)
                .with_correlation_id(7)
                .with_client_id(Some(StrBytes::from_static_str("seed")));
            let mut buf = BytesMut::new();
            header.encode(&mut buf, range.api_key.request_header_version(version)).unwrap();
            if request.encode(&mut buf, version).is_err() {
                continue;
            }
            write(&corpus.join("request_frame"), &format!("{:?}-v{version}", range.api_key), &buf);
            count += 1;
        }
    }
    let codecs = [
        ("none", Compression::None),
        ("gzip", Compression::Gzip),
        ("snappy", Compression::Snappy),
        ("lz4", Compression::Lz4),
        ("zstd", Compression::Zstd),
    ];
    let mut segment = BytesMut::new();
    for (name, codec) in codecs {
        let b = batch(codec, 5);
        write(&corpus.join("record_batch"), name, &b);
        write(&corpus.join("compaction"), name, &b);
        segment.put_slice(&b);
        count += 2;
    }
    write(&corpus.join("recovery_scan"), "segment", &segment);
    count += 1;
    for (name, seed) in sasl_seeds() {
        write(&corpus.join("sasl_exchange"), &name, &seed);
        count += 1;
    }
    write(&corpus.join("tls_handshake"), "client-hello-tls13", &client_hello(&[&rustls::version::TLS13]));
    write(&corpus.join("tls_handshake"), "client-hello-tls12", &client_hello(&[&rustls::version::TLS12]));
    count += 2;
    println!("wrote {count} seeds under {}", corpus.display());
}
