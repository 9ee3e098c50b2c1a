//! Records of the compacted `_schemas` topic, in Confluent Schema
//! Registry's format: JSON keys and values, one key per subject version,
//! per config, per mode; a null value (a tombstone) removes the key. A
//! `_schemas` topic written by Confluent's registry is read as it is.

use serde::{Deserialize, Serialize};

use crate::schema::{Compatibility, Mode, Reference, SchemaType};

/// A record's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "keytype", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Key {
    /// One version of a subject.
    Schema { subject: String, version: i32, magic: i32 },
    /// The compatibility level of a subject, or the registry's (no subject).
    Config {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        magic: i32,
    },
    /// The mode of a subject, or the registry's.
    Mode {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<String>,
        magic: i32,
    },
    /// Every version of a subject up to one is soft-deleted.
    DeleteSubject { subject: String, magic: i32 },
    /// A subject's soft-deleted versions are gone for good.
    ClearSubject { subject: String, magic: i32 },
    /// Changes nothing in Confluent's registry. This one writes the highest
    /// id it handed out in the value before a permanent delete, so that ids
    /// are never reused once compaction has removed the deleted versions.
    Noop { magic: i32 },
}

impl Key {
    pub fn schema(subject: &str, version: i32) -> Key {
        Key::Schema { subject: subject.to_string(), version, magic: 1 }
    }
    pub fn config(subject: Option<&str>) -> Key {
        Key::Config { subject: subject.map(str::to_string), magic: 0 }
    }
    pub fn mode(subject: Option<&str>) -> Key {
        Key::Mode { subject: subject.map(str::to_string), magic: 0 }
    }
    pub fn delete_subject(subject: &str) -> Key {
        Key::DeleteSubject { subject: subject.to_string(), magic: 0 }
    }
    pub fn clear_subject(subject: &str) -> Key {
        Key::ClearSubject { subject: subject.to_string(), magic: 0 }
    }
    pub fn noop() -> Key {
        Key::Noop { magic: 0 }
    }
}

/// A subject version's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaValue {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    #[serde(default, skip_serializing_if = "is_avro")]
    pub schema_type: SchemaType,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<Reference>,
    pub schema: String,
    #[serde(default)]
    pub deleted: bool,
}

fn is_avro(t: &SchemaType) -> bool {
    *t == SchemaType::Avro
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigValue {
    pub compatibility_level: Compatibility,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeValue {
    pub mode: Mode,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeleteSubjectValue {
    pub subject: String,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearSubjectValue {
    pub subject: String,
}

/// A record to write to (or read from) `_schemas`: a key, and a value or a tombstone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Key,
    pub value: Option<Value>,
}

/// A record's value, by its key's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Schema(SchemaValue),
    Config(ConfigValue),
    Mode(ModeValue),
    DeleteSubject(DeleteSubjectValue),
    ClearSubject(ClearSubjectValue),
    Noop(NoopValue),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NoopValue {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_id: Option<i32>,
}

impl Record {
    /// The key's and the value's bytes as they are written.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        let key = serde_json::to_vec(&self.key).expect("keys serialize");
        let value = self.value.as_ref().map(|v| match v {
            Value::Schema(s) => serde_json::to_vec(s),
            Value::Config(c) => serde_json::to_vec(c),
            Value::Mode(m) => serde_json::to_vec(m),
            Value::DeleteSubject(d) => serde_json::to_vec(d),
            Value::ClearSubject(c) => serde_json::to_vec(c),
            Value::Noop(n) => serde_json::to_vec(n),
        });
        (key, value.map(|v| v.expect("values serialize")))
    }

    /// Reads a record of the topic; `None` for a key this registry does not
    /// know (a newer registry's), which replay skips as Confluent's does.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Result<Option<Record>, serde_json::Error> {
        let key: Key = match serde_json::from_slice(key) {
            Ok(key) => key,
            Err(e) if e.is_data() => return Ok(None),
            Err(e) => return Err(e),
        };
        let Some(value) = value else { return Ok(Some(Record { key, value: None })) };
        let value = match &key {
            Key::Schema { .. } => Value::Schema(serde_json::from_slice(value)?),
            Key::Config { .. } => Value::Config(serde_json::from_slice(value)?),
            Key::Mode { .. } => Value::Mode(serde_json::from_slice(value)?),
            Key::DeleteSubject { .. } => Value::DeleteSubject(serde_json::from_slice(value)?),
            Key::ClearSubject { .. } => Value::ClearSubject(serde_json::from_slice(value)?),
            Key::Noop { .. } => Value::Noop(serde_json::from_slice(value).unwrap_or_default()),
        };
        Ok(Some(Record { key, value: Some(value) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_read_as_confluent_writes_them() {
        let key = br#"{"keytype":"SCHEMA","subject":"orders-value","version":2,"magic":1}"#;
        let value =
            br#"{"subject":"orders-value","version":2,"id":7,"schemaType":"JSON","schema":"{}","deleted":false}"#;
        let record = Record::decode(key, Some(value)).unwrap().unwrap();
        assert_eq!(record.key, Key::schema("orders-value", 2));
        let Some(Value::Schema(s)) = &record.value else { panic!("{record:?}") };
        assert_eq!((s.id, s.schema_type, s.deleted), (7, SchemaType::Json, false));

        let config = Record::decode(
            br#"{"keytype":"CONFIG","subject":null,"magic":0}"#,
            Some(br#"{"compatibilityLevel":"FULL_TRANSITIVE"}"#),
        );
        let config = config.unwrap().unwrap();
        assert_eq!(config.key, Key::config(None));
        assert_eq!(
            config.value,
            Some(Value::Config(ConfigValue { compatibility_level: Compatibility::FullTransitive }))
        );

        let tombstone = Record::decode(key, None).unwrap().unwrap();
        assert!(tombstone.value.is_none());
        // A key of a type this registry does not know is skipped, not an error.
        assert!(Record::decode(br#"{"keytype":"CONTEXT","magic":0}"#, None).unwrap().is_none());
        assert!(Record::decode(b"not json", None).is_err());
    }

    #[test]
    fn what_is_written_reads_back() {
        let record = Record {
            key: Key::schema("s", 1),
            value: Some(Value::Schema(SchemaValue {
                subject: "s".into(),
                version: 1,
                id: 1,
                schema_type: SchemaType::Avro,
                references: vec![],
                schema: "\"string\"".into(),
                deleted: false,
            })),
        };
        let (key, value) = record.encode();
        assert_eq!(Record::decode(&key, value.as_deref()).unwrap(), Some(record));
        assert!(
            !String::from_utf8(value.unwrap()).unwrap().contains("schemaType"),
            "AVRO is left out, as Confluent does"
        );
    }
}
