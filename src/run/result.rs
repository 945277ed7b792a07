//! What running a case produced, and the run's statistics.

use std::time::Duration;

use serde::Serialize;

use crate::check::Failure;

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every expectation held.
    Passed,
    /// An expectation did not hold.
    Failed,
    /// The platform or the network broke before the case could be judged.
    Errored,
    /// Not run (filtered out, or stopped by `--fail-fast`).
    Skipped,
}

impl Status {
    /// The word the console prints.
    pub fn label(self) -> &'static str {
        match self {
            Status::Passed => "PASS",
            Status::Failed => "FAIL",
            Status::Errored => "ERROR",
            Status::Skipped => "SKIP",
        }
    }
}

/// The ids a case made or used.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Ids {
    pub click: Option<String>,
    pub conversion: Option<String>,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's index in the plan.
    pub index: usize,
    pub status: Status,
    pub duration: Duration,
    pub attempts: u32,
    pub failures: Vec<Failure>,
    /// What broke, for `Errored`.
    pub error: Option<String>,
    pub ids: Ids,
    /// Requests, answers and callbacks, masked, for the reports of failing cases.
    pub transcript: Vec<String>,
}

impl CaseResult {
    /// The one line a report shows for a case that did not pass.
    pub fn headline(&self) -> String {
        if let Some(e) = &self.error {
            return e.clone();
        }
        match self.failures.as_slice() {
            [] => String::new(),
            [one] => one.message.clone(),
            [first, rest @ ..] => format!("{} (and {} more)", first.message, rest.len()),
        }
    }
}

/// Counts of a run, one small struct.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RunStats {
    pub total: usize,
    pub passed: usize,
    pub failed: usize,
    pub errored: usize,
    pub skipped: usize,
    pub flaky: usize,
    pub duration_ms: u64,
}

impl RunStats {
    /// Adds one case's verdict.
    pub fn add(&mut self, result: &CaseResult) {
        self.total += 1;
        match result.status {
            Status::Passed => self.passed += 1,
            Status::Failed => self.failed += 1,
            Status::Errored => self.errored += 1,
            Status::Skipped => self.skipped += 1,
        }
        if result.status == Status::Passed && result.attempts > 1 {
            self.flaky += 1;
        }
    }

    /// True when nothing failed or errored.
    pub fn success(&self) -> bool {
        self.failed == 0 && self.errored == 0
    }

    /// `12 passed, 1 failed, 0 errored, 0 skipped in 1.23s`
    pub fn summarize(&self) -> String {
        let mut text = format!(
            "{} passed, {} failed, {} errored, {} skipped",
            self.passed, self.failed, self.errored, self.skipped
        );
        if self.flaky > 0 {
            text.push_str(&format!(" ({} flaky)", self.flaky));
        }
        text.push_str(&format!(" in {:.2}s", self.duration_ms as f64 / 1000.0));
        text
    }
}
