"""The schema registry as applications and Confluent's clients use it.

Usage: schema_registry_checks.py BOOTSTRAP REGISTRY_URL PHASE STATE_FILE
PHASE is `fresh` (a new broker) or `restarted` (the same broker after a
kill -9): `fresh` registers and records what it was told in STATE_FILE,
`restarted` checks that every id, version and config is still there, and
that new ids continue after the old ones. Each check prints "ok <name>".

- rest: Confluent's REST API answered as Confluent documents it: register
  (the same schema again keeps its id and version; under another subject it
  keeps its id), versions, latest, `/schema`, look-up, ids, types, config
  and mode, soft and permanent deletes, and the error codes (40401, 40402,
  40403, 40404, 40405, 42201, 42202, 409...);
- compatibility: evolutions of each schema type with the verdict expected
  under BACKWARD, FORWARD and FULL (and their transitive forms);
- avro, json, protobuf: confluent-kafka's serializers register their schema
  and produce to Sluice, its deserializers read the records back;
- concurrent: the same schema registered from many threads at once gets one id;
- bad-input: invalid schemas, unknown references and oversized bodies are
  refused with a clear error and nothing stored;
- documented-examples: Confluent's documented curl walk-through and API
  reference answers, bodies and error texts compared exactly;
- validation: topics with `confluent.value.schema.validation=true` (and
  `confluent.key.schema.validation`, by topic and by record name strategy)
  take records whose schema id is registered under the subject and refuse
  the rest with INVALID_RECORD; tombstones pass; turned off, anything goes.
"""
import json
import sys
import threading
import urllib.error
import urllib.request
import uuid

from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.schema_registry import record_subject_name_strategy
from confluent_kafka.serialization import MessageField, SerializationContext

CONTENT = "application/vnd.schemaregistry.v1+json"


class Rest:
    def __init__(self, url):
        self.url = url.rstrip("/")

    def call(self, method, path, body=None):
        """(status, decoded JSON body)."""
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": CONTENT})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def ok(self, method, path, body=None):
        status, answer = self.call(method, path, body)
        assert status == 200, f"{method} {path}: {status} {answer}"
        return answer

    def fails(self, method, path, body, code):
        status, answer = self.call(method, path, body)
        assert status == code // 100 if code >= 10000 else status == code, f"{method} {path}: {status} {answer}"
        assert answer["error_code"] == code, f"{method} {path}: expected {code}, got {answer}"
        assert answer["message"], answer
        return answer


def avro_record(name, fields):
    return json.dumps({"type": "record", "name": name, "fields": fields})


def check_rest(rest, state):
    s1 = avro_record("User", [{"name": "name", "type": "string"}])
    subject = "users-value"
    first = rest.ok("POST", f"/subjects/{subject}/versions", {"schema": s1})["id"]
    again = rest.ok("POST", f"/subjects/{subject}/versions", {"schema": json.dumps(json.loads(s1), indent=2)})["id"]
    assert again == first, "the same schema, spaced differently, keeps its id"
    assert rest.ok("GET", f"/subjects/{subject}/versions") == [1]
    latest = rest.ok("GET", f"/subjects/{subject}/versions/latest")
    assert (latest["subject"], latest["version"], latest["id"]) == (subject, 1, first), latest
    assert "schemaType" not in latest, "AVRO is not named, as in Confluent's answers"
    assert rest.ok("GET", f"/subjects/{subject}/versions/1/schema")["name"] == "User"
    other = rest.ok("POST", "/subjects/other-value/versions", {"schema": s1})["id"]
    assert other == first, "one schema under two subjects has one id"
    assert sorted(rest.ok("GET", f"/schemas/ids/{first}/subjects")) == ["other-value", subject]
    assert json.loads(rest.ok("GET", f"/schemas/ids/{first}")["schema"])["name"] == "User"
    found = rest.ok("POST", f"/subjects/{subject}", {"schema": s1})
    assert (found["version"], found["id"]) == (1, first), found
    assert sorted(rest.ok("GET", "/schemas/types")) == ["AVRO", "JSON", "PROTOBUF"]

    # Evolution under the default BACKWARD: an optional field added passes, a required one does not.
    s2 = avro_record("User", [{"name": "name", "type": "string"}, {"name": "age", "type": ["null", "int"], "default": None}])
    second = rest.ok("POST", f"/subjects/{subject}/versions", {"schema": s2})["id"]
    assert second > first
    bad = avro_record("User", [{"name": "name", "type": "string"}, {"name": "email", "type": "string"}])
    rest.fails("POST", f"/subjects/{subject}/versions", {"schema": bad}, 409)
    verdict = rest.ok("POST", f"/compatibility/subjects/{subject}/versions/latest?verbose=true", {"schema": bad})
    assert verdict["is_compatible"] is False and verdict["messages"], verdict
    assert rest.ok("POST", f"/compatibility/subjects/{subject}/versions/latest", {"schema": s2}) == {"is_compatible": True}

    # Config and mode.
    assert rest.ok("GET", "/config") == {"compatibilityLevel": "BACKWARD"}
    assert rest.ok("PUT", f"/config/{subject}", {"compatibility": "NONE"}) == {"compatibility": "NONE"}
    assert rest.ok("GET", f"/config/{subject}") == {"compatibilityLevel": "NONE"}
    rest.fails("PUT", "/config", {"compatibility": "SIDEWAYS"}, 42203)
    third = rest.ok("POST", f"/subjects/{subject}/versions", {"schema": bad})["id"]
    assert rest.ok("GET", f"/subjects/{subject}/versions") == [1, 2, 3]
    assert rest.ok("GET", "/mode") == {"mode": "READWRITE"}
    assert rest.ok("PUT", "/mode/frozen-value", {"mode": "READONLY"}) == {"mode": "READONLY"}
    rest.fails("POST", "/subjects/frozen-value/versions", {"schema": s1}, 42205)

    # Errors, as Confluent numbers them.
    rest.fails("GET", "/subjects/nobody/versions", None, 40401)
    rest.fails("GET", f"/subjects/{subject}/versions/99", None, 40402)
    rest.fails("GET", "/schemas/ids/999999", None, 40403)
    rest.fails("GET", f"/subjects/{subject}/versions/zero", None, 42202)
    rest.fails("POST", "/subjects/broken-value/versions", {"schema": "{not json"}, 42201)
    rest.fails("POST", "/subjects/broken-value/versions", {"schema": '{"type":"record","name":"R","fields":[{"name":"x","type":"nope"}]}'}, 42201)

    # Deletes: a version soft then for good; the subject of another.
    assert rest.ok("DELETE", f"/subjects/{subject}/versions/3") == 3
    rest.fails("DELETE", f"/subjects/{subject}/versions/3", None, 40406)
    assert rest.ok("GET", f"/subjects/{subject}/versions") == [1, 2]
    assert rest.ok("GET", f"/subjects/{subject}/versions?deleted=true") == [1, 2, 3]
    rest.fails("DELETE", f"/subjects/{subject}/versions/2?permanent=true", None, 40407)
    assert rest.ok("DELETE", f"/subjects/{subject}/versions/3?permanent=true") == 3
    assert rest.ok("GET", f"/subjects/{subject}/versions?deleted=true") == [1, 2]
    rest.fails("DELETE", "/subjects/other-value?permanent=true", None, 40405)
    assert rest.ok("DELETE", "/subjects/other-value") == [1]
    rest.fails("DELETE", "/subjects/other-value", None, 40404)
    assert "other-value" not in rest.ok("GET", "/subjects")
    assert "other-value" in rest.ok("GET", "/subjects?deleted=true")
    assert rest.ok("DELETE", "/subjects/other-value?permanent=true") == [1]
    rest.fails("GET", "/subjects/other-value/versions", None, 40401)
    state["rest"] = {"subject": subject, "ids": [first, second], "deleted_id": third}
    print("ok rest")


# (name, schema type, old, new, {level: compatible?})
EVOLUTIONS = [
    ("avro: optional field added", "AVRO",
     avro_record("R", [{"name": "a", "type": "string"}]),
     avro_record("R", [{"name": "a", "type": "string"}, {"name": "b", "type": "int", "default": 0}]),
     {"BACKWARD": True, "FORWARD": True, "FULL": True}),
    ("avro: required field added", "AVRO",
     avro_record("R", [{"name": "a", "type": "string"}]),
     avro_record("R", [{"name": "a", "type": "string"}, {"name": "b", "type": "int"}]),
     {"BACKWARD": False, "FORWARD": True, "FULL": False}),
    ("avro: field removed", "AVRO",
     avro_record("R", [{"name": "a", "type": "string"}, {"name": "b", "type": "int"}]),
     avro_record("R", [{"name": "a", "type": "string"}]),
     {"BACKWARD": True, "FORWARD": False, "FULL": False}),
    ("avro: int widened to long", "AVRO",
     avro_record("R", [{"name": "a", "type": "int"}]),
     avro_record("R", [{"name": "a", "type": "long"}]),
     {"BACKWARD": True, "FORWARD": False, "FULL": False}),
    ("avro: enum symbol added", "AVRO",
     json.dumps({"type": "enum", "name": "E", "symbols": ["A", "B"]}),
     json.dumps({"type": "enum", "name": "E", "symbols": ["A", "B", "C"]}),
     {"BACKWARD": True, "FORWARD": False, "FULL": False}),
    ("json: property added to a closed model", "JSON",
     json.dumps({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False}),
     json.dumps({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}, "additionalProperties": False}),
     {"BACKWARD": True, "FORWARD": False, "FULL": False}),
    ("json: property added to an open model", "JSON",
     json.dumps({"type": "object", "properties": {"a": {"type": "string"}}}),
     json.dumps({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}),
     {"BACKWARD": False, "FORWARD": True, "FULL": False}),
    ("json: integer widened to number", "JSON",
     json.dumps({"type": "integer"}), json.dumps({"type": "number"}),
     {"BACKWARD": True, "FORWARD": False, "FULL": False}),
    ("protobuf: field added", "PROTOBUF",
     'syntax = "proto3"; message M { string a = 1; }',
     'syntax = "proto3"; message M { string a = 1; int64 b = 2; }',
     {"BACKWARD": True, "FORWARD": True, "FULL": True}),
    ("protobuf: field type changed", "PROTOBUF",
     'syntax = "proto3"; message M { string a = 1; }',
     'syntax = "proto3"; message M { int64 a = 1; }',
     {"BACKWARD": False, "FORWARD": False, "FULL": False}),
    ("protobuf: message removed", "PROTOBUF",
     'syntax = "proto3"; message M { string a = 1; } message N { string b = 1; }',
     'syntax = "proto3"; message M { string a = 1; }',
     {"BACKWARD": False, "FORWARD": True, "FULL": False}),
]


def check_compatibility(rest):
    for name, schema_type, old, new, verdicts in EVOLUTIONS:
        for level, expected in verdicts.items():
            for transitive in ("", "_TRANSITIVE"):
                subject = f"evolve-{uuid.uuid4().hex[:8]}"
                rest.ok("PUT", f"/config/{subject}", {"compatibility": level + transitive})
                rest.ok("POST", f"/subjects/{subject}/versions", {"schema": old, "schemaType": schema_type})
                status, answer = rest.call("POST", f"/subjects/{subject}/versions", {"schema": new, "schemaType": schema_type})
                got = status == 200
                assert got == expected, f"{name} under {level}{transitive}: expected {expected}, got {status} {answer}"
                if not got:
                    assert status == 409 and answer["error_code"] == 409, answer
    print("ok compatibility")


def round_trip(bootstrap, topic, serializer, deserializer, values):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for v in values:
        producer.produce(topic, value=serializer(v, SerializationContext(topic, MessageField.VALUE)))
    assert producer.flush(30) == 0
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"sr-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    read = []
    while len(read) < len(values):
        m = consumer.poll(1.0)
        if m is None:
            continue
        assert m.error() is None, m.error()
        assert m.value()[0] == 0, "the wire format's magic byte"
        read.append(deserializer(m.value(), SerializationContext(topic, MessageField.VALUE)))
    consumer.close()
    return read


def check_avro(bootstrap, client, state):
    schema = avro_record("Trade", [{"name": "symbol", "type": "string"}, {"name": "qty", "type": "long"}])
    values = [{"symbol": f"S{i}", "qty": i} for i in range(20)]
    read = round_trip(bootstrap, "sr-avro", AvroSerializer(client, schema), AvroDeserializer(client), values)
    assert read == values, read
    state["avro"] = client.get_latest_version("sr-avro-value").schema_id
    print("ok avro")


def check_json(bootstrap, client, state):
    schema = json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "Reading", "type": "object",
        "properties": {"sensor": {"type": "string"}, "value": {"type": "number"}},
        "required": ["sensor", "value"], "additionalProperties": False,
    })
    values = [{"sensor": f"s{i}", "value": i * 0.5} for i in range(20)]
    read = round_trip(bootstrap, "sr-json", JSONSerializer(schema, client), JSONDeserializer(schema, schema_registry_client=client), values)
    assert read == values, read
    state["json"] = client.get_latest_version("sr-json-value").schema_id
    print("ok json")


def protobuf_message_class():
    """A message class built at run time from a descriptor, as generated code would define it."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    file = descriptor_pb2.FileDescriptorProto(name="quote.proto", package="sluice.test", syntax="proto3")
    message = file.message_type.add(name="Quote")
    message.field.add(name="symbol", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    message.field.add(name="price", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
                      label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("sluice.test.Quote"))


def check_protobuf(bootstrap, client, state):
    Quote = protobuf_message_class()
    serializer = ProtobufSerializer(Quote, client, {"use.deprecated.format": False})
    deserializer = ProtobufDeserializer(Quote, {"use.deprecated.format": False})
    values = [Quote(symbol=f"Q{i}", price=i + 0.25) for i in range(20)]
    read = round_trip(bootstrap, "sr-protobuf", serializer, deserializer, values)
    assert [(q.symbol, q.price) for q in read] == [(q.symbol, q.price) for q in values], read
    state["protobuf"] = client.get_latest_version("sr-protobuf-value").schema_id
    print("ok protobuf")


def check_concurrent(rest, state):
    schema = avro_record("Concurrent", [{"name": "n", "type": "int"}])
    ids, errors = [], []

    def register():
        try:
            ids.append(rest.ok("POST", "/subjects/concurrent-value/versions", {"schema": schema})["id"])
        except Exception as e:  # reported below
            errors.append(repr(e))

    threads = [threading.Thread(target=register) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert len(set(ids)) == 1 and len(ids) == 16, ids
    assert rest.ok("GET", "/subjects/concurrent-value/versions") == [1]
    state["concurrent"] = ids[0]
    print("ok concurrent")


def check_bad_input(rest):
    before = rest.ok("GET", "/subjects")
    rest.fails("POST", "/subjects/bad-value/versions", {"schema": '{"type": "object", "properties": 5}', "schemaType": "JSON"}, 42201)
    rest.fails("POST", "/subjects/bad-value/versions", {"schema": "message {", "schemaType": "PROTOBUF"}, 42201)
    rest.fails("POST", "/subjects/bad-value/versions",
               {"schema": avro_record("R", [{"name": "x", "type": "Missing"}]),
                "references": [{"name": "Missing", "subject": "no-such-subject", "version": 1}]}, 42201)
    rest.fails("POST", "/subjects/bad-value/versions", {"schema": "{}", "schemaType": "XML"}, 42201)
    status, _ = rest.call("POST", "/subjects/bad-value/versions", b"not json at all")
    assert status in (400, 422), status
    status, answer = rest.call("POST", "/subjects/bad-value/versions", {"schema": "x" * (2 * 1024 * 1024)})
    assert status == 413, (status, answer)
    assert rest.ok("GET", "/subjects") == before, "nothing was stored"
    print("ok bad-input")


# Confluent's documented answers: the curl walk-through of "Schema Registry API
# Usage Examples" (https://docs.confluent.io/platform/current/schema-registry/develop/using.html),
# the API reference (.../develop/api.html) and the error texts of Confluent's
# registry. Subjects carry a unique prefix and ids are compared with what
# registration returned, so it runs beside the other checks.
def check_documented_examples(rest):
    p = "docex-" + uuid.uuid4().hex[:12] + "-"
    K, V = p + "Kafka-key", p + "Kafka-value"
    MISSING = p + "no-such-subject"
    STRING = {"schema": "{\"type\": \"string\"}"}
    INT = {"schema": "{\"type\": \"int\"}"}

    orig_cfg = rest.ok("GET", "/config")
    orig_mode = rest.ok("GET", "/mode")
    try:
        # [USING] GET /config -> {"compatibilityLevel":"BACKWARD"} (exact on a default registry;
        # here only the shape is required, another user may have changed the level)
        assert set(orig_cfg) == {"compatibilityLevel"}, orig_cfg
        assert orig_cfg["compatibilityLevel"] in (
            "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
            "FULL", "FULL_TRANSITIVE", "NONE"), orig_cfg
        # [API] GET /mode -> {"mode": "READWRITE"}
        assert orig_mode == {"mode": "READWRITE"}, orig_mode

        # [USING] register under Kafka-key / Kafka-value -> {"id":1} (same id for both)
        r = rest.ok("POST", f"/subjects/{K}/versions", STRING)
        assert set(r) == {"id"} and isinstance(r["id"], int) and r["id"] > 0, r
        sid = r["id"]
        r = rest.ok("POST", f"/subjects/{V}/versions", STRING)
        assert r == {"id": sid}, (r, sid)
        # re-registering the same schema is idempotent
        assert rest.ok("POST", f"/subjects/{V}/versions", STRING) == {"id": sid}

        # [USING] GET /subjects -> ["Kafka-value","Kafka-key"]  (membership)
        subs = rest.ok("GET", "/subjects")
        assert isinstance(subs, list) and all(isinstance(s, str) for s in subs), subs
        assert K in subs and V in subs, subs

        # [USING] GET /subjects/Kafka-value/versions -> [1]
        assert rest.ok("GET", f"/subjects/{V}/versions") == [1]

        # [USING] GET /schemas/ids/1 -> {"schema":"\"string\""}
        r = rest.ok("GET", f"/schemas/ids/{sid}")
        assert set(r) == {"schema"}, r  # no schemaType for AVRO
        assert r == {"schema": "\"string\""}, r

        # [USING] GET /subjects/Kafka-value/versions/1 and /latest
        #   -> {"subject":"Kafka-value","version":1,"id":1,"schema":"\"string\""}
        for ver in ("1", "latest"):
            r = rest.ok("GET", f"/subjects/{V}/versions/{ver}")
            assert set(r) == {"subject", "version", "id", "schema"}, r  # AVRO: schemaType omitted
            assert (r["subject"], r["version"], r["id"]) == (V, 1, sid), r
            assert r == {"subject": V, "version": 1, "id": sid, "schema": "\"string\""}, r

        # [API] GET /subjects/{s}/versions/{v}/schema -> the unescaped schema only
        r = rest.ok("GET", f"/subjects/{V}/versions/1/schema")
        assert r == "string", r

        # [USING] POST /subjects/Kafka-key (is it registered?)
        #   -> {"subject":"Kafka-key","version":1,"id":1,"schema":"\"string\""}
        r = rest.ok("POST", f"/subjects/{K}", STRING)
        assert set(r) == {"subject", "version", "id", "schema"}, r
        assert (r["subject"], r["version"], r["id"]) == (K, 1, sid), r
        assert r == {"subject": K, "version": 1, "id": sid, "schema": "\"string\""}, r

        # [USING] POST /compatibility/subjects/Kafka-value/versions/latest -> {"is_compatible":true}
        assert rest.ok("POST", f"/compatibility/subjects/{V}/versions/latest", STRING) == {"is_compatible": True}
        assert rest.ok("POST", f"/compatibility/subjects/{V}/versions/1", STRING) == {"is_compatible": True}

        # [API] GET /schemas/types -> ["JSON", "PROTOBUF", "AVRO"]
        types = rest.ok("GET", "/schemas/types")
        assert sorted(types) == ["AVRO", "JSON", "PROTOBUF"], types

        # [API] GET /schemas/ids/{id}/versions -> [{"subject": "test-subject1", "version": 1}]
        pairs = rest.ok("GET", f"/schemas/ids/{sid}/versions")
        assert all(isinstance(x, dict) and set(x) == {"subject", "version"} for x in pairs), pairs
        assert {"subject": K, "version": 1} in pairs and {"subject": V, "version": 1} in pairs, pairs
        # [API] GET /schemas/ids/{id}/subjects -> ["subject1", "subject2"]
        s = rest.ok("GET", f"/schemas/ids/{sid}/subjects")
        assert K in s and V in s, s

        # [USING]/[README] PUT /config/Kafka-value {"compatibility":"BACKWARD"} -> {"compatibility":"BACKWARD"}
        assert rest.ok("PUT", f"/config/{V}", {"compatibility": "BACKWARD"}) == {"compatibility": "BACKWARD"}
        # [API] GET /config/{subject} -> {"compatibilityLevel": "..."}
        assert rest.ok("GET", f"/config/{V}") == {"compatibilityLevel": "BACKWARD"}
        # [SRC] no subject-level config -> 40408 "Subject '%s' does not have subject-level compatibility configured"
        e = rest.fails("GET", f"/config/{K}", None, 40408)
        assert e["message"] == f"Subject '{K}' does not have subject-level compatibility configured", e

        # [API] register incompatible schema -> HTTP 409 (error_code 409; 40901 in CP >= 8.0.4/8.1)
        st, e = rest.call("POST", f"/subjects/{V}/versions", INT)
        assert st == 409 and e.get("error_code") in (409, 40901) and e.get("message"), (st, e)
        assert e["message"].startswith("Schema being registered is incompatible with an earlier schema"), e

        # [SRC] DELETE /config/{subject} returns the removed config
        assert rest.ok("DELETE", f"/config/{V}") == {"compatibilityLevel": "BACKWARD"}
        rest.fails("DELETE", f"/config/{MISSING}", None, 40401)

        # [USING]/[README] PUT /config {"compatibility":"NONE"} -> {"compatibility":"NONE"}
        assert rest.ok("PUT", "/config", {"compatibility": "NONE"}) == {"compatibility": "NONE"}
        assert rest.ok("GET", "/config") == {"compatibilityLevel": "NONE"}
        assert rest.ok("PUT", "/config", {"compatibility": orig_cfg["compatibilityLevel"]}) == \
            {"compatibility": orig_cfg["compatibilityLevel"]}
        # [SRC] 42203 "Invalid compatibility level. Valid values are none, backward, ..."
        e = rest.fails("PUT", "/config", {"compatibility": "FOO"}, 42203)
        assert e["message"] == ("Invalid compatibility level. Valid values are none, backward, forward, "
                                "full, backward_transitive, forward_transitive, and full_transitive"), e

        # [API] mode endpoints
        assert rest.ok("PUT", "/mode", {"mode": "READONLY"}) == {"mode": "READONLY"}
        assert rest.ok("GET", "/mode") == {"mode": "READONLY"}
        assert rest.ok("PUT", "/mode", {"mode": "READWRITE"}) == {"mode": "READWRITE"}
        assert rest.ok("PUT", f"/mode/{V}", {"mode": "READONLY"}) == {"mode": "READONLY"}
        assert rest.ok("GET", f"/mode/{V}") == {"mode": "READONLY"}
        rest.fails("POST", f"/subjects/{V}/versions", INT, 42205)   # read-only subject
        assert rest.ok("DELETE", f"/mode/{V}") == {"mode": "READONLY"}
        e = rest.fails("GET", f"/mode/{V}", None, 40409)
        assert e["message"] == f"Subject '{V}' does not have subject-level mode configured", e
        e = rest.fails("PUT", f"/mode/{V}", {"mode": "FOO"}, 42204)
        assert e["message"].startswith("Invalid mode."), e
        rest.fails("DELETE", f"/mode/{MISSING}", None, 40401)

        # [USING] delete / re-register walk-through (old using.rst + [DEL])
        assert rest.ok("PUT", f"/config/{V}", {"compatibility": "NONE"}) == {"compatibility": "NONE"}
        r = rest.ok("POST", f"/subjects/{V}/versions", INT)
        assert set(r) == {"id"} and r["id"] != sid, r
        assert rest.ok("GET", f"/subjects/{V}/versions") == [1, 2]
        # DELETE /subjects/Kafka-value/versions/1 -> 1
        assert rest.ok("DELETE", f"/subjects/{V}/versions/1") == 1
        assert rest.ok("GET", f"/subjects/{V}/versions") == [2]
        e = rest.fails("GET", f"/subjects/{V}/versions/1", None, 40402)
        assert e["message"] == "Version 1 not found.", e
        # DELETE /subjects/Kafka-value/versions/latest -> 2
        assert rest.ok("DELETE", f"/subjects/{V}/versions/latest") == 2
        e = rest.fails("GET", f"/subjects/{V}/versions", None, 40401)
        assert e["message"] == f"Subject '{V}' not found.", e
        assert V not in rest.ok("GET", "/subjects")
        # Registering the same schema again -> {"id":1} (same id), next version is 3
        assert rest.ok("POST", f"/subjects/{V}/versions", STRING) == {"id": sid}
        assert rest.ok("GET", f"/subjects/{V}/versions") == [3]
        assert rest.ok("GET", f"/schemas/ids/{sid}") == {"schema": "\"string\""}
        # DELETE /subjects/Kafka-value -> [3]
        assert rest.ok("DELETE", f"/subjects/{V}") == [3]
        subs = rest.ok("GET", "/subjects")
        assert V not in subs and K in subs, subs
        assert V in rest.ok("GET", "/subjects?deleted=true")
        # [SRC] 40404 soft-deleted already / 40405 permanent without soft delete
        e = rest.fails("DELETE", f"/subjects/{V}", None, 40404)
        assert e["message"] == f"Subject '{V}' was soft deleted.Set permanent=true to delete permanently", e
        e = rest.fails("DELETE", f"/subjects/{K}?permanent=true", None, 40405)
        assert e["message"] == f"Subject '{K}' was not deleted first before being permanently deleted", e
        # [DEL] hard delete after soft delete (returns every version, incl. soft-deleted ones)
        assert rest.ok("DELETE", f"/subjects/{V}?permanent=true") == [1, 2, 3]
        assert V not in rest.ok("GET", "/subjects?deleted=true")

        # documented error codes ([API]/[CLOUD]) with [SRC] message texts
        e = rest.fails("GET", f"/subjects/{MISSING}/versions", None, 40401)
        assert e["message"] == f"Subject '{MISSING}' not found.", e
        e = rest.fails("GET", f"/subjects/{K}/versions/99", None, 40402)
        assert e["message"] == "Version 99 not found.", e
        for bad in ("abc", "0"):
            e = rest.fails("GET", f"/subjects/{K}/versions/{bad}", None, 42202)
            assert e["message"] == (f"The specified version '{bad}' is not a valid version id. "
                                    "Allowed values are between [1, 2^31-1] and the string \"latest\""), e
        big = 2147483000
        e = rest.fails("GET", f"/schemas/ids/{big}", None, 40403)
        assert e["message"] == f"Schema {big} not found", e
        e = rest.fails("GET", f"/schemas/ids/{big}/versions", None, 40403)
        assert e["message"] == "Schema not found", e
        e = rest.fails("POST", f"/subjects/{K}", {"schema": "{\"type\": \"bytes\"}"}, 40403)
        assert e["message"] == "Schema not found", e
        e = rest.fails("POST", f"/subjects/{MISSING}", STRING, 40401)
        assert e["message"] == f"Subject '{MISSING}' not found.", e
        rest.fails("POST", f"/subjects/{K}/versions", {"schema": "{\"type\": \"nosuchtype\"}"}, 42201)
        e = rest.fails("DELETE", f"/subjects/{K}/versions/99", None, 40402)
        assert e["message"] == "Version 99 not found.", e
        rest.fails("DELETE", f"/subjects/{MISSING}/versions/1", None, 40401)
        rest.fails("DELETE", f"/subjects/{MISSING}", None, 40401)
        # [SRC] CompatibilityResource: missing subject + "latest" is compatible, missing version -> 40402
        assert rest.ok("POST", f"/compatibility/subjects/{MISSING}/versions/latest", STRING) == {"is_compatible": True}
        rest.fails("POST", f"/compatibility/subjects/{MISSING}/versions/1", STRING, 40402)
    finally:
        rest.call("PUT", "/config", {"compatibility": orig_cfg.get("compatibilityLevel", "BACKWARD")})
        rest.call("PUT", "/mode", {"mode": orig_mode.get("mode", "READWRITE")})
        for s in (K, V):
            rest.call("DELETE", f"/mode/{s}")
            rest.call("DELETE", f"/subjects/{s}")
            rest.call("DELETE", f"/subjects/{s}?permanent=true")

    print("ok documented-examples")



def produce_each(bootstrap, topic, records):
    """Produces each (key, value) on its own and returns each one's delivery error code (None: stored)."""
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 0, "retries": 0})
    codes = []
    for key, value in records:
        outcome = []
        producer.produce(topic, key=key, value=value, on_delivery=lambda err, _m: outcome.append(err))
        assert producer.flush(30) == 0, "delivered or refused within 30 s"
        codes.append(None if outcome[0] is None else outcome[0].code())
    return codes


def read_all(bootstrap, topic, count):
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"sr-{uuid.uuid4()}", "auto.offset.reset": "earliest",
                         "enable.partition.eof": True})
    consumer.subscribe([topic])
    read = []
    while True:
        m = consumer.poll(10.0)
        assert m is not None, f"{topic}: the end was not reached; read {len(read)}"
        if m.error() and m.error().code() == KafkaError._PARTITION_EOF:
            if len(read) >= count:
                break
            continue
        assert m.error() is None, m.error()
        read.append((m.key(), m.value()))
    consumer.close()
    return read


def framed(schema_id, data=b"x"):
    return b"\x00" + schema_id.to_bytes(4, "big") + data


def check_validation(bootstrap, rest, client):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    by_topic, by_record = "sr-validated", "sr-validated-by-record"
    strategy = "io.confluent.kafka.serializers.subject.RecordNameStrategy"
    topics = [
        NewTopic(by_topic, 1, config={"confluent.value.schema.validation": "true", "confluent.key.schema.validation": "true"}),
        NewTopic(by_record, 1, config={"confluent.value.schema.validation": "true",
                                       "confluent.value.subject.name.strategy": strategy}),
    ]
    for f in admin.create_topics(topics).values():
        f.result()
    # What a misconfigured topic is told: Confluent's strategies by class name only.
    bad = admin.create_topics([NewTopic("sr-validated-bad", 1, config={"confluent.value.subject.name.strategy": "Topic"})])
    try:
        bad["sr-validated-bad"].result()
        raise AssertionError("an unknown strategy was accepted")
    except Exception as e:  # KafkaException(INVALID_CONFIG)
        assert "String must be one of" in str(e), e
    described = admin.describe_configs([ConfigResource(ConfigResource.Type.TOPIC, by_record)])
    entries = list(described.values())[0].result()
    assert entries["confluent.value.schema.validation"].value == "true", entries
    assert entries["confluent.value.subject.name.strategy"].value == strategy, entries
    # Unset, the configs beyond Kafka's are left out of the full listing (it is Kafka's).
    assert "confluent.key.schema.validation" not in entries, entries

    value_schema = avro_record("Order", [{"name": "id", "type": "long"}])
    key_schema = json.dumps("string")
    value_id = rest.ok("POST", f"/subjects/{by_topic}-value/versions", {"schema": value_schema})["id"]
    key_id = rest.ok("POST", f"/subjects/{by_topic}-key/versions", {"schema": key_schema})["id"]
    elsewhere = rest.ok("POST", "/subjects/unrelated-value/versions", {"schema": avro_record("Other", [{"name": "o", "type": "int"}])})["id"]
    serialize = AvroSerializer(client, value_schema, conf={"auto.register.schemas": False, "use.latest.version": True})
    good = serialize({"id": 7}, SerializationContext(by_topic, MessageField.VALUE))
    assert good[:5] == framed(value_id, b"")[:5], "the serializer frames the subject's id"
    INVALID_RECORD = KafkaError.INVALID_RECORD
    cases = [
        ("serialized key and value", framed(key_id), good, None),
        ("value without the magic byte", framed(key_id), b"{'plain': 'json'}", INVALID_RECORD),
        ("value too short for an id", framed(key_id), b"\x00\x00\x01", INVALID_RECORD),
        ("unknown id", framed(key_id), framed(value_id + 1000), INVALID_RECORD),
        ("id of another subject", framed(key_id), framed(elsewhere), INVALID_RECORD),
        ("value's id as the key's", framed(value_id), good, INVALID_RECORD),
        ("key missing its id", b"k", good, INVALID_RECORD),
        ("tombstone with a null key", None, None, None),
        ("null key", None, good, None),
    ]
    codes = produce_each(bootstrap, by_topic, [(k, v) for _, k, v, _ in cases])
    for (name, _, _, expected), code in zip(cases, codes):
        assert code == expected, f"{name}: expected {expected}, got {code}"
    stored = [(k, v) for (_, k, v, expected) in cases if expected is None]
    assert read_all(bootstrap, by_topic, len(stored)) == stored, "exactly the accepted records were stored"

    # A deleted version does not validate.
    deleted_id = rest.ok("POST", f"/subjects/{by_topic}-value/versions", {"schema": avro_record("Order", [{"name": "id", "type": "long"}, {"name": "n", "type": ["null", "int"], "default": None}])})["id"]
    rest.ok("DELETE", f"/subjects/{by_topic}-value/versions/2")
    assert produce_each(bootstrap, by_topic, [(framed(key_id), framed(deleted_id))]) == [INVALID_RECORD]

    # RecordNameStrategy: the subject is the record's full name.
    Record = SerializationContext(by_record, MessageField.VALUE)
    ticker = avro_record("Ticker", [{"name": "px", "type": "double"}])
    by_name = AvroSerializer(client, ticker, conf={"subject.name.strategy": record_subject_name_strategy})
    named = by_name({"px": 1.5}, Record)
    assert rest.ok("GET", "/subjects/Ticker/versions") == [1], "registered under the record's name"
    under_topic = rest.ok("POST", f"/subjects/{by_record}-value/versions", {"schema": avro_record("Quote", [{"name": "q", "type": "int"}])})["id"]
    codes = produce_each(bootstrap, by_record, [(None, named), (None, framed(under_topic)), (None, b"raw")])
    assert codes == [None, INVALID_RECORD, INVALID_RECORD], codes

    # Turned off, anything is taken.
    resource = ConfigResource(ConfigResource.Type.TOPIC, by_topic, incremental_configs=[
        ConfigEntry("confluent.value.schema.validation", "false", incremental_operation=AlterConfigOpType.SET),
        ConfigEntry("confluent.key.schema.validation", None, incremental_operation=AlterConfigOpType.DELETE)])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result()
    assert produce_each(bootstrap, by_topic, [(b"k", b"anything")]) == [None]
    print("ok validation")


def check_restarted(rest, client, state):
    r = state["rest"]
    assert rest.ok("GET", f"/subjects/{r['subject']}/versions") == [1, 2]
    for version, id_ in zip((1, 2), r["ids"]):
        assert rest.ok("GET", f"/subjects/{r['subject']}/versions/{version}")["id"] == id_
    assert rest.ok("GET", f"/config/{r['subject']}") == {"compatibilityLevel": "NONE"}
    assert rest.ok("GET", "/mode/frozen-value") == {"mode": "READONLY"}
    for key in ("avro", "json", "protobuf", "concurrent"):
        assert rest.ok("GET", f"/schemas/ids/{state[key]}")["schema"], key
    highest = max([state[k] for k in ("avro", "json", "protobuf", "concurrent")] + r["ids"] + [r["deleted_id"]])
    fresh = rest.ok("POST", "/subjects/after-restart-value/versions", {"schema": avro_record("After", [{"name": "z", "type": "int"}])})["id"]
    assert fresh > highest, f"a new id ({fresh}) continues after every id handed out ({highest}), deleted ones too"
    print("ok restarted")


def main(bootstrap, url, phase, state_file):
    rest = Rest(url)
    client = SchemaRegistryClient({"url": url})
    if phase == "fresh":
        state = {}
        check_rest(rest, state)
        check_compatibility(rest)
        check_avro(bootstrap, client, state)
        check_json(bootstrap, client, state)
        check_protobuf(bootstrap, client, state)
        check_concurrent(rest, state)
        check_bad_input(rest)
        check_validation(bootstrap, rest, client)
        check_documented_examples(rest)
        with open(state_file, "w") as f:
            json.dump(state, f)
    else:
        with open(state_file) as f:
            state = json.load(f)
        check_restarted(rest, client, state)
    print("schema registry ok")


if __name__ == "__main__":
    main(*sys.argv[1:5])
