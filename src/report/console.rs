//! The console: a line per case in file order, failures spelled out, then the summary.
//! On a terminal an indicatif progress bar runs underneath; otherwise plain lines only.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Arc;

use indicatif::{ProgressBar, ProgressStyle};

use crate::plan::{Case, Plan};
use crate::run::{CaseResult, Event, Status};

/// Prints results as the runner reports them.
pub struct Console {
    bar: Option<ProgressBar>,
    /// Results that finished before an earlier case: held to keep file order.
    pending: BTreeMap<usize, Arc<CaseResult>>,
    next: usize,
    plan: Arc<Plan>,
}

impl Console {
    /// A console for `plan`; `progress` asks for the bar (used only on a terminal).
    pub fn new(plan: Arc<Plan>, progress: bool) -> Console {
        let bar = (progress && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(plan.len() as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar
        });
        Console {
            bar,
            pending: BTreeMap::new(),
            next: 0,
            plan,
        }
    }

    fn print(&self, text: &str) {
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
        match event {
            Event::RunStarted {
                run_id,
                total,
                target,
            } => {
                self.print(&format!(
                    "pitcrew: running {total} case(s) on {target} (run {run_id})"
                ));
            }
            Event::CaseFinished(result) => {
                if let Some(bar) = &self.bar {
                    bar.inc(1);
                }
                self.pending.insert(result.index, result.clone());
                while let Some(result) = self.pending.remove(&self.next) {
                    self.print(&self.line(&result));
                    self.next += 1;
                }
            }
            Event::RunFinished { stats } => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.print("");
                self.print(&stats.summarize());
            }
        }
    }

    fn case(&self, index: usize) -> Option<&Case> {
        // Plans are in file order, so the suite is found by the first index of the next one.
        let suite = self
            .plan
            .suites
            .iter()
            .rfind(|s| s.cases.first().is_some_and(|c| c.index <= index))?;
        suite.cases.get(index - suite.cases.first()?.index)
    }

    fn line(&self, result: &CaseResult) -> String {
        let Some(case) = self.case(result.index) else {
            return String::new();
        };
        let mut text = format!(
            "{:<5} {} › {}  ({} ms)",
            result.status.label(),
            case.suite,
            case.name,
            result.duration.as_millis()
        );
        if result.status == Status::Passed {
            return text;
        }
        text.push_str(&format!("\n      at {}:{}", case.file, case.line));
        if let Some(e) = &result.error {
            text.push_str(&format!("\n      {e}"));
        }
        for f in &result.failures {
            text.push_str(&format!("\n      ✗ {}", f.message));
            if let Some(at) = &f.at {
                text.push_str(&format!("\n        expected at {at}"));
            }
        }
        text
    }
}
