//! Writing scenario files: diagnostics (insta snapshots of tests/bad), the schema, list, init,
//! matrix expansion and the answer matchers, through the binary as a user runs it.

mod common;

use std::path::Path;

use common::{pitcrew, run};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file in tests/bad gives exactly the diagnostics in its snapshot
/// (`tests/snapshots/authoring__<file>.snap`, the exit code on the first line); a change is a
/// reviewed diff (`cargo insta review`, or `INSTA_UPDATE=always cargo test --test authoring`).
#[test]
fn bad_files_give_their_snapshot_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "tests/bad holds {} files", files.len());
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let shown = format!("tests/bad/{name}");
        let out = pitcrew(&["validate", &shown]);
        let actual = format!(
            "exit: {}\n{}",
            out.status.code().unwrap_or(-1),
            text(&out.stderr)
        );
        assert!(
            !actual.contains("panicked"),
            "{name} made pitcrew panic:\n{actual}"
        );
        let stem = name.trim_end_matches(".yaml");
        insta::assert_snapshot!(stem, actual, &shown);
    }
}

#[test]
fn bad_files_fail_with_exit_2_and_locate_every_problem() {
    let out = pitcrew(&["validate", "tests/bad/wrong-types.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    for at in ["5:11", "7:13", "9:37", "11:34", "13:15", "15:37"] {
        assert!(
            stderr.contains(&format!("tests/bad/wrong-types.yaml:{at}:")),
            "no problem reported at {at}:\n{stderr}"
        );
    }
    assert!(stderr.contains("6 error(s)"), "{stderr}");
    assert!(text(&out.stdout).is_empty(), "nothing is listed as valid");
}

#[test]
fn warnings_print_but_do_not_fail() {
    let out = pitcrew(&["validate", "tests/bad/warnings.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.matches("warning: ").count(), 4, "{stderr}");
    assert!(text(&out.stdout).contains("5 case(s), 4 warning(s)"));
}

#[test]
fn committed_schema_is_current() {
    let out = pitcrew(&["schema"]);
    assert_eq!(out.status.code(), Some(0));
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/scenario.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text(&out.stdout),
        "schema/scenario.schema.json is stale: run `cargo run -- schema > schema/scenario.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&committed).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    let case = &schema["definitions"]["CaseSpec"];
    assert_eq!(
        case["additionalProperties"], false,
        "unknown keys are flagged"
    );
    for key in ["matrix", "click", "conversion", "expect", "sandbox"] {
        assert!(case["properties"][key].is_object(), "CaseSpec lacks {key}");
    }
}

#[test]
fn shipped_scenarios_point_editors_at_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for dir in ["scenarios", "examples/failing", "src/cli/init"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "yaml") || path.ends_with("pitcrew.yaml") {
                continue;
            }
            let first = std::fs::read_to_string(&path).unwrap();
            let first = first.lines().next().unwrap_or("");
            let target = first
                .strip_prefix("# yaml-language-server: $schema=")
                .unwrap_or_else(|| {
                    panic!("{} does not start with the schema line", path.display())
                });
            // init writes its example into scenarios/, next to schema/ as here.
            let base = if dir == "src/cli/init" {
                root.join("scenarios")
            } else {
                path.parent().unwrap().to_path_buf()
            };
            assert!(
                base.join(target).exists(),
                "{}: {target} does not exist",
                path.display()
            );
        }
    }
}

#[test]
fn matrix_cases_run_with_unique_stable_names() {
    let r = run(&["matrix.yaml"], &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let names: Vec<String> = r.json.as_ref().unwrap()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        [
            "install pays 0",
            "install pays 9.99",
            "signup pays 0",
            "signup pays 9.99",
            "purchase pays 9.99",
            "refund is refused",
            "same name [event=install]",
            "same name [event=signup]",
        ]
    );
    assert_eq!(
        r.case("signup pays 9.99")["inputs"]["params"]["cnv_amount"],
        "9.99",
        "the rendered values are in the report"
    );
    r.assert_junit_valid();
    let again = run(&["matrix.yaml"], &[]);
    let again_names: Vec<&str> = again.json.as_ref().unwrap()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(again_names, names, "names are the same on every run");
}

#[test]
fn max_cases_guards_and_can_be_raised() {
    let file = common::fixture("matrix.yaml").display().to_string();
    let out = pitcrew(&["validate", &file, "--max-cases", "4"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("expands to 6 cases (event: 3 × amount: 2), more than the limit of 4"),
        "{stderr}"
    );
    assert!(stderr.contains("--max-cases"), "{stderr}");
    // The limit holds for the whole run: 8 cases in all here.
    let out = pitcrew(&["validate", &file, "--max-cases", "7"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "expands to 2 cases (event: 2), more than the 1 case(s) left of the run's limit of 7"
        ),
        "{stderr}"
    );
    let out = pitcrew(&["validate", &file, "--max-cases", "8"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // `include:` entries count too, and the message says so.
    let dir = common::scratch("max-cases-include");
    let included = dir.join("included.yaml");
    std::fs::write(
        &included,
        "name: i\ncases:\n  - name: c\n    event: install\n    matrix:\n      a: [1, 2]\n      \
         include: [{ a: 3 }, { a: 4 }, { a: 5 }, { a: 6 }, { a: 7 }]\n",
    )
    .unwrap();
    let out = pitcrew(&["validate", included.to_str().unwrap(), "--max-cases", "4"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "expands to as many as 7 cases: 2 combinations (a: 2) and 5 `include:` entries, \
             more than the limit of 4"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("shorten the lists or the `include:` entries"),
        "{stderr}"
    );
}

#[test]
fn list_shows_expanded_cases_after_filter_tag_and_shard() {
    let file = common::fixture("matrix.yaml").display().to_string();
    let list = |extra: &[&str]| {
        let mut args = vec!["list", file.as_str()];
        args.extend(extra);
        let out = pitcrew(&args);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, all, _) = list(&[]);
    assert_eq!(code, Some(0));
    assert_eq!(all.lines().count(), 8, "{all}");
    assert!(
        all.lines()
            .next()
            .unwrap()
            .ends_with("matrix.yaml:4  Matrix › install pays 0"),
        "{all}"
    );

    let (_, signup, _) = list(&["--filter", "SIGNUP"]);
    assert_eq!(signup.lines().count(), 3, "{signup}");

    let (_, tagged, _) = list(&["--tag", "refusal"]);
    assert_eq!(tagged.lines().count(), 1, "{tagged}");
    assert!(tagged.contains("refund is refused"));
    let (_, untagged, _) = list(&["--tag", "!refusal"]);
    assert_eq!(untagged.lines().count(), 7);

    let mut union = Vec::new();
    for k in 1..=3 {
        let (code, shard, stderr) = list(&["--shard", &format!("{k}/3")]);
        assert_eq!(code, Some(0));
        assert!(stderr.contains(&format!("in shard {k}/3")), "{stderr}");
        union.extend(shard.lines().map(str::to_string));
    }
    union.sort();
    let mut expected: Vec<String> = all.lines().map(str::to_string).collect();
    expected.sort();
    assert_eq!(union, expected, "the shards together are the whole list");

    let (code, _, stderr) = list(&["--filter", "no such case"]);
    assert_eq!(code, Some(2), "a filter that matches nothing is an error");
    assert!(
        stderr.contains("no case matches --filter \"no such case\""),
        "{stderr}"
    );
    let (code, _, stderr) = list(&["--shard", "4/3"]);
    assert_eq!(code, Some(2));
    assert!(stderr.contains("1 ≤ K ≤ N"), "{stderr}");
}

#[test]
fn run_honours_filter_and_shard() {
    let r = run(&["matrix.yaml"], &["--filter", "pays", "--shard", "2/2"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let summary = &r.json.as_ref().unwrap()["summary"];
    assert_eq!(summary["total"], 2, "{}", r.explain());
    r.case("install pays 9.99");
    r.case("signup pays 9.99");
    r.assert_junit_valid();

    let empty = run(&["matrix.yaml"], &["--shard", "9/9"]);
    assert_eq!(
        empty.code,
        0,
        "an empty shard is not a failure: {}",
        empty.explain()
    );
    assert!(
        empty
            .stderr
            .contains("shard 9/9 has no cases (8 selected in all)")
    );
    assert_eq!(empty.json.as_ref().unwrap()["summary"]["total"], 0);
    empty.assert_junit_valid();

    let typo = run(&["matrix.yaml"], &["--tag", "smoek"]);
    assert_eq!(
        typo.code,
        2,
        "a tag that matches nothing fails loudly: {}",
        typo.explain()
    );
    assert!(typo.junit.is_none(), "nothing ran, no report");
}

#[test]
fn init_writes_a_project_that_runs_and_never_overwrites() {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("init-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let shown = dir.display().to_string();
    let out = pitcrew(&["init", "--dir", &shown]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for file in [
        "pitcrew.yaml",
        "scenarios/example.yaml",
        "schema/scenario.schema.json",
        "schema/project.schema.json",
        "schema/sandbox-config.schema.json",
    ] {
        assert!(dir.join(file).is_file(), "init did not write {file}");
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("schema/sandbox-config.schema.json")).unwrap(),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/sandbox-config.schema.json")
        )
        .unwrap(),
        "the sandbox config schema init writes is the committed one"
    );
    let example = dir.join("scenarios").display().to_string();
    let junit = dir.join("junit.xml");
    let junit_arg = junit.display().to_string();
    let out = pitcrew(&["run", &example, "--junit", &junit_arg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the example must pass on the sandbox:\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    common::assert_junit_file_valid(&junit);

    std::fs::write(dir.join("pitcrew.yaml"), "# mine\n").unwrap();
    let out = pitcrew(&["init", "--dir", &shown]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("never overwrites"));
    assert_eq!(
        std::fs::read_to_string(dir.join("pitcrew.yaml")).unwrap(),
        "# mine\n",
        "an existing file is left alone"
    );
}

#[test]
fn answer_bodies_and_headers_are_matched() {
    let r = run(&["answers.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(
        r.case("answers and headers hold")["status"],
        "passed",
        "{}",
        r.explain()
    );
    let failed = r.case("answers and headers are wrong");
    assert_eq!(failed["status"], "failed");
    let messages: Vec<&str> = failed["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    let expected = [
        "conversion.json data.conversionId: expected",
        "conversion.headers content-type: expected",
        "callback.headers x-api-token: expected",
    ];
    for wanted in expected {
        assert!(
            messages.iter().any(|m| m.starts_with(wanted)),
            "no failure starting {wanted:?} in {messages:#?}"
        );
    }
    r.assert_junit_valid();
}

#[test]
fn sandbox_config_mistakes_are_located_and_hinted() {
    let out = pitcrew(&[
        "run",
        "tests/fixtures/modes.yaml",
        "--sandbox-config",
        "tests/fixtures/sandbox/bad.yaml",
    ]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tests/fixtures/sandbox/bad.yaml:1:9"),
        "{stderr}"
    );
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
    let unknown = std::fs::read_to_string("tests/fixtures/sandbox/bad.yaml")
        .unwrap()
        .replace("minute: soon\n", "");
    let dir = common::scratch("bad-config");
    let path = dir.join("config.yaml");
    std::fs::write(&path, unknown).unwrap();
    let out = pitcrew(&["sandbox", "--sandbox-config", &path.display().to_string()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("config.yaml:3:5: unknown key `callback_ulr`"),
        "{stderr}"
    );
    assert!(stderr.contains("did you mean `callback_url`"), "{stderr}");
}

#[test]
fn committed_sandbox_schema_is_current() {
    let out = pitcrew(&["schema", "--sandbox-config"]);
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/sandbox-config.schema.json"),
    )
    .unwrap();
    assert_eq!(
        text(&out.stdout),
        committed,
        "schema/sandbox-config.schema.json is stale: `pitcrew schema --sandbox-config > schema/sandbox-config.schema.json`"
    );
}

#[test]
fn committed_project_schema_is_current() {
    let out = pitcrew(&["schema", "--project"]);
    let committed = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/project.schema.json"),
    )
    .unwrap();
    assert_eq!(
        text(&out.stdout),
        committed,
        "schema/project.schema.json is stale: `pitcrew schema --project > schema/project.schema.json`"
    );
}

/// `validate` and `list` take `--secret` as `run` does (they once refused it): a file that reads
/// a secret from `{{env.K}}` is valid with it, and the secret is masked in what they print.
#[test]
fn validate_and_list_take_secrets() {
    let dir = common::scratch("secret-list");
    let file = dir.join("secret.yaml");
    std::fs::write(
        &file,
        "name: Secrets\ncases:\n  - name: \"with {{env.QA_LIST_TOKEN}}\"\n    event: install\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let secret = "QA_LIST_TOKEN=list-s3cret-4410";
    let out = pitcrew(&["validate", &file]);
    assert_eq!(out.status.code(), Some(2), "unset: {}", text(&out.stderr));
    for command in ["validate", "list"] {
        let out = pitcrew(&[command, &file, "--secret", secret]);
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert_eq!(out.status.code(), Some(0), "{command}: {stdout}\n{stderr}");
        assert!(!stdout.contains("list-s3cret-4410") && !stderr.contains("list-s3cret-4410"));
    }
    let out = pitcrew(&["list", &file, "--secret", secret]);
    assert!(
        text(&out.stdout).contains("with ***"),
        "{}",
        text(&out.stdout)
    );
}

/// A name, a tag or a snippet holding terminal control characters (`ESC[8m` hides what follows)
/// is shown, not obeyed: `run`, `list` and `validate` print the escape as `\u{1b}`, never the
/// byte itself (once the raw escape reached the terminal).
#[test]
fn terminal_escapes_in_files_are_shown_not_obeyed() {
    let dir = common::scratch("escapes");
    let good = dir.join("escapes.yaml");
    std::fs::write(
        &good,
        "name: \"Suite \\e[8m\"\ntags: [\"t\\e]0;title\\a\"]\ncases:\n  - name: \"hidden \\e[8mname\"\n    event: install\n",
    )
    .unwrap();
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "cases:\n  - name: \"x \\e[8m\"\n    event: install\n    evnt: raw \u{1b}[2J here\n",
    )
    .unwrap();
    let (good, bad) = (good.display().to_string(), bad.display().to_string());
    let runs = [
        vec!["run", good.as_str(), "--no-progress"],
        vec!["list", good.as_str()],
        vec!["validate", good.as_str()],
        vec!["validate", bad.as_str()],
    ];
    for args in runs {
        let out = pitcrew(&args);
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        assert!(
            !all.contains(&0x1b) && !all.contains(&0x07),
            "{args:?} printed a raw control character:\n{}",
            text(&all)
        );
        assert!(text(&all).contains("\\u{1b}"), "{args:?}: {}", text(&all));
    }
    let out = pitcrew(&["validate", bad.as_str()]);
    assert_eq!(out.status.code(), Some(2));
}

/// Diagnostics take time in proportion to a file's size, however many problems it has:
/// 20,000 broken cases (10,000 that do not parse, 10,000 that parse but do not check) are each
/// located and `validate` ends (before, 8,000 took 10 s and 20,000 over a minute). One value
/// holding 200,000 `{{uuid}}` is refused at once rather than parsed for minutes.
#[test]
fn thousands_of_problems_are_each_located_without_a_wait() {
    use std::fmt::Write as _;
    let dir = common::scratch("many-problems");
    let mut file = String::from("name: many problems\ncases:\n");
    for i in 0..10_000 {
        let _ = write!(
            file,
            "  - name: p{i}\n    evnt: install\n  - name: s{i}\n    event: install\n    \
             expect: {{ callback: {{ within: soon }} }}\n"
        );
    }
    std::fs::write(dir.join("many.yaml"), file).unwrap();
    let uuids = format!(
        "name: uuids\ncases:\n  - name: u\n    event: install\n    params: {{ pub_sub_1: \"{}\" }}\n",
        "{{uuid}}".repeat(200_000)
    );
    std::fs::write(dir.join("uuids.yaml"), uuids).unwrap();
    let validate = |file: &str| {
        let path = dir.join(file);
        let process =
            common::process::Running::start(&["validate", path.to_str().unwrap()], &dir, &[]);
        process.finish(std::time::Duration::from_secs(60))
    };
    let (code, _, stderr) = validate("many.yaml");
    assert_eq!(code, 2);
    assert!(
        stderr.contains("20000 error(s) in scenario files"),
        "{}",
        &stderr[stderr.len().saturating_sub(300)..]
    );
    let located = |what: &str| {
        stderr
            .lines()
            .filter(|l| l.starts_with("error: ") && l.contains(what))
            .count()
    };
    assert_eq!(located("unknown key `evnt`"), 10_000);
    assert_eq!(located("`soon` is not a duration"), 10_000);
    assert!(
        stderr.contains("many.yaml:50002:35: `soon`"),
        "the last case is located"
    );
    let (code, _, stderr) = validate("uuids.yaml");
    assert_eq!(code, 2);
    assert!(
        stderr
            .contains("holds 200000 expressions (`{{…}}`), more than the 1000 one value may hold"),
        "{stderr}"
    );
}

/// Selection comes first (DESIGN §7): a case `--tag` or `--filter` leaves out is never
/// checked against the target, nor built (an `{{env.X}}` only it reads may be unset); one in
/// another shard is built (every job deals alike) but asks nothing of this job's target.
/// `validate` and `list` take `--target` and `--sandbox-config`, and judge a file for it.
#[test]
fn cases_left_out_are_never_checked_against_the_target() {
    let dir = common::scratch("selection-first");
    std::fs::write(
        dir.join("suite.yaml"),
        "name: Go-live\ncases:\n  - name: smoke install\n    event: install\n    tags: [smoke]\n  - name: retries on 503\n    event: install\n    tags: [scripted]\n    receiver: { respond: [{ status: 503 }, { status: 200 }] }\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("tenant.yaml"),
        "name: Tenant\ntags: [tenant]\ncases:\n  - name: \"tenant {{env.PITCREW_SELECTION_UNSET}}\"\n    event: install\n  - name: tenant signup\n    event: signup\n    member: \"{{env.PITCREW_SELECTION_UNSET}}\"\n",
    )
    .unwrap();
    let target = "http://127.0.0.1:9/api/v1";
    let suite = dir.join("suite.yaml").display().to_string();
    let tenant = dir.join("tenant.yaml").display().to_string();
    let go = |args: &[&str]| {
        let out = pitcrew(args);
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };

    // A log-observed URL target cannot script the receiver: only the scripted case asks it.
    let (code, _, stderr) = go(&["list", &suite, "--target", target]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("`receiver:` scripts pitcrew's own receiver"),
        "{stderr}"
    );
    assert!(stderr.contains("suite.yaml:9:"), "located: {stderr}");
    let (code, _, stderr) = go(&["validate", &suite, "--target", target]);
    assert_eq!(code, Some(2), "validate judges for the target: {stderr}");
    let (code, stdout, stderr) = go(&["list", &suite, "--target", target, "--tag", "smoke"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(
        stderr.contains("1 case(s), of 1 selected and 2 in all"),
        "{stderr}"
    );
    let (code, _, stderr) = go(&["list", &suite, "--target", target, "--filter", "SMOKE"]);
    assert_eq!(code, Some(0), "{stderr}");
    // Dealt into two shards, the scripted case is the second's: the first asks nothing of
    // the target it cannot do, the second does.
    let (code, stdout, stderr) = go(&["list", &suite, "--target", target, "--shard", "1/2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("smoke install"), "{stdout}");
    let (code, _, stderr) = go(&["list", &suite, "--target", target, "--shard", "2/2"]);
    assert_eq!(code, Some(2), "{stderr}");
    // On the sandbox, every case is fine.
    let (code, _, stderr) = go(&["validate", &suite]);
    assert_eq!(code, Some(0), "{stderr}");

    // A file's env variable is needed only by the cases that read it, when they are selected.
    let (code, _, stderr) = go(&["list", &suite, &tenant]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("PITCREW_SELECTION_UNSET"), "{stderr}");
    let (code, stdout, stderr) = go(&["list", &suite, &tenant, "--tag", "!tenant"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(stdout.lines().count(), 2, "{stdout}");
    let (code, stdout, stderr) = go(&["list", &tenant, "--filter", "tenant signup"]);
    assert_eq!(
        code,
        Some(2),
        "its member reads the variable: {stdout}{stderr}"
    );

    // Two cases of one name are an error whatever the tags select.
    let dup = dir.join("dup.yaml");
    std::fs::write(
        &dup,
        "cases:\n  - name: install\n    event: install\n  - name: install\n    event: install\n    tags: [slow]\n",
    )
    .unwrap();
    let (code, _, stderr) = go(&["list", &dup.display().to_string(), "--tag", "!slow"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("case name `install` is used twice"),
        "{stderr}"
    );

    // And a run: the selected case runs on the target, the scripted one is never built.
    let sandbox = common::Standalone::start();
    let r = common::run(&[&suite], &["--target", &sandbox.base, "--tag", "smoke"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.json.as_ref().unwrap()["summary"]["total"], 1);
    let r = common::run(&[&suite], &["--target", &sandbox.base]);
    assert_eq!(r.code, 2, "{}", r.explain());
}

/// `run --watch` runs, then runs again only the scenario files that change (a matrix file
/// reruns the files that read it), keeps watching after a broken save, and stops on Ctrl-C
/// with 130.
#[test]
fn watch_runs_again_what_changed_until_interrupted() {
    use std::time::Duration;
    let root = common::scratch("watch");
    let dir = root.join("scenarios");
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(&dir).unwrap();
    // Saved as editors do: a new file renamed over the old one.
    let write = |name: &str, text: &str| {
        let temp = root.join(".saving");
        std::fs::write(&temp, text).unwrap();
        std::fs::rename(&temp, dir.join(name)).unwrap();
    };
    write(
        "a.yaml",
        "name: A\ncases:\n  - name: a install\n    event: install\n",
    );
    write(
        "b.yaml",
        "name: B\ncases:\n  - name: \"b {{matrix.event}}\"\n    matrix: { from: ../data/events.csv }\n    event: \"{{matrix.event}}\"\n",
    );
    write("../data/events.csv", "event\ninstall\n");
    let folder = dir.display().to_string();
    let mut watching =
        common::process::Running::start(&["run", &folder, "--watch", "--no-progress"], &dir, &[]);
    let wait = Duration::from_secs(20);
    watching.line(wait, |l| l.starts_with("2 passed"));
    watching.line(wait, |l| l.starts_with("pitcrew: watching"));
    watching.catching(2, wait);

    write(
        "a.yaml",
        "name: A\ncases:\n  - name: a signup\n    event: signup\n",
    );
    let said = watching.line(wait, |l| l.contains("changed at"));
    assert!(
        said.contains("a.yaml changed") && !said.contains("b.yaml"),
        "{said}"
    );
    watching.line(wait, |l| l.starts_with("PASS  A › a signup"));
    watching.line(wait, |l| l.starts_with("1 passed"));
    watching.line(wait, |l| l.starts_with("pitcrew: watching"));

    // A matrix file: the scenario that reads it runs again, with the new rows.
    write("../data/events.csv", "event\ninstall\nsignup\n");
    let said = watching.line(wait, |l| l.contains("changed at"));
    assert!(said.contains("b.yaml changed"), "{said}");
    watching.line(wait, |l| l.starts_with("2 passed"));
    watching.line(wait, |l| l.starts_with("pitcrew: watching"));

    // A broken save is reported, and the watch goes on.
    write(
        "a.yaml",
        "name: A\ncases:\n  - name: a signup\n    evnt: signup\n",
    );
    watching.line(wait, |l| l.contains("changed at"));
    watching.line(wait, |l| l.starts_with("pitcrew: watching"));
    write(
        "a.yaml",
        "name: A\ncases:\n  - name: a fixed\n    event: signup\n",
    );
    watching.line(wait, |l| l.starts_with("PASS  A › a fixed"));
    watching.line(wait, |l| l.starts_with("pitcrew: watching"));

    watching.signal("INT");
    let (code, stdout, stderr) = watching.finish(wait);
    assert_eq!(code, 130, "{stdout}\n{stderr}");
    assert!(stderr.contains("unknown key `evnt`"), "{stderr}");
    // B ran twice (at the start, and for its matrix file), never for A's saves.
    assert_eq!(stdout.matches("B › b install").count(), 2, "{stdout}");
    assert_eq!(stdout.matches("B › b signup").count(), 1, "{stdout}");
}
