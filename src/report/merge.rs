//! `pitcrew report merge OUT IN…`: shard reports into one, JUnit or JSON (told apart by their
//! content). The merged report holds every case once, in the order of the unsharded run: the
//! shards of `--shard K/N` deal cases round robin, and each report says which shard it is, so
//! dealing them back restores the order. Reports that are not the shards of one run are
//! concatenated in the order given. Names stay unique: a case in two inputs is an error, and so
//! is a missing shard (its cases would vanish), unless `partial` says that is known.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use quick_junit::{Property, Report, TestCase, TestSuite};

use std::sync::Arc;

use super::ReportError;
use super::format::{self, CaseRecord, RunRecord, SuiteRecord, Summary};
use super::record;
use super::stream::RecordFile;
use crate::plan::Shard;

/// One input: how to name it in messages, and where it is. Inputs are read one at a time, as
/// they are merged: a report's text is never held beside another's, nor beside its own cases.
pub struct Input {
    pub name: String,
    pub path: std::path::PathBuf,
}

impl Input {
    fn text(&self) -> Result<String, ReportError> {
        std::fs::read_to_string(&self.path)
            .map_err(|e| ReportError::Unreadable(format!("{}: it cannot be read ({e})", self.name)))
    }

    /// Its format, from its first characters.
    fn kind(&self) -> Result<Kind, ReportError> {
        use std::io::Read;
        let mut head = Vec::new();
        std::fs::File::open(&self.path)
            .and_then(|f| f.take(4096).read_to_end(&mut head))
            .map_err(|e| {
                ReportError::Unreadable(format!("{}: it cannot be read ({e})", self.name))
            })?;
        let head = String::from_utf8_lossy(&head);
        match head
            .trim_start_matches('\u{feff}')
            .trim_start()
            .chars()
            .next()
        {
            Some('<') => Ok(Kind::Junit),
            Some('{') => Ok(Kind::Json),
            _ => Err(ReportError::Unreadable(format!(
                "{} is neither JUnit XML nor a pitcrew JSON report",
                self.name
            ))),
        }
    }
}

/// The merged report, and notes worth printing.
pub struct Merged {
    report: MergedReport,
    pub format: &'static str,
    pub cases: usize,
}

enum MergedReport {
    Json(Box<JsonMerge>),
    Junit(Box<Report>),
}

impl Merged {
    /// Writes the merged report to `out`, as it is serialized.
    pub fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        match &self.report {
            MergedReport::Json(merge) => merge.write(out),
            MergedReport::Junit(report) => {
                report.serialize(&mut *out).map_err(std::io::Error::other)
            }
        }
    }
}

/// Merges `inputs` (all JUnit or all JSON).
pub fn merge(inputs: &[Input], partial: bool) -> Result<Merged, ReportError> {
    let kinds: Vec<(&str, Kind)> = inputs
        .iter()
        .map(|i| Ok((i.name.as_str(), i.kind()?)))
        .collect::<Result<_, ReportError>>()?;
    let first = kinds
        .first()
        .ok_or_else(|| ReportError::Mismatch("nothing to merge".into()))?
        .1;
    if let Some((name, other)) = kinds.iter().find(|(_, k)| *k != first) {
        return Err(ReportError::Mismatch(format!(
            "{name} is {}, but {} is {}: merge reports of one format at a time",
            kinds_name(*other),
            kinds[0].0,
            kinds_name(first)
        )));
    }
    match first {
        Kind::Junit => merge_junit(inputs, partial),
        Kind::Json => merge_json(inputs, partial),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Junit,
    Json,
}

fn kinds_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Junit => "JUnit XML",
        Kind::Json => "a JSON run record",
    }
}

/// One input's cases, in its order, and which shard it is.
struct Part<T> {
    name: String,
    shard: Option<Shard>,
    cases: Vec<T>,
    /// Each case's position in the whole plan, when the shard's report says it (every shard
    /// of a pitcrew that deals groups does).
    positions: Vec<Option<u64>>,
}

/// The cases of every part in the unsharded run's order, when the parts are the shards of one
/// run (dealt back round robin); else in the order given.
fn order<T>(parts: Vec<Part<T>>, partial: bool) -> Result<Vec<(usize, T)>, ReportError> {
    let count = parts.first().and_then(|p| p.shard).map(|s| s.count);
    let sharded = count.is_some()
        && parts
            .iter()
            .all(|p| p.shard.map(|s| s.count) == count && p.shard.is_some());
    if !sharded {
        return Ok(parts
            .into_iter()
            .enumerate()
            .flat_map(|(i, p)| p.cases.into_iter().map(move |c| (i, c)))
            .collect());
    }
    let count = count.unwrap_or(1);
    let has = |p: &Part<T>| {
        !p.cases.is_empty()
            && p.positions.len() == p.cases.len()
            && p.positions.iter().all(Option::is_some)
    };
    let positioned = parts.iter().all(|p| p.cases.is_empty() || has(p));
    if !positioned && let Some(with) = parts.iter().find(|p| has(p)) {
        let without = parts.iter().find(|p| !p.cases.is_empty() && !has(p));
        return Err(ReportError::Mismatch(format!(
            "{} says where each of its cases stands in the run and {} does not: shards of one run come from one pitcrew, with every report property kept",
            with.name,
            without.map_or("another shard", |p| p.name.as_str())
        )));
    }
    let mut by_index: Vec<Option<(usize, std::vec::IntoIter<T>)>> =
        (0..count).map(|_| None).collect();
    let mut names: Vec<Option<String>> = vec![None; count];
    let mut positions_of: Vec<Vec<Option<u64>>> = Vec::with_capacity(parts.len());
    for (i, mut part) in parts.into_iter().enumerate() {
        positions_of.push(std::mem::take(&mut part.positions));
        let shard = part.shard.unwrap_or(Shard { index: 1, count });
        let slot = shard.index - 1;
        if let Some(other) = &names[slot] {
            return Err(ReportError::Mismatch(format!(
                "{other} and {} are both shard {shard}: merge each shard's report once",
                part.name
            )));
        }
        names[slot] = Some(part.name);
        by_index[slot] = Some((i, part.cases.into_iter()));
    }
    let missing: Vec<String> = (0..count)
        .filter(|&k| by_index[k].is_none())
        .map(|k| format!("{}/{count}", k + 1))
        .collect();
    if !missing.is_empty() && !partial {
        return Err(ReportError::Mismatch(format!(
            "shard {} {} missing: {} cases would be left out of the merged report; merge every shard's report, or pass --partial to merge what is there",
            missing.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            if missing.len() == 1 { "its" } else { "their" },
        )));
    }
    if positioned {
        // Each case where it stands in the whole plan.
        let mut all: Vec<(u64, usize, T)> = Vec::new();
        for (input, part) in by_index.into_iter().flatten() {
            let positions = positions_of[input].iter().map(|p| p.unwrap_or(u64::MAX));
            all.extend(positions.zip(part).map(|(p, case)| (p, input, case)));
        }
        all.sort_by_key(|(p, input, _)| (*p, *input));
        return Ok(all.into_iter().map(|(_, i, c)| (i, c)).collect());
    }
    let mut all = Vec::new();
    loop {
        let mut any = false;
        for (input, cases) in by_index.iter_mut().flatten() {
            if let Some(case) = cases.next() {
                all.push((*input, case));
                any = true;
            }
        }
        if !any {
            break;
        }
    }
    Ok(all)
}

/// Refuses a case (suite and name) that two inputs both hold.
fn unique<'a>(
    keys: impl Iterator<Item = (usize, (&'a str, &'a str))>,
    names: &[&str],
) -> Result<(), ReportError> {
    let mut seen: HashMap<(&str, &str), usize> = HashMap::new();
    for (input, key) in keys {
        if let Some(first) = seen.insert(key, input) {
            let (a, b) = (names[first], names[input]);
            let inputs = if a == b {
                format!("{a} twice")
            } else {
                format!("{a} and {b}")
            };
            return Err(ReportError::Mismatch(format!(
                "case `{} › {}` is in {inputs}: merged names must stay unique (merge each shard's report once, and reports of one run)",
                key.0, key.1
            )));
        }
    }
    Ok(())
}

/// Where a case of a JSON record goes in the merge, and under which names.
struct CaseKey {
    suite: Arc<str>,
    name: Arc<str>,
    file: Arc<str>,
}

/// Merges JSON records a case at a time: a first reading of each input finds its cases' names
/// (to order them, refuse duplicates and count them), and the merged record is written as the
/// inputs are read again side by side, each case masked as it passes.
fn merge_json(inputs: &[Input], partial: bool) -> Result<Merged, ReportError> {
    let mut files = Vec::new();
    let mut parts = Vec::new();
    for input in inputs {
        let mut cases = Vec::new();
        let mut positions = Vec::new();
        let file = RecordFile::open_with(&input.path, &mut |c| {
            positions.push(c.position.map(u64::from));
            cases.push(CaseKey {
                suite: c.suite.clone(),
                name: c.name.clone(),
                file: c.file.clone(),
            })
        })
        .map_err(|e| ReportError::Unreadable(format!("{}: {e}", input.name)))?;
        parts.push(Part {
            name: input.name.clone(),
            shard: file.head.shard.as_deref().and_then(|s| s.parse().ok()),
            cases,
            positions,
        });
        files.push(file);
    }
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    let cases = order(parts, partial)?;
    unique(
        cases.iter().map(|(i, c)| (*i, (&*c.suite, &*c.name))),
        &names,
    )?;
    let records: Vec<&RunRecord> = files.iter().map(|f| &f.head).collect();
    let all_suites: HashMap<(&str, &str), &SuiteRecord> = records
        .iter()
        .flat_map(|r| r.suites.iter())
        .map(|s| ((s.name.as_str(), s.file.as_str()), s))
        .collect();
    let mut seen = HashSet::new();
    let suites: Vec<SuiteRecord> = cases
        .iter()
        .map(|(_, c)| c)
        .filter(|c| seen.insert((&*c.suite, &*c.file)))
        .map(|c| {
            all_suites
                .get(&(&*c.suite, &*c.file))
                .map(|s| (*s).clone())
                .unwrap_or_else(|| SuiteRecord {
                    name: c.suite.to_string(),
                    file: c.file.to_string(),
                    tags: Vec::new(),
                })
        })
        .collect();
    let started_at = records
        .iter()
        .map(|r| r.started_at)
        .min()
        .unwrap_or_else(Utc::now);
    let ended_at = records
        .iter()
        .map(|r| r.started_at + chrono::Duration::milliseconds(r.summary.duration_ms as i64))
        .max()
        .unwrap_or(started_at);
    let stray: Vec<_> = records.iter().flat_map(|r| r.stray.clone()).collect();
    // Each shard's target by its name, not its ports and URLs (`sandbox (http://127.0.0.1:…)`
    // in every job, each with its own ephemeral ports), each name once.
    let mut targets: Vec<&str> = Vec::new();
    for r in &records {
        let name = r.target.split(" (").next().unwrap_or(&r.target);
        if !targets.contains(&name) {
            targets.push(name);
        }
    }
    // Every case of every input is in the merge: the counts are the inputs' together.
    let mut summary = Summary {
        stray: stray.len(),
        duration_ms: (ended_at - started_at).num_milliseconds().max(0) as u64,
        ..Summary::default()
    };
    for f in &files {
        summary.add(&f.summary);
    }
    let mut head = RunRecord {
        version: format::VERSION,
        run_id: records[0].run_id.clone(),
        target: targets.join(", "),
        shard: None,
        started_at,
        cancelled: records.iter().find_map(|r| r.cancelled),
        summary,
        suites,
        cases: Vec::new(),
        stray,
        merged_from: records.iter().map(|r| r.run_id.clone()).collect(),
    };
    record::Masking::new().head(&mut head);
    Ok(Merged {
        format: "JSON",
        cases: cases.len(),
        report: MergedReport::Json(Box::new(JsonMerge {
            head,
            files,
            from: cases.into_iter().map(|(i, _)| i).collect(),
        })),
    })
}

/// A JSON merge ready to be written: the merged record's head, the inputs, and for each case
/// of the merge in order, the input it comes from.
struct JsonMerge {
    head: RunRecord,
    files: Vec<RecordFile>,
    from: Vec<usize>,
}

impl JsonMerge {
    /// Writes the merged record: each input is read again in a thread of its own, a few cases
    /// ahead, and the cases are taken from them in the merge's order.
    fn write(&self, out: &mut dyn std::io::Write) -> std::io::Result<()> {
        std::thread::scope(|scope| {
            let mut readers = Vec::new();
            for file in &self.files {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<CaseRecord, String>>(64);
                scope.spawn(move || {
                    let masking = record::Masking::new();
                    let read = file.each_case(&mut |mut case| {
                        masking.case(&mut case);
                        tx.send(Ok(case))
                            .map_err(|_| "the merge stopped".to_string())
                    });
                    if let Err(e) = read {
                        let _ = tx.send(Err(e.to_string()));
                    }
                });
                readers.push(rx);
            }
            let mut cases = self.from.iter().map(|&i| {
                readers[i].recv().unwrap_or_else(|_| {
                    Err("a report changed while it was merged: merge it again".to_string())
                })
            });
            super::stream::write_json(&self.head, &mut cases, out)
        })
    }
}

/// A JUnit case with its suite.
struct JunitCase {
    suite: usize,
    case: TestCase,
}

fn merge_junit(inputs: &[Input], partial: bool) -> Result<Merged, ReportError> {
    let masker = crate::mask::current();
    let reports: Vec<Report> = inputs
        .iter()
        .map(|i| {
            let text = masker.mask(&i.text()?).into_owned();
            Report::deserialize_from_str(&text).map_err(|e| {
                ReportError::Unreadable(format!("{}: not JUnit XML pitcrew can read: {e}", i.name))
            })
        })
        .collect::<Result<_, ReportError>>()?;
    let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
    // Every input suite, once per input; cases refer to them by position.
    let title = reports
        .first()
        .and_then(|r| r.name.as_ref())
        .map_or("pitcrew".to_string(), |n| n.to_string());
    let mut whole = Span::default();
    for r in &reports {
        whole.add(r.timestamp, r.time);
    }
    let mut suites: Vec<TestSuite> = Vec::new();
    let mut parts = Vec::new();
    for (report, name) in reports.into_iter().zip(&names) {
        let mut shard = None;
        let mut cases = Vec::new();
        let mut positions = Vec::new();
        for mut suite in report.test_suites {
            let listed: Vec<Option<u64>> = (suite.properties.iter())
                .find(|p| p.name.as_str() == "positions")
                .map(|p| {
                    (p.value.as_str().split(',').filter(|t| !t.is_empty()))
                        .map(|t| t.trim().parse().ok())
                        .collect()
                })
                .unwrap_or_default();
            // A suite whose list does not fit its cases gives none: the order falls back.
            match listed.len() == suite.test_cases.len() {
                true => positions.extend(listed),
                false => positions.extend(suite.test_cases.iter().map(|_| None)),
            }
            shard = shard.or_else(|| {
                suite
                    .properties
                    .iter()
                    .find(|p| p.name.as_str() == "shard")
                    .and_then(|p| p.value.as_str().parse().ok())
            });
            let position = suites.len();
            let test_cases = std::mem::take(&mut suite.test_cases);
            suites.push(suite);
            cases.extend(test_cases.into_iter().map(|case| JunitCase {
                suite: position,
                case,
            }));
        }
        parts.push(Part {
            name: name.to_string(),
            shard,
            cases,
            positions,
        });
    }
    let cases = order(parts, partial)?;
    unique(
        cases
            .iter()
            .map(|(i, c)| (*i, (suites[c.suite].name.as_str(), c.case.name.as_str()))),
        &names,
    )?;
    let run_ids: Vec<String> = {
        let mut ids: Vec<String> = Vec::new();
        for suite in &suites {
            for p in &suite.properties {
                if p.name.as_str() == "run_id" && !ids.iter().any(|i| i == p.value.as_str()) {
                    ids.push(p.value.as_str().to_string());
                }
            }
        }
        ids
    };
    // Suites by name, in order of their first case.
    let mut merged: Vec<TestSuite> = Vec::new();
    let mut spans: Vec<Span> = Vec::new();
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (_, JunitCase { suite, case }) in cases {
        let from = &suites[suite];
        let at = *by_name.entry(from.name.to_string()).or_insert_with(|| {
            let mut fresh = TestSuite::new(from.name.as_str());
            fresh.extra = from.extra.clone();
            for p in &from.properties {
                match p.name.as_str() {
                    "shard" | "positions" => {}
                    "run_id" => {
                        fresh.add_property(Property::new("run_id", run_ids.join(",")));
                    }
                    _ => {
                        fresh.add_property(p.clone());
                    }
                }
            }
            merged.push(fresh);
            spans.push(Span::default());
            merged.len() - 1
        });
        spans[at].add(from.timestamp, from.time);
        merged[at].add_test_case(case);
    }
    let mut report = Report::new(title);
    if let Some((start, took)) = whole.get() {
        report.set_timestamp(start);
        report.set_time(took);
    }
    let mut count = 0;
    for (mut suite, span) in merged.into_iter().zip(spans) {
        if let Some((start, took)) = span.get() {
            suite.set_timestamp(start);
            suite.set_time(took);
        }
        count += suite.test_cases.len();
        report.add_test_suite(suite);
    }
    Ok(Merged {
        report: MergedReport::Junit(Box::new(report)),
        format: "JUnit",
        cases: count,
    })
}

/// The wall-time span of several (timestamp, time) pairs: from the earliest start to the
/// latest end.
#[derive(Default)]
struct Span {
    start: Option<DateTime<FixedOffset>>,
    end: Option<DateTime<FixedOffset>>,
}

impl Span {
    fn add(&mut self, start: Option<DateTime<FixedOffset>>, time: Option<Duration>) {
        let Some(start) = start else { return };
        let end = start + chrono::Duration::from_std(time.unwrap_or_default()).unwrap_or_default();
        self.start = Some(self.start.map_or(start, |s| s.min(start)));
        self.end = Some(self.end.map_or(end, |e| e.max(end)));
    }

    /// The start and the wall time, when any part had a timestamp.
    fn get(&self) -> Option<(DateTime<FixedOffset>, Duration)> {
        let (start, end) = (self.start?, self.end?);
        Some((start, (end - start).to_std().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Shards that say where each case stands in the whole plan (groups dealt whole, in
        /// any sizes) merge back into plan order, whatever order they are given in.
        #[test]
        fn positioned_shards_merge_back_into_plan_order(
            shard_of in proptest::collection::vec(1usize..5, 0..60),
            seed in any::<u64>(),
        ) {
            let n = 4;
            let mut parts: Vec<Part<usize>> = (1..=n)
                .map(|k| {
                    let mine: Vec<usize> = (0..shard_of.len()).filter(|&i| shard_of[i] == k).collect();
                    Part {
                        name: format!("shard-{k}"),
                        shard: Some(Shard { index: k, count: n }),
                        positions: mine.iter().map(|&i| Some(i as u64)).collect(),
                        cases: mine,
                    }
                })
                .collect();
            parts.rotate_left((seed as usize) % n);
            let merged: Vec<usize> = order(parts, false).unwrap().into_iter().map(|(_, c)| c).collect();
            prop_assert_eq!(merged, (0..shard_of.len()).collect::<Vec<_>>());
        }

        /// Dealing M cases round robin to N shards and merging the shards back gives the M
        /// cases in their order, whatever order the shards are given in.
        #[test]
        fn shards_deal_back_into_the_unsharded_order(m in 0usize..60, n in 1usize..9, seed in any::<u64>()) {
            let mut parts: Vec<Part<usize>> = (1..=n)
                .map(|k| Part {
                    name: format!("shard-{k}"),
                    shard: Some(Shard { index: k, count: n }),
                    cases: (0..m).filter(|i| i % n + 1 == k).collect(),
                    positions: Vec::new(),
                })
                .collect();
            let len = parts.len();
            parts.rotate_left((seed as usize) % len);
            let merged: Vec<usize> = order(parts, false).unwrap().into_iter().map(|(_, c)| c).collect();
            prop_assert_eq!(merged, (0..m).collect::<Vec<_>>());
        }
    }

    #[test]
    fn shards_with_and_without_positions_are_not_merged_in_a_guessed_order() {
        let part = |k: usize, positioned: bool| Part {
            name: format!("s{k}.xml"),
            shard: Some(Shard { index: k, count: 2 }),
            cases: vec![k],
            positions: if positioned {
                vec![Some(k as u64)]
            } else {
                Vec::new()
            },
        };
        let e = order(vec![part(1, true), part(2, false)], false).unwrap_err();
        assert!(
            e.to_string()
                .contains("s1.xml says where each of its cases stands"),
            "{e}"
        );
    }

    #[test]
    fn a_missing_shard_is_named_unless_partial() {
        let part = |k| Part {
            name: format!("s{k}.json"),
            shard: Some(Shard { index: k, count: 3 }),
            cases: vec![k],
            positions: Vec::new(),
        };
        let e = order(vec![part(1), part(3)], false).unwrap_err();
        assert!(e.to_string().contains("shard 2/3 is missing"), "{e}");
        let got: Vec<usize> = order(vec![part(3), part(1)], true)
            .unwrap()
            .into_iter()
            .map(|(_, c)| c)
            .collect();
        assert_eq!(got, [1, 3]);
        let e = order(vec![part(1), part(1)], false).unwrap_err();
        assert!(e.to_string().contains("both shard 1/3"), "{e}");
    }
}
