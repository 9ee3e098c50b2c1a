//! Schema types, compatibility levels and modes, and what each schema type
//! must answer: is a text a valid schema (given its references), what is
//! its canonical form (two registrations of one schema get one id), and can
//! data written with one schema be read with another.

use serde::{Deserialize, Serialize};

use crate::RegistryError;

/// A schema's type; Avro when a request names none, as in Confluent's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum SchemaType {
    #[default]
    Avro,
    Json,
    Protobuf,
}

impl SchemaType {
    pub fn name(self) -> &'static str {
        match self {
            SchemaType::Avro => "AVRO",
            SchemaType::Json => "JSON",
            SchemaType::Protobuf => "PROTOBUF",
        }
    }

    /// Every type, in the order `GET /schemas/types` lists them.
    pub const ALL: [SchemaType; 3] = [SchemaType::Json, SchemaType::Protobuf, SchemaType::Avro];
}

/// A schema's reference to another registered schema: `name` is how the
/// referring schema names it (an Avro full name, a Protobuf import path, a
/// JSON Schema `$ref` URL).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Reference {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// Which earlier versions a new version of a subject must be compatible with, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Compatibility {
    None,
    #[default]
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Compatibility {
    /// Parses a level as the REST API accepts it (any case).
    pub fn parse(text: &str) -> Result<Compatibility, RegistryError> {
        Ok(match text.to_ascii_uppercase().as_str() {
            "NONE" => Compatibility::None,
            "BACKWARD" => Compatibility::Backward,
            "BACKWARD_TRANSITIVE" => Compatibility::BackwardTransitive,
            "FORWARD" => Compatibility::Forward,
            "FORWARD_TRANSITIVE" => Compatibility::ForwardTransitive,
            "FULL" => Compatibility::Full,
            "FULL_TRANSITIVE" => Compatibility::FullTransitive,
            _ => return Err(RegistryError::InvalidCompatibilityLevel),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Compatibility::None => "NONE",
            Compatibility::Backward => "BACKWARD",
            Compatibility::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Compatibility::Forward => "FORWARD",
            Compatibility::ForwardTransitive => "FORWARD_TRANSITIVE",
            Compatibility::Full => "FULL",
            Compatibility::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    /// Whether every earlier version is checked, not only the latest.
    pub fn transitive(self) -> bool {
        matches!(
            self,
            Compatibility::BackwardTransitive | Compatibility::ForwardTransitive | Compatibility::FullTransitive
        )
    }

    /// (the new schema must read data of the old, the old must read data of the new)
    fn directions(self) -> (bool, bool) {
        match self {
            Compatibility::None => (false, false),
            Compatibility::Backward | Compatibility::BackwardTransitive => (true, false),
            Compatibility::Forward | Compatibility::ForwardTransitive => (false, true),
            Compatibility::Full | Compatibility::FullTransitive => (true, true),
        }
    }

    /// Checks `new` against `previous` (oldest first) at this level:
    /// the reasons it is incompatible, empty when it is compatible.
    pub fn check(self, new: &Parsed, previous: &[&Parsed]) -> Vec<String> {
        let (backward, forward) = self.directions();
        let against: &[&Parsed] = match (self.transitive(), previous.last()) {
            (_, None) => &[],
            (true, Some(_)) => previous,
            (false, Some(_)) => &previous[previous.len() - 1..],
        };
        let mut reasons = Vec::new();
        for old in against {
            if backward {
                reasons.extend(new.can_read(old));
            }
            if forward {
                reasons.extend(old.can_read(new));
            }
        }
        reasons
    }
}

/// What a subject (or the registry) accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Mode {
    #[default]
    Readwrite,
    Readonly,
    ReadonlyOverride,
    Import,
}

impl Mode {
    pub fn parse(text: &str) -> Result<Mode, RegistryError> {
        Ok(match text.to_ascii_uppercase().as_str() {
            "READWRITE" => Mode::Readwrite,
            "READONLY" => Mode::Readonly,
            "READONLY_OVERRIDE" => Mode::ReadonlyOverride,
            "IMPORT" => Mode::Import,
            _ => return Err(RegistryError::InvalidMode),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Readwrite => "READWRITE",
            Mode::Readonly => "READONLY",
            Mode::ReadonlyOverride => "READONLY_OVERRIDE",
            Mode::Import => "IMPORT",
        }
    }
}

/// A schema parsed by its type's parser, with what was resolved of its references.
#[derive(Debug, Clone)]
pub enum Parsed {
    Avro(Box<avro::AvroSchema>),
    Json(json::JsonSchema),
    Protobuf(Box<protobuf::ProtobufSchema>),
}

impl Parsed {
    /// Parses `text` as a schema of `schema_type`; `references` are the
    /// texts of the schemas it references (already registered), by name.
    pub fn parse(
        schema_type: SchemaType,
        text: &str,
        references: &[(String, String)],
    ) -> Result<Parsed, RegistryError> {
        match schema_type {
            SchemaType::Avro => avro::AvroSchema::parse(text, references).map(|s| Parsed::Avro(Box::new(s))),
            SchemaType::Json => json::JsonSchema::parse(text, references).map(Parsed::Json),
            SchemaType::Protobuf => {
                protobuf::ProtobufSchema::parse(text, references).map(|s| Parsed::Protobuf(Box::new(s)))
            }
        }
    }

    /// The form two texts of one schema share (whitespace, key order and
    /// the like do not matter), which decides whether a registration is new.
    pub fn canonical(&self) -> String {
        match self {
            Parsed::Avro(s) => s.canonical(),
            Parsed::Json(s) => s.canonical(),
            Parsed::Protobuf(s) => s.canonical(),
        }
    }

    /// The record name that Confluent's `RecordNameStrategy` and
    /// `TopicRecordNameStrategy` make subjects of: an Avro named type's full
    /// name, a JSON schema's title, the Protobuf message that the data's
    /// message indexes name. `None` when the schema names none.
    pub fn record_name(&self, message_indexes: &[i32]) -> Option<String> {
        match self {
            Parsed::Avro(s) => s.record_name(),
            Parsed::Json(s) => Some(s.record_name()),
            Parsed::Protobuf(s) => s.message_name(message_indexes),
        }
    }

    /// Why data written with `writer` cannot be read with `self`, if it cannot.
    pub fn can_read(&self, writer: &Parsed) -> Vec<String> {
        match (self, writer) {
            (Parsed::Avro(reader), Parsed::Avro(writer)) => reader.can_read(writer),
            (Parsed::Json(reader), Parsed::Json(writer)) => reader.can_read(writer),
            (Parsed::Protobuf(reader), Parsed::Protobuf(writer)) => reader.can_read(writer),
            _ => {
                vec!["{errorType:'SCHEMA_TYPE_CHANGED', description:'the schemas are of different types'}".to_string()]
            }
        }
    }
}

pub mod avro;
pub mod json;
pub mod protobuf;
