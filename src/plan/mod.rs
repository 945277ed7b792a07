//! The plan: every case of every file, templated, defaulted and named, ready to run.
//!
//! Building the plan is where scenario mistakes surface (all of a file's at once), so that
//! nothing runs when anything is wrong. The parts: `suite.rs` expands a file into named cases,
//! `case.rs` builds one case, `expect.rs` its expectations, `steps.rs` its `then:` steps,
//! `faults.rs` its sandbox faults and receiver script, `warnings.rs` what is worth a warning.

mod case;
mod expect;
mod faults;
mod select;
mod steps;
mod suite;
mod warnings;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

pub use crate::delivery::{Script, ScriptedAnswer};
pub use select::{Selected, Selection, Shard};

use crate::scenario::matcher::Matcher;
use crate::scenario::matrix::{Combination, DEFAULT_MAX_CASES};
use crate::scenario::template::Templates;
use crate::scenario::{ScenarioDiagnostic, SourceFile};
use suite::SuiteBuilder;

/// How long a case may take in all when neither the file nor `--timeout` says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long to wait for expected callbacks when `within` is not given.
pub const DEFAULT_WITHIN: Duration = Duration::from_secs(10);
/// The parameter partner postbacks are matched to their case by (`{pub_click_id}`).
pub const PUB_CLICK_ID: &str = "pub_click_id";
/// How long `callback: none` listens before it is satisfied.
pub const DEFAULT_NONE_WAIT: Duration = Duration::from_secs(1);

/// Why a case could not be built again, or a selection cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A case could not be built for another attempt.
    #[error("{0}")]
    Rebuild(String),
    /// `--shard` is not K/N.
    #[error("{0}")]
    Shard(String),
}

/// Everything to run.
#[derive(Debug)]
pub struct Plan {
    pub run_id: String,
    pub suites: Vec<Suite>,
    /// Problems worth knowing that do not stop the run.
    pub warnings: Vec<ScenarioDiagnostic>,
    /// What the selection (`PlanOptions::selection`) kept of the files' cases.
    pub selected: Selected,
    /// What it takes to build a case again, kept when the run may retry (`--retries`).
    templates: Option<Arc<CaseTemplates>>,
}

/// What it takes to build a case again for a later attempt, with fresh templates: each file as
/// it was parsed when the plan was built, and each of its cases' matrix combinations. No file
/// is read or parsed again during a run.
#[derive(Debug)]
struct CaseTemplates {
    files: Vec<FileTemplate>,
    options: PlanOptions,
    env: Map<String, Value>,
}

/// One file's cases, as templates.
#[derive(Debug)]
struct FileTemplate {
    /// The file's index among those the plan was built from (`Origin::file`).
    index: u32,
    source: SourceFile,
    parsed: crate::scenario::model::ScenarioFile,
    /// Each entry of `cases:`, its combinations (one empty one without a matrix).
    combinations: Vec<Arc<[Combination]>>,
}

/// Where a case comes from: its file (among the plan's), its place in the file's `cases:`, its
/// matrix combination, and its position in the plan as first built (`case.index`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Origin {
    pub file: u32,
    pub spec: u32,
    pub combination: u32,
    pub index: u32,
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
    /// Where it comes from, to build it again.
    pub origin: Origin,
    /// Which attempt it was built for (`case.attempt` in templates), from 1.
    pub attempt: u32,
    /// Shared with the reports, which name the case by it.
    pub name: Arc<str>,
    pub suite: Arc<str>,
    pub file: Arc<str>,
    pub line: u64,
    pub tags: Vec<String>,
    /// Shared by the cases that render it alike (as are `event`, `params` and `flag`): a
    /// matrix of 100,000 cases holds one copy.
    pub offer: Arc<str>,
    pub member: String,
    pub partner: Option<String>,
    pub mode: Mode,
    /// The public path: the click through the offer's tracking link (`click: link`), the
    /// conversion through the advertiser's postback (`convert: postback`).
    pub public: PublicPath,
    pub event: Option<Arc<str>>,
    pub params: Params,
    /// The expected testing-tools flag text; `None` when the check is off.
    pub flag: Option<Arc<str>>,
    /// Faults for a sandbox target, as the sandbox API takes them (`None`: none).
    pub sandbox_faults: Option<Arc<Value>>,
    /// How pitcrew's receiver answers the case's deliveries (`None`: 200 `OK`).
    pub script: Option<Arc<Script>>,
    pub timeout: Duration,
    /// How long its deliveries must be quiet after its verdict (`expect.callback.settle`;
    /// `None`: the run's `--settle`).
    pub settle: Option<Duration>,
    /// Shared by the cases of a matrix when their expectations hold no template.
    pub expect: Arc<CaseExpect>,
    /// The `then:` steps, in order (shared like `expect`).
    pub steps: Arc<[Step]>,
    /// Its member, click or `pub_click_id` is rendered by `random` or `now`: it may equal
    /// another case's in one CI job and not in the next, so `--shard` deals it alone (every
    /// job must deal alike, or a case would run in no shard or two).
    pub deal_alone: bool,
}

/// Which of a case's steps go through GoKart's public surfaces instead of the tools.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PublicPath {
    /// `click: link`: the click through the offer's tracking link.
    pub link: bool,
    /// `convert: postback`: the conversion through the advertiser's postback.
    pub postback: bool,
}

/// A conversion's parameters (`pub_sub_1`, `cnv_amount`, …), shared by the cases and the
/// reports that hold the same ones.
pub type Params = Arc<BTreeMap<String, String>>;

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

/// What the first part of a case checks.
#[derive(Debug, Clone)]
pub struct CaseExpect {
    /// `file:line:col` of the case: where an expectation it does not write (a default) is.
    pub at: String,
    /// The click tool's status; `None`: one the target counts as done.
    pub click_status: Option<u16>,
    pub click: AnswerChecks,
    /// The conversion tool's status; `None`: one the target counts as done.
    pub conversion_status: Option<u16>,
    /// The conversion state the platform must answer; `None`: anything but Rejected.
    pub conversion_state: Option<String>,
    pub conversion: AnswerChecks,
    pub callback: CallbackCheck,
    pub callback_response: Option<ResponseCheck>,
    /// The callback tool's own status in callback-only mode (`expect.resend.status`); `None`:
    /// one the target counts as done.
    pub resend_status: Option<u16>,
    pub resend: AnswerChecks,
    /// The partner postbacks (judged for a case with a `pub_click_id`); `None` when
    /// `postbacks` is not written: none may arrive (boxed: most cases never write it).
    pub postbacks: Option<Box<PostbackCheck>>,
    /// Where each status and state expectation is written, when it is.
    pub written: Written,
}

/// The partner postbacks a case expects (`expect.postbacks`; unwritten, none).
#[derive(Debug, Clone, Default)]
pub struct PostbackCheck {
    /// Exactly how many (0: none may arrive).
    pub count: u32,
    /// Query parameters and their matchers, held by every postback.
    pub query: Vec<PayloadCheck>,
    /// How long to wait for them.
    pub within: Duration,
    /// `file:line:col` of `postbacks` (of the case, when it is not written).
    pub at: String,
    /// True when `postbacks` is written.
    pub written: bool,
}

/// `file:line:col` of the expectations a case writes on its tools' answers.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub click_status: Option<String>,
    pub conversion_status: Option<String>,
    pub conversion_state: Option<String>,
    pub resend_status: Option<String>,
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

/// The expectation on a part's deliveries.
#[derive(Debug, Clone)]
pub enum CallbackCheck {
    /// Nothing is checked (callback-only mode without `expect.callback`).
    Unchecked,
    /// No delivery may arrive during `wait`; `at`: where that is said (or the case or step
    /// that says it by default).
    None { wait: Duration, at: String },
    /// Deliveries as described.
    Expect(Box<CallbackExpect>),
}

impl CallbackCheck {
    /// Where the expectation is written (or the case or step it is the default of).
    pub fn at(&self) -> Option<&str> {
        match self {
            CallbackCheck::Unchecked => None,
            CallbackCheck::None { at, .. } => Some(at),
            CallbackCheck::Expect(e) => Some(&e.at),
        }
    }
}

/// What the deliveries of one part must be.
#[derive(Debug, Clone)]
pub struct CallbackExpect {
    /// `file:line:col` of the `callback:` expectation (or the case or step it is the default of).
    pub at: String,
    /// `file:line:col` of `count:`, when it is written.
    pub count_at: Option<String>,
    pub within: Duration,
    /// How many deliveries the endpoint must accept.
    pub count: u32,
    pub payload: Vec<PayloadCheck>,
    /// Header names (lowercased) and their matchers.
    pub headers: Vec<PayloadCheck>,
    /// Every delivery in order, accepted or not (`None`: refused deliveries fail the case).
    pub attempts: Option<Vec<AttemptCheck>>,
    /// The endpoint's answer to each accepted delivery.
    pub response: Option<DeliveryAnswerCheck>,
    /// Check each accepted callback against GoKart's schema v1.
    pub schema: bool,
}

/// One `path: matcher` line of an expectation.
#[derive(Debug, Clone)]
pub struct PayloadCheck {
    pub path: String,
    pub matcher: Matcher,
    /// `file:line:col` of the expectation.
    pub at: String,
}

/// One delivery attempt as `attempts` lists it.
#[derive(Debug, Clone)]
pub struct AttemptCheck {
    pub status: Option<PayloadCheck>,
    pub body: Option<PayloadCheck>,
    /// Platform time since the previous attempt.
    pub after: Option<Duration>,
    /// `file:line:col` of the entry.
    pub at: String,
}

/// The endpoint's answer to each accepted delivery.
#[derive(Debug, Clone)]
pub struct DeliveryAnswerCheck {
    pub status: Option<PayloadCheck>,
    pub body: Option<PayloadCheck>,
    /// The answer must come within this long (real time).
    pub within: Option<(Duration, String)>,
}

/// Expectations on the endpoint's answer reported by the callback tool.
#[derive(Debug, Clone)]
pub struct ResponseCheck {
    /// `None`: any 2xx.
    pub status: Option<u16>,
    pub answer: AnswerChecks,
    /// `file:line:col` of the `status` expectation, or of what expects it by default.
    pub at: String,
}

/// One `then:` step of a case.
#[derive(Debug, Clone)]
pub struct Step {
    pub action: Action,
    pub expect: StepExpect,
    /// `file:line:col` of the step.
    pub at: String,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Change the conversion's status; the platform calls back again.
    ChangeStatus {
        status: String,
        reason: Option<String>,
    },
    /// Resend the conversion's callback with the callback tool.
    Resend,
    /// Wait, letting deliveries come.
    Wait(Duration),
}

impl Action {
    /// How the step reads in a report: `change_status: Rejected`, `resend`, `wait 2s`.
    pub fn describe(&self) -> String {
        match self {
            Action::ChangeStatus { status, .. } => format!("change_status: {status}"),
            Action::Resend => "resend".into(),
            Action::Wait(d) => format!("wait: {}", crate::duration::format_duration(*d)),
        }
    }
}

/// What a step expects.
#[derive(Debug, Clone)]
pub struct StepExpect {
    pub callback: CallbackCheck,
    pub callback_response: Option<ResponseCheck>,
}

/// Settings from the command line and the target that shape the plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    /// The offer of cases that name none, when the target has a default one (the sandbox's).
    pub default_offer: Option<String>,
    /// True when the target takes `sandbox:` faults.
    pub sandbox_faults: bool,
    /// Why `receiver:` scripts cannot be used on this target (`None`: they can).
    pub no_scripts: Option<String>,
    /// Why a callback's request headers cannot be checked on this target (`None`: they can).
    pub no_callback_headers: Option<String>,
    /// Why this target's callbacks cannot be looked for by click (`None`: they can).
    pub no_click_log: Option<String>,
    /// Why this target's partner postbacks cannot be seen (`None`: they can).
    pub no_postbacks: Option<String>,
    /// The pipeline steps the target's profile leaves out, and the target's name: a case that
    /// needs one is an error.
    pub missing_steps: Vec<&'static str>,
    pub target_name: String,
    /// `--var k=v`, overriding the files' `vars`.
    pub vars: Vec<(String, String)>,
    /// `--secret K=V`: read as `{{env.K}}`, over the environment's value.
    pub secrets: Vec<(String, String)>,
    /// `--timeout`: the per-case timeout for cases that set none.
    pub timeout: Option<Duration>,
    /// `--max-cases`: how many cases the run may plan in all.
    pub max_cases: usize,
    /// `--retries`: what it takes to build a case again is kept only when there may be more
    /// than one attempt.
    pub retries: u32,
    /// `--filter`, `--tag` and `--shard`: selection comes first. A case they leave out is
    /// never checked against the target: one left out by a filter or tag is not even built
    /// (so an `{{env.X}}` only it reads may be unset); one in another shard is built (every
    /// CI job must deal the shards alike), but what the target cannot do that it asks for is
    /// no error.
    pub selection: Selection,
    /// `--sandbox-config`: that file is no scenario file, even in a folder of them.
    pub sandbox_config: Option<std::path::PathBuf>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            default_offer: None,
            sandbox_faults: false,
            no_scripts: None,
            no_callback_headers: None,
            no_click_log: None,
            no_postbacks: None,
            missing_steps: Vec::new(),
            target_name: "sandbox".into(),
            vars: Vec::new(),
            secrets: Vec::new(),
            timeout: None,
            max_cases: DEFAULT_MAX_CASES,
            retries: 0,
            selection: Selection::default(),
            sandbox_config: None,
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

    /// `case` built again for attempt `attempt`: its templates rendered afresh (a fresh
    /// member, a fresh uuid; `case.attempt` is `attempt`), its name, suite and index kept.
    pub fn rebuild(&self, case: &Case, attempt: u32) -> Result<Case, PlanError> {
        let Some(templates) = &self.templates else {
            return Err(PlanError::Rebuild(
                "the plan was built for a run without --retries (a bug; please report it)".into(),
            ));
        };
        let origin = case.origin;
        // Not every file read has cases (a sandbox config beside them is skipped).
        let template = templates.files.iter().find(|t| t.index == origin.file);
        let combination = template.and_then(|t| {
            let combinations = t.combinations.get(origin.spec as usize)?;
            combinations.get(origin.combination as usize)
        });
        let (Some(template), Some(combination)) = (template, combination) else {
            return Err(PlanError::Rebuild(
                "its file is not part of the plan (a bug; please report it)".into(),
            ));
        };
        let mut builder = SuiteBuilder {
            source: &template.source,
            options: &templates.options,
            templates: &Templates::new(),
            run_id: &self.run_id,
            env: &templates.env,
            problems: Vec::new(),
            error_count: 0,
            matchers: HashMap::new(),
            shared: HashMap::new(),
            expect_templated: false,
            budget: usize::MAX,
            shared_values: Default::default(),
            kept: None,
            selection: &Selection::default(),
            planned: 0,
            spec_index: origin.spec,
            deferred: Vec::new(),
        };
        let rebuilt = builder.rebuild(&template.parsed, case, combination, attempt);
        let problem = (builder.problems.iter().find(|p| p.is_error()))
            .or(builder.deferred.first().map(|(_, p)| p));
        match (rebuilt, problem) {
            (Some(mut again), None) => {
                again.index = case.index;
                again.suite = case.suite.clone();
                again.file = case.file.clone();
                Ok(again)
            }
            (_, Some(problem)) => Err(PlanError::Rebuild(format!(
                "its templates failed on attempt {attempt}: {}: {}",
                problem.at, problem.message
            ))),
            (None, None) => Err(PlanError::Rebuild(format!(
                "it could not be built for attempt {attempt}"
            ))),
        }
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
    let selection = options.selection.lowercase();
    let mut suites: Vec<Suite> = Vec::new();
    let mut found: Vec<FileProblems> = Vec::new();
    let mut next_index = 0;
    let mut total = 0;
    let keep = options.retries > 0;
    let mut files = Vec::new();
    for (file_index, source) in sources.iter().enumerate() {
        let (file, mut file_problems) = crate::scenario::parse(source);
        if !file_problems.is_empty()
            && let Some(keys) = crate::scenario::sandbox_config_keys(&source.text)
        {
            // A tenant's config kept beside the scenarios: not a broken scenario.
            let given = options.sandbox_config.as_ref().is_some_and(|given| {
                let real = |p: &Path| std::fs::canonicalize(p).ok();
                real(given).is_some_and(|g| real(&source.path) == Some(g))
            });
            if !given {
                let keys: Vec<String> = keys.iter().map(|k| format!("`{k}`")).collect();
                let note = source.diagnostic(
                    None,
                    format!(
                        "a sandbox config ({}), not a scenario file: skipped",
                        keys.join(", ")
                    ),
                    Some(format!(
                        "give it to the embedded sandbox with `--sandbox-config {}`, or keep it out of the folders pitcrew reads scenarios from",
                        source.display_name()
                    )),
                );
                found.push(FileProblems {
                    problems: vec![note.into_warning()],
                    built: None,
                    deferred: Vec::new(),
                });
            }
            continue;
        }
        let parsed = file_problems.is_empty();
        let Some(file) = file else {
            found.push(FileProblems {
                problems: file_problems,
                built: None,
                deferred: Vec::new(),
            });
            continue;
        };
        let mut builder = SuiteBuilder {
            source,
            options,
            templates: &templates,
            run_id: &run_id,
            env: &env,
            problems: Vec::new(),
            error_count: 0,
            matchers: HashMap::new(),
            shared: HashMap::new(),
            expect_templated: false,
            budget: options.max_cases.saturating_sub(next_index),
            shared_values: Default::default(),
            kept: keep.then(Vec::new),
            selection: &selection,
            planned: 0,
            spec_index: 0,
            deferred: Vec::new(),
        };
        let suite = builder.build(&file, file_index as u32, next_index);
        total += builder.planned;
        let clean = parsed && builder.problems.iter().all(|p| !p.is_error());
        if let Some(combinations) = builder.kept.take() {
            files.push(FileTemplate {
                index: file_index as u32,
                source: source.clone(),
                parsed: file,
                combinations,
            });
        }
        file_problems.extend(dedup(builder.problems));
        if clean {
            next_index += builder.planned;
            suites.push(suite);
        }
        found.push(FileProblems {
            problems: file_problems,
            built: clean.then_some(file_index as u32),
            deferred: builder.deferred,
        });
    }
    distinct_suite_names(&mut suites);
    let mut plan = Plan {
        run_id,
        suites,
        warnings: Vec::new(),
        selected: Selected {
            total: 0,
            matched: 0,
            kept: 0,
        },
        templates: None,
    };
    plan.selected = Selected {
        total,
        ..plan.select(&Selection {
            shard: options.selection.shard,
            ..Selection::default()
        })
    };
    // The entries of `cases:` with a case kept, by file.
    let kept: HashSet<(u32, u32)> = plan
        .cases()
        .map(|c| (c.origin.file, c.origin.spec))
        .collect();
    let mut problems = Vec::new();
    for FileProblems {
        problems: mut file_problems,
        built,
        deferred,
    } in found
    {
        let before = file_problems.len();
        file_problems.extend(deferred.into_iter().filter_map(|(spec, problem)| {
            // A file with errors of its own has no cases to deal: its entries all count.
            let holds = built.is_none_or(|file| kept.contains(&(file, spec)));
            holds.then_some(problem)
        }));
        if file_problems.len() > before {
            file_problems = dedup(file_problems);
        }
        // In the order they are written, as a reader goes through the file.
        file_problems.sort_by_key(|p| p.offset);
        problems.extend(file_problems);
    }
    if problems.iter().any(ScenarioDiagnostic::is_error) {
        Err(problems)
    } else {
        plan.warnings = problems;
        plan.templates = keep.then(|| {
            Arc::new(CaseTemplates {
                files,
                options: options.clone(),
                env,
            })
        });
        Ok(plan)
    }
}

/// One file's problems, and what its entries of `cases:` ask of the target that it cannot do:
/// an error only for an entry with a case kept after sharding.
struct FileProblems {
    problems: Vec<ScenarioDiagnostic>,
    /// The file's index among the plan's, when its cases were built (it has no error).
    built: Option<u32>,
    /// By entry of `cases:`.
    deferred: Vec<(u32, ScenarioDiagnostic)>,
}

/// Two files with the same `name:` must not merge into one suite on a dashboard (GitLab keeps
/// only the first of equal names): the later ones get their file's path appended.
fn distinct_suite_names(suites: &mut [Suite]) {
    let mut seen = HashSet::new();
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
    let mut seen = HashSet::new();
    problems
        .into_iter()
        .filter(|p| seen.insert((p.at.clone(), p.message.clone())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sandbox() -> PlanOptions {
        PlanOptions {
            default_offer: Some("demo-offer".into()),
            sandbox_faults: true,
            ..PlanOptions::default()
        }
    }

    pub(super) fn build_text(
        text: &str,
        options: &PlanOptions,
    ) -> Result<Plan, Vec<ScenarioDiagnostic>> {
        let source = SourceFile::new("t.yaml", text);
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
                    c.name.to_string(),
                    c.event.as_deref().unwrap().to_string(),
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

    /// A case built again for its next attempt comes from what the plan kept when it was built
    /// (its file as parsed, its matrix combination), its templates rendered afresh; a plan for
    /// a run without retries keeps nothing.
    #[test]
    fn a_retried_case_is_built_again_from_its_template() {
        let text = "cases:\n  - name: \"{{matrix.e}}\"\n    matrix: { e: [install, signup, purchase], exclude: [{ e: signup }] }\n    event: \"{{matrix.e}}\"\n    member: \"m-{{uuid}}\"\n    params: { pub_sub_1: \"{{case.attempt}}\" }\n";
        let retrying = PlanOptions {
            retries: 1,
            ..sandbox()
        };
        let plan = build_text(text, &retrying).unwrap_or_else(|e| panic!("{e:#?}"));
        let first: Vec<Case> = plan.cases().cloned().collect();
        let again = plan.rebuild(&first[1], 2).unwrap();
        assert_eq!(&*again.name, "purchase");
        assert_eq!(
            again.event.as_deref(),
            Some("purchase"),
            "its own combination"
        );
        assert_eq!(again.params["pub_sub_1"], "2");
        assert_eq!((again.index, again.attempt), (1, 2));
        assert_ne!(again.member, first[1].member, "a fresh uuid");
        let once = build_text(text, &sandbox()).unwrap();
        let err = once.rebuild(&first[1], 2).unwrap_err();
        assert!(err.to_string().contains("without --retries"), "{err}");
    }

    /// `settle` on the case's own callback expectation sets its settle window; on a step's it
    /// is an error that says where it goes.
    #[test]
    fn settle_is_the_whole_cases() {
        let text =
            "cases:\n  - name: a\n    event: install\n    expect: { callback: { settle: 5s } }\n";
        let plan = build_text(text, &sandbox()).unwrap_or_else(|e| panic!("{e:#?}"));
        let case = plan.cases().next().unwrap();
        assert_eq!(case.settle, Some(Duration::from_secs(5)));
        let text = "cases:\n  - name: a\n    event: install\n    then:\n      - resend: true\n        expect: { callback: { settle: 5s } }\n";
        let errs = build_text(text, &sandbox()).unwrap_err();
        assert!(
            errs[0].message.contains("`settle` is the whole case's"),
            "{errs:#?}"
        );
        assert_eq!(errs[0].at, "t.yaml:6:39");
    }

    #[test]
    fn two_files_with_one_name_are_two_suites() {
        let source = |path: &str| {
            SourceFile::new(
                path,
                "name: Same\ncases:\n  - name: a\n    event: install\n",
            )
        };
        let plan = build_sources(&[source("a.yaml"), source("b.yaml")], &sandbox()).unwrap();
        let names: Vec<&str> = plan.suites.iter().map(|s| &*s.name).collect();
        assert_eq!(names, ["Same", "Same (b.yaml)"]);
        assert_eq!(&*plan.suites[1].cases[0].suite, "Same (b.yaml)");
    }
}
