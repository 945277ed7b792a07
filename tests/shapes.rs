//! Every callback shape and credential by configuration alone (DESIGN §4): Widgets (the tests'
//! second platform) notifies as JSON, a form or a GET postback, proving itself with a header, a
//! query token, a Standard Webhooks signature or an HMAC over the query or the body. Each shape
//! passes through pitcrew's receiver, a shared `pitcrew receive` and the platform's log with the
//! same verdicts; the same notifications made with a wrong secret fail every case that expects
//! one, never pass.

mod common;

use std::path::Path;
use std::time::Duration;

use common::process::Running;
use common::widgets::{self, Auth, Options, Shape};
use common::{dead_port, fixture, run_in, scratch};

const RECEIVER_TOKEN: &str = "receiver-token-5b7e";

fn env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("WIDGET_KEY", widgets::API_KEY),
        ("WIDGET_SIG", widgets::SIG),
        ("WIDGET_TOKEN", widgets::TOKEN),
        ("WIDGET_WHSEC", widgets::WHSEC),
        ("WIDGET_HMAC", widgets::HMAC_KEY),
        ("RECEIVER_TOKEN", RECEIVER_TOKEN),
    ]
}

fn fixture_for(shape: Shape) -> String {
    let name = match shape {
        Shape::Json => "widgets/widgets.yaml",
        Shape::Form | Shape::Query => "widgets/widgets-flat.yaml",
    };
    fixture(name).display().to_string()
}

/// The `pitcrew receive` flags that take `auth`'s notifications in `shape`.
fn receive_flags(shape: Shape, auth: Auth) -> Vec<String> {
    let mut flags: Vec<String> = match auth {
        Auth::Header => vec![
            "--auth-header".into(),
            format!("X-Widget-Sig={}", widgets::SIG),
        ],
        Auth::QueryToken => vec!["--auth-query".into(), format!("wtoken={}", widgets::TOKEN)],
        Auth::StandardWebhooks => vec![
            "--signature".into(),
            format!("scheme=standard-webhooks,secret={}", widgets::WHSEC),
        ],
        Auth::HmacQuery => vec![
            "--signature".into(),
            format!(
                "scheme=hmac-sha256,header=X-Widget-Hmac,over=query,secret={}",
                widgets::HMAC_KEY
            ),
        ],
        Auth::HmacBody => vec![
            "--signature".into(),
            format!(
                "scheme=hmac-sha256,header=X-Widget-Hmac,encoding=base64,prefix=sha256=,timestamp_header=X-Widget-Time,secret={}",
                widgets::HMAC_KEY
            ),
        ],
    };
    let (format, ids): (&str, [&str; 3]) = match shape {
        Shape::Json => ("json", ["/event/action", "/event/visit", "/ticket"]),
        Shape::Form => ("form", ["/action", "/visit", "/ticket"]),
        Shape::Query => ("query", ["/action", "/visit", "/ticket"]),
    };
    flags.extend(["--format".into(), format.into()]);
    for (flag, pointer) in ["--conversion-id", "--click-id", "--callback-id"]
        .iter()
        .zip(ids)
    {
        flags.extend([flag.to_string(), pointer.to_string()]);
    }
    flags
}

fn receive(dir: &Path, port: u16, shape: Shape, auth: Auth) -> Running {
    let listen = format!("127.0.0.1:{port}");
    let flags = receive_flags(shape, auth);
    let mut args = vec!["receive", "--listen", &listen];
    args.extend(flags.iter().map(String::as_str));
    let mut p = Running::start(&args, dir, &[("PITCREW_RECEIVER_TOKEN", RECEIVER_TOKEN)]);
    p.line(Duration::from_secs(10), |l| l.contains("callbacks at"));
    p
}

/// The shape's scenario that must fail.
fn failing_fixture_for(shape: Shape) -> String {
    let name = match shape {
        Shape::Json => "widgets/widgets-must-fail.yaml",
        Shape::Form | Shape::Query => "widgets/widgets-flat-must-fail.yaml",
    };
    fixture(name).display().to_string()
}

/// Runs the shape's fixture on Widgets notifying as `options` say, observed `via`
/// (`receiver`, `remote` or `log`); returns the run.
fn run_shape(options: Options, via: &str) -> common::Run {
    run_file(options, via, &fixture_for(options.shape))
}

/// Runs `file` on Widgets notifying as `options` say, observed `via`.
fn run_file(options: Options, via: &str, file: &str) -> common::Run {
    let label = format!("shape-{:?}-{:?}-{via}", options.shape, options.auth).to_lowercase();
    let dir = scratch(&label);
    let port = dead_port();
    let url = format!("http://127.0.0.1:{port}/callbacks");
    let (platform, callbacks, _service) = match via {
        "receiver" => (
            widgets::start_with(&url, options),
            format!(
                "      via: receiver\n      listen: \"127.0.0.1:{port}\"\n{}",
                widgets::credentials(options.auth)
            ),
            None,
        ),
        "remote" => (
            widgets::start_with(&url, options),
            format!(
                "      via: remote\n      url: http://127.0.0.1:{port}\n      token: \"{{{{env.RECEIVER_TOKEN}}}}\"\n"
            ),
            Some(receive(&dir, port, options.shape, options.auth)),
        ),
        _ => (
            widgets::start_with(&widgets::sink(), options),
            "      via: log\n".to_string(),
            None,
        ),
    };
    let profile = widgets::profile_shaped("widgets", &platform.base, &callbacks, options.shape);
    std::fs::write(dir.join("pitcrew.yaml"), format!("targets:\n{profile}")).unwrap();
    let r = run_in(&dir, &[file], &["--target", "widgets"], &env());
    r.assert_junit_valid();
    for secret in [
        widgets::TOKEN,
        widgets::WHSEC,
        widgets::HMAC_KEY,
        widgets::SIG,
    ] {
        assert!(
            !r.stdout.contains(secret) && !r.junit.clone().unwrap().contains(secret),
            "{label}: a secret in the output:\n{}",
            r.explain()
        );
    }
    r
}

const SHAPES: [(Shape, Auth); 7] = [
    (Shape::Json, Auth::StandardWebhooks),
    (Shape::Json, Auth::HmacBody),
    (Shape::Json, Auth::QueryToken),
    (Shape::Form, Auth::Header),
    (Shape::Form, Auth::HmacBody),
    (Shape::Query, Auth::QueryToken),
    (Shape::Query, Auth::HmacQuery),
];

/// Each shape and credential passes through pitcrew's receiver, and the same notifications
/// signed or tokened with a wrong secret are refused (401) and fail every case that expects
/// one, naming the refusal.
#[test]
fn every_shape_and_credential_passes_through_the_receiver_and_a_forgery_fails() {
    for (shape, auth) in SHAPES {
        let genuine = Options {
            shape,
            auth,
            forged: false,
        };
        let r = run_shape(genuine, "receiver");
        assert_eq!(r.code, 0, "{shape:?} {auth:?}: {}", r.explain());
        let r = run_shape(
            Options {
                forged: true,
                ..genuine
            },
            "receiver",
        );
        assert_eq!(r.code, 1, "{shape:?} {auth:?} forged: {}", r.explain());
        let verdicts = r.verdicts();
        let converting = r.case("a visit converts and notifies");
        assert_eq!(
            converting["status"], "failed",
            "{shape:?} {auth:?}: {converting:#}"
        );
        let refused = &converting["failures"][0];
        assert!(
            refused["check"] == "callback.refused"
                && refused["actual"]
                    .as_str()
                    .is_some_and(|a| a.ends_with("(401)")),
            "{shape:?} {auth:?}: the failure names the refusal: {converting:#}"
        );
        // Every case that expects a notification fails; the one that expects none passes.
        assert!(
            verdicts
                .iter()
                .all(|(name, v)| (v == "passed") == (name == "an unknown campaign is refused")),
            "{shape:?} {auth:?} forged: {verdicts:?}"
        );
    }
}

/// A shared `pitcrew receive` takes the same shapes and credentials (`--format`,
/// `--auth-query`, `--signature`), with the same verdicts as pitcrew's own receiver and the
/// platform's log.
#[test]
fn a_shared_receiver_and_the_log_give_the_same_verdicts_for_each_shape() {
    for (shape, auth) in [
        (Shape::Query, Auth::QueryToken),
        (Shape::Form, Auth::Header),
        (Shape::Json, Auth::StandardWebhooks),
        (Shape::Query, Auth::HmacQuery),
    ] {
        let genuine = Options {
            shape,
            auth,
            forged: false,
        };
        let mut all = Vec::new();
        let mut failing = Vec::new();
        for via in ["receiver", "remote", "log"] {
            let r = run_shape(genuine, via);
            assert_eq!(r.code, 0, "{shape:?} {auth:?} via {via}: {}", r.explain());
            all.push(r.verdicts());
            let r = run_file(genuine, via, &failing_fixture_for(shape));
            assert_eq!(r.code, 1, "{shape:?} {auth:?} via {via}: {}", r.explain());
            let checks: Vec<(String, String, Vec<String>)> = r.json.as_ref().unwrap()["cases"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| {
                    let checks = c["failures"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|f| format!("{} {}", f["check"], f["actual"]))
                        .collect();
                    (c["name"].to_string(), c["status"].to_string(), checks)
                })
                .collect();
            assert!(
                checks.iter().all(|(_, status, _)| status == "\"failed\""),
                "{shape:?} {auth:?} via {via}: {checks:#?}"
            );
            failing.push(checks);
        }
        assert!(all.iter().all(|v| v == &all[0]), "{all:#?}");
        assert!(
            failing.iter().all(|f| f == &failing[0]),
            "the same failures every way: {failing:#?}"
        );
        let r = run_shape(
            Options {
                forged: true,
                ..genuine
            },
            "remote",
        );
        assert_eq!(
            r.code,
            1,
            "{shape:?} {auth:?} forged, remote: {}",
            r.explain()
        );
        let converting = r.case("a visit converts and notifies");
        assert_eq!(converting["status"], "failed", "{converting:#}");
    }
}

/// A receiver target that gives no credential is refused where it says `via: receiver`, with
/// what to write; `auth: none` runs, with a warning on every run.
#[test]
fn a_receiver_without_credentials_is_refused_unless_auth_none_is_said() {
    let dir = scratch("shape-no-auth");
    let port = dead_port();
    let platform = widgets::start(&format!("http://127.0.0.1:{port}/callbacks"));
    let open = format!("      via: receiver\n      listen: \"127.0.0.1:{port}\"\n");
    let write = |callbacks: &str| {
        let profile = widgets::profile("widgets", &platform.base, callbacks);
        std::fs::write(dir.join("pitcrew.yaml"), format!("targets:\n{profile}")).unwrap();
    };
    let file = fixture_for(Shape::Json);
    write(&open);
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 2, "{}", r.explain());
    assert!(
        r.stderr.contains("pitcrew.yaml:")
            && r.stderr.contains("would take any callback")
            && r.stderr.contains("auth: none"),
        "{}",
        r.explain()
    );
    write(&format!("{open}      auth: none\n"));
    let r = run_in(&dir, &[&file], &["--target", "widgets"], &env());
    assert_eq!(r.code, 0, "{}", r.explain());
    assert!(r.stderr.contains("`auth: none`"), "{}", r.explain());
}

/// The sandbox signs its callbacks (Standard Webhooks, or an HMAC of the query) and puts a
/// token in their query, as its config says; pitcrew's receiver takes them, and refuses them
/// signed with a wrong key or sent without credentials: those cases fail.
#[test]
fn the_sandbox_signs_and_tokens_its_callbacks_and_a_wrong_one_fails() {
    let file = fixture("settling/credentials.yaml").display().to_string();
    for config in [
        "sandbox/partner-signed.yaml",
        "sandbox/partner-token-hmac.yaml",
    ] {
        let config = fixture(config).display().to_string();
        let r = common::run(&[&file], &["--sandbox-config", &config]);
        assert_eq!(r.code, 1, "{config}: {}", r.explain());
        let verdicts: Vec<String> = r.verdicts().into_iter().map(|(_, v)| v).collect();
        assert_eq!(
            verdicts,
            ["passed", "failed", "failed"],
            "{config}: {}",
            r.explain()
        );
        for secret in [
            "sandbox-query-token-1",
            "sandbox-hmac-key-2",
            "c2FuZGJveC13ZWJob29rLWtleQ",
        ] {
            assert!(!r.stdout.contains(secret), "{}", r.explain());
            assert!(!r.junit.clone().unwrap().contains(secret));
        }
    }
}
