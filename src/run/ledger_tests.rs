//! The ledger's rule and books, on plain deliveries: no server, no clock.

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
            pub_click: None,
        },
        postback: false,
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
                            Key::Postback(_) => false,
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
