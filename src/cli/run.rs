//! `pitcrew run`: load, select, start the target, run, report. `check-endpoint` runs its
//! built-in suite through the same [`execute`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::scenarios::{LoadArgs, SelectArgs, load, parse_var, select};
use super::{CliError, Outcome, exit};
use crate::plan::{Plan, PlanOptions};
use crate::platform::{HttpPlatform, Platform, Profile};
use crate::receiver::{self, Receiver, ReceiverConfig};
use crate::report::console::Console;
use crate::report::{FileReports, RecordBuilder, RunRecord};
use crate::run::{self as runner, CallbackLog, CallbackSource, Interrupt, RunOptions, TargetClock};
use crate::sandbox::{self, SandboxConfig};

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub select: SelectArgs,
    /// `sandbox` (the embedded GoKart sandbox, the default), or the base URL of anything
    /// speaking the sandbox API, e.g. `http://127.0.0.1:8080/api/v1` (a `pitcrew sandbox`);
    /// callbacks are then read from its conversion-callback log.
    #[arg(long, default_value = "sandbox")]
    pub target: String,
    /// Send the embedded sandbox's callbacks to this endpoint (yours) instead of pitcrew's
    /// receiver; deliveries and its answers are read from the sandbox's delivery log.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// With `--endpoint`: the header and secret GoKart sends your endpoint, e.g.
    /// `X-Api-Token=s3cret` (masked in every output).
    #[arg(long, value_name = "NAME=SECRET", value_parser = parse_var, requires = "endpoint")]
    pub endpoint_header: Option<(String, String)>,
    #[command(flatten)]
    pub report: ReportArgs,
    /// The embedded sandbox's tenant (offers, partners, token, time scale) as YAML.
    #[arg(long, value_name = "FILE")]
    pub sandbox_config: Option<PathBuf>,
}

/// How a run goes and what it writes: shared by `run` and `check-endpoint`.
#[derive(Debug, Clone, Args)]
pub struct ReportArgs {
    /// How many cases run at once.
    #[arg(long, short = 'j', default_value_t = 64)]
    pub jobs: usize,
    /// Write a JUnit XML report here.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write a JSON report (the run record) here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Per-case timeout for cases whose file sets none (e.g. `30s`; at most 24h).
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Stop starting cases after the first failure; the rest are reported skipped.
    #[arg(long)]
    pub fail_fast: bool,
    /// A secret for templates, read as `{{env.K}}`; its value is masked as `***` in every
    /// output (repeatable).
    #[arg(long = "secret", value_name = "K=V", value_parser = parse_var)]
    pub secrets: Vec<(String, String)>,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::duration::parse_duration(text)
}

/// A publisher's endpoint that the embedded sandbox calls back instead of pitcrew's receiver.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub header: Option<(String, String)>,
}

/// What a run runs against.
pub enum Target {
    /// The embedded sandbox, calling back pitcrew's receiver or a publisher's endpoint.
    Sandbox {
        config: Box<SandboxConfig>,
        endpoint: Option<Endpoint>,
    },
    /// Anything speaking the sandbox API at this base URL; callbacks read from its log.
    Url(String),
}

impl Target {
    fn parse(args: &RunArgs) -> Result<Target, CliError> {
        let text = args.target.as_str();
        if text == "sandbox" {
            let config = super::sandbox_config(args.sandbox_config.as_deref())?;
            let endpoint = args.endpoint.as_ref().map(|url| Endpoint {
                url: url.clone(),
                header: args.endpoint_header.clone(),
            });
            return Ok(Target::Sandbox {
                config: Box::new(config),
                endpoint,
            });
        }
        if !(text.starts_with("http://") || text.starts_with("https://")) {
            return Err(CliError::Usage(format!(
                "--target `{text}`: give `sandbox` or a base URL such as http://127.0.0.1:8080/api/v1"
            )));
        }
        for (given, flag) in [
            (args.sandbox_config.is_some(), "--sandbox-config"),
            (args.endpoint.is_some(), "--endpoint"),
        ] {
            if given {
                return Err(CliError::Usage(format!(
                    "{flag} configures the embedded sandbox; it cannot apply to --target URL"
                )));
            }
        }
        Ok(Target::Url(text.trim_end_matches('/').to_string()))
    }

    /// What the plan may use on this target.
    pub fn plan_options(&self) -> PlanOptions {
        let no_scripts = match self {
            Target::Sandbox { endpoint: None, .. } => None,
            Target::Sandbox {
                endpoint: Some(_), ..
            } => Some("your endpoint (--endpoint) answers this run's callbacks".to_string()),
            Target::Url(_) => Some(
                "this target calls back its own endpoint, and pitcrew reads its log".to_string(),
            ),
        };
        PlanOptions {
            no_scripts,
            ..sandbox_plan_options()
        }
    }
}

/// The plan options of a target that speaks the sandbox API: its default offer, its faults.
pub fn sandbox_plan_options() -> PlanOptions {
    PlanOptions {
        default_offer: Some(sandbox::DEMO_OFFER.to_string()),
        sandbox_faults: true,
        ..PlanOptions::default()
    }
}

/// `pitcrew run`.
pub fn run(args: RunArgs) -> Outcome {
    for (_, secret) in &args.report.secrets {
        crate::mask::register(secret);
    }
    let target = Target::parse(&args)?;
    let options = PlanOptions {
        timeout: args.report.timeout,
        secrets: args.report.secrets.clone(),
        ..target.plan_options()
    };
    let mut plan = load(&args.load, options)?;
    if plan.is_empty() {
        return Err(CliError::Usage("the scenario files hold no cases".into()));
    }
    match select(&mut plan, &args.select) {
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
    execute(plan, target, &args.report, shard)
}

/// Runs `plan` on `target` and writes the reports; the exit code.
pub fn execute(plan: Plan, target: Target, args: &ReportArgs, shard: Option<String>) -> Outcome {
    let reports = FileReports {
        junit: args.junit.clone(),
        json: args.json.clone(),
    };
    let unwritable = reports.check();
    if !unwritable.is_empty() {
        return Err(CliError::Usage(format!(
            "{}; nothing was run",
            unwritable.join("; ")
        )));
    }
    let plan = Arc::new(plan);
    let runtime = super::runtime()?;
    runtime.block_on(async move {
        let servers = CancellationToken::new();
        let run = Run {
            args,
            reports: &reports,
            shard,
        };
        let code = match target {
            Target::Sandbox { config, endpoint } => {
                match start_sandbox(*config, endpoint, servers.clone()).await {
                    Ok((platform, Observed::Receiver(receiver), label, clock)) => {
                        run.go(plan, platform, receiver, label, clock).await
                    }
                    Ok((platform, Observed::Log, label, clock)) => {
                        let log = Arc::new(CallbackLog::new(platform.clone()));
                        run.go(plan, platform, log, label, clock).await
                    }
                    Err(e) => Err(e),
                }
            }
            Target::Url(url) => match connect_url(&url).await {
                Ok((platform, clock)) => {
                    let log = Arc::new(CallbackLog::new(platform.clone()));
                    let label = crate::mask::mask(&url);
                    run.go(plan, platform, log, label, clock).await
                }
                Err(e) => Err(e),
            },
        };
        servers.cancel();
        code
    })
}

/// How a started sandbox's callbacks are seen.
enum Observed {
    Receiver(Arc<Receiver>),
    Log,
}

/// `--target URL`: a running sandbox API; it must answer before any case runs.
async fn connect_url(url: &str) -> Result<(Arc<HttpPlatform>, TargetClock), CliError> {
    let platform = HttpPlatform::new(Profile::sandbox(url.to_string()))
        .map_err(|e| CliError::Infrastructure(e.to_string()))?;
    let probe = crate::delivery::Key::Conversion(uuid::Uuid::nil().to_string());
    if let Err(e) = platform.callback_log(&probe).await {
        let what = if e.message.contains("unauthorized") {
            "the target refused pitcrew"
        } else {
            "the target is unreachable"
        };
        return Err(CliError::Infrastructure(format!("{what}: {e}")));
    }
    let clock = sandbox_clock(url).await;
    Ok((Arc::new(platform), clock))
}

/// A `pitcrew sandbox` says how long its minute lasts; any other platform runs on real time.
async fn sandbox_clock(base: &str) -> TargetClock {
    let url = format!("{base}/sandbox/clock");
    let minute = async {
        let answer: serde_json::Value = reqwest::get(&url).await.ok()?.json().await.ok()?;
        let text = answer.pointer("/data/minute")?.as_str()?.to_string();
        crate::duration::parse_duration(&text).ok()
    }
    .await;
    minute.map_or_else(TargetClock::default, |minute| TargetClock { minute })
}

/// `--target sandbox`: the embedded sandbox, and a receiver that takes only its partners'
/// secrets (or, with `--endpoint`, the publisher's endpoint), on ephemeral loopback ports.
async fn start_sandbox(
    mut config: SandboxConfig,
    endpoint: Option<Endpoint>,
    shutdown: CancellationToken,
) -> Result<(Arc<HttpPlatform>, Observed, String, TargetClock), CliError> {
    if let Some(endpoint) = &endpoint {
        config.call_back(&endpoint.url, endpoint.header.clone());
    }
    for secret in config.secrets() {
        crate::mask::register(&secret);
    }
    let clock = TargetClock {
        minute: config.minute,
    };
    let bind = || TcpListener::bind("127.0.0.1:0");
    let (callback_url, observed) = match &endpoint {
        Some(endpoint) => (endpoint.url.clone(), Observed::Log),
        None => {
            let receiver = Receiver::new(ReceiverConfig {
                auth: Some(config.receiver_auth()),
                ..ReceiverConfig::default()
            });
            let handle = bind()
                .await
                .and_then(|l| receiver::serve(l, receiver.clone(), shutdown.clone()))
                .map_err(|e| {
                    CliError::Infrastructure(format!("cannot start the receiver on 127.0.0.1: {e}"))
                })?;
            (
                handle.callback_url(),
                Observed::Receiver(Arc::new(receiver)),
            )
        }
    };
    let token = config.token.clone();
    let sandbox = bind()
        .await
        .and_then(|l| sandbox::serve(l, config, callback_url.clone(), shutdown))
        .map_err(|e| {
            CliError::Infrastructure(format!("cannot start the sandbox on 127.0.0.1: {e}"))
        })?;
    let mut profile = Profile::sandbox(sandbox.base_url());
    if let Some(t) = token {
        profile
            .headers
            .push(("Authorization".to_string(), format!("ApiToken {t}")));
    }
    let platform =
        HttpPlatform::new(profile).map_err(|e| CliError::Infrastructure(e.to_string()))?;
    let label = format!(
        "sandbox ({}, callbacks to {})",
        sandbox.base_url(),
        crate::mask::mask(&callback_url)
    );
    Ok((Arc::new(platform), observed, label, clock))
}

/// Turns Ctrl-C and SIGTERM into the run's interrupt: the first finishes, the second aborts.
fn listen_for_signals(interrupt: Interrupt) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        for token in [interrupt.finish, interrupt.abort] {
            if !signal().await {
                return;
            }
            token.cancel();
        }
    })
}

/// Resolves at the next Ctrl-C or SIGTERM; false when signals cannot be listened to.
pub(super) async fn signal() -> bool {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return tokio::signal::ctrl_c().await.is_ok();
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.is_ok(),
            _ = term.recv() => true,
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.is_ok()
    }
}

/// One run's settings once the target is up.
struct Run<'a> {
    args: &'a ReportArgs,
    reports: &'a FileReports,
    shard: Option<String>,
}

impl Run<'_> {
    /// Runs the plan, feeding the console and the record; writes the reports; the exit code.
    async fn go<S: CallbackSource>(
        self,
        plan: Arc<Plan>,
        platform: Arc<HttpPlatform>,
        source: Arc<S>,
        label: String,
        clock: TargetClock,
    ) -> Outcome {
        let mut console = Console::new(!self.args.no_progress);
        let mut builder = RecordBuilder::default();
        let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
        let options = RunOptions {
            jobs: self.args.jobs,
            fail_fast: self.args.fail_fast,
            target: label,
            shard: self.shard,
            clock,
        };
        let interrupt = Interrupt::default();
        let signals = listen_for_signals(interrupt.clone());
        let run = tokio::spawn(runner::run(
            plan, platform, source, options, interrupt, events_tx,
        ));
        while let Some(event) = events_rx.recv().await {
            console.on_event(&event);
            builder.on_event(&event);
        }
        signals.abort();
        let crashed = run.await.err();
        let record = builder.finish();
        console.finish(&record);
        let errors = self.reports.write(&record);
        for e in &errors {
            eprintln!("error: {}", crate::mask::mask(e));
        }
        if let Some(e) = crashed {
            return Err(CliError::Infrastructure(format!(
                "the run stopped unexpectedly: {e}; the reports hold every case's verdict so far"
            )));
        }
        Ok(exit_code(&record, !errors.is_empty()))
    }
}

/// The run's exit code: interrupted, then the verdict, then whether the reports were written.
fn exit_code(record: &RunRecord, report_failed: bool) -> u8 {
    if matches!(record.cancelled.as_deref(), Some("interrupted" | "aborted")) {
        exit::INTERRUPTED
    } else if !record.summary.success() {
        exit::FAILED
    } else if report_failed {
        exit::INFRASTRUCTURE
    } else {
        exit::PASSED
    }
}
