//! What the runner tells the reports: typed, timestamped events, in the order they happened.
//! The runner never calls a report; reports consume these (DESIGN §2).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::result::CaseResult;
use crate::delivery::Stray;
use crate::plan::Plan;

/// One thing that happened during a run.
#[derive(Debug, Clone)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub kind: EventKind,
}

/// The kinds of events.
#[derive(Debug, Clone)]
pub enum EventKind {
    /// Before the first case: every planned case, so that none can vanish from a report.
    RunStarted(Arc<RunInfo>),
    /// A case's attempt began.
    CaseStarted { index: usize, attempt: u32 },
    /// An attempt failed and the case will be run again.
    AttemptFailed(Arc<CaseResult>),
    /// A case's final verdict, once it has settled (every planned case gets exactly one).
    CaseFinished(Arc<CaseResult>),
    /// The run stopped starting cases.
    RunCancelled { reason: CancelReason },
    /// After the last case: the callbacks no case claimed, and the run's wall time.
    RunFinished {
        strays: Vec<Stray>,
        duration: Duration,
    },
}

/// Why the run stopped starting cases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// `--fail-fast` after a failure.
    FailFast,
    /// Ctrl-C or SIGTERM: running cases finish, the rest are skipped.
    Interrupted,
    /// A second signal: running cases are stopped too.
    Aborted,
}

impl CancelReason {
    /// Why a case that never started did not run.
    pub fn skip_reason(self) -> &'static str {
        match self {
            CancelReason::FailFast => "not run: --fail-fast stopped the run after a failure",
            CancelReason::Interrupted | CancelReason::Aborted => {
                "not run: the run was interrupted (Ctrl-C or SIGTERM) before this case started"
            }
        }
    }
}

/// The run as planned: what the reports need to know about every case, independent of the
/// plan's own types.
#[derive(Debug, Clone)]
pub struct RunInfo {
    pub run_id: String,
    pub target: String,
    /// `K/N` when the run is one shard of several.
    pub shard: Option<String>,
    pub suites: Vec<SuiteInfo>,
    pub cases: Vec<CaseInfo>,
}

/// One scenario file.
#[derive(Debug, Clone)]
pub struct SuiteInfo {
    pub name: Arc<str>,
    pub file: Arc<str>,
    pub tags: Vec<String>,
}

/// One planned case.
#[derive(Debug, Clone)]
pub struct CaseInfo {
    pub name: Arc<str>,
    /// Its suite's position in `suites`.
    pub suite: usize,
    pub line: u64,
    pub tags: Vec<String>,
    /// In a shard's run: the case's position in the whole plan, the same in every shard, by
    /// which `report merge` puts the shards' cases back in order.
    pub position: Option<u32>,
}

/// The file's tags, then the case's own that are not among them.
fn suite_tags_then(suite: &[String], own: &[String]) -> Vec<String> {
    let mut tags = suite.to_vec();
    tags.extend(own.iter().filter(|t| !suite.contains(t)).cloned());
    tags
}

impl RunInfo {
    /// What the reports need of `plan`.
    pub fn of(plan: &Plan, target: &str, shard: Option<String>) -> RunInfo {
        let mut suites = Vec::with_capacity(plan.suites.len());
        let mut cases = Vec::with_capacity(plan.len());
        let sharded = shard.is_some();
        for (i, suite) in plan.suites.iter().enumerate() {
            suites.push(SuiteInfo {
                name: suite.name.clone(),
                file: suite.file.clone(),
                tags: suite.tags.clone(),
            });
            cases.extend(suite.cases.iter().map(|c| CaseInfo {
                name: c.name.clone(),
                suite: i,
                line: c.line,
                // The file's tags are the case's too (`--tag` selects by both).
                tags: suite_tags_then(&suite.tags, &c.tags),
                position: sharded.then_some(c.origin.index),
            }));
        }
        RunInfo {
            run_id: plan.run_id.clone(),
            target: target.to_string(),
            shard,
            suites,
            cases,
        }
    }
}
