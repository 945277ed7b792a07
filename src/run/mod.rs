//! Running a plan: cases concurrently on tokio, as the schedule allows, each reported as
//! events. Every planned case gets exactly one final verdict: a case whose task panics is
//! `errored`, a case that never started is `skipped` with the reason.
//!
//! A case runs in a job slot until its verdict, then settles outside it (`settle.rs`) until
//! its verdict is final; then it is run again (`--retries`) or finished. Which deliveries are
//! whose, the ledger says (`ledger.rs`); what is left unclaimed at the end is a stray.

pub mod case;
pub mod events;
pub mod ledger;
mod part;
pub mod postbacks;
pub mod result;
pub mod schedule;
pub mod settle;
pub mod slots;
pub mod source;
pub mod transcript;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{self, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use events::{CancelReason, Event, EventKind, RunInfo};
pub use result::{CaseResult, Ids, Inputs, Status};
pub use source::{CallbackLog, CallbackSource, RemoteReceiver};

use crate::plan::{Case, Mode, Plan};
use crate::platform::{Outbox, Platform};
pub use case::TargetClock;
use case::{Account, CaseOutcome};
use ledger::Ledger;
use schedule::Schedule;
use settle::Settle;

/// How long a case's deliveries must be quiet after its verdict before the verdict is final,
/// on a target that cannot tell what it still has to send, when neither `--settle` nor the
/// case sets it. (On a target that can tell, there is no window unless one is set.)
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(1);

/// How to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// How many cases send requests or check at once (job slots); a case that only waits
    /// holds none, and up to [`slots::CASES_PER_SLOT`] times as many cases are in flight.
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
    /// The settle window of cases that set none (`--settle`); `None`: [`DEFAULT_SETTLE`] on a
    /// target that cannot tell what it still has to send, none on one that can.
    pub settle: Option<Duration>,
}

/// What a run runs against: the platform's steps, where its deliveries are seen, and what
/// it can tell of what it still has to send.
pub struct Wiring<P, S> {
    /// The pipeline's steps.
    pub platform: Arc<P>,
    /// Where the platform's deliveries are seen.
    pub source: Arc<S>,
    /// What the target can tell of what it still has to send.
    pub outbox: Arc<dyn Outbox>,
}

/// How a run is stopped from outside: `finish` starts no more cases (running ones finish),
/// `abort` stops the running ones too. Cancelling `abort` implies `finish`.
#[derive(Debug, Clone)]
pub struct Interrupt {
    /// Start no more cases (the first Ctrl-C).
    pub finish: CancellationToken,
    /// Stop the running and settling cases too (the second).
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
    let mut shared = match &case.mode {
        Mode::Generate => vec![format!("member:{}", case.member)],
        Mode::Click(click) => vec![format!("click:{click}")],
        Mode::CallbackOnly { click, conversion } => {
            vec![format!("click:{click}"), format!("conversion:{conversion}")]
        }
    };
    // Its partner postbacks are matched by it.
    if let Some(id) = case.params.get(crate::plan::PUB_CLICK_ID) {
        shared.push(format!("pub_click:{id}"));
    }
    shared
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
/// dropped with its final verdict, so that the plan's memory goes as the run goes.
pub async fn run<P: Platform, S: CallbackSource>(
    plan: Plan,
    wiring: Wiring<P, S>,
    options: RunOptions,
    interrupt: Interrupt,
    events: mpsc::UnboundedSender<Event>,
) {
    Runner::new(plan, wiring, options, interrupt, events)
        .run()
        .await;
}

/// An attempt in flight: its case and its account in the ledger.
struct Attempt {
    index: usize,
    case: Arc<Case>,
    account: Account,
}

/// A failed attempt's case, built again, waiting for a job slot.
struct Retry {
    index: usize,
    next: Arc<Case>,
    /// The attempt that failed: reported when the next one starts, or as the case's verdict
    /// when the run stops first.
    failed: Arc<CaseResult>,
}

/// The run: what is waiting, running and settling, and the books.
struct Runner<P, S> {
    plan: Plan,
    platform: Arc<P>,
    settle: Arc<Settle<S>>,
    options: RunOptions,
    interrupt: Interrupt,
    out: Emitter,
    ledger: Arc<Mutex<Ledger>>,
    schedule: Schedule,
    /// Cases not started yet, by index (each taken when it starts).
    waiting: Vec<Option<Arc<Case>>>,
    /// Failed attempts built again, to start before any new case.
    again: VecDeque<Retry>,
    running: JoinSet<CaseOutcome>,
    /// The job slots (`--jobs`).
    slots: Arc<slots::Slots>,
    settling: JoinSet<CaseResult>,
    /// Every attempt running or settling, by its task.
    attempts: HashMap<task::Id, Attempt>,
    stopped: Option<CancelReason>,
    started: Instant,
}

impl<P: Platform, S: CallbackSource> Runner<P, S> {
    fn new(
        mut plan: Plan,
        wiring: Wiring<P, S>,
        options: RunOptions,
        interrupt: Interrupt,
        events: mpsc::UnboundedSender<Event>,
    ) -> Self {
        let out = Emitter(events);
        let info = RunInfo::of(&plan, &options.target, options.shard.clone());
        out.emit(EventKind::RunStarted(Arc::new(info)));
        let schedule = Schedule::new(plan.cases().map(resources));
        let waiting = plan
            .suites
            .iter_mut()
            .flat_map(|suite| std::mem::take(&mut suite.cases))
            .map(|case| Some(Arc::new(case)))
            .collect();
        let settle = Settle {
            source: wiring.source,
            outbox: wiring.outbox,
            abort: interrupt.abort.clone(),
            verbose: options.verbose,
        };
        let slots = slots::Slots::new(options.jobs);
        Runner {
            plan,
            platform: wiring.platform,
            settle: Arc::new(settle),
            options,
            interrupt,
            out,
            ledger: Arc::default(),
            schedule,
            waiting,
            again: VecDeque::new(),
            running: JoinSet::new(),
            slots,
            settling: JoinSet::new(),
            attempts: HashMap::new(),
            stopped: None,
            started: Instant::now(),
        }
    }

    async fn run(mut self) {
        // An interrupt that came before the run began (while the plan loaded) starts no case.
        if self.interrupt.finish.is_cancelled() {
            self.stop(CancelReason::Interrupted);
        }
        loop {
            self.start_ready();
            if self.running.is_empty() && self.settling.is_empty() {
                break;
            }
            self.next().await;
        }
        self.skip_the_rest();
        // Not held while the source looks at its own books.
        let claimed = self
            .ledger
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .claimed()
            .clone();
        let strays = self.settle.source.strays(&claimed);
        self.out.emit(EventKind::RunFinished {
            strays,
            duration: self.started.elapsed(),
        });
    }

    /// Starts attempts while job slots are free: cases run again first, then ready ones.
    fn start_ready(&mut self) {
        while self.can_start() {
            let Some(slot) = self.slots.try_start() else {
                break;
            };
            if let Some(retry) = self.again.pop_front() {
                self.out.emit(EventKind::AttemptFailed(retry.failed));
                self.start(retry.index, retry.next, slot);
                continue;
            }
            let Some(index) = self.schedule.next_ready() else {
                break;
            };
            match self.waiting.get_mut(index).and_then(Option::take) {
                Some(case) => self.start(index, case, slot),
                // The schedule hands each case out once.
                None => self.schedule.finish(index),
            }
        }
    }

    /// Whether an attempt could start now, were a job slot free: one is ready, and fewer
    /// cases than [`slots::CASES_PER_SLOT`] per slot are running (settling ones aside).
    fn can_start(&self) -> bool {
        self.stopped.is_none()
            && (!self.again.is_empty() || self.schedule.has_ready())
            && self.running.len()
                < self
                    .options
                    .jobs
                    .max(1)
                    .saturating_mul(slots::CASES_PER_SLOT)
    }

    /// Starts `case` (its attempt is the case's own) in a job slot.
    fn start(&mut self, index: usize, case: Arc<Case>, slot: slots::Slot) {
        let account = Account {
            ledger: self.ledger.clone(),
            id: self.ledger_open(),
        };
        let (platform, source) = (self.platform.clone(), self.settle.source.clone());
        let (clock, task_case, task_account) = (self.options.clock, case.clone(), account.clone());
        let id = self
            .running
            .spawn(async move {
                let case = &*task_case;
                case::run_case(
                    case,
                    case.attempt,
                    (&*platform, &slot),
                    &*source,
                    task_account,
                    clock,
                )
                .await
            })
            .id();
        self.out.emit(EventKind::CaseStarted {
            index,
            attempt: case.attempt,
        });
        self.attempts.insert(
            id,
            Attempt {
                index,
                case,
                account,
            },
        );
    }

    fn ledger_open(&self) -> ledger::ClaimId {
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        ledger.open(chrono::Utc::now())
    }

    /// Waits for the next thing to happen: an interrupt, a verdict, a case settled.
    async fn next(&mut self) {
        let aborted = self.stopped == Some(CancelReason::Aborted);
        tokio::select! {
            biased;
            _ = self.interrupt.abort.cancelled(), if !aborted => {
                self.stop(CancelReason::Aborted);
                self.running.abort_all();
            }
            _ = self.interrupt.finish.cancelled(), if self.stopped.is_none() => {
                self.stop(CancelReason::Interrupted);
            }
            Some(joined) = self.running.join_next_with_id() => self.take_verdict(joined),
            // A slot given back by a case that now only waits: start_ready takes it.
            _ = self.slots.free_for_a_new_case(), if self.can_start() => {}
            Some(joined) = self.settling.join_next_with_id() => {
                let (id, result) = match joined {
                    Ok((id, result)) => (id, Ok(result)),
                    Err(e) => (e.id(), Err(e)),
                };
                if let Some(attempt) = self.attempts.remove(&id) {
                    let result = result.unwrap_or_else(|e| broken(&attempt, e));
                    self.retry_or_finish(attempt, result);
                }
            }
        }
    }

    fn stop(&mut self, reason: CancelReason) {
        self.stopped = Some(reason);
        self.out.emit(EventKind::RunCancelled { reason });
    }

    /// A case reached its verdict: it settles, out of its job slot (a broken task is final).
    fn take_verdict(&mut self, joined: Result<(task::Id, CaseOutcome), task::JoinError>) {
        let (id, outcome) = match joined {
            Ok((id, outcome)) => (id, Ok(outcome)),
            Err(e) => (e.id(), Err(e)),
        };
        let Some(attempt) = self.attempts.remove(&id) else {
            return;
        };
        let outcome = match outcome {
            Ok(outcome) => outcome,
            Err(e) => {
                let result = broken(&attempt, e);
                return self.retry_or_finish(attempt, result);
            }
        };
        // Settling can only add failures: a failure that will not be run again stops the run
        // now, not once it settles.
        let last_try = outcome.result.attempt.max(1) > self.options.retries;
        if outcome.result.status.is_failure() && last_try {
            self.fail_fast();
        }
        let window = attempt.case.settle.or(self.options.settle);
        let (settle, account, case) = (
            self.settle.clone(),
            attempt.account.clone(),
            attempt.case.clone(),
        );
        let id = self
            .settling
            .spawn(async move {
                let expect = &case.expect;
                let at = expect.callback.at().unwrap_or(&expect.at);
                settle.settle(&account, outcome, (window, at)).await
            })
            .id();
        self.attempts.insert(id, attempt);
    }

    /// A case's verdict is final: its account closes; it runs again when it failed and may,
    /// else it is finished.
    fn retry_or_finish(&mut self, attempt: Attempt, mut result: CaseResult) {
        let Attempt {
            index,
            case,
            account,
        } = attempt;
        self.close(&account, &result);
        let number = case.attempt;
        if result.status.is_failure() && number <= self.options.retries && self.stopped.is_none() {
            match self.plan.rebuild(&case, number + 1) {
                Ok(next) => {
                    self.again.push_back(Retry {
                        index,
                        next: Arc::new(next),
                        failed: Arc::new(result),
                    });
                    return;
                }
                Err(e) => {
                    result.status = Status::Errored;
                    result.error = Some(format!("could not be run again: {e}"));
                }
            }
        }
        self.schedule.finish(index);
        if result.status.is_failure() {
            self.fail_fast();
        }
        self.out.emit(EventKind::CaseFinished(Arc::new(result)));
    }

    /// A case failed for good: with `--fail-fast`, no more cases start.
    fn fail_fast(&mut self) {
        if self.options.fail_fast && self.stopped.is_none() {
            self.stop(CancelReason::FailFast);
        }
    }

    /// Closes an attempt's account: the source and the target may forget what it claimed.
    fn close(&self, account: &Account, result: &CaseResult) {
        let closed = account.books().close(account.id);
        if let Some(closed) = closed {
            self.settle.source.forget(&closed.key, &closed.claimed);
        }
        let ids = &result.ids;
        self.settle
            .outbox
            .forget(ids.click.as_deref(), ids.conversion.as_deref());
    }

    /// Every case that never started: skipped when the run was stopped, else errored (a bug).
    fn skip_the_rest(&mut self) {
        let why = self.stopped.map_or(
            "not run: pitcrew could not schedule this case (a bug; please report it)",
            CancelReason::skip_reason,
        );
        let status = if self.stopped.is_some() {
            Status::Skipped
        } else {
            Status::Errored
        };
        for index in self.schedule.drain() {
            let result = CaseResult::not_run(index, status, why);
            self.out.emit(EventKind::CaseFinished(Arc::new(result)));
        }
        // A failed attempt whose retry never started (the run stopped first) is the verdict.
        for retry in std::mem::take(&mut self.again) {
            self.schedule.finish(retry.index);
            self.out.emit(EventKind::CaseFinished(retry.failed));
        }
    }
}

/// The result of an attempt whose task ended without a verdict: errored, with why.
fn broken(attempt: &Attempt, e: task::JoinError) -> CaseResult {
    CaseResult {
        attempt: attempt.case.attempt,
        ..CaseResult::not_run(attempt.index, Status::Errored, &broken_task(e))
    }
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
