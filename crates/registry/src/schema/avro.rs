//! Avro schemas, by the `apache-avro` crate: parsing (named types of
//! referenced schemas resolved from their texts), the full JSON form as the
//! canonical one (doc, defaults and aliases kept: they change what a reader
//! does, so schemas differing in them are different schemas), and Avro's
//! own reader/writer resolution rules for compatibility.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

use crate::RegistryError;

#[derive(Debug, Clone)]
pub struct AvroSchema {
    schema: Schema,
}

impl AvroSchema {
    /// `references`: (name, text) of each referenced schema, whose named
    /// types the schema may use.
    pub fn parse(text: &str, references: &[(String, String)]) -> Result<AvroSchema, RegistryError> {
        let invalid = |e: apache_avro::Error| RegistryError::InvalidSchema(format!("{text}, details: {e}"));
        let schema = if references.is_empty() {
            Schema::parse_str(text).map_err(invalid)?
        } else {
            let named: Vec<&str> = references.iter().map(|(_, t)| t.as_str()).collect();
            Schema::parse_str_with_list(text, &named).map_err(invalid)?.0
        };
        Ok(AvroSchema { schema })
    }

    pub fn canonical(&self) -> String {
        serde_json::to_string(&self.schema).unwrap_or_else(|_| self.schema.canonical_form())
    }

    /// The full name of the schema's named type (record, enum or fixed),
    /// which the record-name subject strategies use; `None` for the others.
    pub fn record_name(&self) -> Option<String> {
        match &self.schema {
            Schema::Record(r) => Some(r.name.fullname(None)),
            Schema::Enum(e) => Some(e.name.fullname(None)),
            Schema::Fixed(f) => Some(f.name.fullname(None)),
            _ => None,
        }
    }

    /// Why data written with `writer` cannot be read with this schema.
    pub fn can_read(&self, writer: &AvroSchema) -> Vec<String> {
        match SchemaCompatibility::can_read(&writer.schema, &self.schema) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!("{{errorType:'READER_CANNOT_READ_WRITER', description:'{e}'}}")],
        }
    }
}
