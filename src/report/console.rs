//! The console: a line per case in plan order as verdicts come, failures spelled out, late
//! failures, then the summary from the run record. On a terminal an indicatif progress bar
//! runs underneath; otherwise plain lines only. Every line is masked before it is printed.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use super::record::RunRecord;
use crate::check::Failure;
use crate::run::{CancelReason, CaseResult, Event, EventKind, RunInfo, Status};

/// Prints results as the runner reports them.
pub struct Console {
    bar: Option<ProgressBar>,
    info: Option<Arc<RunInfo>>,
    /// Verdicts that came before an earlier case's: held to keep plan order.
    pending: BTreeMap<usize, Arc<CaseResult>>,
    next: usize,
    progress: bool,
}

impl Console {
    /// A console; `progress` asks for the bar (drawn only when stderr is a terminal).
    pub fn new(progress: bool) -> Console {
        Console {
            bar: None,
            info: None,
            pending: BTreeMap::new(),
            next: 0,
            progress,
        }
    }

    fn print(&self, text: &str) {
        let text = crate::mask::mask(text);
        match &self.bar {
            Some(bar) => bar.println(text),
            None => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{text}");
            }
        }
    }

    /// Takes in one event.
    pub fn on_event(&mut self, event: &Event) {
        match &event.kind {
            EventKind::RunStarted(info) => {
                if self.progress && std::io::stderr().is_terminal() {
                    let bar = ProgressBar::new(info.cases.len() as u64);
                    bar.set_style(
                        ProgressStyle::with_template(
                            "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
                        )
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                    );
                    self.bar = Some(bar);
                }
                self.info = Some(info.clone());
                self.print(&format!(
                    "pitcrew: running {} case(s) on {} (run {})",
                    info.cases.len(),
                    info.target,
                    info.run_id
                ));
            }
            EventKind::CaseFinished(result) => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.pending.insert(result.index, result.clone());
                while let Some(result) = self.pending.remove(&self.next) {
                    self.print(&self.line(&result));
                    self.next += 1;
                }
            }
            EventKind::LateFailure {
                index,
                failures,
                error,
                ..
            } => {
                let mut text = format!("LATE  {}  (after its verdict)", self.name(*index));
                if let Some(e) = error {
                    text.push_str(&format!("\n      {e}"));
                }
                push_failures(&mut text, failures);
                self.print(&text);
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
                // To stderr, so that it is seen even when stdout goes to a file.
                match &self.bar {
                    Some(bar) => bar.println(text),
                    None => eprintln!("{text}"),
                }
            }
            EventKind::CaseStarted { .. }
            | EventKind::AttemptFailed(_)
            | EventKind::RunFinished { .. } => {}
        }
    }

    /// Ends the progress bar and prints the summary of the finished record.
    pub fn finish(&mut self, record: &RunRecord) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        self.print("");
        self.print(&record.summary.line());
        if !record.stray.is_empty() {
            self.print(&format!(
                "warning: {} callback(s) reached pitcrew but matched no case (forged, refused or unexpected); see `stray` in the JSON report",
                record.stray.len()
            ));
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

    fn line(&self, result: &CaseResult) -> String {
        let mut text = format!(
            "{:<5} {}  ({} ms)",
            result.status.label(),
            self.name(result.index),
            result.duration.as_millis()
        );
        if result.status == Status::Passed {
            return text;
        }
        if let Some(info) = &self.info
            && let Some(case) = info.cases.get(result.index)
        {
            let file = &info.suites[case.suite].file;
            text.push_str(&format!("\n      at {file}:{}", case.line));
        }
        if let Some(e) = &result.error {
            text.push_str(&format!("\n      {e}"));
        }
        push_failures(&mut text, &result.failures);
        text
    }
}

fn push_failures(text: &mut String, failures: &[Failure]) {
    for f in failures {
        text.push_str(&format!("\n      ✗ {}", f.message));
        if let Some(at) = &f.at {
            text.push_str(&format!("\n        expected at {at}"));
        }
    }
}
