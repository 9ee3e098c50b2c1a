//! The registry's state, rebuilt from `_schemas` by [`Registry::apply`],
//! and its operations. A query answers from the state; a change is checked
//! against the state and answered with the records that make it
//! ([`Change`]), which the caller writes durably and then applies, so that
//! what a client was told is always what a replay after a crash rebuilds.
//! Changes are made one at a time (the caller serialises them), so a check
//! and its write never interleave with another's.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::records::{
    ClearSubjectValue, ConfigValue, DeleteSubjectValue, Key, ModeValue, NoopValue, Record, SchemaValue, Value,
};
use crate::schema::{Compatibility, Mode, Parsed, Reference, SchemaType};
use crate::RegistryError;

/// One registered schema, shared by every subject version that has it.
#[derive(Debug, Clone)]
pub struct Schema {
    pub id: i32,
    pub schema_type: SchemaType,
    /// As it was registered first.
    pub text: String,
    pub references: Vec<Reference>,
    /// The parse, when its references could be resolved at the time.
    parsed: Option<Parsed>,
    canonical: String,
}

/// One version of a subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    pub id: i32,
    pub deleted: bool,
}

/// A schema's identity for deduplication: type, canonical text, references.
type Identity = (SchemaType, String, Vec<Reference>);

#[derive(Debug, Default)]
pub struct Registry {
    subjects: BTreeMap<String, BTreeMap<i32, Version>>,
    schemas: HashMap<i32, Schema>,
    ids: HashMap<Identity, i32>,
    /// The highest id ever applied: ids are never handed out twice.
    max_id: i32,
    compatibility: Option<Compatibility>,
    subject_compatibility: HashMap<String, Compatibility>,
    mode: Option<Mode>,
    subject_modes: HashMap<String, Mode>,
}

/// What a change needs written before it is answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change<T> {
    /// Nothing to write: the answer stands (e.g. a schema registered again).
    Unchanged(T),
    /// Write these records in order, apply them, then answer.
    Write(Vec<Record>, T),
}

/// A version as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectVersion {
    pub subject: String,
    pub version: i32,
    pub id: i32,
    pub schema_type: SchemaType,
    pub references: Vec<Reference>,
    pub schema: String,
}

/// A version asked for by number or as the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionRef {
    Latest,
    Number(i32),
}

impl VersionRef {
    /// Parses the path segment: "latest", -1 (also the latest) or 1..=2^31-1.
    pub fn parse(text: &str) -> Result<VersionRef, RegistryError> {
        if text == "latest" {
            return Ok(VersionRef::Latest);
        }
        match text.parse::<i32>() {
            Ok(-1) => Ok(VersionRef::Latest),
            Ok(n) if n >= 1 => Ok(VersionRef::Number(n)),
            _ => Err(RegistryError::InvalidVersion(text.to_string())),
        }
    }
}

/// A schema to register or look up, as the request gave it.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub schema_type: SchemaType,
    pub schema: String,
    pub references: Vec<Reference>,
}

impl Registry {
    // ---- replay ---------------------------------------------------------------

    /// Applies one record of `_schemas`, written by this registry or read at start-up.
    pub fn apply(&mut self, record: &Record) {
        match (&record.key, &record.value) {
            (Key::Schema { subject, version, .. }, Some(Value::Schema(v))) => {
                self.max_id = self.max_id.max(v.id);
                if !self.schemas.contains_key(&v.id) {
                    let schema = self.stored_schema(v.id, v.schema_type, &v.schema, &v.references);
                    self.ids.insert((v.schema_type, schema.canonical.clone(), v.references.clone()), v.id);
                    self.schemas.insert(v.id, schema);
                }
                let versions = self.subjects.entry(subject.clone()).or_default();
                versions.insert(*version, Version { id: v.id, deleted: v.deleted });
            }
            (Key::Schema { subject, version, .. }, None) => {
                if let Some(versions) = self.subjects.get_mut(subject) {
                    versions.remove(version);
                    if versions.is_empty() {
                        self.subjects.remove(subject);
                    }
                }
            }
            (Key::Config { subject, .. }, value) => {
                let level = match value {
                    Some(Value::Config(c)) => Some(c.compatibility_level),
                    _ => None,
                };
                set_or_clear(&mut self.compatibility, &mut self.subject_compatibility, subject, level);
            }
            (Key::Mode { subject, .. }, value) => {
                let mode = match value {
                    Some(Value::Mode(m)) => Some(m.mode),
                    _ => None,
                };
                set_or_clear(&mut self.mode, &mut self.subject_modes, subject, mode);
            }
            (Key::DeleteSubject { subject, .. }, Some(Value::DeleteSubject(d))) => {
                if let Some(versions) = self.subjects.get_mut(subject) {
                    for (_, v) in versions.range_mut(..=d.version) {
                        v.deleted = true;
                    }
                }
            }
            (Key::Noop { .. }, Some(Value::Noop(NoopValue { max_id: Some(id) }))) => {
                self.max_id = self.max_id.max(*id);
            }
            (Key::ClearSubject { subject, .. }, Some(Value::ClearSubject(_))) => {
                if let Some(versions) = self.subjects.get_mut(subject) {
                    versions.retain(|_, v| !v.deleted);
                    if versions.is_empty() {
                        self.subjects.remove(subject);
                    }
                }
            }
            _ => {}
        }
    }

    fn stored_schema(&self, id: i32, schema_type: SchemaType, text: &str, references: &[Reference]) -> Schema {
        let parsed = self.resolve(references).ok().and_then(|r| Parsed::parse(schema_type, text, &r).ok());
        let canonical = parsed.as_ref().map_or_else(|| text.to_string(), Parsed::canonical);
        Schema { id, schema_type, text: text.to_string(), references: references.to_vec(), parsed, canonical }
    }

    /// The texts of a schema's references, by name; every one must be registered.
    fn resolve(&self, references: &[Reference]) -> Result<Vec<(String, String)>, RegistryError> {
        references
            .iter()
            .map(|r| {
                let version = self.version(&r.subject, VersionRef::Number(r.version), true).map_err(|_| {
                    RegistryError::InvalidSchema(format!(
                        "reference {} to subject {} version {} is not registered",
                        r.name, r.subject, r.version
                    ))
                })?;
                Ok((r.name.clone(), self.schemas[&version.id].text.clone()))
            })
            .collect()
    }

    // ---- queries --------------------------------------------------------------

    /// `GET /subjects`: subjects with a live version (or any, with `deleted`).
    pub fn subjects(&self, deleted: bool) -> Vec<String> {
        self.subjects
            .iter()
            .filter(|(_, versions)| deleted || versions.values().any(|v| !v.deleted))
            .map(|(s, _)| s.clone())
            .collect()
    }

    /// `GET /subjects/{s}/versions`.
    pub fn versions(&self, subject: &str, deleted: bool) -> Result<Vec<i32>, RegistryError> {
        let versions = self.live_subject(subject, deleted)?;
        Ok(versions.iter().filter(|(_, v)| deleted || !v.deleted).map(|(n, _)| *n).collect())
    }

    fn live_subject(&self, subject: &str, deleted: bool) -> Result<&BTreeMap<i32, Version>, RegistryError> {
        self.subjects
            .get(subject)
            .filter(|versions| deleted || versions.values().any(|v| !v.deleted))
            .ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))
    }

    fn version(&self, subject: &str, which: VersionRef, deleted: bool) -> Result<Version, RegistryError> {
        let versions = self.live_subject(subject, deleted)?;
        let found = match which {
            VersionRef::Latest => versions.iter().rev().find(|(_, v)| deleted || !v.deleted),
            VersionRef::Number(n) => versions.get_key_value(&n).filter(|(_, v)| deleted || !v.deleted),
        };
        found.map(|(_, v)| *v).ok_or_else(|| {
            RegistryError::VersionNotFound(match which {
                VersionRef::Latest => "latest".to_string(),
                VersionRef::Number(n) => n.to_string(),
            })
        })
    }

    /// `GET /subjects/{s}/versions/{v}`.
    pub fn subject_version(
        &self,
        subject: &str,
        which: VersionRef,
        deleted: bool,
    ) -> Result<SubjectVersion, RegistryError> {
        let versions = self.live_subject(subject, deleted)?;
        let version = self.version(subject, which, deleted)?;
        let number = match which {
            VersionRef::Number(n) => n,
            VersionRef::Latest => {
                *versions.iter().rev().find(|(_, v)| deleted || !v.deleted).map(|(n, _)| n).expect("found above")
            }
        };
        Ok(self.show(subject, number, version.id))
    }

    fn show(&self, subject: &str, version: i32, id: i32) -> SubjectVersion {
        let schema = &self.schemas[&id];
        SubjectVersion {
            subject: subject.to_string(),
            version,
            id,
            schema_type: schema.schema_type,
            references: schema.references.clone(),
            schema: schema.text.clone(),
        }
    }

    /// `GET /schemas/ids/{id}`: the schema, while any subject version has it.
    pub fn schema(&self, id: i32) -> Result<&Schema, RegistryError> {
        self.schemas
            .get(&id)
            .filter(|_| !self.usages(id, true).is_empty())
            .ok_or(RegistryError::SchemaNotFound(Some(id)))
    }

    /// `GET /schemas/ids/{id}/versions`: (subject, version) pairs that have the schema.
    pub fn usages(&self, id: i32, deleted: bool) -> Vec<(String, i32)> {
        let mut found = Vec::new();
        for (subject, versions) in &self.subjects {
            for (n, v) in versions {
                if v.id == id && (deleted || !v.deleted) {
                    found.push((subject.clone(), *n));
                }
            }
        }
        found
    }

    /// Whether a live (not deleted) version of `subject` has schema `id`:
    /// what broker-side schema id validation asks.
    pub fn subject_has(&self, subject: &str, id: i32) -> bool {
        self.subjects.get(subject).is_some_and(|versions| versions.values().any(|v| v.id == id && !v.deleted))
    }

    /// The record name of schema `id` (see [`Parsed::record_name`]), for the
    /// record-name subject strategies; why there is none, if there is none.
    pub fn record_name(&self, id: i32, message_indexes: &[i32]) -> Result<String, String> {
        let schema = self.schemas.get(&id).ok_or_else(|| format!("schema id {id} is not registered"))?;
        let parsed = schema.parsed.as_ref().ok_or_else(|| format!("schema id {id} could not be parsed"))?;
        parsed.record_name(message_indexes).ok_or_else(|| match schema.schema_type {
            SchemaType::Protobuf => format!("schema id {id} has no message at indexes {message_indexes:?}"),
            _ => format!("schema id {id} is not of a named type"),
        })
    }

    /// `POST /subjects/{s}`: the live version of the subject that has this schema.
    pub fn lookup(&self, subject: &str, submitted: &Submitted, deleted: bool) -> Result<SubjectVersion, RegistryError> {
        let versions = self.live_subject(subject, deleted)?;
        let identity = self.identity(submitted)?;
        let id = self.ids.get(&identity).ok_or(RegistryError::SchemaNotFound(None))?;
        versions
            .iter()
            .rev()
            .find(|(_, v)| v.id == *id && (deleted || !v.deleted))
            .map(|(n, _)| self.show(subject, *n, *id))
            .ok_or(RegistryError::SchemaNotFound(None))
    }

    fn parse(&self, submitted: &Submitted) -> Result<Parsed, RegistryError> {
        let references = self.resolve(&submitted.references)?;
        Parsed::parse(submitted.schema_type, &submitted.schema, &references)
    }

    fn identity(&self, submitted: &Submitted) -> Result<Identity, RegistryError> {
        let parsed = self.parse(submitted)?;
        Ok((submitted.schema_type, parsed.canonical(), submitted.references.clone()))
    }

    /// The level that applies to a subject: its own, else the registry's, else BACKWARD.
    pub fn compatibility(&self, subject: Option<&str>) -> Compatibility {
        subject.and_then(|s| self.subject_compatibility.get(s)).copied().or(self.compatibility).unwrap_or_default()
    }

    /// `GET /config/{s}` without `defaultToGlobal`: the subject's own level.
    pub fn subject_compatibility(&self, subject: &str) -> Result<Compatibility, RegistryError> {
        self.subject_compatibility
            .get(subject)
            .copied()
            .ok_or_else(|| RegistryError::SubjectCompatibilityNotConfigured(subject.to_string()))
    }

    /// The mode that applies to a subject: its own, else the registry's, else READWRITE.
    pub fn mode(&self, subject: Option<&str>) -> Mode {
        subject.and_then(|s| self.subject_modes.get(s)).copied().or(self.mode).unwrap_or_default()
    }

    pub fn subject_mode(&self, subject: &str) -> Result<Mode, RegistryError> {
        self.subject_modes
            .get(subject)
            .copied()
            .ok_or_else(|| RegistryError::SubjectModeNotConfigured(subject.to_string()))
    }

    /// `POST /compatibility/subjects/{s}/versions[/{v}]`: the reasons the
    /// schema is incompatible with that version (or, with none named, with
    /// what the subject's level checks), empty when it is compatible.
    pub fn check_compatibility(
        &self,
        subject: &str,
        which: Option<VersionRef>,
        submitted: &Submitted,
    ) -> Result<Vec<String>, RegistryError> {
        let parsed = self.parse(submitted)?;
        let level = self.compatibility(Some(subject));
        if !self.subjects.contains_key(subject) {
            // As Confluent: anything is compatible with the latest of nothing;
            // a numbered version of nothing is not found.
            return match which {
                Some(VersionRef::Number(n)) => Err(RegistryError::VersionNotFound(n.to_string())),
                _ => Ok(Vec::new()),
            };
        }
        match which {
            Some(which) => {
                let version = self.version(subject, which, false)?;
                let old = self.parsed(version.id)?;
                Ok(level.check(&parsed, &[old]))
            }
            None => {
                let previous = self.live_parsed(subject)?;
                Ok(level.check(&parsed, &previous))
            }
        }
    }

    fn parsed(&self, id: i32) -> Result<&Parsed, RegistryError> {
        self.schemas[&id]
            .parsed
            .as_ref()
            .ok_or_else(|| RegistryError::Store(format!("schema {id} could not be parsed again from the store")))
    }

    /// The subject's live versions' schemas, oldest first (none for an unknown subject).
    fn live_parsed(&self, subject: &str) -> Result<Vec<&Parsed>, RegistryError> {
        let Some(versions) = self.subjects.get(subject) else { return Ok(Vec::new()) };
        versions.values().filter(|v| !v.deleted).map(|v| self.parsed(v.id)).collect()
    }

    // ---- changes --------------------------------------------------------------

    fn writable(&self, subject: Option<&str>) -> Result<Mode, RegistryError> {
        match self.mode(subject) {
            Mode::Readonly | Mode::ReadonlyOverride => Err(RegistryError::OperationNotPermitted(match subject {
                Some(s) => format!("Subject {s} is in read-only mode"),
                None => "The registry is in read-only mode".to_string(),
            })),
            mode => Ok(mode),
        }
    }

    /// `POST /subjects/{s}/versions`: the schema's id. The same schema
    /// registered again under the subject keeps its id and version; one
    /// registered under another subject keeps its id; anything else must
    /// pass the subject's compatibility level against its live versions,
    /// and gets the next id. In IMPORT mode the id and version are given.
    pub fn register(
        &self,
        subject: &str,
        submitted: &Submitted,
        import: Option<(i32, i32)>,
    ) -> Result<Change<i32>, RegistryError> {
        if subject.is_empty() || subject.chars().any(char::is_control) {
            return Err(RegistryError::InvalidSubject(subject.to_string()));
        }
        let mode = self.writable(Some(subject))?;
        let parsed = self.parse(submitted)?;
        let identity = (submitted.schema_type, parsed.canonical(), submitted.references.clone());
        let existing = self.ids.get(&identity).copied();
        let versions = self.subjects.get(subject);
        if import.is_none() {
            if let (Some(id), Some(versions)) = (existing, versions) {
                if versions.values().any(|v| v.id == id && !v.deleted) {
                    return Ok(Change::Unchanged(id));
                }
            }
        }
        let (id, version) = match (mode, import) {
            (Mode::Import, Some((id, version))) => {
                if let Some(schema) = self.schemas.get(&id) {
                    if schema.canonical != identity.1 || schema.schema_type != identity.0 {
                        return Err(RegistryError::OperationNotPermitted(format!(
                            "Overwrite new schema with id {id} is not permitted."
                        )));
                    }
                }
                (id, version)
            }
            (Mode::Import, None) => {
                return Err(RegistryError::OperationNotPermitted(
                    "Subject is in IMPORT mode: a registration names its id and version".to_string(),
                ))
            }
            (_, Some(_)) => {
                return Err(RegistryError::OperationNotPermitted(
                    "An id and version may be given only in IMPORT mode".to_string(),
                ))
            }
            (_, None) => {
                let previous = self.live_parsed(subject)?;
                let reasons = self.compatibility(Some(subject)).check(&parsed, &previous);
                if !reasons.is_empty() {
                    return Err(RegistryError::Incompatible(format!(
                        "Schema being registered is incompatible with an earlier schema for subject \"{subject}\", details: [{}]",
                        reasons.join(", ")
                    )));
                }
                let id = existing.unwrap_or(self.max_id + 1);
                let version = versions.and_then(|v| v.keys().next_back()).map_or(1, |v| v + 1);
                (id, version)
            }
        };
        let value = SchemaValue {
            subject: subject.to_string(),
            version,
            id,
            schema_type: submitted.schema_type,
            references: submitted.references.clone(),
            schema: stored_text(submitted, &parsed),
            deleted: false,
        };
        Ok(Change::Write(vec![Record { key: Key::schema(subject, version), value: Some(Value::Schema(value)) }], id))
    }

    /// Written before a permanent delete: the highest id handed out survives
    /// the deleted versions' compaction, so no id is handed out twice.
    fn id_floor(&self) -> Record {
        Record { key: Key::noop(), value: Some(Value::Noop(NoopValue { max_id: Some(self.max_id) })) }
    }

    /// Versions of other subjects' schemas that reference this one.
    fn referenced_by(&self, subject: &str, version: i32) -> Vec<(String, i32)> {
        let mut found = Vec::new();
        for (s, versions) in &self.subjects {
            for (n, v) in versions {
                let refs = &self.schemas[&v.id].references;
                if !v.deleted && refs.iter().any(|r| r.subject == subject && r.version == version) {
                    found.push((s.clone(), *n));
                }
            }
        }
        found
    }

    /// `DELETE /subjects/{s}/versions/{v}[?permanent=true]`: the version deleted.
    /// A permanent delete needs a soft delete first, as Confluent's does.
    pub fn delete_version(
        &self,
        subject: &str,
        which: VersionRef,
        permanent: bool,
    ) -> Result<Change<i32>, RegistryError> {
        self.writable(Some(subject))?;
        let versions = self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        let (number, version) = match which {
            VersionRef::Number(n) => {
                versions.get(&n).map(|v| (n, *v)).ok_or_else(|| RegistryError::VersionNotFound(n.to_string()))?
            }
            VersionRef::Latest => versions
                .iter()
                .rev()
                .find(|(_, v)| permanent || !v.deleted)
                .map(|(n, v)| (*n, *v))
                .ok_or_else(|| RegistryError::VersionNotFound("latest".to_string()))?,
        };
        if !self.referenced_by(subject, number).is_empty() {
            return Err(RegistryError::ReferenceExists { subject: subject.to_string(), version: number });
        }
        let key = Key::schema(subject, number);
        match (permanent, version.deleted) {
            (false, true) => Err(RegistryError::VersionSoftDeleted { subject: subject.to_string(), version: number }),
            (true, false) => {
                Err(RegistryError::VersionNotSoftDeleted { subject: subject.to_string(), version: number })
            }
            (true, true) => Ok(Change::Write(vec![self.id_floor(), Record { key, value: None }], number)),
            (false, false) => {
                let mut shown = self.show(subject, number, version.id);
                let value = SchemaValue {
                    subject: std::mem::take(&mut shown.subject),
                    version: number,
                    id: version.id,
                    schema_type: shown.schema_type,
                    references: shown.references,
                    schema: shown.schema,
                    deleted: true,
                };
                Ok(Change::Write(vec![Record { key, value: Some(Value::Schema(value)) }], number))
            }
        }
    }

    /// `DELETE /subjects/{s}[?permanent=true]`: the versions deleted.
    pub fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Change<Vec<i32>>, RegistryError> {
        self.writable(Some(subject))?;
        let versions = self.subjects.get(subject).ok_or_else(|| RegistryError::SubjectNotFound(subject.to_string()))?;
        for n in versions.keys() {
            if !self.referenced_by(subject, *n).is_empty() {
                return Err(RegistryError::ReferenceExists { subject: subject.to_string(), version: *n });
            }
        }
        let live = versions.values().any(|v| !v.deleted);
        let numbers: Vec<i32> = versions.keys().copied().collect();
        match (permanent, live) {
            (false, false) => Err(RegistryError::SubjectSoftDeleted(subject.to_string())),
            (true, true) => Err(RegistryError::SubjectNotSoftDeleted(subject.to_string())),
            (true, false) => {
                let mut records = vec![self.id_floor()];
                records.extend(numbers.iter().map(|n| Record { key: Key::schema(subject, *n), value: None }));
                records.push(Record {
                    key: Key::clear_subject(subject),
                    value: Some(Value::ClearSubject(ClearSubjectValue { subject: subject.to_string() })),
                });
                Ok(Change::Write(records, numbers))
            }
            (false, true) => {
                let latest = *numbers.last().expect("a live subject has versions");
                let live_numbers = versions.iter().filter(|(_, v)| !v.deleted).map(|(n, _)| *n).collect();
                let value = DeleteSubjectValue { subject: subject.to_string(), version: latest };
                let record = Record { key: Key::delete_subject(subject), value: Some(Value::DeleteSubject(value)) };
                Ok(Change::Write(vec![record], live_numbers))
            }
        }
    }

    /// `PUT /config[/{s}]`.
    pub fn set_compatibility(&self, subject: Option<&str>, level: Compatibility) -> Change<Compatibility> {
        let value = Value::Config(ConfigValue { compatibility_level: level });
        Change::Write(vec![Record { key: Key::config(subject), value: Some(value) }], level)
    }

    /// `DELETE /config[/{s}]`: the level that was set.
    pub fn delete_compatibility(&self, subject: Option<&str>) -> Result<Change<Compatibility>, RegistryError> {
        // A subject without a level of its own is "not found", as in Confluent.
        let was = match subject {
            Some(s) => self.subject_compatibility(s).map_err(|_| RegistryError::SubjectNotFound(s.to_string()))?,
            None => self.compatibility(None),
        };
        Ok(Change::Write(vec![Record { key: Key::config(subject), value: None }], was))
    }

    /// `PUT /mode[/{s}]`. IMPORT needs an empty registry (or subject), as in Confluent.
    pub fn set_mode(&self, subject: Option<&str>, mode: Mode, force: bool) -> Result<Change<Mode>, RegistryError> {
        if mode == Mode::Import && !force {
            let empty = match subject {
                Some(s) => !self.subjects.contains_key(s),
                None => self.subjects.is_empty(),
            };
            if !empty {
                return Err(RegistryError::OperationNotPermitted(
                    "Cannot import since found existing subjects".to_string(),
                ));
            }
        }
        let value = Value::Mode(ModeValue { mode });
        Ok(Change::Write(vec![Record { key: Key::mode(subject), value: Some(value) }], mode))
    }

    /// `DELETE /mode/{s}`: the mode that was set.
    pub fn delete_mode(&self, subject: &str) -> Result<Change<Mode>, RegistryError> {
        let was = self.subject_mode(subject).map_err(|_| RegistryError::SubjectNotFound(subject.to_string()))?;
        Ok(Change::Write(vec![Record { key: Key::mode(Some(subject)), value: None }], was))
    }

    /// `GET /subjects/{s}/versions/{v}/referencedby`: ids of live schemas referencing the version.
    pub fn referencing_ids(&self, subject: &str, version: i32) -> Vec<i32> {
        let mut ids: Vec<i32> =
            self.referenced_by(subject, version).into_iter().map(|(s, n)| self.subjects[&s][&n].id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Schema types of every registered schema (for `GET /schemas`), by id.
    pub fn ids(&self) -> BTreeSet<i32> {
        self.schemas.keys().copied().collect()
    }
}

/// Sets (`Some`) or clears (`None`) a registry-wide value or, for a
/// subject, its own: what a config or mode record of `_schemas` does.
fn set_or_clear<T>(
    global: &mut Option<T>,
    by_subject: &mut HashMap<String, T>,
    subject: &Option<String>,
    value: Option<T>,
) {
    match (subject, value) {
        (None, value) => *global = value,
        (Some(s), Some(value)) => {
            by_subject.insert(s.clone(), value);
        }
        (Some(s), None) => {
            by_subject.remove(s);
        }
    }
}

/// The text a registration stores and shows: for Avro the parsed schema's
/// JSON form, compact (Confluent's `AvroSchema.canonicalString()`, so
/// `{"type": "string"}` is shown as `"string"`); for the others the text as given.
fn stored_text(submitted: &Submitted, parsed: &Parsed) -> String {
    match parsed {
        Parsed::Avro(_) => parsed.canonical(),
        _ => submitted.schema.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered(registry: &mut Registry, subject: &str, schema_type: SchemaType, schema: &str) -> i32 {
        let submitted = Submitted { schema_type, schema: schema.to_string(), references: Vec::new() };
        match registry.register(subject, &submitted, None).unwrap() {
            Change::Write(records, id) => {
                records.iter().for_each(|r| registry.apply(r));
                id
            }
            Change::Unchanged(id) => id,
        }
    }

    #[test]
    fn schema_id_validation_queries() {
        let mut registry = Registry::default();
        let avro = r#"{"type":"record","name":"Trade","namespace":"exchange","fields":[{"name":"px","type":"long"}]}"#;
        let id = registered(&mut registry, "trades-value", SchemaType::Avro, avro);
        assert!(registry.subject_has("trades-value", id));
        assert!(!registry.subject_has("trades-key", id), "another subject");
        assert!(!registry.subject_has("trades-value", id + 1), "another id");
        assert_eq!(registry.record_name(id, &[0]), Ok("exchange.Trade".to_string()));
        assert!(registry.record_name(id + 1, &[0]).unwrap_err().contains("not registered"));

        let primitive = registered(&mut registry, "counts-value", SchemaType::Avro, r#""long""#);
        assert!(registry.record_name(primitive, &[0]).unwrap_err().contains("not of a named type"));

        let titled = registered(&mut registry, "t-value", SchemaType::Json, r#"{"title":"Reading","type":"object"}"#);
        assert_eq!(registry.record_name(titled, &[0]).as_deref(), Ok("Reading"));
        let untitled = registered(&mut registry, "u-value", SchemaType::Json, r#"{"type":"string"}"#);
        assert_eq!(registry.record_name(untitled, &[0]).as_deref(), Ok("record"));

        let proto = "syntax = \"proto3\"; package telemetry;\n\
                     message Sample { double v = 1; message Tag { string k = 1; } }\n\
                     message Batch { repeated Sample samples = 1; }\n";
        let proto_id = registered(&mut registry, "p-value", SchemaType::Protobuf, proto);
        assert_eq!(registry.record_name(proto_id, &[0]).as_deref(), Ok("telemetry.Sample"));
        assert_eq!(registry.record_name(proto_id, &[1]).as_deref(), Ok("telemetry.Batch"));
        assert_eq!(registry.record_name(proto_id, &[0, 0]).as_deref(), Ok("telemetry.Sample.Tag"));
        assert!(registry.record_name(proto_id, &[2]).unwrap_err().contains("no message"));

        // A soft-deleted version no longer validates.
        match registry.delete_version("trades-value", VersionRef::Latest, false).unwrap() {
            Change::Write(records, _) => records.iter().for_each(|r| registry.apply(r)),
            Change::Unchanged(_) => panic!("a delete writes"),
        }
        assert!(!registry.subject_has("trades-value", id));
    }
}

#[cfg(test)]
mod confluent_answers {
    use super::*;

    fn submitted(schema: &str) -> Submitted {
        Submitted { schema_type: SchemaType::Avro, schema: schema.to_string(), references: Vec::new() }
    }

    fn applied<T>(registry: &mut Registry, change: Change<T>) -> T {
        match change {
            Change::Write(records, answer) => {
                records.iter().for_each(|r| registry.apply(r));
                answer
            }
            Change::Unchanged(answer) => answer,
        }
    }

    #[test]
    fn avro_schemas_are_shown_in_their_compact_json_form() {
        let mut registry = Registry::default();
        let change = registry.register("Kafka-value", &submitted(r#"{"type": "string"}"#), None).unwrap();
        let id = applied(&mut registry, change);
        assert_eq!(registry.schema(id).unwrap().text, r#""string""#, "Confluent's documented answer");
        let record = r#"{ "type": "record", "name": "Trade", "namespace": "exchange",
                          "fields": [ {"name": "px", "type": "long"} ] }"#;
        let change = registry.register("trades-value", &submitted(record), None).unwrap();
        let id = applied(&mut registry, change);
        // Compact, as Confluent's; apache-avro writes `namespace` before `name`, Java's Avro after.
        let text = &registry.schema(id).unwrap().text;
        assert!(!text.contains(' '), "{text}");
        let shown: serde_json::Value = serde_json::from_str(text).unwrap();
        let expected: serde_json::Value = serde_json::from_str(
            r#"{"type":"record","name":"Trade","namespace":"exchange","fields":[{"name":"px","type":"long"}]}"#,
        )
        .unwrap();
        assert_eq!(shown, expected);
    }

    #[test]
    fn missing_subjects_answer_as_confluent_does() {
        let registry = Registry::default();
        let any = submitted(r#""int""#);
        assert_eq!(registry.check_compatibility("none", Some(VersionRef::Latest), &any), Ok(Vec::new()));
        assert_eq!(registry.check_compatibility("none", None, &any), Ok(Vec::new()));
        assert_eq!(
            registry.check_compatibility("none", Some(VersionRef::Number(1)), &any),
            Err(RegistryError::VersionNotFound("1".into()))
        );
        assert_eq!(registry.delete_compatibility(Some("none")), Err(RegistryError::SubjectNotFound("none".into())));
        assert_eq!(registry.delete_mode("none"), Err(RegistryError::SubjectNotFound("none".into())));
        assert_eq!(RegistryError::SchemaNotFound(None).to_string(), "Schema not found");
        assert_eq!(RegistryError::SchemaNotFound(Some(7)).to_string(), "Schema 7 not found");
    }
}
