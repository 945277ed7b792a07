//! Running one case: drive the pipeline's steps, wait for the platform's deliveries, check
//! everything, and say which deliveries were the case's.
//!
//! A delivery is the case's when it is filed under the case's conversion (or, when no
//! conversion was made, its click) and is a callback record the platform said it sent for the
//! case (the `callbackId` of the conversion or resend answer). When the platform does not say,
//! deliveries that arrived after the case began count.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::time::Instant;

use super::result::{CaseResult, Ids, Inputs, Status};
use super::source::CallbackSource;
use crate::check::{self, Failure, callback as callback_check};
use crate::delivery::{Delivery, Key};
use crate::duration::format_duration;
use crate::plan::{AnswerChecks, CallbackCheck, Case, Mode};
use crate::platform::{Exchange, NewClick, NewConversion, Platform, PlatformError};

/// Waiting for callbacks stops this long before the case's timeout, so that a missing
/// callback fails the case instead of timing it out.
const CALLBACK_MARGIN: std::time::Duration = std::time::Duration::from_millis(50);

/// One entry of a case's transcript.
#[derive(Debug, Clone)]
pub enum Entry {
    Exchange(Exchange),
    Delivery(Arc<Delivery>),
}

/// What running a case produced, for the runner.
#[derive(Debug)]
pub struct CaseOutcome {
    pub result: CaseResult,
    /// What to recount after the verdict, to catch late deliveries.
    pub watch: Option<Watch>,
    /// The sequence numbers of the deliveries the case claimed.
    pub claimed: Vec<u64>,
    pub entries: Vec<Entry>,
}

/// The deliveries that are a case's, to recount after its verdict.
#[derive(Debug, Clone)]
pub struct Watch {
    pub key: Key,
    /// The callback records the platform said it sent for the case (empty: it did not say).
    pub callback_ids: Vec<String>,
    /// Deliveries that carry no callback id the platform reported count from this time on.
    pub since: DateTime<Utc>,
    /// The sequence numbers of the case's deliveries at its verdict.
    pub seen: Vec<u64>,
}

impl Watch {
    /// True when `delivery` is one of the case's.
    pub fn owns(&self, delivery: &Delivery) -> bool {
        match &delivery.ids.callback {
            Some(id) if !self.callback_ids.is_empty() => self.callback_ids.contains(id),
            _ => delivery.at >= self.since,
        }
    }

    /// The case's deliveries among `all`.
    pub fn mine(&self, all: &[Arc<Delivery>]) -> Vec<Arc<Delivery>> {
        all.iter().filter(|d| self.owns(d)).cloned().collect()
    }
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
    started_at: DateTime<Utc>,
    /// When waiting for callbacks must end (a little before the case's timeout).
    deadline: Instant,
    failures: Vec<Failure>,
    entries: Vec<Entry>,
    ids: Ids,
    watch: Option<Watch>,
    claimed: Vec<u64>,
}

/// Runs attempt `attempt` of `case` against `platform`, with `source` observing callbacks.
pub async fn run_case<P: Platform, S: CallbackSource>(
    case: &Case,
    attempt: u32,
    platform: &P,
    source: &S,
) -> CaseOutcome {
    let started = Instant::now();
    let started_at = Utc::now();
    // Timeouts are bounded (24 h) when the plan is built; a far deadline is never reached.
    let end = started.checked_add(case.timeout).unwrap_or(started);
    let mut run = CaseRun {
        case,
        platform,
        source,
        started_at,
        deadline: end.checked_sub(CALLBACK_MARGIN).unwrap_or(started),
        failures: Vec::new(),
        entries: Vec::new(),
        ids: Ids::default(),
        watch: None,
        claimed: Vec::new(),
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
    };
    // A case that could not be judged has nothing to recount later.
    let watch = run.watch.filter(|_| status != Status::Errored);
    CaseOutcome {
        result,
        watch,
        claimed: run.claimed,
        entries: run.entries,
    }
}

impl<P: Platform, S: CallbackSource> CaseRun<'_, P, S> {
    async fn steps(&mut self) -> Result<(), Stop> {
        let case = self.case;
        let (key, callback_ids) = match &case.mode {
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
                let sent = self.resend(click, conversion).await?;
                (
                    Key::Conversion(conversion.clone()),
                    sent.into_iter().collect(),
                )
            }
        };
        self.watch = Some(Watch {
            key,
            callback_ids,
            since: self.started_at,
            seen: Vec::new(),
        });
        self.check_callbacks().await
    }

    fn expect_status(&mut self, check: &str, expected: u16, exchange: &Exchange) -> bool {
        match check::status(check, expected, exchange.status, &exchange.body) {
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
        self.entries.push(Entry::Exchange(outcome.exchange.clone()));
        if !self.expect_status("click.status", case.expect.click_status, &outcome.exchange) {
            return Err(Stop::Failed);
        }
        self.expect_answer("click", &case.expect.click, &outcome.exchange);
        if !(200..300).contains(&outcome.exchange.status) {
            return Ok(None);
        }
        let id = outcome.id.ok_or_else(|| {
            Stop::Errored(format!(
                "create click: HTTP {} but the answer holds no click id",
                outcome.exchange.status
            ))
        })?;
        self.ids.click = Some(id.clone());
        Ok(Some(id))
    }

    /// Converts `click`; returns what its deliveries are filed under (the conversion, or the
    /// click when the conversion was refused) and the callback record the platform reported.
    async fn convert(&mut self, click: &str) -> Result<(Key, Vec<String>), Stop> {
        let case = self.case;
        let outcome = self
            .platform
            .create_conversion(NewConversion {
                click,
                event: case.event.as_deref().unwrap_or_default(),
                params: &case.params,
                sandbox_faults: case.sandbox_faults.as_deref(),
            })
            .await?;
        self.entries.push(Entry::Exchange(outcome.exchange.clone()));
        let expect = &case.expect;
        if !self.expect_status(
            "conversion.status",
            expect.conversion_status,
            &outcome.exchange,
        ) {
            return Err(Stop::Failed);
        }
        self.expect_answer("conversion", &expect.conversion, &outcome.exchange);
        let Some(id) = outcome.id else {
            if (200..300).contains(&outcome.exchange.status) {
                return Err(Stop::Errored(format!(
                    "create conversion: HTTP {} but the answer holds no conversion id",
                    outcome.exchange.status
                )));
            }
            return Ok((Key::Click(click.to_string()), Vec::new()));
        };
        self.ids.conversion = Some(id.clone());
        let reason = outcome.reason.as_deref();
        let state = outcome.state.as_deref();
        match (&expect.conversion_state, state) {
            (Some(wanted), Some(got)) if wanted.eq_ignore_ascii_case(got) => {}
            (Some(wanted), got) => self.failures.push(state_failure(wanted, got, reason)),
            (None, Some(got)) if got.eq_ignore_ascii_case("Rejected") => self
                .failures
                .push(state_failure("Success or Pending", Some(got), reason)),
            (None, _) => {}
        }
        Ok((
            Key::Conversion(id),
            outcome.callback_id.into_iter().collect(),
        ))
    }

    /// Resends a conversion's callback; returns the callback record id the tool reported.
    async fn resend(&mut self, click: &str, conversion: &str) -> Result<Option<String>, Stop> {
        let sent = self.platform.send_callback(click, conversion).await?;
        self.entries.push(Entry::Exchange(sent.exchange.clone()));
        if !self.expect_status("callback_tool.status", 200, &sent.exchange) {
            return Err(Stop::Failed);
        }
        let Some(expect) = &self.case.expect.callback_response else {
            return Ok(sent.callback_id);
        };
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
            self.failures.push(Failure::new(
                "callback_response.status",
                None,
                wanted,
                actual_status,
                None,
            ));
        }
        if !expect.answer.is_empty() {
            let body = sent.endpoint_body.map_or(Value::Null, |text| {
                serde_json::from_str(&text).unwrap_or(Value::String(text))
            });
            let failures = check::answer(
                "callback_response",
                &expect.answer,
                &body,
                &sent.endpoint_headers,
            );
            self.failures.extend(failures);
        }
        Ok(sent.callback_id)
    }

    /// Waits for and checks the case's deliveries, and claims them.
    async fn check_callbacks(&mut self) -> Result<(), Stop> {
        let case = self.case;
        let Some(watch) = self.watch.clone() else {
            return Ok(());
        };
        let now = Instant::now();
        let mine = match &case.expect.callback {
            CallbackCheck::Unchecked => {
                let all = self
                    .source
                    .deliveries(&watch.key)
                    .await
                    .map_err(Stop::Errored)?;
                watch.mine(&all)
            }
            CallbackCheck::None { wait } => {
                let until = (now + *wait).min(self.deadline);
                let any = |ds: &[Arc<Delivery>]| ds.iter().any(|d| watch.owns(d));
                let all = self
                    .source
                    .wait(&watch.key, &any, until)
                    .await
                    .map_err(Stop::Errored)?;
                let mine = watch.mine(&all);
                if !mine.is_empty() {
                    self.failures.push(callback_check::none_expected(&mine));
                }
                mine
            }
            CallbackCheck::Expect {
                within,
                count,
                payload,
                headers,
            } => {
                let until = (now + *within).min(self.deadline);
                let wanted = *count as usize;
                let enough = |ds: &[Arc<Delivery>]| {
                    ds.iter().filter(|d| watch.owns(d) && d.accepted()).count() >= wanted
                };
                let all = self
                    .source
                    .wait(&watch.key, &enough, until)
                    .await
                    .map_err(Stop::Errored)?;
                let waited = format_duration(now.elapsed().min(*within));
                let mine = watch.mine(&all);
                let accepted: Vec<Arc<Delivery>> =
                    mine.iter().filter(|d| d.accepted()).cloned().collect();
                if let Some(failure) = callback_check::count(*count, accepted.len(), &waited) {
                    self.failures.push(failure);
                }
                self.failures.extend(callback_check::refused(&mine));
                self.failures.extend(callback_check::payload(
                    &accepted,
                    payload,
                    headers,
                    case.flag.as_deref(),
                ));
                mine
            }
        };
        if let Some(w) = &mut self.watch {
            w.seen = mine.iter().map(|d| d.seq).collect();
        }
        self.claimed.extend(mine.iter().map(|d| d.seq));
        self.entries.extend(mine.into_iter().map(Entry::Delivery));
        Ok(())
    }
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
