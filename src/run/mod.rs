//! Running a plan: cases concurrently on tokio, results reported as events in any order and
//! carrying their plan index, so that every report can keep file order.

pub mod case;
pub mod result;
pub mod transcript;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    /// How many cases talk to the platform at once.
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
    let active = Arc::new(Semaphore::new(jobs));
    // Cases waiting for callbacks hold no `active` permit; this bounds them (and memory).
    let in_flight = Arc::new(Semaphore::new((jobs * 64).clamp(64, 16_384)));
    let stop = Arc::new(AtomicBool::new(false));
    let masker = Arc::new(transcript::Masker::from_env());
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<CaseResult>();
    let driver = {
        let plan = plan.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            for (suite_index, suite) in plan.suites.iter().enumerate() {
                for case_index in 0..suite.cases.len() {
                    let index = suite.cases[case_index].index;
                    if stop.load(Ordering::Relaxed) {
                        let _ =
                            done_tx.send(skipped(index, "not run: --fail-fast stopped the run"));
                        continue;
                    }
                    let Ok(slot) = in_flight.clone().acquire_owned().await else {
                        return;
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
                            case::run_case(case, &*platform, &observer, &active).await;
                        if result.status != Status::Passed {
                            result.transcript = transcript::render(&entries, &masker);
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
        if options.fail_fast && matches!(result.status, Status::Failed | Status::Errored) {
            stop.store(true, Ordering::Relaxed);
        }
        stats.add(&result);
        let _ = events.send(Event::CaseFinished(Arc::new(result)));
    }
    let _ = driver.await;
    stats.duration_ms = started.elapsed().as_millis() as u64;
    let _ = events.send(Event::RunFinished { stats });
    stats
}

fn skipped(index: usize, why: &str) -> CaseResult {
    CaseResult {
        index,
        status: Status::Skipped,
        duration: std::time::Duration::ZERO,
        attempts: 0,
        failures: Vec::new(),
        error: Some(why.to_string()),
        ids: Ids::default(),
        transcript: Vec::new(),
    }
}
