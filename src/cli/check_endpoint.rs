//! `pitcrew check-endpoint URL`: the built-in conformance suite, run against a publisher's
//! callback endpoint through the embedded sandbox. The suite is the scenario files of
//! `checks/endpoint/`, embedded in the binary (also runnable with `pitcrew run`).

use clap::Args;

use super::run::{ReportArgs, execute};
use super::scenarios::SecretPair;
use super::{CliError, Outcome};
use crate::launch::{Endpoint, Target};
use crate::plan::PlanOptions;
use crate::scenario::SourceFile;

#[derive(Debug, Args)]
pub struct CheckEndpointArgs {
    /// Your callback endpoint, e.g. `https://hooks.example.com/gokart` (reachable from here).
    pub url: String,
    /// The header and secret GoKart sends your endpoint, e.g. `X-Api-Token=s3cret` (masked in
    /// every output).
    #[arg(long, value_name = "NAME=SECRET", value_parser = SecretPair)]
    pub endpoint_header: Option<(String, String)>,
    #[command(flatten)]
    pub report: ReportArgs,
}

/// The suite: each file's path in the repository and its text.
pub const SUITE: &[(&str, &str)] = &[
    (
        "checks/endpoint/1-accepts.yaml",
        include_str!("../../checks/endpoint/1-accepts.yaml"),
    ),
    (
        "checks/endpoint/2-duplicates.yaml",
        include_str!("../../checks/endpoint/2-duplicates.yaml"),
    ),
    (
        "checks/endpoint/3-status-changes.yaml",
        include_str!("../../checks/endpoint/3-status-changes.yaml"),
    ),
    (
        "checks/endpoint/4-auth.yaml",
        include_str!("../../checks/endpoint/4-auth.yaml"),
    ),
    (
        "checks/endpoint/5-payloads.yaml",
        include_str!("../../checks/endpoint/5-payloads.yaml"),
    ),
];

/// `pitcrew check-endpoint`.
pub fn check_endpoint(args: CheckEndpointArgs) -> Outcome {
    if !(args.url.starts_with("http://") || args.url.starts_with("https://")) {
        return Err(CliError::Usage(format!(
            "`{}` is not an http(s) URL of your callback endpoint",
            args.url
        )));
    }
    let Some(header) = args.endpoint_header.clone() else {
        return Err(CliError::Usage(
            "give --endpoint-header NAME=SECRET: the header and secret GoKart sends your endpoint (the auth checks need them)".into(),
        ));
    };
    crate::mask::register(&header.1);
    for (_, secret) in &args.report.secrets {
        crate::mask::register(secret);
    }
    let target = Target::Sandbox {
        config: Box::default(),
        endpoint: Some(Endpoint {
            url: args.url.clone(),
            header: Some(header),
        }),
    };
    let sources: Vec<SourceFile> = SUITE
        .iter()
        .map(|(path, text)| SourceFile::new(path, *text))
        .collect();
    let options = PlanOptions {
        timeout: args.report.timeout,
        secrets: args.report.secrets.clone(),
        retries: args.report.retries,
        ..target.plan_options()
    };
    let plan = crate::plan::build_sources(&sources, &options).map_err(|problems| {
        CliError::Diagnostics {
            problems,
            summary: "the built-in suite does not load (a bug; please report it)".into(),
        }
    })?;
    execute(
        plan,
        target,
        &args.report,
        None,
        super::runtime_and_signals()?,
    )
}
