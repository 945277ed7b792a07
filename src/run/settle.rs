//! After its verdict a case settles, holding no job slot: its verdict is final once its
//! deliveries have been quiet for the settle window after it, and, on a target that says what
//! it still has to send (a sandbox), once that has been sent too, which is awaited until the
//! case's timeout. Whatever of the case's came meanwhile (a duplicate, a retry, a late or
//! unexpected delivery) fails it; whatever comes later is not the case's to judge and is
//! counted as a stray. The same file gets the same verdict in every run: nothing here depends
//! on the rest of the run.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::case::{Account, CaseOutcome, Entry};
use super::result::{CaseResult, Status};
use super::source::CallbackSource;
use crate::check::{Failure, callback as callback_check};
use crate::delivery::{Delivery, Key};
use crate::platform::{Outbox, Pending};

/// How often a case that waits for the target's last delivery asks again, at most.
const ASK_AGAIN: Duration = Duration::from_millis(2);

/// What settling needs of the run.
pub struct Settle<S> {
    pub source: Arc<S>,
    pub outbox: Arc<dyn Outbox>,
    /// Settling stops at once when this is cancelled (a second Ctrl-C).
    pub abort: CancellationToken,
    /// Keep every case's transcript, not only those of cases that did not pass.
    pub verbose: bool,
}

impl<S: CallbackSource> Settle<S> {
    /// Settles a judged case: waits as the module says (`window`: its settle window), then
    /// judges what came late (`at`: where its callback expectation is written). Returns its
    /// final result, its transcript rendered when it is kept.
    pub async fn settle(
        &self,
        account: &Account,
        outcome: CaseOutcome,
        (window, at): (Duration, &str),
    ) -> CaseResult {
        let CaseOutcome {
            mut result,
            mut entries,
            deadline,
            seen,
        } = outcome;
        let key = account.books().key(account.id).cloned();
        // A case that could not be judged has nothing to settle.
        if let (Some(key), false) = (key, result.status == Status::Errored) {
            let window_end = Instant::now() + window;
            tokio::select! {
                last = until_final(&*self.outbox, &key, window_end, deadline) => {
                    // A target that made no more deliveries than the case saw has sent it
                    // nothing since: there is nothing to read.
                    let unchanged = matches!(
                        (last, seen),
                        (Pending::Nothing { made: Some(made) }, Some(seen)) if made == seen as u64
                    );
                    if !unchanged {
                        let case = (account, &key, at);
                        self.judge_late(case, &mut result, &mut entries).await;
                    }
                }
                _ = self.abort.cancelled() => interrupted(&mut result),
            }
        }
        if self.verbose || result.status != Status::Passed {
            result.transcript = super::transcript::render(&entries);
        }
        result
    }

    /// Reads the case's deliveries once more: those it had not judged came late and fail it.
    async fn judge_late(
        &self,
        (account, key, at): (&Account, &Key, &str),
        result: &mut CaseResult,
        entries: &mut Vec<Entry>,
    ) {
        let all = match self.source.deliveries(key).await {
            Ok(all) => all,
            Err(e) => {
                if result.status == Status::Passed {
                    result.status = Status::Errored;
                }
                result.error.get_or_insert_with(|| format!(
                    "could not read this case's deliveries after its verdict, so a late duplicate may have gone unseen: {e}"
                ));
                return;
            }
        };
        let late = account.books().late(account.id, &all);
        if late.is_empty() {
            return;
        }
        let (refused, taken): (Vec<_>, Vec<_>) =
            late.iter().cloned().partition(|d| d.refused.is_some());
        result.failures.extend(late_failure(&taken, at));
        let refusals = callback_check::refused_credentials(&refused, at);
        result.failures.extend(refusals);
        entries.extend(late.into_iter().map(Entry::Delivery));
        if result.status == Status::Passed {
            result.status = Status::Failed;
        }
    }
}

/// Waits until nothing more can be the case's to judge: on a target that tells, until it has
/// nothing left to send under `key` (at most until `deadline`, and at least until it says so);
/// on one that cannot tell, until `window_end`. Returns what the target said last.
pub async fn until_final(
    outbox: &dyn Outbox,
    key: &Key,
    window_end: Instant,
    deadline: Instant,
) -> Pending {
    let bound = deadline.max(window_end);
    loop {
        let now = Instant::now();
        match outbox.pending(key).await {
            nothing @ Pending::Nothing { .. } => return nothing,
            Pending::Unknown => {
                tokio::time::sleep_until(window_end).await;
                return Pending::Unknown;
            }
            due @ Pending::Due(_) if now >= bound => return due,
            Pending::Due(due) => {
                tokio::time::sleep_until(due.max(now + ASK_AGAIN).min(bound)).await;
            }
        }
    }
}

/// A case interrupted while it settled: its late deliveries could not be judged.
fn interrupted(result: &mut CaseResult) {
    if result.status == Status::Passed {
        result.status = Status::Errored;
        result.error = Some(
            "interrupted (a second Ctrl-C or SIGTERM) before its late deliveries could be judged"
                .into(),
        );
    }
}

/// `callback.late`: deliveries of the case that came after its verdict (`at`: the case's
/// callback expectation).
fn late_failure(late: &[Arc<Delivery>], at: &str) -> Option<Failure> {
    let first = late.first()?;
    let n = late.len();
    let when = first
        .at
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let failure = Failure::new("callback.late", "no delivery after the verdict", format!("{n} more"))
        .saying(format!(
            "{n} more deliver{} arrived after the case was judged (a duplicate or unexpected callback; the first at {when}, {})",
            if n == 1 { "y" } else { "ies" },
            first.outcome()
        ))
        .at(at);
    Some(failure)
}
