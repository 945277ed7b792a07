//! `pitcrew report diff OLD.json NEW.json`: what changed between two runs, case by case, by
//! stable case name (suite and name): new failures, fixed, newly flaky, still failing, added
//! and removed. Rendered for a terminal or as Markdown for a CI job summary.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::Arc;

use super::format::Verdict;
use super::format::{CaseRecord, RunRecord, Summary};
use super::junit::headline;

/// One case that changed (or did not get better).
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub suite: String,
    pub name: String,
    pub file: String,
    pub line: u64,
    pub old: Option<RunVerdict>,
    pub new: Option<RunVerdict>,
    /// Why it fails now (or failed, for a fixed case; or its first attempt, for a flaky one).
    pub why: String,
}

/// A case's verdict in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunVerdict {
    pub status: Verdict,
    pub flaky: bool,
}

impl RunVerdict {
    fn of(case: &CaseRecord) -> RunVerdict {
        RunVerdict {
            status: case.status,
            flaky: case.flaky,
        }
    }
}

/// What changed between two runs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diff {
    pub old: Option<Summary>,
    pub new: Option<Summary>,
    /// Failing now, passing (or skipped) before; or added and failing.
    pub new_failures: Vec<Change>,
    /// Failing before, passing now.
    pub fixed: Vec<Change>,
    /// Passed on a retry now, passed at once before.
    pub newly_flaky: Vec<Change>,
    pub still_failing: Vec<Change>,
    /// In the new run only (a failing one is also a new failure).
    pub added: Vec<Change>,
    /// In the old run only.
    pub removed: Vec<Change>,
}

impl Diff {
    /// True when something fails now that did not before: the diff's exit code is 1.
    pub fn regressed(&self) -> bool {
        !self.new_failures.is_empty()
    }

    /// `1 new failure, 1 fixed, …`, or `no change in verdicts`.
    pub fn headline(&self) -> String {
        let parts: Vec<String> = [
            (self.new_failures.len(), "new failure", "new failures"),
            (self.fixed.len(), "fixed", "fixed"),
            (self.newly_flaky.len(), "newly flaky", "newly flaky"),
            (self.still_failing.len(), "still failing", "still failing"),
            (self.added.len(), "added", "added"),
            (self.removed.len(), "removed", "removed"),
        ]
        .into_iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect();
        if parts.is_empty() {
            "no change in verdicts".into()
        } else {
            parts.join(", ")
        }
    }
}

fn change(old: Option<&CaseRecord>, new: Option<&CaseRecord>) -> Change {
    let case = new.or(old).expect("one side");
    let failing = [new, old]
        .into_iter()
        .flatten()
        .find(|c| c.status.is_failure() || c.flaky);
    let why = failing.map_or_else(String::new, |c| {
        if c.status.is_failure() && new.is_some_and(|n| !n.status.is_failure()) {
            format!("was: {}", headline(&c.failures, c.error.as_deref()))
        } else if c.status.is_failure() {
            headline(&c.failures, c.error.as_deref())
        } else {
            c.earlier_attempts.first().map_or_else(String::new, |a| {
                format!(
                    "attempt {} failed: {}",
                    a.attempt,
                    headline(&a.failures, a.error.as_deref())
                )
            })
        }
    });
    Change {
        suite: case.suite.to_string(),
        name: case.name.to_string(),
        file: case.file.to_string(),
        line: case.line,
        old: old.map(RunVerdict::of),
        new: new.map(RunVerdict::of),
        why,
    }
}

/// Compares two records.
pub fn diff(old: &RunRecord, new: &RunRecord) -> Diff {
    let key = |c: &CaseRecord| (c.suite.clone(), c.name.clone());
    let before: HashMap<(Arc<str>, Arc<str>), &CaseRecord> =
        old.cases.iter().map(|c| (key(c), c)).collect();
    let after: HashMap<(Arc<str>, Arc<str>), &CaseRecord> =
        new.cases.iter().map(|c| (key(c), c)).collect();
    let mut d = Diff {
        old: Some(old.summary),
        new: Some(new.summary),
        ..Diff::default()
    };
    for case in &new.cases {
        let now = case.status;
        match before.get(&key(case)) {
            None => {
                let c = change(None, Some(case));
                if now.is_failure() {
                    d.new_failures.push(c.clone());
                }
                d.added.push(c);
            }
            Some(was) => {
                let c = change(Some(was), Some(case));
                match (was.status.is_failure(), now.is_failure()) {
                    (false, true) => d.new_failures.push(c),
                    (true, true) => d.still_failing.push(c),
                    (true, false) if now == Verdict::Passed => d.fixed.push(c),
                    (false, false) if case.flaky && !was.flaky => d.newly_flaky.push(c),
                    _ => {}
                }
            }
        }
    }
    for case in &old.cases {
        if !after.contains_key(&key(case)) {
            d.removed.push(change(Some(case), None));
        }
    }
    d
}

fn word(verdict: Option<RunVerdict>) -> &'static str {
    match verdict.map(|v| (v.status, v.flaky)) {
        None => "–",
        Some((Verdict::Passed, true)) => "flaky",
        Some((Verdict::Passed, false)) => "passed",
        Some((Verdict::Failed, _)) => "failed",
        Some((Verdict::Errored, _)) => "errored",
        Some((Verdict::Skipped, _)) => "skipped",
    }
}

/// The sections in the order they are shown.
fn sections(d: &Diff) -> [(&'static str, &[Change]); 6] {
    [
        ("New failures", &d.new_failures),
        ("Fixed", &d.fixed),
        ("Newly flaky", &d.newly_flaky),
        ("Still failing", &d.still_failing),
        ("Added", &d.added),
        ("Removed", &d.removed),
    ]
}

fn counts(s: &Option<Summary>) -> [usize; 6] {
    s.map_or([0; 6], |s| {
        [s.total, s.passed, s.failed, s.errored, s.skipped, s.flaky]
    })
}

const COUNT_NAMES: [&str; 6] = ["total", "passed", "failed", "errored", "skipped", "flaky"];

/// For a terminal.
pub fn text(d: &Diff, old_name: &str, new_name: &str) -> String {
    let mut out = format!("{old_name} → {new_name}: {}\n", d.headline());
    let (before, after) = (counts(&d.old), counts(&d.new));
    let line: Vec<String> = COUNT_NAMES
        .iter()
        .zip(before.iter().zip(after.iter()))
        .map(|(name, (b, a))| {
            if a == b {
                format!("{name} {a}")
            } else {
                format!("{name} {b} → {a}")
            }
        })
        .collect();
    let _ = writeln!(out, "{}", line.join(", "));
    for (title, changes) in sections(d) {
        if changes.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{title} ({}):", changes.len());
        for c in changes {
            let _ = writeln!(
                out,
                "  {} › {}  ({} → {})  at {}:{}",
                c.suite,
                c.name,
                word(c.old),
                word(c.new),
                c.file,
                c.line
            );
            if !c.why.is_empty() {
                let _ = writeln!(out, "      {}", c.why);
            }
        }
    }
    out
}

/// Escapes text for a Markdown table cell.
pub(super) fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\''),
            '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// Escapes text for a code span in a Markdown table cell (only `|` needs it there).
pub(super) fn code_cell(text: &str) -> String {
    text.replace('`', "'")
        .replace(['\n', '\r'], " ")
        .replace('|', "\\|")
}

/// As Markdown, for a CI job summary (`$GITHUB_STEP_SUMMARY`, a merge request note).
pub fn markdown(d: &Diff, old_name: &str, new_name: &str) -> String {
    let mark = if d.regressed() {
        "❌"
    } else if d.fixed.is_empty() {
        "✅"
    } else {
        "🎉"
    };
    let mut out = format!("### {mark} pitcrew: {}\n\n", cell(&d.headline()));
    let _ = writeln!(
        out,
        "Compared `{}` with `{}`.\n",
        code_cell(old_name),
        code_cell(new_name)
    );
    out.push_str("| | before | now |\n|---|---:|---:|\n");
    let (before, after) = (counts(&d.old), counts(&d.new));
    for (name, (b, a)) in COUNT_NAMES.iter().zip(before.iter().zip(after.iter())) {
        let _ = writeln!(out, "| {name} | {b} | {a} |");
    }
    for (title, changes) in sections(d) {
        if changes.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n#### {title} ({})\n\n| case | before | now | where | why |\n|---|---|---|---|---|\n",
            changes.len()
        );
        for c in changes {
            let _ = writeln!(
                out,
                "| {} › {} | {} | {} | `{}:{}` | {} |",
                cell(&c.suite),
                cell(&c.name),
                word(c.old),
                word(c.new),
                code_cell(&c.file),
                c.line,
                cell(&c.why)
            );
        }
    }
    out
}
