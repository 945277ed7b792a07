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

/// What to fix when a check fails, by check (case) name: docs/endpoints.md says more.
pub const ADVICE: &[(&str, &str)] = &[
    (
        "a valid callback is accepted with a 2xx, in time",
        "answer a schema v1 callback 200-299 within 10 s: parse the JSON body, answer before slow work (queue it), and give GoKart the final URL (it follows no redirect)",
    ),
    (
        "the same delivery twice gets the same answer",
        "make the handler idempotent: when you already have this callback `id`, answer 2xx again; never 500, which GoKart retries",
    ),
    (
        "a reversal (Success then Rejected) is accepted",
        "update the record of a `conversion.conversionId` you already know to its new `conversion.status` (take the reward back when Rejected) instead of refusing it",
    ),
    (
        "an approval (Pending then Success) is accepted",
        "do not reward on Pending; on the second callback, find the conversion by its `conversionId` and reward then",
    ),
    (
        "a callback without the auth header is refused with 401 or 403",
        "check the header on every request and answer 401 or 403 when it is missing: not 200 (anyone can post to your endpoint), not 500 (GoKart retries it)",
    ),
    (
        "a callback with a wrong secret is refused with 401 or 403",
        "compare the secret in full (in constant time) and answer 401 or 403 when it is wrong: not 200 (anyone can post to your endpoint), not 500 (GoKart retries it)",
    ),
    (
        "a legacy PascalCase payload is accepted",
        "read the PascalCase spelling too (`Id`, `Conversion.ConversionId`, …), or ask GoKart which one your account sends",
    ),
    (
        "a large payload is accepted",
        "raise your server's or proxy's request body limit: this body is about 12 KB (a 413 says the limit is lower)",
    ),
    (
        "a unicode payload is accepted",
        "read the body as UTF-8 JSON, and escape values before they go into SQL or HTML",
    ),
];

/// The endpoint must answer something (any HTTP status) before the suite runs: an unreachable
/// one is one clear error, not every check failing after its wait.
async fn reach(url: &str) -> Result<(), CliError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .map_err(|e| CliError::Infrastructure(format!("cannot make an HTTP client: {e}")))?;
    match client.head(url).send().await {
        Ok(_) => Ok(()),
        // Something listens, and takes its time over a HEAD: the checks will tell.
        Err(e) if e.is_timeout() => Ok(()),
        Err(e) => Err(CliError::Infrastructure(format!(
            "your endpoint {url} is unreachable from here: {}; nothing was checked (is it running, and is the URL right?)",
            crate::error_chain(&e).replace(&format!(" for url ({url})"), "")
        ))),
    }
}

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
    let (runtime, signals) = super::runtime_and_signals()?;
    runtime.block_on(reach(&args.url))?;
    execute(
        plan,
        target,
        &args.report,
        (None, Some(ADVICE)),
        (runtime, signals),
    )
}

#[cfg(test)]
mod tests {
    /// Every check of the suite says what to fix, and no advice names a check that is gone.
    #[test]
    fn every_check_has_its_advice() {
        let sources: Vec<crate::scenario::SourceFile> = super::SUITE
            .iter()
            .map(|(path, text)| crate::scenario::SourceFile::new(path, *text))
            .collect();
        let options = crate::plan::PlanOptions {
            no_scripts: Some("x".into()),
            ..crate::launch::sandbox_plan_options()
        };
        let plan = crate::plan::build_sources(&sources, &options).unwrap();
        let mut names: Vec<&str> = plan.cases().map(|c| &*c.name).collect();
        let mut advised: Vec<&str> = super::ADVICE.iter().map(|(n, _)| *n).collect();
        names.sort();
        advised.sort();
        assert_eq!(names, advised);
    }
}
