//! The JSON report of DESIGN §6.

use serde::Serialize;

use super::Collected;
use crate::check::Failure;
use crate::plan::Plan;
use crate::run::{Ids, RunStats, Status};

#[derive(Serialize)]
struct Report<'a> {
    run_id: &'a str,
    target: &'a str,
    summary: RunStats,
    cases: Vec<CaseEntry<'a>>,
}

#[derive(Serialize)]
struct CaseEntry<'a> {
    name: &'a str,
    suite: &'a str,
    file: &'a str,
    line: u64,
    status: Status,
    flaky: bool,
    duration_ms: u64,
    attempts: u32,
    failures: &'a [Failure],
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    ids: &'a Ids,
    /// The case's rendered inputs, so a reader sees what `{{…}}` became.
    inputs: Inputs<'a>,
}

#[derive(Serialize)]
struct Inputs<'a> {
    offer: &'a str,
    member: &'a str,
    event: Option<&'a str>,
    params: &'a std::collections::BTreeMap<String, String>,
}

/// The report as pretty JSON.
pub fn render(plan: &Plan, collected: &Collected) -> String {
    let no_ids = Ids::default();
    let cases = plan
        .cases()
        .map(|case| {
            let result = collected.result(case.index);
            CaseEntry {
                name: &case.name,
                suite: &case.suite,
                file: &case.file,
                line: case.line,
                status: result.map(|r| r.status).unwrap_or(Status::Skipped),
                flaky: result.is_some_and(|r| r.status == Status::Passed && r.attempts > 1),
                duration_ms: result.map(|r| r.duration.as_millis() as u64).unwrap_or(0),
                attempts: result.map(|r| r.attempts).unwrap_or(0),
                failures: result.map(|r| r.failures.as_slice()).unwrap_or(&[]),
                error: result.and_then(|r| r.error.as_deref()),
                ids: result.map(|r| &r.ids).unwrap_or(&no_ids),
                inputs: Inputs {
                    offer: &case.offer,
                    member: &case.member,
                    event: case.event.as_deref(),
                    params: &case.params,
                },
            }
        })
        .collect();
    let report = Report {
        run_id: &collected.run_id,
        target: &collected.target,
        summary: collected.stats,
        cases,
    };
    let mut text =
        serde_json::to_string_pretty(&report).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}
