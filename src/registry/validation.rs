//! Broker-side schema id validation, per topic as Confluent Server offers
//! it (`confluent.key.schema.validation`, `confluent.value.schema.validation`):
//! each produced key or value must start with Confluent's wire-format
//! prefix (the magic byte and a schema id) naming a schema registered under
//! the subject the topic's subject name strategy gives (`<topic>-value` by
//! default), in a version not deleted. A null key or value (a tombstone)
//! passes. The data itself is not checked against the schema, as in
//! Confluent Server.
//!
//! The registry's state lives on [`ADMIN_SHARD`]; a shard asks it once per
//! produce request for the ids it has not found valid within
//! [`SCHEMA_ID_VALIDATED_TTL_MS`], and remembers the valid ones.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sluice_registry::wire;

use crate::admin::ADMIN_SHARD;
use crate::config::SubjectNameStrategy;
use crate::constants::{SCHEMA_ID_VALIDATED_ENTRIES_MAX, SCHEMA_ID_VALIDATED_TTL_MS};
use crate::shard::Shard;

/// One key's or value's schema id, and what it must be registered under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdQuery {
    pub topic: Arc<str>,
    pub is_key: bool,
    pub strategy: SubjectNameStrategy,
    pub id: i32,
    /// The Protobuf message indexes after the id, if they could be read
    /// (only the record-name strategies use them, for Protobuf schemas).
    pub message_indexes: Option<Vec<i32>>,
}

impl IdQuery {
    /// The query for a key's or value's bytes, or why it has no schema id.
    pub fn of(topic: &Arc<str>, is_key: bool, strategy: SubjectNameStrategy, data: &[u8]) -> Result<IdQuery, String> {
        let (id, rest) = wire::schema_id(data).ok_or_else(|| {
            format!(
                "The record's {} has no schema id: it must start with the magic byte 0 and a 4-byte schema id",
                field(is_key)
            )
        })?;
        Ok(IdQuery { topic: topic.clone(), is_key, strategy, id, message_indexes: wire::message_indexes(rest) })
    }
}

fn field(is_key: bool) -> &'static str {
    if is_key {
        "key"
    } else {
        "value"
    }
}

/// What the registry says of one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    /// The id is not what the topic accepts: why, for the record's error.
    Invalid(String),
}

/// The registry could not be asked (it is not running, or `_schemas` could not be read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable(pub String);

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "schema id validation could not consult the schema registry: {}", self.0)
    }
}

thread_local! {
    /// Queries this shard found valid, and when.
    static VALIDATED: RefCell<HashMap<IdQuery, Instant>> = RefCell::new(HashMap::new());
}

/// The verdict on each query, in order: from this shard's memory where it
/// holds a recent valid answer, from the registry for the rest (one call).
pub async fn check(shard: &Rc<Shard>, queries: &[IdQuery]) -> Result<Vec<Verdict>, Unavailable> {
    let now = Instant::now();
    let ttl = Duration::from_millis(SCHEMA_ID_VALIDATED_TTL_MS);
    let remembered =
        |q: &IdQuery| VALIDATED.with(|v| v.borrow().get(q).is_some_and(|at| now.duration_since(*at) < ttl));
    let mut asked: Vec<IdQuery> = Vec::new();
    for q in queries {
        if !remembered(q) && !asked.contains(q) {
            asked.push(q.clone());
        }
    }
    let answers = if asked.is_empty() {
        Vec::new()
    } else {
        let sent = asked.clone();
        shard
            .invoke_on(ADMIN_SHARD, move |_| async move { answer(sent).await })
            .await
            .map_err(|e| Unavailable(e.to_string()))??
    };
    VALIDATED.with(|v| {
        let mut v = v.borrow_mut();
        for (q, verdict) in asked.iter().zip(&answers) {
            if *verdict == Verdict::Valid {
                if v.len() >= SCHEMA_ID_VALIDATED_ENTRIES_MAX {
                    v.retain(|_, at| now.duration_since(*at) < ttl);
                }
                if v.len() >= SCHEMA_ID_VALIDATED_ENTRIES_MAX {
                    v.clear();
                }
                v.insert(q.clone(), now);
            }
        }
    });
    Ok(queries
        .iter()
        .map(|q| match asked.iter().position(|a| a == q) {
            Some(i) => answers[i].clone(),
            None => Verdict::Valid,
        })
        .collect())
}

/// On [`ADMIN_SHARD`]: the registry's verdicts, caught up with `_schemas` first.
async fn answer(queries: Vec<IdQuery>) -> Result<Vec<Verdict>, Unavailable> {
    let registry = super::installed().ok_or_else(|| Unavailable("the schema registry is not set up".into()))?;
    let state = registry.state_caught_up().await.map_err(|e| Unavailable(e.to_string()))?;
    Ok(queries
        .iter()
        .map(|q| {
            let indexes = q.message_indexes.as_deref().unwrap_or(&[]);
            let subject = q.strategy.subject(&q.topic, q.is_key, || state.record_name(q.id, indexes));
            match subject {
                Ok(subject) if state.subject_has(&subject, q.id) => Verdict::Valid,
                Ok(subject) => Verdict::Invalid(format!(
                    "Schema id {} of the record's {} is not registered under subject '{subject}'",
                    q.id,
                    field(q.is_key)
                )),
                Err(why) => Verdict::Invalid(format!(
                    "The record's {} names no subject by {}: {why}",
                    field(q.is_key),
                    q.strategy.class_name()
                )),
            }
        })
        .collect())
}
