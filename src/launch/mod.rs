//! The wiring of a run, as the library does it for the command line and the tests alike:
//! resolve `--target` (the embedded sandbox, optionally calling back a publisher's endpoint; a
//! URL speaking the sandbox API; or a named target of `pitcrew.yaml`), start what runs in this
//! process (the embedded sandbox and pitcrew's receiver), check that the target answers and
//! takes pitcrew's credentials, and hand the runner its platform, callback source and outbox.

mod embedded;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::plan::{Plan, PlanOptions};
use crate::platform::outbox::{SandboxApi, Silent};
use crate::platform::target::Observe;
use crate::platform::{HttpPlatform, Outbox, PlatformErrorKind, Profile};
use crate::receiver::{self, Receiver, ReceiverConfig};
use crate::run::{
    self as runner, CallbackLog, CallbackSource, Event, Interrupt, RemoteReceiver, RunOptions,
    TargetClock, Wiring,
};
use crate::sandbox::{self, SandboxConfig};
use crate::scenario::ScenarioDiagnostic;

/// Why a target could not be resolved or started.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// A file that describes the target does not load: the diagnostics say where.
    #[error("{summary}")]
    Diagnostics {
        problems: Vec<ScenarioDiagnostic>,
        summary: String,
    },
    /// The options cannot work together, or name what does not exist (nothing ran).
    #[error("{0}")]
    Usage(String),
    /// The target is unreachable or refuses pitcrew, or a port is taken.
    #[error("{0}")]
    Infrastructure(String),
}

impl LaunchError {
    /// A shared receiver that cannot be used: the run cannot start.
    fn from_source(e: crate::run::source::SourceError) -> LaunchError {
        LaunchError::Infrastructure(e.to_string())
    }
}

impl From<crate::platform::PlatformError> for LaunchError {
    fn from(e: crate::platform::PlatformError) -> Self {
        LaunchError::Infrastructure(e.to_string())
    }
}

/// A publisher's endpoint that the embedded sandbox calls back instead of pitcrew's receiver.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Where the callbacks go.
    pub url: String,
    /// The header and secret sent with each (`--endpoint-header`).
    pub header: Option<(String, String)>,
}

/// A shared `pitcrew receive` a run reads callbacks from (`--receiver-url`).
#[derive(Debug, Clone)]
pub struct Remote {
    /// Its base URL.
    pub url: String,
    /// Its API token (`PITCREW_RECEIVER_TOKEN`).
    pub token: Option<String>,
}

/// What a run runs against.
pub enum Target {
    /// The embedded sandbox, calling back pitcrew's receiver or a publisher's endpoint.
    Sandbox {
        /// The tenant it emulates.
        config: Box<SandboxConfig>,
        /// The publisher's endpoint it calls back instead of pitcrew's receiver.
        endpoint: Option<Endpoint>,
    },
    /// Anything speaking the sandbox API at this base URL; callbacks read from its log, or
    /// from a shared receiver.
    Url {
        /// Its API's base URL.
        url: String,
        /// The shared receiver its callbacks go to, when they do.
        remote: Option<Remote>,
    },
    /// A target of `pitcrew.yaml`.
    Named(Box<crate::platform::target::Target>),
}

/// How a started target's callbacks are seen.
pub enum Observed {
    /// pitcrew's receiver, in this process.
    Receiver(Arc<Receiver>),
    /// The platform's callback log.
    Log,
    /// A shared `pitcrew receive`.
    Remote(Arc<RemoteReceiver>),
}

/// A target, up and answering.
pub struct Started {
    /// The pipeline's steps, over HTTP.
    pub platform: Arc<HttpPlatform>,
    /// How its callbacks are seen.
    pub observed: Observed,
    /// What the target can tell of what it still has to send.
    pub outbox: Arc<dyn Outbox>,
    /// How reports name the target.
    pub label: String,
    /// How long a platform minute lasts on it.
    pub clock: TargetClock,
    /// Where the platform posts callbacks, when pitcrew's receiver in this process takes them.
    pub callback_url: Option<String>,
}

impl Started {
    /// Runs `plan` on the target (`options.target` and `options.clock` are best its `label` and
    /// `clock`), sending events to `events`, and returns when the run has finished.
    pub async fn run(
        self,
        plan: Plan,
        options: RunOptions,
        interrupt: Interrupt,
        events: mpsc::UnboundedSender<Event>,
    ) {
        let (platform, outbox) = (self.platform, self.outbox);
        match self.observed {
            Observed::Receiver(source) => {
                let wiring = wiring(platform, source, outbox);
                runner::run(plan, wiring, options, interrupt, events).await
            }
            Observed::Remote(source) => {
                let wiring = wiring(platform, source, outbox);
                runner::run(plan, wiring, options, interrupt, events).await
            }
            Observed::Log => {
                let source = Arc::new(CallbackLog::new(platform.clone()));
                let wiring = wiring(platform, source, outbox);
                runner::run(plan, wiring, options, interrupt, events).await
            }
        }
    }
}

fn wiring<S: CallbackSource>(
    platform: Arc<HttpPlatform>,
    source: Arc<S>,
    outbox: Arc<dyn Outbox>,
) -> Wiring<HttpPlatform, S> {
    Wiring {
        platform,
        source,
        outbox,
    }
}

/// The `--target`, `--endpoint`, `--receiver-url` and `--sandbox-config` a command was given.
pub struct TargetArgs<'a> {
    /// `--target`: `sandbox`, a URL, or a name of pitcrew.yaml.
    pub target: &'a str,
    /// `--endpoint` (with `--endpoint-header`).
    pub endpoint: Option<Endpoint>,
    /// `--receiver-url`.
    pub receiver_url: Option<&'a str>,
    /// `--sandbox-config`.
    pub sandbox_config: Option<&'a std::path::Path>,
    /// `--secret K=V`, read as `{{env.K}}` in pitcrew.yaml too.
    pub secrets: &'a [(String, String)],
}

impl Target {
    /// The target the arguments name.
    pub fn parse(args: TargetArgs) -> Result<Target, LaunchError> {
        let remote = args.receiver_url.map(|url| Remote {
            url: url.trim_end_matches('/').to_string(),
            token: std::env::var("PITCREW_RECEIVER_TOKEN").ok(),
        });
        if let Some(token) = remote.as_ref().and_then(|r| r.token.as_ref()) {
            if let Some(why) = crate::mask::too_short(token) {
                return Err(LaunchError::Usage(format!("PITCREW_RECEIVER_TOKEN: {why}")));
            }
            crate::mask::register(token);
        }
        let only_embedded = [
            (args.sandbox_config.is_some(), "--sandbox-config"),
            (args.endpoint.is_some(), "--endpoint"),
        ];
        if args.target == "sandbox" {
            if remote.is_some() {
                return Err(LaunchError::Usage(
                    "--receiver-url: the embedded sandbox calls back pitcrew's own receiver; give --target a URL or a pitcrew.yaml target".into(),
                ));
            }
            let config = sandbox_config(args.sandbox_config)?;
            return Ok(Target::Sandbox {
                config: Box::new(config),
                endpoint: args.endpoint,
            });
        }
        if let Some((_, flag)) = only_embedded.iter().find(|(given, _)| *given) {
            return Err(LaunchError::Usage(format!(
                "{flag} configures the embedded sandbox; it cannot apply to --target {}",
                crate::mask::mask(args.target)
            )));
        }
        if args.target.starts_with("http://") || args.target.starts_with("https://") {
            return Ok(Target::Url {
                url: args.target.trim_end_matches('/').to_string(),
                remote,
            });
        }
        let mut named = load_named(args.target, args.secrets)?;
        if let Some(remote) = remote {
            named.observe = Observe::Remote {
                url: remote.url,
                token: remote.token,
            };
        }
        Ok(Target::Named(Box::new(named)))
    }

    /// What the plan may use on this target.
    pub fn plan_options(&self) -> PlanOptions {
        let log = "this target calls back its own endpoint, and pitcrew reads its log";
        match self {
            Target::Sandbox { endpoint, .. } => PlanOptions {
                no_scripts: endpoint
                    .as_ref()
                    .map(|_| "your endpoint (--endpoint) answers this run's callbacks".into()),
                no_callback_headers: endpoint.as_ref().map(|_| {
                    "with --endpoint they are read from the sandbox's delivery log, which keeps no request headers".into()
                }),
                ..sandbox_plan_options()
            },
            Target::Url { remote, .. } => PlanOptions {
                no_scripts: remote.is_none().then(|| log.to_string()),
                no_callback_headers: remote.is_none().then(|| {
                    "this target's callbacks are read from its delivery log, which keeps no request headers (--receiver-url reads them from a receiver)".into()
                }),
                ..sandbox_plan_options()
            },
            Target::Named(t) => {
                let p = &t.profile;
                let missing = [
                    ("click", p.click.is_none()),
                    ("conversion", p.conversion.is_none()),
                    ("resend", p.resend.is_none()),
                    ("change_status", p.change_status.is_none()),
                    ("link", p.link.is_none()),
                    ("postback", p.postback.is_none()),
                ];
                PlanOptions {
                    default_offer: p.default_offer.clone(),
                    sandbox_faults: false,
                    no_scripts: matches!(t.observe, Observe::Log).then(|| log.to_string()),
                    no_click_log: p
                        .callback_log
                        .as_ref()
                        .filter(|_| matches!(t.observe, Observe::Log))
                        .filter(|l| {
                            crate::platform::profile::placeholders(&l.request.path)
                                .iter()
                                .any(|n| n == "conversion")
                        })
                        .map(|_| {
                            "this target's callback log is read with `{{conversion}}` in its path (`steps.callback_log`), and a refused conversion has none".into()
                        }),
                    no_postbacks: (matches!(t.observe, Observe::Log)
                        && p.callback_log.as_ref().is_some_and(|l| l.postback_url.is_none()))
                    .then(|| {
                        "this target's deliveries are read from its log, and its profile does not say where the log keeps a postback's URL (`steps.callback_log.postback_url`)".into()
                    }),
                    no_callback_headers: (matches!(t.observe, Observe::Log)
                        && p.callback_log.as_ref().is_some_and(|l| l.headers.is_none()))
                    .then(|| {
                        "this target's callbacks are read from its log, and its profile does not say where the log keeps their headers (`steps.callback_log.headers`)".into()
                    }),
                    missing_steps: missing
                        .into_iter()
                        .filter(|(_, gone)| *gone)
                        .map(|(s, _)| s)
                        .collect(),
                    target_name: t.name.clone(),
                    ..PlanOptions::default()
                }
            }
        }
    }

    /// Starts (or reaches) the target: it must answer before any case runs.
    /// `rate`: `--rate`, over the target's own.
    pub async fn start(
        self,
        shutdown: CancellationToken,
        rate: Option<crate::platform::pace::Rate>,
    ) -> Result<Started, LaunchError> {
        match self {
            Target::Sandbox { config, endpoint } => {
                embedded::start(*config, endpoint, shutdown, rate).await
            }
            Target::Url { url, remote } => {
                let profile = Profile {
                    rate,
                    ..Profile::sandbox(url.clone())
                };
                let platform = Arc::new(HttpPlatform::new(profile)?);
                probe(&platform).await?;
                let outbox = SandboxApi::new(&url, platform.profile().headers.clone());
                // A `pitcrew sandbox` says how long its minute lasts; anything else runs on real
                // time.
                let minute = outbox.minute().await;
                Ok(Started {
                    clock: minute
                        .map_or_else(TargetClock::default, |minute| TargetClock { minute }),
                    observed: observe_remote(remote).await?,
                    label: crate::mask::mask(&url),
                    outbox: Arc::new(outbox),
                    platform,
                    callback_url: None,
                })
            }
            Target::Named(mut target) => {
                target.profile.rate = rate.or(target.profile.rate);
                start_named(*target, shutdown).await
            }
        }
    }
}

/// A target of `pitcrew.yaml`: its platform, probed, and how its callbacks are seen.
async fn start_named(
    target: crate::platform::target::Target,
    shutdown: CancellationToken,
) -> Result<Started, LaunchError> {
    let label = format!(
        "{} ({})",
        target.name,
        crate::mask::mask(&target.profile.base_url)
    );
    let clock = TargetClock {
        minute: target.profile.minute,
    };
    let correlation = target.profile.correlation.clone();
    let format = target.profile.callback_format;
    let platform = Arc::new(HttpPlatform::new(target.profile)?);
    probe(&platform).await?;
    let (observed, callback_url) = match target.observe {
        Observe::Log => (Observed::Log, None),
        Observe::Remote { url, token } => {
            (observe_remote(Some(Remote { url, token })).await?, None)
        }
        Observe::Receiver {
            listen,
            auth,
            postback_auth,
        } => {
            let listener = TcpListener::bind(&listen).await.map_err(|e| {
                LaunchError::Infrastructure(format!(
                    "cannot start pitcrew's receiver on {listen}: {e}"
                ))
            })?;
            if auth.is_none() {
                eprintln!(
                    "warning: target `{}` says `auth: none`: pitcrew's receiver on {listen} takes any callback, and a forged one that names a case's ids counts as the platform's",
                    target.name
                );
            }
            let receiver = Receiver::new(ReceiverConfig {
                auth,
                postback_auth,
                correlation,
                format,
                ..ReceiverConfig::default()
            });
            let handle = receiver::serve(listener, receiver.clone(), shutdown).map_err(|e| {
                LaunchError::Infrastructure(format!("cannot start the receiver: {e}"))
            })?;
            (
                Observed::Receiver(Arc::new(receiver)),
                Some(handle.callback_url()),
            )
        }
    };
    Ok(Started {
        platform,
        observed,
        outbox: Arc::new(Silent),
        label,
        clock,
        callback_url,
    })
}

/// A target of `pitcrew.yaml` (found from the current directory up), compiled.
pub fn load_named(
    name: &str,
    secrets: &[(String, String)],
) -> Result<crate::platform::target::Target, LaunchError> {
    let (project, path) = load_project()?;
    let Some(spec) = project.file.targets.get(name) else {
        let names: Vec<&str> = project.file.targets.keys().map(String::as_str).collect();
        let hint = crate::scenario::did_you_mean(name, names.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(LaunchError::Usage(format!(
            "--target `{name}` is not `sandbox`, a URL, or a target of {}{hint}; its targets: {}",
            path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        )));
    };
    let target = crate::platform::target::compile(name, spec, &project.source, secrets).map_err(
        |problems| LaunchError::Diagnostics {
            summary: format!("target `{name}` in {} is not valid", path.display()),
            problems,
        },
    )?;
    for secret in &target.secrets {
        crate::mask::register(secret);
    }
    Ok(target)
}

/// `pitcrew.yaml`, from the current directory or its nearest parent.
pub fn load_project() -> Result<(crate::project::Project, std::path::PathBuf), LaunchError> {
    let here = std::env::current_dir()
        .map_err(|e| LaunchError::Usage(format!("cannot read the current directory: {e}")))?;
    let Some(path) = crate::project::find(&here) else {
        return Err(LaunchError::Usage(format!(
            "no {} here or in a parent folder: named targets are defined there (`pitcrew init` writes one)",
            crate::project::FILE_NAME
        )));
    };
    let project = crate::project::load(&path).map_err(|e| LaunchError::Diagnostics {
        problems: vec![*e],
        summary: format!("{} is not valid", path.display()),
    })?;
    Ok((project, path))
}

/// The plan options of a target that speaks the sandbox API: its default offer, its faults.
pub fn sandbox_plan_options() -> PlanOptions {
    PlanOptions {
        default_offer: Some(sandbox::DEMO_OFFER.to_string()),
        sandbox_faults: true,
        ..PlanOptions::default()
    }
}

/// The target must answer, and take pitcrew's credentials, before any case runs.
async fn probe(platform: &HttpPlatform) -> Result<(), LaunchError> {
    platform.reach().await.map(drop).map_err(|e| {
        let what = if e.kind == PlatformErrorKind::Unauthorized {
            "the target refused pitcrew"
        } else {
            "the target is unreachable"
        };
        LaunchError::Infrastructure(format!("{what}: {}", e.message))
    })
}

/// The embedded sandbox's tenant: the built-in one, or the config file at `path`. Its
/// secrets are masked from here on.
pub fn sandbox_config(path: Option<&std::path::Path>) -> Result<SandboxConfig, LaunchError> {
    let config = match path {
        Some(path) => SandboxConfig::from_file(path).map_err(|e| LaunchError::Diagnostics {
            problems: vec![*e],
            summary: format!("{} is not a valid sandbox config", path.display()),
        })?,
        None => SandboxConfig::default(),
    };
    for secret in config.secrets() {
        crate::mask::register(&secret);
    }
    Ok(config)
}

async fn observe_remote(remote: Option<Remote>) -> Result<Observed, LaunchError> {
    let Some(remote) = remote else {
        return Ok(Observed::Log);
    };
    let source =
        RemoteReceiver::new(&remote.url, remote.token).map_err(LaunchError::from_source)?;
    source.check().await.map_err(LaunchError::from_source)?;
    Ok(Observed::Remote(Arc::new(source)))
}
