//! Loading scenario files for the commands: `validate`, `list`, and `run`'s first step.

use std::path::PathBuf;

use clap::Args;

use super::{CliError, Outcome, exit, print_diagnostics, say};
use crate::plan::{self, Plan, PlanOptions, Selected, Selection, Shard};
use crate::scenario::matrix::DEFAULT_MAX_CASES;

/// Which files to read, and the settings that shape their cases.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Files or folders of `.yaml` scenarios.
    #[arg(default_value = "scenarios")]
    pub paths: Vec<PathBuf>,
    /// Set a template variable, overriding the files' `vars` (repeatable).
    #[arg(long = "var", value_name = "K=V", value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// The most cases a run may plan in all (matrices expanded).
    #[arg(long, value_name = "N", default_value_t = DEFAULT_MAX_CASES)]
    pub max_cases: usize,
    /// Only these of the files found (how `--watch` runs again the files that changed).
    #[arg(long, value_name = "FILE", hide = true)]
    pub changed: Vec<PathBuf>,
}

/// `--secret K=V` for the commands that read scenario files without running them: templates
/// read it as `{{env.K}}`, and it is masked in what they print.
#[derive(Debug, Clone, Args)]
pub struct SecretArgs {
    /// A secret for templates, read as `{{env.K}}`; its value is masked as `***` in every
    /// output (repeatable).
    #[arg(long = "secret", value_name = "K=V", value_parser = SecretPair)]
    pub secrets: Vec<(String, String)>,
}

/// Which target a run is for: what a file means depends on it (whether `receiver:` scripts,
/// `sandbox:` faults or a step of a profile can be used), so `validate` and `list` take it too.
#[derive(Debug, Clone, Args)]
pub struct TargetChoice {
    /// `sandbox` (the embedded GoKart sandbox, the default); the base URL of anything speaking
    /// the sandbox API, e.g. `http://127.0.0.1:8080/api/v1` (a `pitcrew sandbox`), whose
    /// callbacks are read from its log; or a target named in pitcrew.yaml.
    #[arg(long, default_value = "sandbox")]
    pub target: String,
    /// Read callbacks from a shared `pitcrew receive` at this URL (its API token from
    /// PITCREW_RECEIVER_TOKEN), for a URL or a pitcrew.yaml target.
    #[arg(long, value_name = "URL")]
    pub receiver_url: Option<String>,
    /// The embedded sandbox's tenant (offers, partners, token, time scale) as YAML.
    #[arg(long, value_name = "FILE")]
    pub sandbox_config: Option<PathBuf>,
}

impl TargetChoice {
    /// The plan options of the target, with `secrets` (registered for masking): nothing is
    /// started or reached.
    fn options(&self, secrets: &SecretArgs) -> Result<PlanOptions, CliError> {
        for (_, secret) in &secrets.secrets {
            crate::mask::register(secret);
        }
        let target = crate::launch::Target::parse(crate::launch::TargetArgs {
            target: &self.target,
            endpoint: None,
            receiver_url: self.receiver_url.as_deref(),
            sandbox_config: self.sandbox_config.as_deref(),
            secrets: &secrets.secrets,
        })?;
        Ok(PlanOptions {
            secrets: secrets.secrets.clone(),
            sandbox_config: self.sandbox_config.clone(),
            ..target.plan_options()
        })
    }
}

/// Which of the cases to keep.
#[derive(Debug, Clone, Args)]
pub struct SelectArgs {
    /// Only cases whose name (or suite name) contains TEXT, any case (repeatable: any of them).
    #[arg(long = "filter", value_name = "TEXT")]
    pub filters: Vec<String>,
    /// Only cases tagged T, in the case or its file (repeatable: any of them); `!T` leaves out
    /// cases tagged T.
    #[arg(long = "tag", value_name = "T")]
    pub tags: Vec<String>,
    /// Only the K-th of N equal shares of the selected cases, e.g. `2/4` on the second of four
    /// CI jobs.
    #[arg(long, value_name = "K/N")]
    pub shard: Option<Shard>,
}

impl SelectArgs {
    pub fn selection(&self) -> Selection {
        Selection {
            filters: self.filters.clone(),
            tags: self.tags.clone(),
            shard: self.shard,
        }
    }
}

/// `NAME=SECRET` for the options that carry a secret (`--secret`, `--endpoint-header`,
/// `--auth-header`): as [`parse_var`], but a malformed one is refused without being repeated,
/// as clap would otherwise repeat it, and so is a secret too short to mask
/// ([`crate::mask::too_short`]).
#[derive(Debug, Clone, Copy)]
pub struct SecretPair;

impl clap::builder::TypedValueParser for SecretPair {
    type Value = (String, String);

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        let pair = parse_var(&value.to_string_lossy()).and_then(|(k, v)| {
            match crate::mask::too_short(&v) {
                Some(why) => Err(format!("`{k}`: {why}")),
                None => Ok((k, v)),
            }
        });
        pair.map_err(|e| {
            let name = arg.map(ToString::to_string).unwrap_or_default();
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("a value for '{name}' is not valid: {e}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// `k=v` for `--var`.
pub fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        // The text is not repeated: it may be a secret given without its name.
        _ => Err("expected K=V (a name, `=`, then the value)".to_string()),
    }
}

/// Reads, checks and expands the files; prints the diagnostics (warnings too).
pub fn load(args: &LoadArgs, mut options: PlanOptions) -> Result<Plan, CliError> {
    options.vars = args.vars.clone();
    options.max_cases = args.max_cases;
    let found = crate::scenario::files::discover(&args.paths)?;
    for note in &found.notes {
        eprintln!("note: {}", crate::report::style::visible(note));
    }
    let mut files = found.files;
    if !args.changed.is_empty() {
        let real = |p: &std::path::Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.into());
        let changed: Vec<PathBuf> = args.changed.iter().map(|p| real(p)).collect();
        files.retain(|f| changed.contains(&real(f)));
    }
    if files.is_empty() {
        let shown: Vec<String> = args.paths.iter().map(|p| p.display().to_string()).collect();
        return Err(CliError::Usage(format!(
            "no .yaml scenario files in {}",
            shown.join(", ")
        )));
    }
    match plan::build(&files, &options) {
        Ok(plan) => {
            print_diagnostics(&plan.warnings);
            Ok(plan)
        }
        Err(problems) => {
            let errors = problems.iter().filter(|p| p.is_error()).count();
            Err(CliError::Diagnostics {
                problems,
                summary: format!("{errors} error(s) in scenario files; nothing was run"),
            })
        }
    }
}

/// What the plan's selection kept (the plan was built with it: selection comes first);
/// selecting nothing with filters or tags is an error (a mistyped filter must not pass as a
/// green run), an empty shard is not.
pub fn select(plan: &Plan, args: &SelectArgs) -> Result<Selected, CliError> {
    let selected = plan.selected;
    if selected.matched == 0 && args.selection().narrows() {
        let mut asked = Vec::new();
        asked.extend(args.filters.iter().map(|f| format!("--filter {f:?}")));
        asked.extend(args.tags.iter().map(|t| format!("--tag {t:?}")));
        return Err(CliError::Usage(format!(
            "no case matches {} (of {} case(s)); `pitcrew list` shows them all",
            asked.join(" "),
            selected.total
        )));
    }
    Ok(selected)
}

/// `pitcrew validate`: load and expand for the target, print the files and their case counts.
pub fn validate(args: &LoadArgs, target: &TargetChoice, secrets: &SecretArgs) -> Outcome {
    let plan = load(args, target.options(secrets)?)?;
    for suite in &plan.suites {
        say(&format!(
            "{}: {} case(s) ({})",
            suite.file,
            suite.cases.len(),
            suite.name
        ));
    }
    let warnings = match plan.warnings.len() {
        0 => String::new(),
        n => format!(", {n} warning(s)"),
    };
    say(&format!(
        "valid: {} file(s), {} case(s){warnings}",
        plan.suites.len(),
        plan.len()
    ));
    Ok(exit::PASSED)
}

/// `pitcrew list`: the expanded case names with where they are written, after selection.
pub fn list(
    load_args: &LoadArgs,
    select_args: &SelectArgs,
    target: &TargetChoice,
    secrets: &SecretArgs,
) -> Outcome {
    let options = PlanOptions {
        selection: select_args.selection(),
        ..target.options(secrets)?
    };
    let plan = load(load_args, options)?;
    let selected = select(&plan, select_args)?;
    for case in plan.cases() {
        say(&format!(
            "{}:{}  {} › {}",
            case.file, case.line, case.suite, case.name
        ));
    }
    let shard = select_args
        .shard
        .map(|s| format!(" in shard {s}"))
        .unwrap_or_default();
    eprintln!(
        "{} case(s){shard}, of {} selected and {} in all",
        selected.kept, selected.matched, selected.total
    );
    Ok(exit::PASSED)
}
