//! The command line: `pitcrew run`, `validate`, `list`, `schema`, `targets`, `init`,
//! `sandbox`, `receive`, `report`, `check-endpoint`, `completions`. Every flag is documented where it is defined; `--help` is the reference.

mod check_endpoint;
mod error;
mod init;
mod receive;
mod report;
mod run;
mod sandbox;
mod scenarios;
mod signals;
mod targets;
mod watch;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::report::style::ColorChoice;

pub use error::{CliError, Outcome};

/// Exit codes of DESIGN §6.
pub mod exit {
    /// Every case passed.
    pub const PASSED: u8 = 0;
    /// A case failed or errored.
    pub const FAILED: u8 = 1;
    /// Invalid scenario or usage.
    pub const INVALID: u8 = 2;
    /// Infrastructure broke before any case could run (or a report could not be written
    /// after every case passed).
    pub const INFRASTRUCTURE: u8 = 3;
    /// Interrupted by Ctrl-C or SIGTERM (the reports were still written).
    pub const INTERRUPTED: u8 = 130;
}

/// Test a GoKart-style click → conversion → callback pipeline from YAML scenario files.
#[derive(Debug, Parser)]
#[command(name = "pitcrew", version, about, long_about = None)]
pub struct Cli {
    /// Colour the output: `auto` (on a terminal, unless NO_COLOR is set; CLICOLOR_FORCE
    /// forces it), `always` or `never`.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenario files and report (exit 0 all passed, 1 a case failed or errored, 2 invalid
    /// input, 3 infrastructure error before any case ran, 130 interrupted).
    Run(run::RunArgs),
    /// Check scenario files without running anything; print the files and their case counts
    /// (exit 0 valid, 2 invalid).
    Validate {
        #[command(flatten)]
        load: scenarios::LoadArgs,
        #[command(flatten)]
        target: scenarios::TargetChoice,
        #[command(flatten)]
        secrets: scenarios::SecretArgs,
    },
    /// Print the expanded case names with file:line, after --filter, --tag and --shard.
    List {
        #[command(flatten)]
        load: scenarios::LoadArgs,
        #[command(flatten)]
        select: scenarios::SelectArgs,
        #[command(flatten)]
        target: scenarios::TargetChoice,
        #[command(flatten)]
        secrets: scenarios::SecretArgs,
    },
    /// Print the JSON Schema (draft-07) of scenario files, for editors.
    Schema {
        /// The schema of `--sandbox-config` files instead.
        #[arg(long, conflicts_with = "project")]
        sandbox_config: bool,
        /// The schema of the project file, `pitcrew.yaml`, instead.
        #[arg(long)]
        project: bool,
    },
    /// List the targets of pitcrew.yaml and check that each answers and takes pitcrew's
    /// credentials (exit 0 all good, 1 not).
    Targets(targets::TargetsArgs),
    /// Start a project: a commented example scenario, the schema, and pitcrew.yaml.
    Init(init::InitArgs),
    /// Serve the GoKart sandbox standalone.
    Sandbox(sandbox::SandboxArgs),
    /// Serve the callback receiver as a service many runs share: the callback endpoint, an API
    /// behind a token, an optional SQLite store.
    Receive(receive::ReceiveArgs),
    /// Work on saved reports: merge shards, compare two runs, render HTML, trend over many runs.
    #[command(subcommand)]
    Report(report::ReportCommand),
    /// Put your callback endpoint through the conformance suite: acceptance, duplicates,
    /// status changes, auth, legacy, large and unicode payloads, answer time (exit 0 or 1).
    CheckEndpoint(check_endpoint::CheckEndpointArgs),
    /// Print shell completions.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
}

/// Parses the command line and runs it; returns the process exit code. Errors are printed
/// here, once.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::report::style::set_choice(cli.color);
    let outcome = match cli.command {
        Command::Run(args) if args.watch => watch::watch(args),
        Command::Run(args) => run::run(args),
        Command::Validate {
            load,
            target,
            secrets,
        } => scenarios::validate(&load, &target, &secrets),
        Command::List {
            load,
            select,
            target,
            secrets,
        } => scenarios::list(&load, &select, &target, &secrets),
        Command::Schema {
            sandbox_config,
            project,
        } => {
            let text = if sandbox_config {
                sandbox_schema_text()
            } else if project {
                project_schema_text()
            } else {
                schema_text()
            };
            say(text.trim_end());
            Ok(exit::PASSED)
        }
        Command::CheckEndpoint(args) => check_endpoint::check_endpoint(args),
        Command::Receive(args) => receive::receive(args),
        Command::Report(command) => report::report(command),
        Command::Targets(args) => targets::targets(args),
        Command::Init(args) => init::init(&args),
        Command::Sandbox(args) => sandbox::serve(args),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "pitcrew",
                &mut std::io::stdout(),
            );
            Ok(exit::PASSED)
        }
    };
    ExitCode::from(outcome.unwrap_or_else(|e| {
        e.print();
        e.code()
    }))
}

/// A JSON Schema as committed under `schema/`: pretty, with a final newline.
fn schema_file(schema: &schemars::Schema) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The scenario JSON Schema as committed at `schema/scenario.schema.json`.
pub fn schema_text() -> String {
    schema_file(&crate::scenario::model::json_schema())
}

/// The sandbox config JSON Schema as committed at `schema/sandbox-config.schema.json`.
pub fn sandbox_schema_text() -> String {
    schema_file(&crate::sandbox::config::json_schema())
}

/// The project file JSON Schema as committed at `schema/project.schema.json`.
pub fn project_schema_text() -> String {
    schema_file(&crate::project::json_schema())
}

/// Prints scenario diagnostics (errors and warnings) to stderr, each once: a line
/// `error: FILE:LINE:COL: MESSAGE` (what a CI log is searched for), the snippet with the spot
/// underlined, and the help.
pub fn print_diagnostics(problems: &[crate::scenario::ScenarioDiagnostic]) {
    use crate::report::style::visible;
    let coloured = crate::report::style::enabled(std::io::stderr().is_terminal());
    let plain =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor());
    let colour = miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode());
    for problem in problems {
        let render = |handler: &miette::GraphicalReportHandler| {
            let mut out = String::new();
            if handler.render_report(&mut out, problem).is_err() {
                out.clear();
            }
            // miette heads its report with the message, which the first line already gives:
            // the snippet (and the help after it) is what is kept.
            let snippet = out.find("╭─[").and_then(|at| out[..at].rfind('\n'));
            let out = match (snippet, &problem.help) {
                (Some(start), _) => out[start + 1..].to_string(),
                (None, Some(help)) => format!("  help: {help}\n"),
                (None, None) => String::new(),
            };
            let kind = if problem.is_error() {
                "error"
            } else {
                "warning"
            };
            // Messages and snippets can hold values read from the environment or `--secret`.
            let text = format!("{kind}: {}: {}\n{out}", problem.at, problem.message);
            crate::mask::mask(&text)
        };
        let text = render(&plain);
        // A file's control characters are shown, not obeyed (and then without colour, whose
        // own escapes would be shown too).
        let text = match (visible(&text), coloured) {
            (std::borrow::Cow::Owned(shown), _) => shown,
            (std::borrow::Cow::Borrowed(_), true) => render(&colour),
            (std::borrow::Cow::Borrowed(_), false) => text,
        };
        eprintln!("{text}");
    }
}

/// The async runtime.
pub fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Infrastructure(format!("cannot start the async runtime: {e}")))
}

/// The async runtime, and Ctrl-C and SIGTERM caught from now on: for commands that stop on them.
pub fn runtime_and_signals() -> Result<(tokio::runtime::Runtime, signals::Signals), CliError> {
    let runtime = runtime()?;
    let signals = signals::Signals::catch(&runtime);
    Ok((runtime, signals))
}

/// Prints a line to stdout, masked; a closed pipe (`pitcrew … | head`) is not worth a panic.
pub fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let shown = crate::report::style::visible(&crate::mask::mask(text)).into_owned();
    let _ = writeln!(out, "{shown}").and_then(|_| out.flush());
}
