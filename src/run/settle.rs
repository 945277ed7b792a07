//! After its verdict a case settles, holding no job slot: its verdict is final once its
//! deliveries have been quiet for the settle window after it, and, on a target that says what
//! it still has to send (a sandbox), once that has been sent too, which is awaited until the
//! case's timeout. The window is `--settle` or the case's `expect.callback.settle`; without
//! one, 1 s on a target that cannot tell what it still has to send, and none on one that can
//! (it says when it is done). Whatever of the case's came meanwhile (a duplicate, a retry, a
//! late or unexpected delivery) fails it; whatever comes later is not the case's to judge and
//! is counted as a stray. The same file gets the same verdict in every run: nothing here
//! depends on the rest of the run.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::DEFAULT_SETTLE;
use super::case::{Account, CaseOutcome, Entry};
use super::result::{CaseResult, Status};
use super::source::CallbackSource;
use crate::check::{Failure, callback as callback_check};
use crate::delivery::{Delivery, Key};
use crate::platform::{Outbox, Pending};

/// How soon a case that waits for the target's last delivery asks again, at first; then
/// twice as long each time, up to [`ASK_AT_MOST`] (a sandbox asked over HTTP is not flooded).
const ASK_FIRST: Duration = Duration::from_millis(2);
const ASK_AT_MOST: Duration = Duration::from_millis(50);

/// How long a case cut short by a second Ctrl-C may take to read what has arrived for it.
const READ_WHEN_CUT_SHORT: Duration = Duration::from_secs(1);
/// How long past the case's timeout (or its window) settling may take to read what arrived.
const LAST_READ: Duration = Duration::from_secs(5);

/// What settling needs of the run.
pub struct Settle<S> {
    /// Where the case's deliveries are read once more.
    pub source: Arc<S>,
    /// What the target still has to send.
    pub outbox: Arc<dyn Outbox>,
    /// Settling stops at once when this is cancelled (a second Ctrl-C).
    pub abort: CancellationToken,
    /// Keep every case's transcript, not only those of cases that did not pass.
    pub verbose: bool,
}

impl<S: CallbackSource> Settle<S> {
    /// Settles a judged case: waits as the module says (`window`: its settle window, if one
    /// is set), then judges what came late (`at`: where its callback expectation is written).
    /// Returns its final result, its transcript rendered when it is kept.
    pub async fn settle(
        &self,
        account: &Account,
        outcome: CaseOutcome,
        (window, at): (Option<Duration>, &str),
    ) -> CaseResult {
        let CaseOutcome {
            mut result,
            mut entries,
            deadline,
            seen,
            postbacks,
        } = outcome;
        let key = account.books().key(account.id).cloned();
        // A case that could not be judged has nothing to settle.
        if let (Some(key), false) = (key, result.status == Status::Errored) {
            let late = async {
                let last = until_final(&*self.outbox, &key, window, deadline).await;
                // A target that made no more deliveries than the case saw has sent it nothing
                // since: there is nothing to read.
                let unchanged = matches!(
                    (last, seen),
                    (Pending::Nothing { made: Some(made) }, Some(seen)) if made == seen as u64
                );
                if unchanged {
                    return Ok(Vec::new());
                }
                let all = self
                    .source
                    .deliveries(&key)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(account.books().late(account.id, &all))
            };
            // Settling never outlasts the case's timeout (or its window) by more than a read:
            // a target that hangs cannot hold the run.
            let bound = deadline.max(Instant::now() + window.unwrap_or(DEFAULT_SETTLE));
            let late = async {
                match tokio::time::timeout_at(bound + LAST_READ, late).await {
                    Ok(late) => late,
                    Err(_) => Err(format!(
                        "the target did not answer within {} after the case's timeout",
                        crate::duration::format_duration(LAST_READ)
                    )),
                }
            };
            let cut_short = tokio::select! {
                late = late => {
                    if let Some(reads) = self.source.take_reads(&key) {
                        entries.push(Entry::Note(reads));
                    }
                    judge_late(late, at, &mut result, &mut entries);
                    false
                }
                _ = self.abort.cancelled() => true,
            };
            if cut_short {
                // What has arrived is judged all the same, when it can be read at once.
                let read = self.source.deliveries(&key);
                if let Ok(Ok(all)) = tokio::time::timeout(READ_WHEN_CUT_SHORT, read).await {
                    let late = account.books().late(account.id, &all);
                    judge_late(Ok(late), at, &mut result, &mut entries);
                }
                interrupted(&mut result);
            }
        }
        // The postbacks are read after the callbacks settled: what the target still had to
        // send for the case has been sent.
        if let (Some(postbacks), false) = (
            postbacks,
            result.status == Status::Errored || self.abort.is_cancelled(),
        ) {
            let late = tokio::time::timeout(LAST_READ, postbacks.late(&*self.source, account));
            let late = late.await.unwrap_or_else(|_| {
                Err(format!(
                    "the target did not answer within {}",
                    crate::duration::format_duration(LAST_READ)
                ))
            });
            match late {
                Ok(None) => {}
                Ok(Some((failures, late))) => {
                    result.failures.extend(failures);
                    entries.extend(late.into_iter().map(Entry::Delivery));
                    if result.status == Status::Passed {
                        result.status = Status::Failed;
                    }
                }
                Err(e) => {
                    if result.status == Status::Passed {
                        result.status = Status::Errored;
                    }
                    result.error.get_or_insert_with(|| format!(
                        "could not read this case's partner postbacks after its verdict, so a late duplicate may have gone unseen: {e}"
                    ));
                }
            }
        }
        if self.verbose || result.status != Status::Passed {
            result.transcript = super::transcript::render(&entries);
        }
        result
    }
}

/// The deliveries of the case it had not judged came late and fail it (`at`: its callback
/// expectation); when they could not be read, a case that passed could not be judged.
fn judge_late(
    late: Result<Vec<Arc<Delivery>>, String>,
    at: &str,
    result: &mut CaseResult,
    entries: &mut Vec<Entry>,
) {
    let late = match late {
        Ok(late) => late,
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

/// Waits until nothing more can be the case's to judge: `window` (when set) after now, and on
/// a target that tells, until it has nothing left to send under `key` (at most until
/// `deadline`); on one that cannot tell, until the window (1 s when not set) has passed.
/// Returns what the target said last.
pub async fn until_final(
    outbox: &dyn Outbox,
    key: &Key,
    window: Option<Duration>,
    deadline: Instant,
) -> Pending {
    let start = Instant::now();
    let window_end = start + window.unwrap_or(Duration::ZERO);
    let bound = deadline.max(window_end);
    let mut pause = ASK_FIRST;
    loop {
        let now = Instant::now();
        match outbox.pending(key).await {
            Pending::Unknown => {
                tokio::time::sleep_until(start + window.unwrap_or(DEFAULT_SETTLE)).await;
                return Pending::Unknown;
            }
            nothing @ Pending::Nothing { .. } if now >= window_end => return nothing,
            Pending::Nothing { .. } => tokio::time::sleep_until(window_end).await,
            due @ Pending::Due(_) if now >= bound => return due,
            Pending::Due(due) => {
                tokio::time::sleep_until(due.max(now + pause).min(bound)).await;
                pause = (pause * 2).min(ASK_AT_MOST);
            }
        }
    }
}

/// A case interrupted while it settled, and that nothing that had arrived failed: it could not
/// be judged.
fn interrupted(result: &mut CaseResult) {
    if result.status == Status::Passed {
        result.status = Status::Errored;
        result.error = Some(
            "interrupted (a second Ctrl-C or SIGTERM) before its verdict was final: deliveries may still have come"
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
