//! Scenario files: reading the YAML into the serde model, with located diagnostics.
//!
//! Pure: no I/O beyond reading the files. Templating and expansion into cases is `plan`'s job.

pub mod matcher;
pub mod model;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{Diagnostic, NamedSource, SourceSpan};
use serde_saphyr::Location;

pub use model::ScenarioFile;

/// A problem in a scenario file, located for miette's snippet rendering.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct ScenarioDiagnostic {
    pub message: String,
    #[source_code]
    pub source_code: NamedSource<Arc<str>>,
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    pub label: String,
    #[help]
    pub help: Option<String>,
    /// `file:line:col`, for one-line summaries.
    pub at: String,
}

/// A scenario file read from disk, with the text its positions refer to.
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
}

impl SourceFile {
    /// Reads a file; an unreadable file is a diagnostic naming it.
    pub fn read(path: &Path) -> Result<SourceFile, Box<ScenarioDiagnostic>> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Box::new(ScenarioDiagnostic {
                message: format!("cannot read {}: {e}", path.display()),
                source_code: NamedSource::new(path.display().to_string(), Arc::from("")),
                span: None,
                label: String::new(),
                help: None,
                at: path.display().to_string(),
            })
        })?;
        Ok(SourceFile {
            path: path.to_path_buf(),
            text: Arc::from(text),
        })
    }

    /// The name positions are shown with.
    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }

    /// A diagnostic at `location` (or at the file when unknown).
    pub fn diagnostic(
        &self,
        location: Option<&Location>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> ScenarioDiagnostic {
        let message = message.into();
        let (span, at) = match location.filter(|l| l.line() > 0) {
            Some(loc) => {
                let offset = loc
                    .span()
                    .byte_offset()
                    .map(|o| o as usize)
                    .unwrap_or_else(|| self.offset_of(loc.line(), loc.column()));
                let len = self.token_len(offset);
                (
                    Some(SourceSpan::new(offset.into(), len)),
                    format!("{}:{}:{}", self.display_name(), loc.line(), loc.column()),
                )
            }
            None => (None, self.display_name()),
        };
        ScenarioDiagnostic {
            label: short_label(&message),
            message,
            source_code: NamedSource::new(self.display_name(), self.text.clone()),
            span,
            help,
            at,
        }
    }

    fn offset_of(&self, line: u64, column: u64) -> usize {
        let mut offset = 0;
        for (i, l) in self.text.split_inclusive('\n').enumerate() {
            if i as u64 + 1 == line {
                let col: usize = l
                    .chars()
                    .take(column.saturating_sub(1) as usize)
                    .map(char::len_utf8)
                    .sum();
                return offset + col;
            }
            offset += l.len();
        }
        self.text.len()
    }

    /// The length of the word or scalar starting at `offset`, to underline it.
    fn token_len(&self, offset: usize) -> usize {
        let rest = self.text.get(offset..).unwrap_or("");
        let end = rest.find(['\n', ':', ',', '}', ']']).unwrap_or(rest.len());
        rest[..end].trim_end().len().max(1)
    }
}

fn short_label(message: &str) -> String {
    let head = message.split(", expected").next().unwrap_or(message);
    head.split([';', '('])
        .next()
        .unwrap_or(head)
        .trim()
        .to_string()
}

/// Parses a scenario file into the serde model.
pub fn parse(source: &SourceFile) -> Result<ScenarioFile, Box<ScenarioDiagnostic>> {
    serde_saphyr::from_str::<ScenarioFile>(&source.text).map_err(|err| {
        let options = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
        let rendered = err.render_with_options(options);
        let message = strip_location_suffix(&rendered);
        let help = unknown_key_help(&message);
        Box::new(source.diagnostic(err.location().as_ref(), message, help))
    })
}

fn strip_location_suffix(message: &str) -> String {
    let first = message.lines().next().unwrap_or(message);
    match first.rfind(" at line ") {
        Some(i) => first[..i].to_string(),
        None => first.to_string(),
    }
}

/// For serde's "unknown field `x`, expected one of `a`, `b`": a "did you mean" and the list.
fn unknown_key_help(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (field, rest) = rest.split_once('`')?;
    let list = rest.split_once("expected").map(|(_, l)| l).unwrap_or("");
    let list = list.trim().trim_start_matches("one of").trim();
    let valid: Vec<&str> = list
        .split(',')
        .map(|s| s.trim().trim_matches('`'))
        .filter(|s| !s.is_empty() && !s.contains(' '))
        .collect();
    let listing = if valid.is_empty() {
        "this mapping takes no keys".to_string()
    } else {
        format!("valid keys here: {}", valid.join(", "))
    };
    Some(match did_you_mean(field, valid.iter().copied()) {
        Some(best) => format!("did you mean `{best}`? {listing}"),
        None => listing,
    })
}

/// The closest candidate to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Every `.yaml`/`.yml` file under the given paths (files taken as given), sorted per folder.
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, String> {
    let mut found = Vec::new();
    for path in paths {
        if path.is_dir() {
            walk(path, &mut found).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        } else if path.exists() {
            found.push(path.clone());
        } else {
            return Err(format!("{}: no such file or directory", path.display()));
        }
    }
    Ok(found)
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            walk(&entry, found)?;
        } else if matches!(
            entry.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            found.push(entry);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> SourceFile {
        SourceFile {
            path: "t.yaml".into(),
            text: Arc::from(text),
        }
    }

    #[test]
    fn unknown_key_is_located_with_a_hint() {
        let src = source("name: s\ncases:\n  - name: a\n    evnt: install\n");
        let err = parse(&src).expect_err("must fail");
        assert_eq!(err.at, "t.yaml:4:5", "{}", err.message);
        assert!(err.message.contains("evnt"), "{}", err.message);
        let help = err.help.unwrap_or_default();
        assert!(
            help.contains("did you mean `event`"),
            "{} / {help}",
            err.message
        );
    }

    #[test]
    fn callback_none_and_mapping_both_parse() {
        let src = source(
            "cases:\n  - name: a\n    expect: { callback: none }\n  - name: b\n    expect:\n      callback: { count: 2 }\n",
        );
        let file = parse(&src).unwrap_or_else(|e| panic!("{}", e.message));
        assert!(matches!(
            file.cases[0].value.expect.callback.as_ref().unwrap().value,
            model::CallbackSpec::None
        ));
        assert_eq!(file.cases[1].referenced.line(), 4);
    }
}
