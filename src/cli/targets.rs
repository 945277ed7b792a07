//! `pitcrew targets`: every target of pitcrew.yaml, checked: does it load, does it answer, does
//! it take pitcrew's credentials (a 401 says "unauthorized", not "unreachable").

use clap::Args;

use super::scenarios::SecretPair;
use super::{Outcome, exit, print_diagnostics, say};
use crate::platform::HttpPlatform;
use crate::platform::target::Observe;

#[derive(Debug, Args)]
pub struct TargetsArgs {
    /// A secret the targets read as `{{env.K}}` (repeatable; masked in every output).
    #[arg(long = "secret", value_name = "K=V", value_parser = SecretPair)]
    pub secrets: Vec<(String, String)>,
}

/// `pitcrew targets`: exit 0 when every target loads, answers and authorizes pitcrew, else 1.
pub fn targets(args: TargetsArgs) -> Outcome {
    for (_, secret) in &args.secrets {
        crate::mask::register(secret);
    }
    let (project, path) = crate::launch::load_project()?;
    say(&format!("targets of {}:", path.display()));
    let runtime = super::runtime()?;
    let mut all_good = true;
    say("  sandbox  (built in: the embedded GoKart sandbox)");
    for (name, spec) in &project.file.targets {
        let target =
            match crate::platform::target::compile(name, spec, &project.source, &args.secrets) {
                Ok(t) => t,
                Err(problems) => {
                    print_diagnostics(&problems);
                    say(&format!(
                        "  {name}  ✗ invalid: {} problem(s) above",
                        problems.len()
                    ));
                    all_good = false;
                    continue;
                }
            };
        for secret in &target.secrets {
            crate::mask::register(secret);
        }
        let p = &target.profile;
        let steps: Vec<&str> = [
            ("click", p.click.is_some()),
            ("conversion", p.conversion.is_some()),
            ("resend", p.resend.is_some()),
            ("change_status", p.change_status.is_some()),
            ("callback_log", p.callback_log.is_some()),
        ]
        .into_iter()
        .filter(|(_, has)| *has)
        .map(|(s, _)| s)
        .collect();
        let via = match &target.observe {
            Observe::Log => "the platform's callback log".to_string(),
            Observe::Receiver { listen, .. } => format!("pitcrew's receiver on {listen}"),
            Observe::Remote { url, .. } => format!("the receiver at {}", crate::mask::mask(url)),
        };
        say(&crate::mask::mask(&format!(
            "  {name}  {}\n      steps: {}; callbacks via {via}",
            p.base_url,
            steps.join(", ")
        )));
        let probes = runtime.block_on(probe(&target));
        for probe in probes {
            all_good &= !matches!(probe, Probe::Bad(_));
            say(&crate::mask::mask(&probe.line()));
        }
    }
    Ok(if all_good { exit::PASSED } else { exit::FAILED })
}

/// What one check of a target found.
enum Probe {
    Good(String),
    Bad(String),
    /// What pitcrew could not check, and why.
    Unchecked(String),
}

impl Probe {
    fn line(&self) -> String {
        match self {
            Probe::Good(what) => format!("      ✓ {what}"),
            Probe::Bad(what) => format!("      ✗ {what}"),
            Probe::Unchecked(what) => format!("      ? {what}"),
        }
    }
}

/// Every check `pitcrew targets` can make of a target without changing anything on it: the
/// API's reachability and credentials, its callback log, and where callbacks are taken.
async fn probe(target: &crate::platform::target::Target) -> Vec<Probe> {
    use crate::platform::{Platform, PlatformErrorKind};
    let mut probes = Vec::new();
    let platform = match HttpPlatform::new(target.profile.clone()) {
        Ok(p) => p,
        Err(e) => return vec![Probe::Bad(e.to_string())],
    };
    let failed = |e: crate::platform::PlatformError| match e.kind {
        PlatformErrorKind::Unreachable => Probe::Bad(format!("unreachable: {}", e.message)),
        _ => Probe::Bad(e.message),
    };
    // The callback log, read for a conversion that cannot exist, proves the way in and the
    // credentials; without one (or when it cannot tell), the base URL is asked with the
    // credentials and without.
    let mut proven = false;
    if target.profile.callback_log.is_some() {
        let nil = crate::delivery::Key::Conversion(uuid::Uuid::nil().to_string());
        probes.push(match platform.callback_log(&nil).await {
            Ok(entries) => {
                proven = true;
                Probe::Good(format!(
                    "callback log read with the target's credentials ({} entries for a conversion that cannot exist)",
                    entries.len()
                ))
            }
            Err(e) if e.kind == PlatformErrorKind::Unreadable => Probe::Unchecked(format!(
                "callback log answered, but not with its list ({}): a platform may answer so for an unknown conversion, or the step's path or `items` may be wrong; a run will tell",
                e.message
            )),
            Err(e) => failed(e),
        });
    }
    if !proven && !matches!(probes.last(), Some(Probe::Bad(_))) {
        match platform.credentials_probe().await {
            Ok((true, how)) => probes.push(Probe::Good(how)),
            Ok((false, how)) => probes.push(Probe::Unchecked(how)),
            Err(e) => probes.push(failed(e)),
        }
    }
    let unprobed: Vec<&str> = [
        ("click", target.profile.click.is_some()),
        ("conversion", target.profile.conversion.is_some()),
        ("resend", target.profile.resend.is_some()),
        ("change_status", target.profile.change_status.is_some()),
    ]
    .into_iter()
    .filter_map(|(s, has)| has.then_some(s))
    .collect();
    if !unprobed.is_empty() {
        probes.push(Probe::Unchecked(format!(
            "not called: {} (each makes a click, a conversion or a callback); a run's first call checks each",
            unprobed.join(", ")
        )));
    }
    match &target.observe {
        Observe::Log => {}
        Observe::Receiver {
            listen,
            auth,
            postback_auth,
        } => {
            probes.push(match tokio::net::TcpListener::bind(listen).await {
                Ok(_) => Probe::Good(format!("pitcrew's receiver can listen on {listen}")),
                Err(e) => Probe::Bad(format!("pitcrew's receiver cannot listen on {listen}: {e}")),
            });
            probes.push(match auth {
                Some(credentials) => Probe::Good(format!(
                    "callbacks must hold: {}",
                    credentials
                        .iter()
                        .map(|c| c.describe())
                        .collect::<Vec<_>>()
                        .join(", or ")
                )),
                None => Probe::Unchecked(
                    "callbacks are taken without credentials (`auth: none`): a forged one would count"
                        .into(),
                ),
            });
            if let Some(credentials) = postback_auth {
                let held: Vec<String> = credentials.iter().map(|c| c.describe()).collect();
                probes.push(Probe::Good(format!(
                    "partner postbacks (/postbacks/…) must hold: {}",
                    held.join(", or ")
                )));
            }
        }
        Observe::Remote { url, token } => {
            let remote = crate::run::source::RemoteReceiver::new(url, token.clone());
            probes.push(match remote {
                Ok(remote) => match remote.check().await {
                    Ok(()) => {
                        Probe::Good(format!("the receiver at {url} answers and takes the token"))
                    }
                    Err(e) => Probe::Bad(e.to_string()),
                },
                Err(e) => Probe::Bad(e.to_string()),
            });
        }
    }
    probes
}
