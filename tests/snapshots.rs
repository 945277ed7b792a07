//! What users see, pinned: the console from events built here, and the console, the JUnit and
//! the JSON report of a small run with a pass, two failures and an expected refusal. Ids,
//! ports, times and durations are redacted, so that a change in what users see is a reviewed
//! diff (`cargo insta review`, or `INSTA_UPDATE=always cargo test --test snapshots` and
//! `git diff`).

mod common;

fn redacted(text: &str) -> String {
    let rules: &[(&str, &str)] = &[
        (
            r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
            "[uuid]",
        ),
        (r"pc-[0-9a-f]{32}", "[secret]"),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[port]"),
        (
            r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)",
            "[time]",
        ),
        (r"\(\d+ ms\)", "([n] ms)"),
        (r#"time="[0-9.]+""#, r#"time="[t]""#),
        (r#""duration_ms": \d+"#, r#""duration_ms": [n]"#),
        (r#""wake_us": \d+"#, r#""wake_us": [n]"#),
        (r#""durationMs":\d+"#, r#""durationMs":[n]"#),
        (r"in \d+\.\d+s", "in [t]s"),
        (r"&quot;durationMs&quot;:\d+", "&quot;durationMs&quot;:[n]"),
    ];
    let mut text = text.to_string();
    for (pattern, with) in rules {
        text = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&text, *with)
            .into_owned();
    }
    text
}

#[test]
fn console_junit_and_json_of_a_failing_run() {
    let r = common::run(&["snapshot.yaml"], &["--jobs", "1", "--no-progress"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    r.assert_junit_valid();
    insta::assert_snapshot!("console", redacted(&r.stdout));
    insta::assert_snapshot!("junit", redacted(r.junit.as_deref().unwrap()));
    let json = serde_json::to_string_pretty(r.json.as_ref().unwrap()).unwrap();
    insta::assert_snapshot!("json", redacted(&json));
}

/// Lines written to a buffer the test reads afterwards.
#[derive(Clone, Default)]
struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The console, from events built here (no sandbox, no clock, nothing to redact): verdicts
/// that come out of order, a failure with the positions of its expectations, an error, a retry
/// that passes (flaky), an interruption and a skipped case, a stray, and the recap.
#[test]
fn console_of_events_built_here() {
    use pitcrew::check::Failure;
    use pitcrew::delivery::{CallbackIds, Stray};
    use pitcrew::report::console::{Console, ConsoleOptions};
    use pitcrew::run::events::{CaseInfo, SuiteInfo};
    use pitcrew::run::{CancelReason, CaseResult, Event, EventKind, Ids, Inputs, RunInfo, Status};
    use std::sync::Arc;
    use std::time::Duration;

    let at: chrono::DateTime<chrono::Utc> = "2026-12-02T09:00:00Z".parse().unwrap();
    let names = [
        "installs",
        "pays the amount",
        "recovers",
        "signs up",
        "not reached",
    ];
    let info = RunInfo {
        run_id: "run-1".into(),
        target: "sandbox (test)".into(),
        shard: None,
        suites: vec![SuiteInfo {
            name: "Go-live".into(),
            file: "scenarios/go-live.yaml".into(),
            tags: vec![],
        }],
        cases: names
            .iter()
            .enumerate()
            .map(|(i, name)| CaseInfo {
                name: Arc::from(*name),
                suite: 0,
                line: 3 + 6 * i as u64,
                tags: vec![],
                position: None,
            })
            .collect(),
    };
    let result = |index: usize, status, attempt, failures: Vec<Failure>, error: Option<&str>| {
        Arc::new(CaseResult {
            index,
            attempt,
            status,
            started_at: Some(at),
            duration: Duration::from_millis(12),
            failures,
            error: error.map(str::to_string),
            ids: Ids::default(),
            inputs: Inputs::default(),
            transcript: vec![],
            wake: None,
        })
    };
    let amount = Failure::new("callback.payload", "string \"2.00\"", "string \"1.50\"")
        .path("conversion.trackSysConversionAmount")
        .at("scenarios/go-live.yaml:14:48");
    let count = Failure::new("callback.count", "1", "2")
        .note("a duplicate callback arrived")
        .at("scenarios/go-live.yaml:13:7");
    let refused = Failure::new("callback.count", "1", "0")
        .note("no accepted callback arrived within 10s")
        .in_step(1)
        .at("scenarios/go-live.yaml:18:9");
    let kinds = vec![
        EventKind::RunStarted(Arc::new(info)),
        EventKind::CaseStarted {
            index: 0,
            attempt: 1,
        },
        EventKind::CaseStarted {
            index: 1,
            attempt: 1,
        },
        EventKind::CaseStarted {
            index: 2,
            attempt: 1,
        },
        // Out of plan order: printed in plan order.
        EventKind::CaseFinished(result(1, Status::Failed, 1, vec![amount, count], None)),
        EventKind::CaseFinished(result(0, Status::Passed, 1, vec![], None)),
        EventKind::AttemptFailed(result(2, Status::Failed, 1, vec![refused], None)),
        EventKind::CaseStarted {
            index: 2,
            attempt: 2,
        },
        EventKind::CaseFinished(result(2, Status::Passed, 2, vec![], None)),
        EventKind::CaseStarted {
            index: 3,
            attempt: 1,
        },
        EventKind::RunCancelled {
            reason: CancelReason::Interrupted,
        },
        EventKind::CaseFinished(result(
            3,
            Status::Errored,
            1,
            vec![],
            Some("create click: http://127.0.0.1/api/v1/tools/clicks: connection refused"),
        )),
        EventKind::CaseFinished(Arc::new(CaseResult::not_run(
            4,
            Status::Skipped,
            CancelReason::Interrupted.skip_reason(),
        ))),
        EventKind::RunFinished {
            strays: vec![Stray {
                seq: 9,
                at,
                method: "POST".into(),
                path: "/callbacks".into(),
                ids: CallbackIds::default(),
                reason: "refused (401): wrong X-Api-Token".into(),
            }],
            duration: Duration::from_millis(1234),
        },
    ];
    let buffer = Buffer::default();
    let mut console = Console::to_writer(ConsoleOptions::default(), Box::new(buffer.clone()));
    let mut record = pitcrew::report::RecordBuilder::default();
    for kind in kinds {
        let event = Event { at, kind };
        console.on_event(&event);
        record.on_event(&event);
    }
    console.finish(&record.finish());
    let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    insta::assert_snapshot!("console_of_events", text);
}

/// A big run's console stays readable: failures that read alike are one entry of the recap
/// with the first cases named, the totals come last, and `--quiet` prints only what did not
/// pass.
#[test]
fn the_recap_of_a_run_with_many_failures() {
    let r = common::run(&["big/many-failures.yaml"], &["--no-progress"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let recap = r.stdout.split("\nWhat failed").nth(1).expect("a recap");
    insta::assert_snapshot!(
        "many_failures_recap",
        redacted(&format!("What failed{recap}"))
    );
    let last = r.stdout.trim_end().lines().last().unwrap();
    assert!(
        last.starts_with("3 passed, 31 failed"),
        "the totals are the last line: {last}"
    );
    let quiet = common::run(&["big/many-failures.yaml"], &["--no-progress", "--quiet"]);
    assert_eq!(quiet.code, 1);
    assert!(!quiet.stdout.contains("PASS "), "{}", quiet.stdout);
    assert_eq!(
        quiet.stdout.matches("\nFAIL ").count(),
        31,
        "{}",
        quiet.stdout
    );
}
