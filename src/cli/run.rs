//! `pitcrew run` and `pitcrew validate`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;

use super::scenarios::{LoadArgs, SelectArgs, load, select};
use super::{exit, fail};
use crate::plan::{Plan, PlanOptions};
use crate::platform::Platform;
use crate::platform::{HttpPlatform, Profile};
use crate::receiver::{self, Receiver};
use crate::report::console::Console;
use crate::report::{Collected, FileReports};
use crate::run::{self as runner, Observer, RunOptions};
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
    /// Write a JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Per-case timeout for cases whose file sets none (e.g. `30s`).
    #[arg(long, value_name = "DUR", value_parser = parse_timeout)]
    pub timeout: Option<Duration>,
    /// Stop starting cases after the first failure; the rest are reported skipped.
    #[arg(long)]
    pub fail_fast: bool,
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

/// `pitcrew run`.
pub fn run(args: RunArgs) -> u8 {
    let url_target = args.target != "sandbox";
    if url_target && !(args.target.starts_with("http://") || args.target.starts_with("https://")) {
        return fail(
            exit::INVALID,
            format!(
                "--target `{}`: give `sandbox` or a base URL such as http://127.0.0.1:8080/api/v1",
                args.target
            ),
        );
    }
    if url_target && args.sandbox_config.is_some() {
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
        ..PlanOptions::default()
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
    let plan = Arc::new(plan);
    let runtime = match super::runtime() {
        Ok(r) => r,
        Err(code) => return code,
    };
    runtime.block_on(async move {
        let (trigger, shutdown) = crate::shutdown::channel();
        let target = if url_target {
            connect_url(&args.target).await
        } else {
            start_sandbox(sandbox_config, shutdown).await
        };
        let code = match target {
            Ok(target) => run_plan(&args, plan, target).await,
            Err(code) => code,
        };
        trigger.trigger();
        code
    })
}

/// A platform to run against and where its callbacks are seen.
struct Target {
    platform: Arc<HttpPlatform>,
    observer: Observer,
    label: String,
}

/// `--target URL`: a running sandbox API; it must answer before any case runs.
async fn connect_url(url: &str) -> Result<Target, u8> {
    let platform = HttpPlatform::new(Profile::sandbox(url.trim_end_matches('/').to_string()))
        .map_err(|e| fail(exit::INFRASTRUCTURE, e))?;
    let probe = uuid::Uuid::nil().to_string();
    if let Err(e) = platform.callback_log(&probe).await {
        return Err(fail(
            exit::INFRASTRUCTURE,
            format!("the target is unreachable: {e}"),
        ));
    }
    Ok(Target {
        platform: Arc::new(platform),
        observer: Observer::CallbackLog,
        label: url.to_string(),
    })
}

/// `--target sandbox`: the embedded sandbox and receiver on ephemeral loopback ports.
async fn start_sandbox(
    config: SandboxConfig,
    shutdown: crate::shutdown::Shutdown,
) -> Result<Target, u8> {
    let bind = || TcpListener::bind("127.0.0.1:0");
    let receiver = Receiver::default();
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
    profile.auth = token.map(|t| ("Authorization".to_string(), format!("ApiToken {t}")));
    let platform = HttpPlatform::new(profile).map_err(|e| fail(exit::INFRASTRUCTURE, e))?;
    Ok(Target {
        platform: Arc::new(platform),
        observer: Observer::Receiver(receiver),
        label: format!("sandbox ({})", sandbox.base_url()),
    })
}

/// Runs the plan, feeding the console and the file reports; returns the exit code.
async fn run_plan(args: &RunArgs, plan: Arc<Plan>, target: Target) -> u8 {
    let reports = FileReports {
        junit: args.junit.clone(),
        json: args.json.clone(),
    };
    let mut console = Console::new(plan.clone(), !args.no_progress);
    let mut collected = Collected::default();
    let (events_tx, mut events_rx) = tokio::sync::mpsc::unbounded_channel();
    let options = RunOptions {
        jobs: args.jobs,
        fail_fast: args.fail_fast,
        target: target.label,
    };
    let run = tokio::spawn(runner::run(
        plan.clone(),
        target.platform,
        target.observer,
        options,
        events_tx,
    ));
    while let Some(event) = events_rx.recv().await {
        console.on_event(&event);
        collected.on_event(&event);
    }
    let stats = match run.await {
        Ok(stats) => stats,
        Err(e) => {
            return fail(
                exit::INFRASTRUCTURE,
                format!("the run stopped unexpectedly: {e}"),
            );
        }
    };
    if let Err(e) = reports.write(&plan, &collected) {
        return fail(exit::INFRASTRUCTURE, e);
    }
    if stats.success() {
        exit::PASSED
    } else {
        exit::FAILED
    }
}
