//! JUnit XML as CI dashboards read it (DESIGN §8), through quick-junit, from the run record.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::format::Verdict;
use super::format::{CaseRecord, RunRecord, SuiteRecord};

/// How many cases quick-junit holds at once while a report is written.
const CHUNK: usize = 1_000;

/// Writes the whole run as one `<testsuites>` document, streamed: quick-junit writes the
/// document's frame (every suite with its counts and properties, no cases), then each suite's
/// cases a chunk at a time go in its place, so that memory holds one chunk of test cases, not
/// a run's 100,000. The result is byte for byte what quick-junit writes for the whole report
/// (a test keeps it so).
pub fn write(record: &RunRecord, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let xml_error = |e: quick_junit::SerializeError| std::io::Error::other(e.to_string());
    let suites = by_suite(record);
    let mut frame = Report::new("pitcrew");
    frame.set_timestamp(record.started_at.fixed_offset());
    frame.set_time(Duration::from_millis(record.summary.duration_ms));
    for (suite, cases) in &suites {
        let mut test_suite = suite_frame(record, suite, cases);
        for case in cases {
            test_suite.tests += 1;
            match case.status {
                Verdict::Failed => test_suite.failures += 1,
                Verdict::Errored => test_suite.errors += 1,
                Verdict::Skipped => test_suite.skipped += 1,
                Verdict::Passed => {}
            }
        }
        frame.add_test_suite(test_suite);
    }
    let frame = frame.to_string().map_err(xml_error)?;
    let mut rest = frame.as_str();
    for (_, cases) in &suites {
        let Some(end) = rest.find(SUITE_END) else {
            return Err(std::io::Error::other("quick-junit wrote no </testsuite>"));
        };
        out.write_all(&rest.as_bytes()[..end + 1])?;
        rest = &rest[end + 1..];
        for chunk in cases.chunks(CHUNK) {
            let mut holder = TestSuite::new("chunk");
            holder.add_test_cases(chunk.iter().map(|case| test_case(case)));
            let mut report = Report::new("chunk");
            report.add_test_suite(holder);
            let xml = report.to_string().map_err(xml_error)?;
            out.write_all(test_cases_of(&xml).as_bytes())?;
        }
    }
    out.write_all(rest.as_bytes())
}

/// Where a suite's closing tag starts, after the newline before it.
const SUITE_END: &str = "\n    </testsuite>";

/// The `<testcase>` elements of a one-suite document.
fn test_cases_of(xml: &str) -> &str {
    let start = xml
        .find("<testsuite ")
        .and_then(|at| xml[at..].find(">\n").map(|end| at + end + 2))
        .unwrap_or(xml.len());
    let end = xml.rfind(SUITE_END).map_or(start, |end| end + 1);
    xml.get(start..end).unwrap_or("")
}

/// The whole run as one `<testsuites>` document (the tests compare it with quick-junit's).
#[cfg(test)]
fn render(record: &RunRecord) -> Result<String, std::io::Error> {
    let mut bytes = Vec::new();
    write(record, &mut bytes)?;
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

/// Each suite of the record with its cases, in the record's order.
fn by_suite(record: &RunRecord) -> Vec<(&SuiteRecord, Vec<&CaseRecord>)> {
    let mut cases: HashMap<&str, Vec<&CaseRecord>> = HashMap::new();
    for case in &record.cases {
        cases.entry(&*case.suite).or_default().push(case);
    }
    record
        .suites
        .iter()
        .map(|suite| (suite, cases.remove(suite.name.as_str()).unwrap_or_default()))
        .collect()
}

/// A suite's element without its cases: name, wall time, properties.
fn suite_frame(record: &RunRecord, suite: &SuiteRecord, cases: &[&CaseRecord]) -> TestSuite {
    let mut test_suite = TestSuite::new(suite.name.as_str());
    let (start, end) = span(cases);
    test_suite.set_timestamp(start.unwrap_or(record.started_at).fixed_offset());
    test_suite.set_time(match (start, end) {
        (Some(s), Some(e)) => (e - s).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    });
    test_suite.add_property(Property::new("file", suite.file.as_str()));
    test_suite.add_property(Property::new("tags", suite.tags.join(",")));
    test_suite.add_property(Property::new("target", record.target.as_str()));
    test_suite.add_property(Property::new("run_id", record.run_id.as_str()));
    if let Some(shard) = &record.shard {
        test_suite.add_property(Property::new("shard", shard.as_str()));
        // Where each case stands in the whole plan: `report merge` restores the order by it.
        let positions: Vec<String> = (cases.iter())
            .filter_map(|c| c.position.map(|p| p.to_string()))
            .collect();
        test_suite.add_property(Property::new("positions", positions.join(",")));
    }
    test_suite
}

/// When a suite's first case started and its last one ended: its wall time.
fn span(cases: &[&CaseRecord]) -> (Option<DateTime<Utc>>, Option<DateTime<Utc>>) {
    let start = cases.iter().filter_map(|c| c.started_at).min();
    let end = cases
        .iter()
        .filter_map(|c| {
            c.started_at
                .map(|s| s + chrono::Duration::milliseconds(c.duration_ms as i64))
        })
        .max();
    (start, end)
}

fn test_case(case: &CaseRecord) -> TestCase {
    let mut status = match case.status {
        Verdict::Passed => TestCaseStatus::success(),
        Verdict::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(case.error.as_deref().unwrap_or("not run"));
            s
        }
        Verdict::Failed | Verdict::Errored => {
            let kind = if case.status == Verdict::Failed {
                NonSuccessKind::Failure
            } else {
                NonSuccessKind::Error
            };
            let mut s = TestCaseStatus::non_success(kind);
            s.set_message(headline(&case.failures, case.error.as_deref()));
            s.set_type(failure_type(&case.failures));
            s.set_description(body(case, &case.failures, case.error.as_deref()));
            s
        }
    };
    // Earlier attempts: <flakyFailure>/<flakyError> on a pass, <rerunFailure>/<rerunError>
    // on a case that never passed (Surefire's convention, read by Jenkins and others).
    if case.status != Verdict::Skipped {
        for attempt in &case.earlier_attempts {
            let kind = if attempt.status == Verdict::Errored {
                NonSuccessKind::Error
            } else {
                NonSuccessKind::Failure
            };
            let mut rerun = TestRerun::new(kind);
            rerun.set_message(headline(&attempt.failures, attempt.error.as_deref()));
            rerun.set_type(failure_type(&attempt.failures));
            rerun.set_time(Duration::from_millis(attempt.duration_ms));
            rerun.set_description(body(case, &attempt.failures, attempt.error.as_deref()));
            if !attempt.transcript.is_empty() {
                rerun.set_system_out(attempt.transcript.join("\n\n"));
            }
            status.add_rerun(rerun);
        }
    }
    let mut test_case = TestCase::new(&*case.name, status);
    test_case.set_classname(&*case.suite);
    // The contract's XSD has no `timestamp` on <testcase>: a case's start is in the JSON record.
    // The time the case cost the run, its retries included (a flaky case's last attempt alone
    // may take no time at all; its reruns carry their own times).
    let earlier: u64 = case.earlier_attempts.iter().map(|a| a.duration_ms).sum();
    test_case.set_time(Duration::from_millis(
        case.duration_ms.saturating_add(earlier),
    ));
    test_case.extra.insert("file".into(), (&*case.file).into());
    test_case
        .extra
        .insert("line".into(), case.line.to_string().into());
    if case.status != Verdict::Passed && !case.transcript.is_empty() {
        test_case.set_system_out(case.transcript.join("\n\n"));
    }
    test_case
}

/// The one line a report shows for a case that did not pass.
pub fn headline(failures: &[super::format::FailureRecord], error: Option<&str>) -> String {
    if let Some(e) = error {
        return e.to_string();
    }
    match failures {
        [] => String::new(),
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (and {} more)", first.message, rest.len()),
    }
}

fn failure_type(failures: &[super::format::FailureRecord]) -> String {
    failures
        .first()
        .map(|f| f.check.clone())
        .unwrap_or_else(|| "error".into())
}

/// Expected vs actual for every failure, each with where the expectation is written.
fn body(
    case: &CaseRecord,
    failures: &[super::format::FailureRecord],
    error: Option<&str>,
) -> String {
    let mut text = String::new();
    if let Some(e) = error {
        text.push_str(&format!("error: {e}\n"));
    }
    for f in failures {
        text.push_str(&format!(
            "{}\n  expected: {}\n  actual:   {}\n",
            f.message, f.expected, f.actual
        ));
        let at =
            f.at.clone()
                .unwrap_or_else(|| format!("{}:{}:1", case.file, case.line));
        text.push_str(&format!("  ({at})\n"));
    }
    if failures.is_empty() {
        text.push_str(&format!("({}:{}:1)\n", case.file, case.line));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole report as quick-junit writes it in one go.
    fn whole(record: &RunRecord) -> String {
        let mut report = Report::new("pitcrew");
        report.set_timestamp(record.started_at.fixed_offset());
        report.set_time(Duration::from_millis(record.summary.duration_ms));
        for (suite, cases) in by_suite(record) {
            let mut test_suite = suite_frame(record, suite, &cases);
            test_suite.add_test_cases(cases.iter().map(|case| test_case(case)));
            report.add_test_suite(test_suite);
        }
        report.to_string().unwrap()
    }

    /// Streamed in chunks, the report is byte for byte quick-junit's whole one: with several
    /// suites, a suite over a chunk, every status, reruns, and text that needs escaping.
    #[test]
    fn streamed_junit_is_what_quick_junit_writes_whole() {
        let statuses = ["passed", "failed", "errored", "skipped"];
        let case = |i: usize, suite: &str| {
            let status = statuses[i % 4];
            serde_json::json!({
                "name": format!("case <{i}> & \"more\""), "suite": suite, "file": "f.yaml", "line": i,
                "status": status, "flaky": false, "duration_ms": i, "attempts": 1,
                "started_at": "2026-01-01T00:00:00Z",
                "failures": if status == "failed" { serde_json::json!([{"check": "c", "expected": "a", "actual": "b", "message": "m <x>"}]) } else { serde_json::json!([]) },
                "error": if status == "errored" || status == "skipped" { serde_json::json!("why") } else { serde_json::Value::Null },
                "transcript": ["> POST /x\n< 200"],
                "earlier_attempts": if i.is_multiple_of(7) { serde_json::json!([{"attempt": 1, "status": "failed", "duration_ms": 1, "failures": [], "error": "e"}]) } else { serde_json::json!([]) },
            })
        };
        let mut cases: Vec<serde_json::Value> = (0..2_500).map(|i| case(i, "Big")).collect();
        cases.extend((0..3).map(|i| case(i, "Small & odd")));
        let record: RunRecord = serde_json::from_value(serde_json::json!({
            "version": 1, "run_id": "r", "target": "t", "shard": "1/2",
            "started_at": "2026-01-01T00:00:00Z",
            "summary": {"total": 2503, "passed": 0, "failed": 0, "errored": 0, "skipped": 0, "flaky": 0, "duration_ms": 1},
            "suites": [{"name": "Big", "file": "f.yaml", "tags": ["a"]}, {"name": "Small & odd", "file": "g.yaml", "tags": []}, {"name": "Empty", "file": "h.yaml", "tags": []}],
            "cases": cases,
        }))
        .unwrap();
        let streamed = render(&record).unwrap();
        assert_eq!(streamed, whole(&record));
        assert_eq!(streamed.matches("<testcase ").count(), 2_503);
    }
}
