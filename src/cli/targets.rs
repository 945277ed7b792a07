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
        let answer = match HttpPlatform::new(target.profile.clone()) {
            Ok(platform) => runtime
                .block_on(platform.reach())
                .map_err(|e| match e.kind {
                    crate::platform::PlatformErrorKind::Unreachable => {
                        format!("unreachable: {}", e.message)
                    }
                    _ => e.message,
                }),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(how) => say(&format!("      ✓ {}", crate::mask::mask(&how))),
            Err(why) => {
                all_good = false;
                say(&format!("      ✗ {}", crate::mask::mask(&why)));
            }
        }
    }
    Ok(if all_good { exit::PASSED } else { exit::FAILED })
}
