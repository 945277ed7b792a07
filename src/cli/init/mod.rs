//! `pitcrew init`: a commented example scenario, the schema editors read, and pitcrew.yaml.

use std::path::{Path, PathBuf};

use clap::Args;

use super::{CliError, Outcome, exit, say};

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The project folder to write into.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
}

const EXAMPLE: &str = include_str!("example.yaml");
const PROJECT: &str = include_str!("pitcrew.yaml");

/// The files `init` writes, relative to the project folder.
fn files() -> Vec<(&'static str, String)> {
    vec![
        ("pitcrew.yaml", PROJECT.to_string()),
        ("scenarios/example.yaml", EXAMPLE.to_string()),
        ("schema/scenario.schema.json", super::schema_text()),
        ("schema/project.schema.json", super::project_schema_text()),
        // For a sandbox config (`--sandbox-config`) the editor checks as it is written.
        (
            "schema/sandbox-config.schema.json",
            super::sandbox_schema_text(),
        ),
    ]
}

/// Writes the starter files; refuses (exit 2, nothing written) when any already exists.
pub fn init(args: &InitArgs) -> Outcome {
    let files = files();
    let taken: Vec<String> = files
        .iter()
        .map(|(name, _)| args.dir.join(name))
        .filter(|p| p.exists())
        .map(|p| p.display().to_string())
        .collect();
    if !taken.is_empty() {
        return Err(CliError::Usage(format!(
            "{} already exist(s); pitcrew init never overwrites. Move them away or use --dir",
            taken.join(", ")
        )));
    }
    for (name, text) in &files {
        let path = args.dir.join(name);
        write(&path, text)
            .map_err(|e| CliError::Usage(format!("cannot write {}: {e}", path.display())))?;
        say(&format!("wrote {}", path.display()));
    }
    say("next: `pitcrew run` runs scenarios/ on the embedded sandbox");
    Ok(exit::PASSED)
}

fn write(path: &Path, text: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, text)
}
