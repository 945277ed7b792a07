//! Running one case: drive the pipeline's steps, wait for the callbacks, check everything.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::Observer;
use super::result::{CaseResult, Ids, Status};
use crate::check::{self, Failure, callback as callback_check};
use crate::duration::format_duration;
use crate::plan::{AnswerChecks, CallbackCheck, Case, Mode};
use crate::platform::{Exchange, NewClick, NewConversion, Platform, PlatformError};
use crate::receiver::Captured;

/// After the expected callbacks arrived, how long a duplicate still counts against `count`.
pub const DUPLICATE_GRACE: Duration = Duration::from_millis(100);
/// Waiting for callbacks stops this long before the case's timeout, so that a missing
/// callback fails the case instead of timing it out.
const CALLBACK_MARGIN: Duration = Duration::from_millis(50);
/// How often the platform's callback log is read when callbacks are observed there.
const LOG_POLL: Duration = Duration::from_millis(25);

/// One entry of a case's transcript.
#[derive(Debug, Clone)]
pub enum Entry {
    Exchange(Exchange),
    Callback(Arc<Captured>),
}

/// Why a case stopped before it could be judged.
enum Stop {
    /// An expectation failed and later steps cannot run (no id to go on with).
    Failed,
    /// The platform or network broke.
    Errored(String),
}

impl From<PlatformError> for Stop {
    fn from(e: PlatformError) -> Stop {
        Stop::Errored(e.to_string())
    }
}

struct CaseRun<'a, P> {
    case: &'a Case,
    platform: &'a P,
    observer: &'a Observer,
    /// When the case's timeout runs out: waiting for callbacks ends a little before.
    deadline: Instant,
    failures: Vec<Failure>,
    entries: Vec<Entry>,
    ids: Ids,
}

/// Runs `case` against `platform`, with `observer` catching its callbacks.
pub async fn run_case<P: Platform>(
    case: &Case,
    platform: &P,
    observer: &Observer,
) -> (CaseResult, Vec<Entry>) {
    let started = Instant::now();
    let mut run = CaseRun {
        case,
        platform,
        observer,
        deadline: started + case.timeout.saturating_sub(CALLBACK_MARGIN),
        failures: Vec::new(),
        entries: Vec::new(),
        ids: Ids::default(),
    };
    let outcome = tokio::time::timeout(case.timeout, run.steps()).await;
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
        status,
        duration: started.elapsed(),
        attempts: 1,
        failures: run.failures,
        error,
        ids: run.ids,
        transcript: Vec::new(),
    };
    (result, run.entries)
}

impl<P: Platform> CaseRun<'_, P> {
    async fn steps(&mut self) -> Result<(), Stop> {
        let case = self.case;
        let conversion = match &case.mode {
            Mode::Generate => match self.create_click().await? {
                Some(click) => self.create_conversion(&click).await?,
                None => None,
            },
            Mode::Click(click) => {
                self.ids.click = Some(click.clone());
                self.create_conversion(click).await?
            }
            Mode::CallbackOnly { click, conversion } => {
                self.ids.click = Some(click.clone());
                self.ids.conversion = Some(conversion.clone());
                let seen = self.callbacks_so_far(conversion).await?;
                self.resend(click, conversion).await?;
                return self.await_callbacks(Some(conversion), seen).await;
            }
        };
        self.await_callbacks(conversion.as_deref(), 0).await
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

    /// Returns the conversion id, or `None` when the conversion was (expectedly) refused.
    async fn create_conversion(&mut self, click: &str) -> Result<Option<String>, Stop> {
        let case = self.case;
        let outcome = self
            .platform
            .create_conversion(NewConversion {
                click,
                event: case.event.as_deref().unwrap_or_default(),
                params: &case.params,
                faults: Some(&case.faults),
            })
            .await?;
        self.entries.push(Entry::Exchange(outcome.exchange.clone()));
        if !self.expect_status(
            "conversion.status",
            case.expect.conversion_status,
            &outcome.exchange,
        ) {
            return Err(Stop::Failed);
        }
        self.expect_answer("conversion", &case.expect.conversion, &outcome.exchange);
        self.ids.conversion = outcome.id.clone();
        Ok(outcome.id)
    }

    async fn resend(&mut self, click: &str, conversion: &str) -> Result<(), Stop> {
        let sent = self.platform.send_callback(click, conversion).await?;
        self.entries.push(Entry::Exchange(sent.exchange.clone()));
        if !self.expect_status("callback_tool.status", 200, &sent.exchange) {
            return Err(Stop::Failed);
        }
        let Some(expect) = &self.case.expect.callback_response else {
            return Ok(());
        };
        let actual_status = match (sent.endpoint_status, &sent.endpoint_error) {
            (Some(s), _) => s.to_string(),
            (None, Some(e)) => format!("no answer ({e})"),
            (None, None) => "no answer".into(),
        };
        match expect.status {
            Some(expected) if sent.endpoint_status != Some(expected) => {
                self.failures.push(Failure::new(
                    "callback_response.status",
                    None,
                    expected.to_string(),
                    actual_status,
                    None,
                ))
            }
            None if !sent
                .endpoint_status
                .is_some_and(|s| (200..300).contains(&s)) =>
            {
                self.failures.push(Failure::new(
                    "callback_response.status",
                    None,
                    "2xx".into(),
                    actual_status,
                    None,
                ))
            }
            _ => {}
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
        Ok(())
    }

    /// Waits for and checks the callbacks filed under `conversion`, ignoring the first `seen`.
    async fn await_callbacks(&mut self, conversion: Option<&str>, seen: usize) -> Result<(), Stop> {
        let case = self.case;
        match &case.expect.callback {
            CallbackCheck::Unchecked => Ok(()),
            CallbackCheck::None { wait } => {
                let Some(key) = conversion else { return Ok(()) };
                let got = self.wait_for(key, seen + 1, *wait).await?;
                let got = self.keep(got, seen);
                if !got.is_empty() {
                    self.failures.push(Failure::new(
                        "callback.count",
                        None,
                        "0 (callback: none)".into(),
                        got.len().to_string(),
                        None,
                    ));
                }
                Ok(())
            }
            CallbackCheck::Expect {
                within,
                count,
                payload,
                headers,
            } => {
                let Some(key) = conversion else {
                    let mut failure =
                        Failure::new("callback.count", None, count.to_string(), "0".into(), None);
                    failure.message = format!(
                        "callback.count: expected {count}, got 0: no conversion was made to call back"
                    );
                    self.failures.push(failure);
                    return Ok(());
                };
                let wanted = seen + *count as usize;
                let waited = Instant::now();
                let mut got = self.wait_for(key, wanted, *within).await?;
                let waited = format_duration(waited.elapsed().min(*within));
                if got.len() >= wanted {
                    got = self.wait_for(key, wanted + 1, DUPLICATE_GRACE).await?;
                }
                let got = self.keep(got, seen);
                if let Some(failure) = callback_check::count(*count, got.len(), &waited) {
                    self.failures.push(failure);
                }
                self.failures.extend(callback_check::payload(
                    &got,
                    payload,
                    headers,
                    case.flag.as_deref(),
                ));
                Ok(())
            }
        }
    }

    /// How many callbacks `key` has now.
    async fn callbacks_so_far(&self, key: &str) -> Result<usize, Stop> {
        match self.observer {
            Observer::Receiver(receiver) => Ok(receiver.callbacks(key).len()),
            Observer::CallbackLog => Ok(self.platform.callback_log(key).await?.len()),
        }
    }

    /// Waits up to `window` (and never past the case's deadline) for `count` callbacks of `key`.
    async fn wait_for(
        &self,
        key: &str,
        count: usize,
        window: Duration,
    ) -> Result<Vec<Arc<Captured>>, Stop> {
        let until = (Instant::now() + window).min(self.deadline);
        match self.observer {
            Observer::Receiver(receiver) => Ok(receiver.wait_for(key, count, until).await),
            Observer::CallbackLog => loop {
                let attempts = self.platform.callback_log(key).await?;
                if attempts.len() >= count || Instant::now() >= until {
                    return Ok(attempts
                        .into_iter()
                        .map(|a| Arc::new(from_log(key, a)))
                        .collect());
                }
                tokio::time::sleep(LOG_POLL.min(until.saturating_duration_since(Instant::now())))
                    .await;
            },
        }
    }

    fn keep(&mut self, got: Vec<Arc<Captured>>, seen: usize) -> Vec<Arc<Captured>> {
        let got: Vec<Arc<Captured>> = got.into_iter().skip(seen).collect();
        self.entries
            .extend(got.iter().cloned().map(Entry::Callback));
        got
    }
}

/// A callback-log attempt seen as the callback it sent (its `note` is the payload).
fn from_log(key: &str, attempt: Value) -> Captured {
    let note = attempt.get("note").cloned().unwrap_or(Value::Null);
    Captured {
        seq: attempt.get("attempt").and_then(Value::as_u64).unwrap_or(0),
        received_at: std::time::SystemTime::now(),
        method: "POST".into(),
        path: attempt
            .get("endpoint")
            .and_then(Value::as_str)
            .unwrap_or("(callback log)")
            .to_string(),
        query: None,
        headers: Vec::new(),
        body: note.to_string(),
        json: (!note.is_null()).then_some(note),
        key: Some(key.to_string()),
    }
}
