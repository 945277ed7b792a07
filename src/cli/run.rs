//! `pitcrew run`: load, select, start the target, run, report. `check-endpoint` runs its
//! built-in suite through the same [`execute`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use super::scenarios::{LoadArgs, SecretPair, SelectArgs, TargetChoice, load, select};
use super::signals::Signals;
use super::{CliError, Outcome, exit};
use crate::launch::{Endpoint, Started, Target, TargetArgs};
use crate::plan::{Plan, PlanOptions};
use crate::report::console::{Advice, Console, ConsoleOptions};
use crate::report::{FileReports, RecordBuilder, RunRecord};
use crate::run::{Interrupt, RunOptions};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub target: TargetChoice,
    /// Send the embedded sandbox's callbacks to this endpoint (yours) instead of pitcrew's
    /// receiver; deliveries and its answers are read from the sandbox's delivery log.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// With `--endpoint`: the header and secret GoKart sends your endpoint, e.g.
    /// `X-Api-Token=s3cret` (masked in every output).
    #[arg(long, value_name = "NAME=SECRET", value_parser = SecretPair, requires = "endpoint")]
    pub endpoint_header: Option<(String, String)>,
    #[command(flatten)]
    pub report: ReportArgs,
    /// Run, then run again the files that change (a scenario file saved, a matrix file it
    /// reads, the sandbox config), until Ctrl-C: for authors.
    #[arg(long)]
    pub watch: bool,
}

/// How a run goes and what it writes: shared by `run` and `check-endpoint`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// Requests in flight at once (job slots): a case holds a slot while it sends requests
    /// and checks, and none while it only waits for a callback, so cases waiting on a slow
    /// platform do not hold the run back; up to 16 times as many cases run at once.
    #[arg(long, short = 'j', default_value_t = 64)]
    pub jobs: usize,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report (the run record) here; `-` writes it to stdout (the console then
    /// goes to stderr).
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Write a self-contained HTML report here (one page, no external assets).
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Run a failed or errored case up to N more times, its templates rendered afresh; one that
    /// passes later is `passed` and flaky.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
    pub retries: u32,
    /// Print every case's requests, answers and callbacks, not only those of failures.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// Per-case timeout for cases whose file sets none (e.g. `30s`; at most 24h).
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Stop starting cases after the first failure; the rest are reported skipped.
    #[arg(long)]
    pub fail_fast: bool,
    /// A secret for templates, read as `{{env.K}}`; its value is masked as `***` in every
    /// output (repeatable).
    #[arg(long = "secret", value_name = "K=V", value_parser = SecretPair)]
    pub secrets: Vec<(String, String)>,
    /// The most requests pitcrew sends the target, e.g. `20/s` or `600/m` (over a target's
    /// `rate:` in pitcrew.yaml). A 429 or 503 with `Retry-After` is waited out and sent again
    /// (five times, two minutes at most) whatever the rate.
    #[arg(long, value_name = "N/s")]
    pub rate: Option<crate::platform::pace::Rate>,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
    /// Print only the cases that did not pass (failed, errored, flaky, skipped), then the
    /// recap and the totals: for big runs.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// How long a case's deliveries must be quiet after its verdict before the verdict is
    /// final (a case's `expect.callback.settle` wins). Default: 1s on a target that cannot
    /// tell what it still has to send (a real platform); none on a sandbox, whose cases are
    /// final once it has sent all it had to send for them.
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    pub settle: Option<Duration>,
}

fn parse_timeout(text: &str) -> Result<Duration, crate::duration::DurationError> {
    crate::duration::parse_duration(text)
}

/// `pitcrew run`.
pub fn run(args: RunArgs) -> Outcome {
    for (_, secret) in &args.report.secrets {
        crate::mask::register(secret);
    }
    // Before the plan loads, which may take a while: a Ctrl-C meanwhile runs no case.
    let (runtime, signals) = super::runtime_and_signals()?;
    let target = Target::parse(TargetArgs {
        target: &args.target.target,
        endpoint: args.endpoint.as_ref().map(|url| Endpoint {
            url: url.clone(),
            header: args.endpoint_header.clone(),
        }),
        receiver_url: args.target.receiver_url.as_deref(),
        sandbox_config: args.target.sandbox_config.as_deref(),
        secrets: &args.report.secrets,
    })?;
    let options = PlanOptions {
        timeout: args.report.timeout,
        secrets: args.report.secrets.clone(),
        retries: args.report.retries,
        selection: args.select.selection(),
        sandbox_config: args.target.sandbox_config.clone(),
        ..target.plan_options()
    };
    let plan = load(&args.load, options)?;
    if plan.selected.total == 0 {
        return Err(CliError::Usage("the scenario files hold no cases".into()));
    }
    match select(&plan, &args.select) {
        Ok(selected) if selected.kept == 0 => {
            let shard = args.select.shard.map(|s| s.to_string()).unwrap_or_default();
            eprintln!(
                "note: shard {shard} has no cases ({} selected in all); nothing to run",
                selected.matched
            );
        }
        Ok(_) => {}
        Err(e) => return Err(e),
    }
    let shard = args.select.shard.map(|s| s.to_string());
    execute(
        plan,
        target,
        &args.report,
        (shard, None),
        (runtime, signals),
    )
}

/// Runs `plan` on `target` and writes the reports; the exit code. `shard`: which one this is;
/// `advice`: what to tell a publisher to fix (`check-endpoint`). A signal caught before it
/// began starts no case.
pub fn execute(
    plan: Plan,
    target: Target,
    args: &ReportArgs,
    (shard, advice): (Option<String>, Option<Advice>),
    (runtime, signals): (Runtime, Signals),
) -> Outcome {
    let reports = FileReports {
        junit: args.junit.clone(),
        json: args.json.clone(),
        html: args.html.clone(),
    };
    let unwritable = reports.check();
    if !unwritable.is_empty() {
        let why: Vec<String> = unwritable.iter().map(ToString::to_string).collect();
        return Err(CliError::Usage(format!(
            "{}; nothing was run",
            why.join("; ")
        )));
    }
    let code = runtime.block_on(async move {
        let servers = CancellationToken::new();
        let run = Run {
            args,
            reports: &reports,
            shard,
            advice,
        };
        let code = match target.start(servers.clone(), args.rate).await {
            Ok(started) => run.go(plan, started, signals).await,
            Err(e) => Err(e.into()),
        };
        servers.cancel();
        code
    });
    // The process ends next: freeing what the sandbox, the receiver and the plan hold, a piece
    // at a time, would only delay the exit (a tenth of a second at 100,000 cases).
    std::mem::forget(runtime);
    code
}

/// Turns Ctrl-C and SIGTERM into the run's interrupt: the first finishes, the second aborts.
/// One that came already (while the plan loaded) is the first, before any case starts.
fn listen_for_signals(mut signals: Signals, interrupt: Interrupt) -> tokio::task::JoinHandle<()> {
    if signals.came() {
        interrupt.finish.cancel();
    }
    tokio::spawn(async move {
        for token in [interrupt.finish, interrupt.abort] {
            if !token.is_cancelled() {
                signals.next().await;
                token.cancel();
            }
        }
    })
}

/// One run's settings once the target is up.
struct Run<'a> {
    args: &'a ReportArgs,
    reports: &'a FileReports,
    shard: Option<String>,
    advice: Option<Advice>,
}

impl Run<'_> {
    /// Runs the plan, feeding the console and the record; writes the reports; the exit code.
    async fn go(self, plan: Plan, started: Started, signals: Signals) -> Outcome {
        let mut console = Console::new(ConsoleOptions {
            progress: !self.args.no_progress,
            to_stderr: self.reports.uses_stdout(),
            verbose: self.args.verbose,
            advice: self.advice,
            quiet: self.args.quiet,
        });
        let mut builder = RecordBuilder::default();
        let (events_tx, events_rx) = tokio::sync::mpsc::unbounded_channel();
        let options = RunOptions {
            jobs: self.args.jobs,
            fail_fast: self.args.fail_fast,
            target: started.label.clone(),
            shard: self.shard,
            clock: started.clock,
            retries: self.args.retries,
            verbose: self.args.verbose,
            settle: self.args.settle,
        };
        let interrupt = Interrupt::default();
        let signals = listen_for_signals(signals, interrupt.clone());
        let run = tokio::spawn(started.run(plan, options, interrupt, events_tx));
        // On the runtime's workers, not this thread: waking a task there is cheap, while
        // waking a parked thread for every event is a system call.
        let reporters = tokio::spawn(async move {
            crate::report::fan_out(events_rx, &mut [&mut console, &mut builder]).await;
            (console, builder)
        });
        let (mut console, builder) = reporters.await.map_err(|e| {
            CliError::Infrastructure(format!("the reports stopped unexpectedly: {e}"))
        })?;
        signals.abort();
        let crashed = run.await.err();
        let record = builder.finish();
        console.finish(&record);
        let errors = self.reports.write(&record);
        for e in &errors {
            let text = crate::mask::mask(&e.to_string());
            eprintln!("error: {}", crate::report::style::visible(&text));
        }
        if let Some(e) = crashed {
            return Err(CliError::Infrastructure(format!(
                "the run stopped unexpectedly: {e}; the reports hold every case's verdict so far"
            )));
        }
        let code = exit_code(&record, !errors.is_empty());
        // As for the runtime: the process ends next.
        std::mem::forget(record);
        Ok(code)
    }
}

/// The run's exit code: interrupted, then the verdict, then whether the reports were written.
fn exit_code(record: &RunRecord, report_failed: bool) -> u8 {
    use crate::report::format::Cancelled;
    if matches!(
        record.cancelled,
        Some(Cancelled::Interrupted | Cancelled::Aborted)
    ) {
        exit::INTERRUPTED
    } else if !record.summary.success() {
        exit::FAILED
    } else if report_failed {
        exit::INFRASTRUCTURE
    } else {
        exit::PASSED
    }
}
