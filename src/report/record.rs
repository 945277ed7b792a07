//! The run record built from the runner's events: everything a report shows, in the record's
//! own format (`format.rs`). It is the only input of every file report (JUnit, JSON, HTML);
//! the JSON report is the record itself.
//!
//! Secrets are masked once, when the record is finished: every string in it goes through
//! [`crate::mask`].

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::format::{
    AttemptRecord, Cancelled, CaseRecord, FailureRecord, IdsRecord, InputsRecord, RunRecord,
    StrayRecord, SuiteRecord, Summary, VERSION, Verdict,
};
use crate::plan::Params;
use crate::run::{CancelReason, CaseResult, Event, EventKind, RunInfo, Status};

/// A case with no record yet.
const NOT_YET: u32 = u32::MAX;

/// Builds the record from events: the reports' one fan-in point.
#[derive(Debug, Default)]
pub struct RecordBuilder {
    info: Option<Arc<RunInfo>>,
    started_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
    duration_ms: Option<u64>,
    /// The records, in the order the verdicts came (each built as its verdict comes, so that
    /// nothing else of the case is held); room for all is reserved at the start, and memory
    /// is only taken as they come.
    cases: Vec<CaseRecord>,
    /// Where each case's record is in `cases`, by case index ([`NOT_YET`]: nowhere yet).
    at: Vec<u32>,
    /// The failed attempts of cases run again, until their verdict.
    earlier: HashMap<usize, Vec<AttemptRecord>>,
    cancelled: Option<CancelReason>,
    strays: Vec<StrayRecord>,
}

impl RecordBuilder {
    /// Takes in one event.
    pub fn on_event(&mut self, event: &Event) {
        match &event.kind {
            EventKind::RunStarted(info) => {
                self.started_at = Some(event.at);
                self.cases = Vec::with_capacity(info.cases.len());
                self.at = vec![NOT_YET; info.cases.len()];
                self.info = Some(info.clone());
            }
            EventKind::CaseStarted { .. } => {}
            EventKind::AttemptFailed(result) => {
                self.earlier
                    .entry(result.index)
                    .or_default()
                    .push(attempt_record(result));
            }
            EventKind::CaseFinished(result) => {
                if let Some(info) = &self.info
                    && let Some(planned) = info.cases.get(result.index)
                {
                    let earlier = self.earlier.remove(&result.index).unwrap_or_default();
                    let suite = &info.suites[planned.suite];
                    let record = verdict_record(planned, suite, result, earlier);
                    self.put(result.index, record);
                }
            }
            EventKind::RunCancelled { reason } => {
                if self.cancelled != Some(CancelReason::Aborted) {
                    self.cancelled = Some(*reason);
                }
            }
            EventKind::RunFinished { strays, duration } => {
                self.strays = strays.iter().map(StrayRecord::from).collect();
                self.duration_ms = Some(duration.as_millis() as u64);
                self.finished_at = Some(event.at);
            }
        }
    }

    /// Files the record of case `index`.
    fn put(&mut self, index: usize, record: CaseRecord) {
        match self.at.get(index) {
            Some(&NOT_YET) => {
                self.at[index] = self.cases.len() as u32;
                self.cases.push(record);
            }
            Some(&at) => self.cases[at as usize] = record,
            None => {}
        }
    }

    /// The record, with every secret masked. Every planned case is in it: one the run never
    /// reported is `errored`.
    pub fn finish(mut self) -> RunRecord {
        let info = self.info.take().unwrap_or_else(|| {
            Arc::new(RunInfo {
                run_id: String::new(),
                target: String::new(),
                shard: None,
                suites: Vec::new(),
                cases: Vec::new(),
            })
        });
        let started_at = self.started_at.unwrap_or_else(Utc::now);
        let duration_ms = self.duration_ms.unwrap_or_else(|| {
            (self.finished_at.unwrap_or_else(Utc::now) - started_at)
                .num_milliseconds()
                .max(0) as u64
        });
        let suites: Vec<SuiteRecord> = info
            .suites
            .iter()
            .map(|s| SuiteRecord {
                name: s.name.to_string(),
                file: s.file.to_string(),
                tags: s.tags.clone(),
            })
            .collect();
        // A case the run never reported is `errored`; then each record is moved to its
        // case's place, in place.
        for (index, planned) in info.cases.iter().enumerate() {
            if self.at.get(index) == Some(&NOT_YET) {
                let earlier = self.earlier.remove(&index).unwrap_or_default();
                let record = unjudged_record(planned, &info.suites[planned.suite], earlier);
                self.put(index, record);
            }
        }
        let mut cases = std::mem::take(&mut self.cases);
        let mut index_of = vec![0u32; cases.len()];
        for (index, &at) in self.at.iter().enumerate() {
            index_of[at as usize] = index as u32;
        }
        for place in 0..cases.len() {
            // Each swap puts one record in its place for good.
            while index_of[place] as usize != place {
                let to = index_of[place] as usize;
                cases.swap(place, to);
                index_of.swap(place, to);
            }
        }
        let summary = Summary::of(&cases, self.strays.len(), duration_ms);
        let record = RunRecord {
            version: VERSION,
            run_id: info.run_id.clone(),
            target: info.target.clone(),
            shard: info.shard.clone(),
            started_at,
            cancelled: self.cancelled.map(Cancelled::from),
            summary,
            suites,
            cases,
            stray: self.strays,
            merged_from: Vec::new(),
        };
        masked(record)
    }
}

/// The record of a case the run gave no verdict: errored (this is a bug).
fn unjudged_record(
    planned: &crate::run::events::CaseInfo,
    suite: &crate::run::events::SuiteInfo,
    earlier: Vec<AttemptRecord>,
) -> CaseRecord {
    CaseRecord {
        error: Some(
            "the run ended without a verdict for this case (a bug; please report it)".into(),
        ),
        ..planned_record(planned, suite, earlier)
    }
}

/// What the plan says of a case, with no verdict yet.
fn planned_record(
    planned: &crate::run::events::CaseInfo,
    suite: &crate::run::events::SuiteInfo,
    earlier: Vec<AttemptRecord>,
) -> CaseRecord {
    CaseRecord {
        name: planned.name.clone(),
        suite: suite.name.clone(),
        file: suite.file.clone(),
        line: planned.line,
        tags: planned.tags.clone(),
        status: Verdict::Errored,
        flaky: false,
        duration_ms: 0,
        started_at: None,
        attempts: 0,
        failures: Vec::new(),
        error: None,
        ids: IdsRecord::default(),
        inputs: InputsRecord::default(),
        transcript: Vec::new(),
        earlier_attempts: earlier,
        wake_us: None,
        position: planned.position,
    }
}

/// The record of a case's verdict (its last attempt), after `earlier` failed attempts.
fn verdict_record(
    planned: &crate::run::events::CaseInfo,
    suite: &crate::run::events::SuiteInfo,
    last: &CaseResult,
    earlier: Vec<AttemptRecord>,
) -> CaseRecord {
    let flaky = last.status == Status::Passed && !earlier.is_empty();
    CaseRecord {
        status: last.status.into(),
        flaky,
        duration_ms: last.duration.as_millis() as u64,
        started_at: last.started_at,
        attempts: last.attempt,
        failures: failures(&last.failures),
        error: last.error.clone(),
        ids: (&last.ids).into(),
        inputs: (&last.inputs).into(),
        transcript: last.transcript.clone(),
        wake_us: last.wake.map(|w| w.as_micros() as u64),
        ..planned_record(planned, suite, earlier)
    }
}

/// A case's failures as the record keeps them.
fn failures(failures: &[crate::check::Failure]) -> Vec<FailureRecord> {
    failures.iter().map(FailureRecord::from).collect()
}

fn attempt_record(result: &CaseResult) -> AttemptRecord {
    AttemptRecord {
        attempt: result.attempt,
        status: result.status.into(),
        duration_ms: result.duration.as_millis() as u64,
        started_at: result.started_at,
        failures: failures(&result.failures),
        error: result.error.clone(),
        transcript: result.transcript.clone(),
    }
}

/// The record with every text masked (the one masking point of the file reports).
pub fn masked(mut record: RunRecord) -> RunRecord {
    let mut masking = Masking::new();
    masking.head(&mut record);
    let mut cases = std::mem::take(&mut record.cases);
    for case in &mut cases {
        masking.shared_case(case);
    }
    record.cases = cases;
    record
}

/// Masks a record's strings: its head, and its cases one at a time (as a whole record's, whose
/// shared texts and parameter sets are masked once each; or as cases read one by one from a
/// saved record, each on its own).
pub struct Masking {
    masker: crate::mask::Masker,
    /// Shared texts already masked, by address: each original is held beside its masked copy,
    /// so that no address is freed and taken by another value meanwhile.
    texts: HashMap<*const u8, (Arc<str>, Arc<str>)>,
    params: HashMap<*const std::collections::BTreeMap<String, String>, (Params, Params)>,
}

impl Default for Masking {
    fn default() -> Self {
        Self::new()
    }
}

impl Masking {
    /// Masking with the secrets this process knows now.
    pub fn new() -> Masking {
        Masking {
            masker: crate::mask::current(),
            texts: HashMap::new(),
            params: HashMap::new(),
        }
    }

    fn text(&self, s: &mut String) {
        if let std::borrow::Cow::Owned(masked) = self.masker.mask(s) {
            *s = masked;
        }
    }

    fn arc(&self, s: &mut Arc<str>) {
        if let std::borrow::Cow::Owned(masked) = self.masker.mask(s) {
            *s = Arc::from(masked);
        }
    }

    fn failures(&self, list: &mut [FailureRecord]) {
        for f in list {
            for text in [&mut f.check, &mut f.expected, &mut f.actual, &mut f.message] {
                self.text(text);
            }
            f.path
                .iter_mut()
                .chain(f.at.iter_mut())
                .for_each(|t| self.text(t));
        }
    }

    /// Everything of `record` but its cases.
    pub fn head(&mut self, record: &mut RunRecord) {
        let m = |s: &mut String| self.text(s);
        m(&mut record.run_id);
        m(&mut record.target);
        record.merged_from.iter_mut().for_each(m);
        record.shard.iter_mut().for_each(m);
        for suite in &mut record.suites {
            m(&mut suite.name);
            m(&mut suite.file);
            suite.tags.iter_mut().for_each(m);
        }
        for stray in &mut record.stray {
            for text in [&mut stray.method, &mut stray.path, &mut stray.reason] {
                m(text);
            }
            let ids = &mut stray.ids;
            ids.callback
                .iter_mut()
                .chain(ids.conversion.iter_mut())
                .chain(ids.click.iter_mut())
                .for_each(m);
        }
    }

    /// One case of a whole record: its texts and parameters shared with other cases are
    /// masked once.
    fn shared_case(&mut self, case: &mut CaseRecord) {
        let masker = &self.masker;
        let shared = |texts: &mut HashMap<*const u8, (Arc<str>, Arc<str>)>, s: &mut Arc<str>| {
            let (_, masked) = texts.entry(s.as_ptr()).or_insert_with(|| {
                let masked = match masker.mask(s) {
                    std::borrow::Cow::Owned(masked) => Arc::from(masked),
                    std::borrow::Cow::Borrowed(_) => s.clone(),
                };
                (s.clone(), masked)
            });
            *s = masked.clone();
        };
        shared(&mut self.texts, &mut case.suite);
        shared(&mut self.texts, &mut case.file);
        shared(&mut self.texts, &mut case.inputs.offer);
        if let Some(event) = &mut case.inputs.event {
            shared(&mut self.texts, event);
        }
        let given = &case.inputs.params;
        let (_, masked) = self
            .params
            .entry(Arc::as_ptr(given))
            .or_insert_with(|| (given.clone(), masked_params(masker, given)));
        case.inputs.params = masked.clone();
        self.own(case);
    }

    /// One case read on its own (from a saved record, a case at a time).
    pub fn case(&self, case: &mut CaseRecord) {
        self.arc(&mut case.suite);
        self.arc(&mut case.file);
        self.arc(&mut case.inputs.offer);
        if let Some(event) = &mut case.inputs.event {
            self.arc(event);
        }
        case.inputs.params = masked_params(&self.masker, &case.inputs.params);
        self.own(case);
    }

    /// The texts a case holds alone.
    fn own(&self, case: &mut CaseRecord) {
        let m = |s: &mut String| self.text(s);
        self.arc(&mut case.name);
        case.tags.iter_mut().for_each(m);
        self.failures(&mut case.failures);
        case.error.iter_mut().for_each(m);
        case.ids
            .click
            .iter_mut()
            .chain(case.ids.conversion.iter_mut())
            .for_each(m);
        m(&mut case.inputs.member);
        case.transcript.iter_mut().for_each(m);
        for attempt in &mut case.earlier_attempts {
            self.failures(&mut attempt.failures);
            attempt.error.iter_mut().for_each(m);
            attempt.transcript.iter_mut().for_each(m);
        }
    }
}

/// `given` with its keys and values masked (the same set when nothing in it is secret).
fn masked_params(masker: &crate::mask::Masker, given: &Params) -> Params {
    let hides = |t: &String| matches!(masker.mask(t), std::borrow::Cow::Owned(_));
    if given.iter().any(|(k, v)| hides(k) || hides(v)) {
        Arc::new(
            given
                .iter()
                .map(|(k, v)| (masker.mask(k).into_owned(), masker.mask(v).into_owned()))
                .collect(),
        )
    } else {
        given.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    /// Every text field of a record, filled with a secret, comes out masked: a field added
    /// later and forgotten by `masked` fails this test.
    #[test]
    fn no_text_field_escapes_masking() {
        const SECRET: &str = "sekrit-4f1d";
        crate::mask::register(SECRET);
        let case = json!({
            "name": "n", "suite": "s", "file": "f", "line": 1, "tags": ["t"],
            "status": "failed", "flaky": false, "duration_ms": 1,
            "started_at": "2026-01-01T00:00:00Z", "attempts": 2,
            "failures": [{"check": "c", "path": "p", "expected": "e", "actual": "a", "message": "m", "at": "x:1:1"}],
            "error": "e", "ids": {"click": "k", "conversion": "v"},
            "inputs": {"offer": "o", "member": "m", "event": "e", "params": {"k": "v"}},
            "transcript": ["t"],
            "earlier_attempts": [{"attempt": 1, "status": "failed", "duration_ms": 1,
                "failures": [{"check": "c", "path": "p", "expected": "e", "actual": "a", "message": "m", "at": "x"}],
                "error": "e", "transcript": ["t"]}]
        });
        let record = json!({
            "version": 1, "run_id": "r", "target": "t", "shard": "1/2",
            "started_at": "2026-01-01T00:00:00Z", "cancelled": "interrupted",
            "summary": {"total": 1, "passed": 0, "failed": 1, "errored": 0, "skipped": 0, "flaky": 0, "stray": 1, "duration_ms": 1},
            "suites": [{"name": "s", "file": "f", "tags": ["t"]}],
            "cases": [case],
            "stray": [{"seq": 1, "at": "2026-01-01T00:00:00Z", "method": "m", "path": "p",
                "ids": {"callback": "c", "conversion": "v", "click": "k"}, "reason": "r"}],
            "merged_from": ["r1"]
        });
        fn fill(v: &mut Value, key: &str) {
            match v {
                Value::String(s)
                    if !matches!(key, "status" | "started_at" | "at" | "cancelled") =>
                {
                    *s = format!("{s} {SECRET}");
                }
                Value::Array(items) => items.iter_mut().for_each(|i| fill(i, key)),
                Value::Object(map) => {
                    let entries = std::mem::take(map);
                    for (k, mut v) in entries {
                        fill(&mut v, &k);
                        let k = if key == "params" {
                            format!("{k}{SECRET}")
                        } else {
                            k
                        };
                        map.insert(k, v);
                    }
                }
                _ => {}
            }
        }
        let mut filled = record;
        fill(&mut filled, "");
        let record: RunRecord = serde_json::from_value(filled).expect("a record");
        let text = masked(record.clone()).to_json();
        assert!(!text.contains(SECRET), "a secret escaped masking:\n{text}");
        assert!(text.contains("***"));
        let unmasked = record.to_json();
        assert!(
            unmasked.matches(SECRET).count() >= 38,
            "the test fills every text field: {}",
            unmasked.matches(SECRET).count()
        );
    }

    /// Verdicts come in any order; the record lists cases in plan order, and a case the run
    /// never reported is errored: none vanishes.
    #[test]
    fn records_are_in_plan_order_whatever_order_the_verdicts_come_in() {
        use crate::run::events::{CaseInfo, Event, EventKind, RunInfo, SuiteInfo};
        let event = |kind| Event {
            at: Utc::now(),
            kind,
        };
        let info = RunInfo {
            run_id: "r".into(),
            target: "sandbox".into(),
            shard: None,
            suites: vec![SuiteInfo {
                name: "s".into(),
                file: "f.yaml".into(),
                tags: vec![],
            }],
            cases: (0..6)
                .map(|i| CaseInfo {
                    name: format!("case {i}").into(),
                    suite: 0,
                    line: i as u64 + 1,
                    tags: vec![],
                    position: None,
                })
                .collect(),
        };
        let mut builder = RecordBuilder::default();
        builder.on_event(&event(EventKind::RunStarted(Arc::new(info))));
        for index in [4, 0, 5, 2, 1] {
            let result = CaseResult::not_run(index, Status::Passed, "");
            builder.on_event(&event(EventKind::CaseFinished(Arc::new(result))));
        }
        let record = builder.finish();
        let names: Vec<&str> = record.cases.iter().map(|c| &*c.name).collect();
        assert_eq!(
            names,
            ["case 0", "case 1", "case 2", "case 3", "case 4", "case 5"]
        );
        let statuses: Vec<Verdict> = record.cases.iter().map(|c| c.status).collect();
        use Verdict::*;
        assert_eq!(statuses, [Passed, Passed, Passed, Errored, Passed, Passed]);
        assert_eq!(record.summary.total, 6);
    }
}
