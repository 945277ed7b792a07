//! The console: a line per case in plan order as verdicts come, failures spelled out, retries,
//! then the summary and a recap of what failed, from the run record.
//!
//! Everything goes to one stream (stdout; stderr when stdout carries `--json -`). When that
//! stream is a terminal an indicatif progress bar ticks underneath; otherwise plain lines only.
//! Every line is masked before it is printed; colour is added after, to pitcrew's own words.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::format::{CaseRecord, RunRecord, Verdict};
use super::junit::headline;
use super::style::{self, Tone};
use crate::check::Failure;
use crate::run::{CancelReason, CaseResult, Event, EventKind, RunInfo, Status};

/// How the console behaves.
#[derive(Debug, Clone, Copy, Default)]
pub struct ConsoleOptions {
    /// Draw the progress bar (only ever on a terminal).
    pub progress: bool,
    /// Write to stderr: stdout carries a report (`--json -`).
    pub to_stderr: bool,
    /// Print every case's requests, answers and callbacks (`--verbose`).
    pub verbose: bool,
    /// For a publisher (`check-endpoint`): what to fix when a case fails, by case name. A
    /// failure then says what the endpoint answered and what to fix, and never points into
    /// pitcrew's own check files, which the publisher does not have.
    pub advice: Option<Advice>,
    /// Print only the cases that did not pass (and flaky ones), then the recap (`--quiet`).
    pub quiet: bool,
}

/// How many kinds of failure (and flaky cases) the recap lists before it says how many more.
const RECAP_GROUPS: usize = 20;
/// How many cases of one kind of failure the recap names.
const RECAP_NAMES: usize = 5;

/// What to fix when a case fails, by case name.
pub type Advice = &'static [(&'static str, &'static str)];

/// Prints results as the runner reports them.
pub struct Console {
    options: ConsoleOptions,
    /// Lines not written yet (without a progress bar): written at each [`flush`](Self::flush).
    buffer: String,
    color: bool,
    bar: Option<ProgressBar>,
    info: Option<Arc<RunInfo>>,
    /// Verdicts that came before an earlier case's: held to keep plan order.
    pending: BTreeMap<usize, Arc<CaseResult>>,
    next: usize,
    /// Where the lines go instead of stdout or stderr (what a test reads).
    sink: Option<Box<dyn Write + Send>>,
    /// Cases that failed or errored so far (the progress bar shows it).
    failed: usize,
}

impl Console {
    /// A console writing to stdout (or stderr, see [`ConsoleOptions::to_stderr`]).
    pub fn new(options: ConsoleOptions) -> Console {
        let terminal = if options.to_stderr {
            std::io::stderr().is_terminal()
        } else {
            std::io::stdout().is_terminal()
        };
        Console {
            options: ConsoleOptions {
                progress: options.progress && terminal,
                ..options
            },
            color: style::enabled(terminal),
            buffer: String::new(),
            bar: None,
            info: None,
            pending: BTreeMap::new(),
            next: 0,
            sink: None,
            failed: 0,
        }
    }

    /// A console writing plain lines (no colour, no progress bar) to `sink`.
    pub fn to_writer(options: ConsoleOptions, sink: Box<dyn Write + Send>) -> Console {
        Console {
            options: ConsoleOptions {
                progress: false,
                ..options
            },
            color: false,
            buffer: String::new(),
            bar: None,
            info: None,
            pending: BTreeMap::new(),
            next: 0,
            sink: Some(sink),
            failed: 0,
        }
    }

    /// Prints `text`, masked, after `head` (a word of pitcrew's own, coloured).
    fn print(&mut self, head: Option<(&str, Tone)>, text: &str) {
        let mut line = match head {
            Some((word, tone)) => style::paint(word, tone, self.color),
            None => String::new(),
        };
        line.push_str(&style::visible(&crate::mask::mask(text)));
        match &self.bar {
            Some(bar) => bar.println(line),
            None => {
                self.buffer.push_str(&line);
                self.buffer.push('\n');
            }
        }
    }

    /// Writes the buffered lines out.
    pub fn flush(&mut self) {
        if self.buffer.is_empty() {
            return;
        }
        // A closed pipe (`pitcrew run | head`) is no reason to stop the run.
        let _ = if let Some(sink) = &mut self.sink {
            sink.write_all(self.buffer.as_bytes())
                .and_then(|_| sink.flush())
        } else if self.options.to_stderr {
            let mut err = std::io::stderr().lock();
            err.write_all(self.buffer.as_bytes())
                .and_then(|_| err.flush())
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(self.buffer.as_bytes())
                .and_then(|_| out.flush())
        };
        self.buffer.clear();
    }

    /// Takes in one event.
    pub fn on_event(&mut self, event: &Event) {
        match &event.kind {
            EventKind::RunStarted(info) => {
                if self.options.progress {
                    self.bar = Some(self.progress_bar(info.cases.len() as u64));
                }
                self.info = Some(info.clone());
                let shard = info
                    .shard
                    .as_ref()
                    .map(|s| format!(", shard {s}"))
                    .unwrap_or_default();
                self.print(
                    None,
                    &format!(
                        "pitcrew: running {} case(s) on {} (run {}{shard})",
                        info.cases.len(),
                        info.target,
                        info.run_id
                    ),
                );
            }
            EventKind::CaseFinished(result) => {
                if matches!(result.status, Status::Failed | Status::Errored) {
                    self.failed += 1;
                    if let Some(bar) = &self.bar {
                        bar.set_message(format!("· {} failed", self.failed));
                    }
                }
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.pending.insert(result.index, result.clone());
                while let Some(result) = self.pending.remove(&self.next) {
                    self.case_line(&result);
                    self.next += 1;
                }
            }
            EventKind::AttemptFailed(result) => {
                let mut text = format!(
                    " {}  (attempt {} {}: {}; running it again)",
                    self.name(result.index),
                    result.attempt,
                    if result.status == Status::Errored {
                        "errored"
                    } else {
                        "failed"
                    },
                    first_line(result)
                );
                self.push_transcript(&mut text, &result.transcript);
                self.print(Some(("RETRY", Tone::Yellow)), &text);
            }
            EventKind::RunCancelled { reason } => {
                let text = match reason {
                    CancelReason::FailFast => {
                        "pitcrew: --fail-fast: a case failed; no more cases start"
                    }
                    CancelReason::Interrupted => {
                        "pitcrew: interrupted: running cases finish, the rest are skipped; reports will be written (interrupt again to stop at once)"
                    }
                    CancelReason::Aborted => {
                        "pitcrew: interrupted again: stopping the running cases; reports will be written"
                    }
                };
                // Once, where every other line goes (it was once on stderr too: twice in a CI
                // log that takes both).
                self.print(None, text);
            }
            EventKind::CaseStarted { .. } | EventKind::RunFinished { .. } => {}
        }
    }

    fn progress_bar(&self, len: u64) -> ProgressBar {
        let target = if self.options.to_stderr {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::stdout()
        };
        let bar = ProgressBar::with_draw_target(Some(len), target);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg} · about {eta} left",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        // Ticks (and the elapsed time moves) while slow cases wait for their callbacks.
        bar.enable_steady_tick(Duration::from_millis(100));
        bar
    }

    /// Ends the progress bar; prints a recap of what did not pass, each kind of failure once
    /// with the cases it struck, then the totals last, where a terminal or a CI log's tail
    /// shows them.
    pub fn finish(&mut self, record: &RunRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        let failing: Vec<_> = record
            .cases
            .iter()
            .filter(|c| c.status.is_failure())
            .collect();
        match self.options.advice {
            Some(advice) if !failing.is_empty() => self.advise(advice, &failing),
            _ if !failing.is_empty() => self.recap(&failing),
            _ => {}
        }
        let flaky: Vec<_> = record.cases.iter().filter(|c| c.flaky).collect();
        if !flaky.is_empty() {
            self.print(None, &format!("\nFlaky ({}):", flaky.len()));
            for case in flaky.iter().take(RECAP_GROUPS) {
                self.print(
                    Some(("  FLAKY", Tone::Yellow)),
                    &format!(
                        "  {} › {}  (passed on attempt {})",
                        case.suite, case.name, case.attempts
                    ),
                );
            }
            if flaky.len() > RECAP_GROUPS {
                let more = flaky.len() - RECAP_GROUPS;
                self.print(
                    None,
                    &format!("  … and {more} more (every one is in the reports)"),
                );
            }
        }
        self.print(None, "");
        if !record.stray.is_empty() {
            self.print(
                Some(("warning", Tone::Yellow)),
                &format!(
                    ": {} callback(s) reached pitcrew but matched no case (forged, refused or unexpected); see `stray` in the JSON report",
                    record.stray.len()
                ),
            );
        }
        let summary = &record.summary;
        let tone = if summary.success() {
            Tone::Green
        } else {
            Tone::Red
        };
        self.print(Some((&summary.line(), tone)), "");
        self.flush();
    }

    /// What failed, by kind: cases whose first failure reads alike are one entry, with the
    /// first few named.
    fn recap(&mut self, failing: &[&CaseRecord]) {
        let mut kinds: Vec<(String, Vec<&CaseRecord>)> = Vec::new();
        let mut by_text: std::collections::HashMap<String, usize> = Default::default();
        for case in failing {
            let text = headline(&case.failures, case.error.as_deref());
            match by_text.get(&text) {
                Some(&i) => kinds[i].1.push(case),
                None => {
                    by_text.insert(text.clone(), kinds.len());
                    kinds.push((text, vec![case]));
                }
            }
        }
        let title = match kinds.len() {
            n if n == failing.len() => format!("\nWhat failed ({}):", failing.len()),
            n => format!("\nWhat failed ({} cases, {n} kinds):", failing.len()),
        };
        self.print(None, &title);
        for (text, cases) in kinds.iter().take(RECAP_GROUPS) {
            let (word, tone) = label(cases[0].status, false);
            let whole =
                |c: &CaseRecord| format!("{} › {}  at {}:{}", c.suite, c.name, c.file, c.line);
            if let [case] = cases.as_slice() {
                self.print(
                    Some((&format!("  {word}"), tone)),
                    &format!("  {}\n        {text}", whole(case)),
                );
                continue;
            }
            let mut lines = format!(" ×{}  {text}", cases.len());
            for case in cases.iter().take(RECAP_NAMES) {
                lines.push_str(&format!("\n        {}", whole(case)));
            }
            if cases.len() > RECAP_NAMES {
                lines.push_str(&format!(
                    "\n        … and {} more",
                    cases.len() - RECAP_NAMES
                ));
            }
            self.print(Some((&format!("  {word}"), tone)), &lines);
        }
        if kinds.len() > RECAP_GROUPS {
            let rest: usize = kinds[RECAP_GROUPS..].iter().map(|(_, c)| c.len()).sum();
            self.print(
                None,
                &format!(
                    "  … and {} more kind(s) of failure in {rest} case(s): each is above, and in the reports",
                    kinds.len() - RECAP_GROUPS
                ),
            );
        }
    }

    /// What to fix, for a publisher: each failed check with its advice.
    fn advise(&mut self, advice: Advice, failing: &[&CaseRecord]) {
        self.print(None, &format!("\nWhat to fix ({}):", failing.len()));
        for case in failing {
            let (word, tone) = label(case.status, false);
            let fix = advice_for(advice, &case.name)
                .map(|fix| format!("\n        fix: {fix}"))
                .unwrap_or_default();
            self.print(
                Some((&format!("  {word}"), tone)),
                &format!(
                    "  {}\n        {}{fix}",
                    case.name,
                    headline(&case.failures, case.error.as_deref())
                ),
            );
        }
    }

    fn name(&self, index: usize) -> String {
        let Some(info) = &self.info else {
            return format!("case #{index}");
        };
        match info.cases.get(index) {
            Some(case) => format!("{} › {}", info.suites[case.suite].name, case.name),
            None => format!("case #{index}"),
        }
    }

    fn case_line(&mut self, result: &CaseResult) {
        let flaky = result.status == Status::Passed && result.attempt > 1;
        if self.options.quiet && result.status == Status::Passed && !flaky {
            return;
        }
        let (word, tone) = label(result.status, flaky);
        let mut text = format!(
            "{:pad$} {}  ({} ms{})",
            "",
            self.name(result.index),
            result.duration.as_millis(),
            match (flaky, result.attempt) {
                (true, n) => format!(", passed on attempt {n}"),
                // A verdict after retries says how many attempts it took.
                (false, n) if n > 1 && result.status != Status::Passed => {
                    format!(", after {n} attempts")
                }
                _ => String::new(),
            },
            pad = 5 - word.len().min(5),
        );
        let advice = self.options.advice;
        if result.status != Status::Passed {
            if let Some(info) = &self.info
                && let Some(case) = info.cases.get(result.index)
                && advice.is_none()
            {
                let file = &info.suites[case.suite].file;
                text.push_str(&format!("\n      at {file}:{}", case.line));
            }
            if let Some(e) = &result.error {
                text.push_str(&format!("\n      {e}"));
            }
            push_failures(&mut text, &result.failures, advice.is_none());
            if let Some(advice) = advice {
                if let Some(answers) = endpoint_answers(&result.transcript) {
                    text.push_str(&format!("\n      your endpoint answered: {answers}"));
                }
                let name = self.info.as_ref().and_then(|i| i.cases.get(result.index));
                if let Some(fix) = name.and_then(|c| advice_for(advice, &c.name)) {
                    text.push_str(&format!("\n      fix: {fix}"));
                }
            }
        }
        self.push_transcript(&mut text, &result.transcript);
        self.print(Some((word, tone)), &text);
    }

    /// With `--verbose`, the exchanges under a case's line.
    fn push_transcript(&self, text: &mut String, transcript: &[String]) {
        if !self.options.verbose {
            return;
        }
        for entry in transcript {
            for line in entry.lines() {
                text.push_str("\n      │ ");
                text.push_str(line);
            }
        }
    }
}

/// The word for a verdict, and its tone.
fn label(status: impl Into<Verdict>, flaky: bool) -> (&'static str, Tone) {
    match status.into() {
        Verdict::Passed if flaky => ("FLAKY", Tone::Yellow),
        Verdict::Passed => ("PASS", Tone::Green),
        Verdict::Failed => ("FAIL", Tone::Red),
        Verdict::Errored => ("ERROR", Tone::Magenta),
        Verdict::Skipped => ("SKIP", Tone::Dim),
    }
}

/// The one line an attempt that did not pass is summed up by.
fn first_line(result: &CaseResult) -> String {
    if let Some(e) = &result.error {
        return e.clone();
    }
    match result.failures.as_slice() {
        [] => String::new(),
        [one] => one.message(),
        [first, rest @ ..] => format!("{} (and {} more)", first.message(), rest.len()),
    }
}

/// Each failure; `located`: with where it is expected in the scenario.
fn push_failures(text: &mut String, failures: &[Failure], located: bool) {
    for f in failures {
        text.push_str(&format!("\n      ✗ {}", f.message()));
        if let Some(at) = f.at_text().filter(|_| located) {
            text.push_str(&format!("\n        expected at {at}"));
        }
    }
}

fn advice_for(advice: Advice, name: &str) -> Option<&'static str> {
    advice.iter().find(|(n, _)| *n == name).map(|(_, fix)| *fix)
}

/// What the endpoint answered the case's deliveries (the transcript's `=> …` lines), each
/// distinct answer once with how many times, at most three; `None` when it answered none.
fn endpoint_answers(transcript: &[String]) -> Option<String> {
    let mut answers: Vec<(&str, usize)> = Vec::new();
    for line in transcript.iter().flat_map(|entry| entry.lines()) {
        let Some(answer) = line.strip_prefix("=> ") else {
            continue;
        };
        match answers.iter_mut().find(|(a, _)| *a == answer) {
            Some((_, n)) => *n += 1,
            None => answers.push((answer, 1)),
        }
    }
    if answers.is_empty() {
        return None;
    }
    let shown: Vec<String> = (answers.iter().take(3))
        .map(|(answer, n)| {
            let answer = crate::check::callback::truncate(answer, 200);
            match n {
                1 => answer,
                n => format!("{answer} ({n} times)"),
            }
        })
        .collect();
    let more = match answers.len() {
        n if n > 3 => format!("; and {} other answer(s)", n - 3),
        _ => String::new(),
    };
    Some(format!("{}{more}", shown.join("; ")))
}
