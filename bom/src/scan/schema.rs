//! Where a feed's JSON is wrong: a [`SchemaError`] names the place as a JSON path
//! (`` `bash`.`CVE-1`.`releases` ``) and the fault. Shared by the feed detector ([`super::feed`])
//! and the parsers of each kind ([`super::osv`], [`super::debian_tracker`]).

use serde_json::Value;

/// A schema fault inside a feed: where (a JSON path such as `` `bash`.`CVE-1`.`releases` ``)
/// and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaError(pub String);

impl SchemaError {
    /// `at`: `what`.
    pub fn at(at: &str, what: impl std::fmt::Display) -> Self {
        if at.is_empty() {
            Self(what.to_string())
        } else {
            Self(format!("{at}: {what}"))
        }
    }
}

/// Appends a key to a JSON path.
pub(crate) fn join(at: &str, key: &str) -> String {
    if at.is_empty() {
        format!("`{key}`")
    } else {
        format!("{at}.`{key}`")
    }
}

/// Appends an array index to a JSON path.
pub(crate) fn index(at: &str, i: usize) -> String {
    format!("{at}[{i}]")
}

/// The JSON type of `v`, for messages.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
