//! The JUnit contract, checked inside the project (nothing beside the repository needed): the elements,
//! attributes and nesting that Jenkins' junit-10.xsd (with the file/line additions pitcrew's
//! contract makes) allows, Surefire's time format, unique case names per suite (GitLab keeps
//! only the first of equal names), and a read-back by quick-junit. `.ci/run` additionally runs
//! the shared XSD and junitparser checker on every JUnit file the tests write.

use std::collections::{HashMap, HashSet};

use quick_xml::events::{BytesStart, Event};

/// An element: its name, allowed parents, allowed attributes, required attributes.
type Rule = (
    &'static str,
    &'static [&'static str],
    &'static [&'static str],
    &'static [&'static str],
);

const ELEMENTS: &[Rule] = &[
    (
        "testsuites",
        &[""],
        &[
            "name",
            "time",
            "tests",
            "failures",
            "errors",
            "skipped",
            "timestamp",
        ],
        &[],
    ),
    (
        "testsuite",
        &["", "testsuites", "testsuite"],
        &[
            "name",
            "tests",
            "failures",
            "errors",
            "group",
            "time",
            "skipped",
            "timestamp",
            "hostname",
            "id",
            "package",
            "file",
            "log",
            "url",
            "version",
        ],
        &["name", "tests", "failures", "errors"],
    ),
    ("properties", &["testsuite"], &[], &[]),
    (
        "property",
        &["properties"],
        &["name", "value"],
        &["name", "value"],
    ),
    (
        "testcase",
        &["testsuite"],
        &["name", "time", "classname", "group", "file", "line"],
        &["name"],
    ),
    ("failure", &["testcase"], &["type", "message"], &[]),
    ("error", &["testcase"], &["type", "message"], &[]),
    ("skipped", &["testcase"], &["type", "message"], &[]),
    (
        "rerunFailure",
        &["testcase"],
        &["message", "type", "time"],
        &["type"],
    ),
    (
        "rerunError",
        &["testcase"],
        &["message", "type", "time"],
        &["type"],
    ),
    (
        "flakyFailure",
        &["testcase"],
        &["message", "type", "time"],
        &["type"],
    ),
    (
        "flakyError",
        &["testcase"],
        &["message", "type", "time"],
        &["type"],
    ),
    (
        "stackTrace",
        &["rerunFailure", "rerunError", "flakyFailure", "flakyError"],
        &[],
        &[],
    ),
    (
        "system-out",
        &[
            "testsuite",
            "testcase",
            "rerunFailure",
            "rerunError",
            "flakyFailure",
            "flakyError",
        ],
        &[],
        &[],
    ),
    (
        "system-err",
        &[
            "testsuite",
            "testcase",
            "rerunFailure",
            "rerunError",
            "flakyFailure",
            "flakyError",
        ],
        &[],
        &[],
    ),
];

/// Checks `xml` against the contract; returns the number of test cases, or every problem.
pub fn check(xml: &str) -> Result<usize, Vec<String>> {
    let surefire_time =
        regex::Regex::new(r"^(([0-9]{0,3},)*[0-9]{3}|[0-9]{0,3})*(\.[0-9]{0,3})?$").unwrap();
    let mut problems = Vec::new();
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack: Vec<String> = Vec::new();
    let mut names: Vec<HashSet<String>> = Vec::new();
    let mut cases = 0;
    let element = |e: &BytesStart, stack: &Vec<String>, problems: &mut Vec<String>| {
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let parent = stack.last().map(String::as_str).unwrap_or("");
        let Some((_, parents, allowed, required)) = ELEMENTS.iter().find(|(n, ..)| *n == name)
        else {
            problems.push(format!("<{name}> is not a JUnit element"));
            return (name, HashMap::new());
        };
        if !parents.contains(&parent) {
            problems.push(format!("<{name}> may not sit in <{parent}>"));
        }
        let mut attributes = HashMap::new();
        for a in e.attributes() {
            let Ok(a) = a else {
                problems.push(format!("<{name}> has a malformed attribute"));
                continue;
            };
            let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| v.into_owned())
                .unwrap_or_default();
            if !allowed.contains(&key.as_str()) {
                problems.push(format!("<{name}> may not have `{key}`"));
            }
            attributes.insert(key, value);
        }
        for r in *required {
            if !attributes.contains_key(*r) {
                problems.push(format!("<{name}> lacks `{r}`"));
            }
        }
        if matches!(name.as_str(), "testsuite" | "testsuites")
            && let Some(t) = attributes.get("time")
            && !surefire_time.is_match(t)
        {
            problems.push(format!("<{name}> time `{t}` is not Surefire's format"));
        }
        (name, attributes)
    };
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) => {
                let (name, attributes) = element(&e, &stack, &mut problems);
                on_open(&name, &attributes, &mut names, &mut cases, &mut problems);
                stack.push(name);
            }
            Ok(Event::Empty(e)) => {
                let (name, attributes) = element(&e, &stack, &mut problems);
                on_open(&name, &attributes, &mut names, &mut cases, &mut problems);
                if name == "testsuite" {
                    names.pop();
                }
            }
            Ok(Event::End(e)) => {
                if e.name().as_ref() == b"testsuite" {
                    names.pop();
                }
                stack.pop();
            }
            Ok(Event::Eof) => break,
            Ok(_) => {}
            Err(e) => {
                problems.push(format!("not well-formed XML: {e}"));
                break;
            }
        }
    }
    if let Err(e) = quick_junit::Report::deserialize_from_str(xml) {
        problems.push(format!("quick-junit cannot read it back: {e}"));
    }
    if problems.is_empty() {
        Ok(cases)
    } else {
        Err(problems)
    }
}

fn on_open(
    name: &str,
    attributes: &HashMap<String, String>,
    names: &mut Vec<HashSet<String>>,
    cases: &mut usize,
    problems: &mut Vec<String>,
) {
    match name {
        "testsuite" => names.push(HashSet::new()),
        "testcase" => {
            *cases += 1;
            let case = attributes.get("name").cloned().unwrap_or_default();
            if let Some(seen) = names.last_mut()
                && !seen.insert(case.clone())
            {
                problems.push(format!("a suite repeats the case name {case:?}"));
            }
            if let Some(line) = attributes.get("line")
                && line.parse::<u64>().is_err()
            {
                problems.push(format!("case {case:?}: line `{line}` is not a number"));
            }
        }
        _ => {}
    }
}
