//! Where a callback is matched to its case: the run's ledger of deliveries.
//!
//! One rule, [`Ledger::belongs`], decides which part of which case a delivery is: while the
//! case waits, at its verdict (what no part expected), when it settles (what came after the
//! verdict) and, for what no case claimed, at the end of the run (strays). The rule:
//!
//! - A case watches one key: the conversion it made (its *own* key) or used, or its click when
//!   no conversion was made. Only deliveries filed under that key can be the case's.
//! - A delivery of a callback record that a part of the case reported (the `callbackId` of a
//!   conversion, resend or status-change answer) is that part's.
//! - When the case reported records, a delivery of another record is not the case's, except
//!   on its own conversion after it began (or when pitcrew's receiver refused it for its
//!   credentials): then it is *unreported*, and fails the case without being claimed.
//! - Any other delivery (no record id, or none reported) is the part that was running when it
//!   came; one that came before the case began is not the case's.
//! - A delivery another case claimed is never the case's. Each delivery is claimed by at most
//!   one part of one case; a delivery refused for its credentials is never claimed (it stays a
//!   stray) though it fails the case it names.
//!
//! The ledger keeps the books: which deliveries each case has judged, and which are claimed.
//! It is pure (no I/O, no clock): the runner feeds it what the callback source returned.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::delivery::{Delivery, Key};

/// One case attempt's account in the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClaimId(u64);

/// Which part of a case a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Belongs {
    /// Part `n` (0: the pipeline; `n`: the `then:` step `n`).
    Part(usize),
    /// A record the platform did not report for the case, on the case's own conversion (or
    /// refused for its credentials): it fails the case, and is never claimed.
    Unreported,
    /// Not the case's.
    Elsewhere,
}

/// Why a delivery fails a case at its verdict or when it settles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Surplus {
    /// Another delivery of a record part `n` reported, after the part was judged.
    Duplicate(usize),
    /// A delivery of part `n` that the part did not expect (it came after its judgement).
    Unexpected(usize),
    /// A record the platform did not report for the case.
    Unreported,
}

/// One part of a case: the records it made the platform send and when it began.
#[derive(Debug, Clone)]
struct Part {
    ids: Vec<String>,
    start: DateTime<Utc>,
}

/// What a case attempt watches, and what it has judged.
#[derive(Debug)]
struct Claim {
    key: Option<Key>,
    /// True when `key` is a conversion the case made.
    own: bool,
    since: DateTime<Utc>,
    parts: Vec<Part>,
    /// Deliveries this case has judged: the ones it claimed and the ones it failed for (a
    /// case has a few, so a list, not a set).
    judged: Vec<u64>,
}

/// The run's ledger: every open case's claim and every claimed delivery.
#[derive(Debug, Default)]
pub struct Ledger {
    claims: HashMap<ClaimId, Claim>,
    next: u64,
    /// Every delivery some part of some case claimed: never claimed again, never a stray.
    claimed: HashSet<u64>,
}

/// What a closed claim leaves: where its deliveries were filed and which it claimed, so that
/// a source that keeps deliveries may forget them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// Where the case's deliveries were filed.
    pub key: Key,
    /// The deliveries it claimed.
    pub claimed: Vec<u64>,
}

impl Ledger {
    /// Opens the account of a case attempt that began at `since`.
    pub fn open(&mut self, since: DateTime<Utc>) -> ClaimId {
        self.next += 1;
        let id = ClaimId(self.next);
        let claim = Claim {
            key: None,
            own: false,
            since,
            parts: Vec::with_capacity(1),
            judged: Vec::new(),
        };
        self.claims.insert(id, claim);
        id
    }

    /// The case's deliveries are filed under `key`; `own` when it is a conversion the case made.
    pub fn watch(&mut self, id: ClaimId, key: Key, own: bool) {
        if let Some(claim) = self.claims.get_mut(&id) {
            claim.key = Some(key);
            claim.own = own;
        }
    }

    /// Part `n` begins at `start` (parts are numbered in the order they begin, from 0); `ids`
    /// are the callback records the platform said the part made it send.
    pub fn begin_part(&mut self, id: ClaimId, ids: Vec<String>, start: DateTime<Utc>) -> usize {
        match self.claims.get_mut(&id) {
            Some(claim) => {
                claim.parts.push(Part { ids, start });
                claim.parts.len() - 1
            }
            None => 0,
        }
    }

    /// Where the case's deliveries are filed, once known.
    pub fn key(&self, id: ClaimId) -> Option<&Key> {
        self.claims.get(&id)?.key.as_ref()
    }

    /// The rule: which part of case `id` the delivery `d` is (see the module's comment).
    pub fn belongs(&self, id: ClaimId, d: &Delivery) -> Belongs {
        let Some(claim) = self.claims.get(&id) else {
            return Belongs::Elsewhere;
        };
        let filed_here = match &claim.key {
            // A partner postback is never a callback (`expect.postbacks` judges it).
            _ if d.postback => false,
            Some(Key::Conversion(c)) => d.ids.conversion.as_ref() == Some(c),
            Some(Key::Click(c)) => d.ids.click.as_ref() == Some(c),
            Some(Key::Postback(_)) | None => false,
        };
        if !filed_here || (self.claimed.contains(&d.seq) && !claim.judged.contains(&d.seq)) {
            return Belongs::Elsewhere;
        }
        let since = d.at >= claim.since;
        if let Some(record) = &d.ids.callback {
            if let Some(n) = claim.parts.iter().position(|p| p.ids.contains(record)) {
                return Belongs::Part(n);
            }
            if claim.parts.iter().any(|p| !p.ids.is_empty()) {
                let names_the_case = claim.own || d.refused.is_some();
                return if names_the_case && since {
                    Belongs::Unreported
                } else {
                    Belongs::Elsewhere
                };
            }
        }
        match claim.parts.iter().rposition(|p| p.start <= d.at) {
            Some(n) => Belongs::Part(n),
            None => Belongs::Elsewhere,
        }
    }

    /// The deliveries among `all` that are case `id`'s and that it has not judged, with the
    /// part each is (or [`Belongs::Unreported`]).
    fn unjudged<'a>(
        &'a self,
        id: ClaimId,
        all: &'a [Arc<Delivery>],
    ) -> impl Iterator<Item = (&'a Arc<Delivery>, Belongs)> + 'a {
        let judged = self.claims.get(&id).map(|c| &c.judged);
        all.iter()
            .filter(move |d| !judged.is_some_and(|j| j.contains(&d.seq)))
            .map(move |d| (d, self.belongs(id, d)))
            .filter(|(_, belongs)| *belongs != Belongs::Elsewhere)
    }

    /// [`Self::unjudged`], collected (to judge them next).
    fn unjudged_owned(&self, id: ClaimId, all: &[Arc<Delivery>]) -> Vec<(Arc<Delivery>, Belongs)> {
        self.unjudged(id, all)
            .map(|(d, belongs)| (d.clone(), belongs))
            .collect()
    }

    /// The deliveries among `all` that are part `n`'s and not judged yet, but for those
    /// refused for their credentials, without judging them (what a waiting part counts).
    pub fn of_part<'a>(
        &'a self,
        id: ClaimId,
        n: usize,
        all: &'a [Arc<Delivery>],
    ) -> impl Iterator<Item = &'a Arc<Delivery>> + 'a {
        self.unjudged(id, all)
            .filter(move |(d, belongs)| *belongs == Belongs::Part(n) && d.refused.is_none())
            .map(|(d, _)| d)
    }

    /// True when a delivery among `all` that is the case's, and not judged yet, was refused
    /// for its credentials: the case fails without waiting any longer.
    pub fn refused_any(&self, id: ClaimId, all: &[Arc<Delivery>]) -> bool {
        self.unjudged(id, all).any(|(d, _)| d.refused.is_some())
    }

    /// Judges part `n`: its deliveries among `all` (not judged yet) are returned and claimed.
    /// Also returned, judged but never claimed (they stay strays): the case's deliveries
    /// refused for their credentials, of any part, which fail it.
    pub fn judge_part(&mut self, id: ClaimId, n: usize, all: &[Arc<Delivery>]) -> Judged {
        let mut judged = Judged::default();
        let found = self.unjudged_owned(id, all);
        for (d, belongs) in found {
            match (belongs, d.refused.is_some()) {
                (_, true) => judged.refused.push(d.clone()),
                (Belongs::Part(p), false) if p == n => judged.part.push(d.clone()),
                _ => continue,
            }
            self.judge(id, &d, belongs);
        }
        judged
    }

    /// At the verdict: every delivery of the case among `all` that no part judged, and why
    /// it fails the case. Each is judged (claimed when it is a part's).
    pub fn surplus(&mut self, id: ClaimId, all: &[Arc<Delivery>]) -> Vec<(Arc<Delivery>, Surplus)> {
        let found = self.unjudged_owned(id, all);
        let mut surplus = Vec::with_capacity(found.len());
        for (d, belongs) in found {
            let why = match belongs {
                Belongs::Part(n) => {
                    let reported = self.claims.get(&id).map(|c| &c.parts[n].ids);
                    let of_record = d
                        .ids
                        .callback
                        .as_ref()
                        .is_some_and(|r| reported.is_some_and(|ids| ids.contains(r)));
                    if of_record {
                        Surplus::Duplicate(n)
                    } else {
                        Surplus::Unexpected(n)
                    }
                }
                _ => Surplus::Unreported,
            };
            self.judge(id, &d, belongs);
            surplus.push((d, why));
        }
        surplus
    }

    /// After the verdict: the deliveries of the case among `all` that it had not judged
    /// (they came late). Each is judged (claimed when it is a part's and not refused).
    pub fn late(&mut self, id: ClaimId, all: &[Arc<Delivery>]) -> Vec<Arc<Delivery>> {
        let found = self.unjudged_owned(id, all);
        for (d, belongs) in &found {
            self.judge(id, d, *belongs);
        }
        found.into_iter().map(|(d, _)| d).collect()
    }

    /// Marks `d` judged by case `id`; claims it when it is a part's and was not refused.
    fn judge(&mut self, id: ClaimId, d: &Delivery, belongs: Belongs) {
        if let Some(claim) = self.claims.get_mut(&id) {
            if !claim.judged.contains(&d.seq) {
                claim.judged.push(d.seq);
            }
            if matches!(belongs, Belongs::Part(_)) && d.refused.is_none() {
                self.claimed.insert(d.seq);
            }
        }
    }

    /// Closes case `id`'s account: nothing more is judged for it. Returns its key and the
    /// deliveries it claimed (a source may forget them), when it watched one.
    pub fn close(&mut self, id: ClaimId) -> Option<Closed> {
        let claim = self.claims.remove(&id)?;
        let key = claim.key?;
        let claimed = claim
            .judged
            .into_iter()
            .filter(|seq| self.claimed.contains(seq))
            .collect();
        Some(Closed { key, claimed })
    }

    /// Claims deliveries that are no part's but a case's all the same (its partner postbacks).
    pub fn claim(&mut self, seqs: impl IntoIterator<Item = u64>) {
        self.claimed.extend(seqs);
    }

    /// True when some part of some case claimed the delivery `seq`.
    pub fn is_claimed(&self, seq: u64) -> bool {
        self.claimed.contains(&seq)
    }

    /// Every claimed delivery: what is not among them is a stray at the end of the run.
    pub fn claimed(&self) -> &HashSet<u64> {
        &self.claimed
    }

    /// How many cases have an open account.
    pub fn open_claims(&self) -> usize {
        self.claims.len()
    }
}

/// What judging a part found.
#[derive(Debug, Default)]
pub struct Judged {
    /// The part's deliveries, in the order given.
    pub part: Vec<Arc<Delivery>>,
    /// The case's deliveries refused for their credentials (any part).
    pub refused: Vec<Arc<Delivery>>,
}

#[cfg(test)]
#[path = "ledger_tests.rs"]
mod tests;
