//! The command line's one error type: every way a command can fail, with its exit code. A
//! command returns it; `cli::main` prints it once (masked, with any diagnostics' snippets).

use crate::scenario::ScenarioDiagnostic;

/// What stopped a command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Files that do not load (scenarios, a sandbox config): the diagnostics say where.
    #[error("{summary}")]
    Diagnostics {
        problems: Vec<ScenarioDiagnostic>,
        summary: String,
    },
    /// Usage or input that cannot work (exit 2, nothing ran).
    #[error("{0}")]
    Usage(String),
    /// The infrastructure broke: a target unreachable, a port taken (exit 3).
    #[error("{0}")]
    Infrastructure(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn code(&self) -> u8 {
        match self {
            CliError::Diagnostics { .. } | CliError::Usage(_) => super::exit::INVALID,
            CliError::Infrastructure(_) => super::exit::INFRASTRUCTURE,
        }
    }

    /// Prints the error (and its diagnostics) to stderr, masked.
    pub fn print(&self) {
        if let CliError::Diagnostics { problems, .. } = self {
            super::print_diagnostics(problems);
        }
        let text = crate::mask::mask(&self.to_string());
        eprintln!("error: {}", crate::report::style::visible(&text));
    }
}

impl From<crate::scenario::files::FilesError> for CliError {
    fn from(e: crate::scenario::files::FilesError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<crate::launch::LaunchError> for CliError {
    fn from(e: crate::launch::LaunchError) -> Self {
        use crate::launch::LaunchError;
        match e {
            LaunchError::Diagnostics { problems, summary } => {
                CliError::Diagnostics { problems, summary }
            }
            LaunchError::Usage(text) => CliError::Usage(text),
            LaunchError::Infrastructure(text) => CliError::Infrastructure(text),
        }
    }
}

impl From<crate::report::ReportError> for CliError {
    fn from(e: crate::report::ReportError) -> Self {
        CliError::Usage(e.to_string())
    }
}

impl From<crate::platform::PlatformError> for CliError {
    fn from(e: crate::platform::PlatformError) -> Self {
        CliError::Infrastructure(e.to_string())
    }
}

/// A command's result: the exit code of what it did, or why it could not.
pub type Outcome = Result<u8, CliError>;
