//! Checks: matchers over API answers and callbacks, the callback count, the testing-tools flag.

pub mod callback;
pub mod matcher;
pub mod schema;

use serde::{Deserialize, Serialize};

/// One expectation that did not hold.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    /// Which check: `conversion.status`, `callback.count`, `callback.payload`, `flag`, …
    pub check: String,
    /// The path inside the checked value, when there is one (`conversion.pubSub5`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub expected: String,
    pub actual: String,
    /// One line saying all of the above.
    pub message: String,
    /// `file:line:col` of the expectation in the scenario.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

impl Failure {
    /// A failure whose message is built from its parts.
    pub fn new(
        check: &str,
        path: Option<&str>,
        expected: String,
        actual: String,
        at: Option<String>,
    ) -> Failure {
        let what = match path {
            Some(p) => format!("{check} {p}"),
            None => check.to_string(),
        };
        Failure {
            message: format!("{what}: expected {expected}, got {actual}"),
            check: check.to_string(),
            path: path.map(str::to_string),
            expected,
            actual,
            at,
        }
    }
}

/// Checks a tool's HTTP status: the expected one, or (`None`) one the target counts as done.
pub fn status(
    check: &str,
    expected: Option<u16>,
    (done, ok): (bool, &str),
    actual: u16,
    body: &serde_json::Value,
) -> Option<Failure> {
    let holds = expected.map_or(done, |e| e == actual);
    (!holds).then(|| {
        let wanted = expected.map_or_else(|| ok.to_string(), |e| e.to_string());
        let mut failure = Failure::new(check, None, wanted, actual.to_string(), None);
        if let Some(reason) = answer_reason(body) {
            failure.message.push_str(&format!(" ({reason})"));
        }
        failure
    })
}

/// The human reason in a GoKart-wrapped answer: its first message, else its title.
pub fn answer_reason(body: &serde_json::Value) -> Option<String> {
    body.pointer("/messages/0")
        .or_else(|| body.get("responseTitle"))
        .and_then(|v| v.as_str())
        .map(str::to_string)
}

/// Checks an answer's body, JSON fields and headers; `step` names it (`conversion`, …).
pub fn answer(
    step: &str,
    checks: &crate::plan::AnswerChecks,
    body: &serde_json::Value,
    headers: &[(String, String)],
) -> Vec<Failure> {
    use serde_json::Value;
    let mut failures = Vec::new();
    let mut check = |what: String,
                     path: Option<&str>,
                     line: &crate::plan::PayloadCheck,
                     actual: Option<&Value>| {
        if !matcher::holds(&line.matcher, actual) {
            failures.push(Failure::new(
                &what,
                path,
                matcher::show_expected(&line.matcher),
                matcher::show_actual(actual),
                Some(line.at.clone()),
            ));
        }
    };
    if let Some(line) = &checks.body {
        let text = match body {
            Value::Null => None,
            Value::String(s) => Some(Value::String(s.clone())),
            other => Some(Value::String(other.to_string())),
        };
        check(format!("{step}.body"), None, line, text.as_ref());
    }
    for line in &checks.json {
        let actual = matcher::at_path(body, &line.path);
        check(format!("{step}.json"), Some(&line.path), line, actual);
    }
    for line in &checks.headers {
        let actual = header(headers, &line.path);
        check(
            format!("{step}.headers"),
            Some(&line.path),
            line,
            actual.as_ref(),
        );
    }
    failures
}

/// A header's value by name, any case; repeated headers joined with `, ` as HTTP allows.
pub fn header(headers: &[(String, String)], name: &str) -> Option<serde_json::Value> {
    let values: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect();
    (!values.is_empty()).then(|| serde_json::Value::String(values.join(", ")))
}
