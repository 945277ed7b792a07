//! Running a plan: cases concurrently on tokio, as the schedule allows, each reported as
//! events. Every planned case gets exactly one final verdict: a case whose task panics is
//! `errored`, a case that never started is `skipped` with the reason.
//!
//! After the last verdict the runner waits one short window (less when the platform can tell
//! it has nothing left to send within it) and recounts every judged case's deliveries: one
//! that no case saw at its verdict (a duplicate, or any delivery that came after the verdict)
//! fails its case late. Waiting for duplicates therefore holds no job slot.

pub mod case;
pub mod events;
pub mod result;
pub mod schedule;
pub mod source;
pub mod transcript;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use events::{CancelReason, Event, EventKind, RunInfo};
pub use result::{CaseResult, Ids, Inputs, Status};
pub use source::{CallbackLog, CallbackSource, RemoteReceiver};

use crate::check::Failure;
use crate::delivery::Delivery;
use crate::plan::{Case, Mode, Plan};
use crate::platform::Platform;
pub use case::TargetClock;
use case::{CaseOutcome, Watch};
use schedule::Schedule;

/// How long after the last verdict deliveries are still awaited before the late recount.
pub const LATE_WINDOW: Duration = Duration::from_millis(50);
/// How often, within the window, the platform is asked whether it has anything left to send.
const QUIET_POLL: Duration = Duration::from_millis(2);

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many cases run at once.
    pub jobs: usize,
    /// Stop starting cases after the first failure.
    pub fail_fast: bool,
    /// The target's name, for the reports.
    pub target: String,
    /// `K/N` when this run is one shard of several.
    pub shard: Option<String>,
    /// How long a platform minute lasts on the target.
    pub clock: TargetClock,
    /// How many more times a failed or errored case is run (`--retries`).
    pub retries: u32,
    /// Keep every case's requests, answers and callbacks, not only those of cases that did
    /// not pass (`--verbose`).
    pub verbose: bool,
}

/// How a run is stopped from outside: `finish` starts no more cases (running ones finish),
/// `abort` stops the running ones too. Cancelling `abort` implies `finish`.
#[derive(Debug, Clone)]
pub struct Interrupt {
    pub finish: CancellationToken,
    pub abort: CancellationToken,
}

impl Default for Interrupt {
    fn default() -> Self {
        let abort = CancellationToken::new();
        Interrupt {
            finish: abort.child_token(),
            abort,
        }
    }
}

/// What a case shares with other cases: a known click, a conversion, its member. Cases that
/// share any of these never run at the same time.
pub fn resources(case: &Case) -> Vec<String> {
    match &case.mode {
        Mode::Generate => vec![format!("member:{}", case.member)],
        Mode::Click(click) => vec![format!("click:{click}")],
        Mode::CallbackOnly { click, conversion } => {
            vec![format!("click:{click}"), format!("conversion:{conversion}")]
        }
    }
}

struct Emitter(mpsc::UnboundedSender<Event>);

impl Emitter {
    fn emit(&self, kind: EventKind) {
        // A report that stopped listening is no reason to stop the run.
        let _ = self.0.send(Event {
            at: chrono::Utc::now(),
            kind,
        });
    }
}

/// Runs every case of `plan`; sends events to `events`. Each case is handed to its task and
/// dropped with its verdict, so that the plan's memory goes as the run goes.
pub async fn run<P: Platform, S: CallbackSource>(
    mut plan: Plan,
    platform: Arc<P>,
    source: Arc<S>,
    options: RunOptions,
    interrupt: Interrupt,
    events: mpsc::UnboundedSender<Event>,
) {
    let started = Instant::now();
    let out = Emitter(events);
    let info = RunInfo::of(&plan, &options.target, options.shard.clone());
    out.emit(EventKind::RunStarted(Arc::new(info)));
    let mut schedule = Schedule::new(plan.cases().map(resources));
    let mut waiting: Vec<Option<Arc<Case>>> = plan
        .suites
        .iter_mut()
        .flat_map(|suite| std::mem::take(&mut suite.cases))
        .map(|case| Some(Arc::new(case)))
        .collect();
    let jobs = options.jobs.max(1);
    let mut running: JoinSet<CaseOutcome> = JoinSet::new();
    let mut running_cases: HashMap<tokio::task::Id, (usize, Arc<Case>)> = HashMap::new();
    let mut stopped: Option<CancelReason> = None;
    // One watch per case at most (more only with retries): room for all, taken as they come.
    let mut watches: Vec<Recount> = Vec::with_capacity(waiting.len());
    // Every delivery some case saw at its verdict.
    let mut seen: HashSet<u64> = HashSet::new();
    let mut claimed: HashSet<u64> = HashSet::new();
    let mut last_verdict = Instant::now();
    let clock = options.clock;
    let verbose = options.verbose;
    // Starts `case` (its attempt is the case's own).
    let start = |running: &mut JoinSet<CaseOutcome>, case: Arc<Case>| {
        let (platform, source) = (platform.clone(), source.clone());
        running
            .spawn(async move {
                let mut outcome =
                    case::run_case(&case, case.attempt, &*platform, &*source, clock).await;
                if verbose || outcome.result.status != Status::Passed {
                    outcome.result.transcript = transcript::render(&outcome.entries);
                }
                outcome.entries = Vec::new();
                outcome
            })
            .id()
    };
    loop {
        while stopped.is_none() && running.len() < jobs {
            let Some(index) = schedule.next_ready() else {
                break;
            };
            let Some(case) = waiting.get_mut(index).and_then(Option::take) else {
                // The schedule hands each case out once.
                schedule.finish(index);
                continue;
            };
            let id = start(&mut running, case.clone());
            running_cases.insert(id, (index, case));
            out.emit(EventKind::CaseStarted { index, attempt: 1 });
        }
        if running.is_empty() {
            break;
        }
        tokio::select! {
            biased;
            _ = interrupt.abort.cancelled(), if stopped != Some(CancelReason::Aborted) => {
                stopped = Some(CancelReason::Aborted);
                out.emit(EventKind::RunCancelled { reason: CancelReason::Aborted });
                running.abort_all();
            }
            _ = interrupt.finish.cancelled(), if stopped.is_none() => {
                stopped = Some(CancelReason::Interrupted);
                out.emit(EventKind::RunCancelled { reason: CancelReason::Interrupted });
            }
            Some(joined) = running.join_next_with_id() => {
                last_verdict = Instant::now();
                let (id, outcome) = match joined {
                    Ok((id, outcome)) => (id, Ok(outcome)),
                    Err(e) => (e.id(), Err(e)),
                };
                let Some((index, planned)) = running_cases.remove(&id) else { continue };
                let (mut result, watch) = match outcome {
                    Ok(outcome) => {
                        // What a judged case saw is settled, and known as seen to the recount.
                        if let Some(watch) = &outcome.watch {
                            source.settle(&watch.key, &outcome.claimed);
                            seen.extend(outcome.claimed.iter().copied());
                            seen.extend(outcome.flagged);
                        }
                        claimed.extend(outcome.claimed);
                        (outcome.result, outcome.watch)
                    }
                    Err(e) => (CaseResult::not_run(index, Status::Errored, &broken_task(e)), None),
                };
                platform.forget(result.ids.click.as_deref(), result.ids.conversion.as_deref());
                let attempt = result.attempt.max(1);
                if result.status.is_failure() && attempt <= options.retries && stopped.is_none() {
                    // Its deliveries are claimed after the run, but fail nothing any more.
                    watches.extend(watch.map(|watch| Recount { index, watch, judged: false }));
                    match plan.rebuild(&planned, attempt + 1) {
                        Ok(next) => {
                            out.emit(EventKind::AttemptFailed(Arc::new(result)));
                            let next = Arc::new(next);
                            let id = start(&mut running, next.clone());
                            running_cases.insert(id, (index, next));
                            out.emit(EventKind::CaseStarted { index, attempt: attempt + 1 });
                            continue;
                        }
                        Err(e) => {
                            result.status = Status::Errored;
                            result.error = Some(format!("could not be run again: {e}"));
                        }
                    }
                } else {
                    watches.extend(watch.map(|watch| Recount { index, watch, judged: true }));
                }
                schedule.finish(index);
                if options.fail_fast && result.status.is_failure() && stopped.is_none() {
                    stopped = Some(CancelReason::FailFast);
                    out.emit(EventKind::RunCancelled { reason: CancelReason::FailFast });
                }
                out.emit(EventKind::CaseFinished(Arc::new(result)));
            }
        }
    }
    let why = stopped.map_or(
        "not run: pitcrew could not schedule this case (a bug; please report it)",
        CancelReason::skip_reason,
    );
    for index in schedule.drain() {
        let status = if stopped.is_some() {
            Status::Skipped
        } else {
            Status::Errored
        };
        out.emit(EventKind::CaseFinished(Arc::new(CaseResult::not_run(
            index, status, why,
        ))));
    }
    if stopped != Some(CancelReason::Aborted) {
        // Deliveries may still come within the window; a platform that can tell it will send
        // nothing more before the window closes (the embedded sandbox) ends the wait early.
        let deadline = last_verdict + LATE_WINDOW;
        while Instant::now() < deadline && !platform.quiet_until(deadline).await {
            let next_look = (Instant::now() + QUIET_POLL).min(deadline);
            tokio::select! {
                _ = tokio::time::sleep_until(next_look) => {}
                _ = interrupt.abort.cancelled() => break,
            }
        }
        if !interrupt.abort.is_cancelled() {
            for late in recount(source.clone(), watches, seen, jobs).await {
                claimed.extend(late.deliveries.iter().map(|d| d.seq));
                if late.judged {
                    out.emit(late.event());
                }
            }
        }
    }
    out.emit(EventKind::RunFinished {
        strays: source.strays(&claimed),
        duration: started.elapsed(),
    });
}

/// Why a case's task ended without a verdict.
fn broken_task(e: tokio::task::JoinError) -> String {
    if e.is_cancelled() {
        return "interrupted while running (a second Ctrl-C or SIGTERM): not judged".into();
    }
    let panic = e.into_panic();
    let what = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!(
        "pitcrew failed while running this case, which could not be judged: {what} (a bug; please report it)"
    )
}

/// A case's deliveries to recount after the run.
struct Recount {
    index: usize,
    watch: Watch,
    /// False for an attempt that failed and was run again: its late deliveries are the case's
    /// (not strays) but fail nothing.
    judged: bool,
}

/// Deliveries that came to a case after its verdict.
struct Late {
    index: usize,
    judged: bool,
    deliveries: Vec<Arc<Delivery>>,
    /// Why the recount could not be made.
    error: Option<String>,
}

impl Late {
    fn event(&self) -> EventKind {
        let failures = match (&self.error, self.deliveries.first()) {
            (Some(_), _) | (None, None) => Vec::new(),
            (None, Some(first)) => {
                let n = self.deliveries.len();
                let mut failure = Failure::new(
                    "callback.late",
                    None,
                    "no delivery after the verdict".into(),
                    format!("{n} more"),
                    None,
                );
                failure.message = format!(
                    "callback.late: {n} more deliver{} arrived after the case was judged (a duplicate or unexpected callback; the first at {}, {})",
                    if n == 1 { "y" } else { "ies" },
                    first
                        .at
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    first.outcome()
                );
                vec![failure]
            }
        };
        let entries: Vec<case::Entry> = self
            .deliveries
            .iter()
            .cloned()
            .map(case::Entry::Delivery)
            .collect();
        EventKind::LateFailure {
            index: self.index,
            failures,
            transcript: transcript::render(&entries),
            error: self.error.clone(),
        }
    }
}

/// Recounts every watched case's deliveries, `jobs` at a time. A delivery is late for a case
/// when it is the case's and no case saw it at its verdict: a later case on the same click or
/// conversion claims its own deliveries, so they are never blamed on an earlier one.
async fn recount<S: CallbackSource>(
    source: Arc<S>,
    watches: Vec<Recount>,
    seen: HashSet<u64>,
    jobs: usize,
) -> Vec<Late> {
    let seen = Arc::new(seen);
    let queue = Arc::new(Mutex::new(watches.into_iter()));
    let mut workers = JoinSet::new();
    for _ in 0..jobs {
        let (queue, source, seen) = (queue.clone(), source.clone(), seen.clone());
        workers.spawn(async move {
            let mut late = Vec::new();
            loop {
                let next = queue.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some(Recount { index, watch, judged }) = next else { break };
                match source.deliveries(&watch.key).await {
                    Ok(all) => {
                        let unseen: Vec<Arc<Delivery>> = watch
                            .mine(&all)
                            .into_iter()
                            .filter(|d| !seen.contains(&d.seq))
                            .collect();
                        if !unseen.is_empty() {
                            late.push(Late {
                                index,
                                judged,
                                deliveries: unseen,
                                error: None,
                            });
                        }
                    }
                    Err(e) => late.push(Late {
                        index,
                        judged,
                        deliveries: Vec::new(),
                        error: Some(format!(
                            "could not recount this case's deliveries after its verdict, so a late duplicate may have gone unseen: {e}"
                        )),
                    }),
                }
            }
            late
        });
    }
    let mut all = Vec::new();
    while let Some(done) = workers.join_next().await {
        all.extend(done.unwrap_or_default());
    }
    all.sort_by_key(|l| l.index);
    all
}
