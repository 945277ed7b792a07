//! JUnit XML as CI dashboards read it (DESIGN §7), through quick-junit.

use std::time::Duration;

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::Collected;
use crate::plan::{Case, Plan};
use crate::run::{CaseResult, Status};

/// The whole run as one `<testsuites>` document.
pub fn render(plan: &Plan, collected: &Collected) -> Result<String, quick_junit::SerializeError> {
    let mut report = Report::new("pitcrew");
    if let Some(started) = collected.started {
        report.set_timestamp(started.fixed_offset());
    }
    report.set_time(Duration::from_millis(collected.stats.duration_ms));
    for suite in &plan.suites {
        let mut test_suite = TestSuite::new(suite.name.as_ref());
        if let Some(started) = collected.started {
            test_suite.set_timestamp(started.fixed_offset());
        }
        test_suite.add_property(Property::new("file", suite.file.as_ref()));
        test_suite.add_property(Property::new("tags", suite.tags.join(",")));
        test_suite.add_property(Property::new("target", collected.target.as_str()));
        test_suite.add_property(Property::new("run_id", collected.run_id.as_str()));
        let mut time = Duration::ZERO;
        for case in &suite.cases {
            let result = collected.result(case.index);
            time += result.map(|r| r.duration).unwrap_or_default();
            test_suite.add_test_case(test_case(case, result));
        }
        test_suite.set_time(time);
        report.add_test_suite(test_suite);
    }
    report.to_string()
}

fn test_case(case: &Case, result: Option<&CaseResult>) -> TestCase {
    let status = match result {
        None => {
            let mut s = TestCaseStatus::skipped();
            s.set_message("not run");
            s
        }
        Some(r) => match r.status {
            Status::Passed => TestCaseStatus::success(),
            Status::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(r.headline());
                s
            }
            Status::Failed | Status::Errored => {
                let kind = if r.status == Status::Failed {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(r.headline());
                s.set_type(
                    r.failures
                        .first()
                        .map(|f| f.check.as_str())
                        .unwrap_or("error"),
                );
                s.set_description(body(case, r));
                s
            }
        },
    };
    let mut test_case = TestCase::new(case.name.as_str(), status);
    test_case.set_classname(case.suite.as_ref());
    test_case.set_time(result.map(|r| r.duration).unwrap_or_default());
    test_case
        .extra
        .insert("file".into(), case.file.as_ref().into());
    test_case
        .extra
        .insert("line".into(), case.line.to_string().into());
    if let Some(r) = result.filter(|r| !r.transcript.is_empty()) {
        test_case.set_system_out(r.transcript.join("\n\n"));
    }
    test_case
}

/// Expected vs actual for every failure, each with where the expectation is written.
fn body(case: &Case, result: &CaseResult) -> String {
    let mut text = String::new();
    if let Some(e) = &result.error {
        text.push_str(&format!("error: {e}\n"));
    }
    for f in &result.failures {
        text.push_str(&format!(
            "{}\n  expected: {}\n  actual:   {}\n",
            f.message, f.expected, f.actual
        ));
        let at =
            f.at.clone()
                .unwrap_or_else(|| format!("{}:{}:1", case.file, case.line));
        text.push_str(&format!("  ({at})\n"));
    }
    if result.failures.is_empty() {
        text.push_str(&format!("({}:{}:1)\n", case.file, case.line));
    }
    text
}
