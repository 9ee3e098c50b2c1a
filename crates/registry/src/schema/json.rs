//! JSON Schema (drafts 4 to 2020-12): a schema must be valid against its
//! draft's meta-schema (the `jsonschema` crate), its canonical form is its
//! JSON with keys sorted, and compatibility is decided structurally: a
//! reader can read a writer when every document the writer's schema allows
//! is allowed by the reader's. That is the rule Confluent's JSON Schema
//! checks apply difference by difference (a property added to an open
//! content model is incompatible, one added to a closed model is not, a
//! type widened from integer to number is compatible, and so on).
//!
//! Keywords compared: `type`, `properties`, `required`,
//! `additionalProperties`, `minProperties`/`maxProperties`, `items` and
//! `prefixItems` (and array-form `items`), `additionalItems`,
//! `minItems`/`maxItems`, `uniqueItems`, `minLength`/`maxLength`,
//! `pattern`, `format`, `minimum`/`maximum` and their exclusive forms,
//! `multipleOf`, `enum`, `const`, `anyOf`/`oneOf`/`allOf`, `not`, and
//! local `$ref`s (`#/definitions/...`, `#/$defs/...`) and references to
//! other registered schemas by name. Any other keyword that differs
//! between the two schemas makes them incompatible, which may refuse an
//! evolution Confluent accepts, never the other way round.

use std::collections::{BTreeSet, HashMap};

use serde_json::{Map, Value};

use crate::RegistryError;

/// The record name of a JSON schema without a `title` (Confluent's `JsonSchema.DEFAULT_NAME`).
const JSON_DEFAULT_RECORD_NAME: &str = "record";

/// How deep `$ref`s and nested schemas are followed before giving up (as incompatible).
const DEPTH_MAX: usize = 64;

#[derive(Debug, Clone)]
pub struct JsonSchema {
    root: Value,
    /// Referenced schemas, by the name the root uses for them.
    references: HashMap<String, Value>,
}

impl JsonSchema {
    pub fn parse(text: &str, references: &[(String, String)]) -> Result<JsonSchema, RegistryError> {
        let parse = |text: &str| -> Result<Value, RegistryError> {
            let value: Value = serde_json::from_str(text)
                .map_err(|e| RegistryError::InvalidSchema(format!("{text}, details: {e}")))?;
            if !matches!(value, Value::Object(_) | Value::Bool(_)) {
                return Err(RegistryError::InvalidSchema(format!(
                    "{text}, details: a schema is an object or a boolean"
                )));
            }
            if let Err(e) = jsonschema::meta::validate(&value) {
                return Err(RegistryError::InvalidSchema(format!("{text}, details: {e}")));
            }
            Ok(value)
        };
        let root = parse(text)?;
        let references = references.iter().map(|(name, t)| Ok((name.clone(), parse(t)?))).collect::<Result<_, _>>()?;
        Ok(JsonSchema { root, references })
    }

    /// The name the record-name subject strategies use: the schema's
    /// `title`, else Confluent's default name, `record`.
    pub fn record_name(&self) -> String {
        self.root.get("title").and_then(Value::as_str).unwrap_or(JSON_DEFAULT_RECORD_NAME).to_string()
    }

    pub fn canonical(&self) -> String {
        // serde_json's maps are sorted by key (no `preserve_order`).
        serde_json::to_string(&self.root).expect("a parsed value serializes")
    }

    /// Why some document valid under `writer` is not valid under this schema.
    pub fn can_read(&self, writer: &JsonSchema) -> Vec<String> {
        let mut check = Check { reader: self, writer, reasons: Vec::new() };
        check.schema(&self.root, &writer.root, "#", 0);
        check.reasons
    }

    /// Follows `$ref` chains to the schema they name (`None` when one cannot be resolved).
    fn resolve<'a>(&'a self, mut schema: &'a Value) -> Option<&'a Value> {
        for _ in 0..DEPTH_MAX {
            let Some(target) = schema.get("$ref").and_then(Value::as_str) else { return Some(schema) };
            schema = if let Some(pointer) = target.strip_prefix('#') {
                self.root.pointer(pointer)?
            } else if let Some(external) = self.references.get(target) {
                external
            } else {
                let (name, pointer) = target.split_once('#')?;
                self.references.get(name)?.pointer(pointer)?
            };
        }
        None
    }
}

struct Check<'a> {
    reader: &'a JsonSchema,
    writer: &'a JsonSchema,
    reasons: Vec<String>,
}

fn object(schema: &Value) -> Option<&Map<String, Value>> {
    schema.as_object()
}

/// Whether a schema allows every document.
fn allows_all(schema: &Value) -> bool {
    match schema {
        Value::Bool(b) => *b,
        Value::Object(o) => o.keys().all(|k| {
            matches!(
                k.as_str(),
                "$schema"
                    | "$id"
                    | "id"
                    | "title"
                    | "description"
                    | "$comment"
                    | "default"
                    | "examples"
                    | "definitions"
                    | "$defs"
            )
        }),
        _ => false,
    }
}

fn allows_none(schema: &Value) -> bool {
    schema == &Value::Bool(false)
}

/// The schema's types, `None` when any type is allowed.
fn types(schema: &Map<String, Value>) -> Option<BTreeSet<String>> {
    match schema.get("type")? {
        Value::String(t) => Some([t.clone()].into()),
        Value::Array(ts) => Some(ts.iter().filter_map(|t| t.as_str().map(str::to_string)).collect()),
        _ => None,
    }
}

fn number(schema: &Map<String, Value>, key: &str) -> Option<f64> {
    schema.get(key).and_then(Value::as_f64)
}

/// Keywords this check understands; any other keyword that differs makes the schemas incompatible.
const COMPARED: &[&str] = &[
    "type",
    "properties",
    "required",
    "additionalProperties",
    "minProperties",
    "maxProperties",
    "items",
    "prefixItems",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "minLength",
    "maxLength",
    "pattern",
    "format",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "multipleOf",
    "enum",
    "const",
    "anyOf",
    "oneOf",
    "allOf",
    "not",
    "$ref",
    "$schema",
    "$id",
    "id",
    "title",
    "description",
    "$comment",
    "default",
    "examples",
    "definitions",
    "$defs",
    "readOnly",
    "writeOnly",
    "deprecated",
];

impl Check<'_> {
    fn fail(&mut self, path: &str, kind: &str) {
        self.reasons.push(format!("{{errorType:'{kind}', description:'at {path}'}}"));
    }

    /// Every document `writer` allows, `reader` allows.
    fn schema(&mut self, reader: &Value, writer: &Value, path: &str, depth: usize) {
        if depth > DEPTH_MAX {
            return self.fail(path, "SCHEMA_TOO_DEEP");
        }
        let (Some(reader), Some(writer)) = (self.reader.resolve(reader), self.writer.resolve(writer)) else {
            return self.fail(path, "REFERENCE_NOT_RESOLVED");
        };
        if allows_none(writer) || allows_all(reader) || reader == writer && !has_ref(reader) {
            return;
        }
        if allows_none(reader) {
            return self.fail(path, "SCHEMA_NARROWED");
        }
        let (Some(r), Some(w)) = (object(reader), object(writer)) else {
            // The writer allows everything, the reader does not.
            return self.fail(path, "TYPE_NARROWED");
        };
        // Alternatives: each of the writer's must be read by the reader; the
        // reader reads an alternative when one of its own does.
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(alternatives)) = w.get(key) {
                let rest = without(w, key);
                for (i, alternative) in alternatives.iter().enumerate() {
                    let merged = merge(&rest, alternative);
                    self.schema(reader, &merged, &format!("{path}/{key}/{i}"), depth + 1);
                }
                return;
            }
        }
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(alternatives)) = r.get(key) {
                let mut fits = false;
                for alternative in alternatives {
                    let mut trial = Check { reader: self.reader, writer: self.writer, reasons: Vec::new() };
                    trial.schema(&merge(&without(r, key), alternative), writer, path, depth + 1);
                    if trial.reasons.is_empty() {
                        fits = true;
                        break;
                    }
                }
                if !fits {
                    self.fail(path, "SUM_TYPE_NARROWED");
                }
                return;
            }
        }
        if let Some(Value::Array(parts)) = r.get("allOf") {
            for (i, part) in parts.iter().enumerate() {
                self.schema(part, writer, &format!("{path}/allOf/{i}"), depth + 1);
            }
            let rest = Value::Object(without(r, "allOf"));
            return self.schema(&rest, writer, path, depth + 1);
        }
        if let Some(Value::Array(parts)) = w.get("allOf") {
            // A document of the writer satisfies every part: one part the reader reads is enough.
            let rest = without(w, "allOf");
            let fits = parts.iter().any(|part| {
                let mut trial = Check { reader: self.reader, writer: self.writer, reasons: Vec::new() };
                trial.schema(reader, &merge(&rest, part), path, depth + 1);
                trial.reasons.is_empty()
            });
            if !fits {
                self.fail(path, "PRODUCT_TYPE_CHANGED");
            }
            return;
        }
        self.keywords(r, w, path, depth);
    }

    fn keywords(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, path: &str, depth: usize) {
        for key in r.keys().chain(w.keys()) {
            if !COMPARED.contains(&key.as_str()) && r.get(key) != w.get(key) {
                self.fail(path, &format!("KEYWORD_CHANGED ({key})"));
            }
        }
        if r.get("not") != w.get("not") && r.contains_key("not") {
            self.fail(path, "NOT_CHANGED");
        }
        let (rt, wt) = (types(r), types(w));
        match (&rt, &wt) {
            (Some(rt), Some(wt)) => {
                for t in wt {
                    if !(rt.contains(t) || t == "integer" && rt.contains("number")) {
                        self.fail(path, "TYPE_NARROWED");
                    }
                }
            }
            (Some(_), None) => self.fail(path, "TYPE_NARROWED"),
            _ => {}
        }
        let may_be = |t: &str| wt.as_ref().is_none_or(|wt| wt.contains(t) || (t == "number" && wt.contains("integer")));
        self.values(r, w, path);
        if may_be("object") {
            self.objects(r, w, path, depth);
        }
        if may_be("array") {
            self.arrays(r, w, path, depth);
        }
        if may_be("string") {
            self.bound(r, w, path, "minLength", false);
            self.bound(r, w, path, "maxLength", true);
            for key in ["pattern", "format"] {
                if r.contains_key(key) && r.get(key) != w.get(key) {
                    self.fail(path, &format!("{}_CHANGED", key.to_uppercase()));
                }
            }
        }
        if may_be("number") || may_be("integer") {
            for (key, upper) in
                [("minimum", false), ("maximum", true), ("exclusiveMinimum", false), ("exclusiveMaximum", true)]
            {
                self.bound(r, w, path, key, upper);
            }
            if let Some(m) = number(r, "multipleOf") {
                let ok = number(w, "multipleOf").is_some_and(|wm| (wm / m).fract() == 0.0);
                if !ok {
                    self.fail(path, "MULTIPLE_OF_CHANGED");
                }
            }
        }
    }

    /// A bound the reader sets must be no tighter than the writer's (`upper`: a maximum).
    fn bound(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, path: &str, key: &str, upper: bool) {
        let Some(rb) = r.get(key) else { return };
        if let (Value::Bool(_), _) | (_, Some(Value::Bool(_))) = (rb, w.get(key)) {
            // Draft 4's boolean exclusive bounds: compared as they are.
            if Some(rb) != w.get(key) {
                self.fail(path, &format!("{key}_CHANGED"));
            }
            return;
        }
        let Some(rb) = rb.as_f64() else { return };
        let loose = match number(w, key) {
            Some(wb) if upper => rb >= wb,
            Some(wb) => rb <= wb,
            None => false,
        };
        if !loose {
            self.fail(path, &format!("{}_NARROWED", key));
        }
    }

    fn values(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, path: &str) {
        let allowed = |m: &Map<String, Value>| -> Option<Vec<Value>> {
            match (m.get("enum"), m.get("const")) {
                (_, Some(c)) => Some(vec![c.clone()]),
                (Some(Value::Array(values)), None) => Some(values.clone()),
                _ => None,
            }
        };
        match (allowed(r), allowed(w)) {
            (Some(rv), Some(wv)) if wv.iter().any(|v| !rv.contains(v)) => self.fail(path, "ENUM_ARRAY_NARROWED"),
            (Some(_), None) => self.fail(path, "ENUM_ARRAY_ADDED"),
            _ => {}
        }
    }

    fn objects(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, path: &str, depth: usize) {
        let empty = Map::new();
        let rp = r.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let wp = w.get("properties").and_then(Value::as_object).unwrap_or(&empty);
        let open = Value::Bool(true);
        let r_extra = r.get("additionalProperties").unwrap_or(&open);
        let w_extra = w.get("additionalProperties").unwrap_or(&open);
        let names: BTreeSet<&String> = rp.keys().chain(wp.keys()).collect();
        for name in names {
            let at = format!("{path}/properties/{name}");
            match (rp.get(name), wp.get(name)) {
                (Some(rs), Some(ws)) => self.schema(rs, ws, &at, depth + 1),
                // Removed: the reader takes it as one of its additional properties.
                (None, Some(ws)) => {
                    let mut trial = Check { reader: self.reader, writer: self.writer, reasons: Vec::new() };
                    trial.schema(r_extra, ws, &at, depth + 1);
                    if !trial.reasons.is_empty() {
                        self.fail(&at, "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL");
                    }
                }
                // Added: the writer may have written it as one of its additional properties.
                (Some(rs), None) => {
                    let mut trial = Check { reader: self.reader, writer: self.writer, reasons: Vec::new() };
                    trial.schema(rs, w_extra, &at, depth + 1);
                    if !trial.reasons.is_empty() {
                        self.fail(&at, "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL");
                    }
                }
                (None, None) => {}
            }
        }
        let mut extra = Check { reader: self.reader, writer: self.writer, reasons: Vec::new() };
        extra.schema(r_extra, w_extra, &format!("{path}/additionalProperties"), depth + 1);
        if !extra.reasons.is_empty() {
            self.fail(path, "ADDITIONAL_PROPERTIES_NARROWED");
        }
        let required = |m: &Map<String, Value>| -> BTreeSet<String> {
            m.get("required")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let (rr, wr) = (required(r), required(w));
        for name in rr.difference(&wr) {
            self.fail(&format!("{path}/required/{name}"), "REQUIRED_ATTRIBUTE_ADDED");
        }
        self.bound(r, w, path, "minProperties", false);
        self.bound(r, w, path, "maxProperties", true);
    }

    fn arrays(&mut self, r: &Map<String, Value>, w: &Map<String, Value>, path: &str, depth: usize) {
        // Positional items: `prefixItems` (2020-12) or array-form `items`; then the rest.
        let positional = |m: &Map<String, Value>| -> (Vec<Value>, Value) {
            let open = Value::Bool(true);
            match (m.get("prefixItems"), m.get("items")) {
                (Some(Value::Array(prefix)), rest) => (prefix.clone(), rest.cloned().unwrap_or(open)),
                (None, Some(Value::Array(items))) => (items.clone(), m.get("additionalItems").cloned().unwrap_or(open)),
                (None, Some(items)) => (Vec::new(), items.clone()),
                _ => (Vec::new(), open),
            }
        };
        let (r_prefix, r_rest) = positional(r);
        let (w_prefix, w_rest) = positional(w);
        for i in 0..r_prefix.len().max(w_prefix.len()) {
            let rs = r_prefix.get(i).unwrap_or(&r_rest);
            let ws = w_prefix.get(i).unwrap_or(&w_rest);
            self.schema(rs, ws, &format!("{path}/items/{i}"), depth + 1);
        }
        self.schema(&r_rest, &w_rest, &format!("{path}/items"), depth + 1);
        self.bound(r, w, path, "minItems", false);
        self.bound(r, w, path, "maxItems", true);
        if r.get("uniqueItems") == Some(&Value::Bool(true)) && w.get("uniqueItems") != Some(&Value::Bool(true)) {
            self.fail(path, "UNIQUE_ITEMS_ADDED");
        }
    }
}

fn has_ref(schema: &Value) -> bool {
    schema.to_string().contains("\"$ref\"")
}

fn without(m: &Map<String, Value>, key: &str) -> Map<String, Value> {
    let mut m = m.clone();
    m.remove(key);
    m
}

/// The schema made of `base`'s keywords and those of `part` (which win).
fn merge(base: &Map<String, Value>, part: &Value) -> Value {
    match part {
        Value::Object(p) if !base.is_empty() => {
            let mut m = base.clone();
            for (k, v) in p {
                m.insert(k.clone(), v.clone());
            }
            Value::Object(m)
        }
        _ if base.is_empty() => part.clone(),
        // A boolean part with other keywords beside it: `false` allows nothing, `true` adds nothing.
        Value::Bool(false) => Value::Bool(false),
        _ => Value::Object(base.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compatible(reader: &str, writer: &str) -> Vec<String> {
        let reader = JsonSchema::parse(reader, &[]).unwrap();
        let writer = JsonSchema::parse(writer, &[]).unwrap();
        reader.can_read(&writer)
    }

    const PERSON: &str = r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"]}"#;

    #[test]
    fn confluents_open_and_closed_content_model_rules() {
        // Adding a property to an open model: old documents may carry it with any value.
        let added_open =
            r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"]}"#;
        assert!(!compatible(added_open, PERSON).is_empty());
        // To a closed one it is compatible.
        let closed = r#"{"type":"object","properties":{"name":{"type":"string"}},"required":["name"],"additionalProperties":false}"#;
        let added_closed = r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name"],"additionalProperties":false}"#;
        assert_eq!(compatible(added_closed, closed), Vec::<String>::new());
        // Removing one from an open model is compatible, from a closed one it is not.
        assert_eq!(compatible(PERSON, added_open), Vec::<String>::new());
        assert!(!compatible(closed, added_closed).is_empty());
        // A new required property is not compatible.
        let required = r#"{"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer"}},"required":["name","age"],"additionalProperties":false}"#;
        assert!(!compatible(required, added_closed).is_empty());
    }

    #[test]
    fn types_widen_but_do_not_narrow() {
        assert_eq!(compatible(r#"{"type":"number"}"#, r#"{"type":"integer"}"#), Vec::<String>::new());
        assert!(!compatible(r#"{"type":"integer"}"#, r#"{"type":"number"}"#).is_empty());
        assert_eq!(compatible(r#"{"type":["string","null"]}"#, r#"{"type":"string"}"#), Vec::<String>::new());
        assert!(!compatible(r#"{"type":"string"}"#, r#"{"type":["string","null"]}"#).is_empty());
        assert!(!compatible(r#"{"type":"string","maxLength":5}"#, r#"{"type":"string","maxLength":10}"#).is_empty());
        assert_eq!(
            compatible(r#"{"type":"string","maxLength":10}"#, r#"{"type":"string","maxLength":5}"#),
            Vec::<String>::new()
        );
        assert_eq!(compatible(r#"{"enum":["a","b","c"]}"#, r#"{"enum":["a","b"]}"#), Vec::<String>::new());
        assert!(!compatible(r#"{"enum":["a"]}"#, r#"{"enum":["a","b"]}"#).is_empty());
        assert_eq!(
            compatible(r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#, r#"{"type":"string"}"#),
            Vec::<String>::new()
        );
        assert!(!compatible(r#"{"type":"string"}"#, r#"{"oneOf":[{"type":"string"},{"type":"integer"}]}"#).is_empty());
    }

    #[test]
    fn invalid_schemas_are_refused() {
        assert!(JsonSchema::parse("{", &[]).is_err());
        assert!(JsonSchema::parse("42", &[]).is_err());
        assert!(JsonSchema::parse(r#"{"type":"no-such-type"}"#, &[]).is_err());
        assert!(JsonSchema::parse(r#"{"minLength":"five"}"#, &[]).is_err());
    }
}
