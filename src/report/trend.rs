//! `pitcrew report trend RUN.json…`: each case across saved runs, oldest first as given, by
//! stable case name (suite and name, as `report diff` keys them): how often it was unstable
//! (flaky, failed or errored), whether it got slower or flakier, and what always fails.
//! Rendered for a terminal or as Markdown for a CI job summary; a report, never a gate.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::format::{CaseRecord, RunRecord, Summary, Verdict};
use super::junit::headline;

mod render;

pub use render::{SHOWN, markdown, text};

/// A case got slower when its later median is at least this many times its earlier one…
pub const SLOWER_RATIO: f64 = 1.5;
/// …and at least this much longer (a 2 ms case taking 4 ms is noise). Both are said in
/// `report trend --help`.
pub const SLOWER_BY_MS: u64 = 100;

/// A case's outcome in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Not in that run.
    Absent,
    Passed,
    /// Passed on a later attempt.
    Flaky,
    Failed,
    Errored,
    Skipped,
}

impl Outcome {
    fn of(case: &CaseRecord) -> Outcome {
        match (case.status, case.flaky) {
            (Verdict::Passed, true) => Outcome::Flaky,
            (Verdict::Passed, false) => Outcome::Passed,
            (Verdict::Failed, _) => Outcome::Failed,
            (Verdict::Errored, _) => Outcome::Errored,
            (Verdict::Skipped, _) => Outcome::Skipped,
        }
    }

    /// It ran and was judged (a skipped case did not run: its runs are not counted).
    pub fn ran(self) -> bool {
        !matches!(self, Outcome::Absent | Outcome::Skipped)
    }

    /// Flaky, failed or errored: anything but a pass at the first attempt.
    pub fn unstable(self) -> bool {
        matches!(self, Outcome::Flaky | Outcome::Failed | Outcome::Errored)
    }

    /// Failed or errored.
    pub fn failing(self) -> bool {
        matches!(self, Outcome::Failed | Outcome::Errored)
    }

    /// Its mark in a case's row of runs (pytest's, with `~` for flaky).
    fn mark(self) -> char {
        match self {
            Outcome::Absent => '-',
            Outcome::Passed => '.',
            Outcome::Flaky => '~',
            Outcome::Failed => 'F',
            Outcome::Errored => 'E',
            Outcome::Skipped => 's',
        }
    }
}

/// What the marks in a row of runs mean.
pub const LEGEND: &str =
    ". passed  ~ flaky (passed on a retry)  F failed  E errored  s skipped  - not in that run";

/// One saved run, as the trend sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunHead {
    /// What the user called it (its file).
    pub name: String,
    pub started_at: DateTime<Utc>,
    /// Counted from its cases.
    pub summary: Summary,
}

/// `unstable` runs of the `ran` runs in which a case ran.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rate {
    pub unstable: usize,
    pub ran: usize,
}

impl Rate {
    /// In [0, 1]; 0 when it never ran.
    pub fn value(self) -> f64 {
        if self.ran == 0 {
            0.0
        } else {
            self.unstable as f64 / self.ran as f64
        }
    }

    /// True when `self` is a higher rate than `other` (exactly, not in floating point).
    fn above(self, other: Rate) -> bool {
        self.unstable * other.ran > other.unstable * self.ran
    }
}

/// One case across the runs.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseTrend {
    pub suite: Arc<str>,
    pub name: Arc<str>,
    /// Where it was last seen.
    pub file: Arc<str>,
    pub line: u64,
    /// Its outcome in each run, oldest first.
    pub outcomes: Vec<Outcome>,
    /// Its time in each run (0 where it did not run).
    pub durations_ms: Vec<u64>,
    /// Why it was last unstable, and in which run (counted from 0).
    pub why: Option<(usize, String)>,
}

impl CaseTrend {
    /// How often it was unstable in the runs of `runs` in which it ran.
    pub fn rate(&self, runs: Range<usize>) -> Rate {
        let ran = || self.outcomes[runs.clone()].iter().filter(|o| o.ran());
        Rate {
            unstable: ran().filter(|o| o.unstable()).count(),
            ran: ran().count(),
        }
    }

    /// How many of its runs had `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.outcomes.iter().filter(|o| **o == outcome).count()
    }

    /// The median time of the runs of `runs` in which it passed (a failure's time, often a
    /// timeout, says nothing of speed).
    pub fn median_ms(&self, runs: Range<usize>) -> Option<u64> {
        let mut times: Vec<u64> = runs
            .filter(|&r| matches!(self.outcomes[r], Outcome::Passed | Outcome::Flaky))
            .map(|r| self.durations_ms[r])
            .collect();
        times.sort_unstable();
        let mid = times.len() / 2;
        match times.len() {
            0 => None,
            n if n % 2 == 1 => Some(times[mid]),
            _ => Some(times[mid - 1].midpoint(times[mid])),
        }
    }

    /// Failed or errored every time it ran (at least once).
    pub fn always_failing(&self) -> bool {
        let rate = self.rate(0..self.outcomes.len());
        rate.ran > 0
            && self
                .outcomes
                .iter()
                .filter(|o| o.ran())
                .all(|o| o.failing())
    }

    /// Not in the first run.
    pub fn is_new(&self) -> bool {
        self.outcomes.first() == Some(&Outcome::Absent)
    }

    /// Not in the last run.
    pub fn is_gone(&self) -> bool {
        self.outcomes.last() == Some(&Outcome::Absent)
    }

    /// Its row of runs: `..~F-`.
    pub fn marks(&self) -> String {
        self.outcomes.iter().map(|o| o.mark()).collect()
    }
}

/// A case whose later runs took longer than its earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slower {
    /// Its index in [`Trend::cases`].
    pub case: usize,
    pub before_ms: u64,
    pub after_ms: u64,
}

impl Slower {
    /// How many times longer; infinite from 0 ms.
    pub fn ratio(&self) -> f64 {
        self.after_ms as f64 / self.before_ms as f64
    }
}

/// A case unstable more often in the later runs than in the earlier ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flakier {
    pub case: usize,
    pub before: Rate,
    pub after: Rate,
}

/// Every case across the runs, and what stands out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Trend {
    /// Oldest first, as given.
    pub runs: Vec<RunHead>,
    /// Every case once, in the order first seen.
    pub cases: Vec<CaseTrend>,
    /// Later median ≥ [`SLOWER_RATIO`] × earlier and ≥ earlier + [`SLOWER_BY_MS`]; worst first.
    pub slower: Vec<Slower>,
    /// Unstable more often in the later half of the runs than in the earlier half.
    pub flakier: Vec<Flakier>,
    /// Failed or errored in every run it ran in; the longest failing first (indices).
    pub always_failing: Vec<usize>,
    /// Unstable in some run, and not always failing; the highest rate first (indices).
    pub flaky: Vec<usize>,
}

/// The earlier and the later half of `n` runs (with an odd number, the middle run is in
/// neither: it is compared with nothing).
pub fn halves(n: usize) -> (Range<usize>, Range<usize>) {
    let half = n / 2;
    (0..half, n - half..n)
}

/// Builds a [`Trend`] a run at a time and a case at a time, so that saved runs of any size
/// are read without being held whole.
#[derive(Debug, Default)]
pub struct TrendBuilder {
    runs: Vec<RunHead>,
    cases: Vec<CaseTrend>,
    index: HashMap<(Arc<str>, Arc<str>), usize>,
    /// Suite names and files, held once each (a case read from a file holds its own copies).
    shared: HashSet<Arc<str>>,
}

impl TrendBuilder {
    /// Begins the next run (oldest first); its cases follow.
    pub fn run(&mut self, head: RunHead) {
        self.runs.push(head);
    }

    /// A saved run (`name`: how the trend names it), its cases read a case at a time.
    pub fn saved_run(
        &mut self,
        name: String,
        saved: &super::stream::RecordFile,
    ) -> Result<(), super::ReportError> {
        self.run(RunHead {
            name,
            started_at: saved.head.started_at,
            summary: saved.summary,
        });
        saved.each_brief_case(&mut |case| {
            self.case(&case);
            Ok(())
        })
    }

    /// One case of the run last begun.
    pub fn case(&mut self, case: &CaseRecord) {
        let run = self.runs.len().saturating_sub(1);
        let (suite, file) = (self.share(&case.suite), self.share(&case.file));
        let key = (suite.clone(), case.name.clone());
        let at = *self.index.entry(key).or_insert_with(|| {
            self.cases.push(CaseTrend {
                suite,
                name: case.name.clone(),
                file: file.clone(),
                line: case.line,
                outcomes: Vec::new(),
                durations_ms: Vec::new(),
                why: None,
            });
            self.cases.len() - 1
        });
        let trend = &mut self.cases[at];
        trend.outcomes.resize(run + 1, Outcome::Absent);
        trend.durations_ms.resize(run + 1, 0);
        let outcome = Outcome::of(case);
        trend.outcomes[run] = outcome;
        trend.durations_ms[run] = if outcome.ran() { case.duration_ms } else { 0 };
        (trend.file, trend.line) = (file, case.line);
        let why = match outcome {
            Outcome::Failed | Outcome::Errored => headline(&case.failures, case.error.as_deref()),
            Outcome::Flaky => case.earlier_attempts.first().map_or_else(String::new, |a| {
                let why = headline(&a.failures, a.error.as_deref());
                format!("attempt {} failed: {why}", a.attempt)
            }),
            _ => String::new(),
        };
        if !why.is_empty() {
            trend.why = Some((run, why));
        }
    }

    /// `text`, as held already when it is.
    fn share(&mut self, text: &Arc<str>) -> Arc<str> {
        if let Some(held) = self.shared.get(text) {
            return held.clone();
        }
        self.shared.insert(text.clone());
        text.clone()
    }

    /// The trend of the runs given.
    pub fn finish(mut self) -> Trend {
        let n = self.runs.len();
        for case in &mut self.cases {
            case.outcomes.resize(n, Outcome::Absent);
            case.durations_ms.resize(n, 0);
        }
        let mut t = Trend {
            runs: self.runs,
            cases: self.cases,
            ..Trend::default()
        };
        t.judge();
        t.rank();
        t
    }
}

impl Trend {
    /// Puts each case in the sections it belongs to.
    fn judge(&mut self) {
        let (early, late) = halves(self.runs.len());
        for (i, case) in self.cases.iter().enumerate() {
            if case.always_failing() {
                self.always_failing.push(i);
            } else if case.outcomes.iter().any(|o| o.unstable()) {
                self.flaky.push(i);
            }
            let (before, after) = (case.rate(early.clone()), case.rate(late.clone()));
            if before.ran > 0 && after.ran > 0 && after.above(before) {
                self.flakier.push(Flakier {
                    case: i,
                    before,
                    after,
                });
            }
            if let (Some(before_ms), Some(after_ms)) =
                (case.median_ms(early.clone()), case.median_ms(late.clone()))
                && after_ms >= before_ms.saturating_add(SLOWER_BY_MS)
                && after_ms as f64 >= before_ms as f64 * SLOWER_RATIO
            {
                self.slower.push(Slower {
                    case: i,
                    before_ms,
                    after_ms,
                });
            }
        }
    }

    /// Orders each section, worst first; equals stay in the order first seen (stable sorts).
    fn rank(&mut self) {
        let (cases, n) = (&self.cases, self.runs.len());
        let rate = |i: usize| cases[i].rate(0..n);
        self.slower.sort_by(|a, b| {
            (b.ratio().total_cmp(&a.ratio()))
                .then((b.after_ms - b.before_ms).cmp(&(a.after_ms - a.before_ms)))
        });
        self.flakier.sort_by(|a, b| {
            let rise = |f: &Flakier| f.after.value() - f.before.value();
            rise(b)
                .total_cmp(&rise(a))
                .then(b.after.value().total_cmp(&a.after.value()))
        });
        self.always_failing
            .sort_by_key(|&i| std::cmp::Reverse(rate(i).ran));
        self.flaky.sort_by(|&a, &b| {
            (rate(b).value().total_cmp(&rate(a).value()))
                .then(rate(b).unstable.cmp(&rate(a).unstable))
        });
    }
}

/// The trend of `runs`, oldest first, each with the name to call it by.
pub fn trend(runs: &[(&str, &RunRecord)]) -> Trend {
    let mut builder = TrendBuilder::default();
    for (name, record) in runs {
        builder.run(RunHead {
            name: name.to_string(),
            started_at: record.started_at,
            summary: Summary::of(&record.cases, 0, record.summary.duration_ms),
        });
        record.cases.iter().for_each(|c| builder.case(c));
    }
    builder.finish()
}

#[cfg(test)]
mod tests;
