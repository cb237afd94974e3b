//! Reading action params: typed access that names the input at fault, and a check that
//! collects every missing input so that one 400 names them all (in the spirit of the App
//! Builder template's `checkMissingRequestInputs`).

use serde_json::{Map, Value};

use crate::error::Error;

/// What an input holds, which decides how it is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An identifier that may end up in a header or URL: trimmed, no whitespace or control
    /// characters, at most 1 KiB.
    Id,
    /// A secret: no control characters, at most 4 KiB.
    Secret,
    /// Free text (keys, JSON, lists) up to the given number of bytes.
    Text(usize),
}

const MAX_ID: usize = 1024;
const MAX_SECRET: usize = 4096;

/// Read-only view of the params object.
#[derive(Clone, Copy)]
pub struct Params<'a> {
    map: &'a Map<String, Value>,
}

impl<'a> Params<'a> {
    /// Wraps a params object.
    pub fn new(map: &'a Map<String, Value>) -> Params<'a> {
        Params { map }
    }

    /// The raw value, if present.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    /// True when the input is present and not null or a blank string.
    pub fn has(&self, name: &str) -> bool {
        self.map.get(name).is_some_and(is_given)
    }

    /// A string input checked as `kind`. Absent, null or blank → `Ok(None)`.
    pub fn string(&self, name: &str, kind: Kind) -> Result<Option<&'a str>, Error> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => check_string(name, s, kind),
            Some(other) => Err(Error::invalid(
                name,
                format!("must be a string, not {}", json_type(other)),
            )),
        }
    }

    /// A non-negative integer input given as a number or a numeric string.
    pub fn integer(&self, name: &str) -> Result<Option<u64>, Error> {
        let bad = || Error::invalid(name, "must be a non-negative whole number");
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_u64().map(Some).ok_or_else(bad),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| bad()),
            Some(_) => Err(bad()),
        }
    }
}

/// Whether a value counts as given: not null and not a blank string (what aio makes of an unset
/// `$VAR` is "", and the action treats "" as absent).
pub fn is_given(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

/// Checks one string against its kind. Blank → `Ok(None)`.
pub fn check_string<'s>(name: &str, s: &'s str, kind: Kind) -> Result<Option<&'s str>, Error> {
    let s = match kind {
        Kind::Id => s.trim(),
        Kind::Secret | Kind::Text(_) => s,
    };
    if s.trim().is_empty() {
        return Ok(None);
    }
    let max = match kind {
        Kind::Id => MAX_ID,
        Kind::Secret => MAX_SECRET,
        Kind::Text(max) => max,
    };
    if s.len() > max {
        return Err(Error::invalid(
            name,
            format!("is too long ({} bytes; at most {max})", s.len()),
        ));
    }
    match kind {
        Kind::Id if s.chars().any(|c| c.is_control() || c.is_whitespace()) => Err(Error::invalid(
            name,
            "must not contain spaces, line breaks or control characters",
        )),
        Kind::Secret if s.chars().any(char::is_control) => Err(Error::invalid(
            name,
            "must not contain line breaks or control characters",
        )),
        Kind::Text(_) if s.contains('\0') => Err(Error::invalid(name, "must not contain NUL characters")),
        _ => Ok(Some(s)),
    }
}

/// The JSON type of a value, for messages.
pub fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Collects missing and badly typed inputs, so that one answer names all of them.
pub struct InputCheck<'a> {
    params: Params<'a>,
    missing: Vec<String>,
    invalid: Vec<Error>,
    hints: Vec<String>,
}

impl<'a> InputCheck<'a> {
    /// Starts a check over `params`.
    pub fn new(params: Params<'a>) -> InputCheck<'a> {
        InputCheck {
            params,
            missing: Vec::new(),
            invalid: Vec::new(),
            hints: Vec::new(),
        }
    }

    /// A required input; records it as missing or invalid and returns `""` when it is unusable.
    pub fn required(&mut self, name: &str, kind: Kind) -> &'a str {
        match self.params.string(name, kind) {
            Ok(Some(s)) => s,
            Ok(None) => {
                self.missing.push(name.to_string());
                ""
            }
            Err(e) => {
                self.invalid.push(e);
                ""
            }
        }
    }

    /// An optional input; records it as invalid when it is of the wrong type.
    pub fn optional(&mut self, name: &str, kind: Kind) -> Option<&'a str> {
        match self.params.string(name, kind) {
            Ok(v) => v,
            Err(e) => {
                self.invalid(e);
                None
            }
        }
    }

    /// Records a name as missing (for inputs found by other means).
    pub fn missing(&mut self, name: impl Into<String>) {
        self.missing.push(name.into());
    }

    /// Records an invalid input found by other means.
    pub fn invalid(&mut self, error: Error) {
        // Inputs read by two parts (IMS_ORG_ID: the credential and the operation) are named once.
        if !self.invalid.contains(&error) {
            self.invalid.push(error);
        }
    }

    /// Guidance shown after the missing names (what each method or operation needs).
    pub fn hint(&mut self, hint: impl Into<String>) {
        self.hints.push(hint.into());
    }

    /// The params being checked.
    pub fn params(&self) -> Params<'a> {
        self.params
    }

    /// How many inputs are missing or invalid so far.
    pub fn problems(&self) -> usize {
        self.missing.len() + self.invalid.len()
    }

    /// True when nothing is missing or invalid so far.
    pub fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.invalid.is_empty()
    }

    /// Ends the check. Missing inputs win (with type errors and hints appended);
    /// otherwise the first invalid input.
    pub fn finish(self) -> Result<(), Error> {
        let mut invalid = self.invalid.into_iter();
        if self.missing.is_empty() {
            return invalid.next().map_or(Ok(()), Err);
        }
        let mut notes: Vec<String> = invalid.map(|e| e.to_string()).collect();
        notes.extend(self.hints);
        Err(Error::MissingInputs {
            names: self.missing,
            hint: (!notes.is_empty()).then(|| notes.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn empty_and_null_count_as_missing_but_zero_is_a_wrong_type() {
        let m = map(json!({"A": "", "B": null, "C": 0, "D": "  x "}));
        let mut c = InputCheck::new(Params::new(&m));
        assert_eq!(c.required("A", Kind::Id), "");
        c.required("B", Kind::Id);
        c.required("C", Kind::Id);
        assert_eq!(c.required("D", Kind::Id), "x");
        c.required("E", Kind::Id);
        let e = c.finish().unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing parameter(s) 'A,B,E': invalid parameter 'C': must be a string, not a number"
        );
    }

    #[test]
    fn a_wrong_type_alone_is_named() {
        let m = map(json!({"IMS_ORG_ID": {"x": 1}}));
        let mut c = InputCheck::new(Params::new(&m));
        c.required("IMS_ORG_ID", Kind::Id);
        let e = c.finish().unwrap_err();
        assert_eq!(e.status_code(), 400);
        assert_eq!(
            e.to_string(),
            "invalid parameter 'IMS_ORG_ID': must be a string, not an object"
        );
    }

    #[test]
    fn ids_refuse_line_breaks_and_huge_values() {
        assert!(check_string("X", "a\r\nb", Kind::Id).is_err());
        assert!(check_string("X", &"a".repeat(2000), Kind::Id).is_err());
        assert!(check_string("X", "se\ncret", Kind::Secret).is_err());
        assert_eq!(
            check_string("X", "-----BEGIN\nx", Kind::Text(100)).unwrap(),
            Some("-----BEGIN\nx")
        );
    }

    #[test]
    fn integers_accept_numbers_and_numeric_strings() {
        let m = map(json!({"A": 5, "B": " 7 ", "C": -1, "D": "x"}));
        let p = Params::new(&m);
        assert_eq!(p.integer("A").unwrap(), Some(5));
        assert_eq!(p.integer("B").unwrap(), Some(7));
        assert!(p.integer("C").is_err());
        assert!(p.integer("D").is_err());
        assert_eq!(p.integer("Z").unwrap(), None);
    }
}
