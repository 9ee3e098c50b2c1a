"""The Python clients on a secured broker: confluent-kafka and kafka-python.

Usage: python_security_checks.py SETUP_JSON
SETUP_JSON names the broker's listeners (sasl_plaintext, sasl_ssl, ssl,
oauth), the CA certificate (ca), and per client a client certificate signed
by that CA (cert, key), one from a CA the broker does not trust, and
OAUTHBEARER tokens for `<client>-user` (token, expired_token). The broker
has the PLAIN users admin (the only super user) and eve, and Kafka's
StandardAuthorizer. Each check prints "ok <client> <check>"; the first
failure raises. The last line is "python security ok". For each client:

- sasl/plain: the admin logs in with PLAIN, creates a topic, and writes and
  reads records; a wrong password is refused;
- acls: eve may not write the topic (TOPIC_AUTHORIZATION_FAILED); the admin
  creates ACLs that let her, lists them, and she writes; once the admin
  deletes them she is refused again;
- sasl/scram: the admin creates SCRAM-SHA-256 and SCRAM-SHA-512 credentials
  for `<client>-user` and describes them; the user, granted ACLs, logs in
  with each mechanism over SASL_SSL and writes and reads; a wrong password is
  refused;
- sasl/oauthbearer: `<client>-user` logs in with a signed token and writes
  and reads under its ACLs; an expired token is refused;
- tls: over the SSL listener with a client certificate, the principal is the
  certificate's CN (`<client>-app`): refused before it has ACLs, then writes
  and reads; a certificate from an unknown CA is refused.
"""
import json
import logging
import sys
import time

TIMEOUT_S = 30
RECORDS = 20


class Setup:
    def __init__(self, path, client):
        with open(path) as f:
            setup = json.load(f)
        self.listeners = setup
        self.ca = setup["ca"]
        self.mine = setup["clients"][client]
        self.user = f"{client}-user"
        self.app = f"{client}-app"


# --- confluent-kafka ----------------------------------------------------------


def confluent_checks(setup_path):
    from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
    from confluent_kafka.admin import (
        AclBinding,
        AclBindingFilter,
        AclOperation,
        AclPermissionType,
        AdminClient,
        NewTopic,
        ResourcePatternType,
        ResourceType,
        ScramCredentialInfo,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )

    s = Setup(setup_path, "confluent-kafka")
    topic = "ck-secure"
    group = "ck-secure-group"

    def plain(user, password):
        return {
            "bootstrap.servers": s.listeners["sasl_plaintext"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "PLAIN",
            "sasl.username": user,
            "sasl.password": password,
        }

    def scram(mechanism, user, password):
        return {
            "bootstrap.servers": s.listeners["sasl_ssl"],
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": mechanism,
            "sasl.username": user,
            "sasl.password": password,
            "ssl.ca.location": s.ca,
        }

    def oauth(token):
        def token_cb(_config):
            return token, time.time() + 300, s.user, {}

        return {
            "bootstrap.servers": s.listeners["oauth"],
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanisms": "OAUTHBEARER",
            "oauth_cb": token_cb,
        }

    def mtls(cert, key):
        return {
            "bootstrap.servers": s.listeners["ssl"],
            "security.protocol": "SSL",
            "ssl.ca.location": s.ca,
            "ssl.certificate.location": cert,
            "ssl.key.location": key,
        }

    admin_config = plain("admin", "admin-secret")
    admin = AdminClient(admin_config)

    def produce(config, tag):
        """Writes RECORDS records to partition 0; returns the first offset, or raises the delivery error."""
        producer = Producer({**config, "message.timeout.ms": 10000, "acks": "all"})
        delivered, errors = [], []

        def report(err, msg):
            if err is not None:
                errors.append(err)
            else:
                delivered.append(msg.offset())

        for i in range(RECORDS):
            producer.produce(topic, value=f"{tag}-{i}".encode(), partition=0, on_delivery=report)
        assert producer.flush(TIMEOUT_S) == 0, "records left undelivered"
        if errors:
            raise KafkaException(errors[0])
        assert len(delivered) == RECORDS and sorted(delivered) == list(range(delivered[0], delivered[0] + RECORDS))
        return min(delivered)

    def read_back(config, tag, first):
        consumer = Consumer({**config, "group.id": group, "enable.auto.commit": False})
        consumer.assign([TopicPartition(topic, 0, first)])
        values = []
        deadline = time.time() + TIMEOUT_S
        while len(values) < RECORDS:
            assert time.time() < deadline, f"read {len(values)} of {RECORDS}"
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                raise KafkaException(msg.error())
            values.append(msg.value().decode())
        consumer.close()
        assert values == [f"{tag}-{i}" for i in range(RECORDS)], values

    def round_trip(config, tag):
        read_back(config, tag, produce(config, tag))

    def refused_login(config, tls=False):
        """A client with `config` gets an authentication error (with `tls`, the
        broker's TLS alert refusing its certificate) and no metadata."""
        errors = []
        config = {**config, "error_cb": errors.append}
        client = AdminClient(config)
        try:
            client.list_topics(timeout=2)
            raise AssertionError("a login that should fail got metadata")
        except KafkaException:
            pass
        def refusals():
            if tls:
                return [e for e in errors if e.code() == KafkaError._TRANSPORT and "SSL alert number" in e.str()]
            return [e for e in errors if e.code() == KafkaError._AUTHENTICATION]

        # The error callback is served by poll(); on a busy machine a first
        # attempt may time out before the broker's verdict.
        deadline = time.time() + 10
        while not refusals() and time.time() < deadline:
            client.poll(0.2)
        assert refusals(), errors[:3]

    def denied(config):
        try:
            produce(config, "denied")
            raise AssertionError("a write without ACLs was accepted")
        except KafkaException as e:
            assert e.args[0].code() == KafkaError.TOPIC_AUTHORIZATION_FAILED, e

    def grant(principal):
        bindings = [
            AclBinding(
                ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, principal, "*", op, AclPermissionType.ALLOW
            )
            for op in (AclOperation.WRITE, AclOperation.READ, AclOperation.DESCRIBE)
        ]
        bindings.append(
            AclBinding(
                ResourceType.GROUP,
                group,
                ResourcePatternType.LITERAL,
                principal,
                "*",
                AclOperation.READ,
                AclPermissionType.ALLOW,
            )
        )
        for f in admin.create_acls(bindings).values():
            f.result(timeout=TIMEOUT_S)
        return bindings

    def acls_of(principal):
        return as_tuples(admin.describe_acls(acls_filter(principal)).result(timeout=TIMEOUT_S))

    def acls_filter(principal):
        return AclBindingFilter(
            ResourceType.ANY, None, ResourcePatternType.ANY, principal, None, AclOperation.ANY, AclPermissionType.ANY
        )

    def as_tuples(bindings):
        return {
            (b.restype, b.name, b.resource_pattern_type, b.principal, b.host, b.operation, b.permission_type)
            for b in bindings
        }

    # sasl/plain
    for f in admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=TIMEOUT_S).values():
        f.result(timeout=TIMEOUT_S)
    round_trip(admin_config, "plain")
    refused_login(plain("admin", "not-the-password"))
    print("ok confluent-kafka sasl/plain", flush=True)

    # acls
    eve = plain("eve", "eve-secret")
    denied(eve)
    assert acls_of("User:eve") == set()
    bindings = grant("User:eve")
    assert acls_of("User:eve") == as_tuples(bindings), acls_of("User:eve")
    round_trip(eve, "eve")
    deleted = admin.delete_acls([acls_filter("User:eve")])
    for f in deleted.values():
        assert as_tuples(f.result(timeout=TIMEOUT_S)) == as_tuples(bindings)
    assert acls_of("User:eve") == set()
    denied(eve)
    print("ok confluent-kafka acls", flush=True)

    # sasl/scram
    password = "user-secret"
    upserts = [
        UserScramCredentialUpsertion(s.user, ScramCredentialInfo(mechanism, 8192), password.encode())
        for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)
    ]
    for f in admin.alter_user_scram_credentials(upserts).values():
        f.result(timeout=TIMEOUT_S)
    described = admin.describe_user_scram_credentials([s.user])[s.user].result(timeout=TIMEOUT_S)
    assert sorted((i.mechanism.name, i.iterations) for i in described.scram_credential_infos) == [
        ("SCRAM_SHA_256", 8192),
        ("SCRAM_SHA_512", 8192),
    ], described
    denied(scram("SCRAM-SHA-256", s.user, password))
    grant(f"User:{s.user}")
    round_trip(scram("SCRAM-SHA-256", s.user, password), "scram-256")
    round_trip(scram("SCRAM-SHA-512", s.user, password), "scram-512")
    refused_login(scram("SCRAM-SHA-512", s.user, "not-the-password"))
    print("ok confluent-kafka sasl/scram", flush=True)

    # sasl/oauthbearer: the token's subject is the principal, with the ACLs granted above.
    round_trip(oauth(s.mine["token"]), "oauth")
    refused_login(oauth(s.mine["expired_token"]))
    print("ok confluent-kafka sasl/oauthbearer", flush=True)

    # tls: the certificate's CN is the principal.
    app = mtls(s.mine["cert"], s.mine["key"])
    denied(app)
    grant(f"User:{s.app}")
    round_trip(app, "mtls")
    refused_login(mtls(s.mine["untrusted_cert"], s.mine["untrusted_key"]), tls=True)
    print("ok confluent-kafka tls", flush=True)


# --- kafka-python ---------------------------------------------------------------


def kafka_python_checks(setup_path):
    from kafka import KafkaConsumer, KafkaProducer, TopicPartition
    from kafka.admin import (
        ACL,
        ACLFilter,
        ACLOperation,
        ACLPermissionType,
        ACLResourcePatternType,
        KafkaAdminClient,
        NewTopic,
        ResourcePattern,
        ResourcePatternFilter,
        ResourceType,
        ScramMechanism,
        UserScramCredentialUpsertion,
    )
    from kafka.errors import KafkaTimeoutError, TopicAuthorizationFailedError
    from kafka.net.sasl.oauth import AbstractTokenProvider

    s = Setup(setup_path, "kafka-python")
    topic = "kp-secure"
    group = "kp-secure-group"

    def plain(user, password):
        return {
            "bootstrap_servers": s.listeners["sasl_plaintext"],
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user,
            "sasl_plain_password": password,
        }

    def scram(mechanism, user, password):
        return {
            "bootstrap_servers": s.listeners["sasl_ssl"],
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": mechanism,
            "sasl_plain_username": user,
            "sasl_plain_password": password,
            "ssl_cafile": s.ca,
        }

    class Token(AbstractTokenProvider):
        def __init__(self, token):
            super().__init__()
            self.value = token

        def token(self):
            return self.value

    def oauth(token):
        return {
            "bootstrap_servers": s.listeners["oauth"],
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "OAUTHBEARER",
            "sasl_oauth_token_provider": Token(token),
        }

    def mtls(cert, key):
        return {
            "bootstrap_servers": s.listeners["ssl"],
            "security_protocol": "SSL",
            "ssl_cafile": s.ca,
            "ssl_certfile": cert,
            "ssl_keyfile": key,
        }

    admin_config = plain("admin", "admin-secret")
    admin = KafkaAdminClient(**admin_config)
    SASL_REFUSED = ("[Error 58] SaslAuthenticationFailedError", "socket disconnected")

    def produce(config, tag):
        producer = KafkaProducer(**config, acks="all", max_block_ms=10000, request_timeout_ms=10000)
        try:
            futures = [producer.send(topic, value=f"{tag}-{i}".encode(), partition=0) for i in range(RECORDS)]
            producer.flush()
            offsets = [f.get(timeout=TIMEOUT_S).offset for f in futures]
        finally:
            producer.close()
        assert offsets == list(range(offsets[0], offsets[0] + RECORDS)), offsets
        return offsets[0]

    def read_back(config, tag, first):
        consumer = KafkaConsumer(**config, group_id=group, enable_auto_commit=False)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, first)
        values = []
        deadline = time.time() + TIMEOUT_S
        while len(values) < RECORDS:
            assert time.time() < deadline, f"read {len(values)} of {RECORDS}"
            for messages in consumer.poll(timeout_ms=500).values():
                values.extend(m.value.decode() for m in messages)
        consumer.close()
        assert values[:RECORDS] == [f"{tag}-{i}" for i in range(RECORDS)], values

    def round_trip(config, tag):
        read_back(config, tag, produce(config, tag))

    class Warnings(logging.Handler):
        """Keeps what kafka-python's connection manager warns about."""

        def __init__(self):
            super().__init__(logging.WARNING)
            self.messages = []

        def emit(self, record):
            self.messages.append(record.getMessage())

    def refused_login(config, *why):
        """A client with `config` cannot bootstrap: every connection fails with
        one of `why`. (kafka-python 3.0.12 retries a refused login until its
        bootstrap times out, reporting each failed connection only in its log;
        the broker's answer to a failed SASL login is followed by its close,
        which kafka-python sometimes reads first.)"""
        warnings = Warnings()
        manager_log = logging.getLogger("kafka.net.manager")
        manager_log.addHandler(warnings)
        try:
            KafkaAdminClient(**config, bootstrap_timeout_ms=4000)
            raise AssertionError("a login that should fail bootstrapped")
        except KafkaTimeoutError:
            pass
        finally:
            manager_log.removeHandler(warnings)
        # An attempt may be cut short by the bootstrap deadline instead (during
        # the TLS handshake, ApiVersions or the SASL exchange on a busy
        # machine); those say so and carry no verdict.
        failed = [
            m
            for m in warnings.messages
            if m.startswith("Bootstrap connection to") and not any(t in m for t in ("timed out", "Timeout"))
        ]
        assert failed and all(any(w in m for w in why) for m in failed), warnings.messages

    def denied(config):
        try:
            produce(config, "denied")
            raise AssertionError("a write without ACLs was accepted")
        except TopicAuthorizationFailedError:
            pass

    def grant(principal):
        acls = [
            ACL(principal, "*", op, ACLPermissionType.ALLOW, ResourcePattern(ResourceType.TOPIC, topic))
            for op in (ACLOperation.WRITE, ACLOperation.READ, ACLOperation.DESCRIBE)
        ]
        group_pattern = ResourcePattern(ResourceType.GROUP, group)
        acls.append(ACL(principal, "*", ACLOperation.READ, ACLPermissionType.ALLOW, group_pattern))
        result = admin.create_acls(acls)
        assert not result["failed"] and len(result["succeeded"]) == len(acls), result
        return acls

    def acls_filter(principal):
        return ACLFilter(
            principal,
            None,
            ACLOperation.ANY,
            ACLPermissionType.ANY,
            ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY),
        )

    def as_tuples(acls):
        return {
            (
                a.principal,
                a.host,
                a.operation,
                a.permission_type,
                a.resource_pattern.resource_type,
                a.resource_pattern.resource_name,
                a.resource_pattern.pattern_type,
            )
            for a in acls
        }

    def acls_of(principal):
        found, error = admin.describe_acls(acls_filter(principal))
        assert error.errno == 0, error
        return as_tuples(found)

    # sasl/plain
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
    round_trip(admin_config, "plain")
    refused_login(plain("admin", "not-the-password"), *SASL_REFUSED)
    print("ok kafka-python sasl/plain", flush=True)

    # acls
    eve = plain("eve", "eve-secret")
    denied(eve)
    assert acls_of("User:eve") == set()
    acls = grant("User:eve")
    assert acls_of("User:eve") == as_tuples(acls), acls_of("User:eve")
    round_trip(eve, "eve")
    deleted = admin.delete_acls([acls_filter("User:eve")])
    assert as_tuples(a for _, matched, _ in deleted for a in matched) == as_tuples(acls), deleted
    assert acls_of("User:eve") == set()
    denied(eve)
    print("ok kafka-python acls", flush=True)

    # sasl/scram
    password = "user-secret"
    result = admin.alter_user_scram_credentials(
        [
            UserScramCredentialUpsertion(s.user, mechanism, password, iterations=8192)
            for mechanism in (ScramMechanism.SCRAM_SHA_256, ScramMechanism.SCRAM_SHA_512)
        ]
    )
    assert all(error is None for error in result.values()), result
    described = admin.describe_user_scram_credentials([s.user])[s.user]
    assert described["error"] is None, described
    assert sorted((i["mechanism"].name, i["iterations"]) for i in described["credential_infos"]) == [
        ("SCRAM_SHA_256", 8192),
        ("SCRAM_SHA_512", 8192),
    ], described
    denied(scram("SCRAM-SHA-256", s.user, password))
    grant(f"User:{s.user}")
    round_trip(scram("SCRAM-SHA-256", s.user, password), "scram-256")
    round_trip(scram("SCRAM-SHA-512", s.user, password), "scram-512")
    refused_login(scram("SCRAM-SHA-512", s.user, "not-the-password"), *SASL_REFUSED)
    print("ok kafka-python sasl/scram", flush=True)

    # sasl/oauthbearer
    round_trip(oauth(s.mine["token"]), "oauth")
    refused_login(oauth(s.mine["expired_token"]), *SASL_REFUSED)
    print("ok kafka-python sasl/oauthbearer", flush=True)

    # tls
    app = mtls(s.mine["cert"], s.mine["key"])
    denied(app)
    grant(f"User:{s.app}")
    round_trip(app, "mtls")
    refused_login(mtls(s.mine["untrusted_cert"], s.mine["untrusted_key"]), "[SSL: TLSV1_ALERT_")
    admin.close()
    print("ok kafka-python tls", flush=True)


if __name__ == "__main__":
    confluent_checks(sys.argv[1])
    kafka_python_checks(sys.argv[1])
    print("python security ok")
