//! `pitcrew receive --store postgres://…`: replicas on one real PostgreSQL (a throwaway cluster
//! each test starts). A callback taken by any replica is listed by every one and wakes its
//! long polls; a script registered on one answers on another; a killed replica loses nothing;
//! a database that goes away is a 503, never a 200; retention holds across replicas; and a run
//! whose callbacks and API calls alternate between two replicas behind a proxy, one of them
//! killed and restarted mid-run, gives the verdicts of one receiver.

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::postgres::Postgres;
use common::process::Running;
use common::{dead_port, run_in, scratch};
use serde_json::{Value, json};

const TOKEN: &str = "replica-api-token-4471";
const SECRET: &str = "replica-partner-secret-19";

/// A replica on `port`, its stderr in `dir/NAME`.
fn replica(dir: &Path, name: &str, port: u16, store: &str, extra: &[&str]) -> Running {
    let dir = dir.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    let listen = format!("127.0.0.1:{port}");
    let header = format!("X-Api-Token={SECRET}");
    let mut args = vec!["receive", "--listen", &listen, "--auth-header", &header];
    args.extend(extra);
    let mut p = Running::start(
        &args,
        &dir,
        &[
            ("PITCREW_RECEIVER_TOKEN", TOKEN),
            ("PITCREW_RECEIVER_STORE", store),
        ],
    );
    p.line(Duration::from_secs(20), |l| l.contains("kept from before"));
    p
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Runtime::new().unwrap()
}

fn callback(conversion: &str, click: &str) -> String {
    json!({"id": uuid::Uuid::new_v4().to_string(), "sentAt": "2026-12-03T10:00:00Z",
           "conversion": {"conversionId": conversion, "clickId": click}})
    .to_string()
}

async fn post(port: u16, body: &str, secret: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{port}/callbacks"))
        .header("X-Api-Token", secret)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn api(port: u16, path: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}{path}"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// The callbacks of a listing as (seq, answer status, refused).
fn seen(listed: &Value) -> Vec<(u64, u64, Option<String>)> {
    listed["callbacks"]
        .as_array()
        .unwrap_or_else(|| panic!("a listing: {listed}"))
        .iter()
        .map(|c| {
            (
                c["seq"].as_u64().unwrap(),
                c["answer"]["status"].as_u64().unwrap_or(0),
                c["refused"].as_str().map(str::to_string),
            )
        })
        .collect()
}

/// One `pitcrew_receiver_…` sample of a replica's `/metrics`.
async fn metric(port: u16, name: &str) -> u64 {
    let text = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let Ok(text) = text else { return 0 };
    let text = text.text().await.unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn replicas_on_one_database_share_callbacks_scripts_and_wake_ups_and_survive_its_loss() {
    let Some(pg) = Postgres::start() else { return };
    let dir = scratch("replicas-shared");
    let store = pg.url();
    let (pa, pb) = (dead_port(), dead_port());
    let a = replica(&dir, "a", pa, &store, &[]);
    let b = replica(&dir, "b", pb, &store, &[]);
    let migrated = pg.sql("SELECT version || ' ' || name FROM pitcrew_migrations");
    assert_eq!(
        migrated, "1 callbacks and scripts",
        "two replicas migrate once"
    );
    let runtime = rt();
    runtime.block_on(async {
        // A script registered through A answers deliveries wherever they land, in order.
        let r = reqwest::Client::new()
            .put(format!("http://127.0.0.1:{pa}/api/scripts/ck-1"))
            .bearer_auth(TOKEN)
            .json(&json!({"respond": [{"status": 503}, {"status": 200, "body": "ok now"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        // B waits for two; the second is taken by A, so only A's notification can bring it.
        let waiting = tokio::spawn(api(
            pb,
            "/api/callbacks/wait?conversion=cv-1&count=2&timeout=30s",
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let started = Instant::now();
        let body = callback("cv-1", "ck-1");
        assert_eq!(post(pb, &body, SECRET).await.0, 503, "the script's first");
        assert_eq!(post(pa, &body, SECRET).await, (200, "ok now".into()));
        let (status, waited) = waiting.await.unwrap();
        assert_eq!(status, 200, "{waited}");
        let woken = seen(&waited);
        assert_eq!(
            woken.iter().map(|c| c.1).collect::<Vec<_>>(),
            [503, 200],
            "{waited:#}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "woken by A's callback, not the timeout: {:?}",
            started.elapsed()
        );
        // Both list them under the same sequence numbers.
        let (_, at_a) = api(pa, "/api/callbacks?click=ck-1").await;
        assert_eq!(seen(&at_a), woken);
        // A forgery refused by B is seen through A (a case would see it fail).
        let (status, _) = post(pb, &callback("cv-9", "ck-9"), "not-the-secret-123").await;
        assert_eq!(status, 401);
        let (_, forged) = api(pa, "/api/callbacks?conversion=cv-9").await;
        let forged = seen(&forged);
        assert_eq!(forged.len(), 1, "{forged:?}");
        assert_eq!(forged[0].2.as_deref(), Some("wrong X-Api-Token"));
        // A payload nested as deep as the receiver reads one (64 levels) is listed by the
        // other replica as by the one that took it; a deeper one is a body that is not JSON (a
        // stray here, as it names no id the receiver can read).
        let deep = |depth: usize| {
            format!(
                r#"{{"id": "deep-{depth}", "conversion": {{"conversionId": "cv-deep-{depth}", "clickId": "ck-deep"}}, "deep": {}1{}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        assert_eq!(post(pa, &deep(65), SECRET).await.0, 200);
        let (_, listed) = api(pa, "/api/callbacks?conversion=cv-deep-65").await;
        assert_eq!(listed["callbacks"], json!([]), "unreadable: a stray, {listed}");
        let deep = deep(64);
        assert_eq!(post(pa, &deep, SECRET).await.0, 200);
        for port in [pa, pb] {
            let (_, listed) = api(port, "/api/callbacks?conversion=cv-deep-64").await;
            let json = &listed["callbacks"][0]["json"];
            assert!(json["deep"].is_array(), "on {port}: {listed}");
        }
        assert_eq!(
            metric(pa, "pitcrew_receiver_callbacks_taken_total").await,
            2
        );
        assert_eq!(
            metric(pb, "pitcrew_receiver_callbacks_taken_total").await,
            1
        );
        assert_eq!(
            metric(pb, "pitcrew_receiver_callbacks_refused_total").await,
            1
        );
    });
    // A replica killed and started again has everything any replica answered.
    b.signal("KILL");
    drop(b);
    let b = replica(&dir, "b", pb, &store, &[]);
    runtime.block_on(async {
        let (_, at_b) = api(pb, "/api/callbacks?click=ck-1").await;
        assert_eq!(seen(&at_b).len(), 2, "{at_b}");
        let (_, deep) = api(pb, "/api/callbacks?conversion=cv-deep-64").await;
        assert!(
            deep["callbacks"][0]["json"]["deep"].is_array(),
            "restored: {deep}"
        );
        // The database goes away: nothing is answered 200 that is not kept, and nothing is
        // listed that could be missing a callback.
        pg.stop();
        let (status, text) = post(pa, &callback("cv-2", "ck-2"), SECRET).await;
        assert_eq!(status, 503, "{text}");
        assert!(text.contains("could not keep this callback"), "{text}");
        let (status, listed) = api(pa, "/api/callbacks?conversion=cv-1").await;
        assert_eq!(status, 503, "{listed}");
        let (status, health) = api(pa, "/api/health").await;
        assert_eq!((status, &health["ok"]), (503, &json!(false)), "{health}");
        pg.restart();
        // B waits before A takes the next one: B's listening must have come back by itself.
        let waiting = tokio::spawn(api(
            pb,
            "/api/callbacks/wait?conversion=cv-3&count=1&timeout=30s",
        ));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let (status, text) = post(pa, &callback("cv-3", "ck-3"), SECRET).await;
            if status == 200 {
                break;
            }
            assert_eq!(status, 503, "{text}");
            assert!(Instant::now() < until, "the store never came back: {text}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (status, waited) = waiting.await.unwrap();
        assert_eq!((status, seen(&waited).len()), (200, 1), "{waited}");
        let (status, health) = api(pb, "/api/health").await;
        assert_eq!((status, &health["ok"]), (200, &json!(true)), "{health}");
    });
    a.signal("TERM");
    let (code, _, stderr) = a.finish(Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains("callbacks are answered 503 until it is back")
            && stderr.contains("is back"),
        "the operator is told when the database goes and returns:\n{stderr}"
    );
    assert!(!stderr.contains(SECRET), "{stderr}");
    b.signal("TERM");
}

#[test]
fn retention_and_migrations_hold_across_replicas() {
    let Some(pg) = Postgres::start() else { return };
    let dir = scratch("replicas-retention");
    let store = pg.url();
    let (pa, pb) = (dead_port(), dead_port());
    let a = replica(&dir, "a", pa, &store, &["--keep", "2s"]);
    let b = replica(&dir, "b", pb, &store, &["--keep", "2s"]);
    let runtime = rt();
    runtime.block_on(async {
        assert_eq!(post(pa, &callback("old-1", "k-1"), SECRET).await.0, 200);
        assert_eq!(post(pb, &callback("old-2", "k-2"), SECRET).await.0, 200);
        let (_, listed) = api(pa, "/api/callbacks?conversion=old-2").await;
        assert_eq!(seen(&listed).len(), 1);
        // Forgotten by both replicas, and by the database.
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let (_, a_old) = api(pa, "/api/callbacks?conversion=old-2").await;
            let (_, b_old) = api(pb, "/api/callbacks?conversion=old-1").await;
            let rows = pg.sql("SELECT count(*) FROM pitcrew_callbacks");
            if seen(&a_old).is_empty() && seen(&b_old).is_empty() && rows == "0" {
                break;
            }
            assert!(
                Instant::now() < until,
                "never forgotten: {a_old} {b_old} {rows}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    drop((a, b));
    // A replica older than the database's schema refuses to start, and says why.
    pg.sql("INSERT INTO pitcrew_migrations (version, name) VALUES (99, 'from the future')");
    // What a replica that cannot start on `store` says, and its exit code.
    let refused = |store: &str| {
        let header = format!("X-Api-Token={SECRET}");
        let args = [
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--auth-header",
            &header,
        ];
        let out = common::pitcrew_in(
            &dir,
            &[&args[..], &["--store", store]].concat(),
            &[("PITCREW_RECEIVER_TOKEN", TOKEN)],
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        stderr
    };
    let stderr = refused(&store);
    assert!(
        stderr.contains("its schema is at migration 99")
            && stderr.contains("knows migrations up to 1"),
        "{stderr}"
    );
    // A database that is not there is one clear error, naming it without a password.
    let stderr = refused(&format!(
        "postgres://qa:pg-pass-7781@127.0.0.1:{}/x",
        dead_port()
    ));
    assert!(
        stderr.contains("@127.0.0.1:") && stderr.contains("Connection refused"),
        "{stderr}"
    );
    assert!(!stderr.contains("pg-pass-7781"), "{stderr}");
    // TLS to the database is not spoken: asked for, it is refused before anything is sent.
    let stderr = refused(&format!("{store}?sslmode=require"));
    assert!(stderr.contains("sslmode=require"), "{stderr}");
}

/// A round-robin HTTP proxy, as a load balancer: each request goes to the next backend, or
/// the one after when that one does not answer it (a replica that is down or was killed
/// mid-request: nginx's `proxy_next_upstream error timeout non_idempotent`).
struct Proxy {
    port: u16,
    backends: Arc<Mutex<Vec<u16>>>,
}

impl Proxy {
    fn start(backends: &[u16]) -> Proxy {
        use axum::body::Bytes;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        let backends = Arc::new(Mutex::new(backends.to_vec()));
        let turn = Arc::new(AtomicUsize::new(0));
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let shared = backends.clone();
        let forward = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (list, client) = (shared.lock().unwrap().clone(), client.clone());
            let first = turn.fetch_add(1, Ordering::Relaxed);
            async move {
                for i in 0..list.len() {
                    let port = list[(first + i) % list.len()];
                    let path = uri.path_and_query().map_or("/", |p| p.as_str());
                    let mut request = client
                        .request(method.clone(), format!("http://127.0.0.1:{port}{path}"))
                        .body(body.clone());
                    for (name, value) in &headers {
                        if name != "host" && name != "content-length" {
                            request = request.header(name, value);
                        }
                    }
                    match request.send().await {
                        Ok(r) => {
                            let status = r.status();
                            let mut headers = r.headers().clone();
                            for hop in ["transfer-encoding", "content-length", "connection"] {
                                headers.remove(hop);
                            }
                            return match r.bytes().await {
                                Ok(body) => (status, headers, body),
                                Err(_) => (StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::new()),
                            };
                        }
                        // Not taken, or cut before an answer (a replica killed): the next
                        // backend, as a load balancer set to retry does.
                        Err(_) => continue,
                    }
                }
                (StatusCode::BAD_GATEWAY, HeaderMap::new(), Bytes::new())
            }
        };
        let app = axum::Router::new().fallback(forward);
        let addr = common::serve_app(app);
        Proxy {
            port: addr.port(),
            backends,
        }
    }

    fn route_to(&self, backends: &[u16]) {
        *self.backends.lock().unwrap() = backends.to_vec();
    }
}

/// Cases whose callbacks come over three seconds, so that a replica dies among them.
fn late_cases(dir: &Path) -> PathBuf {
    let mut yaml = String::from("name: Callbacks that come late\ncases:\n");
    for i in 0..30 {
        yaml.push_str(&format!(
            "  - name: a callback {i}00 ms late\n    click: generate\n    event: install\n    sandbox: {{ faults: {{ callback_delay: {i}00ms }} }}\n"
        ));
    }
    yaml.push_str(
        "  - name: a silent conversion\n    click: generate\n    event: install\n    sandbox: { faults: { drop_callback: true } }\n    expect: { callback: none }\n",
    );
    let path = dir.join("late.yaml");
    std::fs::write(&path, yaml).unwrap();
    path
}

#[test]
fn a_run_across_two_replicas_one_killed_mid_run_gives_the_verdicts_of_one_receiver() {
    let Some(pg) = Postgres::start() else { return };
    let dir = scratch("replicas-run");
    let store = pg.url();
    let (pa, pb) = (dead_port(), dead_port());
    let _a = replica(&dir, "a", pa, &store, &[]);
    let b = replica(&dir, "b", pb, &store, &[]);
    let proxy = Proxy::start(&[pa]);
    let config = dir.join("tenant.yaml");
    std::fs::write(
        &config,
        format!(
            "partners:\n  - id: demo-publisher\n    callback_url: http://127.0.0.1:{}/callbacks\n    auth_header: {{ name: X-Api-Token, secret: {SECRET} }}\n",
            proxy.port
        ),
    )
    .unwrap();
    let sandbox =
        common::Standalone::start_with(&["--sandbox-config", &config.display().to_string()]);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let files: Vec<String> = [
        repo.join("scenarios/go-live.yaml"),
        repo.join("scenarios/refusals.yaml"),
        repo.join("scenarios/stories.yaml"),
        repo.join("tests/fixtures/stories/failing.yaml"),
        late_cases(&dir),
    ]
    .iter()
    .map(|p| p.display().to_string())
    .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let receiver = format!("http://127.0.0.1:{}", proxy.port);
    let run = || {
        run_in(
            &dir,
            &files,
            &["--target", &sandbox.base, "--receiver-url", &receiver],
            &[("PITCREW_RECEIVER_TOKEN", TOKEN)],
        )
    };
    // One receiver.
    let alone = run();
    let verdicts = alone.verdicts();
    assert!(
        verdicts.iter().filter(|v| v.1 == "passed").count() >= 35
            && verdicts.iter().any(|v| v.1 == "failed"),
        "{}",
        alone.explain()
    );
    // Two, B killed once it has taken some of the run's callbacks, and started again.
    proxy.route_to(&[pa, pb]);
    let runtime = rt();
    let taken = |port| runtime.block_on(metric(port, "pitcrew_receiver_callbacks_taken_total"));
    let (a_before, b_before) = (taken(pa), taken(pb));
    let killer = std::thread::spawn({
        let dir = dir.clone();
        let store = store.clone();
        move || {
            let runtime = rt();
            let started = Instant::now();
            let taken = || runtime.block_on(metric(pb, "pitcrew_receiver_callbacks_taken_total"));
            // Among the late callbacks (one each 100 ms, half of them B's), 50 ms after B
            // answered one: no callback is in flight then, so none is lost or sent twice by
            // the kill itself (a replica killed between keeping a callback and answering it
            // gets it again from the platform's retry, as one receiver would).
            let mut last = taken();
            while last < b_before + 5 || started.elapsed() < Duration::from_millis(1200) {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "B never took 5 of the run's callbacks"
                );
                std::thread::sleep(Duration::from_millis(5));
                last = taken();
            }
            let until = Instant::now() + Duration::from_secs(2);
            while taken() == last && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(2));
            }
            std::thread::sleep(Duration::from_millis(50));
            b.signal("KILL");
            drop(b);
            std::thread::sleep(Duration::from_millis(300));
            replica(&dir, "b2", pb, &store, &[])
        }
    });
    let shared = run();
    let b = killer.join().unwrap();
    assert_eq!(
        shared.verdicts(),
        verdicts,
        "across replicas:\n{}",
        shared.explain()
    );
    assert_eq!(shared.code, alone.code);
    assert!(
        taken(pa) > a_before + 5,
        "A took its share: {} then {}",
        a_before,
        taken(pa)
    );
    // Nothing the replicas answered is missing from either.
    let rows = pg.sql("SELECT count(*) FROM pitcrew_callbacks");
    let runtime2 = rt();
    runtime2.block_on(async {
        let (_, health_a) = api(pa, "/api/health").await;
        let (_, health_b) = api(pb, "/api/health").await;
        assert_eq!(health_a["kept"], health_b["kept"], "{health_a} {health_b}");
        assert!(rows.parse::<u64>().unwrap() >= health_a["kept"].as_u64().unwrap());
    });
    b.signal("TERM");
}
