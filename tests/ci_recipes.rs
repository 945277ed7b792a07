//! docs/ci.md stays true: every command of every recipe runs here, in the order the CI system
//! would run it, with the embedded sandbox as the target. GitHub's matrix and GitLab's
//! `parallel:` are expanded; artifacts and caches are the one shared folder; the actions a
//! recipe uses are played by what they would check (the JUnit reporter validates its file).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn doc() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/ci.md")).unwrap()
}

/// The fenced blocks of `lang` under the heading that contains `heading`.
fn block(heading: &str, lang: &str) -> String {
    let doc = doc();
    let section = doc
        .split("\n## ")
        .find(|s| s.lines().next().is_some_and(|h| h.contains(heading)))
        .unwrap_or_else(|| panic!("docs/ci.md has no section `{heading}`"));
    section
        .split(&format!("```{lang}\n"))
        .nth(1)
        .and_then(|b| b.split("\n```").next())
        .unwrap_or_else(|| panic!("no {lang} block under `{heading}`"))
        .to_string()
}

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("the recipe is not YAML: {e}\n{text}"))
}

/// A folder like a checkout of a project with pitcrew's example scenarios.
fn workspace(label: &str) -> PathBuf {
    let dir = common::scratch(label);
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    std::fs::create_dir_all(dir.join("scenarios")).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, dir.join("scenarios").join(path.file_name().unwrap())).unwrap();
        }
    }
    dir
}

/// Runs one recipe command as CI would (`bash -e`), with pitcrew on PATH; its exit code.
fn sh(dir: &Path, command: &str, env: &BTreeMap<String, String>) -> i32 {
    if command.trim_start().starts_with("cargo install") {
        return 0; // pitcrew is installed already: the binary under test.
    }
    assert!(
        !command.contains("${{"),
        "a recipe expression was left unexpanded: {command}"
    );
    let bin = Path::new(env!("CARGO_BIN_EXE_pitcrew")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .args(["-e", "-c", command])
        .current_dir(dir)
        .env("PATH", path)
        .env("NO_COLOR", "1")
        .env_remove("PITCREW_TARGET")
        .envs(env)
        .output()
        .expect("bash");
    let code = out.status.code().unwrap_or(-1);
    eprintln!(
        "$ {command}\n{}{}→ exit {code}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    code
}

/// `${{ matrix.KEY }}` and the like, from `values`.
fn expand(text: &str, values: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in values {
        out = out.replace(&format!("${{{{ {k} }}}}"), v);
    }
    out
}

/// Runs a GitHub Actions workflow's jobs (in `needs` order, each matrix entry in turn); the
/// exit code of every step that ran, in order.
fn github(dir: &Path, workflow: &Value, env: &BTreeMap<String, String>) -> Vec<(String, i32)> {
    let jobs = workflow["jobs"].as_object().expect("jobs");
    let mut order: Vec<&String> = Vec::new();
    while order.len() < jobs.len() {
        let before = order.len();
        for (name, job) in jobs {
            let needs: Vec<&str> = match &job["needs"] {
                Value::String(s) => vec![s.as_str()],
                Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            if !order.contains(&name) && needs.iter().all(|n| order.iter().any(|o| o == n)) {
                order.push(name);
            }
        }
        assert!(order.len() > before, "jobs' needs form a cycle");
    }
    let mut ran = Vec::new();
    for name in order {
        let job = &jobs[name];
        let matrix: Vec<BTreeMap<String, String>> = match job["strategy"]["matrix"].as_object() {
            None => vec![BTreeMap::new()],
            Some(m) => {
                assert_eq!(m.len(), 1, "one matrix key in the recipes");
                let (key, values) = m.iter().next().unwrap();
                values
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| {
                        let v = match v {
                            Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        BTreeMap::from([(format!("matrix.{key}"), v)])
                    })
                    .collect()
            }
        };
        for values in matrix {
            let mut failed = false;
            for step in job["steps"].as_array().expect("steps") {
                let always = step["if"].as_str() == Some("always()");
                if failed && !always {
                    continue;
                }
                let label = step["name"]
                    .as_str()
                    .or(step["uses"].as_str())
                    .unwrap_or("step");
                let code = if let Some(uses) = step["uses"].as_str() {
                    action(dir, uses, &step["with"])
                } else {
                    let mut step_env = env.clone();
                    if let Some(vars) = step["env"].as_object() {
                        for (k, v) in vars {
                            step_env.insert(k.clone(), expand(v.as_str().unwrap_or(""), &values));
                        }
                    }
                    let command = expand(step["run"].as_str().expect("run or uses"), &values);
                    sh(dir, &command, &step_env)
                };
                failed |= code != 0;
                ran.push((expand(label, &values), code));
            }
        }
    }
    ran
}

/// What an action would do, or check, here.
fn action(dir: &Path, uses: &str, with: &Value) -> i32 {
    let name = uses.split('@').next().unwrap();
    match name {
        // The folder is the checkout, the artifact store and the cache at once.
        "actions/checkout"
        | "actions/upload-artifact"
        | "actions/download-artifact"
        | "actions/cache/restore"
        | "actions/cache/save" => 0,
        "mikepenz/action-junit-report" => {
            let file = with["report_paths"].as_str().expect("report_paths");
            common::assert_junit_file_valid(&dir.join(file));
            0
        }
        other => panic!("the recipes use an action this test does not know: {other}"),
    }
}

#[test]
fn the_github_sharded_workflow_runs_and_merges() {
    let dir = workspace("gha");
    let workflow = yaml(&block("four shards", "yaml"));
    let ran = github(&dir, &workflow, &BTreeMap::new());
    let failed: Vec<_> = ran.iter().filter(|(_, c)| *c != 0).collect();
    assert!(failed.is_empty(), "steps failed: {failed:?}");
    assert!(ran.iter().any(|(n, _)| n == "Shard 4 of 4"), "{ran:?}");
    let shards = (1..=4)
        .filter(|k| dir.join(format!("reports/run-{k}.json")).is_file())
        .count();
    assert_eq!(shards, 4);
    let merged: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap();
    let listed = common::pitcrew_in(&dir, &["list", "scenarios/"], &[]);
    let planned = String::from_utf8_lossy(&listed.stdout).lines().count();
    assert_eq!(merged["summary"]["total"], planned, "every case once");
    assert!(dir.join("report.html").is_file());
}

#[test]
fn the_github_nightly_compares_with_the_night_before() {
    let dir = workspace("nightly");
    let workflow = yaml(&block("a nightly", "yaml"));
    let summary = dir.join("step-summary.md");
    for night in 1..=2 {
        let env = BTreeMap::from([
            (
                "GITHUB_STEP_SUMMARY".to_string(),
                summary.display().to_string(),
            ),
            ("GITHUB_RUN_NUMBER".to_string(), night.to_string()),
        ]);
        let ran = github(&dir, &workflow, &env);
        let failed: Vec<_> = ran.iter().filter(|(_, c)| *c != 0).collect();
        assert!(failed.is_empty(), "night {night}: steps failed: {failed:?}");
        assert_eq!(
            summary.is_file(),
            night == 2,
            "the first night has nothing to compare with"
        );
    }
    let text = std::fs::read_to_string(&summary).unwrap();
    assert!(
        text.contains("### ✅ pitcrew: no change in verdicts"),
        "{text}"
    );
    // Both nights are kept, and the trend reads them oldest first.
    assert!(dir.join("history/run-000001.json").is_file());
    assert!(
        text.contains("pitcrew trend: 2 runs, ")
            && text.contains("Runs from `history/run-000001.json` (")
            && text.contains(") to `history/run-000002.json` ("),
        "{text}"
    );
}

#[test]
fn the_gitlab_parallel_pipeline_runs_and_merges() {
    let dir = workspace("gitlab");
    let pipeline = yaml(&block("GitLab", "yaml"));
    let jobs = pipeline.as_object().unwrap();
    let mut by_stage: Vec<(&String, &Value)> = jobs
        .iter()
        .filter(|(_, job)| job.get("script").is_some())
        .collect();
    by_stage.sort_by_key(|(_, job)| job["stage"].as_str() == Some(".post"));
    for (name, job) in by_stage {
        let parallel = job["parallel"].as_u64().unwrap_or(1);
        for index in 1..=parallel {
            let env = BTreeMap::from([
                ("CI_NODE_INDEX".to_string(), index.to_string()),
                ("CI_NODE_TOTAL".to_string(), parallel.to_string()),
            ]);
            for list in ["before_script", "script"] {
                for command in job[list].as_array().into_iter().flatten() {
                    let command = command.as_str().unwrap();
                    assert_eq!(sh(&dir, command, &env), 0, "{name} {index}: {command}");
                }
            }
        }
        if let Some(junit) = job["artifacts"]["reports"]["junit"].as_str() {
            let (folder, pattern) = junit.rsplit_once('/').unwrap();
            let (prefix, suffix) = pattern.split_once('*').unwrap();
            let files: Vec<PathBuf> = std::fs::read_dir(dir.join(folder))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with(prefix) && n.ends_with(suffix)
                })
                .collect();
            assert_eq!(files.len() as u64, parallel, "one JUnit per job: {files:?}");
            files
                .iter()
                .for_each(|f| common::assert_junit_file_valid(f));
        }
    }
    common::assert_junit_file_valid(&dir.join("junit.xml"));
    assert!(dir.join("report.html").is_file() && dir.join("run.json").is_file());
}

#[test]
fn the_jenkinsfile_runs_and_publishes() {
    let dir = workspace("jenkins");
    let jenkinsfile = block("Jenkins", "groovy");
    let commands: Vec<String> = regex::Regex::new(r"(?m)^\s*sh '([^']*)'")
        .unwrap()
        .captures_iter(&jenkinsfile)
        .map(|c| c[1].to_string())
        .collect();
    assert!(!commands.is_empty(), "{jenkinsfile}");
    for command in &commands {
        assert_eq!(sh(&dir, command, &BTreeMap::new()), 0, "{command}");
    }
    let published = regex::Regex::new(r"junit testResults: '([^']*)'")
        .unwrap()
        .captures(&jenkinsfile)
        .expect("the junit step")[1]
        .to_string();
    common::assert_junit_file_valid(&dir.join(published));
    assert!(dir.join("report.html").is_file());
}
