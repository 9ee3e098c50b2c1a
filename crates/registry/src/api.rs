//! Confluent Schema Registry's REST API over [`Registry`]: a request is
//! parsed into an [`Operation`] (path, query and JSON body checked, with
//! Confluent's errors), then answered from the state, or with the records a
//! change must write first ([`Answer::Write`]). The HTTP server around it
//! is the broker's.

use serde::Deserialize;
use serde_json::{json, Value};

use crate::records::Record;
use crate::schema::{Compatibility, Mode, Reference, SchemaType};
use crate::state::{Change, Registry, SubjectVersion, Submitted, VersionRef};
use crate::RegistryError;

/// One request of the API.
#[derive(Debug, Clone)]
pub enum Operation {
    Root,
    Subjects { deleted: bool, prefix: Option<String> },
    Versions { subject: String, deleted: bool },
    Version { subject: String, version: VersionRef, deleted: bool, schema_only: bool },
    ReferencedBy { subject: String, version: VersionRef },
    Register { subject: String, submitted: Submitted, import: Option<(i32, i32)> },
    Lookup { subject: String, submitted: Submitted, deleted: bool },
    DeleteVersion { subject: String, version: VersionRef, permanent: bool },
    DeleteSubject { subject: String, permanent: bool },
    SchemaById { id: i32, schema_only: bool },
    SchemaUsages { id: i32, deleted: bool },
    SchemaSubjects { id: i32, deleted: bool },
    SchemaTypes,
    GetConfig { subject: Option<String>, default_to_global: bool },
    SetConfig { subject: Option<String>, level: Compatibility },
    DeleteConfig { subject: Option<String> },
    GetMode { subject: Option<String>, default_to_global: bool },
    SetMode { subject: Option<String>, mode: Mode, force: bool },
    DeleteMode { subject: String },
    CheckCompatibility { subject: String, version: Option<VersionRef>, submitted: Submitted, verbose: bool },
}

impl Operation {
    /// Whether answering may change the registry (and so runs one at a time).
    pub fn changes(&self) -> bool {
        matches!(
            self,
            Operation::Register { .. }
                | Operation::DeleteVersion { .. }
                | Operation::DeleteSubject { .. }
                | Operation::SetConfig { .. }
                | Operation::DeleteConfig { .. }
                | Operation::SetMode { .. }
                | Operation::DeleteMode { .. }
        )
    }
}

/// How a request is answered.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// A JSON body.
    Json(Value),
    /// Write these records (durably, in order), apply them, then answer with the body.
    Write(Vec<Record>, Value),
}

/// A registration's or a lookup's body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SchemaBody {
    schema: String,
    #[serde(default)]
    schema_type: Option<String>,
    #[serde(default)]
    references: Vec<Reference>,
    #[serde(default)]
    id: Option<i32>,
    #[serde(default)]
    version: Option<i32>,
}

#[derive(Debug, Deserialize)]
struct ConfigBody {
    compatibility: String,
}

#[derive(Debug, Deserialize)]
struct ModeBody {
    mode: String,
}

fn query_flag(query: &[(String, String)], name: &str) -> bool {
    query.iter().any(|(k, v)| k == name && v.eq_ignore_ascii_case("true"))
}

fn query_value<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn body<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, RegistryError> {
    serde_json::from_slice(bytes).map_err(|e| RegistryError::InvalidRequest(format!("Unrecognized body: {e}")))
}

fn submitted(bytes: &[u8]) -> Result<(Submitted, Option<i32>, Option<i32>), RegistryError> {
    let b: SchemaBody = body(bytes)?;
    let schema_type = match b.schema_type.as_deref() {
        None => SchemaType::Avro,
        Some(t) => SchemaType::ALL
            .into_iter()
            .find(|s| s.name().eq_ignore_ascii_case(t))
            .ok_or_else(|| RegistryError::InvalidSchema(format!("unknown schema type {t}")))?,
    };
    Ok((Submitted { schema_type, schema: b.schema, references: b.references }, b.id, b.version))
}

fn schema_id(text: &str) -> Result<i32, RegistryError> {
    text.parse().map_err(|_| RegistryError::SchemaNotFound(None))
}

/// Parses a request: `segments` are the path's decoded segments, `query` its decoded pairs.
pub fn parse(
    method: &str,
    segments: &[String],
    query: &[(String, String)],
    bytes: &[u8],
) -> Result<Operation, RegistryError> {
    let s: Vec<&str> = segments.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
    let deleted = query_flag(query, "deleted");
    let permanent = query_flag(query, "permanent");
    let subject = |i: usize| s[i].to_string();
    use Operation::*;
    Ok(match (method, s.as_slice()) {
        ("GET", []) => Root,
        ("GET", ["subjects"]) => Subjects { deleted, prefix: query_value(query, "subjectPrefix").map(str::to_string) },
        ("GET", ["subjects", _, "versions"]) => Versions { subject: subject(1), deleted },
        ("GET", ["subjects", _, "versions", v]) => {
            Version { subject: subject(1), version: VersionRef::parse(v)?, deleted, schema_only: false }
        }
        ("GET", ["subjects", _, "versions", v, "schema"]) => {
            Version { subject: subject(1), version: VersionRef::parse(v)?, deleted, schema_only: true }
        }
        ("GET", ["subjects", _, "versions", v, "referencedby"]) => {
            ReferencedBy { subject: subject(1), version: VersionRef::parse(v)? }
        }
        ("POST", ["subjects", _, "versions"]) => {
            let (submitted, id, version) = submitted(bytes)?;
            let import = match (id, version) {
                (Some(id), Some(version)) if id >= 1 && version >= 1 => Some((id, version)),
                (None, _) => None,
                (Some(_), _) => {
                    return Err(RegistryError::InvalidRequest("an id is given with a version, both positive".into()))
                }
            };
            Register { subject: subject(1), submitted, import }
        }
        ("POST", ["subjects", _]) => Lookup { subject: subject(1), submitted: submitted(bytes)?.0, deleted },
        ("DELETE", ["subjects", _, "versions", v]) => {
            DeleteVersion { subject: subject(1), version: VersionRef::parse(v)?, permanent }
        }
        ("DELETE", ["subjects", _]) => DeleteSubject { subject: subject(1), permanent },
        ("GET", ["schemas", "types"]) => SchemaTypes,
        ("GET", ["schemas", "ids", id]) => SchemaById { id: schema_id(id)?, schema_only: false },
        ("GET", ["schemas", "ids", id, "schema"]) => SchemaById { id: schema_id(id)?, schema_only: true },
        ("GET", ["schemas", "ids", id, "versions"]) => SchemaUsages { id: schema_id(id)?, deleted },
        ("GET", ["schemas", "ids", id, "subjects"]) => SchemaSubjects { id: schema_id(id)?, deleted },
        ("GET", ["config"]) => GetConfig { subject: None, default_to_global: true },
        ("GET", ["config", _]) => {
            GetConfig { subject: Some(subject(1)), default_to_global: query_flag(query, "defaultToGlobal") }
        }
        ("PUT", ["config"]) => {
            SetConfig { subject: None, level: Compatibility::parse(&body::<ConfigBody>(bytes)?.compatibility)? }
        }
        ("PUT", ["config", _]) => SetConfig {
            subject: Some(subject(1)),
            level: Compatibility::parse(&body::<ConfigBody>(bytes)?.compatibility)?,
        },
        ("DELETE", ["config"]) => DeleteConfig { subject: None },
        ("DELETE", ["config", _]) => DeleteConfig { subject: Some(subject(1)) },
        ("GET", ["mode"]) => GetMode { subject: None, default_to_global: true },
        ("GET", ["mode", _]) => {
            GetMode { subject: Some(subject(1)), default_to_global: query_flag(query, "defaultToGlobal") }
        }
        ("PUT", ["mode"]) => SetMode {
            subject: None,
            mode: Mode::parse(&body::<ModeBody>(bytes)?.mode)?,
            force: query_flag(query, "force"),
        },
        ("PUT", ["mode", _]) => SetMode {
            subject: Some(subject(1)),
            mode: Mode::parse(&body::<ModeBody>(bytes)?.mode)?,
            force: query_flag(query, "force"),
        },
        ("DELETE", ["mode", _]) => DeleteMode { subject: subject(1) },
        ("POST", ["compatibility", "subjects", _, "versions"]) => CheckCompatibility {
            subject: subject(2),
            version: None,
            submitted: submitted(bytes)?.0,
            verbose: query_flag(query, "verbose"),
        },
        ("POST", ["compatibility", "subjects", _, "versions", v]) => CheckCompatibility {
            subject: subject(2),
            version: Some(VersionRef::parse(v)?),
            submitted: submitted(bytes)?.0,
            verbose: query_flag(query, "verbose"),
        },
        _ => return Err(RegistryError::NotFound),
    })
}

fn version_json(v: &SubjectVersion) -> Value {
    let mut body = json!({ "subject": v.subject, "version": v.version, "id": v.id, "schema": v.schema });
    if v.schema_type != SchemaType::Avro {
        body["schemaType"] = json!(v.schema_type.name());
    }
    if !v.references.is_empty() {
        body["references"] = json!(v.references);
    }
    body
}

fn write<T>(change: Change<T>, body: impl FnOnce(T) -> Value) -> Answer {
    match change {
        Change::Unchanged(t) => Answer::Json(body(t)),
        Change::Write(records, t) => Answer::Write(records, body(t)),
    }
}

/// Answers an operation.
pub fn answer(registry: &Registry, operation: &Operation) -> Result<Answer, RegistryError> {
    use Operation::*;
    Ok(match operation {
        Root => Answer::Json(json!({})),
        Subjects { deleted, prefix } => {
            let subjects: Vec<String> = registry
                .subjects(*deleted)
                .into_iter()
                .filter(|s| prefix.as_deref().is_none_or(|p| s.starts_with(p)))
                .collect();
            Answer::Json(json!(subjects))
        }
        Versions { subject, deleted } => Answer::Json(json!(registry.versions(subject, *deleted)?)),
        Version { subject, version, deleted, schema_only } => {
            let v = registry.subject_version(subject, *version, *deleted)?;
            Answer::Json(if *schema_only { raw_schema(&v.schema) } else { version_json(&v) })
        }
        ReferencedBy { subject, version } => {
            let v = registry.subject_version(subject, *version, false)?;
            Answer::Json(json!(registry.referencing_ids(subject, v.version)))
        }
        Register { subject, submitted, import } => {
            write(registry.register(subject, submitted, *import)?, |id| json!({ "id": id }))
        }
        Lookup { subject, submitted, deleted } => {
            Answer::Json(version_json(&registry.lookup(subject, submitted, *deleted)?))
        }
        DeleteVersion { subject, version, permanent } => {
            write(registry.delete_version(subject, *version, *permanent)?, |n| json!(n))
        }
        DeleteSubject { subject, permanent } => write(registry.delete_subject(subject, *permanent)?, |ns| json!(ns)),
        SchemaById { id, schema_only } => {
            let schema = registry.schema(*id)?;
            if *schema_only {
                Answer::Json(raw_schema(&schema.text))
            } else {
                let mut body = json!({ "schema": schema.text });
                if schema.schema_type != SchemaType::Avro {
                    body["schemaType"] = json!(schema.schema_type.name());
                }
                if !schema.references.is_empty() {
                    body["references"] = json!(schema.references);
                }
                Answer::Json(body)
            }
        }
        SchemaUsages { id, deleted } => {
            registry.schema(*id).map_err(|_| RegistryError::SchemaNotFound(None))?;
            let usages: Vec<Value> = registry
                .usages(*id, *deleted)
                .into_iter()
                .map(|(s, v)| json!({ "subject": s, "version": v }))
                .collect();
            Answer::Json(json!(usages))
        }
        SchemaSubjects { id, deleted } => {
            registry.schema(*id)?;
            let mut subjects: Vec<String> = registry.usages(*id, *deleted).into_iter().map(|(s, _)| s).collect();
            subjects.dedup();
            Answer::Json(json!(subjects))
        }
        SchemaTypes => Answer::Json(json!(SchemaType::ALL.map(SchemaType::name))),
        GetConfig { subject, default_to_global } => {
            let level = match (subject, default_to_global) {
                (Some(s), false) => registry.subject_compatibility(s)?,
                (s, _) => registry.compatibility(s.as_deref()),
            };
            Answer::Json(json!({ "compatibilityLevel": level.name() }))
        }
        SetConfig { subject, level } => {
            write(registry.set_compatibility(subject.as_deref(), *level), |l| json!({ "compatibility": l.name() }))
        }
        DeleteConfig { subject } => {
            write(registry.delete_compatibility(subject.as_deref())?, |l| json!({ "compatibilityLevel": l.name() }))
        }
        GetMode { subject, default_to_global } => {
            let mode = match (subject, default_to_global) {
                (Some(s), false) => registry.subject_mode(s)?,
                (s, _) => registry.mode(s.as_deref()),
            };
            Answer::Json(json!({ "mode": mode.name() }))
        }
        SetMode { subject, mode, force } => {
            write(registry.set_mode(subject.as_deref(), *mode, *force)?, |m| json!({ "mode": m.name() }))
        }
        DeleteMode { subject } => write(registry.delete_mode(subject)?, |m| json!({ "mode": m.name() })),
        CheckCompatibility { subject, version, submitted, verbose } => {
            let reasons = registry.check_compatibility(subject, *version, submitted)?;
            let mut body = json!({ "is_compatible": reasons.is_empty() });
            if *verbose {
                body["messages"] = json!(reasons);
            }
            Answer::Json(body)
        }
    })
}

/// `.../schema` answers with the schema itself: its JSON for Avro and JSON
/// Schema, the text for Protobuf.
fn raw_schema(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// The body of an error answer.
pub fn error_body(e: &RegistryError) -> Value {
    json!({ "error_code": e.code(), "message": e.to_string() })
}
