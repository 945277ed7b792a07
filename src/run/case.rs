//! Running one case: drive the pipeline's steps, then its `then:` steps, wait for each part's
//! deliveries and check everything (`part.rs`). Which deliveries are the case's, and which
//! part's, the run's ledger decides (`ledger.rs`).
//!
//! A case is a sequence of parts: the pipeline (click, conversion or resend), then each step.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::time::Instant;

use super::ledger::{ClaimId, Ledger};
use super::result::{CaseResult, Ids, Inputs, Status};
use super::slots::Slot;
use super::source::{CallbackSource, SourceError};
use crate::check::{self, Failure};
use crate::delivery::{Delivery, Key};
use crate::duration::format_duration;
use crate::plan::{Action, AnswerChecks, Case, Mode, ResponseCheck, Step};
use crate::platform::{
    CallbackSent, Exchange, NewClick, NewConversion, Platform, PlatformError, StatusChange,
};

/// Waiting for callbacks stops this long before the case's timeout, so that a missing
/// callback fails the case instead of timing it out.
const CALLBACK_MARGIN: Duration = Duration::from_millis(50);

/// What the target is like, for the checks that depend on it.
#[derive(Debug, Clone, Copy)]
pub struct TargetClock {
    /// How long one platform minute lasts (the sandbox compresses its retry schedule).
    pub minute: Duration,
}

impl Default for TargetClock {
    fn default() -> Self {
        TargetClock {
            minute: Duration::from_secs(60),
        }
    }
}

/// One entry of a case's transcript.
#[derive(Debug, Clone)]
pub enum Entry {
    Exchange(Exchange),
    Delivery(Arc<Delivery>),
    /// A `then:` step began.
    Step(String),
    /// What pitcrew did besides a request of a step: the callback log's reads.
    Note(String),
}

/// What running a case produced, for the runner.
#[derive(Debug)]
pub struct CaseOutcome {
    /// Its verdict before it settles.
    pub result: CaseResult,
    /// What it sent and saw, for its transcript.
    pub entries: Vec<Entry>,
    /// When the case's timeout ends: what the target still owes it is awaited until then.
    pub deadline: Instant,
    /// How many deliveries were filed under the case's key when it last read them.
    pub seen: Option<usize>,
    /// The partner postbacks it judged.
    pub postbacks: Option<super::postbacks::PostbacksSeen>,
}

/// A case attempt's account in the run's ledger.
#[derive(Clone)]
pub struct Account {
    /// The run's ledger.
    pub ledger: Arc<Mutex<Ledger>>,
    /// The attempt's claim in it.
    pub id: ClaimId,
}

impl Account {
    /// The ledger, locked (a panicking holder leaves it usable: it only ever grows a claim).
    pub fn books(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Why a case stopped before it could be judged.
pub(super) enum Stop {
    /// An expectation failed and later steps cannot run (no id to go on with).
    Failed,
    /// The platform, the network or the callback source broke.
    Errored(CaseError),
}

/// Why a case could not be judged (it is `errored`).
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    /// The platform could not be reached, or answered what pitcrew cannot read.
    #[error(transparent)]
    Platform(#[from] PlatformError),
    /// Its deliveries could not be seen.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// A step the platform said was done answered without the id the case goes on with.
    #[error("{step}: HTTP {status} but the answer holds no {what} id")]
    NoId {
        step: &'static str,
        status: u16,
        what: &'static str,
    },
    /// A `then:` step has no conversion to work on.
    #[error("{0}: the case has no conversion to work on")]
    NoConversion(String),
    /// The case's timeout ran out first.
    #[error("the case did not finish within its timeout of {}", format_duration(*.0))]
    Timeout(Duration),
}

impl<E: Into<CaseError>> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Errored(e.into())
    }
}

pub(super) struct CaseRun<'a, P, S> {
    pub(super) case: &'a Case,
    pub(super) platform: &'a P,
    /// Its job slot: taken before each request, given back while it only waits.
    pub(super) slot: &'a Slot,
    pub(super) source: &'a S,
    pub(super) account: Account,
    pub(super) clock: TargetClock,
    pub(super) started_at: DateTime<Utc>,
    /// When waiting for callbacks must end (a little before the case's timeout).
    pub(super) deadline: Instant,
    pub(super) failures: Vec<Failure>,
    pub(super) entries: Vec<Entry>,
    pub(super) ids: Ids,
    /// How long after its callback arrived the first part noticed it (see [`CaseResult::wake`]).
    pub(super) wake: Option<Duration>,
    /// The deliveries under the case's key as the last part saw them: what the verdict looks
    /// through, as reading a platform's log once more costs a request per case (whatever
    /// comes after it, the case's settling sees).
    pub(super) last_seen: Option<Vec<Arc<Delivery>>>,
    /// How many deliveries the verdict looked through.
    pub(super) seen: Option<usize>,
    /// The conversion's state as far as pitcrew knows it: as the platform answered it (else
    /// as the case expects it), then as each status change set it. A callback must say it.
    pub(super) state_now: Option<String>,
    /// The partner postbacks it judged, to read once more when it settles.
    pub(super) postbacks: Option<super::postbacks::PostbacksSeen>,
}

/// Runs attempt `attempt` of `case` against `platform`, with `source` observing callbacks and
/// `account` its deliveries.
pub async fn run_case<P: Platform, S: CallbackSource>(
    case: &Case,
    attempt: u32,
    (platform, slot): (&P, &Slot),
    source: &S,
    account: Account,
    clock: TargetClock,
) -> CaseOutcome {
    let started = Instant::now();
    let started_at = Utc::now();
    // Timeouts are bounded (24 h) when the plan is built; a far deadline is never reached.
    let end = started.checked_add(case.timeout).unwrap_or(started);
    let mut run = CaseRun {
        case,
        platform,
        slot,
        source,
        account,
        clock,
        started_at,
        deadline: end.checked_sub(CALLBACK_MARGIN).unwrap_or(started),
        failures: Vec::new(),
        entries: Vec::new(),
        ids: Ids::default(),
        wake: None,
        last_seen: None,
        seen: None,
        state_now: None,
        postbacks: None,
    };
    let outcome = tokio::time::timeout_at(end, run.steps()).await;
    let (status, error) = match outcome {
        Err(_) => (
            Status::Errored,
            Some(CaseError::Timeout(case.timeout).to_string()),
        ),
        Ok(Err(Stop::Errored(e))) => (Status::Errored, Some(e.to_string())),
        Ok(Err(Stop::Failed)) => (Status::Failed, None),
        Ok(Ok(())) if run.failures.is_empty() => (Status::Passed, None),
        Ok(Ok(())) => (Status::Failed, None),
    };
    run.outcome(attempt, status, error, started, end)
}

impl<P, S> CaseRun<'_, P, S> {
    /// What the attempt produced, for the runner.
    fn outcome(
        self,
        attempt: u32,
        status: Status,
        error: Option<String>,
        started: Instant,
        deadline: Instant,
    ) -> CaseOutcome {
        let case = self.case;
        let result = CaseResult {
            index: case.index,
            attempt,
            status,
            started_at: Some(self.started_at),
            duration: started.elapsed(),
            failures: self.failures,
            error,
            ids: self.ids,
            inputs: Inputs {
                offer: case.offer.clone(),
                member: case.member.clone(),
                event: case.event.clone(),
                params: case.params.clone(),
            },
            transcript: Vec::new(),
            wake: self.wake,
        };
        CaseOutcome {
            result,
            entries: self.entries,
            deadline,
            seen: self.seen,
            postbacks: self.postbacks,
        }
    }
}

impl<'a, P: Platform, S: CallbackSource> CaseRun<'a, P, S> {
    /// The platform, once the case holds a job slot: a request is about to go.
    async fn platform(&self) -> &'a P {
        self.slot.take().await;
        self.platform
    }

    /// The case is about to wait: it gives its job slot back, unless waiting reads the
    /// platform's log (requests `--jobs` bounds).
    pub(super) fn only_waits(&self) {
        if !self.source.waiting_sends_requests() {
            self.slot.give_back();
        }
    }

    async fn steps(&mut self) -> Result<(), Stop> {
        let case = self.case;
        let first = match &case.mode {
            Mode::Generate => match self.create_click().await? {
                Some(click) => self.convert(&click).await?,
                // The click was (expectedly) refused: nothing can call back.
                None => return Ok(()),
            },
            Mode::Click(click) => {
                self.ids.click = Some(click.clone());
                self.convert(click).await?
            }
            Mode::CallbackOnly { click, conversion } => {
                self.ids.click = Some(click.clone());
                self.ids.conversion = Some(conversion.clone());
                self.script(click).await?;
                let expect = case.expect.callback_response.as_ref();
                let at = (case.expect.written.resend_status.as_ref()).unwrap_or(&case.expect.at);
                let tool = (case.expect.resend_status, &case.expect.resend);
                let sent = self
                    .resend((click, conversion), tool, expect, (0, at))
                    .await?;
                self.watch(Key::Conversion(conversion.clone()), false);
                sent.into_iter().collect()
            }
        };
        let started_at = self.started_at;
        self.account
            .books()
            .begin_part(self.account.id, first, started_at);
        self.check_part(0, &case.expect.callback).await?;
        for (i, step) in case.steps.iter().enumerate() {
            self.step(i + 1, step).await?;
        }
        self.check_postbacks().await?;
        self.surplus().await
    }

    /// The case's deliveries are filed under `key`; `own` when it is a conversion it made.
    fn watch(&self, key: Key, own: bool) {
        self.account.books().watch(self.account.id, key, own);
    }

    /// Registers the case's receiver script before anything can call back.
    async fn script(&mut self, click: &str) -> Result<(), Stop> {
        match &self.case.script {
            Some(script) => self
                .source
                .script(Key::Click(click.to_string()), script.clone())
                .await
                .map_err(Stop::from),
            None => Ok(()),
        }
    }

    /// Checks a tool's status in part `n`: the one the case expects (written at `at`), else
    /// one the target counts as done.
    fn expect_status(
        &mut self,
        (check, n): (&str, usize),
        expected: Option<u16>,
        done: (bool, &str),
        exchange: &Exchange,
        at: &str,
    ) -> bool {
        match check::status(check, expected, done, exchange.status, &exchange.body, at) {
            Some(failure) => {
                self.failures.push(failure.in_step(n));
                false
            }
            None => true,
        }
    }

    fn expect_answer(&mut self, step: &str, checks: &AnswerChecks, exchange: &Exchange) {
        if !checks.is_empty() {
            let failures = check::answer(step, checks, &exchange.body, &exchange.headers);
            self.failures.extend(failures);
        }
    }

    /// Returns the click id, or `None` when the click was (expectedly) refused.
    async fn create_click(&mut self) -> Result<Option<String>, Stop> {
        let case = self.case;
        let outcome = self
            .platform()
            .await
            .create_click(NewClick {
                offer: &case.offer,
                member: &case.member,
                partner: case.partner.as_deref(),
                params: Some(&case.params),
                link: case.public.link,
                sandbox_faults: case.sandbox_faults.as_deref(),
            })
            .await?;
        let expect = &case.expect;
        let done = (outcome.done, outcome.ok.as_str());
        let at = expect.written.click_status.as_ref().unwrap_or(&expect.at);
        let held = self.expect_status(
            ("click.status", 0),
            expect.click_status,
            done,
            &outcome.exchange,
            at,
        );
        if held {
            self.expect_answer("click", &case.expect.click, &outcome.exchange);
        }
        let status = outcome.exchange.status;
        self.entries.push(Entry::Exchange(outcome.exchange));
        if !held {
            return Err(Stop::Failed);
        }
        if !outcome.done {
            return Ok(None);
        }
        if case.public.link && outcome.id.is_none() {
            // The tracking link's whole job: a redirect that loses the click id loses the
            // conversion. That is a verdict on the platform, not a broken run.
            let location = (self.entries.last())
                .and_then(|e| match e {
                    Entry::Exchange(x) => check::header(&x.headers, "location"),
                    _ => None,
                })
                .map_or("no Location header".to_string(), |l| {
                    crate::check::matcher::show_actual(Some(&l))
                });
            let failure = Failure::new("click.redirect", "a redirect that carries the click id", location)
                .hint("the offer's tracking link must put the click id where its advertiser URL says `{gk_click_id}`; on a pitcrew.yaml target, check that `steps.link.id` reads it where this offer's landing page puts it")
                .at(&expect.at);
            self.failures.push(failure);
            return Err(Stop::Failed);
        }
        let id = outcome.id.ok_or(CaseError::NoId {
            step: "create click",
            status,
            what: "click",
        })?;
        self.ids.click = Some(id.clone());
        Ok(Some(id))
    }

    /// Converts `click`; sets where its deliveries are filed (the conversion, or the click when
    /// the conversion was refused) and returns the callback record the platform reported.
    async fn convert(&mut self, click: &str) -> Result<Vec<String>, Stop> {
        let case = self.case;
        self.script(click).await?;
        let outcome = self
            .platform()
            .await
            .create_conversion(NewConversion {
                click,
                offer: &case.offer,
                member: &case.member,
                event: case.event.as_deref().unwrap_or_default(),
                params: &case.params,
                sandbox_faults: case.sandbox_faults.as_deref(),
                postback: case.public.postback,
            })
            .await?;
        let expect = &case.expect;
        let held = self.expect_status(
            ("conversion.status", 0),
            expect.conversion_status,
            (outcome.done, &outcome.ok),
            &outcome.exchange,
            expect
                .written
                .conversion_status
                .as_ref()
                .unwrap_or(&expect.at),
        );
        if held {
            self.expect_answer("conversion", &expect.conversion, &outcome.exchange);
        }
        let status = outcome.exchange.status;
        self.entries.push(Entry::Exchange(outcome.exchange));
        if !held {
            return Err(Stop::Failed);
        }
        let Some(id) = outcome.id else {
            if outcome.done {
                return Err(Stop::from(CaseError::NoId {
                    step: "create conversion",
                    status,
                    what: "conversion",
                }));
            }
            self.watch(Key::Click(click.to_string()), false);
            return Ok(Vec::new());
        };
        self.ids.conversion = Some(id.clone());
        self.watch(Key::Conversion(id), true);
        if let Some(problem) = outcome.state_problem {
            return Err(Stop::from(CaseError::Platform(PlatformError {
                step: "create conversion",
                kind: crate::platform::PlatformErrorKind::Unreadable,
                message: problem,
            })));
        }
        self.expect_state(outcome.state.as_deref(), outcome.reason.as_deref());
        self.state_now = outcome.state.or_else(|| expect.conversion_state.clone());
        Ok(outcome.callback_id.into_iter().collect())
    }

    /// Checks the conversion's state as the platform answered it (`reason`: why it rejected
    /// it), in pitcrew's words: the one the case expects, else Success or Pending.
    fn expect_state(&mut self, got: Option<&str>, reason: Option<&str>) {
        let expect = &self.case.expect;
        let at = expect
            .written
            .conversion_state
            .as_ref()
            .unwrap_or(&expect.at);
        match (&expect.conversion_state, got) {
            (Some(wanted), Some(got)) if wanted.eq_ignore_ascii_case(got) => {}
            (Some(wanted), got) => self.failures.push(state_failure(wanted, got, reason, at)),
            // By default a conversion must be made: Success or Pending.
            (None, Some(got)) if !matches!(got, "Success" | "Pending") => {
                let failure = state_failure("Success or Pending", Some(got), reason, at);
                self.failures.push(failure);
            }
            (None, _) => {}
        }
    }

    /// Resends a conversion's callback in part `n`; returns the callback record id the tool
    /// reported. `tool`: the status the tool must answer (`None`: one the target counts as
    /// done) and the checks on its answer (`expect.resend`); `expect`: on the endpoint's
    /// answer it reports; `at`: where the tool's status is expected (or the case or step that
    /// resends).
    async fn resend(
        &mut self,
        (click, conversion): (&str, &str),
        (status, answer): (Option<u16>, &AnswerChecks),
        expect: Option<&ResponseCheck>,
        (n, at): (usize, &str),
    ) -> Result<Option<String>, Stop> {
        let sent = self
            .platform()
            .await
            .send_callback(click, conversion)
            .await?;
        self.entries.push(Entry::Exchange(sent.exchange.clone()));
        let done = (sent.done, sent.ok.as_str());
        if !self.expect_status(("resend.status", n), status, done, &sent.exchange, at) {
            return Err(Stop::Failed);
        }
        self.expect_answer("resend", answer, &sent.exchange);
        if status.is_some_and(|s| !(200..300).contains(&s)) {
            // Refused, as expected: nothing was sent.
            return Ok(None);
        }
        if let Some(expect) = expect {
            let failures = response_failures(&sent, expect);
            self.failures
                .extend(failures.into_iter().map(|f| f.in_step(n)));
        }
        Ok(sent.callback_id)
    }

    /// Runs step `n` (from 1) of the case.
    async fn step(&mut self, n: usize, step: &Step) -> Result<(), Stop> {
        let prefix = format!("then[{n}]");
        self.entries.push(Entry::Step(format!(
            "{prefix} {} ({})",
            step.action.describe(),
            step.at
        )));
        let start = Utc::now();
        let (Some(click), Some(conversion)) = (self.ids.click.clone(), self.ids.conversion.clone())
        else {
            return Err(Stop::from(CaseError::NoConversion(prefix)));
        };
        let ids = match &step.action {
            Action::ChangeStatus { status, reason } => {
                let outcome = self
                    .platform()
                    .await
                    .change_status(StatusChange {
                        conversion: &conversion,
                        click: &click,
                        status,
                        reason: reason.as_deref(),
                    })
                    .await?;
                self.entries.push(Entry::Exchange(outcome.exchange.clone()));
                let done = (outcome.done, outcome.ok.as_str());
                let check = ("change_status.status", n);
                if !self.expect_status(check, None, done, &outcome.exchange, &step.at) {
                    return Err(Stop::Failed);
                }
                self.state_now = Some(status.clone());
                outcome.callback_id.into_iter().collect()
            }
            Action::Resend => self
                .resend(
                    (&click, &conversion),
                    (None, &AnswerChecks::default()),
                    step.expect.callback_response.as_ref(),
                    (n, &step.at),
                )
                .await?
                .into_iter()
                .collect(),
            Action::Wait(duration) => {
                self.slot.give_back();
                tokio::time::sleep_until((Instant::now() + *duration).min(self.deadline)).await;
                Vec::new()
            }
        };
        self.account.books().begin_part(self.account.id, ids, start);
        self.check_part(n, &step.expect.callback).await
    }
}

/// The callback tool's report of the endpoint's answer, against what the part expects.
fn response_failures(sent: &CallbackSent, expect: &ResponseCheck) -> Vec<Failure> {
    let mut failures = Vec::new();
    let actual_status = match (sent.endpoint_status, &sent.endpoint_error) {
        (Some(s), _) => s.to_string(),
        (None, Some(e)) => format!("no answer ({e})"),
        (None, None) => "no answer".into(),
    };
    let wanted = match expect.status {
        Some(s) => (sent.endpoint_status != Some(s)).then(|| s.to_string()),
        None => (!sent
            .endpoint_status
            .is_some_and(|s| (200..300).contains(&s)))
        .then(|| "2xx".to_string()),
    };
    if let Some(wanted) = wanted {
        let check = "callback_response.status";
        failures.push(Failure::new(check, wanted, actual_status).at(&expect.at));
    }
    if !expect.answer.is_empty() {
        let body = sent.endpoint_body.clone().map_or(Value::Null, |text| {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        });
        failures.extend(check::answer(
            "callback_response",
            &expect.answer,
            &body,
            &sent.endpoint_headers,
        ));
    }
    failures
}

/// `conversion.state`: the platform answered another state than the case expects (`at`).
fn state_failure(wanted: &str, got: Option<&str>, reason: Option<&str>, at: &str) -> Failure {
    let got_text = got.unwrap_or("no state in the answer");
    let failure = Failure::new("conversion.state", wanted, got_text).at(at);
    let failure = match reason {
        Some(reason) => failure.note(reason),
        None => failure,
    };
    if got.is_some_and(|g| g.eq_ignore_ascii_case("Rejected")) {
        failure.hint("expect `conversion: { state: Rejected }` if the platform must refuse it")
    } else {
        failure
    }
}
