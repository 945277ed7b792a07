//! `pitcrew report merge|diff|html|trend`: work on saved reports, no run.

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand, ValueEnum};

use super::{CliError, Outcome, exit, say};
use crate::report::merge::{self, Input};
use crate::report::stream::RecordFile;
use crate::report::trend::TrendBuilder;
use crate::report::{diff, html, trend, write_report_with};

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Merge JUnit or JSON shard reports into one (in the unsharded run's order; every case
    /// once). Exit 0, or 2 when the inputs do not merge (a case twice, a shard missing).
    Merge(MergeArgs),
    /// What changed between two JSON reports, by case name: new failures, fixed, newly flaky,
    /// still failing, added and removed. Exit 1 when something newly fails, else 0.
    Diff(DiffArgs),
    /// Render a JSON report as a self-contained HTML page.
    Html(HtmlArgs),
    /// Each case across several JSON reports, oldest first: what got slower or flakier, what
    /// always fails, what is flaky, and each run's pass rate. A report, not a gate: exit 0
    /// (2 when fewer than two reports are given or one cannot be read).
    Trend(TrendArgs),
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// Where to write the merged report (`-`: stdout).
    pub out: PathBuf,
    /// The shard reports, all JUnit XML or all JSON.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Merge even when a shard's report is missing (its cases are then not in the output).
    #[arg(long)]
    pub partial: bool,
}

#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The earlier run's JSON report (e.g. last night's).
    pub old: PathBuf,
    /// The later run's JSON report.
    pub new: PathBuf,
    /// `text` for a terminal, `md` (Markdown) for a CI job summary.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

/// `report trend`'s arguments.
#[derive(Debug, Args)]
#[command(after_help = "\
A case is known by its suite and name. It is unstable in a run when it was flaky (passed on a
retry), failed or errored; runs in which it was skipped or absent are not counted. The runs are
split into an earlier and a later half (with an odd number, the middle run is in neither):
- Got slower: its median time in the runs it passed, later half against earlier, at least 1.5×
  and at least 100 ms longer; worst first.
- Got flakier: unstable in a larger share of its later runs than of its earlier ones.
- Always failing: failed or errored every time it ran.
- Flaky: unstable in some run, but not always failing; the highest rate first.
Each section shows at most 20 cases, and says how many more there are.")]
pub struct TrendArgs {
    /// Two or more JSON reports (`pitcrew run --json`), OLDEST FIRST: they are compared in the
    /// order given, not by date or file time (name them so that a glob sorts them, e.g.
    /// `runs/2026-01-31.json`).
    #[arg(required = true, value_name = "RUN.json")]
    pub runs: Vec<PathBuf>,
    /// `text` for a terminal, `md` (Markdown) for a CI job summary.
    #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
    pub format: DiffFormat,
}

/// How `report diff` and `report trend` print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiffFormat {
    Text,
    Md,
}

#[derive(Debug, Args)]
pub struct HtmlArgs {
    /// A JSON report (`pitcrew run --json`).
    pub input: PathBuf,
    /// Where to write the page.
    pub out: PathBuf,
}

/// `pitcrew report …`.
pub fn report(command: ReportCommand) -> Outcome {
    match command {
        ReportCommand::Merge(args) => merge(args),
        ReportCommand::Diff(args) => diff(args),
        ReportCommand::Html(args) => html(args),
        ReportCommand::Trend(args) => trend(args),
    }
}

/// A saved record, read a case at a time.
fn saved(path: &Path) -> Result<RecordFile, CliError> {
    RecordFile::open(path).map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
}

fn write_with(
    path: &Path,
    write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    what: &str,
) -> Result<(), CliError> {
    write_report_with(path, write).map_err(|e| {
        CliError::Infrastructure(format!("cannot write the {what} {}: {e}", path.display()))
    })
}

/// Refuses to write `out` over one of the `inputs`: the report read would be lost.
fn not_an_input(out: &Path, inputs: &[&PathBuf]) -> Result<(), CliError> {
    let real = |p: &Path| {
        std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .ok()
    };
    if out.as_os_str() == crate::report::STDOUT {
        return Ok(());
    }
    match inputs
        .iter()
        .find(|i| real(i).is_some() && real(i) == real(out))
    {
        Some(input) => Err(CliError::Usage(format!(
            "{} is also an input: writing there would lose the report it holds; write it to another file",
            input.display()
        ))),
        None => Ok(()),
    }
}

fn merge(args: MergeArgs) -> Outcome {
    not_an_input(&args.out, &args.inputs.iter().collect::<Vec<_>>())?;
    let inputs: Vec<Input> = args
        .inputs
        .iter()
        .map(|p| Input {
            name: p.display().to_string(),
            path: p.clone(),
        })
        .collect();
    let merged = merge::merge(&inputs, args.partial)?;
    write_with(&args.out, |out| merged.write(out), "merged report")?;
    if args.out.as_os_str() != crate::report::STDOUT {
        eprintln!(
            "pitcrew: merged {} {} report(s), {} case(s), into {}",
            inputs.len(),
            merged.format,
            merged.cases,
            crate::report::style::visible(&args.out.display().to_string())
        );
    }
    Ok(exit::PASSED)
}

fn diff(args: DiffArgs) -> Outcome {
    let brief = |path: &Path| {
        saved(path)?
            .brief()
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))
    };
    let (old, new) = (brief(&args.old)?, brief(&args.new)?);
    let d = diff::diff(&old, &new);
    let (a, b) = (
        args.old.display().to_string(),
        args.new.display().to_string(),
    );
    let text = match args.format {
        DiffFormat::Text => diff::text(&d, &a, &b),
        DiffFormat::Md => diff::markdown(&d, &a, &b),
    };
    say(&crate::mask::mask(text.trim_end()));
    Ok(if d.regressed() {
        exit::FAILED
    } else {
        exit::PASSED
    })
}

fn html(args: HtmlArgs) -> Outcome {
    not_an_input(&args.out, &[&args.input])?;
    let saved = saved(&args.input)?;
    let head = saved.masked_head();
    write_with(
        &args.out,
        |out| html::write_from(&head, &saved, out),
        "HTML report",
    )?;
    Ok(exit::PASSED)
}

fn trend(args: TrendArgs) -> Outcome {
    if args.runs.len() < 2 {
        return Err(CliError::Usage(
            "report trend compares runs: give two or more JSON reports, oldest first".into(),
        ));
    }
    let mut builder = TrendBuilder::default();
    for path in &args.runs {
        let saved = saved(path)?;
        builder
            .saved_run(path.display().to_string(), &saved)
            .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    }
    let t = builder.finish();
    let text = match args.format {
        DiffFormat::Text => trend::text(&t),
        DiffFormat::Md => trend::markdown(&t),
    };
    say(&crate::mask::mask(text.trim_end()));
    Ok(exit::PASSED)
}
