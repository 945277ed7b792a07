//! Checks: matchers over API answers and callbacks, the callback count, the testing-tools flag.

pub mod callback;
pub mod matcher;
pub mod postback;
pub mod schema;

/// One expectation that did not hold. Built in one way: [`Failure::new`] with what was
/// expected and what came, then what else is known of it (where the expectation is written,
/// a path, a note); its message is derived from those, never written over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    check: String,
    /// The `then:` step whose expectation it is (`None`: the case's first part).
    step: Option<usize>,
    path: Option<String>,
    expected: String,
    actual: String,
    words: Words,
    at: Option<String>,
}

/// How the message says what went wrong beyond its check and path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Words {
    /// `expected E, got A`, then an optional note (`: …`) and hint (` (…)`).
    Expected {
        note: Option<String>,
        hint: Option<String>,
    },
    /// A sentence of its own (`delivery 1 was refused: wrong X-Api-Token (401)`).
    Sentence(String),
}

impl Failure {
    /// `check` expected `expected` and got `actual`.
    pub fn new(check: &str, expected: impl Into<String>, actual: impl Into<String>) -> Failure {
        Failure {
            check: check.to_string(),
            step: None,
            path: None,
            expected: expected.into(),
            actual: actual.into(),
            words: Words::Expected {
                note: None,
                hint: None,
            },
            at: None,
        }
    }

    /// At this path inside the checked value (`conversion.pubSub5`).
    pub fn path(mut self, path: &str) -> Failure {
        self.path = Some(path.to_string());
        self
    }

    /// The expectation it checks is written here (`file:line:col`).
    pub fn at(mut self, at: &str) -> Failure {
        self.at = Some(at.to_string());
        self
    }

    /// What the message adds after `expected E, got A:` (`no accepted callback arrived …`).
    pub fn note(mut self, note: impl Into<String>) -> Failure {
        if let Words::Expected { note: n, .. } = &mut self.words {
            *n = Some(note.into());
        }
        self
    }

    /// What the message adds in parentheses: what to do, or the platform's reason.
    pub fn hint(mut self, hint: impl Into<String>) -> Failure {
        if let Words::Expected { hint: h, .. } = &mut self.words {
            *h = Some(hint.into());
        }
        self
    }

    /// The message says this instead of `expected E, got A`.
    pub fn saying(mut self, sentence: impl Into<String>) -> Failure {
        self.words = Words::Sentence(sentence.into());
        self
    }

    /// The expectation of `then:` step `n` (from 1); 0 is the case's first part.
    pub fn in_step(mut self, n: usize) -> Failure {
        self.step = (n > 0).then_some(n);
        self
    }

    /// Which check: `conversion.status`, `callback.count`, `then[1].callback.payload`, …
    pub fn check(&self) -> String {
        match self.step {
            Some(n) => format!("then[{n}].{}", self.check),
            None => self.check.clone(),
        }
    }

    /// The path inside the checked value, when there is one.
    pub fn path_text(&self) -> Option<&str> {
        self.path.as_deref()
    }

    /// What the expectation asked for, as a report shows it.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What came instead, as a report shows it.
    pub fn actual(&self) -> &str {
        &self.actual
    }

    /// `file:line:col` of the expectation, when it is written somewhere.
    pub fn at_text(&self) -> Option<&str> {
        self.at.as_deref()
    }

    /// One line saying all of it: `then[1] callback.payload conversion.status: expected …`.
    pub fn message(&self) -> String {
        let mut text = match self.step {
            Some(n) => format!("then[{n}] {}", self.check),
            None => self.check.clone(),
        };
        if let Some(path) = &self.path {
            text.push(' ');
            text.push_str(path);
        }
        text.push_str(": ");
        match &self.words {
            Words::Sentence(sentence) => text.push_str(sentence),
            Words::Expected { note, hint } => {
                text.push_str(&format!("expected {}, got {}", self.expected, self.actual));
                if let Some(note) = note {
                    text.push_str(": ");
                    text.push_str(note);
                }
                if let Some(hint) = hint {
                    text.push_str(&format!(" ({hint})"));
                }
            }
        }
        text
    }
}

/// Checks a tool's HTTP status: the expected one, or (`None`) one the target counts as done.
/// `at` is where the expectation is written (the case, when it is the default).
pub fn status(
    check: &str,
    expected: Option<u16>,
    (done, ok): (bool, &str),
    actual: u16,
    body: &serde_json::Value,
    at: &str,
) -> Option<Failure> {
    let holds = expected.map_or(done, |e| e == actual);
    (!holds).then(|| {
        let wanted = expected.map_or_else(|| ok.to_string(), |e| e.to_string());
        let failure = Failure::new(check, wanted, actual.to_string()).at(at);
        match (answer_reason(body), body) {
            (Some(reason), _) => failure.hint(reason),
            // A text answer says why itself (`success=false; error=…;`).
            (None, serde_json::Value::String(text)) if !text.trim().is_empty() => {
                let text = callback::truncate(&crate::mask::mask(text.trim()), 200);
                failure.hint(format!("the answer: {text}"))
            }
            (None, _) => failure,
        }
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
            let failure = Failure::new(
                &what,
                matcher::show_expected(&line.matcher),
                matcher::show_actual_for(&line.matcher, actual),
            )
            .at(&line.at);
            failures.push(match path {
                Some(path) => failure.path(path),
                None => failure,
            });
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
