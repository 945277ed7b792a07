//! Publishers' endpoints put to the test: `pitcrew check-endpoint` against two endpoints this
//! test serves, a correct one and one with two classic bugs, each failing exactly the checks it
//! should; and `--endpoint` on `pitcrew run` observing deliveries through the sandbox's log.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::Value;

const SECRET: &str = "endpoint-s3cret-77";

/// How an endpoint behaves.
#[derive(Clone, Copy)]
struct Behaviour {
    /// Takes any secret as long as the header is there.
    accepts_wrong_secret: bool,
    /// Answers 500 to a callback id it has seen.
    fails_duplicates: bool,
}

#[derive(Clone)]
struct Endpoint {
    behaviour: Behaviour,
    seen: Arc<Mutex<HashSet<String>>>,
}

async fn callback(
    State(e): State<Endpoint>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let token = headers.get("x-api-token").and_then(|v| v.to_str().ok());
    match token {
        None => return (StatusCode::UNAUTHORIZED, "no token"),
        Some(t) if t != SECRET && !e.behaviour.accepts_wrong_secret => {
            return (StatusCode::FORBIDDEN, "wrong token");
        }
        Some(_) => {}
    }
    let Ok(json) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON");
    };
    let id = json
        .get("id")
        .or_else(|| json.get("Id"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let first = e.seen.lock().unwrap().insert(id);
    if !first && e.behaviour.fails_duplicates {
        return (StatusCode::INTERNAL_SERVER_ERROR, "duplicate!");
    }
    (StatusCode::OK, "OK")
}

/// Serves an endpoint on an ephemeral port; returns its URL.
fn serve(behaviour: Behaviour) -> String {
    let state = Endpoint {
        behaviour,
        seen: Arc::default(),
    };
    let app = Router::new().fallback(callback).with_state(state);
    format!("http://{}/gokart", common::serve_app(app))
}

fn check(url: &str) -> (i32, Value, String) {
    let dir = common::scratch("check-endpoint");
    let json = dir.join("r.json");
    let junit = dir.join("j.xml");
    let out = common::pitcrew(&[
        "check-endpoint",
        url,
        "--endpoint-header",
        &format!("X-Api-Token={SECRET}"),
        "--json",
        &json.display().to_string(),
        "--junit",
        &junit.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap_or_default())
        .unwrap_or_else(|e| panic!("{e}: {stdout}\n{}", String::from_utf8_lossy(&out.stderr)));
    common::assert_junit_file_valid(&junit);
    assert!(!stdout.contains(SECRET), "the secret is masked: {stdout}");
    (out.status.code().unwrap_or(-1), report, stdout)
}

fn failed(report: &Value) -> Vec<String> {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "passed")
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_correct_endpoint_passes_every_check() {
    let url = serve(Behaviour {
        accepts_wrong_secret: false,
        fails_duplicates: false,
    });
    let (code, report, stdout) = check(&url);
    assert_eq!(failed(&report), Vec::<String>::new(), "{stdout}");
    assert_eq!(code, 0);
    assert_eq!(report["summary"]["total"], 9, "one case per check");
}

#[test]
fn a_buggy_endpoint_fails_exactly_the_checks_it_should() {
    let url = serve(Behaviour {
        accepts_wrong_secret: true,
        fails_duplicates: true,
    });
    let (code, report, stdout) = check(&url);
    assert_eq!(code, 1, "{stdout}");
    assert_eq!(
        failed(&report),
        [
            "the same delivery twice gets the same answer",
            "a callback with a wrong secret is refused with 401 or 403",
        ],
        "{stdout}"
    );
    // Said for a publisher: what the endpoint answered and what to fix, never a path into
    // pitcrew's own check files (which the publisher does not have).
    assert!(!stdout.contains("checks/endpoint/"), "{stdout}");
    assert!(
        stdout.contains("your endpoint answered: HTTP 200 OK; HTTP 500 duplicate! (5 times)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("fix: make the handler idempotent"),
        "{stdout}"
    );
    assert!(stdout.contains("What to fix (2):"), "{stdout}");
}

/// An endpoint that cannot be reached is one clear error (exit 3) before any check runs, not
/// nine failures after their waits.
#[test]
fn an_unreachable_endpoint_is_one_clear_error() {
    let url = format!("http://127.0.0.1:{}/gokart", common::dead_port());
    let out = common::pitcrew(&[
        "check-endpoint",
        &url,
        "--endpoint-header",
        &format!("X-Api-Token={SECRET}"),
    ]);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(3), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("your endpoint {url} is unreachable from here")),
        "{stderr}"
    );
    assert!(stderr.contains("nothing was checked"), "{stderr}");
    assert!(!stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn check_endpoint_needs_the_header_it_checks() {
    let out = common::pitcrew(&["check-endpoint", "http://127.0.0.1:9/x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--endpoint-header"));
}

/// The suite's files run with `pitcrew run` too, and `--endpoint` reads what the endpoint
/// answered from the sandbox's delivery log.
#[test]
fn the_suite_runs_with_pitcrew_run_and_an_endpoint() {
    let url = serve(Behaviour {
        accepts_wrong_secret: false,
        fails_duplicates: false,
    });
    let header = format!("X-Api-Token={SECRET}");
    let r = common::run(
        &[
            "../../checks/endpoint/1-accepts.yaml",
            "../../checks/endpoint/3-status-changes.yaml",
        ],
        &["--endpoint", &url, "--endpoint-header", &header],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.json.as_ref().unwrap()["summary"]["passed"], 3);
    assert!(
        r.stdout.contains(&format!("callbacks to {url}")),
        "{}",
        r.stdout
    );
}

/// An endpoint that redirects every callback never accepted one: the sandbox does not follow a
/// redirect when it delivers (a 3xx is the answer, and it is not a 2xx), so the check that a
/// valid callback is accepted fails (it once passed, the body answered by the redirect's target).
#[test]
fn an_endpoint_that_redirects_accepts_nothing() {
    let target = serve(Behaviour {
        accepts_wrong_secret: false,
        fails_duplicates: false,
    });
    let app = Router::new().fallback(move || {
        let target = target.clone();
        async move {
            (
                StatusCode::TEMPORARY_REDIRECT,
                [("location", target)],
                "moved",
            )
        }
    });
    let url = format!("http://{}/gokart", common::serve_app(app));
    let (code, report, stdout) = check(&url);
    assert_eq!(code, 1, "{stdout}");
    let failing = failed(&report);
    assert!(
        failing
            .iter()
            .any(|n| n.starts_with("a valid callback is accepted with a 2xx")),
        "{failing:?}\n{stdout}"
    );
    assert!(stdout.contains("HTTP 307"), "{stdout}");
}
