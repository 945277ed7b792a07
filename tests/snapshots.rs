//! What users see, pinned: the console, the JUnit and the JSON report of a small run with a
//! pass, two failures and an expected refusal. Ids, ports, times and durations are redacted, so
//! that a change in what users see is a reviewed diff (`cargo insta review`, or
//! `INSTA_UPDATE=always cargo test --test snapshots` and `git diff`).

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
