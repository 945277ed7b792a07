//! Running a plan: cases concurrently on tokio, results reported as events in any order and
//! carrying their plan index, so that every report can keep file order.

pub mod case;
pub mod result;
pub mod transcript;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};

pub use result::{CaseResult, Ids, RunStats, Status};

use crate::plan::Plan;
use crate::platform::Platform;
use crate::receiver::Receiver;

/// Where a case looks for its callbacks.
#[derive(Clone)]
pub enum Observer {
    /// pitcrew's receiver, which the platform posts to.
    Receiver(Receiver),
    /// The platform's conversion-callback log, read until the callbacks show up.
    CallbackLog,
}

/// What the runner tells the reports.
#[derive(Debug, Clone)]
pub enum Event {
    /// Before the first case.
    RunStarted {
        run_id: String,
        total: usize,
        target: String,
    },
    /// A case finished (in completion order; `index` gives its place).
    CaseFinished(Arc<CaseResult>),
    /// After the last case.
    RunFinished { stats: RunStats },
}

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many cases run at once.
    pub jobs: usize,
    /// Stop starting cases after the first failure.
    pub fail_fast: bool,
    /// The target's name, for the reports.
    pub target: String,
}

/// Runs every case of `plan`; sends events to `events`; returns the final statistics.
pub async fn run<P: Platform>(
    plan: Arc<Plan>,
    platform: Arc<P>,
    observer: Observer,
    options: RunOptions,
    events: mpsc::UnboundedSender<Event>,
) -> RunStats {
    let started = Instant::now();
    let _ = events.send(Event::RunStarted {
        run_id: plan.run_id.clone(),
        total: plan.len(),
        target: options.target.clone(),
    });
    let jobs = options.jobs.max(1);
    // `--jobs` cases at a time; `--fail-fast` closes it, and every case not yet started is skipped.
    let active = Arc::new(Semaphore::new(jobs));
    let masker = Arc::new(transcript::Masker::from_env());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<CaseResult>();
    let driver = {
        let (plan, active, fail_fast) = (plan.clone(), active.clone(), options.fail_fast);
        tokio::spawn(async move {
            for (suite_index, suite) in plan.suites.iter().enumerate() {
                for case_index in 0..suite.cases.len() {
                    let index = suite.cases[case_index].index;
                    let Ok(slot) = active.clone().acquire_owned().await else {
                        let _ = done_tx.send(skipped(index));
                        continue;
                    };
                    let (plan, platform, observer, active, done_tx, masker) = (
                        plan.clone(),
                        platform.clone(),
                        observer.clone(),
                        active.clone(),
                        done_tx.clone(),
                        masker.clone(),
                    );
                    tokio::spawn(async move {
                        let case = &plan.suites[suite_index].cases[case_index];
                        let (mut result, entries) =
                            case::run_case(case, &*platform, &observer).await;
                        if result.status != Status::Passed {
                            result.transcript = transcript::render(&entries, &masker);
                        }
                        if fail_fast && matches!(result.status, Status::Failed | Status::Errored) {
                            // Closed while this case still holds its slot: no other case starts.
                            active.close();
                        }
                        drop(slot);
                        let _ = done_tx.send(result);
                    });
                }
            }
        })
    };
    let mut stats = RunStats::default();
    while let Some(result) = done_rx.recv().await {
        stats.add(&result);
        let _ = events.send(Event::CaseFinished(Arc::new(result)));
    }
    let _ = driver.await;
    stats.duration_ms = started.elapsed().as_millis() as u64;
    let _ = events.send(Event::RunFinished { stats });
    stats
}

/// Why a case did not run after `--fail-fast` stopped the run.
pub const FAIL_FAST_SKIP: &str = "not run: --fail-fast stopped the run after a failure";

fn skipped(index: usize) -> CaseResult {
    CaseResult {
        index,
        status: Status::Skipped,
        duration: std::time::Duration::ZERO,
        attempts: 0,
        failures: Vec::new(),
        error: Some(FAIL_FAST_SKIP.to_string()),
        ids: Ids::default(),
        transcript: Vec::new(),
    }
}
