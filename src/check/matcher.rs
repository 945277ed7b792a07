//! Evaluating matchers against JSON values, with the coercion rules of DESIGN §3.
//!
//! - A YAML string matches a JSON string exactly; a YAML number matches a JSON number
//!   numerically (`1.5` = `1.50`); `null` matches null; booleans match booleans. A string never
//!   equals a number (`"1.50"` ≠ `1.5`): the type difference is named in the failure.
//! - `gt`/`gte`/`lt`/`lte` compare numbers, and strings that read as numbers (amounts).
//! - `exists: true` holds when the path is present and not null.
//! - `matches` and `starts_with` read numbers and booleans as their JSON text.

use serde_json::Value;

use crate::scenario::matcher::{Matcher, number_of};

/// True when `actual` (absent when the path is missing) satisfies `matcher`.
pub fn holds(matcher: &Matcher, actual: Option<&Value>) -> bool {
    match matcher {
        Matcher::Eq(expected) => actual.is_some_and(|a| equal(expected, a)),
        Matcher::Ne(expected) => !actual.is_some_and(|a| equal(expected, a)),
        Matcher::Matches(regex) => text_of(actual).is_some_and(|t| regex.is_match(&t)),
        Matcher::StartsWith(prefix) => {
            text_of(actual).is_some_and(|t| t.starts_with(prefix.as_str()))
        }
        Matcher::Contains(needle) => match (actual, needle) {
            (Some(Value::String(hay)), Value::String(n)) => hay.contains(n.as_str()),
            (Some(Value::Array(items)), n) => items.iter().any(|i| equal(n, i)),
            (Some(Value::Object(map)), Value::String(key)) => map.contains_key(key),
            _ => false,
        },
        Matcher::OneOf(options) => actual.is_some_and(|a| options.iter().any(|o| equal(o, a))),
        Matcher::Exists(wanted) => actual.is_some_and(|a| !a.is_null()) == *wanted,
        Matcher::Gt(n) => number(actual).is_some_and(|a| a > *n),
        Matcher::Gte(n) => number(actual).is_some_and(|a| a >= *n),
        Matcher::Lt(n) => number(actual).is_some_and(|a| a < *n),
        Matcher::Lte(n) => number(actual).is_some_and(|a| a <= *n),
        Matcher::Len(inner) => {
            let len = match actual {
                Some(Value::String(s)) => s.chars().count(),
                Some(Value::Array(a)) => a.len(),
                Some(Value::Object(o)) => o.len(),
                _ => return false,
            };
            holds(inner, Some(&Value::from(len)))
        }
        Matcher::Type(name) => actual.is_some_and(|a| type_name(a) == name),
        Matcher::Not(inner) => !holds(inner, actual),
        Matcher::All(all) => all.iter().all(|m| holds(m, actual)),
    }
}

/// Equality with the coercion rules above.
pub fn equal(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(e), Value::Number(a)) => match (e.as_f64(), a.as_f64()) {
            (Some(e), Some(a)) => e == a,
            _ => e == a,
        },
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(e, a)| equal(e, a))
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len()
                && e.iter()
                    .all(|(k, v)| a.get(k).is_some_and(|av| equal(v, av)))
        }
        (e, a) => e == a,
    }
}

fn number(actual: Option<&Value>) -> Option<f64> {
    actual.and_then(number_of)
}

fn text_of(actual: Option<&Value>) -> Option<String> {
    match actual? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The JSON type name the `type` matcher uses.
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The value at a dot path (`conversion.pubSub5`, `items.0.id`), if present.
pub fn at_path<'v>(root: &'v Value, path: &str) -> Option<&'v Value> {
    path.split('.')
        .try_fold(root, |value, segment| match value {
            Value::Object(map) => map.get(segment),
            Value::Array(items) => segment.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        })
}

/// How a failure shows the actual value: `string "x"`, `number 1.5`, `null`, `missing`.
pub fn show_actual(actual: Option<&Value>) -> String {
    match actual {
        None => "missing (no such field)".into(),
        Some(v) => crate::scenario::matcher::describe(v),
    }
}

/// How a failure shows the actual value that `matcher` did not hold for: a `len` matcher's
/// failure gives the length first (`length 12: string "…"`), not only the value.
pub fn show_actual_for(matcher: &Matcher, actual: Option<&Value>) -> String {
    let len = match (matcher, actual) {
        (Matcher::Len(_), Some(Value::String(s))) => Some(s.chars().count()),
        (Matcher::Len(_), Some(Value::Array(a))) => Some(a.len()),
        (Matcher::Len(_), Some(Value::Object(o))) => Some(o.len()),
        _ => None,
    };
    match len {
        Some(n) => {
            let shown = crate::check::callback::truncate(&show_actual(actual), 80);
            format!("length {n}: {shown}")
        }
        None => show_actual(actual),
    }
}

/// How a failure shows what a matcher wanted.
pub fn show_expected(matcher: &Matcher) -> String {
    match matcher {
        Matcher::Eq(v) => crate::scenario::matcher::describe(v),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn m(yaml_as_json: Value) -> Matcher {
        Matcher::parse(&yaml_as_json).unwrap()
    }

    #[test]
    fn equality_follows_the_coercion_rules() {
        assert!(holds(&m(json!("1.50")), Some(&json!("1.50"))));
        assert!(
            !holds(&m(json!("1.50")), Some(&json!(1.5))),
            "a string never equals a number"
        );
        assert!(holds(&m(json!(1.5)), Some(&json!(1.50))));
        assert!(holds(&m(json!(2)), Some(&json!(2.0))));
        assert!(holds(&m(json!(null)), Some(&json!(null))));
        assert!(!holds(&m(json!(null)), None), "a missing field is not null");
        assert!(holds(&m(json!(true)), Some(&json!(true))));
        assert!(!holds(&m(json!("true")), Some(&json!(true))));
    }

    #[test]
    fn a_len_failure_gives_the_length() {
        let len = m(json!({"len": 3}));
        assert_eq!(
            show_actual_for(&len, Some(&json!("abcd"))),
            "length 4: string \"abcd\""
        );
        assert_eq!(
            show_actual_for(&len, Some(&json!([1, 2]))),
            "length 2: array [1,2]"
        );
        assert_eq!(show_actual_for(&len, None), "missing (no such field)");
        assert_eq!(
            show_actual_for(&m(json!("x")), Some(&json!("abcd"))),
            "string \"abcd\""
        );
    }

    #[test]
    fn each_matcher_holds_and_fails() {
        let cases: &[(Value, Value, bool)] = &[
            (json!({"ne": "a"}), json!("b"), true),
            (json!({"ne": "a"}), json!("a"), false),
            (json!({"matches": "^qa-"}), json!("qa-1"), true),
            (json!({"matches": "^qa-"}), json!("x-qa-1"), false),
            (
                json!({"contains": "Testing"}),
                json!("[Testing Tools] x"),
                true,
            ),
            (json!({"contains": 2}), json!([1, 2]), true),
            (json!({"contains": "k"}), json!({"k": 1}), true),
            (
                json!({"starts_with": "[Testing"}),
                json!("[Testing Tools]"),
                true,
            ),
            (
                json!({"one_of": ["Success", "Pending"]}),
                json!("Pending"),
                true,
            ),
            (
                json!({"one_of": ["Success", "Pending"]}),
                json!("Rejected"),
                false,
            ),
            (json!({"exists": true}), json!("x"), true),
            (json!({"exists": true}), json!(null), false),
            (json!({"exists": false}), json!(null), true),
            (json!({"gt": 1}), json!(1.5), true),
            (json!({"gt": 1}), json!("1.50"), true),
            (json!({"gte": 2}), json!(2), true),
            (json!({"lt": 2}), json!(2), false),
            (json!({"lte": 2}), json!(2), true),
            (json!({"len": 3}), json!("abc"), true),
            (json!({"len": {"gt": 1}}), json!([1]), false),
            (json!({"type": "string"}), json!("x"), true),
            (json!({"type": "null"}), json!(0), false),
            (json!({"not": {"matches": "^x"}}), json!("y"), true),
            (json!({"gt": 1, "lt": 3}), json!(2), true),
            (json!({"gt": 1, "lt": 3}), json!(3), false),
        ];
        for (matcher, actual, expected) in cases {
            assert_eq!(
                holds(&m(matcher.clone()), Some(actual)),
                *expected,
                "{matcher} on {actual}"
            );
        }
    }

    #[test]
    fn a_missing_path_fails_all_but_negations() {
        assert!(!holds(&m(json!({"matches": "."})), None));
        assert!(holds(&m(json!({"exists": false})), None));
        assert!(holds(&m(json!({"not": "x"})), None));
    }

    #[test]
    fn dot_paths_walk_objects_and_arrays() {
        let v = json!({"conversion": {"pubSub5": "f", "list": [{"id": 7}]}});
        assert_eq!(at_path(&v, "conversion.pubSub5"), Some(&json!("f")));
        assert_eq!(at_path(&v, "conversion.list.0.id"), Some(&json!(7)));
        assert_eq!(at_path(&v, "conversion.nope"), None);
    }
}
