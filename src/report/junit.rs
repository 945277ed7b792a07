//! JUnit XML as CI dashboards read it (DESIGN §8), through quick-junit, from the run record.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use quick_junit::{
    NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestRerun, TestSuite,
};

use super::record::{CaseRecord, RunRecord};
use crate::run::Status;

/// The whole run as one `<testsuites>` document.
pub fn render(record: &RunRecord) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("pitcrew");
    report.set_timestamp(record.started_at.fixed_offset());
    report.set_time(Duration::from_millis(record.summary.duration_ms));
    let mut by_suite: HashMap<&str, Vec<&CaseRecord>> = HashMap::new();
    for case in &record.cases {
        by_suite.entry(case.suite.as_str()).or_default().push(case);
    }
    for suite in &record.suites {
        let cases = by_suite.remove(suite.name.as_str()).unwrap_or_default();
        let mut test_suite = TestSuite::new(suite.name.as_str());
        let (start, end) = span(&cases);
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
        }
        for case in cases {
            test_suite.add_test_case(test_case(case));
        }
        report.add_test_suite(test_suite);
    }
    report.to_string()
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
        Status::Passed => TestCaseStatus::success(),
        Status::Skipped => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(case.error.as_deref().unwrap_or("not run"));
            s
        }
        Status::Failed | Status::Errored => {
            let kind = if case.status == Status::Failed {
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
    if case.status != Status::Skipped {
        for attempt in &case.earlier_attempts {
            let kind = if attempt.status == Status::Errored {
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
    let mut test_case = TestCase::new(case.name.as_str(), status);
    test_case.set_classname(case.suite.as_str());
    // The contract's XSD has no `timestamp` on <testcase>: a case's start is in the JSON record.
    test_case.set_time(Duration::from_millis(case.duration_ms));
    test_case
        .extra
        .insert("file".into(), case.file.as_str().into());
    test_case
        .extra
        .insert("line".into(), case.line.to_string().into());
    if case.status != Status::Passed && !case.transcript.is_empty() {
        test_case.set_system_out(case.transcript.join("\n\n"));
    }
    test_case
}

/// The one line a report shows for a case that did not pass.
pub fn headline(failures: &[crate::check::Failure], error: Option<&str>) -> String {
    if let Some(e) = error {
        return e.to_string();
    }
    match failures {
        [] => String::new(),
        [one] => one.message.clone(),
        [first, rest @ ..] => format!("{} (and {} more)", first.message, rest.len()),
    }
}

fn failure_type(failures: &[crate::check::Failure]) -> String {
    failures
        .first()
        .map(|f| f.check.clone())
        .unwrap_or_else(|| "error".into())
}

/// Expected vs actual for every failure, each with where the expectation is written.
fn body(case: &CaseRecord, failures: &[crate::check::Failure], error: Option<&str>) -> String {
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
