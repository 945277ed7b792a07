//! `pitcrew receive`, the receiver many runs share: nothing lost across a restart with the
//! SQLite store, runs that do not see each other's callbacks, stalled clients that cannot take
//! it down, and a flood in which every callback is accounted for.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use common::process::Running;
use common::{dead_port, fixture, run_in, scratch, widgets};
use serde_json::{Value, json};

const TOKEN: &str = "receive-api-token-31";
const SECRET: &str = "receive-partner-secret-88";

fn start(dir: &Path, port: u16, extra: &[&str]) -> Running {
    let listen = format!("127.0.0.1:{port}");
    let header = format!("X-Api-Token={SECRET}");
    let mut args = vec!["receive", "--listen", &listen, "--auth-header", &header];
    args.extend(extra);
    let mut p = Running::start(&args, dir, &[("PITCREW_RECEIVER_TOKEN", TOKEN)]);
    p.line(Duration::from_secs(10), |l| l.contains("callbacks at"));
    p
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn callback(conversion: &str, click: &str) -> Value {
    json!({"id": uuid::Uuid::new_v4().to_string(), "sentAt": "2026-11-25T10:00:00Z",
           "conversion": {"conversionId": conversion, "clickId": click}})
}

async fn post(client: &reqwest::Client, port: u16, body: &str, secret: &str) -> u16 {
    client
        .post(format!("http://127.0.0.1:{port}/callbacks"))
        .header("X-Api-Token", secret)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .map(|r| r.status().as_u16())
        .unwrap_or(0)
}

async fn api(client: &reqwest::Client, port: u16, path: &str) -> Value {
    client
        .get(format!("http://127.0.0.1:{port}/api{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn a_restart_with_the_sqlite_store_loses_no_callback_and_no_script() {
    let dir = scratch("receive-sqlite");
    let port = dead_port();
    let store = format!("sqlite:{}", dir.join("callbacks.db").display());
    let first = start(&dir, port, &["--store", &store]);
    let client = reqwest::Client::new();
    rt().block_on(async {
        let status = post(&client, port, &callback("cv-1", "ck-1").to_string(), SECRET).await;
        assert_eq!(status, 200);
        // Another header that says it is secret, beside the partner's.
        let status = client
            .post(format!("http://127.0.0.1:{port}/callbacks"))
            .header("X-Api-Token", SECRET)
            .header("X-Signing-Secret", "side-secret-4410")
            .json(&callback("cv-3", "ck-3"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status.as_u16(), 200);
        let r = client
            .put(format!("http://127.0.0.1:{port}/api/scripts/ck-2"))
            .bearer_auth(TOKEN)
            .json(&json!({"respond": [{"status": 503}, {"status": 200, "body": "ok now"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
    });
    first.signal("TERM");
    let (code, _, stderr) = first.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    // The callback is on disk, and the partner's secret it carried is not.
    let disk: Vec<u8> = std::fs::read_dir(&dir)
        .unwrap()
        .flat_map(|e| std::fs::read(e.unwrap().path()).unwrap_or_default())
        .collect();
    let holds = |needle: &[u8]| disk.windows(needle.len()).any(|w| w == needle);
    assert!(holds(b"cv-1"), "the callback was written");
    assert!(
        !holds(SECRET.as_bytes()) && !holds(b"side-secret-4410"),
        "a secret header was written to disk"
    );
    let mut second = start(&dir, port, &["--store", &store]);
    let kept = second.line(Duration::from_secs(5), |l| l.contains("kept from before"));
    assert!(kept.contains("2 callback(s) kept from before"), "{kept}");
    rt().block_on(async {
        let listed = api(&client, port, "/callbacks?conversion=cv-1").await;
        assert_eq!(listed["callbacks"].as_array().unwrap().len(), 1, "{listed}");
        let waited = api(
            &client,
            port,
            "/callbacks/wait?conversion=cv-1&count=1&timeout=2s",
        )
        .await;
        assert_eq!(waited["callbacks"].as_array().unwrap().len(), 1);
        // The script registered before the restart answers after it.
        let body = callback("cv-2", "ck-2").to_string();
        assert_eq!(post(&client, port, &body, SECRET).await, 503);
        assert_eq!(post(&client, port, &body, SECRET).await, 200);
        let listed = api(&client, port, "/callbacks?click=ck-2").await;
        let seqs: Vec<u64> = listed["callbacks"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["seq"].as_u64().unwrap())
            .collect();
        assert!(
            seqs.iter().all(|s| *s > 1),
            "sequence numbers go on after a restart: {seqs:?}"
        );
        let refused = client
            .get(format!("http://127.0.0.1:{port}/api/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status().as_u16(), 401, "the API needs the token");
    });
    second.signal("TERM");
}

#[test]
fn runs_sharing_one_receiver_see_only_their_own_callbacks() {
    let dir = scratch("receive-shared");
    let port = dead_port();
    let header = format!("X-Widget-Sig={}", widgets::SIG);
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["receive", "--listen", &listen, "--auth-header", &header];
    args.extend(widgets::RECEIVE_IDS);
    let mut service = Running::start(&args, &dir, &[("PITCREW_RECEIVER_TOKEN", TOKEN)]);
    service.line(Duration::from_secs(10), |l| l.contains("callbacks at"));
    let platform = widgets::start(&format!("http://127.0.0.1:{port}/callbacks"));
    let callbacks = format!(
        "      via: remote\n      url: http://127.0.0.1:{port}\n      token: \"{{{{env.RECEIVER_TOKEN}}}}\"\n"
    );
    std::fs::write(
        dir.join("pitcrew.yaml"),
        format!(
            "targets:\n{}",
            widgets::profile("widgets", &platform.base, &callbacks)
        ),
    )
    .unwrap();
    let files = [
        fixture("widgets/widgets.yaml").display().to_string(),
        fixture("widgets/widgets-scripted.yaml")
            .display()
            .to_string(),
    ];
    let runs: Vec<_> = (0..3)
        .map(|_| {
            let (dir, files) = (dir.clone(), files.clone());
            std::thread::spawn(move || {
                let refs: Vec<&str> = files.iter().map(String::as_str).collect();
                run_in(
                    &dir,
                    &refs,
                    &["--target", "widgets"],
                    &[("WIDGET_KEY", widgets::API_KEY), ("RECEIVER_TOKEN", TOKEN)],
                )
            })
        })
        .collect();
    for run in runs {
        let r = run.join().unwrap();
        assert_eq!(r.code, 0, "{}", r.explain());
        assert_eq!(r.json.as_ref().unwrap()["summary"]["passed"], 6);
    }
}

/// Stalled clients hold connections and others hang up mid-body; the receiver and the sandbox
/// keep serving, and drop the stalled ones in time.
#[test]
fn stalled_clients_cannot_take_the_receiver_or_the_sandbox_down() {
    let dir = scratch("slowloris");
    let port = dead_port();
    let _service = start(
        &dir,
        port,
        &["--max-connections", "200", "--header-timeout", "1s"],
    );
    let sandbox = common::Standalone::start();
    let sandbox_addr = sandbox.addr();
    // Every other connection goes to the sandbox.
    let receiver_addr = format!("127.0.0.1:{port}");
    let addr = |i: usize| {
        if i.is_multiple_of(2) {
            &receiver_addr
        } else {
            &sandbox_addr
        }
    };
    let mut stalled = Vec::new();
    for i in 0..1_500 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr(i)) {
            // Half a request head, never finished.
            let _ = s.write_all(b"POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Slow: ");
            stalled.push(s);
        }
    }
    assert!(stalled.len() > 1_000, "{} connections", stalled.len());
    // Others hang up halfway through a body.
    for i in 0..200 {
        if let Ok(mut s) = std::net::TcpStream::connect(addr(i)) {
            let _ = s.write_all(
                b"POST /api/v1/tools/clicks HTTP/1.1\r\nHost: x\r\ncontent-length: 400\r\n\r\n{\"offerId\": ",
            );
        }
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let started = Instant::now();
    let healthy = rt().block_on(async {
        loop {
            let receiver = client
                .get(format!("http://127.0.0.1:{port}/api/health"))
                .bearer_auth(TOKEN)
                .send()
                .await;
            let api = client
                .get(format!(
                    "{}/conversion-callbacks?conversionId=x",
                    sandbox.base
                ))
                .send()
                .await;
            if receiver.is_ok_and(|r| r.status() == 200) && api.is_ok_and(|r| r.status() == 200) {
                return true;
            }
            if started.elapsed() > Duration::from_secs(15) {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(
        healthy,
        "both kept serving with {} stalled connections",
        stalled.len()
    );
    drop(stalled);
}

/// 50,000 callbacks from 32 concurrent clients, duplicates, malformed bodies, wrong secrets
/// and oversized bodies among them, while other clients hang mid-request or hang up halfway
/// through a body: every callback is kept or counted as a stray, a half-sent one is never
/// kept, and the receiver goes on serving in bounded memory.
#[test]
fn a_flood_of_callbacks_is_accounted_for_one_by_one() {
    let dir = scratch("flood");
    let port = dead_port();
    let service = start(
        &dir,
        port,
        &["--body-limit-kib", "16", "--header-timeout", "1s"],
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    const TOTAL: usize = 50_000;
    // Every 500th callback is also started on a raw connection that hangs up halfway through
    // its body, and every 1,000th on one that stops sending and holds the connection.
    let (kept, strays, hanging) = rt().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..32 {
            let client = client.clone();
            tasks.spawn(async move {
                let (mut kept, mut strays, mut hanging) = (0, 0, Vec::new());
                for i in (worker..TOTAL).step_by(32) {
                    if i % 500 == 0 {
                        let body = callback(&format!("cv-cut-{i}"), "ck").to_string();
                        let half = half_request(port, &body).await;
                        if i % 1_000 == 0 {
                            hanging.push(half);
                        }
                    }
                    let (body, secret) = match i % 10 {
                        0 => ("{not json".to_string(), SECRET),
                        1 => (callback("cv", "ck").to_string(), "wrong-secret"),
                        2 => ("x".repeat(20 * 1024), SECRET),
                        3 => (callback(&format!("cv-{}", i - 1), "ck").to_string(), SECRET),
                        _ => (callback(&format!("cv-{i}"), "ck").to_string(), SECRET),
                    };
                    match post(&client, port, &body, secret).await {
                        200 => kept += 1,
                        401 | 413 => strays += 1,
                        other => panic!("callback {i}: HTTP {other}"),
                    }
                }
                (kept, strays, hanging)
            });
        }
        let mut totals = (0, 0, Vec::new());
        while let Some(done) = tasks.join_next().await {
            let (k, s, h) = done.unwrap();
            totals.0 += k;
            totals.1 += s;
            totals.2.extend(h);
        }
        totals
    });
    assert_eq!(hanging.len(), TOTAL / 1_000);
    assert_eq!(kept + strays, TOTAL);
    // Malformed JSON is taken (200) but carries no ids: a stray too. A body cut short is a
    // stray once the receiver sees the sender hang up; a held one, once the receiver cuts it
    // off for falling behind (a second after its head), while it is still held.
    let malformed = TOTAL / 10;
    let cut = TOTAL / 1_000;
    let settled = |cut: usize| {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let health = rt().block_on(api(&client, port, "/health"));
            if health["received"] == (TOTAL + cut) as u64 || Instant::now() > deadline {
                return health;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let health = settled(2 * cut);
    assert_eq!(health["received"], (TOTAL + 2 * cut) as u64, "{health}");
    assert_eq!(
        health["strays"],
        (strays + malformed + 2 * cut) as u64,
        "{health}"
    );
    assert_eq!(health["kept"], (kept - malformed) as u64, "{health}");
    let rss_kib = service.rss_kib();
    eprintln!(
        "the receiver after {TOTAL} callbacks: {} MiB resident",
        rss_kib / 1024
    );
    assert!(rss_kib < 300 * 1024, "memory stays bounded: {rss_kib} KiB");
    // None of the cut ones was ever kept; a whole callback beside them was (so that the
    // query itself is known to work).
    drop(hanging);
    let listed = |id: &str| {
        let answer = rt().block_on(api(&client, port, &format!("/callbacks?conversion={id}")));
        answer["callbacks"].as_array().map(Vec::len)
    };
    assert_eq!(listed("cv-cut-500"), Some(0));
    assert_eq!(listed("cv-cut-1000"), Some(0));
    assert_eq!(listed("cv-504"), Some(1));
}

/// Starts a callback on a raw connection: its head and half its body, no more. The connection
/// is returned to be held (or dropped, which hangs up mid-body).
async fn half_request(port: u16, body: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Api-Token: {SECRET}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    stream
}

/// A callback `pitcrew receive` refuses for its credentials is listed by the API (with why)
/// under the ids it names, so that a run through `--receiver-url` fails the case it names at
/// once, as the embedded receiver does, and still counts it as a stray.
#[test]
fn a_run_through_a_shared_receiver_fails_a_case_whose_callback_it_refused() {
    let dir = scratch("receive-refused");
    let port = dead_port();
    let service = start(&dir, port, &[]);
    let config = dir.join("tenant.yaml");
    std::fs::write(
        &config,
        format!(
            "partners:\n  - id: demo-publisher\n    callback_url: http://127.0.0.1:{port}/callbacks\n    auth_header: {{ name: X-Api-Token, secret: {SECRET} }}\n"
        ),
    )
    .unwrap();
    let sandbox =
        common::Standalone::start_with(&["--sandbox-config", &config.display().to_string()]);
    let scenario = dir.join("wrong-secret.yaml");
    std::fs::write(
        &scenario,
        "name: Shared receiver\ncases:\n  - name: the platform sends a wrong secret\n    click: generate\n    event: install\n    sandbox: { faults: { auth: wrong } }\n  - name: none may come and one comes without a secret\n    click: generate\n    event: signup\n    sandbox: { faults: { auth: missing } }\n    expect: { callback: none }\n",
    )
    .unwrap();
    let receiver = format!("http://127.0.0.1:{port}");
    let json = dir.join("r.json");
    let out = common::pitcrew_in(
        &dir,
        &[
            "run",
            &scenario.display().to_string(),
            "--target",
            &sandbox.base,
            "--receiver-url",
            &receiver,
            "--json",
            &json.display().to_string(),
        ],
        &[("PITCREW_RECEIVER_TOKEN", TOKEN), ("NO_COLOR", "1")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let case = &report["cases"][0];
    assert_eq!(case["failures"][0]["check"], "callback.refused", "{case:#}");
    let message = case["failures"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("delivery 1 was refused: wrong X-Api-Token (401)"),
        "{message}"
    );
    assert!(
        case["duration_ms"].as_u64().unwrap() < 5_000,
        "at once: {case:#}"
    );
    let conversion = case["ids"]["conversion"].as_str().unwrap();
    let listed = rt().block_on(api(
        &reqwest::Client::new(),
        port,
        &format!("/callbacks?conversion={conversion}"),
    ));
    assert_eq!(
        listed["callbacks"][0]["refused"], "wrong X-Api-Token",
        "{listed:#}"
    );
    // `callback: none` is not met by a refused delivery either (it once passed).
    let none = &report["cases"][1];
    assert_eq!(none["status"], "failed", "{none:#}");
    assert_eq!(none["failures"][0]["check"], "callback.refused", "{none:#}");
    let health = rt().block_on(api(&reqwest::Client::new(), port, "/health"));
    assert_eq!(health["strays"], 2, "{health}");
    service.signal("TERM");
}

/// Anyone may send callbacks without the secret: what the receiver keeps of them is bounded
/// in bytes, not only in number. 400 refused callbacks whose conversion id is ~1 MB, and 400
/// whose id is 60 KiB, leave its memory where it was; each is still counted as a stray, and
/// one with a large body still names its case.
#[test]
fn refused_callbacks_cannot_grow_the_receivers_memory_by_their_size() {
    let dir = scratch("refused-memory");
    let port = dead_port();
    let service = start(&dir, port, &[]);
    let client = reqwest::Client::new();
    let health = || rt().block_on(api(&client, port, "/health"));
    assert_eq!(health()["strays"], 0);
    let before = service.rss_kib();
    rt().block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for worker in 0..8 {
            let client = client.clone();
            tasks.spawn(async move {
                for i in 0..50 {
                    for size in [1_000_000, 60 * 1024] {
                        let id = format!("{worker}-{i}-{}", "x".repeat(size));
                        let body = callback(&id, "ck").to_string();
                        assert_eq!(post(&client, port, &body, "not-the-secret").await, 401);
                    }
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.unwrap();
        }
    });
    let health = health();
    assert_eq!(health["strays"], 800, "{health}");
    let after = service.rss_kib();
    eprintln!(
        "the receiver before and after 425 MB of refused callbacks: {} and {} MiB",
        before / 1024,
        after / 1024
    );
    assert!(before > 0, "the receiver's memory can be read");
    // However large its body, a refused callback still names the case it fails.
    let mut padded = callback("cv-padded", "ck");
    padded["padding"] = Value::String("p".repeat(200_000));
    let status = rt().block_on(post(&client, port, &padded.to_string(), "not-the-secret"));
    assert_eq!(status, 401);
    let listed = rt().block_on(api(&client, port, "/callbacks?conversion=cv-padded"));
    assert_eq!(
        listed["callbacks"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    assert!(listed["callbacks"][0]["refused"].is_string(), "{listed}");
    assert!(
        after < before + 150 * 1024,
        "refused callbacks are kept in bounded memory: {before} KiB → {after} KiB"
    );
}

/// How a client stalls.
#[derive(Clone, Copy)]
enum Drip {
    /// A body of 100,000 bytes by `Content-Length`, a byte a second.
    Length,
    /// A chunked body that never ends, a one-byte chunk a second.
    Chunked,
    /// A request head that never ends, a header byte a second.
    Head,
}

/// Starts a callback to `addr` that stalls as `drip` says, from a thread of its own, until the
/// server hangs up or `stop` is set.
fn dripping(addr: &str, drip: Drip, stop: std::sync::Arc<std::sync::atomic::AtomicBool>) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return;
    };
    let (length, byte): (&str, &[u8]) = match drip {
        Drip::Length => ("content-length: 100000\r\n\r\n", b"{"),
        Drip::Chunked => ("transfer-encoding: chunked\r\n\r\n", b"1\r\n{\r\n"),
        Drip::Head => ("X-Slow: ", b"a"),
    };
    let head = format!(
        "POST /callbacks HTTP/1.1\r\nHost: x\r\nX-Api-Token: {SECRET}\r\n\
         content-type: application/json\r\n{length}"
    );
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    std::thread::spawn(move || {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            if s.write_all(byte).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    });
}

/// 20 genuine callbacks, one after another, to a receiver whose every slot `drips` clients
/// hold: how each was answered.
fn genuine_callbacks_beside(drips: &[Drip], args: &[&str]) -> Vec<u16> {
    let dir = scratch("slow-clients");
    let port = dead_port();
    let _service = start(&dir, port, args);
    let addr = format!("127.0.0.1:{port}");
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for drip in drips {
        dripping(&addr, *drip, stop.clone());
    }
    // Every slot is taken by then.
    std::thread::sleep(Duration::from_millis(500));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let answered = rt().block_on(async {
        let mut answered = Vec::new();
        for i in 0..20 {
            let body = callback(&format!("cv-genuine-{i}"), "ck").to_string();
            answered.push(post(&client, port, &body, SECRET).await);
        }
        answered
    });
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    answered
}

/// 200 clients that send a callback's body a byte a second (half by `Content-Length`, half
/// as chunks that never end) cannot hold the slots of `pitcrew receive --max-connections 200`:
/// a body must keep up a minimum rate after its first second, and a client stalled for over
/// a second gives up its slot to a new connection. 20 genuine callbacks meanwhile are each
/// answered 200.
#[test]
fn clients_that_send_their_body_a_byte_a_second_cannot_hold_the_receivers_slots() {
    let drips: Vec<Drip> = (0..200)
        .map(|i| {
            if i % 2 == 0 {
                Drip::Chunked
            } else {
                Drip::Length
            }
        })
        .collect();
    let answered = genuine_callbacks_beside(
        &drips,
        &["--max-connections", "200", "--header-timeout", "2s"],
    );
    assert_eq!(answered, [200; 20], "every genuine callback is answered");
}

/// With every slot held by clients that send their request head a byte a second, and a
/// header timeout of a minute, a new connection takes the slot of one stalled for over a
/// second: 20 genuine callbacks are each answered.
#[test]
fn clients_stalled_in_their_request_head_give_up_their_slots_to_new_ones() {
    let answered = genuine_callbacks_beside(
        &[Drip::Head; 200],
        &["--max-connections", "200", "--header-timeout", "60s"],
    );
    assert_eq!(answered, [200; 20], "every genuine callback is answered");
}

/// The sandbox cuts off a body that comes too slowly as the receiver does: the client gets a
/// 400 rather than a slot held for as long as it drips.
#[test]
fn the_sandbox_answers_a_body_that_comes_a_byte_a_second_with_400() {
    use std::io::Read;
    let sandbox = common::Standalone::start();
    let addr = sandbox.addr();
    let mut s = std::net::TcpStream::connect(&addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(
        b"POST /api/v1/tools/clicks HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n\
          content-length: 1000\r\n\r\n{",
    )
    .unwrap();
    let mut writer = s.try_clone().unwrap();
    std::thread::spawn(move || {
        for _ in 0..30 {
            std::thread::sleep(Duration::from_secs(1));
            if writer.write_all(b" ").is_err() {
                return;
            }
        }
    });
    let mut answer = String::new();
    let _ = s.read_to_string(&mut answer);
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "the sandbox answers and hangs up: {answer:?}"
    );
}

/// Partner postbacks reach a shared receiver at `/postbacks/{pub_click_id}…`: with
/// `--postback-auth-query` they must carry that token (and not the callbacks' header), the
/// token is never kept or listed, and a run's API reads them by `postback=PUB_CLICK_ID`.
#[test]
fn a_shared_receiver_takes_postbacks_with_their_own_token_and_hides_it() {
    let dir = scratch("receive-postbacks");
    let port = dead_port();
    let token = "pb-token-5a91c3e7";
    let pair = format!("token={token}");
    let _service = start(&dir, port, &["--postback-auth-query", &pair]);
    rt().block_on(async {
        let client = reqwest::Client::new();
        let get = |query: String, header: bool| {
            let mut request =
                client.get(format!("http://127.0.0.1:{port}/postbacks/pc-77?{query}"));
            if header {
                request = request.header("X-Api-Token", SECRET);
            }
            async move {
                request
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            }
        };
        assert_eq!(
            get(format!("event=SignUp&amount=2.50&token={token}"), false).await,
            200
        );
        assert_eq!(get("event=SignUp".into(), false).await, 401);
        assert_eq!(
            get("event=SignUp&token=pb-token-wrong-1".into(), false).await,
            401
        );
        // The callbacks' credential is not a postback's.
        assert_eq!(get("event=SignUp".into(), true).await, 401);
        let all = api(&client, port, "/callbacks?postback=pc-77").await;
        let all = all["callbacks"].as_array().unwrap().clone();
        // The refused ones are listed as refused, for the case they name to fail on them.
        assert_eq!(all.len(), 4, "{all:?}");
        let (refused, listed): (Vec<Value>, Vec<Value>) = all
            .iter()
            .cloned()
            .partition(|c| c.get("refused").is_some());
        assert_eq!(refused.len(), 3, "{all:?}");
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["json"]["event"], "SignUp");
        assert_eq!(listed[0]["json"]["amount"], "2.50");
        assert_eq!(listed[0]["json"]["token"], "***");
        assert_eq!(listed[0]["ids"]["pub_click"], "pc-77");
        let text = serde_json::to_string(&all).unwrap();
        assert!(!text.contains(token), "{text}");
        // A postback is not a conversion's callback.
        let by_conversion = api(&client, port, "/callbacks?conversion=pc-77").await;
        assert_eq!(by_conversion["callbacks"].as_array().unwrap().len(), 0);
    });
}

/// `GET /metrics` (behind the token) counts what the receiver took, refused and could not
/// match, the long polls waiting, and how long keeping took, in Prometheus' text format.
#[test]
fn metrics_count_what_the_receiver_took_and_refused() {
    let dir = scratch("receive-metrics");
    let port = dead_port();
    let store = format!("sqlite:{}", dir.join("callbacks.db").display());
    let receiver = start(&dir, port, &["--store", &store]);
    let client = reqwest::Client::new();
    rt().block_on(async {
        for n in 0..3 {
            let body = callback(&format!("cv-m{n}"), "ck-m").to_string();
            assert_eq!(post(&client, port, &body, SECRET).await, 200);
        }
        let forged = callback("cv-m0", "ck-m").to_string();
        assert_eq!(
            post(&client, port, &forged, "wrong-secret-value-1").await,
            401
        );
        assert_eq!(
            post(&client, port, "{}", SECRET).await,
            200,
            "no id: a stray"
        );
        // A long poll that waits while the metrics are read.
        let polling = client
            .get(format!(
                "http://127.0.0.1:{port}/api/callbacks/wait?conversion=cv-none&timeout=3s"
            ))
            .bearer_auth(TOKEN)
            .send();
        let poll = tokio::spawn(polling);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let unauthorized = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .send()
            .await
            .unwrap();
        assert_eq!(unauthorized.status().as_u16(), 401);
        let answer = client
            .get(format!("http://127.0.0.1:{port}/metrics"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), 200);
        let kind = answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_string();
        assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
        let text = answer.text().await.unwrap();
        for line in [
            "pitcrew_receiver_callbacks_taken_total 3\n",
            "pitcrew_receiver_callbacks_refused_total 1\n",
            "pitcrew_receiver_callbacks_stray_total 2\n",
            "pitcrew_receiver_long_polls_waiting 1\n",
            "pitcrew_receiver_store_seconds_count 3\n",
        ] {
            assert!(text.contains(line), "{line:?} in:\n{text}");
        }
        assert!(!text.contains(SECRET) && !text.contains(TOKEN));
        let _ = poll.await;
    });
    drop(receiver);
}

/// A receiver stopped by SIGTERM (a replica replaced in an upgrade) finishes the callbacks it
/// is answering: one whose script holds its answer for 1.5 s still gets it, and the process
/// exits 0. (It once dropped them with its runtime.)
#[test]
fn a_stopping_receiver_answers_the_callbacks_in_flight() {
    let dir = scratch("receive-drain");
    let port = dead_port();
    let service = start(&dir, port, &[]);
    let client = reqwest::Client::new();
    rt().block_on(async {
        let r = client
            .put(format!("http://127.0.0.1:{port}/api/scripts/ck-drain"))
            .bearer_auth(TOKEN)
            .json(&json!({"respond": [{"status": 200, "body": "held", "delay": "1500ms"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        let body = callback("cv-drain", "ck-drain").to_string();
        let posting = tokio::spawn({
            let client = client.clone();
            async move { post(&client, port, &body, SECRET).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        service.signal("TERM");
        assert_eq!(posting.await.unwrap(), 200, "answered, not cut");
    });
    let (code, _, stderr) = service.finish(Duration::from_secs(15));
    assert_eq!(code, 0, "{stderr}");
}
