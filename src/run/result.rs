//! What running a case produced.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::check::Failure;

/// A case's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Every expectation was checked and held.
    Passed,
    /// An expectation did not hold.
    Failed,
    /// The platform or the network broke, or the case could not be judged.
    Errored,
    /// Not run (stopped by `--fail-fast` or an interruption before it started).
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

    /// True for a verdict that fails the run.
    pub fn is_failure(self) -> bool {
        matches!(self, Status::Failed | Status::Errored)
    }
}

/// The ids a case made or used.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    pub click: Option<String>,
    pub conversion: Option<String>,
}

/// What a case's templates rendered to (for this attempt).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Inputs {
    pub offer: Arc<str>,
    pub member: String,
    pub event: Option<Arc<str>>,
    pub params: crate::plan::Params,
}

/// The outcome of one attempt of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    /// The case's index in the plan.
    pub index: usize,
    /// Which attempt this is, from 1 (0: the case never started).
    pub attempt: u32,
    pub status: Status,
    pub started_at: Option<DateTime<Utc>>,
    pub duration: Duration,
    pub failures: Vec<Failure>,
    /// What broke (`Errored`), or why the case did not run (`Skipped`).
    pub error: Option<String>,
    pub ids: Ids,
    pub inputs: Inputs,
    /// Requests, answers and callbacks, for the reports of cases that did not pass.
    pub transcript: Vec<String>,
    /// Wake latency: from the arrival of the last callback the first part waited for (or from
    /// the start of the wait, when it had come already) to the moment the case had it.
    pub wake: Option<Duration>,
}

impl CaseResult {
    /// A case that never started.
    pub fn not_run(index: usize, status: Status, why: &str) -> CaseResult {
        CaseResult {
            index,
            attempt: 0,
            status,
            started_at: None,
            duration: Duration::ZERO,
            failures: Vec::new(),
            error: Some(why.to_string()),
            ids: Ids::default(),
            inputs: Inputs::default(),
            transcript: Vec::new(),
            wake: None,
        }
    }
}
