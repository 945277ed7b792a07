//! What a run runs against, from `--target`: the embedded sandbox (optionally calling back a
//! publisher's endpoint), a URL speaking the sandbox API, or a named target of `pitcrew.yaml`;
//! and, once started, the platform and the way its callbacks are observed.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::CliError;
use crate::plan::PlanOptions;
use crate::platform::target::Observe;
use crate::platform::{HttpPlatform, Platform, Profile};
use crate::receiver::{self, Receiver, ReceiverConfig};
use crate::run::{RemoteReceiver, TargetClock};
use crate::sandbox::{self, SandboxConfig};

/// A publisher's endpoint that the embedded sandbox calls back instead of pitcrew's receiver.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub header: Option<(String, String)>,
}

/// A shared `pitcrew receive` a run reads callbacks from (`--receiver-url`).
#[derive(Debug, Clone)]
pub struct Remote {
    pub url: String,
    pub token: Option<String>,
}

/// What a run runs against.
pub enum Target {
    /// The embedded sandbox, calling back pitcrew's receiver or a publisher's endpoint.
    Sandbox {
        config: Box<SandboxConfig>,
        endpoint: Option<Endpoint>,
    },
    /// Anything speaking the sandbox API at this base URL; callbacks read from its log, or
    /// from a shared receiver.
    Url { url: String, remote: Option<Remote> },
    /// A target of `pitcrew.yaml`.
    Named(Box<crate::platform::target::Target>),
}

/// How a started target's callbacks are seen.
pub enum Observed {
    Receiver(Arc<Receiver>),
    Log,
    Remote(Arc<RemoteReceiver>),
}

/// A target, up and answering.
pub struct Started {
    pub platform: Arc<HttpPlatform>,
    pub observed: Observed,
    /// How reports name the target.
    pub label: String,
    pub clock: TargetClock,
}

/// The `--target`, `--endpoint`, `--receiver-url` and `--sandbox-config` a command was given.
pub struct TargetArgs<'a> {
    pub target: &'a str,
    pub endpoint: Option<Endpoint>,
    pub receiver_url: Option<&'a str>,
    pub sandbox_config: Option<&'a std::path::Path>,
    /// `--secret K=V`, read as `{{env.K}}` in pitcrew.yaml too.
    pub secrets: &'a [(String, String)],
}

impl Target {
    /// The target the arguments name.
    pub fn parse(args: TargetArgs) -> Result<Target, CliError> {
        let remote = args.receiver_url.map(|url| Remote {
            url: url.trim_end_matches('/').to_string(),
            token: std::env::var("PITCREW_RECEIVER_TOKEN").ok(),
        });
        if let Some(token) = remote.as_ref().and_then(|r| r.token.as_ref()) {
            crate::mask::register(token);
        }
        let only_embedded = [
            (args.sandbox_config.is_some(), "--sandbox-config"),
            (args.endpoint.is_some(), "--endpoint"),
        ];
        if args.target == "sandbox" {
            if remote.is_some() {
                return Err(CliError::Usage(
                    "--receiver-url: the embedded sandbox calls back pitcrew's own receiver; give --target a URL or a pitcrew.yaml target".into(),
                ));
            }
            let config = super::sandbox_config(args.sandbox_config)?;
            return Ok(Target::Sandbox {
                config: Box::new(config),
                endpoint: args.endpoint,
            });
        }
        if let Some((_, flag)) = only_embedded.iter().find(|(given, _)| *given) {
            return Err(CliError::Usage(format!(
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
                ..sandbox_plan_options()
            },
            Target::Url { remote, .. } => PlanOptions {
                no_scripts: remote.is_none().then(|| log.to_string()),
                ..sandbox_plan_options()
            },
            Target::Named(t) => {
                let p = &t.profile;
                let missing = [
                    ("click", p.click.is_none()),
                    ("conversion", p.conversion.is_none()),
                    ("resend", p.resend.is_none()),
                    ("change_status", p.change_status.is_none()),
                ];
                PlanOptions {
                    default_offer: p.default_offer.clone(),
                    sandbox_faults: false,
                    no_scripts: matches!(t.observe, Observe::Log).then(|| log.to_string()),
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
    pub async fn start(self, shutdown: CancellationToken) -> Result<Started, CliError> {
        match self {
            Target::Sandbox { config, endpoint } => {
                start_sandbox(*config, endpoint, shutdown).await
            }
            Target::Url { url, remote } => {
                let platform = HttpPlatform::new(Profile::sandbox(url.clone()))?;
                let platform = Arc::new(platform.asking_the_sandbox_when_quiet());
                probe(&platform).await?;
                let clock = sandbox_clock(&url).await;
                let observed = observe_remote(remote).await?;
                Ok(Started {
                    platform,
                    observed,
                    label: crate::mask::mask(&url),
                    clock,
                })
            }
            Target::Named(target) => {
                let label = format!(
                    "{} ({})",
                    target.name,
                    crate::mask::mask(&target.profile.base_url)
                );
                let clock = TargetClock {
                    minute: target.profile.minute,
                };
                let correlation = target.profile.correlation.clone();
                let platform = Arc::new(HttpPlatform::new(target.profile)?);
                probe(&platform).await?;
                let observed = match target.observe {
                    Observe::Log => Observed::Log,
                    Observe::Remote { url, token } => {
                        observe_remote(Some(Remote { url, token })).await?
                    }
                    Observe::Receiver { listen, auth } => {
                        let listener = TcpListener::bind(&listen).await.map_err(|e| {
                            CliError::Infrastructure(format!(
                                "cannot start pitcrew's receiver on {listen}: {e}"
                            ))
                        })?;
                        let receiver = Receiver::new(ReceiverConfig {
                            auth: auth.map(|a| vec![a]),
                            correlation,
                            ..ReceiverConfig::default()
                        });
                        receiver::serve(listener, receiver.clone(), shutdown).map_err(|e| {
                            CliError::Infrastructure(format!("cannot start the receiver: {e}"))
                        })?;
                        Observed::Receiver(Arc::new(receiver))
                    }
                };
                Ok(Started {
                    platform,
                    observed,
                    label,
                    clock,
                })
            }
        }
    }
}

/// A target of `pitcrew.yaml` (found from the current directory up), compiled.
pub fn load_named(
    name: &str,
    secrets: &[(String, String)],
) -> Result<crate::platform::target::Target, CliError> {
    let (project, path) = load_project()?;
    let Some(spec) = project.file.targets.get(name) else {
        let names: Vec<&str> = project.file.targets.keys().map(String::as_str).collect();
        let hint = crate::scenario::did_you_mean(name, names.iter().copied())
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return Err(CliError::Usage(format!(
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
        |problems| CliError::Diagnostics {
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
pub fn load_project() -> Result<(crate::project::Project, std::path::PathBuf), CliError> {
    let here = std::env::current_dir()
        .map_err(|e| CliError::Usage(format!("cannot read the current directory: {e}")))?;
    let Some(path) = crate::project::find(&here) else {
        return Err(CliError::Usage(format!(
            "no {} here or in a parent folder: named targets are defined there (`pitcrew init` writes one)",
            crate::project::FILE_NAME
        )));
    };
    let project = crate::project::load(&path).map_err(|e| CliError::Diagnostics {
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

/// How a target answers: reachable and authorized, or why not.
pub async fn reach(platform: &HttpPlatform) -> Result<String, String> {
    let profile = platform.profile();
    if profile.callback_log.is_some() {
        let probe = crate::delivery::Key::Conversion(uuid::Uuid::nil().to_string());
        return match platform.callback_log(&probe).await {
            Ok(_) => Ok("reachable and authorized (callback log read)".into()),
            Err(e) if e.message.contains("unauthorized") => Err(e.to_string()),
            // An answer without the list (a 404 for an unknown id) still proves the way in.
            Err(e) if e.message.starts_with("HTTP ") => {
                Ok(format!("reachable and authorized ({})", e.message))
            }
            Err(e) => Err(format!("unreachable: {e}")),
        };
    }
    let mut request = reqwest::Client::new().get(&profile.base_url);
    for (k, v) in &profile.headers {
        request = request.header(k.as_str(), v.as_str());
    }
    match request.send().await {
        Ok(r) if matches!(r.status().as_u16(), 401 | 403) => Err(format!(
            "unauthorized: {} answered HTTP {} (check the target's token or auth headers)",
            crate::mask::mask(&profile.base_url),
            r.status().as_u16()
        )),
        Ok(r) => Ok(format!(
            "reachable (HTTP {} at base_url)",
            r.status().as_u16()
        )),
        Err(e) => Err(format!("unreachable: {}", crate::error_chain(&e))),
    }
}

async fn probe(platform: &HttpPlatform) -> Result<(), CliError> {
    reach(platform).await.map(drop).map_err(|e| {
        let what = if e.contains("unauthorized") {
            "the target refused pitcrew"
        } else {
            "the target is unreachable"
        };
        CliError::Infrastructure(format!("{what}: {e}"))
    })
}

async fn observe_remote(remote: Option<Remote>) -> Result<Observed, CliError> {
    let Some(remote) = remote else {
        return Ok(Observed::Log);
    };
    let source =
        RemoteReceiver::new(&remote.url, remote.token).map_err(CliError::Infrastructure)?;
    source.check().await.map_err(CliError::Infrastructure)?;
    Ok(Observed::Remote(Arc::new(source)))
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
) -> Result<Started, CliError> {
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
    let quiet = sandbox.clone();
    let mut platform = HttpPlatform::new(profile)?
        .telling_when_quiet(Arc::new(move |deadline| quiet.quiet_until(deadline)));
    // With pitcrew's receiver, nothing reads a judged case's sandbox records again; with
    // `--endpoint`, the late recount reads the sandbox's callback log: keep it.
    if matches!(observed, Observed::Receiver(_)) {
        let forgetful = sandbox.clone();
        platform = platform.forgetting(Arc::new(move |click, conversion| {
            forgetful.forget(click, conversion)
        }));
    }
    let platform = Arc::new(platform);
    let label = format!(
        "sandbox ({}, callbacks to {})",
        sandbox.base_url(),
        crate::mask::mask(&callback_url)
    );
    Ok(Started {
        platform,
        observed,
        label,
        clock,
    })
}
