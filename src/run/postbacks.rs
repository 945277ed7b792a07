//! A case's partner postbacks (`expect.postbacks`): read where the source files them (at
//! pitcrew's receiver, under the case's `pub_click_id`; in a platform's log, among its
//! conversion's entries), counted and checked after the case's parts, and read once more when
//! it settles, so that a duplicate or unexpected one that comes late fails it too.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use super::case::{Account, CaseRun, Entry, Stop};
use super::source::CallbackSource;
use crate::check::postback as postback_check;
use crate::delivery::{Delivery, Key};
use crate::plan::{PUB_CLICK_ID, PostbackCheck};
use crate::platform::Platform;

/// The partner postbacks a case judged: where they are read, and which it saw.
#[derive(Debug, Clone)]
pub struct PostbacksSeen {
    pub key: Key,
    /// At pitcrew's receiver, where cases that once used the same `pub_click_id` read the same
    /// key: only what arrived since the case began can be its.
    since: Option<DateTime<Utc>>,
    /// The sequence numbers of those it judged.
    seen: Vec<u64>,
    /// What the case expects.
    pub expected: PostbackCheck,
}

impl PostbacksSeen {
    /// The postbacks among `all` that are the case's and that it has not judged yet.
    fn unjudged(&self, all: &[Arc<Delivery>], account: &Account) -> Vec<Arc<Delivery>> {
        let books = account.books();
        all.iter()
            .filter(|d| d.postback)
            .filter(|d| self.since.is_none_or(|since| d.at >= since))
            .filter(|d| !self.seen.contains(&d.seq) && !books.is_claimed(d.seq))
            .cloned()
            .collect()
    }

    /// Claims `postbacks` for the case (at pitcrew's receiver: they are no strays).
    fn claim(&mut self, postbacks: &[Arc<Delivery>], account: &Account) {
        self.seen.extend(postbacks.iter().map(|d| d.seq));
        if matches!(self.key, Key::Postback(_)) {
            account.books().claim(postbacks.iter().map(|d| d.seq));
        }
    }

    /// After the verdict: the case's postbacks that came since it was judged fail it (a
    /// duplicate or unexpected one). Returns the failure and what came, for the transcript;
    /// the source may then forget them all.
    pub async fn late<S: CallbackSource>(
        mut self,
        source: &S,
        account: &Account,
    ) -> Result<Option<(Vec<crate::check::Failure>, Vec<Arc<Delivery>>)>, String> {
        let all = source
            .deliveries(&self.key)
            .await
            .map_err(|e| e.to_string())?;
        let late = self.unjudged(&all, account);
        self.claim(&late, account);
        if matches!(self.key, Key::Postback(_)) {
            source.forget(&self.key, &self.seen);
        }
        if late.is_empty() {
            return Ok(None);
        }
        let judged = self.seen.len() - late.len();
        let taken: Vec<Arc<Delivery>> = (late.iter())
            .filter(|d| d.refused.is_none())
            .cloned()
            .collect();
        let mut failures = postback_check::refusals(&self.expected, &late);
        if !taken.is_empty() {
            // Accepted or not, a postback after the verdict is one too many.
            failures.push(postback_check::late(&self.expected, judged, &taken));
        }
        Ok(Some((failures, late)))
    }
}

impl<P: Platform, S: CallbackSource> CaseRun<'_, P, S> {
    /// Waits for the partner postbacks the case expects (none, unless `expect.postbacks` says)
    /// and checks them. Only a case with a `pub_click_id` has postbacks to judge.
    pub(super) async fn check_postbacks(&mut self) -> Result<(), Stop> {
        let case = self.case;
        let Some(pub_click) = case.params.get(PUB_CLICK_ID) else {
            return Ok(());
        };
        let written = case.expect.postbacks.as_deref();
        let Some(key) = (self.source).postback_key(pub_click, self.ids.conversion.as_deref())
        else {
            // Read by conversion, and the case made none: none can be its.
            if let Some(expected) = written.filter(|e| e.count > 0) {
                self.failures.extend(postback_check::judged(expected, &[]));
            }
            return Ok(());
        };
        // Unwritten: none may arrive.
        let expected = match written {
            Some(written) => PostbackCheck::clone(written),
            None => PostbackCheck {
                at: case.expect.at.clone(),
                ..PostbackCheck::default()
            },
        };
        let mut seen = PostbacksSeen {
            since: matches!(key, Key::Postback(_)).then_some(self.started_at),
            key,
            seen: Vec::new(),
            expected,
        };
        let want = seen.expected.count as usize;
        let all = if want == 0 {
            self.source.deliveries(&seen.key).await?
        } else {
            let deadline = self.deadline.min(Instant::now() + seen.expected.within);
            self.only_waits();
            let account = self.account.clone();
            // A postback refused for its credentials ends the wait: it is why the rest did not
            // come as they should.
            let enough = |all: &[Arc<Delivery>]| {
                let mine = seen.unjudged(all, &account);
                mine.iter().any(|d| d.refused.is_some() || !d.accepted())
                    || mine.iter().filter(|d| d.accepted()).count() >= want
            };
            self.source.wait(&seen.key, &enough, deadline).await?
        };
        let postbacks = seen.unjudged(&all, &self.account);
        seen.claim(&postbacks, &self.account);
        self.failures
            .extend(postback_check::judged(&seen.expected, &postbacks));
        self.entries
            .extend(postbacks.into_iter().map(Entry::Delivery));
        self.postbacks = Some(seen);
        Ok(())
    }
}
