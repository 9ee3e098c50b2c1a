//! Security end to end: TLS and mTLS listeners, SASL PLAIN and SCRAM, ACLs
//! and SCRAM users set with Kafka's own `kafka-acls.sh` / `kafka-configs.sh`
//! classes, and real clients (the rdkafka crate, kcat, the Java client) that
//! get in, or are refused with Kafka's errors. Certificates are made by the
//! test (rcgen).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, CreateTopicsRequest, CreateTopicsResponse, DescribeAclsRequest,
    DescribeAclsResponse, FindCoordinatorRequest, FindCoordinatorResponse, InitProducerIdRequest,
    InitProducerIdResponse, JoinGroupRequest, JoinGroupResponse, ListGroupsRequest, ListGroupsResponse,
    MetadataRequest, MetadataResponse, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use common::secure::Secure;
use common::Raw;

/// TOPIC_AUTHORIZATION_FAILED and friends, as Kafka numbers them.
const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
const GROUP_AUTHORIZATION_FAILED: i16 = 30;
const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

impl Secure {
    /// rdkafka settings of an OAUTHBEARER login on the OAUTH listener.
    fn oauth(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.broker.listener("OAUTH"))
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", "OAUTHBEARER")
            .set("socket.timeout.ms", "10000");
        config
    }

    fn sasl_ssl(&self) -> String {
        self.broker.listener("SASL_SSL")
    }

    /// rdkafka settings of a SCRAM login over SASL_SSL.
    fn scram(&self, mechanism: &str, user: &str, password: &str) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.sasl_ssl())
            .set("security.protocol", "SASL_SSL")
            .set("sasl.mechanisms", mechanism)
            .set("sasl.username", user)
            .set("sasl.password", password)
            .set("ssl.ca.location", self.pki.ca.to_str().unwrap())
            .set("message.timeout.ms", "10000")
            .set("socket.timeout.ms", "10000");
        config
    }

    /// rdkafka settings of an mTLS client with `cert`.
    fn mtls(&self, cert: &common::tls::ClientCert) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", self.broker.listener("SSL"))
            .set("security.protocol", "SSL")
            .set("ssl.ca.location", self.pki.ca.to_str().unwrap())
            .set("ssl.certificate.location", cert.cert.to_str().unwrap())
            .set("ssl.key.location", cert.key.to_str().unwrap())
            .set("message.timeout.ms", "10000")
            .set("socket.timeout.ms", "10000");
        config
    }

    /// A Java client properties file: SASL_SSL with `mechanism` as `user`.
    fn java_properties(&self, file: &str, mechanism: &str, user: &str, password: &str) -> PathBuf {
        let module = if mechanism == "PLAIN" {
            "org.apache.kafka.common.security.plain.PlainLoginModule"
        } else {
            "org.apache.kafka.common.security.scram.ScramLoginModule"
        };
        let path = self.dir.with_extension(file);
        std::fs::write(
            &path,
            format!(
                "security.protocol=SASL_SSL\nsasl.mechanism={mechanism}\n\
                 sasl.jaas.config={module} required username=\"{user}\" password=\"{password}\";\n\
                 ssl.truststore.type=PEM\nssl.truststore.location={}\n",
                self.pki.ca.display()
            ),
        )
        .unwrap();
        path
    }

    /// Runs one of Kafka's command-line tools (its main class, as the shell
    /// script would) against the SASL_SSL listener; returns its output.
    fn kafka_tool(&self, class: &str, properties: &Path, args: &[&str]) -> String {
        self.kafka_tool_on(&self.sasl_ssl(), &[], class, properties, args)
    }

    /// [`Secure::kafka_tool`] against `bootstrap`, with JVM options.
    fn kafka_tool_on(&self, bootstrap: &str, jvm: &[&str], class: &str, properties: &Path, args: &[&str]) -> String {
        let classpath = common::clients::kafka_tools_classpath();
        let output = Command::new("java")
            .args(jvm)
            .arg("-cp")
            .arg(classpath.trim())
            .arg(class)
            .args(["--bootstrap-server", bootstrap, "--command-config", properties.to_str().unwrap()])
            .args(args)
            .output()
            .expect("run java");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(output.status.success(), "{}", self.broker.client_failure(&format!("{class} {args:?}"), &output));
        stdout
    }

    fn configs(&self, properties: &Path, args: &[&str]) -> String {
        self.kafka_tool("org.apache.kafka.tools.ConfigCommand", properties, args)
    }

    fn acls(&self, properties: &Path, args: &[&str]) -> String {
        self.kafka_tool("org.apache.kafka.tools.AclCommand", properties, args)
    }
}

/// An rdkafka client context handing librdkafka a fixed OAUTHBEARER token.
struct TokenContext {
    token: String,
    principal: String,
}

impl rdkafka::ClientContext for TokenContext {
    const ENABLE_REFRESH_OAUTH_TOKEN: bool = true;

    fn generate_oauth_token(
        &self,
        _config: Option<&str>,
    ) -> Result<rdkafka::client::OAuthToken, Box<dyn std::error::Error>> {
        let lifetime_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_millis() as i64 + 60_000;
        Ok(rdkafka::client::OAuthToken {
            token: self.token.clone(),
            principal_name: self.principal.clone(),
            lifetime_ms,
        })
    }
}

impl rdkafka::consumer::ConsumerContext for TokenContext {}

/// Topics an OAUTHBEARER client with `token` sees, or the error fetching them.
fn oauth_topics(config: &ClientConfig, token: String) -> Result<Vec<String>, KafkaError> {
    let mut config = config.clone();
    config.set("socket.timeout.ms", "3000");
    let consumer: BaseConsumer<TokenContext> =
        config.create_with_context(TokenContext { token, principal: "ignored".into() }).expect("consumer");
    // librdkafka asks for the token from its background queue: poll until it has.
    for _ in 0..20 {
        let _ = consumer.poll(Duration::from_millis(100));
        if let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(1)) {
            let mut names: Vec<String> = metadata.topics().iter().map(|t| t.name().to_string()).collect();
            names.sort();
            return Ok(names);
        }
    }
    consumer
        .fetch_metadata(None, Duration::from_secs(3))
        .map(|m| m.topics().iter().map(|t| t.name().to_string()).collect())
}

fn topics_seen(config: &ClientConfig) -> Vec<String> {
    let consumer: BaseConsumer = config.create().expect("consumer");
    let metadata = consumer.fetch_metadata(None, Duration::from_secs(10)).expect("metadata");
    let mut names: Vec<String> = metadata.topics().iter().map(|t| t.name().to_string()).collect();
    names.sort();
    names
}

async fn produce(config: &ClientConfig, topic: &str, count: usize) -> Result<(), KafkaError> {
    let producer: FutureProducer = config.create().expect("producer");
    for i in 0..count {
        let value = format!("record-{i}");
        producer
            .send(FutureRecord::<(), _>::to(topic).payload(&value), Duration::from_secs(10))
            .await
            .map_err(|(e, _)| e)?;
    }
    producer.flush(Duration::from_secs(10))?;
    Ok(())
}

/// Sends `count` records of `size` bytes one after another (each acknowledged
/// before the next), so that a throttled connection holds the producer back.
async fn produce_bulk(config: &ClientConfig, topic: &str, count: usize, size: usize) {
    let mut config = config.clone();
    config.set("message.timeout.ms", "120000").set("linger.ms", "0");
    let producer: FutureProducer = config.create().expect("producer");
    let value = vec![b'x'; size];
    // All queued at once, as an application sending a burst does: the time
    // taken is then the client's rate (or its quota), not `count` round trips.
    let deliveries: Vec<_> = (0..count)
        .map(|_| {
            producer.send_result(FutureRecord::<(), _>::to(topic).payload(&value)).map_err(|(e, _)| e).expect("queued")
        })
        .collect();
    for delivery in deliveries {
        delivery.await.expect("not cancelled").map_err(|(e, _)| e).expect("record delivered");
    }
}

/// A login that must fail: metadata cannot be fetched with these settings.
fn refused_login(config: &ClientConfig) {
    let mut config = config.clone();
    config.set("socket.timeout.ms", "3000");
    let consumer: BaseConsumer = config.create().expect("consumer");
    let result = consumer.fetch_metadata(None, Duration::from_secs(4));
    assert!(result.is_err(), "a bad login was let in: {:?}", result.map(|m| m.topics().len()));
}

#[tokio::test(flavor = "multi_thread")]
async fn kafka_tools_manage_scram_users_and_acls_and_real_clients_obey_them() {
    let secure = Secure::start("sec-tools");
    // kafka-configs.sh, as the JAAS admin over SASL_SSL with PLAIN: SCRAM users.
    let plain_admin = secure.java_properties("admin-plain.properties", "PLAIN", "admin", "admin-secret");
    for (user, mechanism, password) in [
        ("admin", "SCRAM-SHA-512", "admin-secret"),
        ("alice", "SCRAM-SHA-512", "alice-secret"),
        ("bob", "SCRAM-SHA-256", "bob-secret"),
    ] {
        let config = format!("{mechanism}=[iterations=8192,password={password}]");
        let out = secure.configs(
            &plain_admin,
            &["--alter", "--add-config", &config, "--entity-type", "users", "--entity-name", user],
        );
        assert!(out.contains("Completed updating config"), "{out}");
    }
    let described = secure.configs(&plain_admin, &["--describe", "--entity-type", "users", "--entity-name", "alice"]);
    assert!(described.contains("SCRAM-SHA-512=iterations=8192"), "{described}");
    assert!(!described.contains("alice-secret"));
    // A produce quota for alice, by kafka-configs.sh as for Kafka.
    secure.configs(
        &plain_admin,
        &["--alter", "--add-config", "producer_byte_rate=102400", "--entity-type", "users", "--entity-name", "alice"],
    );
    let described = secure.configs(&plain_admin, &["--describe", "--entity-type", "users", "--entity-name", "alice"]);
    assert!(described.contains("producer_byte_rate=102400"), "{described}");

    // kafka-acls.sh, as the SCRAM admin (the Java client over SSL with SCRAM-SHA-512).
    let admin = secure.java_properties("admin-scram.properties", "SCRAM-SHA-512", "admin", "admin-secret");
    secure.acls(
        &admin,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "Write",
            "--operation",
            "Create",
            "--topic",
            "orders",
        ],
    );
    secure.acls(
        &admin,
        &["--add", "--allow-principal", "User:bob", "--consumer", "--topic", "orders", "--group", "readers"],
    );
    // Every group whose name starts with "readers-" too (a prefixed pattern).
    secure.acls(
        &admin,
        &[
            "--add",
            "--allow-principal",
            "User:bob",
            "--operation",
            "Read",
            "--group",
            "readers-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    let listed = secure.acls(&admin, &["--list", "--topic", "orders"]);
    assert!(listed.contains("User:alice") && listed.contains("User:bob"), "{listed}");
    assert!(listed.contains("operation=WRITE") && listed.contains("operation=READ"), "{listed}");

    // A topic only the admin may touch.
    let admin_client: rdkafka::admin::AdminClient<_> =
        secure.scram("SCRAM-SHA-512", "admin", "admin-secret").create().expect("admin client");
    let created = admin_client
        .create_topics(&[NewTopic::new("secret", 1, TopicReplication::Fixed(1))], &AdminOptions::new())
        .await
        .expect("create topics");
    assert!(created.iter().all(|r| r.is_ok()), "{created:?}");

    // alice writes (auto-creating the topic: she may create it) but may not write elsewhere.
    let alice = secure.scram("SCRAM-SHA-512", "alice", "alice-secret");
    produce(&alice, "orders", 10).await.expect("alice writes orders");
    match produce(&alice, "secret", 1).await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
        other => panic!("alice wrote to secret: {other:?}"),
    }
    assert_eq!(topics_seen(&alice), vec!["orders"], "alice sees only what she may describe");

    // Throttled: Kafka's quota is a rate over 11 one-second windows, measured
    // over at least 10 s, so the first ~1 MB at 100 KiB/s goes at once; past
    // it alice is held to her quota, the answers carrying a throttle time and
    // her connection muted. 2 MiB then take at least ~10 s; the admin, with
    // no quota, sends the same in well under half that.
    let started = std::time::Instant::now();
    produce_bulk(&alice, "orders", 2048, 1024).await;
    let alice_took = started.elapsed();
    assert!(alice_took >= Duration::from_secs(8), "2 MiB at a 100 KiB/s quota took only {alice_took:?}");
    let started = std::time::Instant::now();
    produce_bulk(&secure.scram("SCRAM-SHA-512", "admin", "admin-secret"), "secret", 2048, 1024).await;
    let admin_took = started.elapsed();
    assert!(admin_took * 2 < alice_took, "the admin has no quota, yet took {admin_took:?} (alice {alice_took:?})");

    // bob (SCRAM-SHA-256) reads them in his group.
    let mut bob = secure.scram("SCRAM-SHA-256", "bob", "bob-secret");
    bob.set("group.id", "readers").set("auto.offset.reset", "earliest");
    let records = common::kafka::consume_to_end(&bob, "orders", 1, Duration::from_secs(30));
    assert_eq!(records.len(), 2058);
    assert_eq!(topics_seen(&bob), vec!["orders"]);
    // kcat (Debian's librdkafka build) as bob over SASL_SSL with SCRAM-SHA-256.
    let output = Command::new(common::clients::kcat())
        .args(["-b", &secure.sasl_ssl(), "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-256"])
        .args(["-X", "sasl.username=bob", "-X", "sasl.password=bob-secret"])
        .args(["-X", &format!("ssl.ca.location={}", secure.pki.ca.display())])
        .args(["-C", "-t", "orders", "-p", "0", "-o", "beginning", "-c", "5", "-e", "-q"])
        .output()
        .expect("run kcat");
    assert!(output.status.success(), "kcat failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8_lossy(&output.stdout).lines().count(), 5);
    let output = Command::new(common::clients::kcat())
        .args(["-b", &secure.sasl_ssl(), "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512"])
        .args(["-X", "sasl.username=alice", "-X", "sasl.password=not-hers"])
        .args(["-X", &format!("ssl.ca.location={}", secure.pki.ca.display())])
        .args(["-L", "-m", "5"])
        .output()
        .expect("run kcat");
    assert!(!output.status.success(), "kcat logged in with a wrong password");

    // Wrong password, unknown user, and SCRAM-SHA-256 for a user with only SHA-512.
    refused_login(&secure.scram("SCRAM-SHA-512", "alice", "wrong"));
    refused_login(&secure.scram("SCRAM-SHA-512", "mallory", "anything"));
    refused_login(&secure.scram("SCRAM-SHA-256", "alice", "alice-secret"));

    // Users and ACLs are durable.
    let secure = secure.restart();
    let mut bob = secure.scram("SCRAM-SHA-256", "bob", "bob-secret");
    bob.set("group.id", "readers-after-restart").set("auto.offset.reset", "earliest");
    assert_eq!(topics_seen(&bob), vec!["orders"]);
    assert_eq!(common::kafka::consume_to_end(&bob, "orders", 1, Duration::from_secs(30)).len(), 2058);
    let listed = secure.acls(&admin, &["--list", "--topic", "orders"]);
    assert!(listed.contains("User:alice") && listed.contains("User:bob"), "{listed}");
    // Removing alice's credential locks her out.
    let out = secure.configs(
        &admin,
        &["--alter", "--delete-config", "SCRAM-SHA-512", "--entity-type", "users", "--entity-name", "alice"],
    );
    assert!(out.contains("Completed updating config"), "{out}");
    refused_login(&secure.scram("SCRAM-SHA-512", "alice", "alice-secret"));
    secure.broker.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn mutual_tls_maps_the_certificate_subject_to_the_principal() {
    let secure = Secure::start("sec-mtls");
    let admin = secure.java_properties("admin-plain.properties", "PLAIN", "admin", "admin-secret");
    // CN=alice,OU=eng,... maps to User:alice by the RULE.
    secure.acls(
        &admin,
        &[
            "--add",
            "--allow-principal",
            "User:alice",
            "--operation",
            "All",
            "--topic",
            "mtls-",
            "--resource-pattern-type",
            "prefixed",
        ],
    );
    let alice = secure.pki.client("Alice", false);
    let alice_config = secure.mtls(&alice);
    produce(&alice_config, "mtls-orders", 3).await.expect("alice over mTLS");
    match produce(&alice_config, "elsewhere", 1).await {
        Err(KafkaError::MessageProduction(RDKafkaErrorCode::TopicAuthorizationFailed)) => {}
        other => panic!("alice wrote outside her prefix: {other:?}"),
    }
    assert_eq!(topics_seen(&alice_config), vec!["mtls-orders"]);

    // kcat (librdkafka's CLI, Debian's build) over the same listener.
    let kcat = common::clients::kcat();
    let output = Command::new(&kcat)
        .args(["-b", &secure.broker.listener("SSL"), "-X", "security.protocol=SSL"])
        .args(["-X", &format!("ssl.ca.location={}", secure.pki.ca.display())])
        .args(["-X", &format!("ssl.certificate.location={}", alice.cert.display())])
        .args(["-X", &format!("ssl.key.location={}", alice.key.display())])
        .args(["-C", "-t", "mtls-orders", "-o", "beginning", "-e", "-q"])
        .output()
        .expect("run kcat");
    let consumed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kcat failed: {}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(consumed.lines().count(), 3, "{consumed}");

    // Certificates the broker must refuse: expired, from another CA, none at all.
    refused_login(&secure.mtls(&secure.pki.client("alice", true)));
    refused_login(&secure.mtls(&secure.pki.untrusted_client("alice")));
    let mut no_cert = secure.mtls(&alice);
    no_cert.remove("ssl.certificate.location").remove("ssl.key.location");
    refused_login(&no_cert);
    // A plaintext client on the TLS port gets nothing and is disconnected.
    let mut raw = Raw::connect_to(&secure.broker.listener("SSL"));
    raw.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert!(raw.closed_by_broker());
    let metrics = common::http::get(&secure.broker.admin_url(), "/metrics");
    let failed =
        common::http::sum(&common::http::parse_metrics(&metrics.body), "sluice_tls_handshakes_failed_total", &[]);
    assert!(failed >= 4.0, "failed handshakes counted: {failed}");

    // A renewed certificate is served without a restart.
    secure.pki.write_server_keystore(&secure.pki.server_keystore, "renewed");
    common::wait_until("the renewed certificate is loaded", Duration::from_secs(20), || {
        secure.broker.log().contains("TLS certificate reloaded")
    });
    produce(&alice_config, "mtls-orders", 1).await.expect("alice after the reload");
    secure.broker.stop();
}

#[test]
fn before_login_only_the_sasl_apis_are_served_then_librdkafka_logs_in_with_plain() {
    let secure = Secure::start("sec-prelogin");
    let address = secure.broker.listener("SASL_PLAINTEXT");

    // ApiVersions is served before login; anything else closes the connection.
    let mut raw = Raw::connect_to(&address);
    let versions: ApiVersionsResponse = raw.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    assert_eq!(versions.error_code, 0);
    for api in [ApiKey::SaslHandshake, ApiKey::SaslAuthenticate, ApiKey::CreateAcls, ApiKey::AlterUserScramCredentials]
    {
        assert!(versions.api_keys.iter().any(|k| k.api_key == api as i16), "{api:?} advertised");
    }
    raw.send(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(raw.closed_by_broker(), "Metadata before login must close the connection");

    // A frame above sasl.server.max.receive.size (512 KiB) before login is refused.
    let mut raw = Raw::connect_to(&address);
    raw.send_bytes(&(1024 * 1024i32).to_be_bytes());
    assert!(raw.closed_by_broker());

    // SaslAuthenticate without a handshake: ILLEGAL_SASL_STATE, then the connection closes.
    let mut raw = Raw::connect_to(&address);
    let answer: SaslAuthenticateResponse = raw.call(ApiKey::SaslAuthenticate, 2, &SaslAuthenticateRequest::default());
    assert_eq!(answer.error_code, ILLEGAL_SASL_STATE);
    assert!(raw.closed_by_broker());

    // A mechanism the listener does not offer: the answer lists those it does.
    let mut raw = Raw::connect_to(&address);
    let answer: SaslHandshakeResponse = raw.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("GSSAPI")),
    );
    assert_eq!(answer.error_code, UNSUPPORTED_SASL_MECHANISM);
    let offered: Vec<String> = answer.mechanisms.iter().map(|m| m.to_string()).collect();
    assert_eq!(offered, vec!["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]);
    assert!(raw.closed_by_broker());

    // A wrong password: SASL_AUTHENTICATION_FAILED with Kafka's message, then closed.
    let mut raw = Raw::connect_to(&address);
    let (code, message) = raw.sasl_plain("eve", "wrong");
    assert_eq!(code, SASL_AUTHENTICATION_FAILED);
    assert_eq!(message.as_deref(), Some("Authentication failed: Invalid username or password"));
    assert!(raw.closed_by_broker());

    // The right one: then the other APIs are served.
    let mut raw = Raw::connect_to(&address);
    assert_eq!(raw.sasl_plain("admin", "admin-secret").0, 0);
    let metadata: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert_eq!(metadata.brokers[0].port as u16, secure.broker.listener_port("SASL_PLAINTEXT"));

    // librdkafka over SASL_PLAINTEXT with PLAIN: records written (acks=all) and read back.
    let plain = |user: &str, password: &str| {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &address)
            .set("security.protocol", "SASL_PLAINTEXT")
            .set("sasl.mechanisms", "PLAIN")
            .set("sasl.username", user)
            .set("sasl.password", password)
            .set("message.timeout.ms", "10000")
            .set("socket.timeout.ms", "10000");
        config
    };
    let admin = plain("admin", "admin-secret");
    {
        use rdkafka::producer::{BaseRecord, DefaultProducerContext, ThreadedProducer};
        let mut config = admin.clone();
        config.set("acks", "all");
        let producer: ThreadedProducer<DefaultProducerContext> = config.create().expect("producer");
        for i in 0..20 {
            let value = format!("plain-{i}");
            common::kafka::send(&producer, BaseRecord::to("plain").partition(0).payload(value.as_str()).key("k"));
        }
        producer.flush(Duration::from_secs(10)).expect("records delivered");
    }
    let mut reader = admin.clone();
    reader.set("group.id", "plain-readers");
    let values: Vec<String> = common::kafka::consume_to_end(&reader, "plain", 1, Duration::from_secs(30))
        .iter()
        .map(common::kafka::value)
        .collect();
    assert_eq!(values, (0..20).map(|i| format!("plain-{i}")).collect::<Vec<_>>());
    refused_login(&plain("admin", "wrong"));
    refused_login(&plain("nobody", "admin-secret"));
    secure.broker.stop();
}

#[test]
fn a_principal_without_acls_is_refused_with_kafkas_errors_and_sees_nothing() {
    let secure = Secure::start("sec-noacl");
    let address = secure.broker.listener("SASL_PLAINTEXT");
    let mut admin = Raw::connect_to(&address);
    assert_eq!(admin.sasl_plain("admin", "admin-secret").0, 0);
    let created: CreateTopicsResponse = admin.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("private")))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(created.topics[0].error_code, 0);

    let mut eve = Raw::connect_to(&address);
    assert_eq!(eve.sasl_plain("eve", "eve-secret").0, 0);
    // Metadata: nothing listed; a named topic is TOPIC_AUTHORIZATION_FAILED (not created, not described).
    let all: MetadataResponse = eve.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert!(all.topics.is_empty(), "{:?}", all.topics);
    let named: MetadataResponse = eve.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(Some(vec![
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("private")))),
            kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("new-one")))),
        ])),
    );
    assert!(named.topics.iter().all(|t| t.error_code == TOPIC_AUTHORIZATION_FAILED), "{:?}", named.topics);
    assert!(named.topics.iter().all(|t| t.partitions.is_empty()));
    // Produce.
    let (code, _) = eve.produce("private", 0, common::record_batch(&[b"x"], 0));
    assert_eq!(code, TOPIC_AUTHORIZATION_FAILED);
    // CreateTopics.
    let created: CreateTopicsResponse = eve.call(
        ApiKey::CreateTopics,
        7,
        &CreateTopicsRequest::default().with_topics(vec![
            kafka_protocol::messages::create_topics_request::CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("eves")))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]),
    );
    assert_eq!(created.topics[0].error_code, TOPIC_AUTHORIZATION_FAILED);
    // Groups.
    let found: FindCoordinatorResponse = eve.call(
        ApiKey::FindCoordinator,
        4,
        &FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![StrBytes::from_static_str("g")]),
    );
    assert_eq!(found.coordinators[0].error_code, GROUP_AUTHORIZATION_FAILED);
    let joined: JoinGroupResponse = eve.call(
        ApiKey::JoinGroup,
        9,
        &JoinGroupRequest::default()
            .with_group_id(kafka_protocol::messages::GroupId(StrBytes::from_static_str("g")))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(StrBytes::from_static_str("consumer")),
    );
    assert_eq!(joined.error_code, GROUP_AUTHORIZATION_FAILED);
    let listed: ListGroupsResponse = eve.call(ApiKey::ListGroups, 5, &ListGroupsRequest::default());
    assert_eq!(listed.error_code, 0);
    assert!(listed.groups.is_empty());
    // Cluster-level APIs.
    let acls: DescribeAclsResponse = eve.call(
        ApiKey::DescribeAcls,
        3,
        &DescribeAclsRequest::default()
            .with_resource_type_filter(1)
            .with_pattern_type_filter(1)
            .with_operation(1)
            .with_permission_type(1),
    );
    assert_eq!(acls.error_code, CLUSTER_AUTHORIZATION_FAILED);
    let pid: InitProducerIdResponse = eve.call(
        ApiKey::InitProducerId,
        5,
        &InitProducerIdRequest::default().with_transactional_id(None).with_transaction_timeout_ms(60_000),
    );
    assert_eq!(pid.error_code, CLUSTER_AUTHORIZATION_FAILED);
    // WriteTxnMarkers needs ALTER or CLUSTER_ACTION on the cluster: every partition is refused, known or not.
    use kafka_protocol::messages::write_txn_markers_request::{WritableTxnMarker, WritableTxnMarkerTopic};
    use kafka_protocol::messages::{WriteTxnMarkersRequest, WriteTxnMarkersResponse};
    let markers = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(kafka_protocol::messages::ProducerId(1))
        .with_topics(vec![
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("private")))
                .with_partition_indexes(vec![0]),
            WritableTxnMarkerTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("nope")))
                .with_partition_indexes(vec![0]),
        ])]);
    let codes = |r: WriteTxnMarkersResponse| -> Vec<i16> {
        r.markers[0].topics.iter().flat_map(|t| t.partitions.iter().map(|p| p.error_code)).collect()
    };
    let refused: WriteTxnMarkersResponse = eve.call(ApiKey::WriteTxnMarkers, 1, &markers);
    assert_eq!(codes(refused), [CLUSTER_AUTHORIZATION_FAILED; 2]);
    let allowed: WriteTxnMarkersResponse = admin.call(ApiKey::WriteTxnMarkers, 1, &markers);
    assert_eq!(codes(allowed), [0, 3], "nothing open to end; UNKNOWN_TOPIC_OR_PARTITION");
    // The admin still sees everything.
    let all: MetadataResponse = admin.call(ApiKey::Metadata, 12, &MetadataRequest::default().with_topics(None));
    assert_eq!(all.topics.len(), 1);
    // eve may not set quotas; the admin may: 2 connections a second from this address.
    use kafka_protocol::messages::alter_client_quotas_request::{EntityData, EntryData, OpData};
    use kafka_protocol::messages::{AlterClientQuotasRequest, AlterClientQuotasResponse};
    let limit = AlterClientQuotasRequest::default().with_entries(vec![EntryData::default()
        .with_entity(vec![EntityData::default()
            .with_entity_type(StrBytes::from_static_str("ip"))
            .with_entity_name(Some(StrBytes::from_static_str("127.0.0.1")))])
        .with_ops(vec![OpData::default()
            .with_key(StrBytes::from_static_str("connection_creation_rate"))
            .with_value(2.0)])]);
    let refused: AlterClientQuotasResponse = eve.call(ApiKey::AlterClientQuotas, 1, &limit);
    assert_eq!(refused.entries[0].error_code, CLUSTER_AUTHORIZATION_FAILED);
    let set: AlterClientQuotasResponse = admin.call(ApiKey::AlterClientQuotas, 1, &limit);
    assert_eq!(set.entries[0].error_code, 0, "{set:?}");
    // Kafka's rate is over at least 10 s, so about 20 connections pass at once
    // and the rest are closed (the shards share the rate; the kernel spreads
    // connections over them unevenly, hence the margin).
    let mut connections: Vec<Raw> = (0..40).map(|_| Raw::connect_to(&address)).collect();
    let mut served = 0;
    for raw in &mut connections {
        raw.stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        raw.send(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        if raw.read_frame().is_some() {
            served += 1;
        }
    }
    assert!((12..=30).contains(&served), "{served} of 40 connections served at 2/s");
    secure.broker.stop();
}

#[test]
fn oauthbearer_tokens_are_checked_against_the_key_set() {
    let secure = Secure::start("sec-oauth");
    let admin = secure.java_properties("admin-plain.properties", "PLAIN", "admin", "admin-secret");
    secure.acls(
        &admin,
        &["--add", "--allow-principal", "User:svc-ingest", "--operation", "Describe", "--topic", "metrics"],
    );
    // The admin makes the topic.
    let mut raw = Raw::connect_to(&secure.broker.listener("SASL_PLAINTEXT"));
    assert_eq!(raw.sasl_plain("admin", "admin-secret").0, 0);
    let _: MetadataResponse = raw.call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default()
            .with_topics(Some(vec![kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("metrics"))))]))
            .with_allow_auto_topic_creation(true),
    );

    // A good token: the principal is its subject, and ACLs apply to it.
    let seen = oauth_topics(&secure.oauth(), secure.token("svc-ingest", "sluice", 300)).expect("a valid token logs in");
    assert_eq!(seen, vec!["metrics"]);
    // Expired, for another audience, or signed by a key the broker does not trust: refused.
    assert!(oauth_topics(&secure.oauth(), secure.token("svc-ingest", "sluice", -300)).is_err());
    assert!(oauth_topics(&secure.oauth(), secure.token("svc-ingest", "elsewhere", 300)).is_err());
    let stranger = rcgen::KeyPair::generate().unwrap();
    let forged = {
        let claims = serde_json::json!({ "sub": "svc-ingest", "aud": "sluice", "iat": 0, "exp": 4_000_000_000u64 });
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.kid = Some("test-key".into());
        jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_ec_der(&stranger.serialize_der()))
            .unwrap()
    };
    assert!(oauth_topics(&secure.oauth(), forged).is_err());

    // The Java client (kafka-acls.sh) with OAUTHBEARER: Kafka's login handler
    // reads the signed token from a file; as `admin` it may list the ACLs.
    let token = secure.dir.with_extension("admin.jwt");
    std::fs::write(&token, secure.token("admin", "sluice", 300)).unwrap();
    let token_url = format!("file://{}", token.display());
    let properties = secure.dir.with_extension("oauth.properties");
    std::fs::write(
        &properties,
        format!(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=OAUTHBEARER\n\
             sasl.login.callback.handler.class=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler\n\
             sasl.oauthbearer.token.endpoint.url={token_url}\n\
             sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required ;\n"
        ),
    )
    .unwrap();
    let allowed = format!("-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls={token_url}");
    let listed = secure.kafka_tool_on(
        &secure.broker.listener("OAUTH"),
        &[&allowed],
        "org.apache.kafka.tools.AclCommand",
        &properties,
        &["--list", "--topic", "metrics"],
    );
    assert!(listed.contains("User:svc-ingest"), "{listed}");
    secure.broker.stop();
}

#[test]
fn sessions_end_unless_clients_log_in_again_within_connections_max_reauth_ms() {
    let secure = Secure::start_with("sec-reauth", "connections.max.reauth.ms=1500\n");
    let address = secure.broker.listener("SASL_PLAINTEXT");
    let login = |raw: &mut Raw| -> SaslAuthenticateResponse {
        let handshake: SaslHandshakeResponse = raw.call(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        assert_eq!(handshake.error_code, 0);
        raw.call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from_static(b"\0eve\0eve-secret")),
        )
    };
    // The answer tells the client how long its session lasts (KIP-368).
    let mut raw = Raw::connect_to(&address);
    let answer = login(&mut raw);
    assert_eq!((answer.error_code, answer.session_lifetime_ms), (0, 1500));
    // Logging in again before the end keeps the connection going.
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(login(&mut raw).error_code, 0);
    std::thread::sleep(Duration::from_millis(1000));
    let _: MetadataResponse = raw.call(ApiKey::Metadata, 12, &MetadataRequest::default());
    // Past the end, the next request closes the connection.
    std::thread::sleep(Duration::from_millis(1700));
    raw.send(ApiKey::Metadata, 12, &MetadataRequest::default());
    assert!(raw.closed_by_broker(), "an expired session was still served");
    // A re-login may not change who the connection is.
    let mut raw = Raw::connect_to(&address);
    assert_eq!(login(&mut raw).error_code, 0);
    let handshake: SaslHandshakeResponse = raw.call(
        ApiKey::SaslHandshake,
        1,
        &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
    );
    assert_eq!(handshake.error_code, 0);
    let other: SaslAuthenticateResponse = raw.call(
        ApiKey::SaslAuthenticate,
        2,
        &SaslAuthenticateRequest::default().with_auth_bytes(bytes::Bytes::from_static(b"\0admin\0admin-secret")),
    );
    assert_eq!(other.error_code, SASL_AUTHENTICATION_FAILED);
    assert!(raw.closed_by_broker());
    secure.broker.stop();
}
