//! Scenario files: reading the YAML into the serde model, with located diagnostics.
//!
//! Pure: no I/O beyond reading the files. Templating and expansion into cases is `plan`'s job.

pub mod files;
pub mod matcher;
pub mod matrix;
pub mod model;
pub mod table;
pub mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use miette::{
    Diagnostic, LabeledSpan, MietteError, Severity, SourceCode, SourceSpan, SpanContents,
};
use serde_saphyr::Location;

pub use model::ScenarioFile;

/// What goes wrong with one part of a scenario before it becomes a located diagnostic: a
/// template that does not render, a matcher that is not one, a file that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScenarioError {
    #[error("{0}")]
    Template(String),
    #[error("{0}")]
    Matcher(String),
    #[error("{0}")]
    File(String),
}

/// A problem in a scenario file, located for miette's snippet rendering.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct ScenarioDiagnostic {
    pub message: String,
    pub source_code: Excerpt,
    /// Where `span` is within `source_code`, an excerpt of the file.
    pub span: Option<SourceSpan>,
    /// Where the problem is in the file (a byte offset), to list a file's problems in order.
    pub offset: Option<usize>,
    pub help: Option<String>,
    /// `file:line:col`, for one-line summaries.
    pub at: String,
    /// Errors stop the run; warnings are printed and the run goes on.
    pub severity: Severity,
}

impl Diagnostic for ScenarioDiagnostic {
    fn severity(&self) -> Option<Severity> {
        Some(self.severity)
    }
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn std::fmt::Display>)
    }
    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source_code)
    }
    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.span?;
        // Unlabelled: the message is printed once, above the snippet.
        Some(Box::new(std::iter::once(LabeledSpan::new_with_span(
            None, span,
        ))))
    }
}

impl ScenarioDiagnostic {
    /// True for problems that stop the run.
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// This problem as a warning: printed, but nothing stops.
    pub fn into_warning(mut self) -> Self {
        self.severity = Severity::Warning;
        self
    }
}

/// The source a diagnostic shows: the whole file, or, when the problem sits on a long line,
/// a window of that line (snippet renderers draw one column per character, and a line of
/// 70,000 characters is neither readable nor drawable).
#[derive(Debug, Clone)]
pub struct Excerpt {
    name: String,
    text: Arc<str>,
    /// The file's line number (0-based) of the excerpt's first line.
    first_line: usize,
}

/// A line longer than this is shown as a window around the problem.
const LONG_LINE: usize = 240;
/// Characters kept on each side of the problem in a window.
const WINDOW: usize = 60;
/// Lines kept on each side of the problem's line in an excerpt (more than a renderer shows).
const CONTEXT_LINES: usize = 3;

impl Excerpt {
    fn whole(name: String, text: Arc<str>) -> Excerpt {
        Excerpt {
            name,
            text,
            first_line: 0,
        }
    }

    /// The excerpt to show `span` of `text` with, and the span within it: the lines around
    /// it (`line_starts`: where each line of `text` starts), or a window of its line when that
    /// is long. Never the whole file: a snippet renderer counts lines from the start of what
    /// it is given, once for each diagnostic.
    fn around(
        name: String,
        text: &str,
        line_starts: &[usize],
        span: SourceSpan,
    ) -> (Excerpt, SourceSpan) {
        let start = span.offset().min(text.len());
        let line = line_starts
            .partition_point(|&s| s <= start)
            .saturating_sub(1);
        let line_start = line_starts.get(line).copied().unwrap_or(0);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let (from, to, head, tail, first_line) = if line_end - line_start <= LONG_LINE {
            let first = line.saturating_sub(CONTEXT_LINES);
            let last = (line + CONTEXT_LINES + 1).min(line_starts.len());
            let to = line_starts.get(last).map_or(text.len(), |&s| s);
            (line_starts[first], to, "", "", first)
        } else {
            let end = (start + span.len()).min(line_end);
            let from = back_chars(text, start, WINDOW).max(line_start);
            let to = forward_chars(text, end, WINDOW).min(line_end);
            let head = if from > line_start { "…" } else { "" };
            let tail = if to < line_end { "…" } else { "" };
            (from, to, head, tail, line)
        };
        let end = (start + span.len()).min(to);
        let window = format!("{head}{}{tail}", &text[from..to]);
        let span = SourceSpan::new((start - from + head.len()).into(), end - start);
        let excerpt = Excerpt {
            name,
            text: Arc::from(window),
            first_line,
        };
        (excerpt, span)
    }
}

/// The byte offset `n` characters before `at` (or 0).
fn back_chars(text: &str, at: usize, n: usize) -> usize {
    text[..at]
        .char_indices()
        .rev()
        .nth(n.saturating_sub(1))
        .map_or(0, |(i, _)| i)
}

/// The byte offset `n` characters after `at` (or the end).
fn forward_chars(text: &str, at: usize, n: usize) -> usize {
    text[at..]
        .char_indices()
        .nth(n)
        .map_or(text.len(), |(i, _)| at + i)
}

impl SourceCode for Excerpt {
    fn read_span<'a>(
        &'a self,
        span: &SourceSpan,
        before: usize,
        after: usize,
    ) -> Result<Box<dyn SpanContents<'a> + 'a>, MietteError> {
        let inner = self.text.read_span(span, before, after)?;
        Ok(Box::new(miette::MietteSpanContents::new_named(
            self.name.clone(),
            inner.data(),
            *inner.span(),
            inner.line() + self.first_line,
            inner.column(),
            inner.line_count(),
        )))
    }
}

/// `path` relative to the current directory, when it is under it.
pub fn relative_to_cwd(path: &Path) -> PathBuf {
    if path.is_absolute()
        && let Ok(cwd) = std::env::current_dir()
        && let Ok(rest) = path.strip_prefix(&cwd)
    {
        return rest.to_path_buf();
    }
    path.to_path_buf()
}

/// A scenario file read from disk, with the text its positions refer to.
#[derive(Debug, Clone)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: Arc<str>,
    /// Where each line of `text` starts, found once when a diagnostic first needs it: a file
    /// with thousands of problems is not scanned again for each.
    line_starts: Arc<std::sync::OnceLock<Vec<usize>>>,
}

impl SourceFile {
    /// The file at `path` whose text is `text`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<Arc<str>>) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
            line_starts: Arc::default(),
        }
    }

    /// Line `number` (1-based) without its line break, if the file has it.
    fn line(&self, number: u64) -> Option<&str> {
        let starts = self.line_starts();
        let start = *starts.get(usize::try_from(number).ok()?.checked_sub(1)?)?;
        let end = starts.get(number as usize).map_or(self.text.len(), |&e| e);
        let line = &self.text[start..end];
        let line = line.strip_suffix('\n').unwrap_or(line);
        Some(line.strip_suffix('\r').unwrap_or(line))
    }

    /// The byte offset of the start of each line.
    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// Reads a file; an unreadable file is a diagnostic naming it.
    pub fn read(path: &Path) -> Result<SourceFile, Box<ScenarioDiagnostic>> {
        let text = files::read_limited(path).map_err(|e| {
            Box::new(ScenarioDiagnostic {
                message: format!("cannot read {}: {e}", path.display()),
                source_code: Excerpt::whole(path.display().to_string(), Arc::from("")),
                span: None,
                offset: None,
                help: None,
                at: path.display().to_string(),
                severity: Severity::Error,
            })
        })?;
        Ok(SourceFile::new(path, text))
    }

    /// The name positions are shown with: the path relative to the current directory when
    /// the file is under it (as JUnit's `file` attribute wants), else as given.
    pub fn display_name(&self) -> String {
        relative_to_cwd(&self.path).display().to_string()
    }

    /// A diagnostic at `location` (or at the file when unknown).
    pub fn diagnostic(
        &self,
        location: Option<&Location>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> ScenarioDiagnostic {
        self.located(location, message.into(), help, Offsets::Exact)
    }

    /// A diagnostic at `location`, found in this file as `offsets` says.
    fn located(
        &self,
        location: Option<&Location>,
        message: impl Into<String>,
        help: Option<String>,
        offsets: Offsets,
    ) -> ScenarioDiagnostic {
        let message = message.into();
        let mut source_code = Excerpt::whole(self.display_name(), Arc::from(""));
        let mut file_offset = None;
        let (span, at) = match location.filter(|l| l.line() > 0) {
            Some(loc) => {
                let offset = Some(loc.span().byte_offset())
                    .filter(|_| offsets == Offsets::Exact)
                    .flatten()
                    .map(|o| o as usize)
                    .unwrap_or_else(|| self.offset_of(loc.line(), loc.column()))
                    .min(self.text.len());
                let len = self.token_len(offset);
                file_offset = Some(offset);
                let (excerpt, span) = Excerpt::around(
                    self.display_name(),
                    &self.text,
                    self.line_starts(),
                    SourceSpan::new(offset.into(), len),
                );
                source_code = excerpt;
                (
                    Some(span),
                    format!("{}:{}:{}", self.display_name(), loc.line(), loc.column()),
                )
            }
            None => (None, self.display_name()),
        };
        ScenarioDiagnostic {
            message,
            source_code,
            span,
            offset: file_offset,
            help,
            at,
            severity: Severity::Error,
        }
    }

    fn offset_of(&self, line: u64, column: u64) -> usize {
        let Some(&start) = self.line_starts().get(line.saturating_sub(1) as usize) else {
            return self.text.len();
        };
        let col: usize = self.text[start..]
            .chars()
            .take_while(|&c| c != '\n')
            .take(column.saturating_sub(1) as usize)
            .map(char::len_utf8)
            .sum();
        start + col
    }

    /// The length of the word or scalar starting at `offset`, to underline it.
    fn token_len(&self, offset: usize) -> usize {
        let rest = self.text.get(offset..).unwrap_or("");
        let end = rest.find(['\n', ':', ',', '}', ']']).unwrap_or(rest.len());
        rest[..end].trim_end().len().max(1)
    }
}

/// Parses a scenario file into the serde model.
///
/// A case that does not fit the model is reported and set aside, and the rest of the file
/// parsed for the next problem: each broken case gets its own diagnostic instead of the first
/// one hiding the rest. Each search parses only the cases after the last problem (those before
/// it are replaced by as many empty lines, so that every later position stays true), so that
/// a file of thousands of broken cases is not parsed whole once for each. Returns the file
/// with the cases that parsed (when anything parsed) and every problem found.
pub fn parse(source: &SourceFile) -> (Option<ScenarioFile>, Vec<ScenarioDiagnostic>) {
    let parse =
        |text: &str| serde_saphyr::from_str_with_options::<ScenarioFile>(text, yaml_options());
    let line_of = |err: &serde_saphyr::Error| err.location().map(|l| l.line()).unwrap_or(0);
    let err = match parse(&source.text) {
        Ok(file) => return (Some(file), Vec::new()),
        Err(err) => err,
    };
    let mut problems = vec![describe_error(source, &err, Offsets::Exact)];
    // Found on the first error only: a valid file is parsed once.
    let Some(ranges) = case_ranges(&source.text) else {
        return (None, problems);
    };
    let case_at = |line: u64| {
        let i = ranges.partition_point(|r| *r.lines.end() < line);
        ranges.get(i).filter(|r| r.lines.contains(&line)).map(|_| i)
    };
    let mut set_aside = vec![false; ranges.len()];
    let mut left = ranges.len();
    let mut line = line_of(&err);
    // A case may name an anchor (`&base`) that a later one uses: then the cases before a
    // problem cannot be left out, only the broken ones (blanked, which costs a parse of the
    // whole file for each).
    let anchored = source.text[ranges[0].bytes.start..].contains('&');
    let mut blanked = anchored.then(|| source.text.to_string());
    loop {
        // A problem outside the cases, or in the only case left: nothing of the file parses.
        let Some(i) = case_at(line) else {
            return (None, problems);
        };
        if set_aside[i] || left <= 1 {
            return (None, problems);
        }
        set_aside[i] = true;
        left -= 1;
        let (text, offsets) = match &mut blanked {
            Some(blanked) => {
                blank(blanked, ranges[i].bytes.clone());
                (std::borrow::Cow::Borrowed(blanked.as_str()), Offsets::Exact)
            }
            None if i + 1 == ranges.len() => break,
            None => {
                // The file with every case up to this one left out, each of its lines kept
                // empty.
                let header = &source.text[..ranges[0].bytes.start];
                let left_out = (*ranges[i].lines.end() + 1 - *ranges[0].lines.start()) as usize;
                let rest = &source.text[ranges[i].bytes.end..];
                let mut text = String::with_capacity(header.len() + left_out + rest.len());
                text.push_str(header);
                text.push_str(&"\n".repeat(left_out));
                text.push_str(rest);
                (std::borrow::Cow::Owned(text), Offsets::ByLine)
            }
        };
        match parse(&text) {
            Ok(file) if offsets == Offsets::Exact => return (Some(file), problems),
            Ok(_) => break,
            Err(err) => {
                problems.push(describe_error(source, &err, offsets));
                line = line_of(&err);
            }
        }
    }
    // Every problem is found: the file without the cases set aside.
    let mut text = source.text.to_string();
    for (range, _) in ranges.iter().zip(&set_aside).filter(|(_, aside)| **aside) {
        blank(&mut text, range.bytes.clone());
    }
    match parse(&text) {
        Ok(file) => (Some(file), problems),
        Err(err) => {
            problems.push(describe_error(source, &err, Offsets::Exact));
            (None, problems)
        }
    }
}

/// How a parse error's position is found in the file: by its byte offset when the text parsed
/// is the file's own bytes, else by its line and column.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Offsets {
    Exact,
    ByLine,
}

/// How scenario files are read: YAML 1.2 booleans only, so that `n`, `no`, `on` and `yes`
/// stay text where text is expected (a matrix value `n` is sent as `n`, not `false`).
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        strict_booleans: true,
        budget: yaml_budget(),
        // pitcrew draws its own snippets (miette); the library's would copy the file's lines
        // into every error, once for each broken case of a large file.
        with_snippet: false,
    }
}

/// The most YAML nodes one file may hold: room for a run's 100,000 cases written out one by
/// one (each a few dozen nodes), while aliases, anchors and nesting keep serde-saphyr's limits
/// against YAML bombs.
pub const MAX_YAML_NODES: usize = 5_000_000;

fn yaml_budget() -> Option<serde_saphyr::Budget> {
    serde_saphyr::budget! {
        max_nodes: MAX_YAML_NODES,
        max_events: 3 * MAX_YAML_NODES,
    }
}

/// Parses a YAML file into `T` (a sandbox config, a project file) with a scenario's
/// diagnostics: file, line, column, snippet, and a "did you mean" for unknown keys.
pub fn parse_as<T: serde::de::DeserializeOwned>(
    source: &SourceFile,
) -> Result<T, Box<ScenarioDiagnostic>> {
    serde_saphyr::from_str_with_options(&source.text, yaml_options())
        .map_err(|e| Box::new(describe_error(source, &e, Offsets::Exact)))
}

/// The top-level keys of a sandbox config (`--sandbox-config`), when `text` is one and not a
/// scenario file: a mapping with no `cases` whose keys are all a sandbox config's.
pub fn sandbox_config_keys(text: &str) -> Option<Vec<String>> {
    const KEYS: [&str; 5] = ["token", "minute", "builtin", "offers", "partners"];
    let value: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    let keys: Vec<String> = value.as_object()?.keys().cloned().collect();
    let config = !keys.is_empty() && keys.iter().all(|k| KEYS.contains(&k.as_str()));
    config.then_some(keys)
}

/// Where one case sits in the file.
struct CaseRange {
    lines: std::ops::RangeInclusive<u64>,
    bytes: std::ops::Range<usize>,
}

/// The line span of each case, when every case starts on a line of its own.
fn case_ranges(text: &str) -> Option<Vec<CaseRange>> {
    #[derive(serde::Deserialize)]
    struct Outline {
        #[serde(default)]
        cases: Vec<serde_saphyr::Spanned<serde::de::IgnoredAny>>,
    }
    let options = serde_saphyr::options! {
        strict_booleans: true,
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::LastWins,
        budget: yaml_budget(),
    };
    let outline: Outline = serde_saphyr::from_str_with_options(text, options).ok()?;
    let starts: Vec<u64> = outline.cases.iter().map(|c| c.referenced.line()).collect();
    if starts.is_empty() || starts.windows(2).any(|w| w[0] >= w[1]) || starts[0] == 0 {
        return None;
    }
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_count = line_starts.len() as u64;
    let offset = |line: u64| -> usize {
        line_starts
            .get(line.saturating_sub(1) as usize)
            .copied()
            .unwrap_or(text.len())
    };
    // The last case ends where the next top-level key (a line starting in column 1) begins.
    let last_end = (starts[starts.len() - 1] + 1..=line_count)
        .find(|&line| {
            let at = offset(line);
            let rest = &text[at..];
            matches!(rest.chars().next(), Some(c) if !c.is_whitespace() && c != '#' && c != '-')
        })
        .unwrap_or(line_count + 1);
    let mut ranges = Vec::with_capacity(starts.len());
    for (i, &start) in starts.iter().enumerate() {
        let end = starts.get(i + 1).copied().unwrap_or(last_end);
        ranges.push(CaseRange {
            lines: start..=end - 1,
            bytes: offset(start)..offset(end),
        });
    }
    Some(ranges)
}

/// Replaces every byte of `range` but line ends with a space: the YAML loses the case, and
/// every byte offset, line and column after it stays the same.
fn blank(text: &mut String, range: std::ops::Range<usize>) {
    let blanked: String = text[range.clone()]
        .bytes()
        .map(|b| if b == b'\n' { '\n' } else { ' ' })
        .collect();
    text.replace_range(range, &blanked);
}

/// A parse error in the words of a scenario author: the key it is about, what is valid there.
fn describe_error(
    source: &SourceFile,
    err: &serde_saphyr::Error,
    offsets: Offsets,
) -> ScenarioDiagnostic {
    let options = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let rendered = err.render_with_options(options);
    let mut message = strip_location_suffix(&rendered);
    let location = err.location();
    let key = location
        .as_ref()
        .and_then(|l| key_at(source, l).or_else(|| key_starting_at(source, l)));
    let mut help = unknown_key_help(&message);
    if message.contains("budget breached")
        && !message.contains("Nodes")
        && !message.contains("Events")
    {
        message = format!("this file expands beyond what pitcrew reads ({message})");
        help = Some("YAML aliases and anchors are limited against YAML bombs; write the values out, or use `defaults:` and a `matrix:`".into());
    } else if message.contains("budget breached") {
        message = format!(
            "this file is larger than pitcrew reads (more than {MAX_YAML_NODES} YAML nodes or {} parser events)",
            3 * MAX_YAML_NODES
        );
        help = Some("split it into several files, or generate its cases with a `matrix:`".into());
    } else if help.is_some()
        && let Some(field) = message
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
    {
        message = format!("unknown key `{field}`");
    } else if message.contains("multiple YAML documents") {
        message = "a second YAML document starts here: a pitcrew file holds only one".into();
        help = Some(
            "put each document (the part after a `---` line) in a file of its own, or remove the `---`"
                .into(),
        );
    } else if let Some(rest) = message.strip_prefix("duplicate mapping key: ") {
        let name = rest.split(',').next().unwrap_or(rest).trim().to_string();
        message = format!("`{name}` is given twice in this mapping");
        help = Some("YAML keeps one value per key: remove one, or rename it".into());
    } else if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        help = Some(match field {
            "name" => "every case needs a `name:`, unique in the file".to_string(),
            "cases" => "a scenario file lists its cases under `cases:`".to_string(),
            other => format!("add `{other}:`"),
        });
    } else if help.is_none()
        && let Some(key) = &key
        && plain_words(&message).is_some()
    {
        let found = location.as_ref().map(|l| found_at(source, l));
        message = match (plain_words(&message), found) {
            (Some(wanted), _) if wanted.contains(", found ") => {
                format!("`{key}`: expected {wanted}")
            }
            (Some(wanted), Some(found)) => format!("`{key}`: expected {wanted}, found {found}"),
            _ => format!("`{key}`: {message}"),
        };
        let in_matrix = location
            .as_ref()
            .is_some_and(|l| parent_key(source, l).as_deref() == Some("matrix"));
        let near_none = key == "callback"
            && message
                .split('"')
                .nth(1)
                .is_some_and(|found| did_you_mean(found, ["none"]).is_some());
        help = if in_matrix {
            Some("each matrix key takes a list of values, e.g. `event: [install, signup]`".into())
        } else if near_none {
            Some("did you mean `none`? (`callback: none`: no callback may arrive)".into())
        } else {
            field_hint(key).map(String::from)
        };
    }
    source.located(location.as_ref(), message, help, offsets)
}

/// serde-saphyr's terse type errors in plain words.
fn plain_words(message: &str) -> Option<String> {
    if let Some(rest) = message
        .strip_prefix("invalid value: ")
        .or_else(|| message.strip_prefix("invalid type: "))
    {
        return rest
            .split_once(", expected ")
            .map(|(found, wanted)| format!("{wanted}, found {found}"));
    }
    Some(
        match message {
            m if m.contains("sequence start") => "a list",
            m if m.contains("mapping start") => "a mapping",
            m if m.contains("string scalar") => "text",
            m if m.contains("invalid u16") || m.contains("invalid u32") => "a whole number",
            m if m.contains("invalid boolean") => "true or false",
            _ => return None,
        }
        .to_string(),
    )
}

/// What is written at `location`, shown in a type error.
fn found_at(source: &SourceFile, location: &Location) -> String {
    let line = source.line(location.line()).unwrap_or("");
    let rest: String = line
        .chars()
        .skip(location.column().saturating_sub(1) as usize)
        .collect();
    match rest.trim_start().chars().next() {
        Some('[') => "a list".into(),
        Some('{') => "a mapping".into(),
        None => "nothing".into(),
        _ => {
            let end = rest.find([',', '}', ']', '#']).unwrap_or(rest.len());
            format!("`{}`", rest[..end].trim())
        }
    }
}

/// The key of the mapping that holds `location`'s key: `matrix` for `event:` in
/// `matrix: { event: install }` or in an indented block under `matrix:`.
fn parent_key(source: &SourceFile, location: &Location) -> Option<String> {
    let number = location.line();
    let line = source.line(number)?;
    let before: String = line
        .chars()
        .take(location.column().saturating_sub(1) as usize)
        .collect();
    if let Some(open) = before.rfind('{') {
        let outer = before[..open].trim_end().strip_suffix(':')?;
        let key = outer.rsplit([' ', '{', ',', '-']).next()?;
        return Some(key.to_string());
    }
    let indent = line.len() - line.trim_start().len();
    (1..number)
        .rev()
        .filter_map(|n| source.line(n))
        .find_map(|l| {
            let trimmed = l.trim_start();
            let own = l.len() - trimmed.len();
            (own < indent && !trimmed.is_empty() && !trimmed.starts_with('#')).then(|| {
                trimmed
                    .trim_start_matches("- ")
                    .split(':')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
        })
}

/// The mapping key written just before `location` on its line (`timeout:` in `timeout: [1]`).
fn key_at(source: &SourceFile, location: &Location) -> Option<String> {
    let line = source.line(location.line())?;
    let before: String = line
        .chars()
        .take(location.column().saturating_sub(1) as usize)
        .collect();
    let before = before.trim_end().strip_suffix(':')?;
    let key = before
        .rsplit(|c: char| c.is_whitespace() || c == '{' || c == ',' || c == '-')
        .next()?
        .trim_matches(['"', '\'']);
    (!key.is_empty()).then(|| key.to_string())
}

/// The key written at `location` itself (`callback` in `callback: nothing`).
fn key_starting_at(source: &SourceFile, location: &Location) -> Option<String> {
    let line = source.line(location.line())?;
    let rest: String = line
        .chars()
        .skip(location.column().saturating_sub(1) as usize)
        .collect();
    let (key, _) = rest.split_once(':')?;
    let key = key.trim().trim_matches(['"', '\'']);
    (!key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || "_.-".contains(c)))
    .then(|| key.to_string())
}

/// What a key takes, for type errors.
fn field_hint(key: &str) -> Option<&'static str> {
    Some(match key {
        "timeout" | "within" | "callback_delay" | "wait" | "delay" | "after" | "api_latency" => {
            "a duration: a number and a unit, e.g. `500ms`, `5s`, `2m`"
        }
        "status" | "api_error" => "an HTTP status code, e.g. `201`",
        "count" => "a whole number of callbacks, e.g. `1` (0 means none may arrive)",
        "name" | "offer" | "member" | "partner" | "click" | "conversion" | "event" | "reason"
        | "missing_field" | "altered_amount" => {
            "text; quote it when it holds `: ` or starts with `{`, `[`, `*` or `&`"
        }
        "tags" => "a list of words, e.g. `[go-live, smoke]`",
        "params" | "payload" | "headers" | "json" | "vars" | "defaults" | "sandbox" | "faults"
        | "expect" | "receiver" | "response" => "a mapping, e.g. `{ key: value }`",
        "matrix" => "a mapping of keys to lists, e.g. `{ event: [install, signup] }`",
        "include" | "exclude" => "a list of mappings, e.g. `[{ event: install }]`",
        "cases" => "a list of cases, each starting with `- name:`",
        "then" => {
            "a list of steps, each one of `- change_status: Rejected`, `- resend: true`, `- wait: 2s`"
        }
        "respond" => "a list of answers, e.g. `[{ status: 503 }, { status: 200, body: OK }]`",
        "attempts" => "a list of deliveries, e.g. `[{ status: 503 }, { status: 200, after: 2m }]`",
        "callback" => {
            "`none`, or a mapping with `within`, `count`, `payload`, `headers`, `attempts`, `response`, `schema`, `settle`"
        }
        "flag" => "`false`, `true` or the expected pubSub5 text",
        "omit_flag" | "drop_callback" | "duplicate_callback" | "legacy_payload" | "resend"
        | "schema" => "`true` or `false`",
        "change_status" | "state" => "one of `Success`, `Pending`, `Rejected`",
        "auth" => "`wrong` or `missing`",
        _ => return None,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> SourceFile {
        SourceFile::new("t.yaml", text)
    }

    #[test]
    fn every_broken_case_is_located_and_the_rest_parse_with_or_without_anchors() {
        let broken = |params: &str, again: &str| {
            format!(
                "name: n\ncases:\n  - name: a\n    event: install\n    params: {params}\n\
                 \x20 - name: b\n    evnt: install\n  - name: c\n    event: install\n    \
                 params: {again}\n  - name: d\n    evnt: install\n  - name: e\n    \
                 event: install\n    params: {again}\n"
            )
        };
        for text in [
            broken("{ pub_sub_1: x }", "{ pub_sub_1: y }"),
            broken("&p { pub_sub_1: x }", "*p"),
        ] {
            let (file, problems) = parse(&source(&text));
            let at: Vec<&str> = problems.iter().map(|p| p.at.as_str()).collect();
            assert_eq!(at, ["t.yaml:7:5", "t.yaml:12:5"], "{text}");
            let names: Vec<String> = file
                .expect("the cases that parse")
                .cases
                .iter()
                .map(|c| c.value.name.value.clone())
                .collect();
            assert_eq!(names, ["a", "c", "e"], "{text}");
        }
    }

    #[test]
    fn unknown_key_is_located_with_a_hint() {
        let src = source("name: s\ncases:\n  - name: a\n    evnt: install\n");
        let (_, errs) = parse(&src);
        let err = &errs[0];
        assert_eq!(err.at, "t.yaml:4:5", "{}", err.message);
        assert!(err.message.contains("evnt"), "{}", err.message);
        let help = err.help.clone().unwrap_or_default();
        assert!(
            help.contains("did you mean `event`"),
            "{} / {help}",
            err.message
        );
    }

    #[test]
    fn every_broken_case_is_reported_with_true_positions() {
        let src = source(
            "name: s\ncases:\n  - name: a\n    timeout: [1]\n  - name: b\n    event: install\n  - name: c\n    tags: x\n    evnt: 1\n",
        );
        let (file, errs) = parse(&src);
        let at: Vec<&str> = errs.iter().map(|e| e.at.as_str()).collect();
        assert_eq!(at, ["t.yaml:4:14", "t.yaml:8:11"], "{errs:#?}");
        assert!(
            errs[0]
                .message
                .starts_with("`timeout`: expected text, found a list")
        );
        assert_eq!(errs[1].message, "`tags`: expected a list, found `x`");
        let file = file.expect("the good case still parses");
        assert_eq!(file.cases.len(), 1);
        assert_eq!(file.cases[0].value.name.value, "b");
        assert_eq!(
            file.cases[0].referenced.line(),
            5,
            "positions after a blanked case hold"
        );
    }

    #[test]
    fn near_misses_get_a_did_you_mean() {
        let (_, errs) = parse(&source(
            "cases:\n  - name: a\n    expect: { callback: nnone }\n",
        ));
        assert!(
            errs[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("did you mean `none`"),
            "{errs:#?}"
        );
        let (_, errs) = parse(&source(
            "cases:\n  - name: a\n    matrix: { event: install }\n",
        ));
        assert!(
            errs[0]
                .help
                .as_deref()
                .unwrap_or("")
                .contains("matrix key takes a list")
        );
    }

    #[test]
    fn callback_none_and_mapping_both_parse() {
        let src = source(
            "cases:\n  - name: a\n    expect: { callback: none }\n  - name: b\n    expect:\n      callback: { count: 2 }\n",
        );
        let (file, errs) = parse(&src);
        assert!(errs.is_empty(), "{}", errs[0].message);
        let file = file.expect("parsed");
        assert!(matches!(
            file.cases[0].value.expect.callback.as_ref().unwrap().value,
            model::CallbackSpec::None
        ));
        assert_eq!(file.cases[1].referenced.line(), 4);
    }
}
