//! The OpenAPI documents describe what is served, and what is served is the `api` crate:
//! - every path of docs/openapi.yaml answers every documented method (not the 404/405
//!   fallbacks) and 405 to every undocumented one (needs Cassandra);
//! - every component schema of docs/openapi.yaml and docs/openapi-edge.yaml named after an
//!   `api` type is compared field by field (property names, required set, JSON types, enums,
//!   string formats and patterns; `$ref`s, `allOf` and `oneOf` resolved) with the schema
//!   `utoipa` derives for that type, and every such type is documented;
//! - a mutated schema is caught, so the comparison can fail.

use std::collections::{BTreeMap, BTreeSet};

use crate::common::spawn_app;
use api::regions::{
    DrainView, LegacyRegion, LegacyRegionList, RegionList, RegionLoad, RegionRecord, RegionStatus,
    RegisterRequest,
};
use api::v1::{
    CreateSessionRequest, SessionId, SessionPhase, SessionStateView, SessionStatus, SessionView,
    StopView, Timestamp, V1ErrorBody,
};
use api::{
    Algorithm, BreakEvery, EdgeExitView, EdgeGameView, ErrorBody, ErrorCode, ErrorDetail,
    ExitRequest, ExitView, GameId, GameStatus, GameView, Metadata, Phase, RegionName, ReplayView,
    RoutedBy, StartRequest, StateView, TickMs, TickView, UserId,
};
use api::{RoundKey, RoundsView};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::Schema;

const METHODS: [&str; 4] = ["get", "post", "put", "delete"];
const ORIGIN_SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml");
const EDGE_SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi-edge.yaml");

/// Component schemas that describe no `api` type (served by one server only, built by hand).
const ORIGIN_ONLY: [&str; 4] = ["Health", "Ready", "Healthz", "RuntimeSettings"];
const EDGE_ONLY: [&str; 4] = ["TimeView", "EdgeHealth", "RegionsView", "RegionInfo"];

/// Fields whose Rust type is wider than what the contract promises (`ok` is always `true`, an
/// exit's `status` always `exited`): the documents may narrow these enums, nothing else.
const NARROWED: [&str; 6] = [
    "ExitView.ok",
    "ExitView.status",
    "EdgeExitView.ok",
    "EdgeExitView.status",
    "StopView.ok",
    "StopView.status",
];

fn load(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{path} is not valid YAML: {e}"))
}

#[tokio::test]
async fn every_documented_route_is_served_with_exactly_its_methods() {
    let spec = load(ORIGIN_SPEC);
    let paths = spec["paths"].as_object().expect("paths");
    assert_eq!(paths.len(), 25, "the origin serves 25 paths");
    let app = spawn_app("eu").await;
    let game = uuid::Uuid::new_v4().to_string();
    for (path, operations) in paths {
        let concrete = path
            .replace("{id}", &game)
            .replace("{userId}", "openapi-user")
            .replace("{name}", "openapi");
        for method in METHODS {
            let documented = operations.get(method).is_some();
            let request = app
                .client
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .header("content-type", "application/json")
                .body("{}");
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body = response.text().await.unwrap();
            if documented {
                assert_ne!(status, 405, "{method} {path} is documented but not served");
                assert!(
                    !body.contains("no such route") && !body.contains("no route for"),
                    "{method} {path} is documented but not routed"
                );
                assert!(status < 500, "{method} {path}: {status} {body}");
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served but not documented: {status} {body}"
                );
            }
        }
    }
    app.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The derived schemas.

/// `T`'s schema and those it refers to, by component name.
fn add<T: ToSchema>(out: &mut Vec<(String, RefOr<Schema>)>) {
    out.push((T::name().into_owned(), T::schema()));
    T::schemas(out);
}

/// Every contract type that derives `utoipa::ToSchema`, as JSON, by name.
fn derived() -> BTreeMap<String, Value> {
    let mut all = Vec::new();
    add::<UserId>(&mut all);
    add::<RegionName>(&mut all);
    add::<GameId>(&mut all);
    add::<TickMs>(&mut all);
    add::<BreakEvery>(&mut all);
    add::<Metadata>(&mut all);
    add::<ErrorCode>(&mut all);
    add::<ErrorDetail>(&mut all);
    add::<ErrorBody>(&mut all);
    add::<StartRequest>(&mut all);
    add::<ExitRequest>(&mut all);
    add::<GameStatus>(&mut all);
    add::<GameView>(&mut all);
    add::<RoutedBy>(&mut all);
    add::<EdgeGameView>(&mut all);
    add::<ExitView>(&mut all);
    add::<api::SharedGame>(&mut all);
    add::<api::JoinRequest>(&mut all);
    add::<api::SeatResult>(&mut all);
    add::<api::SeatView>(&mut all);
    add::<api::JoinView>(&mut all);
    add::<api::EdgeJoinView>(&mut all);
    add::<api::ResultsView>(&mut all);
    add::<api::Period>(&mut all);
    add::<api::LeaderboardEntry>(&mut all);
    add::<api::LeaderboardView>(&mut all);
    add::<api::MaxPlayers>(&mut all);
    add::<EdgeExitView>(&mut all);
    add::<TickView>(&mut all);
    add::<Phase>(&mut all);
    add::<StateView>(&mut all);
    add::<ReplayView>(&mut all);
    add::<RoundKey>(&mut all);
    add::<RoundsView>(&mut all);
    add::<Timestamp>(&mut all);
    add::<SessionId>(&mut all);
    add::<CreateSessionRequest>(&mut all);
    add::<SessionStatus>(&mut all);
    add::<SessionView>(&mut all);
    add::<SessionPhase>(&mut all);
    add::<SessionStateView>(&mut all);
    add::<StopView>(&mut all);
    add::<V1ErrorBody>(&mut all);
    add::<RegionStatus>(&mut all);
    add::<RegionLoad>(&mut all);
    add::<RegionRecord>(&mut all);
    add::<RegionList>(&mut all);
    add::<DrainView>(&mut all);
    add::<RegisterRequest>(&mut all);
    add::<LegacyRegion>(&mut all);
    add::<LegacyRegionList>(&mut all);
    let mut out = BTreeMap::new();
    for (name, schema) in all {
        let mut value = serde_json::to_value(schema).expect("a schema serializes");
        // The `/v1` dialect carries the engine's names; the game API also `sealed-v1`.
        let names: Vec<&str> = if name.contains("Session") {
            Algorithm::ALL.iter().map(|a| a.as_str()).collect()
        } else {
            api::GameAlgorithm::names()
        };
        with_algorithm_names(&mut value, &names);
        out.insert(name, value);
    }
    out
}

/// `algorithm` fields are serialized by hand (`api::algorithm`), so utoipa sees a plain
/// string; their values are the engine's names, which the documents must list exactly.
fn with_algorithm_names(schema: &mut Value, names: &[&str]) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(props)) = map.get_mut("properties")
                && let Some(Value::Object(algorithm)) = props.get_mut("algorithm")
                && !algorithm.contains_key("enum")
            {
                let names: Vec<Value> = names.iter().map(|a| json!(a)).collect();
                algorithm.insert("enum".into(), Value::Array(names));
            }
            map.values_mut()
                .for_each(|v| with_algorithm_names(v, names));
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|v| with_algorithm_names(v, names)),
        _ => {}
    }
}

// ---------------------------------------------------------------------------------------------
// A normal form of schemas, so that `$ref` vs inline, `allOf` (serde's flatten) and `oneOf`
// (tagged enums, nullable options) written either way compare equal.

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    /// A JSON scalar, or an object without declared properties (`Metadata`).
    Scalar {
        ty: String,
        enumeration: Option<BTreeSet<String>>,
        format: Option<String>,
        pattern: Option<String>,
    },
    Array(Box<Shape>),
    /// An object; several variants for a `oneOf` of objects (a tagged enum).
    Object(Vec<Variant>),
}

#[derive(Debug, Clone, PartialEq, Default)]
struct Variant {
    properties: BTreeMap<String, Shape>,
    required: BTreeSet<String>,
}

/// Component schemas by name, to resolve `#/components/schemas/...`.
struct Components<'a>(&'a Map<String, Value>);

impl Components<'_> {
    fn normalize(&self, schema: &Value, depth: usize) -> Result<Shape, String> {
        if depth > 32 {
            return Err("schema nests too deep (a reference cycle?)".into());
        }
        let Some(map) = schema.as_object() else {
            return Err(format!("not a schema: {schema}"));
        };
        if let Some(reference) = map.get("$ref").and_then(Value::as_str) {
            let name = reference
                .strip_prefix("#/components/schemas/")
                .ok_or_else(|| format!("unsupported $ref {reference}"))?;
            let target = self
                .0
                .get(name)
                .ok_or_else(|| format!("$ref to a missing schema {name}"))?;
            return self.normalize(target, depth + 1);
        }
        if let Some(parts) = map.get("allOf").and_then(Value::as_array) {
            let mut merged = vec![Variant::default()];
            for part in parts {
                let Shape::Object(variants) = self.normalize(part, depth + 1)? else {
                    return Err("allOf of something that is not an object".into());
                };
                let mut next = Vec::new();
                for left in &merged {
                    for right in &variants {
                        next.push(merge(left, right)?);
                    }
                }
                merged = next;
            }
            return Ok(Shape::Object(merged));
        }
        if let Some(members) = map
            .get("oneOf")
            .or_else(|| map.get("anyOf"))
            .and_then(Value::as_array)
        {
            // A `{"type": "null"}` member only says "may be null": serialization skips those.
            let members: Vec<&Value> = members.iter().filter(|m| !is_null(m)).collect();
            if let [only] = members.as_slice() {
                return self.normalize(only, depth + 1);
            }
            let mut variants = Vec::new();
            for member in members {
                match self.normalize(member, depth + 1)? {
                    Shape::Object(v) => variants.extend(v),
                    other => return Err(format!("oneOf of a non-object: {other:?}")),
                }
            }
            return Ok(Shape::Object(variants));
        }
        let ty = match map.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(types)) => {
                let types: Vec<&str> = types
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "null")
                    .collect();
                match types.as_slice() {
                    [t] => (*t).to_owned(),
                    _ => return Err(format!("ambiguous type {types:?}")),
                }
            }
            None if map.contains_key("properties") => "object".to_owned(),
            _ => return Err(format!("schema without a type: {schema}")),
        };
        match ty.as_str() {
            "object" if map.contains_key("properties") => {
                let mut variant = Variant::default();
                if let Some(props) = map.get("properties").and_then(Value::as_object) {
                    for (name, prop) in props {
                        let shape = self
                            .normalize(prop, depth + 1)
                            .map_err(|e| format!("{name}: {e}"))?;
                        variant.properties.insert(name.clone(), shape);
                    }
                }
                if let Some(required) = map.get("required").and_then(Value::as_array) {
                    variant.required = required
                        .iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect();
                }
                Ok(Shape::Object(vec![variant]))
            }
            "array" => {
                let items = map.get("items").ok_or("array without items")?;
                Ok(Shape::Array(Box::new(self.normalize(items, depth + 1)?)))
            }
            _ => {
                let enumeration = map.get("enum").and_then(Value::as_array).map(|values| {
                    values
                        .iter()
                        .filter(|v| !v.is_null())
                        .map(Value::to_string)
                        .collect()
                });
                // Integer formats (int32/int64) only tell sizes, which the ranges say better;
                // string formats (uuid, date-time) and patterns are the contract.
                let text = |key: &str| {
                    (ty == "string")
                        .then(|| map.get(key).and_then(Value::as_str).map(str::to_owned))
                        .flatten()
                };
                Ok(Shape::Scalar {
                    format: text("format"),
                    pattern: text("pattern"),
                    ty,
                    enumeration,
                })
            }
        }
    }
}

fn is_null(schema: &Value) -> bool {
    schema.get("type").and_then(Value::as_str) == Some("null")
}

/// The object with the properties of both (serde's `flatten`).
fn merge(left: &Variant, right: &Variant) -> Result<Variant, String> {
    let mut out = left.clone();
    for (name, shape) in &right.properties {
        if let Some(existing) = out.properties.get(name)
            && existing != shape
        {
            return Err(format!("allOf declares {name} twice, differently"));
        }
        out.properties.insert(name.clone(), shape.clone());
    }
    out.required.extend(right.required.iter().cloned());
    Ok(out)
}

fn describe(shape: &Shape) -> String {
    match shape {
        Shape::Scalar { ty, .. } => ty.clone(),
        Shape::Array(_) => "array".into(),
        Shape::Object(v) if v.len() == 1 => "object".into(),
        Shape::Object(v) => format!("oneOf of {} objects", v.len()),
    }
}

/// The property whose single-valued enum tells the variants of a tagged enum apart.
fn tag_of(variant: &Variant, key: &str) -> Option<String> {
    match variant.properties.get(key) {
        Some(Shape::Scalar {
            enumeration: Some(values),
            ..
        }) if values.len() == 1 => values.iter().next().cloned(),
        _ => None,
    }
}

fn discriminator(variants: &[&Variant]) -> Option<String> {
    let first = variants.first()?;
    first
        .properties
        .keys()
        .find(|key| variants.iter().all(|v| tag_of(v, key).is_some()))
        .cloned()
}

/// Differences between the document's shape and the derived one, each naming `path`.
fn compare(doc: &Shape, derived: &Shape, path: &str, errors: &mut Vec<String>) {
    match (doc, derived) {
        (
            Shape::Scalar {
                ty: doc_ty,
                enumeration: doc_enum,
                format: doc_format,
                pattern: doc_pattern,
            },
            Shape::Scalar {
                ty,
                enumeration,
                format,
                pattern,
            },
        ) => {
            if doc_ty != ty {
                errors.push(format!(
                    "{path}: type {doc_ty} in the document, {ty} in the api type"
                ));
                return;
            }
            let narrowed = NARROWED.contains(&path);
            match (doc_enum, enumeration) {
                (Some(d), Some(a)) if d == a => {}
                (Some(d), Some(a)) if narrowed && !d.is_empty() && d.is_subset(a) => {}
                (Some(d), None) if narrowed && !d.is_empty() => {}
                (None, None) => {}
                (d, a) => errors.push(format!(
                    "{path}: enum {} in the document, {} in the api type",
                    show(d.as_ref()),
                    show(a.as_ref())
                )),
            }
            if format.is_some() && doc_format != format {
                errors.push(format!(
                    "{path}: format {doc_format:?} in the document, {format:?} in the api type"
                ));
            }
            if pattern.is_some() && doc_pattern != pattern {
                errors.push(format!(
                    "{path}: pattern {doc_pattern:?} in the document, {pattern:?} in the api type"
                ));
            }
        }
        (Shape::Array(doc_items), Shape::Array(items)) => {
            compare(doc_items, items, &format!("{path}[]"), errors);
        }
        (Shape::Object(doc_variants), Shape::Object(variants)) => {
            if doc_variants.len() != variants.len() {
                errors.push(format!(
                    "{path}: {} variant(s) in the document, {} in the api type",
                    doc_variants.len(),
                    variants.len()
                ));
                return;
            }
            if let [doc_variant, variant] = [&doc_variants[0], &variants[0]]
                && variants.len() == 1
            {
                compare_variant(doc_variant, variant, path, errors);
                return;
            }
            let all: Vec<&Variant> = doc_variants.iter().chain(variants).collect();
            let Some(key) = discriminator(&all) else {
                errors.push(format!(
                    "{path}: a oneOf without a common single-valued tag property"
                ));
                return;
            };
            for variant in variants {
                let tag = tag_of(variant, &key).unwrap_or_default();
                let vpath = format!("{path}[{key}={}]", tag.trim_matches('"'));
                match doc_variants
                    .iter()
                    .find(|d| tag_of(d, &key).as_deref() == Some(tag.as_str()))
                {
                    Some(doc_variant) => compare_variant(doc_variant, variant, &vpath, errors),
                    None => errors.push(format!("{vpath}: variant missing in the document")),
                }
            }
        }
        (doc, derived) => errors.push(format!(
            "{path}: {} in the document, {} in the api type",
            describe(doc),
            describe(derived)
        )),
    }
}

fn compare_variant(doc: &Variant, derived: &Variant, path: &str, errors: &mut Vec<String>) {
    for name in derived.properties.keys() {
        if !doc.properties.contains_key(name) {
            errors.push(format!(
                "{path}.{name}: field of the api type missing in the document"
            ));
        }
    }
    for name in doc.properties.keys() {
        if !derived.properties.contains_key(name) {
            errors.push(format!(
                "{path}.{name}: field in the document that the api type does not have"
            ));
        }
    }
    for name in derived.required.symmetric_difference(&doc.required) {
        let (is, is_not) = if derived.required.contains(name) {
            ("the api type", "the document")
        } else {
            ("the document", "the api type")
        };
        errors.push(format!(
            "{path}.{name}: required in {is} but not in {is_not}"
        ));
    }
    for (name, shape) in &derived.properties {
        if let Some(doc_shape) = doc.properties.get(name) {
            compare(doc_shape, shape, &format!("{path}.{name}"), errors);
        }
    }
}

fn show(values: Option<&BTreeSet<String>>) -> String {
    match values {
        None => "(none)".into(),
        Some(v) => format!("[{}]", v.iter().cloned().collect::<Vec<_>>().join(", ")),
    }
}

/// Compares every component schema of `spec` named after an api type; other names must be in
/// `others`. Returns the differences.
fn check_spec(spec: &Value, others: &[&str], derived: &BTreeMap<String, Value>) -> Vec<String> {
    let Some(doc_schemas) = spec["components"]["schemas"].as_object() else {
        return vec!["no components/schemas".into()];
    };
    let derived_map: Map<String, Value> = derived
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let (doc_components, api_components) = (Components(doc_schemas), Components(&derived_map));
    let mut errors = Vec::new();
    for (name, doc_schema) in doc_schemas {
        let Some(api_schema) = derived.get(name) else {
            if !others.contains(&name.as_str()) {
                errors.push(format!(
                    "{name}: not an api type; name the schema after one, or list it as served by one server only"
                ));
            } else if let Err(e) = doc_components.normalize(doc_schema, 0) {
                errors.push(format!("{name}: {e}"));
            }
            continue;
        };
        let doc_shape = match doc_components.normalize(doc_schema, 0) {
            Ok(shape) => shape,
            Err(e) => {
                errors.push(format!("{name}: {e}"));
                continue;
            }
        };
        let api_shape = api_components
            .normalize(api_schema, 0)
            .unwrap_or_else(|e| panic!("the derived schema of {name}: {e}"));
        compare(&doc_shape, &api_shape, name, &mut errors);
    }
    errors
}

/// Every `$ref` of the document points at a component it has.
fn dangling_refs(spec: &Value) -> Vec<String> {
    fn walk(value: &Value, spec: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("$ref") {
                    let pointer = reference.trim_start_matches('#');
                    if !reference.starts_with("#/") || spec.pointer(pointer).is_none() {
                        out.push(format!("$ref {reference} points nowhere"));
                    }
                }
                map.values().for_each(|v| walk(v, spec, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, spec, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(spec, spec, &mut out);
    out
}

fn assert_clean(file: &str, errors: &[String]) {
    assert!(
        errors.is_empty(),
        "{file} differs from the api crate:\n  {}\n(the api crate is the source of truth: fix the document, or change the type and then the document)",
        errors.join("\n  ")
    );
}

#[test]
fn origin_document_matches_the_api_types() {
    let spec = load(ORIGIN_SPEC);
    let mut errors = dangling_refs(&spec);
    errors.extend(check_spec(&spec, &ORIGIN_ONLY, &derived()));
    assert_clean("docs/openapi.yaml", &errors);
}

#[test]
fn edge_document_matches_the_api_types() {
    let spec = load(EDGE_SPEC);
    let mut errors = dangling_refs(&spec);
    errors.extend(check_spec(&spec, &EDGE_ONLY, &derived()));
    assert_clean("docs/openapi-edge.yaml", &errors);
}

#[test]
fn every_api_type_is_documented() {
    let mut documented = BTreeSet::new();
    for path in [ORIGIN_SPEC, EDGE_SPEC] {
        if let Some(schemas) = load(path)["components"]["schemas"].as_object() {
            documented.extend(schemas.keys().cloned());
        }
    }
    let missing: Vec<String> = derived()
        .into_keys()
        .filter(|name| !documented.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "api types no document describes: {missing:?}"
    );
    // The edge's own document carries what the edge answers.
    let edge = load(EDGE_SPEC);
    for name in ["EdgeGameView", "EdgeExitView", "StateView", "ErrorBody"] {
        assert!(
            edge["components"]["schemas"].get(name).is_some(),
            "docs/openapi-edge.yaml lacks {name}"
        );
    }
}

/// The comparison is not vacuous: mutated documents are caught, naming type and field.
#[test]
fn drift_is_detected() {
    let derived = derived();
    let spec = load(ORIGIN_SPEC);
    let mutate = |pointer: &str, change: &dyn Fn(&mut Value)| {
        let mut copy = spec.clone();
        change(copy.pointer_mut(pointer).expect(pointer));
        check_spec(&copy, &ORIGIN_ONLY, &derived)
    };
    let expect = |errors: Vec<String>, needle: &str| {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "expected an error about {needle}, got {errors:#?}"
        );
    };
    let game = "/components/schemas/GameView";
    expect(
        mutate(game, &|s| {
            s["properties"].as_object_mut().unwrap().remove("seed");
        }),
        "GameView.seed: field of the api type missing",
    );
    expect(
        mutate(game, &|s| {
            s["properties"]["tickMs"] = json!({"type": "string"})
        }),
        "GameView.tickMs: type string in the document, integer in the api type",
    );
    expect(
        mutate(game, &|s| {
            s["properties"]["bogus"] = json!({"type": "string"})
        }),
        "GameView.bogus: field in the document",
    );
    expect(
        mutate(game, &|s| {
            s["required"]
                .as_array_mut()
                .unwrap()
                .retain(|f| f != "seed");
        }),
        "GameView.seed: required in the api type but not in the document",
    );
    expect(
        mutate(game, &|s| {
            s["properties"]["algorithm"]["enum"] = json!(["md5"])
        }),
        "GameView.algorithm: enum",
    );
    expect(
        mutate("/components/schemas/ErrorCode", &|s| {
            s["enum"].as_array_mut().unwrap().pop();
        }),
        "ErrorCode: enum",
    );
    expect(
        mutate("/components/schemas/Phase", &|s| {
            s["oneOf"][1]["properties"]["step"] = json!({"type": "string"});
        }),
        "Phase[phase=running].step: type string",
    );
    // Through a $ref: UserId's pattern reaches every field that uses it.
    expect(
        mutate("/components/schemas/UserId", &|s| {
            s["pattern"] = json!("^.*$")
        }),
        "GameView.userId: pattern",
    );
    // Only the listed fields may narrow an enum.
    expect(
        mutate(game, &|s| {
            s["properties"]["status"] = json!({"type": "string", "enum": ["active"]});
        }),
        "GameView.status: enum",
    );
    // Through serde's flatten (allOf) in the edge's document.
    let mut edge = load(EDGE_SPEC);
    edge.pointer_mut("/components/schemas/EdgeGameView/allOf/1/properties")
        .and_then(Value::as_object_mut)
        .expect("EdgeGameView's own properties")
        .remove("backendRegion");
    expect(
        check_spec(&edge, &EDGE_ONLY, &derived),
        "EdgeGameView.backendRegion: field of the api type missing",
    );
    // (That the unmutated documents are clean is origin_document_matches_the_api_types.)
}
