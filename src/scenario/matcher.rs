//! Matchers as written in a scenario: a scalar (equality) or `{eq, ne, matches, …}`.
//!
//! Parsing lives here (pure); evaluating lives in `check::matcher`.

use super::ScenarioError;
use std::fmt;

use regex::Regex;
use serde_json::Value;

/// Every matcher name a mapping may use.
pub const MATCHER_NAMES: &[&str] = &[
    "eq",
    "ne",
    "matches",
    "contains",
    "starts_with",
    "one_of",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "len",
    "type",
    "not",
];

/// JSON types the `type` matcher names.
pub const TYPE_NAMES: &[&str] = &["string", "number", "boolean", "null", "object", "array"];

/// A predicate over one JSON value (or its absence).
#[derive(Debug, Clone)]
pub enum Matcher {
    Eq(Value),
    Ne(Value),
    Matches(Regex),
    Contains(Value),
    StartsWith(String),
    OneOf(Vec<Value>),
    Exists(bool),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
    Len(Box<Matcher>),
    Type(String),
    Not(Box<Matcher>),
    /// A mapping with several matchers: every one must hold.
    All(Vec<Matcher>),
}

impl Matcher {
    /// Reads a matcher from its YAML form.
    pub fn parse(value: &Value) -> Result<Matcher, ScenarioError> {
        let Value::Object(map) = value else {
            return Ok(Matcher::Eq(value.clone()));
        };
        if map.is_empty() {
            return Err(ScenarioError::Matcher(format!(
                "an empty mapping is not a matcher: use one of {}",
                MATCHER_NAMES.join(", ")
            )));
        }
        let mut all = Vec::with_capacity(map.len());
        for (name, arg) in map {
            all.push(Self::parse_one(name, arg)?);
        }
        Ok(if all.len() == 1 {
            all.remove(0)
        } else {
            Matcher::All(all)
        })
    }

    fn parse_one(name: &str, arg: &Value) -> Result<Matcher, ScenarioError> {
        let number = |arg: &Value| {
            number_of(arg).ok_or_else(|| {
                ScenarioError::Matcher(format!("`{name}` takes a number, not {}", describe(arg)))
            })
        };
        Ok(match name {
            "eq" => Matcher::Eq(arg.clone()),
            "ne" => Matcher::Ne(arg.clone()),
            "matches" => {
                let Value::String(pattern) = arg else {
                    return Err(ScenarioError::Matcher(format!(
                        "`matches` takes a regex string, not {}",
                        describe(arg)
                    )));
                };
                Matcher::Matches(Regex::new(pattern).map_err(|e| {
                    // The regex crate draws the pattern over several lines; its last line
                    // says what is wrong.
                    let text = e.to_string();
                    let reason = text
                        .lines()
                        .rev()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("");
                    let reason = reason.trim().trim_start_matches("error: ");
                    ScenarioError::Matcher(format!("invalid regex `{pattern}`: {reason}"))
                })?)
            }
            "contains" => Matcher::Contains(arg.clone()),
            "starts_with" => match arg {
                Value::String(prefix) => Matcher::StartsWith(prefix.clone()),
                _ => {
                    return Err(ScenarioError::Matcher(format!(
                        "`starts_with` takes a string, not {}",
                        describe(arg)
                    )));
                }
            },
            "one_of" => match arg {
                Value::Array(items) => Matcher::OneOf(items.clone()),
                _ => {
                    return Err(ScenarioError::Matcher(format!(
                        "`one_of` takes a list, not {}",
                        describe(arg)
                    )));
                }
            },
            "exists" => match arg {
                Value::Bool(b) => Matcher::Exists(*b),
                _ => {
                    return Err(ScenarioError::Matcher(format!(
                        "`exists` takes true or false, not {}",
                        describe(arg)
                    )));
                }
            },
            "gt" => Matcher::Gt(number(arg)?),
            "gte" => Matcher::Gte(number(arg)?),
            "lt" => Matcher::Lt(number(arg)?),
            "lte" => Matcher::Lte(number(arg)?),
            "len" => Matcher::Len(Box::new(Matcher::parse(arg)?)),
            "type" => match arg {
                Value::String(t) if TYPE_NAMES.contains(&t.as_str()) => Matcher::Type(t.clone()),
                _ => {
                    let hint = arg
                        .as_str()
                        .and_then(|t| crate::scenario::did_you_mean(t, TYPE_NAMES.iter().copied()))
                        .map(|t| format!(" (did you mean `{t}`?)"))
                        .unwrap_or_default();
                    return Err(ScenarioError::Matcher(format!(
                        "`type` takes one of {}, not {}{hint}",
                        TYPE_NAMES.join(", "),
                        describe(arg)
                    )));
                }
            },
            "not" => Matcher::Not(Box::new(Matcher::parse(arg)?)),
            other => {
                let hint = crate::scenario::did_you_mean(other, MATCHER_NAMES.iter().copied())
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                return Err(ScenarioError::Matcher(format!(
                    "unknown matcher `{other}`{hint}; matchers are {}",
                    MATCHER_NAMES.join(", ")
                )));
            }
        })
    }
}

/// A number, or a string that reads as one (YAML authors often quote amounts).
pub fn number_of(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A short description of a JSON value for messages: `string "x"`, `number 3`, `null`.
pub fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", Value::String(s.clone())),
        Value::Array(_) => format!("array {value}"),
        Value::Object(_) => format!("object {value}"),
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Matcher::Eq(v) => write!(f, "{v}"),
            Matcher::Ne(v) => write!(f, "ne {v}"),
            Matcher::Matches(r) => write!(f, "matches /{}/", r.as_str()),
            Matcher::Contains(v) => write!(f, "contains {v}"),
            Matcher::StartsWith(s) => write!(f, "starts_with {}", Value::String(s.clone())),
            Matcher::OneOf(items) => write!(f, "one_of {}", Value::Array(items.clone())),
            Matcher::Exists(b) => write!(f, "exists {b}"),
            Matcher::Gt(n) => write!(f, "> {n}"),
            Matcher::Gte(n) => write!(f, ">= {n}"),
            Matcher::Lt(n) => write!(f, "< {n}"),
            Matcher::Lte(n) => write!(f, "<= {n}"),
            Matcher::Len(m) => write!(f, "len {m}"),
            Matcher::Type(t) => write!(f, "type {t}"),
            Matcher::Not(m) => write!(f, "not ({m})"),
            Matcher::All(all) => {
                let parts: Vec<String> = all.iter().map(|m| m.to_string()).collect();
                write!(f, "{}", parts.join(" and "))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_scalar_is_equality() {
        assert!(matches!(Matcher::parse(&json!("1.50")), Ok(Matcher::Eq(_))));
        assert!(matches!(
            Matcher::parse(&json!(null)),
            Ok(Matcher::Eq(Value::Null))
        ));
    }

    #[test]
    fn mappings_nest_and_combine() {
        let m = Matcher::parse(&json!({"not": {"matches": "^x"}})).unwrap();
        assert_eq!(m.to_string(), "not (matches /^x/)");
        let m = Matcher::parse(&json!({"gt": 1, "lt": 10})).unwrap();
        assert!(matches!(m, Matcher::All(ref v) if v.len() == 2));
    }

    #[test]
    fn bad_matchers_say_what_is_valid() {
        let e = Matcher::parse(&json!({"matchs": "x"})).unwrap_err();
        assert!(e.to_string().contains("did you mean `matches`"), "{e}");
        let e = Matcher::parse(&json!({"matches": "("})).unwrap_err();
        assert!(e.to_string().contains("invalid regex"), "{e}");
        let e = Matcher::parse(&json!({"gt": "many"})).unwrap_err();
        assert!(e.to_string().contains("takes a number"), "{e}");
    }
}
