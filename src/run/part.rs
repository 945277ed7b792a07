//! A case's parts and their deliveries: wait for what a part expects, judge what came, and at
//! the verdict fail the case for every delivery of it that no part expected. Which deliveries
//! are the case's, and which part's, the ledger decides.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::case::{CaseError, CaseRun, Entry, Stop};
use super::ledger::Surplus;
use super::source::CallbackSource;
use crate::check::{Failure, callback as callback_check};
use crate::delivery::{Delivery, Key};
use crate::duration::format_duration;
use crate::plan::{CallbackCheck, CallbackExpect};
use crate::platform::{Platform, PlatformError, PlatformErrorKind};

impl<P: Platform, S: CallbackSource> CaseRun<'_, P, S> {
    /// Waits for and checks the deliveries of part `n`, and judges them in the ledger. A
    /// delivery of the case that pitcrew's receiver refused for its credentials ends the wait
    /// at once and fails the case.
    pub(super) async fn check_part(&mut self, n: usize, check: &CallbackCheck) -> Result<(), Stop> {
        let Some(key) = self.account.books().key(self.account.id).cloned() else {
            return Ok(());
        };
        let (now, waiting_since) = (Instant::now(), Utc::now());
        let all = self.wait_for(n, check, &key, now).await?;
        let woke = (Utc::now(), now.elapsed());
        let judged = self.account.books().judge_part(self.account.id, n, &all);
        let at = check.at().unwrap_or(&self.case.expect.at);
        let failures = match check {
            CallbackCheck::Unchecked => Vec::new(),
            CallbackCheck::None { .. } if judged.part.is_empty() => Vec::new(),
            CallbackCheck::None { at, .. } => vec![callback_check::none_expected(&judged.part, at)],
            CallbackCheck::Expect(expect) => {
                let cut_short = !judged.refused.is_empty();
                let waited = (waiting_since, woke);
                self.judge(n, expect, &judged.part, waited, cut_short)
            }
        };
        // A refusal first: it is why the rest did not hold.
        let refusals = callback_check::refused_credentials(&judged.refused, at);
        let failures = refusals.into_iter().chain(failures);
        self.failures.extend(failures.map(|f| f.in_step(n)));
        // A state the case cannot read (a word that stands for none) leaves it unjudged.
        let states = self.platform.callback_states();
        let unreadable = (judged.part.iter())
            .filter_map(|d| d.json.as_ref())
            .find_map(|payload| states.state_of(payload).err());
        if let Some(reads) = self.source.take_reads(&key) {
            self.entries.push(Entry::Note(reads));
        }
        let seen = judged.part.into_iter().chain(judged.refused);
        self.entries.extend(seen.map(Entry::Delivery));
        self.last_seen = Some(all);
        match unreadable {
            Some(message) => Err(Stop::from(CaseError::Platform(PlatformError {
                step: "read the callback",
                kind: PlatformErrorKind::Unreadable,
                message,
            }))),
            None => Ok(()),
        }
    }

    /// Waits (from `now`) until part `n` has what `check` expects, a delivery of the case is
    /// refused for its credentials, or the wait's time is up; the deliveries under `key`.
    async fn wait_for(
        &self,
        n: usize,
        check: &CallbackCheck,
        key: &Key,
        now: Instant,
    ) -> Result<Vec<Arc<Delivery>>, Stop> {
        let id = self.account.id;
        let books = || self.account.books();
        self.only_waits();
        let all = match check {
            CallbackCheck::Unchecked => self.source.deliveries(key).await,
            CallbackCheck::None { wait, .. } => {
                let until = (now + *wait).min(self.deadline);
                let any = |ds: &[Arc<Delivery>]| {
                    let books = books();
                    books.refused_any(id, ds) || books.of_part(id, n, ds).next().is_some()
                };
                self.source.wait(key, &any, until).await
            }
            CallbackCheck::Expect(expect) => {
                let until = (now + expect.within).min(self.deadline);
                let wanted = expect.count as usize;
                let listed = expect.attempts.as_ref().map_or(0, Vec::len);
                let enough = |ds: &[Arc<Delivery>]| {
                    let books = books();
                    if books.refused_any(id, ds) {
                        return true;
                    }
                    let (all, accepted) = books
                        .of_part(id, n, ds)
                        .fold((0, 0), |(a, ok), d| (a + 1, ok + usize::from(d.accepted())));
                    accepted >= wanted && all >= listed
                };
                self.source.wait(key, &enough, until).await
            }
        };
        all.map_err(Stop::from)
    }

    /// The failures of part `n`'s deliveries `mine` against what it expects, after waiting
    /// from `since` until `woke` (and how long that was); `cut_short` when a refused delivery
    /// ended the wait.
    fn judge(
        &mut self,
        n: usize,
        expect: &CallbackExpect,
        mine: &[Arc<Delivery>],
        (since, (woke, waited)): (DateTime<Utc>, (DateTime<Utc>, Duration)),
        cut_short: bool,
    ) -> Vec<Failure> {
        let accepted: Vec<Arc<Delivery>> = mine.iter().filter(|d| d.accepted()).cloned().collect();
        if n == 0
            && let Some(last) = accepted.iter().map(|d| d.at).max()
        {
            self.wake = (woke - last.max(since)).to_std().ok();
        }
        let waited = (!cut_short).then(|| format_duration(waited.min(expect.within)));
        let mut failures = Vec::new();
        let at = &expect.at;
        let count_at = expect.count_at.as_ref().unwrap_or(at);
        let count =
            callback_check::count(expect.count, accepted.len(), waited.as_deref(), count_at);
        failures.extend(count);
        match &expect.attempts {
            Some(attempts) => {
                let resolution = self.platform.time_resolution();
                failures.extend(callback_check::attempts(
                    mine,
                    attempts,
                    self.clock.minute,
                    resolution,
                ))
            }
            None => failures.extend(callback_check::refused(mine, at)),
        }
        // The flag is the case's expectation, written on it or by default.
        let flag = self
            .case
            .flag
            .as_deref()
            .map(|f| (f, self.case.expect.at.as_str()));
        let lines = (&expect.payload[..], &expect.headers[..]);
        let states = self.platform.callback_states();
        failures.extend(callback_check::payload(&accepted, lines, flag, states, at));
        // Whatever else it checks, a callback says the conversion's state as it is.
        let wanted: &[&str] = match self.state_now.as_deref() {
            Some(state) => &[state][..],
            None => &["Success", "Pending"][..],
        };
        failures.extend(callback_check::states(&accepted, states, wanted, at));
        if let Some(response) = &expect.response {
            failures.extend(callback_check::responses(&accepted, response));
        }
        if expect.schema {
            failures.extend(callback_check::schema(&accepted, at));
        }
        failures
    }

    /// At the verdict: every delivery of the case that no part judged fails it.
    pub(super) async fn surplus(&mut self) -> Result<(), Stop> {
        let Some(key) = self.account.books().key(self.account.id).cloned() else {
            return Ok(());
        };
        let all = match self.last_seen.take() {
            Some(all) => all,
            None => self.source.deliveries(&key).await?,
        };
        self.seen = Some(all.len());
        let surplus = self.account.books().surplus(self.account.id, &all);
        let at = self
            .case
            .expect
            .callback
            .at()
            .unwrap_or(&self.case.expect.at);
        let (refused, taken): (Vec<_>, Vec<_>) =
            surplus.into_iter().partition(|(d, _)| d.refused.is_some());
        let refused: Vec<Arc<Delivery>> = refused.into_iter().map(|(d, _)| d).collect();
        self.failures
            .extend(callback_check::refused_credentials(&refused, at));
        for (d, why) in &taken {
            self.failures.push(surplus_failure(d, *why, at));
        }
        if let Some(reads) = self.source.take_reads(&key) {
            self.entries.push(Entry::Note(reads));
        }
        let seen = refused.into_iter().chain(taken.into_iter().map(|(d, _)| d));
        self.entries.extend(seen.map(Entry::Delivery));
        Ok(())
    }
}

/// How a part is named in a report: `the case's first part`, `then[2]`.
pub fn part_name(n: usize) -> String {
    if n == 0 {
        "the case's first part".to_string()
    } else {
        format!("then[{n}]")
    }
}

/// A delivery of the case that no part expected, and why (`at`: the case's expectation).
fn surplus_failure(d: &Delivery, why: Surplus, at: &str) -> Failure {
    let what = match why {
        Surplus::Duplicate(n) => format!(
            "another delivery of the callback record {} after {} was judged (a duplicate)",
            d.ids.callback.as_deref().unwrap_or_default(),
            part_name(n)
        ),
        Surplus::Unexpected(_) => "a delivery no part of the case expected".to_string(),
        Surplus::Unreported => format!(
            "a callback record the platform did not report for this case ({})",
            d.ids.callback.as_deref().unwrap_or("no id")
        ),
    };
    let when = d.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Failure::new("callback.unexpected", "no other delivery", d.outcome())
        .saying(format!("{what} arrived at {when} ({})", d.outcome()))
        .at(at)
}
