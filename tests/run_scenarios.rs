//! The user's story: a scenario file in, an exit code and reports out.

mod common;

use common::run;

#[test]
fn the_three_modes_pass_with_valid_reports() {
    let r = run(&["modes.yaml"], &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    for name in ["generate", "existing click", "callback only"] {
        assert_eq!(r.case(name)["status"], "passed", "{name}: {}", r.explain());
    }
    let generate = r.case("generate");
    assert!(generate["ids"]["click"].is_string());
    assert!(generate["ids"]["conversion"].is_string());
    assert_eq!(
        generate["inputs"]["params"]["pub_sub_3"], "x-fixture",
        "rendered values are reported"
    );
    assert_eq!(
        r.case("callback only")["ids"]["conversion"],
        "00000000-0000-4000-8000-000000000002"
    );
    let summary = &r.json.as_ref().unwrap()["summary"];
    assert_eq!(summary["total"], 3);
    assert_eq!(summary["passed"], 3);
    r.assert_junit_valid();
    let junit = r.junit.as_ref().unwrap();
    assert!(
        junit.contains(r#"<testsuite name="Three modes" tests="3""#),
        "{junit}"
    );
    assert!(junit.contains(r#"classname="Three modes""#));
    assert!(
        junit.contains(r#"line="3""#),
        "a case's line is its `- name:` line: {junit}"
    );
    assert!(r.stdout.contains("3 passed, 0 failed"), "{}", r.explain());
}

#[test]
fn a_wrong_payload_expectation_names_field_expected_and_actual() {
    let r = run(&["wrong-payload.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let case = r.case("wrong amount");
    assert_eq!(case["status"], "failed");
    let failure = &case["failures"][0];
    assert_eq!(failure["check"], "callback.payload");
    assert_eq!(failure["path"], "conversion.trackSysConversionAmount");
    assert_eq!(failure["expected"], r#"string "2.00""#);
    assert_eq!(failure["actual"], r#"string "1.50""#);
    assert!(
        failure["at"]
            .as_str()
            .unwrap()
            .ends_with("wrong-payload.yaml:10:48"),
        "{failure}"
    );
    assert!(r.stdout.contains(
        "conversion.trackSysConversionAmount: expected string \"2.00\", got string \"1.50\""
    ));
    r.assert_junit_valid();
    let junit = r.junit.as_ref().unwrap();
    assert!(
        junit.contains("<failure message=\"callback.payload conversion.trackSysConversionAmount"),
        "{junit}"
    );
    assert!(
        junit.contains("wrong-payload.yaml:10:48)"),
        "the failure body has a (path:line:col) line"
    );
    assert!(
        junit.contains("<system-out>"),
        "failing cases carry their transcript"
    );
    assert!(
        junit.contains("x-api-token: ***"),
        "secrets are masked in transcripts: {junit}"
    );
    assert!(!junit.contains("demo-secret"));
}

#[test]
fn a_missing_testing_tools_flag_fails_on_pub_sub_5() {
    let r = run(&["missing-flag.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let failure = &r.case("the platform forgets the flag")["failures"][0];
    assert_eq!(failure["check"], "flag");
    assert_eq!(failure["path"], "conversion.pubSub5");
    assert_eq!(failure["actual"], "null");
    assert_eq!(
        r.case("the check can be turned off")["status"],
        "passed",
        "flag: false turns it off"
    );
    r.assert_junit_valid();
}

#[test]
fn a_callback_that_never_comes_fails_after_within() {
    let r = run(&["never-arrives.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let case = r.case("the callback is dropped");
    assert_eq!(case["status"], "failed");
    let failure = &case["failures"][0];
    assert_eq!(failure["check"], "callback.count");
    assert_eq!(failure["expected"], "1");
    assert_eq!(failure["actual"], "0");
    assert!(
        failure["message"]
            .as_str()
            .unwrap()
            .contains("no accepted callback arrived within 300ms"),
        "{failure}"
    );
    assert!(
        case["duration_ms"].as_u64().unwrap() >= 300,
        "it waited the whole window"
    );
    r.assert_junit_valid();
}

#[test]
fn a_duplicated_callback_fails_count_one() {
    let r = run(&["duplicate.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let failure = &r.case("the callback comes twice")["failures"][0];
    assert_eq!(failure["check"], "callback.count");
    assert_eq!(failure["expected"], "1");
    assert_eq!(failure["actual"], "2");
    assert!(
        failure["message"].as_str().unwrap().contains("duplicate"),
        "{failure}"
    );
}

#[test]
fn refused_steps_pass_when_expected_and_send_nothing() {
    let r = run(&["refused.yaml"], &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.case("unknown event")["status"], "passed");
    assert_eq!(r.case("unknown offer")["status"], "passed");
    r.assert_junit_valid();
}

#[test]
fn a_late_callback_within_the_window_passes() {
    let r = run(&["late.yaml"], &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let waited = r.case("arrives after a delay, within the window")["duration_ms"]
        .as_u64()
        .unwrap();
    assert!(
        waited >= 200,
        "the case waited for the delayed callback ({waited} ms)"
    );
}

#[test]
fn a_callback_where_none_may_come_fails() {
    let r = run(&["unexpected-callback.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let failure = &r.case("a callback arrives where none may")["failures"][0];
    assert_eq!(failure["check"], "callback.count");
    assert_eq!(failure["actual"], "1");
}

#[test]
fn fail_fast_skips_the_cases_that_had_not_started() {
    let r = run(&["fail-fast.yaml"], &["--fail-fast", "--jobs", "1"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(r.case("fails first")["status"], "failed");
    for name in ["second", "third"] {
        let case = r.case(name);
        assert_eq!(case["status"], "skipped", "{name}: {}", r.explain());
        assert!(case["error"].as_str().unwrap().contains("--fail-fast"));
    }
    assert_eq!(r.json.as_ref().unwrap()["summary"]["skipped"], 2);
    r.assert_junit_valid();
    assert!(r.junit.as_ref().unwrap().contains("<skipped"));
    let r = run(&["fail-fast.yaml"], &["--jobs", "1"]);
    assert_eq!(
        r.json.as_ref().unwrap()["summary"]["passed"],
        2,
        "without it all run"
    );
}

#[test]
fn a_var_on_the_command_line_overrides_the_file() {
    let r = run(&["modes.yaml"], &["--var", "tag=from-cli"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(
        r.case("generate")["inputs"]["params"]["pub_sub_3"],
        "x-from-cli"
    );
}

#[test]
fn validate_counts_cases_and_runs_nothing() {
    let out = common::pitcrew(&[
        "validate",
        "tests/fixtures/modes.yaml",
        "tests/fixtures/refused.yaml",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("modes.yaml: 3 case(s)"), "{stdout}");
    assert!(stdout.contains("valid: 2 file(s), 5 case(s)"), "{stdout}");
    let out = common::pitcrew(&["validate", "tests/fixtures/unknown-key.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown-key.yaml:7:7"));
}

#[test]
fn an_unknown_key_exits_2_with_line_and_column_and_runs_nothing() {
    let r = run(&["unknown-key.yaml"], &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(r.stderr.contains("unknown-key.yaml:7:7"), "{}", r.explain());
    assert!(r.stderr.contains("callbak"), "{}", r.explain());
    assert!(
        r.stderr.contains("did you mean `callback`"),
        "{}",
        r.explain()
    );
    assert!(
        r.json.is_none() && r.junit.is_none(),
        "nothing ran, no report"
    );
}

#[test]
fn files_run_together_keep_file_order_in_every_report() {
    let r = run(&["refused.yaml", "modes.yaml"], &["--jobs", "8"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let names: Vec<&str> = r.json.as_ref().unwrap()["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "unknown event",
            "unknown offer",
            "generate",
            "existing click",
            "callback only"
        ]
    );
    let first = r.stdout.find("unknown event").unwrap();
    let last = r.stdout.find("callback only").unwrap();
    assert!(first < last, "console lines in file order: {}", r.stdout);
    r.assert_junit_valid();
}

#[test]
fn usage_errors_exit_2() {
    let r = run(&["does-not-exist.yaml"], &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(r.stderr.contains("does-not-exist.yaml"), "{}", r.explain());
    let r = run(&["modes.yaml"], &["--jobs", "many"]);
    assert_eq!(r.code, 2, "{}", r.explain());
}

#[test]
fn the_sandbox_serves_standalone() {
    let sandbox = common::Standalone::start();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (status, body) = runtime.block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{}/tools/clicks", sandbox.base))
            .json(&serde_json::json!({"offerId": "demo-offer", "publisherMemberId": "m"}))
            .send()
            .await
            .expect("the sandbox answers");
        (
            r.status().as_u16(),
            r.json::<serde_json::Value>().await.unwrap(),
        )
    });
    assert_eq!(status, 201, "{body}");
    assert!(body["data"]["clickId"].is_string());
}

#[test]
fn a_url_target_is_run_with_callbacks_read_from_its_log() {
    let sandbox = common::Standalone::start();
    let r = run(&["modes.yaml"], &["--target", &sandbox.base]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.json.as_ref().unwrap()["summary"]["passed"], 3);
    r.assert_junit_valid();
    let r = run(
        &["duplicate.yaml", "missing-flag.yaml"],
        &["--target", &sandbox.base],
    );
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(
        r.case("the callback comes twice")["failures"][0]["actual"],
        "2"
    );
    assert_eq!(
        r.case("the platform forgets the flag")["failures"][0]["check"],
        "flag"
    );
}

#[test]
fn an_unreachable_target_exits_3_before_any_case() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = run(
        &["modes.yaml"],
        &["--target", &format!("http://127.0.0.1:{port}/api/v1")],
    );
    assert_eq!(r.code, 3, "{}", r.explain());
    assert!(r.stderr.contains("unreachable"), "{}", r.explain());
    assert!(r.json.is_none(), "no case ran, no report");
}

/// Durations may be templates (docs/scenarios.md says every text value may be): one suite
/// serves a fast sandbox and a slow tenant through `--var`, a matrix may vary `within` per case
/// (each case keeps its own), and a rendering that is no duration is a located error.
#[test]
fn durations_may_be_templates() {
    let dir = common::scratch("templated-durations");
    let file = dir.join("durations.yaml");
    std::fs::write(
        &file,
        r#"name: Templated durations
vars: { window: 100ms }
cases:
  - name: "late callback within {{matrix.within}}"
    matrix: { within: [100ms, 5s] }
    event: install
    sandbox: { faults: { callback_delay: 400ms } }
    expect: { callback: { within: "{{matrix.within}}" } }
  - name: window from vars
    event: install
    sandbox: { faults: { callback_delay: 400ms } }
    expect: { callback: { within: "{{vars.window}}" } }
"#,
    )
    .unwrap();
    let path = file.display().to_string();
    let r = common::run(&[&path], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let status = |name: &str| r.case(name)["status"].as_str().unwrap().to_string();
    assert_eq!(
        status("late callback within 100ms"),
        "failed",
        "{}",
        r.explain()
    );
    assert_eq!(
        status("late callback within 5s"),
        "passed",
        "{}",
        r.explain()
    );
    assert_eq!(status("window from vars"), "failed", "{}", r.explain());
    let r = common::run(
        &[&path],
        &["--var", "window=5s", "--filter", "window from vars"],
    );
    assert_eq!(r.code, 0, "{}", r.explain());

    let r = common::run(&[&path], &["--var", "window=soon"]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains("durations.yaml:12:")
            && r.stderr.contains("(`{{vars.window}}` renders to `soon`)"),
        "{}",
        r.explain()
    );
}

/// A case's tags in the JSON report are its file's and its own, as `--tag` selects by both.
#[test]
fn the_json_report_gives_a_case_its_files_tags_too() {
    let dir = common::scratch("tags");
    let file = dir.join("tags.yaml");
    std::fs::write(
        &file,
        "name: Tagged\ntags: [go-live, nightly]\ncases:\n  - { name: a, event: install, tags: [smoke, nightly] }\n  - { name: b, event: install }\n",
    )
    .unwrap();
    let r = common::run(&[&file.display().to_string()], &["--tag", "smoke"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(
        r.case("a")["tags"],
        serde_json::json!(["go-live", "nightly", "smoke"])
    );
}

/// An unreachable target is one clear error (exit 3 or 2, never a pass) that names the URL
/// once, not again inside the HTTP client's own words.
#[test]
fn an_unreachable_target_is_named_once() {
    let port = common::dead_port();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let r = common::run(&["modes.yaml"], &["--target", &base]);
    assert_ne!(r.code, 0, "{}", r.explain());
    let line = r
        .stderr
        .lines()
        .find(|l| l.contains("unreachable"))
        .unwrap_or_else(|| panic!("{}", r.explain()))
        .to_string();
    assert_eq!(
        line.matches(&format!("127.0.0.1:{port}")).count(),
        1,
        "{line}"
    );
}

/// `matrix: { from: payouts.csv }` (DESIGN §3): each row of the advertiser's table is a
/// combination, combined with the lists, `exclude` applied, names from the template; the
/// row whose expected payout is wrong fails, once per partner.
#[test]
fn a_payout_table_drives_a_matrix() {
    let r = common::run(&["payouts/payouts.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let verdicts = r.verdicts();
    assert_eq!(
        verdicts,
        [
            ("install pays 2.50 via p1", "passed"),
            ("install pays 2.50 via p2", "passed"),
            ("signup pays 0 via p1", "passed"),
            ("signup pays 0 via p2", "passed"),
            ("purchase pays 9.99 via p1", "failed"),
            ("purchase pays 9.99 via p2", "failed"),
        ]
        .map(|(n, s)| (n.to_string(), s.to_string())),
        "{}",
        r.explain()
    );
    let failure = &r.case("purchase pays 9.99 via p2")["failures"][0];
    assert_eq!(failure["check"], "callback.payload", "{failure}");
    assert!(
        failure["message"].as_str().unwrap().contains("9.90"),
        "{failure}"
    );
    r.assert_junit_valid();
}

/// Callback-only mode can expect the callback tool's own refusal (`expect.resend`), and a
/// refusal it does not expect fails with the key that would expect it (`resend.status`).
#[test]
fn callback_only_cases_may_expect_the_tools_refusal() {
    let r = common::run(&["resend/refusals.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(
        r.verdicts(),
        [
            ("an unknown conversion is refused", "passed"),
            (
                "an unknown conversion fails a case that expects a callback",
                "failed"
            ),
            ("the seeded conversion is not refused", "failed"),
        ]
        .map(|(n, s)| (n.to_string(), s.to_string())),
        "{}",
        r.explain()
    );
    let failure = |name: &str| {
        let f = &r.case(name)["failures"];
        assert_eq!(f.as_array().unwrap().len(), 1, "{f}");
        f[0]["message"].as_str().unwrap().to_string()
    };
    assert_eq!(
        failure("an unknown conversion fails a case that expects a callback"),
        "resend.status: expected 200, got 404 (conversion `cnv-unknown` not found)"
    );
    assert!(
        failure("the seeded conversion is not refused")
            .starts_with("resend.status: expected 404, got 200"),
        "{}",
        r.explain()
    );
    // A refusal told by its status alone is worth a warning (a wrong path answers 404 too);
    // the first case, which checks why, gets none.
    assert_eq!(
        r.stderr
            .matches("`resend.status: 404` alone would also hold")
            .count(),
        1,
        "{}",
        r.stderr
    );
    // On a case that does not resend, `expect.resend` is a located error.
    let dir = common::scratch("resend-misplaced");
    let file = dir.join("m.yaml");
    std::fs::write(
        &file,
        "cases:\n  - name: a\n    event: install\n    expect: { resend: { status: 404 } }\n",
    )
    .unwrap();
    let out = common::pitcrew(&["validate", &file.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("m.yaml:4:33: `expect.resend` checks the callback tool's answer"),
        "{stderr}"
    );
}

/// A sandbox config adds its offers and partners to the built-in tenant (the seeded click
/// stays on `demo-offer`), or replaces it with `builtin: false`; kept beside the scenarios it
/// is skipped with a note, not read as a broken scenario.
#[test]
fn a_sandbox_config_extends_the_built_in_tenant_and_may_sit_beside_the_scenarios() {
    let dir = common::scratch("tenant-beside");
    std::fs::write(
        dir.join("tenant.yaml"),
        "minute: 20ms\noffers:\n  - id: payout-offer\n    events: [{ id: lead, revenue: 2 }]\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("suite.yaml"),
        "name: Tenant\ncases:\n  - name: a lead on the config's offer\n    offer: payout-offer\n    event: lead\n  - name: an install on the built-in offer\n    event: install\n  - name: the seeded conversion is still demo-offer's\n    click: \"00000000-0000-4000-8000-000000000001\"\n    conversion: \"00000000-0000-4000-8000-000000000002\"\n    expect:\n      callback: { payload: { conversion.offerId: demo-offer } }\n",
    )
    .unwrap();
    let folder = dir.display().to_string();
    let config = dir.join("tenant.yaml").display().to_string();
    let r = common::run(&[&folder], &["--sandbox-config", &config]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.json.as_ref().unwrap()["summary"]["total"], 3);
    assert!(
        !r.stderr.contains("sandbox config ("),
        "given, it is not noted: {}",
        r.stderr
    );

    // Beside the scenarios without `--sandbox-config`: skipped, with a note that says why.
    let out = common::pitcrew(&["validate", &folder]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(
            "tenant.yaml: a sandbox config (`minute`, `offers`), not a scenario file: skipped"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("--sandbox-config"), "{stderr}");

    // `builtin: false`: only the file's tenant, no seeded click.
    std::fs::write(
        dir.join("tenant.yaml"),
        "builtin: false\noffers:\n  - id: payout-offer\n    partner: p1\n    events: [{ id: lead }]\npartners:\n  - id: p1\n",
    )
    .unwrap();
    let r = common::run(&[&folder], &["--sandbox-config", &config]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let verdicts = r.verdicts();
    assert_eq!(verdicts[0].1, "passed", "{}", r.explain());
    assert_ne!(verdicts[1].1, "passed", "no demo-offer: {}", r.explain());
    assert_ne!(
        verdicts[2].1,
        "passed",
        "no seeded conversion: {}",
        r.explain()
    );
}

/// A 429 with `Retry-After` is waited out and the request sent again: the case passes, and
/// its transcript shows the wait (DESIGN §4). `--rate` spaces the requests: 20 requests at
/// 10/s take at least 1.9 s (a bound a slow machine cannot break; how close it holds is
/// `benches/rate.sh`'s to measure).
#[test]
fn a_rate_limited_tenant_is_waited_out_and_rate_is_kept() {
    let dir = common::scratch("rate");
    let file = dir.join("limited.yaml");
    std::fs::write(
        &file,
        "name: Limited\ncases:\n  - name: the conversion is rate-limited once\n    event: install\n    sandbox: { faults: { api_error: 429 } }\n",
    )
    .unwrap();
    let r = common::run(&[&file.display().to_string()], &["--verbose"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        r.stdout
            .contains("< HTTP 429 with Retry-After: waited 1s and sent it again"),
        "{}",
        r.stdout
    );

    let many = dir.join("many.yaml");
    std::fs::write(
        &many,
        "name: Many\ncases:\n  - name: \"case {{matrix.n}}\"\n    matrix: { n: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10] }\n    event: install\n",
    )
    .unwrap();
    let started = std::time::Instant::now();
    let r = common::run(&[&many.display().to_string()], &["--rate", "10/s"]);
    let took = started.elapsed();
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(
        took >= std::time::Duration::from_millis(1900),
        "20 requests at 10/s took {took:?}"
    );
    let bad = common::run(&[&many.display().to_string()], &["--rate", "fast"]);
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("is not a rate"), "{}", bad.stderr);
}

/// `--jobs` bounds the cases sending requests, not those waiting: at `--jobs 1`, six cases
/// whose callbacks come a second late all start before the first one's callback comes (each
/// gives its slot back while it waits), and each passes. Before, each waited for the one
/// before it to finish. The report's own start times and durations say so; no clock here.
#[test]
fn cases_waiting_for_late_callbacks_hold_no_job_slot() {
    let dir = common::scratch("slots");
    let file = dir.join("late.yaml");
    std::fs::write(
        &file,
        "name: Late\ncases:\n  - name: \"late {{matrix.n}}\"\n    matrix: { n: [1, 2, 3, 4, 5, 6] }\n    event: install\n    sandbox: { faults: { callback_delay: 1s } }\n",
    )
    .unwrap();
    let r = common::run(&[&file.display().to_string()], &["--jobs", "1"]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let cases = r.json.as_ref().unwrap()["cases"]
        .as_array()
        .unwrap()
        .clone();
    let at = |c: &serde_json::Value| {
        chrono::DateTime::parse_from_rfc3339(c["started_at"].as_str().unwrap()).unwrap()
    };
    let first_done =
        at(&cases[0]) + chrono::Duration::milliseconds(cases[0]["duration_ms"].as_i64().unwrap());
    for case in &cases {
        assert!(
            at(case) < first_done,
            "{} started after the first case's verdict: {case:#}",
            case["name"]
        );
    }
}
