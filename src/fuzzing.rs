//! What the fuzz targets (`fuzz/`, cargo-fuzz) feed their inputs to, and the test that replays
//! their committed corpora (`tests/no_panic.rs`): each function takes any bytes and must
//! return, never panic, hang or take unbounded memory.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::plan::{PlanOptions, build_sources};
use crate::receiver::{AuthHeader, Receiver, ReceiverConfig};
use crate::scenario::SourceFile;
use crate::scenario::template::{MAX_RENDERED_BYTES, Templates};

fn source(name: &str, data: &[u8]) -> SourceFile {
    SourceFile::new(name, String::from_utf8_lossy(data))
}

/// A scenario file, loaded, checked and expanded as `pitcrew validate` and `pitcrew run` do.
pub fn scenario(data: &[u8]) {
    let options = PlanOptions {
        default_offer: Some("offer-1".into()),
        sandbox_faults: true,
        // Small enough for a fast loop; the budget is what bounds a huge matrix.
        max_cases: 1_000,
        ..PlanOptions::default()
    };
    let _ = build_sources(&[source("fuzz.yaml", data)], &options);
}

/// One template rendered as a scenario value is: rendered within the size bound, or refused
/// with a reason.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let templates = Templates::new();
    let context = handlebars::Context::wraps(serde_json::json!({
        "vars": { "amount": "1.50", "list": ["a", "b"], "nested": { "k": "v" } },
        "matrix": { "event": "install", "n": 3 },
        "env": { "HOME": "/home/qa" },
        "case": { "name": "case 1", "index": 0, "attempt": 1 },
        "run": { "id": "run-1" },
    }))
    .expect("a JSON object is a context");
    // Twice: the second render goes through the template the first one compiled.
    for _ in 0..2 {
        if let Ok(out) = templates.render(text, &context) {
            assert!(out.len() <= MAX_RENDERED_BYTES.max(text.len()));
        }
    }
}

/// A `--sandbox-config` file: loaded and checked, its partners' faults read as the sandbox
/// applies them.
pub fn sandbox_config(data: &[u8]) {
    let source = source("sandbox.yaml", data);
    if let Ok(config) = crate::sandbox::config::SandboxConfig::from_source(&source) {
        for partner in &config.partners {
            let _ = config.partner_faults(&partner.id);
        }
        let _ = config.receiver_auth();
    }
}

/// `pitcrew.yaml`: loaded, and every target compiled as `pitcrew targets` and `pitcrew run
/// --target NAME` do.
pub fn project(data: &[u8]) {
    let Ok(project) = crate::project::from_source(source("pitcrew.yaml", data)) else {
        return;
    };
    let secrets = [("TOKEN".to_string(), "fuzz-secret".to_string())];
    for (name, spec) in &project.file.targets {
        let _ = crate::platform::target::compile(name, spec, &project.source, &secrets);
    }
}

/// Raw bytes on one connection to the receiver (callbacks and its `/api`), read by the HTTP
/// server and router every pitcrew receiver uses. `runtime` should have its time paused
/// (`start_paused`), so that a scripted delay or a stalled head costs nothing; every input
/// must be answered or hung up on, and whatever came in accounted for.
pub fn receiver_http(runtime: &tokio::runtime::Runtime, data: &[u8]) {
    runtime.block_on(async {
        let receiver = Receiver::new(ReceiverConfig {
            auth: Some(vec![
                AuthHeader {
                    name: "X-Api-Token".into(),
                    secret: "s3cret".into(),
                }
                .into(),
            ]),
            api_token: Some("t0ken".into()),
            body_limit: 16 * 1024,
            ..ReceiverConfig::default()
        });
        let app = crate::receiver::http::router(receiver.clone());
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let connection = tokio::spawn(async move {
            let _ = crate::serve::http1(&crate::serve::Limits::default())
                .serve_connection(TokioIo::new(server), TowerToHyperService::new(app))
                .await;
        });
        let _ = client.write_all(data).await;
        let _ = client.shutdown().await;
        let mut answer = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(600), client.read_to_end(&mut answer));
        assert!(
            read.await.is_ok(),
            "the receiver neither answered nor hung up"
        );
        let _ = connection.await;
        assert!(receiver.kept() as u64 <= receiver.total());
    });
}
