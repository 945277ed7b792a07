//! The plan: every case of every file, templated, defaulted and named, ready to run.
//!
//! Building the plan is where scenario mistakes surface (all of a file's at once), so that
//! nothing runs when anything is wrong.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use handlebars::Context;
use serde_json::{Map, Value, json};
use serde_saphyr::Location;

mod select;

pub use select::{Selected, Selection, Shard};

use crate::duration::parse_duration;
use crate::scenario::matcher::Matcher;
use crate::scenario::matrix::{self, Combination, DEFAULT_MAX_CASES};
use crate::scenario::model::{
    CallbackSpec, CaseSpec, ConversionExpect, Defaults, Faults, Located, ResponseExpect,
    ScenarioFile,
};
use crate::scenario::template::Templates;
use crate::scenario::{ScenarioDiagnostic, SourceFile};

/// How long a case may take in all when neither the file nor `--timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for expected callbacks when `within` is not given.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
/// How long `callback: none` listens before it is satisfied.
pub const DEFAULT_NONE_WAIT: Duration = Duration::from_secs(1);

/// Everything to run.
#[derive(Debug)]
pub struct Plan {
    pub run_id: String,
    pub suites: Vec<Suite>,
    /// Problems worth knowing that do not stop the run.
    pub warnings: Vec<ScenarioDiagnostic>,
}

/// One scenario file.
#[derive(Debug)]
pub struct Suite {
    pub name: Arc<str>,
    pub file: Arc<str>,
    pub tags: Vec<String>,
    pub cases: Vec<Case>,
}

/// One case, ready to run: every template rendered, every default applied.
#[derive(Debug, Clone)]
pub struct Case {
    /// Position in the whole plan (file order).
    pub index: usize,
    pub name: String,
    pub suite: Arc<str>,
    pub file: Arc<str>,
    pub line: u64,
    pub tags: Vec<String>,
    pub offer: String,
    pub member: String,
    pub partner: Option<String>,
    pub mode: Mode,
    pub event: Option<String>,
    pub params: BTreeMap<String, String>,
    /// The expected testing-tools flag text; `None` when the check is off.
    pub flag: Option<String>,
    /// Faults for a sandbox target, as the sandbox API takes them (`None`: none).
    pub sandbox_faults: Option<Arc<Value>>,
    pub timeout: Duration,
    /// Shared by the cases of a matrix when their expectations hold no template.
    pub expect: Arc<CaseExpect>,
}

/// Which of the Operation Tools' three modes a case drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Create a click, then a conversion; the callback follows.
    Generate,
    /// Convert an existing click; the callback follows.
    Click(String),
    /// Only (re)send the callback of an existing conversion.
    CallbackOnly { click: String, conversion: String },
}

/// What a case checks.
#[derive(Debug, Clone)]
pub struct CaseExpect {
    pub click_status: u16,
    pub click: AnswerChecks,
    pub conversion_status: u16,
    /// The conversion state the platform must answer; `None`: anything but Rejected.
    pub conversion_state: Option<String>,
    pub conversion: AnswerChecks,
    pub callback: CallbackCheck,
    pub callback_response: Option<ResponseCheck>,
}

/// Matchers on an HTTP answer beyond its status.
#[derive(Debug, Clone, Default)]
pub struct AnswerChecks {
    /// On the whole body, as text (its `path` is empty).
    pub body: Option<PayloadCheck>,
    /// Dot paths into the JSON body.
    pub json: Vec<PayloadCheck>,
    /// Header names (lowercased) and their matchers.
    pub headers: Vec<PayloadCheck>,
}

impl AnswerChecks {
    /// True when nothing is checked.
    pub fn is_empty(&self) -> bool {
        self.body.is_none() && self.json.is_empty() && self.headers.is_empty()
    }
}

/// The expectation on callbacks caught by the receiver.
#[derive(Debug, Clone)]
pub enum CallbackCheck {
    /// Nothing is checked (callback-only mode without `expect.callback`).
    Unchecked,
    /// No callback may arrive during `wait`.
    None { wait: Duration },
    /// Exactly `count` callbacks within `within`, each matching `payload` and `headers`.
    Expect {
        within: Duration,
        count: u32,
        payload: Vec<PayloadCheck>,
        /// Header names (lowercased) and their matchers.
        headers: Vec<PayloadCheck>,
    },
}

/// One `path: matcher` line of `expect.callback.payload`.
#[derive(Debug, Clone)]
pub struct PayloadCheck {
    pub path: String,
    pub matcher: Matcher,
    /// `file:line:col` of the expectation.
    pub at: String,
}

/// Expectations on the endpoint's answer reported by the callback tool.
#[derive(Debug, Clone)]
pub struct ResponseCheck {
    /// `None`: any 2xx.
    pub status: Option<u16>,
    pub answer: AnswerChecks,
}

/// Settings from the command line and the target that shape the plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The offer of cases that name none, when the target has a default one (the sandbox's).
    pub default_offer: Option<String>,
    /// True when the target takes `sandbox:` faults.
    pub sandbox_faults: bool,
    /// `--var k=v`, overriding the files' `vars`.
    pub vars: Vec<(String, String)>,
    /// `--secret K=V`: read as `{{env.K}}`, over the environment's value.
    pub secrets: Vec<(String, String)>,
    /// `--timeout`: the per-case timeout for cases that set none.
    pub timeout: Option<Duration>,
    /// `--max-cases`: how many cases the run may plan in all.
    pub max_cases: usize,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            default_offer: None,
            sandbox_faults: false,
            vars: Vec::new(),
            secrets: Vec::new(),
            timeout: None,
            max_cases: DEFAULT_MAX_CASES,
        }
    }
}

impl Plan {
    /// Every case in file order.
    pub fn cases(&self) -> impl Iterator<Item = &Case> {
        self.suites.iter().flat_map(|s| s.cases.iter())
    }

    /// How many cases there are.
    pub fn len(&self) -> usize {
        self.suites.iter().map(|s| s.cases.len()).sum()
    }

    /// True when no case is planned.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reads, checks and expands every file; all problems of all files come back together
/// (errors and warnings, in file order). The plan carries the warnings when there is no error.
pub fn build(
    paths: &[impl AsRef<Path>],
    options: &PlanOptions,
) -> Result<Plan, Vec<ScenarioDiagnostic>> {
    let mut sources = Vec::with_capacity(paths.len());
    let mut unreadable = Vec::new();
    for path in paths {
        match SourceFile::read(path.as_ref()) {
            Ok(s) => sources.push(s),
            Err(e) => unreadable.push(*e),
        }
    }
    match build_sources(&sources, options) {
        Ok(plan) if unreadable.is_empty() => Ok(plan),
        Ok(plan) => Err(unreadable.into_iter().chain(plan.warnings).collect()),
        Err(problems) => Err(unreadable.into_iter().chain(problems).collect()),
    }
}

/// [`build`] over files already read.
pub fn build_sources(
    sources: &[SourceFile],
    options: &PlanOptions,
) -> Result<Plan, Vec<ScenarioDiagnostic>> {
    let run_id = uuid::Uuid::new_v4().to_string();
    let templates = Templates::new();
    let env: Map<String, Value> = std::env::vars()
        .chain(options.secrets.iter().cloned())
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    let mut suites: Vec<Suite> = Vec::new();
    let mut problems = Vec::new();
    let mut next_index = 0;
    for source in sources {
        let (file, mut file_problems) = crate::scenario::parse(source);
        let parsed = file_problems.is_empty();
        let Some(file) = file else {
            problems.extend(file_problems);
            continue;
        };
        let mut builder = SuiteBuilder {
            source,
            options,
            templates: &templates,
            run_id: &run_id,
            env: &env,
            problems: Vec::new(),
            matchers: HashMap::new(),
            shared_expect: HashMap::new(),
            expect_templated: false,
            budget: options.max_cases.saturating_sub(next_index),
        };
        let suite = builder.build(&file, next_index);
        let clean = parsed && builder.problems.iter().all(|p| !p.is_error());
        file_problems.extend(dedup(builder.problems));
        // In the order they are written, as a reader goes through the file.
        file_problems.sort_by_key(|p| p.span.map(|s| s.offset()));
        problems.extend(file_problems);
        if clean {
            next_index += suite.cases.len();
            suites.push(suite);
        }
    }
    distinct_suite_names(&mut suites);
    if problems.iter().any(ScenarioDiagnostic::is_error) {
        Err(problems)
    } else {
        Ok(Plan {
            run_id,
            suites,
            warnings: problems,
        })
    }
}

/// Two files with the same `name:` must not merge into one suite on a dashboard (GitLab keeps
/// only the first of equal names): the later ones get their file's path appended.
fn distinct_suite_names(suites: &mut [Suite]) {
    let mut seen = std::collections::HashSet::new();
    for suite in suites {
        if seen.insert(suite.name.clone()) {
            continue;
        }
        let name: Arc<str> = Arc::from(format!("{} ({})", suite.name, suite.file));
        seen.insert(name.clone());
        suite.name = name.clone();
        for case in &mut suite.cases {
            case.suite = name.clone();
        }
    }
}

/// Expanded cases repeat their template's problems: each is reported once.
fn dedup(problems: Vec<ScenarioDiagnostic>) -> Vec<ScenarioDiagnostic> {
    let mut seen = std::collections::HashSet::new();
    problems
        .into_iter()
        .filter(|p| seen.insert((p.at.clone(), p.message.clone())))
        .collect()
}

/// True when any expectation of `expect` holds a template (so it may differ per case).
fn templated(expect: &crate::scenario::model::Expect) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains("{{"),
            Value::Array(items) => items.iter().any(value),
            Value::Object(map) => map.values().any(value),
            _ => false,
        }
    }
    fn lines(map: &BTreeMap<String, Located<Value>>) -> bool {
        map.values().any(|v| value(&v.value))
    }
    let answer = |r: Option<AnswerSpec>| {
        r.is_some_and(|r| {
            r.body.is_some_and(|b| value(&b.value)) || lines(r.json) || lines(r.headers)
        })
    };
    let callback = match expect.callback.as_ref().map(|c| &c.value) {
        Some(CallbackSpec::Some(c)) => lines(&c.payload) || lines(&c.headers),
        _ => false,
    };
    callback
        || answer(expect.click.as_ref().map(AnswerSpec::from))
        || answer(expect.conversion.as_ref().map(AnswerSpec::from))
        || answer(expect.callback_response.as_ref().map(AnswerSpec::from))
}

/// The parts of an answer expectation that every answer has.
#[derive(Clone, Copy)]
struct AnswerSpec<'a> {
    body: Option<&'a Located<Value>>,
    json: &'a BTreeMap<String, Located<Value>>,
    headers: &'a BTreeMap<String, Located<Value>>,
}

impl<'a> From<&'a ResponseExpect> for AnswerSpec<'a> {
    fn from(r: &'a ResponseExpect) -> Self {
        AnswerSpec {
            body: r.body.as_ref(),
            json: &r.json,
            headers: &r.headers,
        }
    }
}

impl<'a> From<&'a ConversionExpect> for AnswerSpec<'a> {
    fn from(r: &'a ConversionExpect) -> Self {
        AnswerSpec {
            body: r.body.as_ref(),
            json: &r.json,
            headers: &r.headers,
        }
    }
}

/// A case's own value, else the file default's.
fn pick<'a>(
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

struct SuiteBuilder<'a> {
    source: &'a SourceFile,
    options: &'a PlanOptions,
    templates: &'a Templates,
    run_id: &'a str,
    env: &'a Map<String, Value>,
    problems: Vec<ScenarioDiagnostic>,
    /// Matchers already parsed, by their rendered YAML: a regex is compiled once per file,
    /// not once per case.
    matchers: HashMap<String, Matcher>,
    /// The current case's expectations, by mode, when they hold no template: built once and
    /// shared by every case of its matrix.
    shared_expect: HashMap<u8, Arc<CaseExpect>>,
    /// True when the current case's expectations hold a template.
    expect_templated: bool,
    /// How many more cases the run may plan (`--max-cases` less those planned already).
    budget: usize,
}

impl SuiteBuilder<'_> {
    fn error(&mut self, at: &Location, message: impl Into<String>, help: Option<String>) {
        self.problems
            .push(self.source.diagnostic(Some(at), message, help));
    }

    fn warn(&mut self, at: &Location, message: impl Into<String>, help: Option<String>) {
        let warning = self
            .source
            .diagnostic(Some(at), message, help)
            .into_warning();
        self.problems.push(warning);
    }

    fn errors(&self) -> usize {
        self.problems.iter().filter(|p| p.is_error()).count()
    }

    fn build(&mut self, file: &ScenarioFile, first_index: usize) -> Suite {
        let suite_name: Arc<str> = match &file.name {
            Some(n) => Arc::from(n.value.as_str()),
            None => Arc::from(
                self.source
                    .path
                    .file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "scenarios".into()),
            ),
        };
        let file_name: Arc<str> = Arc::from(self.source.display_name());
        let vars = self.vars(file);
        let env = referenced_env(&self.source.text, self.env);
        let empty = Defaults::default();
        let defaults = file.defaults.as_ref().unwrap_or(&empty);
        let mut cases = Vec::with_capacity(file.cases.len());
        let mut seen: HashMap<String, u64> = HashMap::new();
        let starts: Vec<u64> = file.cases.iter().map(|c| c.referenced.line()).collect();
        let mut line_starts: Option<Vec<usize>> = None;
        for (i, spec) in file.cases.iter().enumerate() {
            self.shared_expect.clear();
            self.expect_templated = templated(&spec.value.expect);
            let combinations = match &spec.value.matrix {
                None if self.budget == 0 => {
                    self.over_budget(&spec.referenced);
                    break;
                }
                None => vec![Combination::new()],
                Some(m) => match matrix::expand(&m.value, self.budget) {
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
                        continue;
                    }
                },
            };
            self.budget -= combinations.len();
            if let Some(m) = &spec.value.matrix {
                let line_starts = line_starts.get_or_insert_with(|| {
                    std::iter::once(0)
                        .chain(self.source.text.match_indices('\n').map(|(at, _)| at + 1))
                        .collect::<Vec<usize>>()
                });
                let text = self.case_text(line_starts, &starts, i);
                self.unused_matrix_keys(&m.value, &combinations, &text, &m.referenced);
            }
            // Contexts are built one at a time (twice: for the names, then for the case) so
            // that a 100,000-case matrix never holds 100,000 of them.
            let run_id = self.run_id;
            let context_for = |combination: &Combination, name: &str, index: usize| {
                let matrix: Map<String, Value> = combination.iter().cloned().collect();
                Context::from(json!({
                    "vars": vars,
                    "matrix": matrix,
                    "env": env,
                    "case": {"name": name, "index": index},
                    "run": {"id": run_id},
                }))
            };
            let errors_before = self.errors();
            let raw_name = &spec.value.name;
            let names: Vec<Option<String>> = if raw_name.value.contains("{{") {
                let first = first_index + cases.len();
                combinations
                    .iter()
                    .enumerate()
                    .map(|(n, c)| {
                        let context = context_for(c, &raw_name.value, first + n);
                        self.render(raw_name, &context)
                    })
                    .collect()
            } else {
                vec![Some(raw_name.value.clone()); combinations.len()]
            };
            if self.errors() > errors_before {
                continue;
            }
            let names: Vec<String> = names.into_iter().flatten().collect();
            self.unstable_name(raw_name);
            let names = matrix::unique_names(names, &combinations, &raw_name.value);
            cases.reserve(combinations.len());
            for (combination, name) in combinations.iter().zip(names) {
                let index = first_index + cases.len();
                let context = context_for(combination, &name, index);
                let Some(mut case) = self.case(spec, defaults, file, &context, name) else {
                    if self.errors() >= errors_before + 20 {
                        break;
                    }
                    continue;
                };
                case.index = index;
                case.suite = suite_name.clone();
                case.file = file_name.clone();
                if let Some(first) = seen.insert(case.name.clone(), case.line) {
                    self.error(
                        &spec.value.name.referenced,
                        format!(
                            "case name `{}` is used twice in this file (first at line {first})",
                            case.name
                        ),
                        Some(
                            "case names must be unique in a file: dashboards track cases by name"
                                .into(),
                        ),
                    );
                }
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

    /// A matrix key no template reads runs the same requests once per value: a warning.
    fn unused_matrix_keys(
        &mut self,
        spec: &crate::scenario::model::Matrix,
        combinations: &[Combination],
        text: &str,
        at: &Location,
    ) {
        let mut keys: Vec<&str> = Vec::new();
        for combination in combinations {
            for (k, _) in combination {
                if !keys.contains(&k.as_str()) {
                    keys.push(k);
                }
            }
        }
        for key in keys {
            if !matrix::mentions(text, key) {
                let at = spec
                    .axes
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(*at, |(_, v)| v.referenced);
                self.warn(
                    &at,
                    format!("matrix key `{key}` is not used by this case: each of its values sends the same requests"),
                    Some(format!("use `{{{{matrix.{key}}}}}` in the case (in `event:`, `params:`, …), or remove the key")),
                );
            }
        }
    }

    /// A name that changes every run breaks the dashboards that track cases by name.
    fn unstable_name(&mut self, name: &Located<String>) {
        let text = &name.value;
        let volatile = ["uuid", "now", "random", "run.id"]
            .into_iter()
            .find(|h| text.contains(&format!("{{{{{h}")) || text.contains(&format!("{{{{ {h}")));
        if let Some(helper) = volatile {
            self.warn(
                &name.referenced,
                format!("this case name uses `{helper}`, so it changes on every run"),
                Some("dashboards track cases by name: keep names stable, and put run-specific values in `params:`".into()),
            );
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

    fn render(&mut self, value: &Located<String>, context: &Context) -> Option<String> {
        match self.templates.render(&value.value, context) {
            Ok(s) => Some(s),
            Err(e) => {
                self.error(&value.referenced, e, None);
                None
            }
        }
    }

    fn render_value(&mut self, value: &Located<Value>, context: &Context) -> Option<Value> {
        fn walk(t: &Templates, v: &Value, c: &Context) -> Result<Value, String> {
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
                        .collect::<Result<_, String>>()?,
                ),
                other => other.clone(),
            })
        }
        match walk(self.templates, &value.value, context) {
            Ok(v) => Some(v),
            Err(e) => {
                self.error(&value.referenced, e, None);
                None
            }
        }
    }

    fn at(&self, location: &Location) -> String {
        format!(
            "{}:{}:{}",
            self.source.display_name(),
            location.line(),
            location.column()
        )
    }

    fn case(
        &mut self,
        spec: &Located<CaseSpec>,
        defaults: &Defaults,
        file: &ScenarioFile,
        context: &Context,
        name: String,
    ) -> Option<Case> {
        let before = self.errors();
        let c = &spec.value;
        let offer = match pick(&c.offer, &defaults.offer) {
            Some(v) => self.render(v, context),
            None if self.options.default_offer.is_some() => self.options.default_offer.clone(),
            None => {
                self.error(
                    &spec.referenced,
                    "this case names no `offer`",
                    Some("set `offer:` on the case or under `defaults:`".into()),
                );
                None
            }
        };
        let member = match pick(&c.member, &defaults.member) {
            Some(v) => self.render(v, context),
            None => Some(format!("pitcrew-{}", uuid::Uuid::new_v4())),
        };
        let partner = pick(&c.partner, &defaults.partner).and_then(|v| self.render(v, context));
        let event = pick(&c.event, &defaults.event).and_then(|v| self.render(v, context));
        let click = pick(&c.click, &defaults.click);
        let conversion = c.conversion.as_ref().and_then(|v| self.render(v, context));
        let mode = match (&click, conversion) {
            (None, Some(_)) => {
                self.error(
                    &c.conversion.as_ref()?.referenced,
                    "`conversion:` needs the click id it belongs to",
                    Some("add `click: <click id>` to resend this conversion's callback".into()),
                );
                None
            }
            (Some(click), conversion) => match (self.render(click, context), conversion) {
                (Some(id), None) if id == "generate" => Some(Mode::Generate),
                (Some(id), Some(_)) if id == "generate" => {
                    self.error(
                        &c.conversion.as_ref()?.referenced,
                        "`conversion:` cannot be combined with `click: generate`",
                        Some("a generated click has no conversion yet: drop `conversion:`, or give the click id".into()),
                    );
                    None
                }
                (Some(id), Some(conversion)) => Some(Mode::CallbackOnly {
                    click: id,
                    conversion,
                }),
                (Some(id), None) => Some(Mode::Click(id)),
                (None, _) => None,
            },
            (None, None) => Some(Mode::Generate),
        };
        if matches!(mode, Some(Mode::Generate | Mode::Click(_))) && event.is_none() {
            self.error(
                &spec.referenced,
                "this case converts a click but names no `event`",
                Some("set `event:` (e.g. install, signup, purchase) on the case or under `defaults:`".into()),
            );
        }
        let mut params = BTreeMap::new();
        let converts = matches!(mode, Some(Mode::Generate | Mode::Click(_)));
        for (key, value) in defaults.params.iter().chain(c.params.iter()) {
            if key == "pub_sub_5" && converts {
                self.warn(
                    &value.referenced,
                    "`pub_sub_5` will be overwritten: the Operation Tools put the testing-tools flag in pubSub5",
                    Some("use another pub_sub_N for your own value; the flag check reads pubSub5".into()),
                );
            }
            match self.render_value(value, context) {
                Some(Value::String(s)) => {
                    params.insert(key.clone(), s);
                }
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    params.insert(key.clone(), v.to_string());
                }
                Some(Value::Null) => {
                    params.remove(key);
                }
                Some(other) => self.error(
                    &value.referenced,
                    format!(
                        "parameter `{key}` must be a scalar, not {}",
                        crate::scenario::matcher::describe(&other)
                    ),
                    None,
                ),
                None => {}
            }
        }
        let flag_setting = c
            .flag
            .as_ref()
            .or(defaults.flag.as_ref())
            .or(file.flag.as_ref());
        let flag_default = match &mode {
            Some(Mode::CallbackOnly { .. }) => None,
            _ => Some(crate::TESTING_TOOLS_FLAG.to_string()),
        };
        let flag = match flag_setting {
            None => flag_default,
            Some(setting) => match self.render_value(setting, context) {
                Some(Value::Bool(false)) => None,
                Some(Value::Bool(true)) => Some(crate::TESTING_TOOLS_FLAG.to_string()),
                Some(Value::String(s)) => Some(s),
                Some(_) => {
                    self.error(
                        &setting.referenced,
                        "`flag` takes false, true or the expected pubSub5 text",
                        None,
                    );
                    None
                }
                None => None,
            },
        };
        let sandbox = c.sandbox.as_ref().or(defaults.sandbox.as_ref());
        if sandbox.is_some() && !self.options.sandbox_faults {
            self.error(
                &spec.referenced,
                "`sandbox:` faults only apply to the sandbox target",
                Some("run with `--target sandbox` (the default), or remove `sandbox:`".into()),
            );
        }
        let sandbox_faults = match sandbox {
            Some(s) => self.faults(&s.faults),
            None => Some(None),
        };
        let timeout = match pick(&c.timeout, &defaults.timeout) {
            Some(t) => self.duration(t),
            None => Some(self.options.timeout.unwrap_or(DEFAULT_TIMEOUT)),
        };
        let kind = match &mode {
            Some(Mode::Generate) => 0,
            Some(Mode::Click(_)) => 1,
            _ => 2,
        };
        let expect = match self.shared_expect.get(&kind) {
            Some(shared) => Some(shared.clone()),
            None => {
                let expect = self.expect(c, mode.as_ref(), context).map(Arc::new);
                if let Some(e) = &expect
                    && !self.expect_templated
                {
                    self.shared_expect.insert(kind, e.clone());
                }
                expect
            }
        };
        if let (
            Some(timeout),
            Some(CaseExpect {
                callback: CallbackCheck::Expect { within, .. },
                ..
            }),
        ) = (timeout, expect.as_deref())
            && *within > timeout
            && let Some(CallbackSpec::Some(spec_expect)) =
                c.expect.callback.as_ref().map(|s| &s.value)
            && let Some(w) = &spec_expect.within
        {
            self.warn(
                &w.referenced,
                format!(
                    "`within: {}` is longer than the case's timeout of {}: the case will time out first",
                    w.value,
                    crate::duration::format_duration(timeout)
                ),
                Some("raise `timeout:` or shorten `within:`".into()),
            );
        }
        if self.errors() > before {
            return None;
        }
        Some(Case {
            index: 0,
            name,
            suite: Arc::from(""),
            file: Arc::from(""),
            line: spec.referenced.line(),
            tags: c.tags.clone(),
            offer: offer?,
            member: member?,
            partner,
            mode: mode?,
            event,
            params,
            flag,
            sandbox_faults: sandbox_faults?,
            timeout: timeout?,
            expect: expect?,
        })
    }

    /// `sandbox.faults` in the sandbox API's words (`None` when it is wrong, reported).
    fn faults(&mut self, faults: &Faults) -> Option<Option<Arc<Value>>> {
        let mut wire = Map::new();
        let before = self.errors();
        if faults.omit_flag {
            wire.insert("omit_flag".into(), Value::Bool(true));
        }
        if faults.drop_callback {
            wire.insert("drop_callback".into(), Value::Bool(true));
        }
        if let Some(delay) = &faults.callback_delay
            && self.duration(delay).is_some()
        {
            wire.insert("callback_delay".into(), Value::String(delay.value.clone()));
        }
        match faults.duplicate_callback.as_ref().map(|d| (&d.value, d)) {
            None | Some((Value::Bool(false), _)) => {}
            Some((Value::Bool(true), _)) => {
                wire.insert("duplicate_callback".into(), Value::Bool(true));
            }
            Some((Value::String(text), at)) => {
                let located = Located {
                    value: text.clone(),
                    referenced: at.referenced,
                };
                if self.duration(&located).is_some() {
                    wire.insert("duplicate_callback".into(), Value::String(text.clone()));
                }
            }
            Some((other, at)) => self.error(
                &at.referenced,
                format!(
                    "`duplicate_callback`: expected true, false or a delay such as `2s`, found {}",
                    crate::scenario::matcher::describe(other)
                ),
                None,
            ),
        }
        if self.errors() > before {
            return None;
        }
        Some((!wire.is_empty()).then(|| Arc::new(Value::Object(wire))))
    }

    fn duration(&mut self, text: &Located<String>) -> Option<Duration> {
        match parse_duration(&text.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(&text.referenced, e, None);
                None
            }
        }
    }

    fn matcher(&mut self, value: &Located<Value>, context: &Context) -> Option<Matcher> {
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
                self.error(&value.referenced, e, None);
                None
            }
        }
    }

    fn expect(
        &mut self,
        c: &CaseSpec,
        mode: Option<&Mode>,
        context: &Context,
    ) -> Option<CaseExpect> {
        let e = &c.expect;
        let click_status = e
            .click
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .map_or(201, |s| s.value);
        let conversion_status = e
            .conversion
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .map_or(201, |s| s.value);
        let conversion_state = match e.conversion.as_ref().and_then(|r| r.state.as_ref()) {
            None => Some(None),
            Some(state) => self.conversion_state(state).map(Some),
        };
        let click = self.answer(e.click.as_ref().map(AnswerSpec::from), context);
        let conversion = self.answer(e.conversion.as_ref().map(AnswerSpec::from), context);
        let callback = match (&e.callback, mode) {
            (None, Some(Mode::CallbackOnly { .. })) => CallbackCheck::Unchecked,
            (None, _) if (200..300).contains(&conversion_status) => CallbackCheck::Expect {
                within: DEFAULT_WITHIN,
                count: 1,
                payload: Vec::new(),
                headers: Vec::new(),
            },
            (None, _) => CallbackCheck::None {
                wait: Duration::ZERO,
            },
            (Some(spec), _) => match &spec.value {
                CallbackSpec::None => CallbackCheck::None {
                    wait: DEFAULT_NONE_WAIT,
                },
                CallbackSpec::Some(expect) => {
                    let within = match &expect.within {
                        Some(w) => self.duration(w),
                        None => Some(DEFAULT_WITHIN),
                    };
                    let count = expect.count.as_ref().map_or(1, |c| c.value);
                    let payload = self.checks(&expect.payload, context, false);
                    let headers = self.checks(&expect.headers, context, true);
                    let within = within?;
                    if count == 0 {
                        CallbackCheck::None { wait: within }
                    } else {
                        CallbackCheck::Expect {
                            within,
                            count,
                            payload,
                            headers,
                        }
                    }
                }
            },
        };
        let callback_response = match (&e.callback_response, mode) {
            (Some(r), _) => Some(ResponseCheck {
                status: r.status.as_ref().map(|s| s.value),
                answer: self.answer(Some(AnswerSpec::from(r)), context)?,
            }),
            (None, Some(Mode::CallbackOnly { .. })) => Some(ResponseCheck {
                status: None,
                answer: AnswerChecks::default(),
            }),
            (None, _) => None,
        };
        Some(CaseExpect {
            click_status,
            click: click?,
            conversion_status,
            conversion_state: conversion_state?,
            conversion: conversion?,
            callback,
            callback_response,
        })
    }

    /// `path: matcher` lines (header names lowercased when `headers`).
    fn checks(
        &mut self,
        lines: &BTreeMap<String, Located<Value>>,
        context: &Context,
        headers: bool,
    ) -> Vec<PayloadCheck> {
        let mut checks = Vec::with_capacity(lines.len());
        for (path, value) in lines {
            if let Some(matcher) = self.matcher(value, context) {
                checks.push(PayloadCheck {
                    path: if headers {
                        path.to_ascii_lowercase()
                    } else {
                        path.clone()
                    },
                    matcher,
                    at: self.at(&value.referenced),
                });
            }
        }
        checks
    }

    /// `expect.conversion.state`: one of the states, spelled as the platform spells them.
    fn conversion_state(&mut self, state: &Located<String>) -> Option<String> {
        use crate::scenario::model::CONVERSION_STATES;
        if let Some(known) = CONVERSION_STATES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(&state.value))
        {
            return Some(known.to_string());
        }
        let hint = crate::scenario::did_you_mean(&state.value, CONVERSION_STATES.iter().copied())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        self.error(
            &state.referenced,
            format!("`state`: `{}` is not a conversion state", state.value),
            Some(format!(
                "{hint}a conversion is {}",
                CONVERSION_STATES.join(", ")
            )),
        );
        None
    }

    fn answer(&mut self, spec: Option<AnswerSpec>, context: &Context) -> Option<AnswerChecks> {
        let Some(spec) = spec else {
            return Some(AnswerChecks::default());
        };
        let before = self.errors();
        let body = spec.body.as_ref().and_then(|b| {
            Some(PayloadCheck {
                path: String::new(),
                matcher: self.matcher(b, context)?,
                at: self.at(&b.referenced),
            })
        });
        let json = self.checks(spec.json, context, false);
        let headers = self.checks(spec.headers, context, true);
        (self.errors() == before).then_some(AnswerChecks {
            body,
            json,
            headers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sandbox() -> PlanOptions {
        PlanOptions {
            default_offer: Some("demo-offer".into()),
            sandbox_faults: true,
            ..PlanOptions::default()
        }
    }

    fn build_text(text: &str, options: &PlanOptions) -> Result<Plan, Vec<ScenarioDiagnostic>> {
        let source = SourceFile {
            path: "t.yaml".into(),
            text: Arc::from(text),
        };
        build_sources(&[source], options)
    }

    #[test]
    fn sandbox_faults_are_refused_on_other_targets() {
        let text = "cases:\n  - name: a\n    event: install\n    sandbox: { faults: { omit_flag: true } }\n";
        assert!(build_text(text, &sandbox()).is_ok());
        let other = PlanOptions::default();
        let errs = build_text(&format!("defaults: {{ offer: o }}\n{text}"), &other).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:#?}");
        assert!(errs[0].message.contains("only apply to the sandbox target"));
        assert_eq!(errs[0].at, "t.yaml:3:5");
    }

    #[test]
    fn matrix_cases_see_their_values_and_names() {
        let text = "vars: { base: \"x\" }\ncases:\n  - name: \"{{matrix.e}}\"\n    matrix: { e: [install, signup], n: [1, 2] }\n    event: \"{{matrix.e}}\"\n    params: { pub_sub_1: \"{{vars.base}}-{{matrix.n}}-{{case.name}}\" }\n";
        let plan = build_text(text, &sandbox()).unwrap_or_else(|e| panic!("{e:#?}"));
        let cases: Vec<(String, String, String)> = plan
            .cases()
            .map(|c| {
                (
                    c.name.clone(),
                    c.event.clone().unwrap(),
                    c.params["pub_sub_1"].clone(),
                )
            })
            .collect();
        assert_eq!(
            cases[1],
            (
                "install [n=2]".into(),
                "install".into(),
                "x-2-install [n=2]".into()
            ),
            "case.name is the final, suffixed name"
        );
        assert_eq!(cases.len(), 4);
        let indexes: Vec<usize> = plan.cases().map(|c| c.index).collect();
        assert_eq!(indexes, [0, 1, 2, 3]);
    }
}
