//! A request checked against Google's compute v1 discovery document (the one
//! google-api-python-client ships, `googleapiclient/discovery_cache/documents/compute.v1.json`):
//! the HTTP method and path template of the method, its required path parameters, that every
//! query parameter is one of the method's, that the fields the schema marks required for the
//! method are there, and that every field of the body exists in the schema (recursively:
//! nested objects, array items, `additionalProperties` maps) with the right JSON type and, where
//! the schema has an `enum`, one of its values.

use std::path::PathBuf;

use serde_json::Value;

use fixtures::emulators::compute::Recorded;

/// The discovery document installed by `scripts/deps.sh`, or `None` (skipped, or failed under
/// `NODEIMG_REQUIRE_TOOLS`).
pub fn document() -> Option<Value> {
    let lib = fixtures::emulators::emulators_dir().join("venv/lib");
    let found: Option<PathBuf> = std::fs::read_dir(&lib).ok().and_then(|d| {
        d.filter_map(|e| e.ok())
            .map(|e| {
                e.path()
                    .join("site-packages/googleapiclient/discovery_cache/documents/compute.v1.json")
            })
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()),
        None => {
            fixtures::tools::skip(&format!(
                "google-api-python-client's compute.v1.json is not under {} (bash scripts/deps.sh installs it)",
                lib.display()
            ));
            None
        }
    }
}

/// Every way `req` differs from method `resource.method` (`images.insert`) of `doc`.
pub fn check(doc: &Value, resource: &str, method: &str, req: &Recorded) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(m) = doc.pointer(&format!("/resources/{resource}/methods/{method}")) else {
        return vec![format!("no method {resource}.{method} in the document")];
    };
    let want = m["httpMethod"].as_str().unwrap_or_default();
    if req.method != want {
        errors.push(format!(
            "method {} where the document says {want}",
            req.method
        ));
    }
    // The path: the document's servicePath + path template.
    let (path, query) = req.target.split_once('?').unwrap_or((&req.target, ""));
    let template = format!(
        "/{}{}",
        doc["servicePath"].as_str().unwrap_or_default(),
        m["path"].as_str().unwrap_or_default()
    );
    let params = &m["parameters"];
    let got: Vec<&str> = path.split('/').collect();
    let tpl: Vec<&str> = template.split('/').collect();
    if got.len() == tpl.len() {
        for (g, t) in got.iter().zip(&tpl) {
            if let Some(name) = t.strip_prefix('{').and_then(|t| t.strip_suffix('}')) {
                let p = &params[name];
                if p["location"] != "path" {
                    errors.push(format!("{{{name}}} is not a path parameter"));
                }
                if g.is_empty() {
                    errors.push(format!("path parameter {name} is empty"));
                }
                if let Some(pattern) = p["pattern"].as_str() {
                    let ok = regex_lite_match(pattern, g);
                    if !ok {
                        errors.push(format!(
                            "path parameter {name}={g} does not match {pattern}"
                        ));
                    }
                }
            } else if g != t {
                errors.push(format!(
                    "path {path} does not match the template {template}"
                ));
                break;
            }
        }
    } else {
        errors.push(format!(
            "path {path} does not match the template {template}"
        ));
    }
    for required in m["parameterOrder"].as_array().into_iter().flatten() {
        let r = required.as_str().unwrap_or_default();
        if !tpl.contains(&format!("{{{r}}}").as_str()) && !query.contains(&format!("{r}=")) {
            errors.push(format!("required parameter {r} is missing"));
        }
    }
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let key = pair.split('=').next().unwrap_or_default();
        if params[key]["location"] != "query" {
            errors.push(format!("query parameter {key} is not one of the method's"));
        }
    }
    // The body.
    match m.pointer("/request/$ref").and_then(Value::as_str) {
        Some(schema) => {
            let body: Value = match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => return [errors, vec![format!("the body is not JSON: {e}")]].concat(),
            };
            let id = m["id"].as_str().unwrap_or_default();
            required_fields(doc, schema, id, &body, &mut errors);
            value(doc, &json_ref(schema), &body, schema, &mut errors);
        }
        None if !req.body.is_empty() => errors.push("a body where the method takes none".into()),
        None => {}
    }
    errors
}

fn json_ref(name: &str) -> Value {
    serde_json::json!({ "$ref": name })
}

/// Fields annotated `required: [<method id>]` in the schema must be there.
fn required_fields(doc: &Value, schema: &str, id: &str, body: &Value, errors: &mut Vec<String>) {
    let props = doc.pointer(&format!("/schemas/{schema}/properties"));
    for (k, p) in props.and_then(Value::as_object).into_iter().flatten() {
        let required = p
            .pointer("/annotations/required")
            .and_then(Value::as_array)
            .is_some_and(|r| r.iter().any(|m| m == id));
        if required && body.get(k).is_none() {
            errors.push(format!("{schema}.{k} is required by {id} and missing"));
        }
    }
}

/// Checks `v` at `at` against schema `s` (a `$ref` or an inline schema).
fn value(doc: &Value, s: &Value, v: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(r) = s.get("$ref").and_then(Value::as_str) {
        match doc.pointer(&format!("/schemas/{r}")) {
            Some(target) => value(doc, target, v, at, errors),
            None => errors.push(format!("{at}: schema {r} is not in the document")),
        }
        return;
    }
    let ty = s["type"].as_str().unwrap_or_default();
    let ok = match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "array" => v.is_array(),
        "object" => v.is_object(),
        "any" => true,
        other => {
            errors.push(format!(
                "{at}: the document's type {other:?} is not known here"
            ));
            return;
        }
    };
    if !ok {
        errors.push(format!("{at}: {v} is not of type {ty}"));
        return;
    }
    if let (Some(allowed), Some(got)) = (s["enum"].as_array(), v.as_str())
        && !allowed.iter().any(|a| a == got)
    {
        errors.push(format!("{at}: {got:?} is not one of the enum's values"));
    }
    if let (Some(pattern), Some(got)) = (s["pattern"].as_str(), v.as_str())
        && !regex_lite_match(pattern, got)
    {
        errors.push(format!("{at}: {got:?} does not match {pattern}"));
    }
    match ty {
        "array" => {
            for (i, item) in v.as_array().into_iter().flatten().enumerate() {
                value(doc, &s["items"], item, &format!("{at}[{i}]"), errors);
            }
        }
        "object" => {
            let props = s["properties"].as_object();
            let extra = s.get("additionalProperties");
            for (k, item) in v.as_object().into_iter().flatten() {
                let here = format!("{at}.{k}");
                match (props.and_then(|p| p.get(k)), extra) {
                    (Some(p), _) => value(doc, p, item, &here, errors),
                    (None, Some(e)) => value(doc, e, item, &here, errors),
                    (None, None) => errors.push(format!("{here}: no such field in the schema")),
                }
            }
        }
        _ => {}
    }
}

/// Whether `text` matches the document's path parameter `pattern` whole.
fn regex_lite_match(pattern: &str, text: &str) -> bool {
    regex::Regex::new(&format!("^(?:{pattern})$"))
        .unwrap()
        .is_match(text)
}
