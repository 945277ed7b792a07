//! `pitcrew run` and `pitcrew validate`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;

use super::{exit, fail, print_diagnostics};
use crate::plan::{self, Plan, PlanOptions};
use crate::platform::Platform;
use crate::platform::{HttpPlatform, Profile};
use crate::receiver::{self, Receiver};
use crate::report::console::Console;
use crate::report::{Collected, FileReports};
use crate::run::{self as runner, Observer, RunOptions};
use crate::sandbox::{self, SandboxConfig};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Files or folders of `.yaml` scenarios.
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
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
    /// Set a template variable, overriding the files' `vars` (repeatable).
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Never draw the progress bar, even on a terminal.
    #[arg(long)]
    pub no_progress: bool,
}

/// `k=v` for `--var`.
pub fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("`{text}` is not K=V")),
    }
}

fn parse_timeout(text: &str) -> Result<Duration, String> {
    crate::duration::parse_duration(text)
}

fn load(paths: &[PathBuf], options: &PlanOptions) -> Result<Plan, u8> {
    let files = crate::scenario::discover(paths).map_err(|e| fail(exit::INVALID, e))?;
    if files.is_empty() {
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(fail(
            exit::INVALID,
            format!("no .yaml scenario files in {}", shown.join(", ")),
        ));
    }
    plan::build(&files, options).map_err(|problems| {
        print_diagnostics(&problems);
        fail(
            exit::INVALID,
            format!(
                "{} problem(s) in scenario files; nothing was run",
                problems.len()
            ),
        )
    })
}

/// `pitcrew validate`: load and expand, print what would run.
pub fn validate(paths: &[PathBuf], vars: Vec<(String, String)>) -> u8 {
    let options = PlanOptions {
        sandbox_target: true,
        vars,
        timeout: None,
    };
    match load(paths, &options) {
        Ok(plan) => {
            for suite in &plan.suites {
                super::say(&format!(
                    "{}: {} case(s) ({})",
                    suite.file,
                    suite.cases.len(),
                    suite.name
                ));
            }
            super::say(&format!(
                "valid: {} file(s), {} case(s)",
                plan.suites.len(),
                plan.len()
            ));
            exit::PASSED
        }
        Err(code) => code,
    }
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
        sandbox_target: true,
        vars: args.vars.clone(),
        timeout: args.timeout,
    };
    let plan = match load(&args.paths, &options) {
        Ok(plan) => Arc::new(plan),
        Err(code) => return code,
    };
    if plan.is_empty() {
        return fail(exit::INVALID, "the scenario files hold no cases");
    }
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
