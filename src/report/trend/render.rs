//! `report trend`'s two renderings: for a terminal, and Markdown for a CI job summary. Each
//! section shows at most [`SHOWN`] cases and counts the rest, so that a huge suite's summary
//! stays readable (and under a job summary's size limit).

use std::fmt::Write;

use super::{CaseTrend, Flakier, LEGEND, Outcome, Rate, RunHead, Slower, Trend};
use crate::report::diff::{cell, code_cell};

/// Cases shown per section; the rest are counted (`… and 12 more`).
pub const SHOWN: usize = 20;

impl Trend {
    /// `1 slower, 2 flakier, 1 always failing, 3 flaky`, or `nothing slower, flakier or failing`.
    pub fn headline(&self) -> String {
        let parts: Vec<String> = [
            (self.slower.len(), "slower"),
            (self.flakier.len(), "flakier"),
            (self.always_failing.len(), "always failing"),
            (self.flaky.len(), "flaky"),
        ]
        .into_iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        if parts.is_empty() {
            "nothing slower, flakier or failing".into()
        } else {
            parts.join(", ")
        }
    }

    /// `5 runs, 120 cases`.
    fn counts(&self) -> String {
        let plural = |n: usize, one: &str| format!("{n} {one}{}", if n == 1 { "" } else { "s" });
        format!(
            "{}, {}",
            plural(self.runs.len(), "run"),
            plural(self.cases.len(), "case")
        )
    }

    /// `from a.json (2026-01-01 03:00) to d.json (2026-01-04 03:00 UTC)`, each name given to
    /// `name` to be shown.
    fn span(&self, name: impl Fn(&str) -> String) -> String {
        let at = |r: &RunHead| r.started_at.format("%Y-%m-%d %H:%M").to_string();
        match (self.runs.first(), self.runs.last()) {
            (Some(first), Some(last)) => format!(
                "from {} ({}) to {} ({} UTC)",
                name(&first.name),
                at(first),
                name(&last.name),
                at(last)
            ),
            _ => String::new(),
        }
    }

    /// `1 new, 2 gone`, or nothing (a case in neither the first run nor the last is new).
    fn comings_and_goings(&self) -> Option<String> {
        let new = self.cases.iter().filter(|c| c.is_new()).count();
        let gone = self
            .cases
            .iter()
            .filter(|c| c.is_gone() && !c.is_new())
            .count();
        let parts: Vec<String> = [(new, "new"), (gone, "gone")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| format!("{n} {what}"))
            .collect();
        (!parts.is_empty()).then(|| parts.join(", "))
    }

    /// Passed cases (flaky ones too) of each run's cases: `83%`.
    fn pass_rates(&self) -> Vec<String> {
        self.runs
            .iter()
            .map(|r| share(r.summary.passed, r.summary.total))
            .collect()
    }

    /// A run that started before the one given before it: the runs are read as given.
    fn out_of_order(&self, name: impl Fn(&str) -> String) -> Option<String> {
        let i = (1..self.runs.len())
            .find(|&i| self.runs[i].started_at < self.runs[i - 1].started_at)?;
        Some(format!(
            "run {} ({}) started before run {} ({}); runs are compared in the order given, oldest first",
            i + 1,
            name(&self.runs[i].name),
            i,
            name(&self.runs[i - 1].name)
        ))
    }

    /// Each section's rows, in the order shown: the four that say something is wrong, then
    /// the cases that came and went.
    fn sections(&self) -> [(&'static str, Vec<Row>); 6] {
        let n = self.runs.len();
        let rate = |i: usize| self.cases[i].rate(0..n);
        let seen = |o: &Outcome| *o != Outcome::Absent;
        let first = |c: &CaseTrend| c.outcomes.iter().position(seen).unwrap_or(0);
        let last = |c: &CaseTrend| c.outcomes.iter().rposition(seen).unwrap_or(0);
        let cases = self.cases.iter().enumerate();
        [
            (
                "Got slower",
                self.slower.iter().map(|s| Row::Slower(*s)).collect(),
            ),
            (
                "Got flakier",
                self.flakier.iter().map(|f| Row::Flakier(*f)).collect(),
            ),
            (
                "Always failing",
                self.always_failing
                    .iter()
                    .map(|&i| Row::Failing(i, rate(i)))
                    .collect(),
            ),
            (
                "Flaky",
                self.flaky.iter().map(|&i| Row::Flaky(i, rate(i))).collect(),
            ),
            (
                "New",
                cases
                    .clone()
                    .filter(|(_, c)| c.is_new())
                    .map(|(i, c)| Row::New(i, first(c)))
                    .collect(),
            ),
            (
                "Gone",
                cases
                    .filter(|(_, c)| c.is_gone() && !c.is_new())
                    .map(|(i, c)| Row::Gone(i, last(c)))
                    .collect(),
            ),
        ]
    }
}

/// The sections that say something is wrong (the others only list).
const WRONG: usize = 4;

/// One case's line in a section.
enum Row {
    Slower(Slower),
    Flakier(Flakier),
    Failing(usize, Rate),
    Flaky(usize, Rate),
    /// First seen in the given run.
    New(usize, usize),
    /// Last seen in the given run.
    Gone(usize, usize),
}

impl Row {
    fn case(&self) -> usize {
        match self {
            Row::Slower(s) => s.case,
            Row::Flakier(f) => f.case,
            Row::Failing(i, _) | Row::Flaky(i, _) | Row::New(i, _) | Row::Gone(i, _) => *i,
        }
    }

    /// ` (new)` or ` (gone)` after a case's name in a section that does not say so already.
    fn presence(&self, case: &CaseTrend) -> &'static str {
        match self {
            Row::New(..) | Row::Gone(..) => "",
            _ if case.is_new() => " (new)",
            _ if case.is_gone() => " (gone)",
            _ => "",
        }
    }
}

/// `850 ms`, `1.25 s`.
fn ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else {
        format!("{:.2} s", ms as f64 / 1000.0)
    }
}

/// `×3.8`, or nothing from 0 ms.
fn times(s: &Slower) -> String {
    if s.before_ms == 0 {
        String::new()
    } else {
        format!("×{:.1}", s.ratio())
    }
}

/// `part` of `whole` as a percentage, rounded, but never 0% or 100% when it is not so.
pub(super) fn share(part: usize, whole: usize) -> String {
    if whole == 0 {
        return "–".into();
    }
    let mut p = (part * 200 + whole) / (2 * whole);
    if part < whole {
        p = p.min(99);
    }
    if part > 0 {
        p = p.max(1);
    }
    format!("{p}%")
}

fn percent(rate: Rate) -> String {
    share(rate.unstable, rate.ran)
}

/// For a terminal.
pub fn text(t: &Trend) -> String {
    let same = |name: &str| name.to_string();
    let mut out = format!("{}: {}\n{}", t.counts(), t.headline(), t.span(same));
    if let Some(c) = t.comings_and_goings() {
        let _ = write!(out, "; cases {c}");
    }
    let _ = writeln!(out, "\npass rate by run: {}", t.pass_rates().join(" "));
    if let Some(note) = t.out_of_order(same) {
        let _ = writeln!(out, "note: {note}");
    }
    let sections = t.sections();
    if sections.iter().all(|(_, rows)| rows.is_empty()) {
        return out;
    }
    let _ = writeln!(out, "marks, oldest run first: {LEGEND}");
    for (title, rows) in sections {
        if rows.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}):", rows.len());
        for row in rows.iter().take(SHOWN) {
            let case = &t.cases[row.case()];
            let what = what(row, case);
            let _ = writeln!(
                out,
                "  {}  {} › {}{}: {}  at {}:{}",
                case.marks(),
                case.suite,
                case.name,
                row.presence(case),
                what,
                case.file,
                case.line
            );
            if let Some(why) = why(row, case) {
                let _ = writeln!(out, "      {why}");
            }
        }
        if rows.len() > SHOWN {
            let _ = writeln!(out, "  … and {} more", rows.len() - SHOWN);
        }
    }
    out
}

/// What a row says of its case, in words.
fn what(row: &Row, case: &CaseTrend) -> String {
    match row {
        Row::Slower(s) => match times(s).as_str() {
            "" => format!("{} → {}", ms(s.before_ms), ms(s.after_ms)),
            times => format!("{} → {} ({times})", ms(s.before_ms), ms(s.after_ms)),
        },
        Row::Flakier(f) => format!(
            "unstable in {} of {} earlier runs, {} of {} later",
            f.before.unstable, f.before.ran, f.after.unstable, f.after.ran
        ),
        Row::Failing(_, rate) => format!("failing in {0} of {0} runs", rate.ran),
        Row::Flaky(_, rate) => format!(
            "unstable in {} of {} runs ({}: {} flaky, {} failed, {} errored)",
            rate.unstable,
            rate.ran,
            percent(*rate),
            case.count(Outcome::Flaky),
            case.count(Outcome::Failed),
            case.count(Outcome::Errored)
        ),
        Row::New(_, run) => format!("first in run {}", run + 1),
        Row::Gone(_, run) => format!("last in run {}", run + 1),
    }
}

/// Why a failing or flaky case was last unstable: `run 4: attempt 1 failed: …` (the last
/// failure of a case that always fails needs no run).
fn why(row: &Row, case: &CaseTrend) -> Option<String> {
    let (run, why) = case.why.as_ref()?;
    match row {
        Row::Failing(..) => Some(why.clone()),
        Row::Flaky(..) => Some(format!("run {}: {why}", run + 1)),
        _ => None,
    }
}

/// As Markdown, for a CI job summary (`$GITHUB_STEP_SUMMARY`, a merge request note).
pub fn markdown(t: &Trend) -> String {
    let code = |name: &str| format!("`{}`", code_cell(name));
    let sections = t.sections();
    let quiet = sections[..WRONG].iter().all(|(_, rows)| rows.is_empty());
    let mark = if quiet { "✅" } else { "⚠️" };
    let mut out = format!(
        "### {mark} pitcrew trend: {}: {}\n\nRuns {}",
        t.counts(),
        t.headline(),
        t.span(code)
    );
    if let Some(c) = t.comings_and_goings() {
        let _ = write!(out, "; cases {c}");
    }
    let _ = writeln!(
        out,
        ".\n\nPass rate by run, oldest first: {}",
        t.pass_rates().join(" · ")
    );
    if let Some(note) = t.out_of_order(code) {
        let _ = writeln!(out, "\n> **Note:** {note}.");
    }
    if sections.iter().any(|(_, rows)| !rows.is_empty()) {
        let _ = writeln!(out, "\nMarks, oldest run first: `{LEGEND}`");
    }
    for (title, rows) in sections {
        let Some(first) = rows.first() else {
            continue;
        };
        let _ = writeln!(
            out,
            "\n#### {title} ({})\n\n{}",
            rows.len(),
            table_head(first)
        );
        for row in rows.iter().take(SHOWN) {
            let case = &t.cases[row.case()];
            let cells = table_cells(row, case);
            let _ = writeln!(
                out,
                "| {} › {}{} | `{}` | {} |",
                cell(&case.suite),
                cell(&case.name),
                row.presence(case),
                case.marks(),
                cells.join(" | ")
            );
        }
        if rows.len() > SHOWN {
            let _ = writeln!(out, "\n… and {} more.", rows.len() - SHOWN);
        }
    }
    out
}

/// A section's table head: its columns (numbers aligned right) and the rule under them.
fn table_head(row: &Row) -> String {
    let columns: &[(&str, bool)] = match row {
        Row::Slower(_) => &[("before", true), ("after", true), ("change", true)],
        Row::Flakier(_) => &[("unstable before", true), ("unstable after", true)],
        Row::Failing(..) => &[("failed", true)],
        Row::Flaky(..) => &[
            ("unstable", true),
            ("flaky", true),
            ("failed", true),
            ("errored", true),
        ],
        Row::New(..) => &[("first seen", false)],
        Row::Gone(..) => &[("last seen", false)],
    };
    let mut names = vec!["case", "runs"];
    names.extend(columns.iter().map(|(name, _)| *name));
    names.push("where");
    let mut rule = vec!["---", "---"];
    rule.extend(columns.iter().map(|(_, n)| if *n { "---:" } else { "---" }));
    rule.push("---");
    if with_why(row) {
        names.push("why");
        rule.push("---");
    }
    format!("| {} |\n|{}|", names.join(" | "), rule.join("|"))
}

/// A row's cells after the case's name and marks, escaped.
fn table_cells(row: &Row, case: &CaseTrend) -> Vec<String> {
    let mut cells: Vec<String> = match row {
        Row::Slower(s) => vec![ms(s.before_ms), ms(s.after_ms), times(s)],
        Row::Flakier(f) => vec![
            format!("{} of {}", f.before.unstable, f.before.ran),
            format!("{} of {}", f.after.unstable, f.after.ran),
        ],
        Row::Failing(_, rate) => vec![format!("{0} of {0}", rate.ran)],
        Row::Flaky(_, rate) => vec![
            format!("{} of {} ({})", rate.unstable, rate.ran, percent(*rate)),
            case.count(Outcome::Flaky).to_string(),
            case.count(Outcome::Failed).to_string(),
            case.count(Outcome::Errored).to_string(),
        ],
        Row::New(_, run) | Row::Gone(_, run) => vec![format!("run {}", run + 1)],
    };
    cells.push(format!("`{}:{}`", code_cell(&case.file), case.line));
    if with_why(row) {
        cells.push(why(row, case).map_or_else(String::new, |w| cell(&w)));
    }
    cells
}

/// The sections whose rows say why.
fn with_why(row: &Row) -> bool {
    matches!(row, Row::Failing(..) | Row::Flaky(..))
}
