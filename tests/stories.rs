//! Whole callback stories: cases as steps, scripted endpoints and their retry schedule, the
//! schema v1 check, and the same verdicts wherever the callbacks are observed.

mod common;

use common::{Standalone, run};
use serde_json::Value;

fn failures(r: &common::Run, name: &str) -> Vec<String> {
    r.case(name)["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_shipped_stories_pass_on_the_embedded_sandbox() {
    let r = common::pitcrew(&["run", "scenarios/stories.yaml"]);
    let stdout = String::from_utf8_lossy(&r.stdout);
    assert_eq!(
        r.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&r.stderr)
    );
    assert!(stdout.contains("4 passed, 0 failed"), "{stdout}");
}

#[test]
fn each_story_fails_where_it_should() {
    let r = run(&["stories/failing.yaml"], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(
        r.json.as_ref().unwrap()["summary"]["failed"],
        6,
        "{}",
        r.explain()
    );
    assert_eq!(
        failures(&r, "the schedule is not the expected one"),
        ["callback.attempts[2].after"]
    );
    let after = &r.case("the schedule is not the expected one")["failures"][0];
    assert!(
        after["expected"].as_str().unwrap().starts_with("8m (400ms"),
        "{after}"
    );
    assert!(
        after["actual"].as_str().unwrap().starts_with("2"),
        "{after}"
    );
    assert_eq!(
        failures(&r, "refused deliveries that no attempts list"),
        ["callback.delivery"]
    );
    let duplicate = r.case("a duplicate no part expected, during a wait");
    assert_eq!(duplicate["failures"][0]["check"], "callback.unexpected");
    assert!(
        duplicate["failures"][0]["message"]
            .as_str()
            .unwrap()
            .contains("(a duplicate)"),
        "{duplicate}"
    );
    let schema = &r.case("a missing schema v1 field")["failures"][0];
    assert_eq!(schema["check"], "schema");
    assert_eq!(schema["path"], "conversion.revenue");
    assert_eq!(
        r.case("an altered amount")["failures"][0]["actual"],
        r#"string "0.01""#
    );
    assert_eq!(
        failures(&r, "a step whose callback never comes"),
        ["then[1].callback.payload"],
        "the step's callback came (Rejected), but not what it expects"
    );
    r.assert_junit_valid();
}

/// A reversal sends a second callback, a new record, with the same conversionId and the new
/// status: read back from the standalone sandbox's own log.
#[test]
fn a_status_change_calls_back_with_the_same_conversion_and_the_new_status() {
    let sandbox = Standalone::start();
    let r = run(
        &["stories/target-agnostic.yaml"],
        &["--target", &sandbox.base, "--filter", "reversal"],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let conversion =
        r.case("a reversal calls back again with the same conversion")["ids"]["conversion"]
            .as_str()
            .unwrap()
            .to_string();
    let log: Value = reqwest::blocking_get(&format!(
        "{}/conversion-callbacks?conversionId={conversion}",
        sandbox.base
    ));
    let attempts = log["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{log:#}");
    let statuses: Vec<&str> = attempts
        .iter()
        .map(|a| a["note"]["conversion"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["Success", "Rejected"]);
    for a in attempts {
        assert_eq!(a["note"]["conversion"]["conversionId"], conversion.as_str());
    }
    assert_ne!(
        attempts[0]["callbackId"], attempts[1]["callbackId"],
        "a new record"
    );
}

/// The same file, observed through pitcrew's receiver and through a standalone sandbox's log.
#[test]
fn the_same_stories_give_the_same_verdicts_on_every_sandbox_target() {
    let embedded = run(&["stories/target-agnostic.yaml"], &[]);
    let sandbox = Standalone::start();
    let standalone = run(
        &["stories/target-agnostic.yaml"],
        &["--target", &sandbox.base],
    );
    assert_eq!(
        embedded.verdicts(),
        standalone.verdicts(),
        "{}",
        standalone.explain()
    );
    let failed: Vec<String> = embedded
        .verdicts()
        .into_iter()
        .filter(|(_, s)| s != "passed")
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        failed,
        ["a missing schema v1 field", "a duplicate during a wait"],
        "{}",
        embedded.explain()
    );
}

#[test]
fn scripts_need_a_receiver_pitcrew_controls() {
    let sandbox = Standalone::start();
    let out = common::pitcrew(&["run", "scenarios/stories.yaml", "--target", &sandbox.base]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`receiver:` scripts pitcrew's own receiver, but this target calls back its own endpoint"),
        "{stderr}"
    );
}

mod reqwest {
    /// A GET answered with JSON, from a test thread.
    pub fn blocking_get(url: &str) -> serde_json::Value {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(async { ::reqwest::get(url).await.unwrap().json().await.unwrap() })
    }
}

/// `after` is the platform time since the previous attempt was answered: an endpoint that takes
/// 300 ms (six platform minutes on the sandbox) to answer each 503 does not turn GoKart's `2m`
/// into `4m`. A wrong schedule still fails.
#[test]
fn a_slow_endpoint_does_not_stretch_the_retry_schedule() {
    let dir = common::scratch("slow-endpoint");
    let file = dir.join("slow.yaml");
    std::fs::write(
        &file,
        r#"name: Slow endpoint
cases:
  - name: answers each failure in 300ms
    event: install
    receiver: { respond: [{ status: 503, delay: 300ms }, { status: 503, delay: 300ms }, { status: 200 }] }
    expect:
      callback:
        attempts: [{ status: 503 }, { status: 503, after: 2m }, { status: 200, after: 4m }]
  - name: a wrong schedule still fails
    event: install
    receiver: { respond: [{ status: 503, delay: 300ms }, { status: 200 }] }
    expect:
      callback:
        attempts: [{ status: 503 }, { status: 200, after: 4m }]
"#,
    )
    .unwrap();
    let r = common::run(&[&file.display().to_string()], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    assert_eq!(
        r.case("answers each failure in 300ms")["status"],
        "passed",
        "{}",
        r.explain()
    );
    let wrong = failures(&r, "a wrong schedule still fails");
    assert!(
        wrong.len() == 1 && wrong[0] == "callback.attempts[2].after",
        "{wrong:?}"
    );
}
