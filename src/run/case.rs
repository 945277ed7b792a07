//! Running one case: drive the pipeline's steps, then its `then:` steps, wait for each part's
//! deliveries, check everything, and say which deliveries were the case's.
//!
//! A case is a sequence of parts: the pipeline (click, conversion or resend), then each step.
//! A delivery is the case's when it is filed under the case's conversion (or, when no
//! conversion was made, its click) and is a callback record the platform said it sent for the
//! case (the `callbackId` of a conversion, resend or status-change answer); one without a
//! record id counts when it came after the case began. It belongs to the part whose record it
//! is, else to the part that was running when it came. Any delivery of the case that no part
//! expected fails it; on the case's own conversion, a record the platform did not report fails
//! it too (and stays a stray).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::time::Instant;

use super::result::{CaseResult, Ids, Inputs, Status};
use super::source::CallbackSource;
use crate::check::{self, Failure, callback as callback_check};
use crate::delivery::{Delivery, Key};
use crate::duration::format_duration;
use crate::plan::{
    Action, AnswerChecks, CallbackCheck, CallbackExpect, Case, Mode, ResponseCheck, Step,
};
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
}

/// What running a case produced, for the runner.
#[derive(Debug)]
pub struct CaseOutcome {
    pub result: CaseResult,
    /// What to recount after the verdict, to catch late deliveries.
    pub watch: Option<Watch>,
    /// The sequence numbers of the deliveries the case claimed (judged at its verdict).
    pub claimed: Vec<u64>,
    /// Deliveries on the case's own conversion that it failed for and did not claim (records
    /// the platform did not report: they stay strays), so that no recount counts them again.
    pub flagged: Vec<u64>,
    pub entries: Vec<Entry>,
}

/// The deliveries that are a case's, to recount after its verdict.
#[derive(Debug, Clone)]
pub struct Watch {
    pub key: Key,
    /// The callback records the platform said it sent for the case (empty: it did not say).
    pub callback_ids: Box<[String]>,
    /// Deliveries that carry no callback record id count from this time on.
    pub since: DateTime<Utc>,
    /// True when `key` is a conversion the case made: from `since` on, every delivery filed
    /// there is the case's, reported or not (the rule its verdict judged by).
    pub own: bool,
}

impl Watch {
    /// True when `delivery` is one of the case's.
    pub fn owns(&self, delivery: &Delivery) -> bool {
        let since = delivery.at >= self.since;
        match &delivery.ids.callback {
            Some(id) if !self.callback_ids.is_empty() => {
                self.callback_ids.contains(id) || (self.own && since)
            }
            _ => since,
        }
    }

    /// The case's deliveries among `all`.
    pub fn mine(&self, all: &[Arc<Delivery>]) -> Vec<Arc<Delivery>> {
        all.iter().filter(|d| self.owns(d)).cloned().collect()
    }
}

/// One part of a case: the records it made the platform send and when it began.
#[derive(Debug, Clone)]
struct Part {
    ids: Vec<String>,
    start: DateTime<Utc>,
}

/// Why a case stopped before it could be judged.
enum Stop {
    /// An expectation failed and later steps cannot run (no id to go on with).
    Failed,
    /// The platform, the network or the callback source broke.
    Errored(String),
}

impl From<PlatformError> for Stop {
    fn from(e: PlatformError) -> Stop {
        Stop::Errored(e.to_string())
    }
}

struct CaseRun<'a, P, S> {
    case: &'a Case,
    platform: &'a P,
    source: &'a S,
    clock: TargetClock,
    started_at: DateTime<Utc>,
    /// When waiting for callbacks must end (a little before the case's timeout).
    deadline: Instant,
    failures: Vec<Failure>,
    entries: Vec<Entry>,
    ids: Ids,
    /// Where the case's deliveries are filed, once known.
    key: Option<Key>,
    /// True when `key` is the case's own (a conversion it made): every record there is its.
    own_key: bool,
    parts: Vec<Part>,
    /// Deliveries a part has judged.
    judged: HashSet<u64>,
    /// Deliveries [`Self::unexpected`] failed the case for without claiming them.
    flagged: Vec<u64>,
    /// How long after its callback arrived the first part noticed it (see [`CaseResult::wake`]).
    wake: Option<Duration>,
    /// The deliveries under `key` as the last part saw them: what [`Self::unexpected`] looks
    /// through, as reading a platform's log once more costs a request per case (whatever
    /// comes after it, the recount after the run sees).
    last_seen: Option<Vec<Arc<Delivery>>>,
}

/// Runs attempt `attempt` of `case` against `platform`, with `source` observing callbacks.
pub async fn run_case<P: Platform, S: CallbackSource>(
    case: &Case,
    attempt: u32,
    platform: &P,
    source: &S,
    clock: TargetClock,
) -> CaseOutcome {
    let started = Instant::now();
    let started_at = Utc::now();
    // Timeouts are bounded (24 h) when the plan is built; a far deadline is never reached.
    let end = started.checked_add(case.timeout).unwrap_or(started);
    let mut run = CaseRun {
        case,
        platform,
        source,
        clock,
        started_at,
        deadline: end.checked_sub(CALLBACK_MARGIN).unwrap_or(started),
        failures: Vec::new(),
        entries: Vec::new(),
        ids: Ids::default(),
        key: None,
        own_key: false,
        parts: Vec::new(),
        judged: HashSet::new(),
        flagged: Vec::new(),
        wake: None,
        last_seen: None,
    };
    let outcome = tokio::time::timeout_at(end, run.steps()).await;
    let (status, error) = match outcome {
        Err(_) => (
            Status::Errored,
            Some(format!(
                "the case did not finish within its timeout of {}",
                format_duration(case.timeout)
            )),
        ),
        Ok(Err(Stop::Errored(e))) => (Status::Errored, Some(e)),
        Ok(Err(Stop::Failed)) => (Status::Failed, None),
        Ok(Ok(())) if run.failures.is_empty() => (Status::Passed, None),
        Ok(Ok(())) => (Status::Failed, None),
    };
    // A case that could not be judged has nothing to recount later.
    let watch = run
        .key
        .clone()
        .filter(|_| status != Status::Errored)
        .map(|key| Watch {
            key,
            callback_ids: run.parts.iter().flat_map(|p| p.ids.clone()).collect(),
            since: started_at,
            own: run.own_key,
        });
    let result = CaseResult {
        index: case.index,
        attempt,
        status,
        started_at: Some(started_at),
        duration: started.elapsed(),
        failures: run.failures,
        error,
        ids: run.ids,
        inputs: Inputs {
            offer: case.offer.clone(),
            member: case.member.clone(),
            event: case.event.clone(),
            params: case.params.clone(),
        },
        transcript: Vec::new(),
        wake: run.wake,
    };
    CaseOutcome {
        result,
        watch,
        claimed: run.judged.into_iter().collect(),
        flagged: run.flagged,
        entries: run.entries,
    }
}

impl<P: Platform, S: CallbackSource> CaseRun<'_, P, S> {
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
                let sent = self.resend(click, conversion, expect, "").await?;
                self.key = Some(Key::Conversion(conversion.clone()));
                sent.into_iter().collect()
            }
        };
        self.parts.push(Part {
            ids: first,
            start: self.started_at,
        });
        self.check_part(0, &case.expect.callback).await?;
        for (i, step) in case.steps.iter().enumerate() {
            self.step(i + 1, step).await?;
        }
        self.unexpected().await
    }

    /// Registers the case's receiver script before anything can call back.
    async fn script(&mut self, click: &str) -> Result<(), Stop> {
        match &self.case.script {
            Some(script) => self
                .source
                .script(Key::Click(click.to_string()), script.clone())
                .await
                .map_err(Stop::Errored),
            None => Ok(()),
        }
    }

    /// Checks a tool's status: the one the case expects, else one the target counts as done.
    fn expect_status(
        &mut self,
        check: &str,
        expected: Option<u16>,
        done: (bool, &str),
        exchange: &Exchange,
    ) -> bool {
        match check::status(check, expected, done, exchange.status, &exchange.body) {
            Some(failure) => {
                self.failures.push(failure);
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
            .platform
            .create_click(NewClick {
                offer: &case.offer,
                member: &case.member,
                partner: case.partner.as_deref(),
            })
            .await?;
        let expected = case.expect.click_status;
        let done = (outcome.done, outcome.ok.as_str());
        let held = self.expect_status("click.status", expected, done, &outcome.exchange);
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
        let id = outcome.id.ok_or_else(|| {
            Stop::Errored(format!(
                "create click: HTTP {status} but the answer holds no click id"
            ))
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
            .platform
            .create_conversion(NewConversion {
                click,
                offer: &case.offer,
                member: &case.member,
                event: case.event.as_deref().unwrap_or_default(),
                params: &case.params,
                sandbox_faults: case.sandbox_faults.as_deref(),
            })
            .await?;
        let expect = &case.expect;
        let held = self.expect_status(
            "conversion.status",
            expect.conversion_status,
            (outcome.done, &outcome.ok),
            &outcome.exchange,
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
                return Err(Stop::Errored(format!(
                    "create conversion: HTTP {status} but the answer holds no conversion id"
                )));
            }
            self.key = Some(Key::Click(click.to_string()));
            return Ok(Vec::new());
        };
        self.ids.conversion = Some(id.clone());
        self.key = Some(Key::Conversion(id));
        self.own_key = true;
        let reason = outcome.reason.as_deref();
        match (&expect.conversion_state, outcome.state.as_deref()) {
            (Some(wanted), Some(got)) if wanted.eq_ignore_ascii_case(got) => {}
            (Some(wanted), got) => self.failures.push(state_failure(wanted, got, reason)),
            (None, Some(got)) if got.eq_ignore_ascii_case("Rejected") => self
                .failures
                .push(state_failure("Success or Pending", Some(got), reason)),
            (None, _) => {}
        }
        Ok(outcome.callback_id.into_iter().collect())
    }

    /// Resends a conversion's callback; returns the callback record id the tool reported.
    async fn resend(
        &mut self,
        click: &str,
        conversion: &str,
        expect: Option<&ResponseCheck>,
        prefix: &str,
    ) -> Result<Option<String>, Stop> {
        let sent = self.platform.send_callback(click, conversion).await?;
        self.entries.push(Entry::Exchange(sent.exchange.clone()));
        let tool = format!("{prefix}callback_tool.status");
        if !self.expect_status(&tool, None, (sent.done, &sent.ok), &sent.exchange) {
            return Err(Stop::Failed);
        }
        if let Some(expect) = expect {
            let failures = response_failures(&sent, expect);
            self.failures
                .extend(failures.into_iter().map(|f| in_step(f, prefix)));
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
            return Err(Stop::Errored(format!(
                "{prefix}: the case has no conversion to work on"
            )));
        };
        let ids = match &step.action {
            Action::ChangeStatus { status, reason } => {
                let outcome = self
                    .platform
                    .change_status(StatusChange {
                        conversion: &conversion,
                        click: &click,
                        status,
                        reason: reason.as_deref(),
                    })
                    .await?;
                self.entries.push(Entry::Exchange(outcome.exchange.clone()));
                if !outcome.done {
                    let mut f = Failure::new(
                        "change_status.status",
                        None,
                        outcome.ok.clone(),
                        outcome.exchange.status.to_string(),
                        Some(step.at.clone()),
                    );
                    if let Some(reason) = check::answer_reason(&outcome.exchange.body) {
                        f.message.push_str(&format!(" ({reason})"));
                    }
                    self.failures.push(in_step(f, &prefix));
                    return Err(Stop::Failed);
                }
                outcome.callback_id.into_iter().collect()
            }
            Action::Resend => self
                .resend(
                    &click,
                    &conversion,
                    step.expect.callback_response.as_ref(),
                    &prefix,
                )
                .await?
                .into_iter()
                .collect(),
            Action::Wait(duration) => {
                tokio::time::sleep_until((Instant::now() + *duration).min(self.deadline)).await;
                Vec::new()
            }
        };
        self.parts.push(Part { ids, start });
        self.check_part(n, &step.expect.callback).await
    }

    /// The part (index into `parts`) a delivery of the case belongs to.
    fn owner(&self, d: &Delivery) -> Option<usize> {
        if let Some(id) = &d.ids.callback
            && let Some(p) = self.parts.iter().position(|p| p.ids.contains(id))
        {
            return Some(p);
        }
        let reported = self.parts.iter().any(|p| !p.ids.is_empty());
        if d.ids.callback.is_some() && reported {
            return None;
        }
        self.parts.iter().rposition(|p| p.start <= d.at)
    }

    /// Waits for and checks the deliveries of part `n`, and marks them judged.
    async fn check_part(&mut self, n: usize, check: &CallbackCheck) -> Result<(), Stop> {
        let Some(key) = self.key.clone() else {
            return Ok(());
        };
        let prefix = if n == 0 {
            String::new()
        } else {
            format!("then[{n}]")
        };
        let now = Instant::now();
        let (all, mine, failures) = match check {
            CallbackCheck::Unchecked => {
                let all = self.source.deliveries(&key).await.map_err(Stop::Errored)?;
                let mine = self.of_part(n, &all);
                (all, mine, Vec::new())
            }
            CallbackCheck::None { wait } => {
                let until = (now + *wait).min(self.deadline);
                let any = |ds: &[Arc<Delivery>]| ds.iter().any(|d| self.owner(d) == Some(n));
                let all = self
                    .source
                    .wait(&key, &any, until)
                    .await
                    .map_err(Stop::Errored)?;
                let mine = self.of_part(n, &all);
                let failures = if mine.is_empty() {
                    Vec::new()
                } else {
                    vec![callback_check::none_expected(&mine)]
                };
                (all, mine, failures)
            }
            CallbackCheck::Expect(expect) => {
                let until = (now + expect.within).min(self.deadline);
                let wanted = expect.count as usize;
                let listed = expect.attempts.as_ref().map_or(0, Vec::len);
                let enough = |ds: &[Arc<Delivery>]| {
                    let mine = ds.iter().filter(|d| self.owner(d) == Some(n));
                    let (all, accepted) =
                        mine.fold((0, 0), |(a, ok), d| (a + 1, ok + usize::from(d.accepted())));
                    accepted >= wanted && all >= listed
                };
                let waiting_since = Utc::now();
                let all = self
                    .source
                    .wait(&key, &enough, until)
                    .await
                    .map_err(Stop::Errored)?;
                let woke = Utc::now();
                let waited = format_duration(now.elapsed().min(expect.within));
                let mine = self.of_part(n, &all);
                if n == 0
                    && let Some(last) = mine.iter().filter(|d| d.accepted()).map(|d| d.at).max()
                {
                    self.wake = (woke - last.max(waiting_since)).to_std().ok();
                }
                let failures = self.judge(expect, &mine, &waited);
                (all, mine, failures)
            }
        };
        self.failures
            .extend(failures.into_iter().map(|f| in_step(f, &prefix)));
        self.judged.extend(mine.iter().map(|d| d.seq));
        self.entries.extend(mine.into_iter().map(Entry::Delivery));
        self.last_seen = Some(all);
        Ok(())
    }

    fn of_part(&self, n: usize, all: &[Arc<Delivery>]) -> Vec<Arc<Delivery>> {
        all.iter()
            .filter(|d| self.owner(d) == Some(n))
            .cloned()
            .collect()
    }

    /// The failures of one part's deliveries against what it expects.
    fn judge(&self, expect: &CallbackExpect, mine: &[Arc<Delivery>], waited: &str) -> Vec<Failure> {
        let mut failures = Vec::new();
        let accepted: Vec<Arc<Delivery>> = mine.iter().filter(|d| d.accepted()).cloned().collect();
        if let Some(f) = callback_check::count(expect.count, accepted.len(), waited) {
            failures.push(f);
        }
        match &expect.attempts {
            Some(attempts) => {
                failures.extend(callback_check::attempts(mine, attempts, self.clock.minute))
            }
            None => failures.extend(callback_check::refused(mine)),
        }
        failures.extend(callback_check::payload(
            &accepted,
            &expect.payload,
            &expect.headers,
            self.case.flag.as_deref(),
        ));
        if let Some(response) = &expect.response {
            failures.extend(callback_check::responses(&accepted, response));
        }
        if expect.schema {
            failures.extend(callback_check::schema(&accepted));
        }
        failures
    }

    /// Every delivery of the case that no part judged, and on the case's own conversion every
    /// record the platform did not report: each fails the case.
    async fn unexpected(&mut self) -> Result<(), Stop> {
        let Some(key) = self.key.clone() else {
            return Ok(());
        };
        let all = match self.last_seen.take() {
            Some(all) => all,
            None => self.source.deliveries(&key).await.map_err(Stop::Errored)?,
        };
        for d in &all {
            if self.judged.contains(&d.seq) {
                continue;
            }
            let owner = self.owner(d);
            if owner.is_none() && !(self.own_key && d.at >= self.started_at) {
                continue;
            }
            let of_record = |p: usize| {
                d.ids
                    .callback
                    .as_ref()
                    .is_some_and(|id| self.parts[p].ids.contains(id))
            };
            let what = match owner {
                Some(p) if of_record(p) => format!(
                    "another delivery of the callback record {} after {} was judged (a duplicate)",
                    d.ids.callback.as_deref().unwrap_or_default(),
                    if p == 0 {
                        "the case's first part".to_string()
                    } else {
                        format!("then[{p}]")
                    }
                ),
                Some(_) => "a delivery no part of the case expected".to_string(),
                None => format!(
                    "a callback record the platform did not report for this case ({})",
                    d.ids.callback.as_deref().unwrap_or("no id")
                ),
            };
            let mut f = Failure::new(
                "callback.unexpected",
                None,
                "no other delivery".into(),
                d.outcome(),
                None,
            );
            f.message = format!(
                "callback.unexpected: {what} arrived at {} ({})",
                d.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                d.outcome()
            );
            self.failures.push(f);
            self.entries.push(Entry::Delivery(d.clone()));
            if owner.is_some() {
                self.judged.insert(d.seq);
            } else {
                self.flagged.push(d.seq);
            }
        }
        Ok(())
    }
}

/// A failure of step `prefix` (`then[2]`), named so; the first part's failures are unchanged.
fn in_step(mut failure: Failure, prefix: &str) -> Failure {
    if !prefix.is_empty() && !failure.check.starts_with(prefix) {
        failure.check = format!("{prefix}.{}", failure.check);
        failure.message = format!("{prefix} {}", failure.message);
    }
    failure
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
        failures.push(Failure::new(
            "callback_response.status",
            None,
            wanted,
            actual_status,
            None,
        ));
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

/// `conversion.state`: the platform answered another state than the case expects.
fn state_failure(wanted: &str, got: Option<&str>, reason: Option<&str>) -> Failure {
    let mut failure = Failure::new(
        "conversion.state",
        None,
        wanted.to_string(),
        got.unwrap_or("no state in the answer").to_string(),
        None,
    );
    if let Some(reason) = reason {
        failure.message.push_str(&format!(": {reason}"));
    }
    if got.is_some_and(|g| g.eq_ignore_ascii_case("Rejected")) {
        failure
            .message
            .push_str(" (expect `conversion: { state: Rejected }` if the platform must refuse it)");
    }
    failure
}
