//! One file into a suite: its matrices expanded, its cases named, and the helpers every part of
//! case building shares (rendering, locating problems, durations, matchers).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use handlebars::Context;
use serde_json::{Map, Value, json};
use serde_saphyr::Location;

use super::{Case, CaseExpect, PlanOptions, Step, Suite};
use crate::duration::parse_duration;
use crate::scenario::matcher::Matcher;
use crate::scenario::matrix::{self, Combination};
use crate::scenario::model::{Defaults, Located, ScenarioFile};
use crate::scenario::template::Templates;
use crate::scenario::{ScenarioDiagnostic, ScenarioError, SourceFile};

pub(super) struct SuiteBuilder<'a> {
    pub source: &'a SourceFile,
    pub options: &'a PlanOptions,
    pub templates: &'a Templates,
    pub run_id: &'a str,
    pub env: &'a Map<String, Value>,
    pub problems: Vec<ScenarioDiagnostic>,
    /// How many of `problems` are errors.
    pub error_count: usize,
    /// Matchers already parsed, by their rendered YAML: a regex is compiled once per file,
    /// not once per case.
    pub matchers: HashMap<String, Matcher>,
    /// The current case's expectations and steps, by mode, when they hold no template: built
    /// once and shared by every case of its matrix.
    pub shared: HashMap<u8, (Arc<CaseExpect>, Arc<[Step]>)>,
    /// True when the current case's expectations or steps hold a template.
    pub expect_templated: bool,
    /// How many more cases the run may plan (`--max-cases` less those planned already).
    pub budget: usize,
    /// Values many cases render alike, held once.
    pub shared_values: Shared,
    /// Each entry of `cases:`, its combinations, kept for building cases again (`--retries`).
    pub kept: Option<Vec<Arc<[Combination]>>>,
    /// The cases to build (`--filter`, `--tag`; filters in lower case): one left out is named
    /// and counted, never built, so nothing in it is checked against the target.
    pub selection: &'a super::Selection,
    /// How many cases the file holds, selected or not.
    pub planned: usize,
    /// The entry of `cases:` being built.
    pub spec_index: u32,
    /// What this target cannot do that an entry of `cases:` asks for, by entry: an error only
    /// when a case of the entry is kept after sharding ([`SuiteBuilder::target_error`]).
    pub deferred: Vec<(u32, ScenarioDiagnostic)>,
}

/// Texts and parameter sets many cases render alike (an offer, an event, a matrix's few
/// amounts), each held once however many cases use it.
#[derive(Default)]
pub(super) struct Shared {
    pub texts: crate::intern::Interner<str>,
    pub params: crate::intern::Interner<std::collections::BTreeMap<String, String>>,
}

/// A case's own value, else the file default's.
pub(super) fn pick<'a>(
    own: &'a Option<Located<String>>,
    default: &'a Option<Located<String>>,
) -> Option<&'a Located<String>> {
    own.as_ref().or(default.as_ref())
}

/// The environment variables a file names as `env.NAME`: all a template can read, and far
/// fewer than the whole environment to copy into every case's context.
fn referenced_env(text: &str, env: &Map<String, Value>) -> Map<String, Value> {
    let mut used = Map::new();
    for (i, _) in text.match_indices("env.") {
        let name: String = text[i + 4..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if let Some(value) = env.get(&name) {
            used.insert(name, value.clone());
        }
    }
    used
}

/// What every case of a file sees in its templates besides its own values.
struct Scope<'a> {
    vars: Map<String, Value>,
    env: Map<String, Value>,
    run_id: &'a str,
}

impl<'a> Scope<'a> {
    fn of(builder: &mut SuiteBuilder<'a>, file: &ScenarioFile) -> Scope<'a> {
        let env = referenced_env(&builder.source.text, builder.env);
        for (name, value) in &env {
            let short = value
                .as_str()
                .and_then(|value| crate::mask::env_too_short(name, value));
            if let Some((message, help)) = short {
                let problem = builder.source.diagnostic(None, message, Some(help));
                builder.problems.push(problem);
                builder.error_count += 1;
            }
        }
        Scope {
            vars: builder.vars(file),
            env,
            run_id: builder.run_id,
        }
    }

    /// The template context of one case.
    fn context(
        &self,
        combination: &Combination,
        name: &str,
        index: usize,
        attempt: u32,
    ) -> Context {
        let matrix: Map<String, Value> = combination.iter().cloned().collect();
        Context::from(json!({
            "vars": self.vars,
            "matrix": matrix,
            "env": self.env,
            "case": {"name": name, "index": index, "attempt": attempt},
            "run": {"id": self.run_id},
        }))
    }
}

impl SuiteBuilder<'_> {
    pub fn error(&mut self, at: &Location, message: impl Into<String>, help: Option<String>) {
        self.problems
            .push(self.source.diagnostic(Some(at), message, help));
        self.error_count += 1;
    }

    /// An error that depends on the target (a `receiver:` script where the target's own
    /// receiver answers, a step its profile leaves out): it holds only when a case of this
    /// entry is kept after `--shard` deals the cases, so the case is built as if it held not.
    pub fn target_error(
        &mut self,
        at: &Location,
        message: impl Into<String>,
        help: Option<String>,
    ) {
        let message = message.into();
        // Said once for an entry, however many cases its matrix expands to.
        let said = (self.deferred.iter().rev())
            .take_while(|(spec, _)| *spec == self.spec_index)
            .any(|(_, p)| p.message == message);
        if !said {
            let problem = self.source.diagnostic(Some(at), message, help);
            self.deferred.push((self.spec_index, problem));
        }
    }

    pub fn warn(&mut self, at: &Location, message: impl Into<String>, help: Option<String>) {
        let warning = self
            .source
            .diagnostic(Some(at), message, help)
            .into_warning();
        self.problems.push(warning);
    }

    /// How many errors were found so far (counted as they are found: asked for every case).
    pub fn errors(&self) -> usize {
        self.error_count
    }

    /// `file:line:col` of a location, for failures that point back at the scenario.
    pub fn at(&self, location: &Location) -> String {
        format!(
            "{}:{}:{}",
            self.source.display_name(),
            location.line(),
            location.column()
        )
    }

    pub fn render(&mut self, value: &Located<String>, context: &Context) -> Option<String> {
        match self.templates.render(&value.value, context) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(&value.referenced, e.to_string(), None);
                None
            }
        }
    }

    pub fn render_value(&mut self, value: &Located<Value>, context: &Context) -> Option<Value> {
        fn walk(t: &Templates, v: &Value, c: &Context) -> Result<Value, ScenarioError> {
            Ok(match v {
                Value::String(s) => Value::String(t.render(s, c)?),
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|i| walk(t, i, c))
                        .collect::<Result<_, _>>()?,
                ),
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| Ok((k.clone(), walk(t, v, c)?)))
                        .collect::<Result<_, ScenarioError>>()?,
                ),
                other => other.clone(),
            })
        }
        match walk(self.templates, &value.value, context) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(&value.referenced, e.to_string(), None);
                None
            }
        }
    }

    /// A duration that may be a template (`within: "{{vars.window}}"`), rendered with
    /// `context` first; a rendering that is no duration is an error that shows both.
    pub fn duration_in(&mut self, text: &Located<String>, context: &Context) -> Option<Duration> {
        if !text.value.contains("{{") {
            return self.duration(text);
        }
        let rendered = self.render(text, context)?;
        match parse_duration(&rendered) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(
                    &text.referenced,
                    format!("{e} (`{}` renders to `{rendered}`)", text.value.trim()),
                    None,
                );
                None
            }
        }
    }

    pub fn duration(&mut self, text: &Located<String>) -> Option<Duration> {
        match parse_duration(&text.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&text.referenced, e.to_string(), None);
                None
            }
        }
    }

    pub fn matcher(&mut self, value: &Located<Value>, context: &Context) -> Option<Matcher> {
        let rendered = self.render_value(value, context)?;
        let key = rendered.to_string();
        if let Some(known) = self.matchers.get(&key) {
            return Some(known.clone());
        }
        match Matcher::parse(&rendered) {
            Ok(m) => {
                self.matchers.insert(key, m.clone());
                Some(m)
            }
            Err(e) => {
                self.error(&value.referenced, e.to_string(), None);
                None
            }
        }
    }

    fn vars(&mut self, file: &ScenarioFile) -> Map<String, Value> {
        let mut vars = Map::new();
        for (key, value) in &file.vars {
            vars.insert(key.clone(), value.value.clone());
        }
        for (key, value) in &self.options.vars {
            vars.insert(key.clone(), Value::String(value.clone()));
        }
        vars
    }

    /// The suite's name: the file's `name:`, else its file name.
    fn suite_name(&self, file: &ScenarioFile) -> Arc<str> {
        match &file.name {
            Some(n) => Arc::from(n.value.as_str()),
            None => Arc::from(
                self.source
                    .path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "scenarios".into()),
            ),
        }
    }

    /// Expands and builds every case of `file` (the plan's `file_index`-th), numbering them
    /// from `first_index`.
    pub fn build(&mut self, file: &ScenarioFile, file_index: u32, first_index: usize) -> Suite {
        let suite_name = self.suite_name(file);
        let file_name: Arc<str> = Arc::from(self.source.display_name());
        let scope = Scope::of(self, file);
        let empty = Defaults::default();
        let defaults = file.defaults.as_ref().unwrap_or(&empty);
        let mut cases = Vec::with_capacity(file.cases.len());
        let mut seen: HashMap<String, u64> = HashMap::new();
        let starts: Vec<u64> = file.cases.iter().map(|c| c.referenced.line()).collect();
        let mut line_starts: Option<Vec<usize>> = None;
        for (i, spec) in file.cases.iter().enumerate() {
            self.spec_index = i as u32;
            self.shared.clear();
            self.expect_templated = super::expect::templated(&spec.value);
            let Some(combinations) = self.combinations(spec) else {
                if self.budget == 0 && spec.value.matrix.is_none() {
                    break;
                }
                self.keep(Vec::new());
                continue;
            };
            let combinations = self.keep(combinations);
            if let Some(m) = &spec.value.matrix {
                let line_starts = line_starts.get_or_insert_with(|| {
                    std::iter::once(0)
                        .chain(self.source.text.match_indices('\n').map(|(at, _)| at + 1))
                        .collect::<Vec<usize>>()
                });
                let text = self.case_text(line_starts, &starts, i);
                self.unused_matrix_keys(&m.value, &combinations, &text, &m.referenced);
            }
            let errors_before = self.errors();
            let first = first_index + self.planned;
            self.planned += combinations.len();
            let tagged = self.selection.tagged(&spec.value.tags, &file.tags);
            let Some(names) = self.entry_names(spec, &combinations, &scope, first, tagged) else {
                continue;
            };
            if self.errors() > errors_before {
                continue;
            }
            let line = spec.referenced.line();
            for (n, (combination, name)) in combinations.iter().zip(names).enumerate() {
                if let Some(first) = seen.insert(name.clone(), line) {
                    self.error(
                        &spec.value.name.referenced,
                        format!(
                            "case name `{name}` is used twice in this file (first at line {first})"
                        ),
                        Some(
                            "case names must be unique in a file: dashboards track cases by name"
                                .into(),
                        ),
                    );
                }
                if !tagged || !self.selection.named(&name, &suite_name) {
                    continue;
                }
                let index = first + n;
                // Contexts are built one at a time (twice: for the names, then for the case)
                // so that a 100,000-case matrix never holds 100,000 of them.
                let context = scope.context(combination, &name, index, 1);
                let Some(mut case) = self.case(spec, defaults, file, &context, name) else {
                    if self.errors() >= errors_before + 20 {
                        break;
                    }
                    continue;
                };
                case.index = index;
                case.origin = super::Origin {
                    file: file_index,
                    spec: i as u32,
                    combination: n as u32,
                    index: index as u32,
                };
                case.suite = suite_name.clone();
                case.file = file_name.clone();
                cases.push(case);
            }
        }
        Suite {
            name: suite_name,
            file: file_name,
            tags: file.tags.clone(),
            cases,
        }
    }

    /// The names of an entry's cases (`first`: the first's index), unique among them. A case
    /// its tags leave out (not `tagged`) is named all the same, since two cases of one name are
    /// an error whatever is selected; but a name it cannot render is no error (it may read a
    /// variable only the selected cases need), and then `None`.
    fn entry_names(
        &mut self,
        spec: &Located<crate::scenario::model::CaseSpec>,
        combinations: &[Combination],
        scope: &Scope,
        first: usize,
        tagged: bool,
    ) -> Option<Vec<String>> {
        let raw_name = &spec.value.name;
        let names: Vec<Option<String>> = if raw_name.value.contains("{{") {
            (combinations.iter().enumerate())
                .map(|(n, c)| {
                    let context = scope.context(c, &raw_name.value, first + n, 1);
                    match tagged {
                        true => self.render(raw_name, &context),
                        false => self.templates.render(&raw_name.value, &context).ok(),
                    }
                })
                .collect()
        } else {
            vec![Some(raw_name.value.clone()); combinations.len()]
        };
        let names: Vec<String> = names.into_iter().collect::<Option<_>>()?;
        if tagged {
            self.unstable_name(raw_name);
        }
        Some(matrix::unique_names(names, combinations, &raw_name.value))
    }

    /// `case` of `file` built again for attempt `attempt` from its `combination`, with fresh
    /// templates.
    pub fn rebuild(
        &mut self,
        file: &ScenarioFile,
        case: &Case,
        combination: &Combination,
        attempt: u32,
    ) -> Option<Case> {
        let origin = case.origin;
        let spec = file.cases.get(origin.spec as usize)?;
        let scope = Scope::of(self, file);
        let context = scope.context(combination, &case.name, origin.index as usize, attempt);
        self.expect_templated = super::expect::templated(&spec.value);
        let empty = Defaults::default();
        let defaults = file.defaults.as_ref().unwrap_or(&empty);
        let mut again = self.case(spec, defaults, file, &context, case.name.to_string())?;
        again.origin = origin;
        again.attempt = attempt;
        Some(again)
    }

    /// Keeps an entry's combinations for building its cases again, when the run may retry;
    /// hands them back to build the cases now.
    fn keep(&mut self, combinations: Vec<Combination>) -> Arc<[Combination]> {
        let combinations: Arc<[Combination]> = Arc::from(combinations);
        if let Some(kept) = &mut self.kept {
            kept.push(combinations.clone());
        }
        combinations
    }

    /// The combinations a case expands to, within what the run may still plan.
    fn combinations(
        &mut self,
        spec: &Located<crate::scenario::model::CaseSpec>,
    ) -> Option<Vec<Combination>> {
        let combinations = match &spec.value.matrix {
            None if self.budget == 0 => {
                self.over_budget(&spec.referenced);
                return None;
            }
            None => vec![Combination::new()],
            Some(m) => match self
                .table(&m.value)
                .and_then(|table| matrix::expand_with(&m.value, table.as_ref(), self.budget))
            {
                Ok(c) => c,
                Err(mut e) => {
                    let at = e.at.unwrap_or(m.referenced);
                    let max = self.options.max_cases;
                    if self.budget < max {
                        e.message = e.message.replace(
                            &format!("more than the limit of {}", self.budget),
                            &format!(
                                "more than the {} case(s) left of the run's limit of {max}",
                                self.budget
                            ),
                        );
                    }
                    self.error(&at, e.message, e.help);
                    return None;
                }
            },
        };
        self.budget -= combinations.len();
        Some(combinations)
    }

    /// The rows of a matrix's `from:` file (`None` without one), read relative to the scenario
    /// file; a problem is located at `from:`.
    fn table(
        &self,
        m: &crate::scenario::model::Matrix,
    ) -> Result<Option<crate::scenario::table::Table>, matrix::MatrixError> {
        let Some(from) = &m.from else {
            return Ok(None);
        };
        let dir = self
            .source
            .path
            .parent()
            .unwrap_or(std::path::Path::new(""));
        let path = dir.join(&from.value);
        crate::scenario::table::read(&path, &from.value, self.budget)
            .map(Some)
            .map_err(|e| matrix::MatrixError {
                message: e.message,
                help: e.help,
                at: Some(from.referenced),
            })
    }

    /// The text a case's templates can come from: its own lines, and the file's lines before
    /// the first case (where `defaults:` sits). `line_starts` holds each line's byte offset.
    fn case_text(&self, line_starts: &[usize], starts: &[u64], i: usize) -> String {
        let text = &self.source.text;
        let at = |line: u64| {
            line_starts
                .get(line.saturating_sub(1) as usize)
                .copied()
                .unwrap_or(text.len())
        };
        let preamble = &text[..at(starts[0])];
        let own = &text[at(starts[i])..starts.get(i + 1).map_or(text.len(), |&n| at(n))];
        format!("{preamble}\n{own}")
    }

    /// More cases than `--max-cases` in the whole run: reported once, at the first case over.
    fn over_budget(&mut self, at: &Location) {
        self.error(
            at,
            format!(
                "the run plans more than {} cases (the limit)",
                self.options.max_cases
            ),
            Some("run fewer files or cases, or raise the limit with `--max-cases N`".into()),
        );
    }
}
