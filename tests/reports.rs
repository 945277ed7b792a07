//! What CI pipelines and nightly dashboards rely on: retries and flaky cases in every report,
//! shard reports merged back into the unsharded run, the diff of two nights and the trend of
//! several, the HTML page in a real browser, and the console's conventions (stdout routing,
//! colour, `--json -`, `--verbose`).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{assert_junit_file_valid, fixture, pitcrew_in, scratch};
use serde_json::Value;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// One night of `tests/fixtures/nightly/`: `core.yaml` and `extra`, with `args`; the JSON
/// report's path.
fn night(dir: &Path, label: &str, extra: &str, args: &[&str]) -> PathBuf {
    let json = dir.join(format!("{label}.json"));
    let (core, extra) = (
        fixture("nightly/core.yaml").display().to_string(),
        fixture(&format!("nightly/{extra}")).display().to_string(),
    );
    let json_arg = json.display().to_string();
    let mut all = vec!["run", &core, &extra, "--json", &json_arg];
    all.extend(args);
    let out = pitcrew_in(repo(), &all, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    json
}

fn case<'a>(record: &'a Value, name: &str) -> &'a Value {
    record["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

#[test]
fn a_case_that_passes_on_its_second_attempt_is_flaky_in_every_report() {
    let dir = scratch("flaky");
    let (junit, json, html) = (
        dir.join("junit.xml"),
        dir.join("run.json"),
        dir.join("run.html"),
    );
    let core = fixture("nightly/core.yaml").display().to_string();
    let out = pitcrew_in(
        repo(),
        &[
            "run",
            &core,
            "--var",
            "flaky=2",
            "--retries",
            "1",
            "--junit",
            &junit.display().to_string(),
            "--json",
            &json.display().to_string(),
            "--html",
            &html.display().to_string(),
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("RETRY Nightly › turns flaky  (attempt 1 failed")
            && stdout.contains("FLAKY Nightly › turns flaky")
            && stdout.contains("passed on attempt 2"),
        "{stdout}"
    );
    assert!(
        stdout.contains("(1 flaky)"),
        "the summary counts it: {stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("FAIL  Nightly › still broken")
                && l.ends_with(", after 2 attempts)")),
        "a failure after retries says how many attempts ran: {stdout}"
    );

    let record = read_json(&json);
    assert_eq!(record["summary"]["flaky"], 1);
    let flaky = case(&record, "turns flaky");
    assert_eq!(flaky["status"], "passed");
    assert_eq!(flaky["flaky"], true);
    assert_eq!(flaky["attempts"], 2);
    // Its JUnit time is what it cost the run: every attempt's, not the last one's alone.
    let all_ms = flaky["duration_ms"].as_u64().unwrap()
        + flaky["earlier_attempts"][0]["duration_ms"]
            .as_u64()
            .unwrap();
    let junit_text = std::fs::read_to_string(&junit).unwrap();
    let testcase = junit_text
        .split("<testcase ")
        .find(|t| t.contains("name=\"turns flaky\""))
        .unwrap();
    assert!(
        testcase.contains(&format!("time=\"{:.3}\"", all_ms as f64 / 1000.0)),
        "{all_ms} ms in {testcase}"
    );
    let earlier = &flaky["earlier_attempts"][0];
    assert_eq!(earlier["attempt"], 1);
    assert_eq!(earlier["status"], "failed");
    assert_eq!(
        earlier["failures"][0]["actual"], "string \"1\"",
        "the first attempt rendered case.attempt as 1"
    );
    assert_eq!(
        flaky["inputs"]["params"]["cnv_amount"], "2",
        "the second attempt's templates were rendered afresh"
    );
    let broken = case(&record, "still broken");
    assert_eq!(broken["status"], "failed");
    assert_eq!(broken["attempts"], 2, "a failure is retried too");
    assert_eq!(broken["flaky"], false);

    assert_junit_file_valid(&junit);
    let xml = std::fs::read_to_string(&junit).unwrap();
    let flaky_case = xml
        .split("<testcase ")
        .find(|c| c.starts_with("name=\"turns flaky\""))
        .expect("the flaky testcase");
    assert!(
        flaky_case.contains("<flakyFailure") && !flaky_case.contains("<failure"),
        "{flaky_case}"
    );
    let broken_case = xml
        .split("<testcase ")
        .find(|c| c.starts_with("name=\"still broken\""))
        .unwrap();
    assert!(
        broken_case.contains("<failure") && broken_case.contains("<rerunFailure"),
        "{broken_case}"
    );

    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.contains("Flaky: passed on a later attempt (1)"));
    assert!(page.contains("data-status=\"flaky\" data-name=\"nightly turns flaky "));

    // `report html` renders the same page from the saved record.
    let again = dir.join("again.html");
    let out = pitcrew_in(
        repo(),
        &[
            "report",
            "html",
            &json.display().to_string(),
            &again.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&again).unwrap(), page);
}

/// A headless browser, when there is one; `.ci/run` installs Debian's chromium and sets
/// PITCREW_REQUIRE_BROWSER so that a missing one fails there.
fn browser() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            std::env::var_os("PATH").and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|p| p.join(name))
                    .find(|p| p.is_file())
            })
        });
    if found.is_none() {
        assert!(
            std::env::var_os("PITCREW_REQUIRE_BROWSER").is_none(),
            "PITCREW_REQUIRE_BROWSER is set but no chromium is on PATH"
        );
        eprintln!("note: no chromium on PATH; the HTML page is not loaded in a browser");
    }
    found
}

/// The page as the browser built it (scripts run), and what the page logged to its console.
fn load(browser: &Path, url: &str) -> (String, Vec<String>) {
    let profile = scratch("chromium-profile");
    let out = Command::new(browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--enable-logging=stderr",
            "--log-level=0",
            "--virtual-time-budget=2000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            url,
        ])
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium: {}", text(&out.stderr));
    let console = text(&out.stderr)
        .lines()
        .filter(|l| l.contains(":CONSOLE"))
        .map(str::to_string)
        .collect();
    (text(&out.stdout), console)
}

#[test]
fn the_html_page_loads_in_a_browser_without_errors_and_shows_the_failure() {
    let Some(browser) = browser() else { return };
    let dir = scratch("html");
    let html = dir.join("run.html");
    let (core, retired) = (
        fixture("nightly/core.yaml").display().to_string(),
        fixture("nightly/retired.yaml").display().to_string(),
    );
    let out = pitcrew_in(
        repo(),
        &[
            "run",
            &core,
            &retired,
            "--var",
            "flaky=2",
            "--retries",
            "1",
            "--html",
            &html.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let url = format!("file://{}", html.display());
    let (dom, console) = load(&browser, &url);
    assert!(console.is_empty(), "the page logged: {console:#?}");
    let failures = dom
        .split("<section id=\"failures\">")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .expect("a failures section");
    assert!(failures.contains("What failed (2)"), "{failures}");
    assert!(failures.contains("Nightly › still broken"));
    assert!(failures.contains("expected"));
    assert!(failures.contains("string \"2.00\""));
    assert!(failures.contains("tests/fixtures/nightly/core.yaml:"));
    // The filter works: a link with #q= hides every case that does not match.
    let (dom, console) = load(&browser, &format!("{url}#q=still%20broken"));
    assert!(console.is_empty(), "the page logged: {console:#?}");
    let cases = dom.split("<section id=\"cases\">").nth(1).unwrap();
    assert_eq!(
        cases.matches("<details class=\"case").count(),
        6,
        "six cases in the list"
    );
    assert_eq!(
        cases.matches(" hidden=\"\"").count(),
        6,
        "five cases and the other suite are hidden: {cases}"
    );
}

/// `pitcrew run scenarios/` whole and in three shards; the merged shards equal the whole.
#[test]
fn merged_shard_reports_equal_the_unsharded_run() {
    let dir = scratch("merge");
    let run = |label: &str, shard: Option<&str>| {
        let (junit, json) = (
            dir.join(format!("{label}.xml")),
            dir.join(format!("{label}.json")),
        );
        let mut args = vec![
            "run".to_string(),
            "scenarios/".into(),
            "--junit".into(),
            junit.display().to_string(),
            "--json".into(),
            json.display().to_string(),
        ];
        if let Some(s) = shard {
            args.extend(["--shard".into(), s.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = pitcrew_in(repo(), &args, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
        (junit, json)
    };
    let (whole_xml, whole_json) = run("whole", None);
    // Given out of order: the merge deals them back by the shard each report names.
    let shards: Vec<(PathBuf, PathBuf)> = ["3/3", "1/3", "2/3"]
        .iter()
        .map(|s| run(&format!("shard-{}", &s[..1]), Some(s)))
        .collect();
    let merge = |out: &Path, inputs: Vec<&PathBuf>, extra: &[&str]| {
        let mut args = vec![
            "report".to_string(),
            "merge".into(),
            out.display().to_string(),
        ];
        args.extend(inputs.iter().map(|p| p.display().to_string()));
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        pitcrew_in(repo(), &args, &[])
    };

    let merged_json = dir.join("merged.json");
    let out = merge(&merged_json, shards.iter().map(|s| &s.1).collect(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (whole, merged) = (read_json(&whole_json), read_json(&merged_json));
    // Named by the shards' target, not by three jobs' ephemeral URLs.
    assert_eq!(merged["target"], "sandbox", "{}", merged["target"]);
    let cases = |r: &Value| -> Vec<(String, String, String, String)> {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["suite"].as_str().unwrap().into(),
                    c["name"].as_str().unwrap().into(),
                    c["status"].as_str().unwrap().into(),
                    format!("{}:{}", c["file"].as_str().unwrap(), c["line"]),
                )
            })
            .collect()
    };
    assert!(cases(&whole).len() >= 6, "more cases than shards");
    assert_eq!(cases(&merged), cases(&whole), "same cases, same order");
    for count in ["total", "passed", "failed", "errored", "skipped", "flaky"] {
        assert_eq!(merged["summary"][count], whole["summary"][count], "{count}");
    }
    assert_eq!(merged["merged_from"].as_array().unwrap().len(), 3);
    assert!(merged.get("shard").is_none());

    let merged_xml = dir.join("merged.xml");
    let out = merge(&merged_xml, shards.iter().map(|s| &s.0).collect(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_junit_file_valid(&merged_xml);
    let names = |path: &Path| -> Vec<String> {
        let xml = std::fs::read_to_string(path).unwrap();
        regex::Regex::new(r#"<testcase name="([^"]*)" classname="([^"]*)""#)
            .unwrap()
            .captures_iter(&xml)
            .map(|c| format!("{} › {}", &c[2], &c[1]))
            .collect()
    };
    assert_eq!(names(&merged_xml), names(&whole_xml));
    let merged_text = std::fs::read_to_string(&merged_xml).unwrap();
    let header = merged_text.lines().nth(1).unwrap_or("");
    let whole_count = cases(&whole).len();
    assert!(
        header.contains(&format!("tests=\"{whole_count}\"")),
        "the totals add up: {header}"
    );
    assert!(!merged_text.contains("name=\"shard\""));

    // A shard given twice, or one missing, is refused: its cases would be doubled or vanish.
    let out = merge(
        &dir.join("twice.json"),
        vec![&shards[0].1, &shards[0].1, &shards[1].1],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("are both shard 3/3"),
        "{}",
        text(&out.stderr)
    );
    let out = merge(
        &dir.join("partial.json"),
        vec![&shards[0].1, &shards[1].1],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("shard 2/3 is missing"),
        "{}",
        text(&out.stderr)
    );
    let out = merge(
        &dir.join("partial.json"),
        vec![&shards[0].1, &shards[1].1],
        &["--partial"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = merge(
        &dir.join("mixed.json"),
        vec![&shards[0].0, &shards[1].1],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("one format at a time"));

    // Written over one of its inputs, the merged report (or a page) would lose it: refused,
    // the input untouched (`report html IN IN` once replaced the record with the page).
    let input = &shards[0].1;
    let before = std::fs::read(input).unwrap();
    let out = merge(input, vec![input, &shards[1].1, &shards[2].1], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is also an input"),
        "{}",
        text(&out.stderr)
    );
    let shown = input.display().to_string();
    let out = pitcrew_in(repo(), &["report", "html", &shown, &shown], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("is also an input"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(input).unwrap(),
        before,
        "the input is untouched"
    );
}

fn redact(text: &str) -> String {
    let text = regex::Regex::new(r"/[^ `|]*/tests/fixtures/")
        .unwrap()
        .replace_all(text, "tests/fixtures/");
    regex::Regex::new(r"`[^`]*(night-\d\.json)`")
        .unwrap()
        .replace_all(&text, "`$1`")
        .into_owned()
}

#[test]
fn the_diff_of_two_nights_names_what_changed_and_fails_on_a_new_failure() {
    let dir = scratch("diff");
    let old = night(&dir, "night-1", "retired.yaml", &[]);
    let new = night(
        &dir,
        "night-2",
        "added.yaml",
        &[
            "--var",
            "breaks=9.99",
            "--var",
            "fixed=1.50",
            "--var",
            "flaky=2",
            "--retries",
            "1",
        ],
    );
    let (old_arg, new_arg) = (old.display().to_string(), new.display().to_string());
    let out = pitcrew_in(repo(), &["report", "diff", &old_arg, &new_arg], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "a new failure fails: {stdout}");
    assert!(
        stdout
            .contains("1 new failure, 1 fixed, 1 newly flaky, 1 still failing, 1 added, 1 removed"),
        "{stdout}"
    );
    assert!(stdout.contains("New failures (1):\n  Nightly › breaks tonight  (passed → failed)"));

    let out = pitcrew_in(
        repo(),
        &["report", "diff", &old_arg, &new_arg, "--format", "md"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("nightly_diff_markdown", redact(&text(&out.stdout)));

    // Against itself nothing changed: exit 0 even though cases fail.
    let out = pitcrew_in(repo(), &["report", "diff", &new_arg, &new_arg], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).contains("2 still failing"));
}

/// Four nights of `tests/fixtures/nightly/`, each record's start and case times then set by
/// hand (a real run's are what the machine made them): `stays green` takes ten times as long
/// on the last two nights.
fn four_nights(dir: &Path) -> Vec<PathBuf> {
    let flaky = ["--var", "flaky=2", "--retries", "1"];
    let tonight = [
        "--var",
        "breaks=9.99",
        "--var",
        "fixed=1.50",
        "--var",
        "flaky=2",
        "--retries",
        "1",
    ];
    let nights = vec![
        night(dir, "night-1", "retired.yaml", &[]),
        night(dir, "night-2", "retired.yaml", &flaky),
        night(dir, "night-3", "added.yaml", &tonight),
        night(dir, "night-4", "added.yaml", &tonight),
    ];
    for (i, path) in nights.iter().enumerate() {
        let mut record = read_json(path);
        record["started_at"] = format!("2026-01-0{}T03:00:00Z", i + 1).into();
        for case in record["cases"].as_array_mut().unwrap() {
            let slower = case["name"] == "stays green" && i >= 2;
            case["duration_ms"] = if slower { 400 + 200 * (i - 2) } else { 50 }.into();
        }
        std::fs::write(path, record.to_string()).unwrap();
    }
    nights
}

#[test]
fn the_trend_of_four_nights_names_what_got_slower_flakier_or_always_fails() {
    let dir = scratch("trend");
    four_nights(&dir);
    let nights = [
        "night-1.json",
        "night-2.json",
        "night-3.json",
        "night-4.json",
    ];
    let trend = |extra: &[&str]| {
        let mut args = vec!["report", "trend"];
        args.extend(nights);
        args.extend(extra);
        let out = pitcrew_in(&dir, &args, &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "a report, not a gate, though cases fail: {}",
            text(&out.stderr)
        );
        text(&out.stdout)
    };
    let said = trend(&[]);
    assert!(
        said.starts_with("4 runs, 7 cases: 1 slower, 2 flakier, 1 always failing, 3 flaky\n"),
        "{said}"
    );
    assert!(
        said.contains("Got slower (1):\n  ....  Nightly › stays green: 50 ms → 500 ms (×10.0)"),
        "{said}"
    );
    assert!(
        said.contains(
            "Always failing (1):\n  FFFF  Nightly › still broken: failing in 4 of 4 runs"
        ),
        "{said}"
    );
    insta::assert_snapshot!("nightly_trend_text", said);

    let md = trend(&["--format", "md"]);
    assert!(
        md.starts_with("### ⚠️ pitcrew trend: 4 runs, 7 cases: 1 slower, 2 flakier, 1 always failing, 3 flaky\n"),
        "{md}"
    );
    for row in [
        "| Nightly › stays green | `....` | 50 ms | 500 ms | ×10.0 | `tests/fixtures/nightly/core.yaml:6` |",
        "| Nightly › breaks tonight | `..FF` | 0 of 2 | 2 of 2 | `tests/fixtures/nightly/core.yaml:10` |",
        "| Nightly › turns flaky | `.~~~` | 3 of 4 (75%) | 3 | 0 | 0 | `tests/fixtures/nightly/core.yaml:24` | run 4: attempt 1 failed: callback.payload conversion.trackSysConversionAmount: expected string \"2\", got string \"1\" |",
        "| New offer › the new offer converts | `--..` | run 3 | `tests/fixtures/nightly/added.yaml:3` |",
        "| Retired offer › the old offer still converts | `..--` | run 2 | `tests/fixtures/nightly/retired.yaml:3` |",
    ] {
        assert!(md.contains(&format!("{row}\n")), "no row {row} in\n{md}");
    }

    // One run is no trend; a JUnit file is named, with what to give instead.
    let out = pitcrew_in(&dir, &["report", "trend", "night-1.json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("give two or more JSON reports, oldest first"));
    std::fs::write(
        dir.join("junit.xml"),
        "<?xml version=\"1.0\"?>\n<testsuites/>\n",
    )
    .unwrap();
    let out = pitcrew_in(&dir, &["report", "trend", "night-1.json", "junit.xml"], &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("junit.xml: this is XML (a JUnit report?)")
            && stderr.contains("--json FILE"),
        "{stderr}"
    );
}

#[test]
fn json_to_stdout_leaves_the_console_on_stderr() {
    let file = fixture("nightly/added.yaml").display().to_string();
    let out = pitcrew_in(repo(), &["run", &file, "--json", "-"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).expect("stdout is the JSON report");
    assert_eq!(record["summary"]["passed"], 1);
    assert!(text(&out.stderr).contains("PASS  New offer › the new offer converts"));
    let out = pitcrew_in(repo(), &["run", &file, "--json", "-", "--junit", "-"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("only one report can be written to stdout"));
}

#[test]
fn colour_follows_the_flag_then_no_color_and_clicolor_force() {
    let file = fixture("nightly/added.yaml").display().to_string();
    let bad = fixture("unknown-key.yaml").display().to_string();
    let esc = "\x1b[";
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pitcrew"))
            .args(args)
            .current_dir(repo())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE")
            .env_remove("CLICOLOR")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        (text(&out.stdout), text(&out.stderr))
    };
    let (stdout, _) = run(&["run", &file], &[]);
    assert!(!stdout.contains(esc), "not a terminal: no colour");
    let (stdout, _) = run(&["run", &file, "--color", "always"], &[("NO_COLOR", "1")]);
    assert!(stdout.contains(&format!("{esc}32mPASS")), "{stdout}");
    let (stdout, _) = run(&["run", &file], &[("CLICOLOR_FORCE", "1")]);
    assert!(stdout.contains(esc), "CLICOLOR_FORCE forces colour");
    let (stdout, _) = run(
        &["run", &file],
        &[("CLICOLOR_FORCE", "1"), ("NO_COLOR", "1")],
    );
    assert!(!stdout.contains(esc), "NO_COLOR wins over CLICOLOR_FORCE");
    let (stdout, _) = run(
        &["run", &file, "--color", "never"],
        &[("CLICOLOR_FORCE", "1")],
    );
    assert!(!stdout.contains(esc), "--color never wins");
    // Diagnostics too.
    let (_, stderr) = run(&["validate", &bad], &[("CLICOLOR_FORCE", "1")]);
    assert!(stderr.contains(esc), "{stderr}");
    let (_, stderr) = run(&["validate", &bad], &[]);
    assert!(!stderr.contains(esc), "{stderr}");
    let (_, stderr) = run(
        &["--color", "always", "validate", &bad],
        &[("NO_COLOR", "1")],
    );
    assert!(stderr.contains(esc), "{stderr}");
}

#[test]
fn verbose_prints_the_exchanges_of_passing_cases() {
    let file = fixture("nightly/added.yaml").display().to_string();
    let out = pitcrew_in(repo(), &["run", &file, "--verbose"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("│ > POST http://127.0.0.1:"), "{stdout}");
    assert!(stdout.contains("/tools/conversions"), "{stdout}");
    let out = pitcrew_in(repo(), &["run", &file], &[]);
    assert!(!text(&out.stdout).contains("│ > POST"));
}

/// On a terminal whose stdout goes to a file, every case line lands in the file and the
/// progress bar draws nowhere (`script` gives the process a terminal).
#[test]
fn output_redirected_from_a_terminal_keeps_every_line() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("note: no `script` to make a terminal; skipped");
        return;
    }
    let dir = scratch("tty");
    let log = dir.join("log.txt");
    let file = fixture("nightly/core.yaml").display().to_string();
    let command = format!(
        "{} run {file} > {}",
        env!("CARGO_BIN_EXE_pitcrew"),
        log.display()
    );
    let out = Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let logged = std::fs::read_to_string(&log).unwrap();
    for name in ["stays green", "breaks tonight", "still broken"] {
        assert!(logged.contains(&format!("Nightly › {name}")), "{logged}");
    }
    assert!(logged.contains("What failed (2):"), "{logged}");
    assert!(
        !logged.contains('\r'),
        "no progress bar in the file: {logged:?}"
    );
    let terminal = text(&out.stdout);
    assert!(
        !terminal.contains("stays green"),
        "no case line on the terminal: {terminal}"
    );
}

/// A saved record whose summary its cases contradict (edited, or written by something else) is
/// shown as its cases say: `report html` and `report diff` count again, as `merge` does (they
/// once showed a green header over a failed case).
#[test]
fn a_records_summary_is_counted_again_from_its_cases() {
    let dir = scratch("recount-summary");
    let json = dir.join("run.json");
    let out = pitcrew_in(
        repo(),
        &[
            "run",
            &fixture("wrong-payload.yaml").display().to_string(),
            "--json",
            &json.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let mut record = read_json(&json);
    let total = record["summary"]["total"].clone();
    record["summary"]["passed"] = total;
    record["summary"]["failed"] = 0.into();
    let lying = dir.join("lying.json");
    std::fs::write(&lying, record.to_string()).unwrap();
    let page = dir.join("page.html");
    let out = pitcrew_in(
        repo(),
        &[
            "report",
            "html",
            &lying.display().to_string(),
            &page.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        html.contains("<header class=\"failed\">"),
        "the header says what the cases say"
    );
    let out = pitcrew_in(
        repo(),
        &[
            "report",
            "diff",
            &lying.display().to_string(),
            &json.display().to_string(),
        ],
        &[],
    );
    let said = text(&out.stdout);
    assert!(
        said.contains("total 1, passed 0, failed 1,"),
        "the old run's counts are its cases': {said}"
    );
}

/// `report diff` and `report html` take JSON run records: a JUnit file given by mistake is named
/// as XML, with what to give instead, not "expected value at line 1 column 1".
#[test]
fn a_junit_file_given_for_a_json_record_is_named_as_such() {
    let dir = common::scratch("diff-junit");
    let xml = dir.join("junit.xml");
    std::fs::write(&xml, "<?xml version=\"1.0\"?>\n<testsuites/>\n").unwrap();
    let xml = xml.display().to_string();
    let out = common::pitcrew(&["report", "diff", &xml, &xml]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("this is XML (a JUnit report?)") && stderr.contains("--json FILE"),
        "{stderr}"
    );
}

/// A 5,000-case run with 100 failures of 4 kinds reads well (issue 21, item 8): the failures
/// are listed by kind, each case folded to its name and first failure, the suites of "Every
/// case" folded, transcripts indented, and the filter matches what failed. The page is
/// measured in the browser; `PITCREW_SCREENSHOT=DIR` keeps a screenshot of it there to look at.
#[test]
fn a_big_run_with_many_failures_is_pleasant_to_read() {
    let Some(browser) = browser() else { return };
    let dir = scratch("html-big");
    let passing: Vec<String> = (1..=4900).map(|n| n.to_string()).collect();
    let failing: Vec<String> = (1..=25).map(|n| n.to_string()).collect();
    let file = dir.join("big.yaml");
    std::fs::write(
        &file,
        format!(
            "name: Big\ncases:\n  - name: \"install {{{{matrix.n}}}}\"\n    matrix: {{ n: [{}] }}\n    event: install\n  - name: \"sub1 {{{{matrix.k}}}} {{{{matrix.n}}}}\"\n    matrix: {{ k: [w, x, y, z], n: [{}] }}\n    event: signup\n    params: {{ pub_sub_1: a }}\n    expect: {{ callback: {{ payload: {{ conversion.pubSub1: \"{{{{matrix.k}}}}\" }} }} }}\n",
            passing.join(", "),
            failing.join(", ")
        ),
    )
    .unwrap();
    let html = dir.join("big.html");
    let out = pitcrew_in(
        &dir,
        &[
            "run",
            "big.yaml",
            "--quiet",
            "--html",
            &html.display().to_string(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        page.contains("4 kind(s) of failure"),
        "the kinds are listed"
    );
    assert_eq!(
        page.matches("<details class=\"kind\">").count(),
        4,
        "each folded"
    );
    assert!(page.contains("<b class=\"bad\">×25</b> callback.payload conversion.pubSub1: expected string &quot;w&quot;, got string &quot;a&quot;"));
    assert!(
        !page.contains("<details class=\"suite\" open>"),
        "5,000 cases: suites folded"
    );
    // Transcripts are indented JSON, not one long line.
    assert!(
        page.contains("&lt; {\n  &quot;data&quot;: {"),
        "indented answers"
    );

    // Measured in the browser: the page's height, and a filter by failure text.
    let probe = dir.join("probe.html");
    std::fs::write(
        &probe,
        "<!doctype html><title>…</title><iframe id=f src=\"big.html#q=expected%20string%20%22w%22\" style=\"width:1280px;height:800px\"></iframe>\
         <script>document.getElementById('f').onload = function () { var d = this.contentDocument; \
         var shown = d.querySelectorAll('#cases details.case:not([hidden])').length; \
         document.title = 'height=' + d.documentElement.scrollHeight + ' shown=' + shown; };</script>",
    )
    .unwrap();
    let profile = scratch("chromium-profile");
    let run = Command::new(&browser)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--allow-file-access-from-files",
            "--virtual-time-budget=10000",
            &format!("--user-data-dir={}", profile.display()),
            "--dump-dom",
            &format!("file://{}", probe.display()),
        ])
        .output()
        .expect("run chromium");
    let dom = text(&run.stdout);
    let title = dom
        .split("<title>")
        .nth(1)
        .and_then(|t| t.split("</title>").next())
        .unwrap_or_default()
        .to_string();
    let numbers: Vec<u64> = title
        .split([' ', '='])
        .filter_map(|w| w.parse().ok())
        .collect();
    let [height, shown] = numbers[..] else {
        panic!("no measure in {title:?}: {}", text(&run.stderr))
    };
    assert!(height < 12_000, "the page is {height} px high");
    assert_eq!(shown, 25, "the filter matches the failure's text");
    if let Some(keep) = std::env::var_os("PITCREW_SCREENSHOT") {
        let png = Path::new(&keep).join("big-report.png");
        let shot = Command::new(&browser)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                "--window-size=1280,2400",
                &format!("--user-data-dir={}", scratch("chromium-shot").display()),
                &format!("--screenshot={}", png.display()),
                &format!("file://{}", html.display()),
            ])
            .output()
            .expect("run chromium");
        assert!(shot.status.success(), "{}", text(&shot.stderr));
    }
}
