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
    pub key: Key,
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
            Some(Key::Conversion(c)) => d.ids.conversion.as_ref() == Some(c),
            Some(Key::Click(c)) => d.ids.click.as_ref() == Some(c),
            None => false,
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
mod tests {
    use super::*;
    use crate::delivery::{CallbackIds, EndpointAnswer};
    use chrono::TimeZone;

    fn at(ms: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(1_700_000_000_000 + ms).unwrap()
    }

    fn delivery(seq: u64, ms: i64, conversion: &str, record: Option<&str>) -> Arc<Delivery> {
        Arc::new(Delivery {
            seq,
            at: at(ms),
            method: "POST".into(),
            path: "/callbacks".into(),
            query: None,
            headers: vec![],
            body: String::new(),
            json: None,
            ids: CallbackIds {
                callback: record.map(str::to_string),
                conversion: Some(conversion.into()),
                click: Some(format!("click-of-{conversion}")),
            },
            attempt: None,
            answer: EndpointAnswer {
                status: Some(200),
                ..EndpointAnswer::default()
            },
            refused: None,
        })
    }

    fn refused(d: Arc<Delivery>) -> Arc<Delivery> {
        let mut d = (*d).clone();
        d.refused = Some("wrong X-Api-Token".into());
        d.answer.status = Some(401);
        Arc::new(d)
    }

    /// A case that made conversion `c` at time 0 and was told record `r1` was sent.
    fn own_case(ledger: &mut Ledger, c: &str) -> ClaimId {
        let id = ledger.open(at(0));
        ledger.watch(id, Key::Conversion(c.into()), true);
        ledger.begin_part(id, vec!["r1".into()], at(0));
        id
    }

    #[test]
    fn a_reported_record_is_its_parts_whenever_it_came() {
        let mut ledger = Ledger::default();
        let id = own_case(&mut ledger, "c");
        let step = ledger.begin_part(id, vec!["r2".into()], at(100));
        assert_eq!(step, 1);
        let first = delivery(1, 150, "c", Some("r1"));
        let second = delivery(2, 120, "c", Some("r2"));
        assert_eq!(
            ledger.belongs(id, &first),
            Belongs::Part(0),
            "by record, not time"
        );
        assert_eq!(ledger.belongs(id, &second), Belongs::Part(1));
    }

    #[test]
    fn another_record_on_the_cases_own_conversion_is_unreported_elsewhere_it_is_not_the_cases() {
        let mut ledger = Ledger::default();
        let own = own_case(&mut ledger, "c");
        assert_eq!(
            ledger.belongs(own, &delivery(1, 10, "c", Some("forged"))),
            Belongs::Unreported
        );
        assert_eq!(
            ledger.belongs(own, &delivery(2, -10, "c", Some("forged"))),
            Belongs::Elsewhere,
            "before the case began"
        );
        let known = ledger.open(at(0));
        ledger.watch(known, Key::Conversion("seeded".into()), false);
        ledger.begin_part(known, vec!["r9".into()], at(0));
        assert_eq!(
            ledger.belongs(known, &delivery(3, 10, "seeded", Some("other"))),
            Belongs::Elsewhere,
            "another case's record on a shared conversion"
        );
        assert_eq!(
            ledger.belongs(known, &refused(delivery(4, 10, "seeded", Some("other")))),
            Belongs::Unreported,
            "refused for its credentials, it names the case"
        );
        assert_eq!(
            ledger.belongs(own, &delivery(5, 10, "not-c", Some("r1"))),
            Belongs::Elsewhere,
            "filed under another key"
        );
    }

    #[test]
    fn without_record_ids_a_delivery_is_the_part_running_when_it_came() {
        let mut ledger = Ledger::default();
        let id = ledger.open(at(0));
        ledger.watch(id, Key::Click("k".into()), false);
        ledger.begin_part(id, vec![], at(0));
        ledger.begin_part(id, vec![], at(100));
        let by_click = |seq, ms| {
            let mut d = (*delivery(seq, ms, "c", None)).clone();
            d.ids.click = Some("k".into());
            Arc::new(d)
        };
        assert_eq!(ledger.belongs(id, &by_click(1, 50)), Belongs::Part(0));
        assert_eq!(ledger.belongs(id, &by_click(2, 100)), Belongs::Part(1));
        assert_eq!(ledger.belongs(id, &by_click(3, -1)), Belongs::Elsewhere);
    }

    #[test]
    fn a_part_claims_its_deliveries_once_and_the_verdict_finds_the_duplicate() {
        let mut ledger = Ledger::default();
        let id = own_case(&mut ledger, "c");
        let all = vec![delivery(1, 5, "c", Some("r1"))];
        assert_eq!(ledger.of_part(id, 0, &all).count(), 1);
        let judged = ledger.judge_part(id, 0, &all);
        assert_eq!(judged.part.len(), 1);
        assert!(ledger.is_claimed(1));
        assert_eq!(ledger.of_part(id, 0, &all).count(), 0, "judged already");
        let all = vec![all[0].clone(), delivery(2, 9, "c", Some("r1"))];
        let surplus = ledger.surplus(id, &all);
        assert_eq!(surplus.len(), 1);
        assert_eq!(surplus[0].1, Surplus::Duplicate(0));
        assert!(ledger.surplus(id, &all).is_empty(), "judged once");
        assert!(ledger.late(id, &all).is_empty());
        let later = vec![
            all[0].clone(),
            all[1].clone(),
            delivery(3, 50, "c", Some("r1")),
        ];
        let late = ledger.late(id, &later);
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].seq, 3);
        let closed = ledger.close(id).unwrap();
        let mut claimed = closed.claimed;
        claimed.sort();
        assert_eq!(claimed, [1, 2, 3]);
        assert_eq!(ledger.open_claims(), 0);
    }

    #[test]
    fn unreported_and_refused_deliveries_fail_the_case_but_stay_strays() {
        let mut ledger = Ledger::default();
        let id = own_case(&mut ledger, "c");
        let wrong_secret = refused(delivery(1, 5, "c", Some("r1")));
        let all = vec![wrong_secret.clone()];
        assert!(ledger.refused_any(id, &all));
        assert_eq!(
            ledger.of_part(id, 0, &all).count(),
            0,
            "a wait counts what is taken"
        );
        let judged = ledger.judge_part(id, 0, &all);
        assert!(judged.part.is_empty());
        assert_eq!(judged.refused.len(), 1);
        assert!(!ledger.is_claimed(1), "a refused delivery stays a stray");
        assert!(!ledger.refused_any(id, &all), "judged already");
        let all = vec![wrong_secret, delivery(2, 6, "c", Some("unreported"))];
        let surplus = ledger.surplus(id, &all);
        assert_eq!(surplus.len(), 1);
        assert_eq!(surplus[0].1, Surplus::Unreported);
        assert!(!ledger.is_claimed(2));
        assert!(ledger.late(id, &all).is_empty(), "judged at the verdict");
    }

    #[test]
    fn a_delivery_claimed_by_one_case_is_never_anothers() {
        let mut ledger = Ledger::default();
        let first = ledger.open(at(0));
        ledger.watch(first, Key::Click("k".into()), false);
        ledger.begin_part(first, vec![], at(0));
        let second = ledger.open(at(0));
        ledger.watch(second, Key::Click("k".into()), false);
        ledger.begin_part(second, vec![], at(0));
        let mut d = (*delivery(1, 5, "c", None)).clone();
        d.ids.click = Some("k".into());
        let all = vec![Arc::new(d)];
        assert_eq!(ledger.judge_part(first, 0, &all).part.len(), 1);
        assert_eq!(ledger.belongs(second, &all[0]), Belongs::Elsewhere);
        assert!(ledger.judge_part(second, 0, &all).part.is_empty());
        assert!(ledger.late(second, &all).is_empty());
        assert_eq!(ledger.belongs(first, &all[0]), Belongs::Part(0));
    }

    #[test]
    fn a_closed_case_judges_nothing_more() {
        let mut ledger = Ledger::default();
        let id = own_case(&mut ledger, "c");
        ledger.close(id);
        let all = vec![delivery(1, 5, "c", Some("r1"))];
        assert_eq!(ledger.belongs(id, &all[0]), Belongs::Elsewhere);
        assert!(ledger.late(id, &all).is_empty());
        assert!(!ledger.is_claimed(1), "a stray");
    }

    mod interleavings {
        use super::*;
        use proptest::prelude::*;

        /// What a case does, in the order a case does it.
        #[derive(Debug, Clone)]
        struct CaseScript {
            key: u8,
            own: bool,
            by_click: bool,
            start: i64,
            /// How many records each part reports (0 or 1).
            parts: Vec<u8>,
        }

        /// A delivery: its key, the record it is of (`case`, `part`), when and whether the
        /// receiver refused it.
        #[derive(Debug, Clone)]
        struct Arrival {
            key: u8,
            record: Option<(u8, u8)>,
            at: i64,
            refused: bool,
        }

        fn case_script() -> impl Strategy<Value = CaseScript> {
            let parts = prop::collection::vec(0u8..2, 1..4);
            (0u8..3, any::<bool>(), any::<bool>(), 0i64..50, parts).prop_map(
                |(key, own, by_click, start, parts)| CaseScript {
                    key,
                    own,
                    by_click,
                    start,
                    parts,
                },
            )
        }

        fn arrival() -> impl Strategy<Value = Arrival> {
            let record = prop::option::of((0u8..5, 0u8..3));
            (0u8..3, record, 0i64..100, prop::bool::weighted(0.2)).prop_map(
                |(key, record, at, refused)| Arrival {
                    key,
                    record,
                    at,
                    refused,
                },
            )
        }

        fn record(case: usize, part: usize) -> String {
            format!("r{case}-{part}")
        }

        fn make(seq: u64, a: &Arrival) -> Arc<Delivery> {
            let mut d = (*delivery(seq, a.at, &format!("c{}", a.key), None)).clone();
            d.ids.click = Some(format!("k{}", a.key));
            d.ids.callback = a.record.map(|(c, p)| record(c.into(), p.into()));
            if a.refused {
                d.refused = Some("no X-Api-Token header".into());
                d.answer.status = Some(401);
            }
            Arc::new(d)
        }

        /// The run as the test drives it: the ledger, what arrived, and who claimed what.
        #[derive(Default)]
        struct Run {
            ledger: Ledger,
            arrived: Vec<Arc<Delivery>>,
            /// (case, part, delivery) for every claim the ledger's answers made.
            claims: Vec<(usize, usize, u64)>,
            /// (case, part, delivery): a record the part reported, there when it was judged
            /// and arrived after the part began.
            owed: Vec<(usize, usize, u64)>,
        }

        impl Run {
            fn parts(script: &CaseScript, case: usize, n: usize) -> Vec<String> {
                (0..script.parts[n]).map(|_| record(case, n)).collect()
            }

            /// Step `progress` of case `i`: open, judge each part, the verdict, settle.
            fn advance(
                &mut self,
                i: usize,
                script: &CaseScript,
                id: &mut Option<ClaimId>,
                progress: usize,
                began: &mut Vec<u64>,
            ) {
                let parts = script.parts.len();
                let key = if script.by_click {
                    Key::Click(format!("k{}", script.key))
                } else {
                    Key::Conversion(format!("c{}", script.key))
                };
                match progress {
                    0 => {
                        let claim = self.ledger.open(at(script.start));
                        self.ledger
                            .watch(claim, key, script.own && !script.by_click);
                        self.ledger
                            .begin_part(claim, Self::parts(script, i, 0), at(script.start));
                        began.push(self.arrived.len() as u64);
                        *id = Some(claim);
                    }
                    n if n <= parts => {
                        let (claim, part) = (id.unwrap(), n - 1);
                        let judged = self.ledger.judge_part(claim, part, &self.arrived);
                        self.claims
                            .extend(judged.part.iter().map(|d| (i, part, d.seq)));
                        let mine = record(i, part);
                        for d in &self.arrived {
                            let watched = match &key {
                                Key::Click(k) => d.ids.click.as_ref() == Some(k),
                                Key::Conversion(c) => d.ids.conversion.as_ref() == Some(c),
                            };
                            if watched
                                && script.parts[part] > 0
                                && d.ids.callback.as_ref() == Some(&mine)
                                && d.refused.is_none()
                                && d.seq > began[part]
                            {
                                self.owed.push((i, part, d.seq));
                            }
                        }
                        if n < parts {
                            let start = at(script.start + 10 * n as i64);
                            self.ledger
                                .begin_part(claim, Self::parts(script, i, n), start);
                            began.push(self.arrived.len() as u64);
                        }
                    }
                    n if n == parts + 1 => {
                        for (d, why) in self.ledger.surplus(id.unwrap(), &self.arrived) {
                            if let Surplus::Duplicate(p) | Surplus::Unexpected(p) = why
                                && d.refused.is_none()
                            {
                                self.claims.push((i, p, d.seq));
                            }
                        }
                    }
                    _ => {
                        let claim = id.unwrap();
                        for d in self.ledger.late(claim, &self.arrived) {
                            if let Belongs::Part(p) = self.ledger.belongs(claim, &d)
                                && d.refused.is_none()
                            {
                                self.claims.push((i, p, d.seq));
                            }
                        }
                        self.ledger.close(claim);
                    }
                }
            }
        }

        proptest! {
            /// Cases open, report records, wait, judge, settle and close in any interleaving
            /// with arrivals: every delivery is claimed by exactly one part of one case or is
            /// a stray, a refused one is never claimed, and a record a part reported, there
            /// when the part was judged, is that part's unless another case claimed it first.
            #[test]
            fn every_delivery_is_claimed_once_or_a_stray(
                cases in prop::collection::vec(case_script(), 1..5),
                arrivals in prop::collection::vec(arrival(), 0..12),
                order in prop::collection::vec(0usize..100, 0..80),
            ) {
                let mut run = Run::default();
                let mut pending = arrivals.iter();
                let mut progress = vec![0usize; cases.len()];
                let mut ids: Vec<Option<ClaimId>> = vec![None; cases.len()];
                let mut began: Vec<Vec<u64>> = vec![Vec::new(); cases.len()];
                // Each pick lets a delivery arrive or one case take its next step; then every
                // case finishes and the rest arrive.
                for pick in order.into_iter().chain(std::iter::repeat_n(1, 100)) {
                    let unfinished = (0..cases.len())
                        .map(|k| (k + pick) % cases.len())
                        .find(|&k| progress[k] < cases[k].parts.len() + 3);
                    match (pick % 3 == 0, unfinished) {
                        (true, _) | (_, None) => match pending.next() {
                            Some(a) => {
                                let seq = run.arrived.len() as u64 + 1;
                                run.arrived.push(make(seq, a));
                            }
                            None if unfinished.is_none() => break,
                            None => {}
                        },
                        (false, Some(i)) => {
                            run.advance(i, &cases[i], &mut ids[i], progress[i], &mut began[i]);
                            progress[i] += 1;
                        }
                    }
                }
                let mut owners: HashMap<u64, Vec<(usize, usize)>> = HashMap::new();
                for (case, part, seq) in &run.claims {
                    owners.entry(*seq).or_default().push((*case, *part));
                }
                for d in &run.arrived {
                    let owned = owners.get(&d.seq).map_or(0, Vec::len);
                    prop_assert!(owned <= 1, "delivery {} claimed by {:?}", d.seq, owners[&d.seq]);
                    prop_assert_eq!(owned == 1, run.ledger.is_claimed(d.seq), "the books agree on {}", d.seq);
                    prop_assert!(d.refused.is_none() || owned == 0, "refused {} claimed", d.seq);
                }
                for (case, part, seq) in run.owed {
                    let owner = owners.get(&seq).and_then(|o| o.first()).copied();
                    prop_assert!(owner.is_some(), "record {seq} of case {case} part {part} claimed by no one");
                    if let Some((c, p)) = owner && c == case {
                        prop_assert_eq!(p, part, "record {} of case {}", seq, case);
                    }
                }
                prop_assert_eq!(run.ledger.open_claims(), 0);
            }
        }
    }
}
