//! `pitcrew run`: load, select, start the target, run, report.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::scenarios::{LoadArgs, SelectArgs, load, parse_var, select};
use super::{exit, fail};
use crate::plan::{Plan, PlanOptions};
use crate::platform::{HttpPlatform, Profile};
use crate::receiver::{self, Receiver, ReceiverConfig};
use crate::report::console::Console;
use crate::report::{FileReports, RecordBuilder, RunRecord};
use crate::run::{self as runner, CallbackLog, CallbackSource, Interrupt, RunOptions};
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
    /// The embedded sandbox's tenant (offers, partners, token) as YAML.
    #[arg(long, value_name = "FILE")]
    pub sandbox_config: Option<PathBuf>,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::duration::parse_duration(text)
}

/// What the run was asked to run against.
enum TargetArg {
    Sandbox,
    Url(String),
}

impl TargetArg {
    fn parse(text: &str) -> Result<TargetArg, String> {
        if text == "sandbox" {
            return Ok(TargetArg::Sandbox);
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(TargetArg::Url(text.trim_end_matches('/').to_string()));
        }
        Err(format!(
            "--target `{text}`: give `sandbox` or a base URL such as http://127.0.0.1:8080/api/v1"
        ))
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
pub fn run(args: RunArgs) -> u8 {
    for (_, secret) in &args.secrets {
        crate::mask::register(secret);
    }
    let target = match TargetArg::parse(&args.target) {
        Ok(t) => t,
        Err(e) => return fail(exit::INVALID, e),
    };
    if matches!(target, TargetArg::Url(_)) && args.sandbox_config.is_some() {
        return fail(
            exit::INVALID,
            "--sandbox-config configures the embedded sandbox; it cannot apply to --target URL",
        );
    }
    let sandbox_config = match super::sandbox_config(args.sandbox_config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let options = PlanOptions {
        timeout: args.timeout,
        secrets: args.secrets.clone(),
        ..sandbox_plan_options()
    };
    let mut plan = match load(&args.load, options) {
        Ok(plan) => plan,
        Err(code) => return code,
    };
    if plan.is_empty() {
        return fail(exit::INVALID, "the scenario files hold no cases");
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
        Err(code) => return code,
    }
    let reports = FileReports {
        junit: args.junit.clone(),
        json: args.json.clone(),
    };
    let unwritable = reports.check();
    if !unwritable.is_empty() {
        for e in &unwritable {
            eprintln!("error: {}", crate::mask::mask(e));
        }
        return fail(
            exit::INVALID,
            "a report cannot be written there; nothing was run",
        );
    }
    let plan = Arc::new(plan);
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let servers = CancellationToken::new();
        let code = match target {
            TargetArg::Sandbox => match start_sandbox(sandbox_config, servers.clone()).await {
                Ok((platform, receiver, label)) => {
                    run_plan(&args, &reports, plan, platform, receiver, label).await
                }
                Err(code) => code,
            },
            TargetArg::Url(url) => match connect_url(&url).await {
                Ok(platform) => {
                    let log = Arc::new(CallbackLog::new(platform.clone()));
                    let label = crate::mask::mask(&url);
                    run_plan(&args, &reports, plan, platform, log, label).await
                }
                Err(code) => code,
            },
        };
        servers.cancel();
        code
    })
}

/// `--target URL`: a running sandbox API; it must answer before any case runs.
async fn connect_url(url: &str) -> Result<Arc<HttpPlatform>, u8> {
    let platform = HttpPlatform::new(Profile::sandbox(url.to_string()))
        .map_err(|e| fail(exit::INFRASTRUCTURE, e))?;
    let probe = crate::delivery::Key::Conversion(uuid::Uuid::nil().to_string());
    use crate::platform::Platform;
    if let Err(e) = platform.callback_log(&probe).await {
        let what = if e.message.contains("unauthorized") {
            "the target refused pitcrew"
        } else {
            "the target is unreachable"
        };
        return Err(fail(exit::INFRASTRUCTURE, format!("{what}: {e}")));
    }
    Ok(Arc::new(platform))
}

/// `--target sandbox`: the embedded sandbox and a receiver that takes only its partners'
/// secrets, on ephemeral loopback ports.
async fn start_sandbox(
    config: SandboxConfig,
    shutdown: CancellationToken,
) -> Result<(Arc<HttpPlatform>, Arc<Receiver>, String), u8> {
    for secret in config.secrets() {
        crate::mask::register(&secret);
    }
    let bind = || TcpListener::bind("127.0.0.1:0");
    let receiver = Receiver::new(ReceiverConfig {
        auth: Some(config.receiver_auth()),
        ..ReceiverConfig::default()
    });
    let receiver_handle = bind()
        .await
        .and_then(|l| receiver::serve(l, receiver.clone(), shutdown.clone()))
        .map_err(|e| {
            fail(
                exit::INFRASTRUCTURE,
                format!("cannot start the receiver on 127.0.0.1: {e}"),
            )
        })?;
    let token = config.token.clone();
    let sandbox = bind()
        .await
        .and_then(|l| sandbox::serve(l, config, receiver_handle.callback_url(), shutdown))
        .map_err(|e| {
            fail(
                exit::INFRASTRUCTURE,
                format!("cannot start the sandbox on 127.0.0.1: {e}"),
            )
        })?;
    let mut profile = Profile::sandbox(sandbox.base_url());
    if let Some(t) = token {
        profile
            .headers
            .push(("Authorization".to_string(), format!("ApiToken {t}")));
    }
    let platform = HttpPlatform::new(profile).map_err(|e| fail(exit::INFRASTRUCTURE, e))?;
    let label = format!(
        "sandbox ({}, callbacks to {})",
        sandbox.base_url(),
        receiver_handle.callback_url()
    );
    Ok((Arc::new(platform), Arc::new(receiver), label))
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

/// Runs the plan, feeding the console and the record; writes the reports; the exit code.
async fn run_plan<S: CallbackSource>(
    args: &RunArgs,
    reports: &FileReports,
    plan: Arc<Plan>,
    platform: Arc<HttpPlatform>,
    source: Arc<S>,
    label: String,
) -> u8 {
    let mut console = Console::new(!args.no_progress);
    let mut builder = RecordBuilder::default();
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let options = RunOptions {
        jobs: args.jobs,
        fail_fast: args.fail_fast,
        target: label,
        shard: args.select.shard.map(|s| s.to_string()),
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
    let errors = reports.write(&record);
    for e in &errors {
        eprintln!("error: {}", crate::mask::mask(e));
    }
    if let Some(e) = crashed {
        return fail(
            exit::INFRASTRUCTURE,
            format!(
                "the run stopped unexpectedly: {e}; the reports hold every case's verdict so far"
            ),
        );
    }
    exit_code(&record, !errors.is_empty())
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
