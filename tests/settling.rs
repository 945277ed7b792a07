//! When a case's verdict is final, and what fails it on the way: a late delivery is judged the
//! same in every run, however long the rest of the run takes; a delivery pitcrew's receiver
//! refused for its credentials fails the case it names at once, with the reason, and stays a
//! stray. Each test here failed on the build before the ledger (issue "One home for matching
//! callbacks to cases").

mod common;

use common::{Standalone, run, scratch};

/// A duplicate 300 ms after the first delivery arrives long after the verdict: the case fails
/// with `callback.late`, printed once, whether its file runs alone (the run once ended before
/// the duplicate came, and the case passed) or beside a slow case that keeps the run going. On
/// the embedded sandbox and on a standalone one read through its log.
#[test]
fn a_late_duplicate_fails_its_case_in_every_run() {
    let standalone = Standalone::start();
    let files: [&[&str]; 2] = [
        &["settling/late-duplicate.yaml"],
        &[
            "settling/late-duplicate.yaml",
            "settling/slow-neighbour.yaml",
        ],
    ];
    for target in [vec![], vec!["--target", standalone.base.as_str()]] {
        for files in files {
            let r = run(files, &target);
            assert_eq!(r.code, 1, "{}", r.explain());
            let name = "the duplicate comes after the verdict";
            let case = r.case(name);
            assert_eq!(case["status"], "failed", "{}", r.explain());
            assert_eq!(case["failures"][0]["check"], "callback.late", "{case:#}");
            assert_eq!(
                r.stdout.matches(name).count(),
                2,
                "one line as it finished, one in the recap: {}",
                r.stdout
            );
            assert!(r.stdout.contains(&format!("FAIL  Late duplicate › {name}")));
            assert_eq!(r.json.as_ref().unwrap()["summary"]["failed"], 1);
            assert_eq!(r.json.as_ref().unwrap()["summary"]["stray"], 0);
            r.assert_junit_valid();
            assert!(r.junit.as_ref().unwrap().contains("callback.late"));
        }
    }
}

/// `--settle` holds a case's verdict open that long on a sandbox too (without it, a sandbox's
/// case is final once the sandbox has sent all it had to): the run lasts at least the window.
#[test]
fn the_settle_flag_holds_verdicts_open_on_a_sandbox_too() {
    for (flag, at_least) in [(None, 0), (Some("700ms"), 700)] {
        let extra: Vec<&str> = flag.into_iter().flat_map(|f| ["--settle", f]).collect();
        let r = run(&["settling/quiet.yaml"], &extra);
        assert_eq!(r.code, 0, "{}", r.explain());
        let took = r.json.as_ref().unwrap()["summary"]["duration_ms"]
            .as_u64()
            .unwrap();
        assert!(
            took >= at_least,
            "--settle {flag:?}: the run took {took} ms"
        );
    }
}

/// A callback refused for a wrong or missing secret that names a case's conversion fails the
/// case at once, saying what was wrong, in every report: the console, the JSON, the JUnit and
/// the HTML. It is still counted as a stray. `callback: none` is not met by a refused delivery
/// either: the platform made it for the case (that case once passed).
#[test]
fn a_delivery_refused_for_its_credentials_fails_its_case_at_once() {
    let html = scratch("refused").join("report.html");
    let html_arg = html.display().to_string();
    let r = run(&["settling/wrong-secret.yaml"], &["--html", &html_arg]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let cases = [
        ("the platform sends a wrong secret", "wrong X-Api-Token"),
        (
            "no callback may come and one comes without a secret",
            "no X-Api-Token header",
        ),
    ];
    let page = std::fs::read_to_string(&html).expect("the HTML report");
    for (name, why) in cases {
        let case = r.case(name);
        assert_eq!(case["status"], "failed", "{case:#}");
        let refused = case["failures"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["check"] == "callback.refused")
            .unwrap_or_else(|| panic!("no callback.refused failure: {case:#}"));
        let message = format!("delivery 1 was refused: {why} (401)");
        assert!(
            refused["message"].as_str().unwrap().contains(&message),
            "{refused:#}"
        );
        let took = case["duration_ms"].as_u64().unwrap();
        assert!(
            took < 5_000,
            "failed at once, not after `within`: {took} ms"
        );
        assert!(r.stdout.contains(&message), "{}", r.stdout);
        assert!(r.junit.as_ref().unwrap().contains(&message));
        assert!(page.contains(&message), "the HTML report says it too");
    }
    let json = r.json.as_ref().unwrap();
    assert_eq!(json["summary"]["stray"], 2, "{json:#}");
    for stray in json["stray"].as_array().unwrap() {
        assert!(
            stray["reason"]
                .as_str()
                .unwrap()
                .starts_with("refused (401)"),
            "{stray:#}"
        );
    }
    r.assert_junit_valid();
}

/// Every failure a run reports names where its expectation is written, a default one too (the
/// case, or the step, that expects it), in the file and on a line that exists.
#[test]
fn every_failure_names_the_expectation_it_checks() {
    let files = [
        "duplicate.yaml",
        "missing-flag.yaml",
        "refused.yaml",
        "unexpected-callback.yaml",
        "wrong-payload.yaml",
        "settling/late-duplicate.yaml",
        "settling/wrong-secret.yaml",
        "verdicts/wait-duplicate.yaml",
        "verdicts/rejected.yaml",
        "stories/failing.yaml",
    ];
    let r = run(&files, &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let json = r.json.as_ref().unwrap();
    let mut seen = 0;
    for case in json["cases"].as_array().unwrap() {
        for failure in case["failures"].as_array().unwrap() {
            seen += 1;
            let at = failure["at"]
                .as_str()
                .unwrap_or_else(|| panic!("no position: {failure:#} in {}", case["name"]));
            let (file, line) = {
                let mut parts = at.rsplitn(3, ':');
                let _col = parts.next();
                let line: usize = parts.next().unwrap().parse().unwrap();
                (parts.next().unwrap().to_string(), line)
            };
            assert_eq!(file, case["file"].as_str().unwrap(), "{failure:#}");
            let lines = std::fs::read_to_string(common::repo_path(&file)).unwrap();
            assert!(line <= lines.lines().count(), "{at} is past the file's end");
        }
    }
    assert!(seen >= 8, "the files fail in many ways: {seen} failures");
}

/// A case that settles holds no job slot: with `--jobs 1`, the next case starts while the
/// first still waits for its duplicate (2 s), and the first still fails for it.
#[test]
fn a_settling_case_holds_no_job_slot() {
    let r = run(&["settling/no-slot.yaml"], &["--jobs", "1"]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let (first, second) = (r.case("settles for a while"), r.case("runs meanwhile"));
    assert_eq!(first["failures"][0]["check"], "callback.late", "{first:#}");
    assert_eq!(second["status"], "passed", "{second:#}");
    let started = |case: &serde_json::Value| {
        let text = case["started_at"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(text).unwrap()
    };
    let gap = started(second) - started(first);
    assert!(
        gap < chrono::Duration::milliseconds(1_500),
        "the second case waited for the first to settle: it started {gap} later"
    );
}
