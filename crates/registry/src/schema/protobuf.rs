//! Protobuf schemas: `.proto` source compiled by `protox` (a pure-Rust
//! protobuf compiler), or a base64-encoded `FileDescriptorProto`, which is
//! what confluent-kafka's Python serializer registers. Imports resolve to
//! the schema's references (by import path) and to Google's well-known
//! types. Compatibility follows Confluent's rules for Protobuf, field by
//! field number, on the compiled descriptors:
//!
//! - a message of the writer missing from the reader (MESSAGE_REMOVED);
//! - a field whose kind changes between scalar and message
//!   (FIELD_KIND_CHANGED), between scalars of different wire encodings
//!   (FIELD_SCALAR_KIND_CHANGED; int32, int64, uint32, uint64, bool and
//!   enums share one, as do sint32 and sint64, fixed32, sfixed32 and float,
//!   fixed64, sfixed64 and double, string and bytes), or to another message
//!   type (FIELD_NAMED_TYPE_CHANGED);
//! - a `required` field added or removed (REQUIRED_FIELD_ADDED, _REMOVED);
//! - a field of a writer's oneof missing from the reader's oneofs
//!   (ONEOF_FIELD_REMOVED), or several fields moved into one oneof
//!   (MULTIPLE_FIELDS_MOVED_TO_ONEOF).
//!
//! Adding or removing optional fields, messages and enum values is compatible.

use std::collections::{HashMap, HashSet};

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, FieldDescriptorProto, FileDescriptorProto};

use crate::RegistryError;

/// The name the schema itself is compiled under.
const ROOT_FILE: &str = "sluice-registered-schema.proto";

#[derive(Debug, Clone)]
pub struct ProtobufSchema {
    /// The schema's own file.
    file: FileDescriptorProto,
    /// Every message of the file and its imports, by full name (no leading dot).
    messages: HashMap<String, DescriptorProto>,
}

/// Resolves imports to the references' texts and the well-known types.
struct Resolver {
    files: HashMap<String, String>,
}

impl protox::file::FileResolver for Resolver {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        match self.files.get(name) {
            Some(text) => file_of(name, text),
            None => protox::file::GoogleFileResolver::new().open_file(name),
        }
    }
}

/// A file from `.proto` source or, failing that, a base64 `FileDescriptorProto`.
fn file_of(name: &str, text: &str) -> Result<protox::file::File, protox::Error> {
    match protox::file::File::from_source(name, text) {
        Ok(file) => Ok(file),
        Err(source_error) => match decode_descriptor(text) {
            Some(mut descriptor) => {
                descriptor.name = Some(name.to_string());
                Ok(protox::file::File::from_file_descriptor_proto(descriptor))
            }
            None => Err(source_error),
        },
    }
}

fn decode_descriptor(text: &str) -> Option<FileDescriptorProto> {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(text.trim()).ok()?;
    FileDescriptorProto::decode(bytes.as_slice()).ok()
}

impl ProtobufSchema {
    pub fn parse(text: &str, references: &[(String, String)]) -> Result<ProtobufSchema, RegistryError> {
        let mut files: HashMap<String, String> = references.iter().cloned().collect();
        files.insert(ROOT_FILE.to_string(), text.to_string());
        let mut compiler = protox::Compiler::with_file_resolver(Resolver { files });
        compiler.include_imports(true);
        compiler.open_file(ROOT_FILE).map_err(|e| RegistryError::InvalidSchema(format!("{text}, details: {e}")))?;
        let set = compiler.file_descriptor_set();
        let mut messages = HashMap::new();
        let mut file = None;
        for f in set.file {
            let package = f.package.clone().unwrap_or_default();
            for m in &f.message_type {
                index(&package, m, &mut messages);
            }
            if f.name.as_deref() == Some(ROOT_FILE) {
                file = Some(f);
            }
        }
        let file = file.ok_or_else(|| RegistryError::InvalidSchema(format!("{text}, details: nothing compiled")))?;
        Ok(ProtobufSchema { file, messages })
    }

    pub fn canonical(&self) -> String {
        let mut file = self.file.clone();
        file.source_code_info = None;
        file.name = None;
        format!("{file:?}")
    }

    /// The full name of the message that `indexes` (Confluent's message
    /// indexes: a top-level message, then nested ones) lead to in the
    /// schema's own file; `None` if there is no such message.
    pub fn message_name(&self, indexes: &[i32]) -> Option<String> {
        let (first, nested) = indexes.split_first()?;
        let mut message = self.file.message_type.get(usize::try_from(*first).ok()?)?;
        let mut name = full_name(self.file.package(), message.name());
        for i in nested {
            message = message.nested_type.get(usize::try_from(*i).ok()?)?;
            name = full_name(&name, message.name());
        }
        Some(name)
    }

    /// Why data written with `writer` cannot be read with this schema.
    pub fn can_read(&self, writer: &ProtobufSchema) -> Vec<String> {
        let mut check = Check { reader: self, writer, reasons: Vec::new(), seen: HashSet::new() };
        let package = writer.file.package.clone().unwrap_or_default();
        for w in &writer.file.message_type {
            let name = full_name(&package, w.name());
            match self.messages.get(&name) {
                Some(r) => check.message(r, w, &name),
                None => check.fail(&name, "MESSAGE_REMOVED"),
            }
        }
        check.reasons
    }
}

fn full_name(scope: &str, name: &str) -> String {
    if scope.is_empty() {
        name.to_string()
    } else {
        format!("{scope}.{name}")
    }
}

fn index(scope: &str, message: &DescriptorProto, into: &mut HashMap<String, DescriptorProto>) {
    let name = full_name(scope, message.name());
    for nested in &message.nested_type {
        index(&name, nested, into);
    }
    into.insert(name, message.clone());
}

/// A scalar's wire encoding; `None` for a message or group.
fn encoding(t: Type) -> Option<u8> {
    Some(match t {
        Type::Int32 | Type::Int64 | Type::Uint32 | Type::Uint64 | Type::Bool | Type::Enum => 0,
        Type::Sint32 | Type::Sint64 => 1,
        Type::Fixed32 | Type::Sfixed32 | Type::Float => 2,
        Type::Fixed64 | Type::Sfixed64 | Type::Double => 3,
        Type::String | Type::Bytes => 4,
        Type::Message | Type::Group => return None,
    })
}

/// The field's oneof, unless it is a proto3 `optional` (a synthetic oneof).
fn real_oneof(field: &FieldDescriptorProto) -> Option<i32> {
    if field.proto3_optional() {
        None
    } else {
        field.oneof_index
    }
}

struct Check<'a> {
    reader: &'a ProtobufSchema,
    writer: &'a ProtobufSchema,
    reasons: Vec<String>,
    seen: HashSet<String>,
}

impl Check<'_> {
    fn fail(&mut self, path: &str, kind: &str) {
        self.reasons.push(format!("{{errorType:'{kind}', description:'at #/{path}'}}"));
    }

    fn message(&mut self, r: &DescriptorProto, w: &DescriptorProto, path: &str) {
        if !self.seen.insert(path.to_string()) {
            return;
        }
        for wn in &w.nested_type {
            match r.nested_type.iter().find(|rn| rn.name == wn.name) {
                Some(rn) => self.message(rn, wn, &format!("{path}.{}", wn.name())),
                None => self.fail(&format!("{path}.{}", wn.name()), "MESSAGE_REMOVED"),
            }
        }
        let by_number = |m: &DescriptorProto, n: i32| m.field.iter().find(|f| f.number() == n).cloned();
        // The writer's oneofs, where the reader has a oneof of the same name: every field must stay in a oneof.
        for (i, oneof) in w.oneof_decl.iter().enumerate() {
            if !r.oneof_decl.iter().any(|o| o.name == oneof.name) {
                continue;
            }
            for wf in w.field.iter().filter(|f| real_oneof(f) == Some(i as i32)) {
                if by_number(r, wf.number()).and_then(|rf| real_oneof(&rf)).is_none() {
                    self.fail(&format!("{path}/{}", wf.number()), "ONEOF_FIELD_REMOVED");
                }
            }
        }
        // The reader's oneofs: at most one field may come from outside the writer's oneofs.
        for (i, oneof) in r.oneof_decl.iter().enumerate() {
            let moved = r
                .field
                .iter()
                .filter(|f| real_oneof(f) == Some(i as i32))
                .filter(|rf| by_number(w, rf.number()).is_some_and(|wf| real_oneof(&wf).is_none()))
                .count();
            if moved > 1 {
                self.fail(&format!("{path}/{}", oneof.name()), "MULTIPLE_FIELDS_MOVED_TO_ONEOF");
            }
        }
        for wf in &w.field {
            let at = format!("{path}/{}", wf.number());
            match by_number(r, wf.number()) {
                None if wf.label() == Label::Required => self.fail(&at, "REQUIRED_FIELD_REMOVED"),
                None => {}
                Some(rf) => self.field(&rf, wf, &at),
            }
        }
        for rf in &r.field {
            let writer_required = by_number(w, rf.number()).is_some_and(|wf| wf.label() == Label::Required);
            if rf.label() == Label::Required && !writer_required {
                self.fail(&format!("{path}/{}", rf.number()), "REQUIRED_FIELD_ADDED");
            }
        }
    }

    fn field(&mut self, r: &FieldDescriptorProto, w: &FieldDescriptorProto, path: &str) {
        match (encoding(r.r#type()), encoding(w.r#type())) {
            (Some(re), Some(we)) if re != we => self.fail(path, "FIELD_SCALAR_KIND_CHANGED"),
            (Some(_), Some(_)) => {}
            (None, None) => {
                let (rn, wn) = (r.type_name().trim_start_matches('.'), w.type_name().trim_start_matches('.'));
                let short = |n: &str| n.rsplit('.').next().unwrap_or(n).to_string();
                if short(rn) != short(wn) {
                    return self.fail(path, "FIELD_NAMED_TYPE_CHANGED");
                }
                if let (Some(rm), Some(wm)) = (self.reader.messages.get(rn), self.writer.messages.get(wn)) {
                    let (rm, wm) = (rm.clone(), wm.clone());
                    self.message(&rm, &wm, wn);
                }
            }
            _ => self.fail(path, "FIELD_KIND_CHANGED"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(reader: &str, writer: &str) -> Vec<String> {
        let reader = ProtobufSchema::parse(reader, &[]).unwrap();
        let writer = ProtobufSchema::parse(writer, &[]).unwrap();
        reader.can_read(&writer)
    }

    #[test]
    fn confluents_protobuf_rules() {
        let v1 = r#"syntax = "proto3"; package shop; message Order { string id = 1; int64 cents = 2; }"#;
        let added =
            r#"syntax = "proto3"; package shop; message Order { string id = 1; int64 cents = 2; string note = 3; }"#;
        assert!(check(added, v1).is_empty(), "a field added");
        assert!(check(v1, added).is_empty(), "a field removed");
        let widened = r#"syntax = "proto3"; package shop; message Order { string id = 1; int32 cents = 2; }"#;
        assert!(check(widened, v1).is_empty(), "int32 and int64 share an encoding");
        let changed = r#"syntax = "proto3"; package shop; message Order { string id = 1; string cents = 2; }"#;
        assert!(!check(changed, v1).is_empty(), "a varint became a string");
        let removed = r#"syntax = "proto3"; package shop; message Other { string id = 1; }"#;
        assert!(!check(removed, v1).is_empty(), "the message is gone");
        let moved = r#"syntax = "proto3"; package shop; message Order { oneof o { string id = 1; int64 cents = 2; } }"#;
        assert!(!check(moved, v1).is_empty(), "two fields moved into a oneof");
        let one = r#"syntax = "proto3"; package shop; message Order { oneof o { string id = 1; } int64 cents = 2; }"#;
        assert!(check(one, v1).is_empty(), "one field moved into a oneof");
    }

    #[test]
    fn imports_resolve_to_references_and_well_known_types() {
        let money = r#"syntax = "proto3"; package shop; message Money { int64 cents = 1; }"#;
        let order = r#"syntax = "proto3"; package shop; import "money.proto"; import "google/protobuf/timestamp.proto";
            message Order { Money total = 1; google.protobuf.Timestamp at = 2; }"#;
        assert!(ProtobufSchema::parse(order, &[]).is_err(), "money.proto is not there");
        let parsed = ProtobufSchema::parse(order, &[("money.proto".into(), money.into())]).unwrap();
        assert!(parsed.messages.contains_key("shop.Money"));
        assert!(ProtobufSchema::parse("message {", &[]).is_err());
    }

    #[test]
    fn a_base64_file_descriptor_is_a_schema_too() {
        use base64::Engine as _;
        let source = r#"syntax = "proto3"; package p; message M { string s = 1; }"#;
        let parsed = ProtobufSchema::parse(source, &[]).unwrap();
        let encoded = base64::engine::general_purpose::STANDARD.encode(parsed.file.encode_to_vec());
        let again = ProtobufSchema::parse(&encoded, &[]).unwrap();
        assert_eq!(again.canonical(), parsed.canonical());
    }
}
