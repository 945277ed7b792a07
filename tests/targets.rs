//! Real platforms by configuration alone: a platform with another API shape, served by these
//! tests and driven only by a pitcrew.yaml profile, observed through pitcrew's receiver, a
//! shared `pitcrew receive`, and its own callback log, with the same verdicts.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::process::Running;
use common::{dead_port, fixture, pitcrew_in, run_in, scratch, widgets};
use serde_json::Value;

const RECEIVER_TOKEN: &str = "receiver-token-5b7e";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("WIDGET_KEY", widgets::API_KEY),
        ("WIDGET_SIG", widgets::SIG),
        ("WIDGET_WHSEC", widgets::WHSEC),
        ("RECEIVER_TOKEN", RECEIVER_TOKEN),
    ]
}

/// A `pitcrew receive` for Widgets' notifications, on `port`.
fn receive(dir: &Path, port: u16, store: &str) -> Running {
    let listen = format!("127.0.0.1:{port}");
    let header = format!("X-Widget-Sig={}", widgets::SIG);
    let mut args = vec![
        "receive",
        "--listen",
        &listen,
        "--auth-header",
        &header,
        "--store",
        store,
    ];
    args.extend(widgets::RECEIVE_IDS);
    let mut p = Running::start(&args, dir, &[("PITCREW_RECEIVER_TOKEN", RECEIVER_TOKEN)]);
    p.line(Duration::from_secs(10), |l| l.contains("callbacks at"));
    p
}

fn project(dir: &Path, targets: &[String]) -> PathBuf {
    let text = format!("targets:\n{}", targets.join(""));
    std::fs::write(dir.join("pitcrew.yaml"), text).unwrap();
    dir.to_path_buf()
}

#[test]
fn a_platform_with_another_shape_runs_through_every_way_of_observing_callbacks() {
    let dir = scratch("widgets");
    let listen = dead_port();
    let by_receiver = widgets::start(&format!("http://127.0.0.1:{listen}/callbacks"));
    let remote_port = dead_port();
    let _service = receive(&dir, remote_port, "memory");
    let by_remote = widgets::start(&format!("http://127.0.0.1:{remote_port}/callbacks"));
    let by_log = widgets::start(&widgets::sink());
    let auth = "      auth_header: { name: X-Widget-Sig, secret: \"{{env.WIDGET_SIG}}\" }\n";
    project(
        &dir,
        &[
            widgets::profile(
                "widgets-receiver",
                &by_receiver.base,
                &format!("      via: receiver\n      listen: \"127.0.0.1:{listen}\"\n{auth}"),
            ),
            widgets::profile(
                "widgets-remote",
                &by_remote.base,
                &format!(
                    "      via: remote\n      url: http://127.0.0.1:{remote_port}\n      token: \"{{{{env.RECEIVER_TOKEN}}}}\"\n"
                ),
            ),
            widgets::profile("widgets-log", &by_log.base, "      via: log\n"),
        ],
    );
    let file = fixture("widgets/widgets.yaml").display().to_string();
    let mut all = Vec::new();
    for target in ["widgets-receiver", "widgets-remote", "widgets-log"] {
        let r = run_in(&dir, &[&file], &["--target", target], &env());
        assert_eq!(r.code, 0, "{target}: {}", r.explain());
        r.assert_junit_valid();
        assert!(
            !r.stdout.contains(widgets::API_KEY)
                && !r.junit.clone().unwrap().contains(widgets::SIG)
        );
        all.push(r.verdicts());
    }
    assert_eq!(all[0].len(), 5);
    assert!(all.iter().all(|v| v == &all[0]), "{all:#?}");
    let scripted = fixture("widgets/widgets-scripted.yaml")
        .display()
        .to_string();
    for target in ["widgets-receiver", "widgets-remote"] {
        let r = run_in(&dir, &[&scripted], &["--target", target], &env());
        assert_eq!(r.code, 0, "{target}: {}", r.explain());
    }
    let r = run_in(&dir, &[&scripted], &["--target", "widgets-log"], &env());
    assert_eq!(
        r.code,
        2,
        "scripts need a receiver pitcrew answers: {}",
        r.explain()
    );
}

/// A scratch project whose target `widgets` is a Widgets platform observed through its log.
fn widgets_read_by_log(label: &str) -> (PathBuf, widgets::Platform) {
    let dir = scratch(label);
    let platform = widgets::start(&widgets::sink());
    project(
        &dir,
        &[widgets::profile(
            "widgets",
            &platform.base,
            "      via: log\n",
        )],
    );
    (dir, platform)
}

/// A real tenant's API is rate-limited: a case whose callback is already logged reads the log
/// once to judge it and once more when it settles (for late duplicates), not again in between.
#[test]
fn a_case_reads_the_callback_log_once_to_judge_and_once_when_it_settles() {
    let (dir, platform) = widgets_read_by_log("log-reads");
    let file = dir.join("four.yaml");
    std::fs::write(
        &file,
        "name: four\nschema: false\nflag: false\ncases:\n  - name: \"case {{matrix.i}}\"\n    matrix: { i: [1, 2, 3, 4] }\n    click: generate\n    event: signup\n    expect: { callback: { payload: { event.state: approved } } }\n",
    )
    .unwrap();
    let r = run_in(
        &dir,
        &[&file.display().to_string()],
        &["--target", "widgets"],
        &env(),
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.verdicts().len(), 4);
    assert_eq!(platform.action_log_reads(), 4 * 2, "{}", r.explain());
}

#[test]
fn a_profile_missing_a_step_refuses_the_scenarios_that_need_it() {
    let dir = scratch("missing-step");
    let platform = widgets::start(&widgets::sink());
    let mut profile = widgets::profile("widgets", &platform.base, "      via: log\n");
    let start = profile.find("      resend:").unwrap();
    let end = profile.find("      change_status:").unwrap();
    profile.replace_range(start..end, "");
    project(&dir, &[profile]);
    let file = fixture("widgets/widgets.yaml").display().to_string();
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains("widgets.yaml:20:9")
            && r.stderr
                .contains("this needs the `resend` step, which target `widgets` leaves out"),
        "{}",
        r.explain()
    );
    assert!(!r.stdout.contains("running"), "nothing ran");
}

#[test]
fn a_wrong_token_is_unauthorized_not_unreachable() {
    let (dir, _platform) = widgets_read_by_log("wrong-token");
    let wrong = [("WIDGET_KEY", "not-the-key")];
    let out = pitcrew_in(&dir, &["targets"], &wrong);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("✗") && stdout.contains("unauthorized"),
        "{stdout}"
    );
    assert!(!stdout.contains("unreachable"), "{stdout}");
    let out = pitcrew_in(&dir, &["targets"], &env());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.contains("✓ callback log read with the target's credentials"),
        "{stdout}"
    );
    let file = fixture("widgets/widgets.yaml").display().to_string();
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &wrong);
    assert_eq!(r.code, 3, "{}", r.explain());
    assert!(
        r.stderr.contains("the target refused pitcrew") && r.stderr.contains("unauthorized"),
        "{}",
        r.explain()
    );
    assert!(
        !r.stderr.contains("not-the-key"),
        "the key is masked: {}",
        r.stderr
    );
}

#[test]
fn pitcrew_yaml_mistakes_are_located_and_hinted() {
    let dir = scratch("bad-project");
    std::fs::write(
        dir.join("pitcrew.yaml"),
        "targets:\n  acme:\n    base_ur: https://x\n",
    )
    .unwrap();
    let out = pitcrew_in(&dir, &["targets"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pitcrew.yaml:3:5: unknown key `base_ur`")
            && stderr.contains("did you mean `base_url`"),
        "{stderr}"
    );
    std::fs::write(
        dir.join("pitcrew.yaml"),
        "targets:\n  acme:\n    base_url: https://x\n    steps:\n      click:\n        request: { method: POST, path: \"/c/{{clik}}\" }\n        id: data.clickId\n    callbacks: { via: recever }\n",
    )
    .unwrap();
    let out = pitcrew_in(&dir, &["run", "x.yaml", "--target", "acme"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for wanted in [
        "pitcrew.yaml:6:40: `{{clik}}` is not a variable of the `click` step",
        "pitcrew.yaml:7:13: `data.clickId` is not a JSON Pointer",
        "pitcrew.yaml:8:23: `via: recever` is not a way of observing callbacks",
        "did you mean `receiver`",
    ] {
        assert!(stderr.contains(wanted), "{wanted}:\n{stderr}");
    }
    let out = pitcrew_in(&dir, &["run", "x.yaml", "--target", "acmee"], &[]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean `acme`"));

    // Answers read by regex and header, ok_when, credentials and callback shapes.
    std::fs::write(
        dir.join("pitcrew.yaml"),
        "targets:\n  acme:\n    base_url: https://x\n    steps:\n      click:\n        request: { method: GET, path: /go }\n        id: { regex: \"ref=(\" }\n        ok_when: { matchez: x }\n      conversion:\n        request: { method: POST, path: /c }\n        id: { heder: Location }\n    callbacks:\n      via: receiver\n      listen: \"127.0.0.1:0\"\n      format: xml\n      signature: { scheme: hmac, secret: abcdefgh }\n",
    )
    .unwrap();
    let out = pitcrew_in(&dir, &["run", "x.yaml", "--target", "acme"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("pitcrew.yaml:11:13: `heder` is not a key here"),
        "{stderr}"
    );
    std::fs::write(
        dir.join("pitcrew.yaml"),
        "targets:\n  acme:\n    base_url: https://x\n    steps:\n      click:\n        request: { method: GET, path: /go }\n        id: { regex: \"ref=(\" }\n        ok_when: { matchez: x }\n    callbacks:\n      via: receiver\n      listen: \"127.0.0.1:0\"\n      format: xml\n      signature: { scheme: hmac, secret: abcdefgh }\n",
    )
    .unwrap();
    let out = pitcrew_in(&dir, &["run", "x.yaml", "--target", "acme"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let mistakes_so_far = stderr.to_string();
    for wanted in [
        "pitcrew.yaml:7:13: `ref=(` is not a regular expression",
        "pitcrew.yaml:8:18: `ok_when` is not a matcher: unknown matcher `matchez` (did you mean `matches`?)",
        "pitcrew.yaml:12:15: `format: xml` is not a callback format",
        "pitcrew.yaml:13:28: `scheme: hmac` is not a signature scheme pitcrew checks",
    ] {
        assert!(mistakes_so_far.contains(wanted), "{wanted}:\n{stderr}");
    }

    // A signature that leaves the payload unsigned, credentials a log cannot check, an empty
    // name.
    std::fs::write(
        dir.join("pitcrew.yaml"),
        "targets:\n  acme:\n    base_url: https://x\n    steps:\n      click:\n        request: { method: GET, path: /go }\n    callbacks:\n      via: receiver\n      listen: \"127.0.0.1:0\"\n      format: query\n      auth_query: { name: \" \", secret: abcdefgh }\n      signature: { scheme: standard-webhooks, secret: whsec_c2VjcmV0LWtleQ }\n  logged:\n    base_url: https://x\n    steps:\n      click:\n        request: { method: GET, path: /go }\n      callback_log:\n        request: { method: GET, path: /log }\n        items: /items\n        payload: /p\n    callbacks: { auth_header: { name: X-Key, secret: abcdefgh } }\n",
    )
    .unwrap();
    let out = pitcrew_in(&dir, &["targets"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for wanted in [
        "pitcrew.yaml:12:18: the callbacks carry their payload in the query (`format: query`), and this signature covers the body",
        "pitcrew.yaml:11:27: the name is empty",
        "pitcrew.yaml:22:39: callbacks read from the platform's log are not checked for credentials",
    ] {
        assert!(stderr.contains(wanted), "{wanted}:\n{stderr}");
    }
}

/// The pitcrew.yaml `pitcrew init` writes drives a standalone sandbox through its profile.
#[test]
fn the_project_init_writes_drives_a_standalone_sandbox() {
    let dir = scratch("init-project");
    let out = pitcrew_in(&dir, &["init", "--dir", "."], &[]);
    assert_eq!(out.status.code(), Some(0));
    let port = dead_port();
    let mut sandbox = Running::start(
        &["sandbox", "--listen", &format!("127.0.0.1:{port}")],
        &dir,
        &[],
    );
    sandbox.line(Duration::from_secs(10), |l| l.contains("API on"));
    let yaml = std::fs::read_to_string(dir.join("pitcrew.yaml"))
        .unwrap()
        .replace("127.0.0.1:8080", &format!("127.0.0.1:{port}"));
    std::fs::write(dir.join("pitcrew.yaml"), yaml).unwrap();
    let out = pitcrew_in(&dir, &["targets"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let example = dir.join("scenarios/example.yaml").display().to_string();
    let r = run_in(&dir, &[&example], &["--target", "local"], &[]);
    assert_eq!(r.code, 0, "{}", r.explain());
    let report: &Value = r.json.as_ref().unwrap();
    assert_eq!(report["summary"]["passed"], report["summary"]["total"]);
}

/// A platform's own status words never pass unread: through the profile's `states:`, Widgets'
/// `declined` is Rejected (a case that expects it passes, one that expects a conversion fails),
/// and `change_status: Rejected` sends `declined`. Without `states:`, its `approved` stands for
/// no state, and a `state:` pointer that finds nothing errors the case too: neither passes, as
/// once both did.
#[test]
fn a_platforms_status_words_are_mapped_or_the_case_errors() {
    let file = fixture("widgets/widgets-states.yaml").display().to_string();
    let (dir, platform) = widgets_read_by_log("widget-states");
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 1, "{}", r.explain());
    let verdicts: Vec<String> = r.verdicts().into_iter().map(|(_, v)| v).collect();
    assert_eq!(
        verdicts,
        ["passed", "failed", "passed", "failed", "failed"],
        "{}",
        r.explain()
    );
    let flipped = &r.case("a conversion called back in another state fails")["failures"][0];
    assert_eq!(flipped["check"], "callback.state", "{flipped}");
    assert_eq!(flipped["expected"], "Success", "{flipped}");
    assert_eq!(
        flipped["actual"], "Rejected (string \"declined\")",
        "{flipped}"
    );
    let callback = &r.case("a declined callback fails a check for a success")["failures"][0];
    assert_eq!(callback["check"], "callback.payload", "{callback}");
    assert_eq!(
        callback["actual"], "string \"declined\", which is Rejected",
        "{callback}"
    );
    // The transcript tells every read of the log: how many, of what URL, what the last found.
    let transcript =
        r.case("a declined callback fails a check for a success")["transcript"].to_string();
    assert!(
        transcript.contains("-- read the callback log for conversion A-")
            && transcript.contains("(GET http://127.0.0.1:")
            && transcript.contains("/v2/notifications?action=A-")
            && transcript.contains("the last read found 1 entry"),
        "{transcript}"
    );
    let failure =
        &r.case("a declined action fails a case that expects a conversion")["failures"][0];
    assert_eq!(failure["check"], "conversion.state", "{failure}");
    assert_eq!(failure["expected"], "Success or Pending", "{failure}");
    assert_eq!(failure["actual"], "Rejected", "{failure}");

    let widgets = fixture("widgets/widgets.yaml").display().to_string();
    let words = "    states: { Success: [approved], Pending: [pending], Rejected: [declined] }\n";
    let profiles = [
        (
            widgets::profile("widgets", &platform.base, "      via: log\n").replace(words, ""),
            "the platform answered the conversion state `approved`, which no state stands for",
        ),
        (
            widgets::profile("widgets", &platform.base, "      via: log\n")
                .replace("state: /result/state", "state: /result/stat"),
            "the answer holds no conversion state at `/result/stat`",
        ),
        // The answer says no state; the callback's word stands for none.
        (
            widgets::profile("widgets", &platform.base, "      via: log\n")
                .replace(words, "    states: { Success: [ok] }\n")
                .replace("        state: /result/state\n", ""),
            "the callback says the conversion state `approved`, which no state stands for",
        ),
        // The target says where the callback's state is, and it is not there.
        (
            widgets::profile("widgets", &platform.base, "      via: log\n")
                .replace("state: /event/state", "state: /event/status"),
            "the callback holds no conversion state at `/event/status`",
        ),
    ];
    for (profile, why) in profiles {
        project(&dir, &[profile]);
        let r = run_in(&dir, &[&widgets], &["--target", "widgets"], &env());
        assert_eq!(r.code, 1, "{}", r.explain());
        let converting = r.case("a visit converts and notifies");
        assert_eq!(converting["status"], "errored", "{converting:#}");
        assert!(
            converting["error"]
                .as_str()
                .is_some_and(|e| e.contains(why)),
            "{converting:#}"
        );
    }
}

/// `{{params.NAME}}` places one parameter, `{{params}}` in a query spreads every parameter as
/// a pair of its own (it was once silently dropped), and a 3xx is a step's answer: pitcrew does
/// not follow a tracking link to the advertiser's landing page.
#[test]
fn params_by_name_and_in_a_query_and_redirects_are_not_followed() {
    let (dir, platform) = widgets_read_by_log("widget-params");
    let profile = widgets::profile("widgets", &platform.base, "      via: log\n").replace(
        "          body: { action: \"{{event}}\", extra: \"{{params}}\" }\n",
        "          query: { all: \"{{params}}\" }\n          body: { action: \"{{event}}\", extra: { sub: \"{{params.sub}}\" } }\n",
    );
    assert!(profile.contains("params.sub"));
    project(&dir, std::slice::from_ref(&profile));
    let file = fixture("widgets/widgets-params.yaml").display().to_string();
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 0, "{}", r.explain());

    // The click step is a tracking link that redirects: its 302 is the answer.
    let linked = profile.replace(
        "          method: POST\n          path: /visits\n          form: { campaign: \"{{offer}}\", user: \"{{member}}\" }\n        ok: [200]",
        "          method: GET\n          path: \"/go/{{offer}}\"\n        ok: [200]",
    );
    assert!(linked.contains("/go/"));
    project(&dir, &[linked]);
    let widgets_file = fixture("widgets/widgets.yaml").display().to_string();
    let r = run_in(&dir, &[&widgets_file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 1, "{}", r.explain());
    let case = r.case("a visit converts and notifies");
    assert!(case.to_string().contains("302"), "{case:#}");
    assert_eq!(platform.landings(), 0, "pitcrew followed the redirect");
}

/// A platform that answers in text and through a redirect: the click's id is read from the
/// `Location` of a tracking link's 302 (a query parameter of it), the conversion's id and state
/// with regexes over `success=true; conversion_id=…; status=…;`, and `ok_when` makes a 200
/// `success=false;` a step not done, which fails the case showing the answer.
#[test]
fn ids_and_states_from_headers_and_text_answers_and_ok_when() {
    let (dir, platform) = widgets_read_by_log("widget-text");
    let profile = widgets::profile("widgets", &platform.base, "      via: log\n");
    let click = "          method: POST\n          path: /visits\n          form: { campaign: \"{{offer}}\", user: \"{{member}}\" }\n        ok: [200]\n        id: /visit/ref\n";
    let conversion_from = profile.find("      conversion:\n").unwrap();
    let conversion_to = profile.find("      resend:\n").unwrap();
    let text_conversion = r#"      conversion:
        request:
          method: POST
          path: /text/actions
          form: { visit: "{{click}}", action: "{{event}}" }
        ok: [200]
        ok_when: { matches: "^success=true;" }
        id: { regex: "conversion_id=([^;]+);" }
        state: { regex: "status=(\\w+);" }
"#;
    let profile = format!(
        "{}{text_conversion}{}",
        &profile[..conversion_from],
        &profile[conversion_to..]
    )
    .replace(
        click,
        "          method: GET\n          path: \"/go/{{offer}}\"\n          query: { sub1: \"{{member}}\" }\n        ok: [302]\n        id: { header: Location, query: ref }\n",
    );
    assert!(profile.contains("header: Location"), "{profile}");
    project(&dir, &[profile]);
    let file = fixture("widgets/widgets-text.yaml").display().to_string();
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 1, "{}", r.explain());
    let verdicts: Vec<String> = r.verdicts().into_iter().map(|(_, v)| v).collect();
    assert_eq!(verdicts, ["passed", "passed", "failed"], "{}", r.explain());
    let failure = &r.case("a failure answered 200 fails the case")["failures"][0];
    assert_eq!(failure["check"], "conversion.status", "{failure}");
    assert!(
        failure["expected"]
            .as_str()
            .is_some_and(|e| e.contains("ok_when")),
        "{failure}"
    );
    assert!(
        failure
            .to_string()
            .contains("success=false; error=unknown action;"),
        "{failure}"
    );
    // The transcript shows the whole URL, its query included.
    let transcript = r.case("a failure answered 200 fails the case")["transcript"].to_string();
    assert!(
        transcript.contains("/v2/go/camp-1?sub1=pitcrew-"),
        "{transcript}"
    );
    assert_eq!(platform.landings(), 0);
}

/// `pitcrew targets` says what it checked (✓ or ✗) and, plainly, what it could not (?): a base
/// URL that answers alike with and without credentials proves nothing (it once got a tick), the
/// steps that would make something are not called, and a receiver target's port and
/// credentials are checked; a port in use fails it.
#[test]
fn targets_says_what_it_checked_and_what_it_could_not() {
    let dir = scratch("targets-probes");
    let platform = widgets::start(&widgets::sink());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port();
    let free_port = dead_port();
    let without_log = |name: &str, port: u16| {
        let profile = widgets::profile(
            name,
            &platform.base,
            &format!(
                "      via: receiver\n      listen: \"127.0.0.1:{port}\"\n{}",
                widgets::credentials(widgets::Auth::StandardWebhooks)
            ),
        );
        let from = profile.find("      callback_log:\n").unwrap();
        let to = profile.find("    callbacks:\n").unwrap();
        format!("{}{}", &profile[..from], &profile[to..])
    };
    project(
        &dir,
        &[
            without_log("free", free_port),
            without_log("busy", busy_port),
        ],
    );
    let out = pitcrew_in(&dir, &["targets"], &env());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    for wanted in [
        "? base_url answers HTTP 404 with credentials and 404 without",
        "? not called: click, conversion, resend, change_status",
        &format!("✓ pitcrew's receiver can listen on 127.0.0.1:{free_port}"),
        "✓ callbacks must hold: standard-webhooks signature",
        &format!("✗ pitcrew's receiver cannot listen on 127.0.0.1:{busy_port}"),
    ] {
        assert!(stdout.contains(wanted), "{wanted}:\n{stdout}");
    }
    assert!(!stdout.contains("✓ reachable"), "{stdout}");
    assert!(!stdout.contains(widgets::WHSEC), "{stdout}");
    drop(busy);
}

/// A callback's headers are checked the same through pitcrew's receiver and through a log
/// that keeps them (`steps.callback_log.headers`); where the log keeps none (a profile without
/// the pointer, the sandbox's log under `--endpoint`), a check of them is refused before
/// anything runs, located, instead of failing as "missing".
#[test]
fn callback_headers_are_checked_where_they_can_be_and_refused_where_not() {
    let file = fixture("widgets/widgets-headers.yaml")
        .display()
        .to_string();
    let (dir, platform) = widgets_read_by_log("widget-headers");
    let plain = widgets::profile("widgets", &platform.base, "      via: log\n");
    project(&dir, std::slice::from_ref(&plain));
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains("widgets-headers.yaml:10:")
            && r.stderr
                .contains("`headers:` checks a callback's request headers")
            && r.stderr.contains("steps.callback_log.headers"),
        "{}",
        r.explain()
    );
    let with_headers = plain.replace(
        "        payload: /sent\n",
        "        payload: /sent\n        headers: /headers\n",
    );
    assert_ne!(with_headers, plain);
    project(&dir, &[with_headers]);
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(!r.stdout.contains(widgets::SIG), "{}", r.explain());

    let port = dead_port();
    let by_receiver = widgets::start(&format!("http://127.0.0.1:{port}/callbacks"));
    let receiving = widgets::profile(
        "widgets",
        &by_receiver.base,
        &format!(
            "      via: receiver\n      listen: \"127.0.0.1:{port}\"\n{}",
            widgets::credentials(widgets::Auth::Header)
        ),
    );
    project(&dir, &[receiving]);
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 0, "{}", r.explain());

    let sink = widgets::sink();
    let r = common::run(&[&file], &["--endpoint", &sink]);
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains("keeps no request headers"),
        "{}",
        r.explain()
    );
}

/// A log read only by conversion cannot tell whether a refused conversion's click was called
/// back: such a case is refused before anything runs (through a receiver it would pass, and
/// through that log it used to error on an empty `{{conversion}}` in the path).
#[test]
fn a_refused_conversion_on_a_log_read_only_by_conversion_is_refused_up_front() {
    let (dir, platform) = widgets_read_by_log("widget-log-by-conversion");
    let profile = widgets::profile("widgets", &platform.base, "      via: log\n").replace(
        "          path: /notifications\n          query: { action: \"{{conversion}}\", visit: \"{{click}}\" }\n",
        "          path: \"/actions/{{conversion}}/notifications\"\n",
    );
    assert!(profile.contains("/actions/{{conversion}}/notifications"));
    project(&dir, &[profile]);
    let file = dir.join("refused.yaml");
    std::fs::write(
        &file,
        "name: Refused\nschema: false\nflag: false\ncases:\n  - name: an unknown action is refused\n    click: generate\n    event: signup\n    expect: { conversion: { status: 404 }, callback: none }\n",
    )
    .unwrap();
    let file = file.display().to_string();
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains(
            "refused.yaml:8:37: a refused conversion's callbacks are looked for by its click"
        ),
        "{}",
        r.explain()
    );
}

/// The profile of GoKart's public path on a host (docs/targets.md shows the same): the offer's
/// tracking link as the click step (its 302's `Location` holds the click id), the advertiser's
/// postback as the conversion step, the callback log as the built-in profile reads it.
pub fn public_path_profile(name: &str, host: &str) -> String {
    format!(
        r#"  {name}:
    base_url: "{host}"
    offer: demo-offer
    steps:
      click:
        request:
          method: GET
          path: "/api/v1/offer-link/redirect/{{{{offer}}}}"
          query: {{ pub_member_id: "{{{{member}}}}", pub: "{{{{params}}}}" }}
        ok: [302]
        id: {{ header: Location, query: gk_click_id }}
      conversion:
        request:
          method: GET
          path: /postback
          query: {{ gk_click_id: "{{{{click}}}}", event_id: "{{{{event}}}}", cnv: "{{{{params}}}}" }}
        ok: [200]
        id: /data/conversionId
        state: /data/status
        reason: /data/rejectionReason
        callback_id: /data/callback/callbackId
      callback_log:
        request:
          method: GET
          path: /api/v1/conversion-callbacks
          query: {{ conversionId: "{{{{conversion}}}}", clickId: "{{{{click}}}}" }}
        items: /data
        payload: /note
        endpoint_status: /status
        endpoint_body: /responseBody
        error: /error
        attempt: /attempt
        sent_at: /sentAt
        callback_id: /callbackId
        attempt_id: /id
        postback_url: /url
    callbacks: {{ via: log }}
"#
    )
}

/// Partner postbacks give the same verdicts on the embedded sandbox (through pitcrew's
/// receiver), a standalone one and a profile (through the callback log's postback entries): a
/// wrong macro, a missing postback and an unexpected one each fail their case, on its own
/// check, and no other case fails.
#[test]
fn partner_postbacks_give_the_same_verdicts_every_way() {
    let file = fixture("public/postbacks.yaml").display().to_string();
    let sandbox = common::Standalone::start();
    let host = sandbox.base.trim_end_matches("/api/v1").to_string();
    let dir = scratch("postbacks");
    // Each offer's landing page names the click id its own way: the profile reads the UUID.
    let profile = public_path_profile("public", &host)
        .replace("    offer: demo-offer\n", "")
        .replace(
            "id: { header: Location, query: gk_click_id }",
            "id: { header: Location, regex: \"([0-9a-f]{8}-[0-9a-f-]{27})\" }",
        )
        .replace("      click:\n", "      link:\n")
        .replace("      conversion:\n", "      postback:\n");
    project(&dir, std::slice::from_ref(&profile));
    let runs = [
        common::run(&[&file], &[]),
        common::run(&[&file], &["--target", &sandbox.base]),
        run_in(&dir, &[&file], &["--target", "public"], &env()),
    ];
    for r in &runs {
        assert_eq!(r.code, 1, "{}", r.explain());
        r.assert_junit_valid();
        let checks = |name: &str| -> Vec<String> {
            (r.case(name)["failures"].as_array().unwrap().iter())
                .map(|f| {
                    format!(
                        "{} {}",
                        f["check"].as_str().unwrap(),
                        f["message"].as_str().unwrap()
                    )
                })
                .collect()
        };
        assert_eq!(
            r.case("the sign-up postback carries the macros")["status"],
            "passed",
            "{}",
            r.explain()
        );
        assert_eq!(
            r.case("an offer without postbacks passes without expecting any")["status"],
            "passed",
            "{}",
            r.explain()
        );
        let wrong = checks("a wrong macro value fails");
        assert_eq!(wrong.len(), 1, "{wrong:?}");
        assert!(
            wrong[0].contains("postbacks.query sub1: expected string \"s-2\", got string \"s-1\""),
            "{wrong:?}"
        );
        let missing = checks("a missing postback fails");
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].contains("postbacks.count: expected 2, got 1"),
            "{missing:?}"
        );
        let unexpected = checks("an unexpected postback fails");
        assert_eq!(unexpected.len(), 1, "{unexpected:?}");
        assert!(
            unexpected[0].contains("postbacks.count: expected none, got 1"),
            "{unexpected:?}"
        );
    }
    assert_eq!(runs[0].verdicts(), runs[1].verdicts());
    assert_eq!(runs[0].verdicts(), runs[2].verdicts());

    // A log that does not mark postbacks cannot show them: `postbacks` is refused up front.
    let blind = scratch("postbacks-blind");
    project(
        &blind,
        &[profile.replace("        postback_url: /url\n", "")],
    );
    let r = run_in(&blind, &[&file], &["--target", "public"], &env());
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr
            .contains("partner postbacks cannot be checked here")
            && r.stderr.contains("steps.callback_log.postback_url"),
        "{}",
        r.explain()
    );

    // The go-live suite of scenarios/ passes every way: one member through the link, SignUp,
    // FirstTrade and a refused second sign-up, with the postbacks checked.
    let go_live = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios/public-go-live.yaml")
        .display()
        .to_string();
    let runs = [
        common::run(&[&go_live], &[]),
        common::run(&[&go_live], &["--target", &sandbox.base]),
        run_in(&dir, &[&go_live], &["--target", "public"], &env()),
    ];
    for r in &runs {
        assert_eq!(r.code, 0, "{}", r.explain());
        assert_eq!(r.verdicts().len(), 4, "{}", r.explain());
    }
    assert_eq!(runs[0].verdicts(), runs[1].verdicts());
    assert_eq!(runs[0].verdicts(), runs[2].verdicts());
}

/// The public path's faults: a dropped or duplicated postback fails `postbacks.count`, a
/// redirect without the click id fails `click.redirect`, and an advertiser postback answered
/// 5xx fails `conversion.status`; on the embedded sandbox and a standalone one alike.
#[test]
fn public_path_faults_fail_the_case_they_should() {
    let dir = scratch("public-faults");
    let file = dir.join("faults.yaml");
    std::fs::write(
        &file,
        r#"name: Public faults
defaults: { offer: trading-app, click: link, convert: postback, event: SignUp }
cases:
  - name: dropped
    sandbox: { faults: { drop_postback: true } }
    expect: { postbacks: { count: 1, within: 500ms } }
  - name: duplicated
    sandbox: { faults: { duplicate_postback: true } }
    expect: { postbacks: { count: 1 } }
  - name: no click id
    sandbox: { faults: { redirect_without_click_id: true } }
  - name: advertiser postback down
    sandbox: { faults: { api_error: 503 } }
  - name: expected 503
    sandbox: { faults: { api_error: 503 } }
    expect: { conversion: { status: 503 }, callback: none }
  - name: a forged postback is no postback
    sandbox: { faults: { auth: wrong } }
    expect: { callback: { count: 0 }, postbacks: none }
"#,
    )
    .unwrap();
    let file = file.display().to_string();
    let sandbox = common::Standalone::start();
    let embedded = common::run(&[&file], &[]);
    // Through pitcrew's receiver, a postback with a wrong secret is refused and fails the
    // case it names: it never passes as "no postback came".
    let checks: Vec<&str> = (embedded.case("a forged postback is no postback")["failures"])
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["check"].as_str())
        .collect();
    assert!(
        checks.contains(&"postbacks.refused"),
        "{}",
        embedded.explain()
    );
    for r in [
        embedded,
        common::run(&[&file], &["--target", &sandbox.base]),
    ] {
        assert_eq!(r.code, 1, "{}", r.explain());
        let first = |name: &str| {
            r.case(name)["failures"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            first("dropped").contains("postbacks.count: expected 1, got 0"),
            "{}",
            r.explain()
        );
        assert!(
            first("duplicated").contains("postbacks.count: expected 1, got 2"),
            "{}",
            r.explain()
        );
        assert!(
            first("no click id")
                .starts_with("click.redirect: expected a redirect that carries the click id"),
            "{}",
            r.explain()
        );
        assert!(
            first("advertiser postback down").contains("conversion.status: expected 200, got 503"),
            "{}",
            r.explain()
        );
        assert_eq!(
            r.case("expected 503")["status"],
            "passed",
            "{}",
            r.explain()
        );
    }
}

/// A go-live on GoKart's public path by configuration alone, on a standalone sandbox: the
/// tracking link's redirect gives the click, the advertiser's postback the conversion (an
/// event id that differs in case is refused), and the callback carries the link's sub and the
/// postback's amount without the testing-tools flag.
#[test]
fn a_profile_drives_gokarts_public_path_on_a_standalone_sandbox() {
    let sandbox = common::Standalone::start();
    let host = sandbox.base.trim_end_matches("/api/v1").to_string();
    let dir = scratch("public-path");
    project(&dir, &[public_path_profile("public", &host)]);
    let file = fixture("public/go-live.yaml").display().to_string();
    let r = run_in(&dir, &[&file], &["--target", "public"], &env());
    assert_eq!(r.code, 0, "{}", r.explain());
    assert_eq!(r.verdicts().len(), 2);
    r.assert_junit_valid();
}

/// `click: link` and `convert: postback` give the same verdicts on the embedded sandbox, a
/// standalone one (`--target URL`) and a pitcrew.yaml profile whose `steps.link` and
/// `steps.postback` describe the same surfaces; `expect.click.redirect` fails a case whose
/// link redirects elsewhere; a profile without those steps refuses the cases before anything
/// runs; and mistakes in the keywords are located.
#[test]
fn the_public_path_keywords_give_the_same_verdicts_every_way() {
    let file = fixture("public/link-postback.yaml").display().to_string();
    let embedded = common::run(&[&file], &[]);
    assert_eq!(embedded.code, 0, "{}", embedded.explain());
    embedded.assert_junit_valid();
    let sandbox = common::Standalone::start();
    let standalone = common::run(&[&file], &["--target", &sandbox.base]);
    assert_eq!(standalone.code, 0, "{}", standalone.explain());
    let host = sandbox.base.trim_end_matches("/api/v1").to_string();
    let dir = scratch("public-keywords");
    // `public` has the link and the postback as its own steps, and (for the case that clicks
    // through the tools) as its click and conversion steps too.
    let tools = public_path_profile("tools-only", &host);
    let from = tools.find("      click:\n").unwrap();
    let to = tools.find("      callback_log:\n").unwrap();
    let as_keywords = tools[from..to]
        .replace("      click:\n", "      link:\n")
        .replace("      conversion:\n", "      postback:\n");
    let keywords = format!("{}{as_keywords}{}", &tools[..to], &tools[to..])
        .replace("  tools-only:", "  public:");
    project(&dir, &[keywords, tools]);
    let named = run_in(&dir, &[&file], &["--target", "public"], &env());
    assert_eq!(named.code, 0, "{}", named.explain());
    assert_eq!(embedded.verdicts(), standalone.verdicts());
    assert_eq!(embedded.verdicts(), named.verdicts());

    let failing = fixture("public/link-redirect-fails.yaml")
        .display()
        .to_string();
    let r = common::run(&[&failing], &[]);
    assert_eq!(r.code, 1, "{}", r.explain());
    let failure = &r.case("the redirect is not the expected landing page")["failures"][0];
    assert!(
        failure["actual"]
            .as_str()
            .is_some_and(|a| a.contains("https://advertiser.example/landing?gk_click_id=")),
        "{failure}"
    );
    let flag = &r.case("a link click converted by the tools without the flag")["failures"][0];
    assert_eq!(flag["check"], "flag", "{flag}");

    // A profile whose click and conversion are the link and the postback, but named as the
    // tools' steps, has no `link` step: the keywords are refused for it.
    let r = run_in(&dir, &[&file], &["--target", "tools-only"], &env());
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr
            .contains("this needs the `link` step, which target `tools-only` leaves out"),
        "{}",
        r.explain()
    );
    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "name: Bad\ncases:\n  - name: a\n    convert: postbak\n    event: install\n  - name: b\n    event: install\n    expect: { click: { redirect: x } }\n",
    )
    .unwrap();
    let r = common::run(&[&bad.display().to_string()], &[]);
    assert_eq!(r.code, 2, "{}", r.explain());
    for wanted in [
        "bad.yaml:4:14: `convert: postbak` is not a way to convert a click",
        "did you mean `postback`?",
        "bad.yaml:8:34: `redirect` checks a tracking link's redirect",
    ] {
        assert!(r.stderr.contains(wanted), "{wanted}:\n{}", r.explain());
    }
}

/// A tenant's own postbacks, from a sandbox config: a partner's global `postback_url` and an
/// event's both fire (macros filled, `{cnv_event_id}` empty on a single-event offer), a
/// Pending conversion fires them when a status change makes it Success, and a URL with a
/// placeholder that is no macro is refused where it is written.
#[test]
fn a_partners_global_and_event_postbacks_both_fire_and_bad_macros_are_refused() {
    let dir = scratch("postback-config");
    let config = dir.join("tenant.yaml");
    std::fs::write(
        &config,
        r#"partners:
  - id: pub-a
    postback_url: "/postbacks/{pub_click_id}?kind=global&offer={gk_offer_name}&event={cnv_event_id}&amount={cnv_amount}"
offers:
  - id: single
    name: Single Offer
    partner: pub-a
    advertiser_url: "https://adv.example/l?c={gk_click_id}"
    events:
      - { id: Install, postback_url: "/postbacks/{pub_click_id}?kind=event&sub={pub_sub_2}" }
  - id: approvals
    partner: pub-a
    advertiser_url: "https://adv.example/a?c={gk_click_id}"
    events:
      - { id: Deposit, status: Pending }
      - { id: Other }
"#,
    )
    .unwrap();
    let file = dir.join("postbacks.yaml");
    std::fs::write(
        &file,
        r#"name: Tenant postbacks
defaults: { click: link, convert: postback }
cases:
  - name: both postbacks fire
    offer: single
    event: Install
    params: { pub_sub_2: s2, cnv_amount: "1.50" }
    expect: { postbacks: { count: 2, query: { kind: { one_of: [global, event] } } } }
  - name: a pending deposit fires its postback when approved
    offer: approvals
    event: Deposit
    expect: { conversion: { state: Pending } }
    then:
      - change_status: Success
    expect: { conversion: { state: Pending }, postbacks: { query: { kind: global, event: Deposit } } }
"#
        .replace("    expect: { conversion: { state: Pending } }\n", ""),
    )
    .unwrap();
    let config_arg = config.display().to_string();
    let r = common::run(
        &[&file.display().to_string()],
        &["--sandbox-config", &config_arg, "--verbose"],
    );
    assert_eq!(r.code, 0, "{}", r.explain());
    let transcript = r.case("both postbacks fire")["transcript"].to_string();
    for sent in [
        "?kind=global&offer=Single%20Offer&event=&amount=1.50",
        "?kind=event&sub=s2",
    ] {
        assert!(transcript.contains(sent), "{sent} in {transcript}");
    }

    let bad = dir.join("bad.yaml");
    std::fs::write(
        &bad,
        "partners:\n  - id: p\n    postback_url: \"https://pb.example/?c={click_id}\"\noffers:\n  - { id: o, partner: p, events: [{ id: e }] }\n",
    )
    .unwrap();
    let r = common::run(
        &[&file.display().to_string()],
        &["--sandbox-config", &bad.display().to_string()],
    );
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains("`{click_id}` is not a macro")
            && r.stderr.contains("{pub_click_id}")
            && r.stderr.contains("bad.yaml"),
        "{}",
        r.explain()
    );
}
