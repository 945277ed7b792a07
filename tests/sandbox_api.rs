//! The sandbox over real HTTP: GoKart's answers, rules, callbacks and retries.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use pitcrew::delivery::Key;
use pitcrew::receiver::Receiver;
use pitcrew::sandbox::{self, SandboxConfig};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::time::Instant;

struct Tenant {
    base: String,
    receiver: Receiver,
    http: reqwest::Client,
    _stop: tokio_util::sync::DropGuard,
}

/// The embedded sandbox and pitcrew's receiver, started by the library as a run starts them.
async fn tenant(config: SandboxConfig) -> Tenant {
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop = shutdown.clone().drop_guard();
    let target = pitcrew::launch::Target::Sandbox {
        config: Box::new(config),
        endpoint: None,
    };
    let started = target.start(shutdown, None).await.unwrap();
    let pitcrew::launch::Observed::Receiver(receiver) = &started.observed else {
        panic!("the embedded sandbox calls back pitcrew's receiver");
    };
    Tenant {
        base: started.platform.profile().base_url.clone(),
        receiver: Receiver::clone(receiver),
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

impl Tenant {
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json().await.unwrap())
    }

    async fn click(&self, member: &str) -> String {
        let (status, body) = self
            .post(
                "/tools/clicks",
                json!({"offerId": "demo-offer", "publisherMemberId": member}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["data"]["clickId"].as_str().unwrap().to_string()
    }

    /// Converts `click` with `event` (no params, no faults).
    async fn convert(&self, click: &str, event: &str) -> (u16, Value) {
        self.post(
            "/tools/conversions",
            json!({"clickId": click, "eventId": event}),
        )
        .await
    }
}

fn assert_wrapped(body: &Value, successful: bool) {
    for key in [
        "responseId",
        "isSuccessful",
        "responseTitle",
        "responseType",
        "messages",
        "data",
    ] {
        assert!(body.get(key).is_some(), "answer lacks `{key}`: {body}");
    }
    assert_eq!(body["isSuccessful"], successful, "{body}");
}

#[tokio::test]
async fn unknown_offer_click_and_event_are_refused_gokart_style() {
    let t = tenant(SandboxConfig::default()).await;
    let (status, body) = t
        .post(
            "/tools/clicks",
            json!({"offerId": "nope", "publisherMemberId": "m"}),
        )
        .await;
    assert_eq!(status, 404);
    assert_wrapped(&body, false);
    assert!(body["messages"][0].as_str().unwrap().contains("nope"));

    let (status, body) = t
        .post(
            "/tools/conversions",
            json!({"clickId": "11111111-1111-4111-8111-111111111111", "eventId": "install"}),
        )
        .await;
    assert_eq!(status, 404, "{body}");

    let click = t.click("m-422").await;
    let (status, body) = t.convert(&click, "refund").await;
    assert_eq!(status, 422, "{body}");
    assert_wrapped(&body, false);
    assert!(
        body["messages"][0]
            .as_str()
            .unwrap()
            .contains("install, signup, purchase")
    );
}

#[tokio::test]
async fn the_callback_is_schema_v1_with_every_field_and_the_flag() {
    let config = SandboxConfig::default();
    let secret = config.receiver_auth()[0].secret().to_string();
    let t = tenant(config).await;
    let click = t.click("member-v1").await;
    let (status, body) = t
        .post(
            "/tools/conversions",
            json!({"clickId": click, "eventId": "purchase",
                   "params": {"pub_sub_1": "a", "pub_sub_15": "z", "cnv_amount": "4.20", "cnv_sub_2": "s2"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_wrapped(&body, true);
    assert_eq!(body["data"]["callback"]["outcome"], "Delivered", "{body}");
    let conversion = body["data"]["conversionId"].as_str().unwrap();
    let got = t
        .receiver
        .deliveries(&Key::Conversion(conversion.to_string()));
    assert_eq!(got.len(), 1, "the callback arrived before the answer");
    let callback = got[0].json.clone().unwrap();
    assert!(callback["id"].is_string() && callback["sentAt"].is_string());
    let c = &callback["conversion"];
    let mut fields: Vec<String> = [
        "status",
        "rejectionReason",
        "userCompletedAt",
        "isRewardSent",
        "viewId",
        "clickId",
        "conversionId",
        "offerId",
        "offerName",
        "offerAdvertiserId",
        "offerAdvertiserName",
        "offerEventId",
        "offerCategoryId",
        "offerCategoryName",
        "offerCountryId",
        "offerCountryCode2",
        "offerCountryCode3",
        "eventId",
        "eventName",
        "rewardPoints",
        "revenue",
        "pubMemberId",
        "pubClickId",
        "pubSessionId",
        "pubGender",
        "pubAge",
        "pubGeoCountry",
        "pubGeoState",
        "pubPostalCode",
        "pubDevice",
        "trackSysEventId",
        "trackSysConversionId",
        "trackSysConversionAmount",
        "trackSysConversionIpAddress",
        "trackSysConversionEmail",
        "trackSysConversionUserId",
        "sequenceNumber",
        "partnerId",
        "partnerName",
        "createdAt",
        "clickTime",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    fields.extend((1..=15).map(|i| format!("pubSub{i}")));
    fields.extend((1..=5).map(|i| format!("trackSysConversionSub{i}")));
    for field in &fields {
        assert!(c.get(field).is_some(), "schema v1 field `{field}` missing");
    }
    assert_eq!(
        c.as_object().unwrap().len(),
        fields.len(),
        "no extra fields"
    );
    assert_eq!(c["pubSub1"], "a");
    assert_eq!(c["pubSub15"], "z");
    assert_eq!(c["pubSub2"], Value::Null, "empty is null, not absent");
    assert_eq!(c["trackSysConversionAmount"], "4.20");
    assert_eq!(c["trackSysConversionSub2"], "s2");
    assert_eq!(c["pubMemberId"], "member-v1");
    assert_eq!(c["status"], "Success");
    assert_eq!(c["pubSub5"], pitcrew::TESTING_TOOLS_FLAG);
    let header = got[0]
        .headers
        .iter()
        .find(|(k, _)| k == "x-api-token")
        .map(|(_, v)| v.as_str());
    assert_eq!(
        header,
        Some(secret.as_str()),
        "the partner's auth header is sent"
    );
    assert!(secret.len() >= 32, "a fresh, unguessable secret: {secret}");
    assert_ne!(
        SandboxConfig::default().receiver_auth()[0].secret(),
        secret,
        "fresh for every sandbox"
    );
}

#[tokio::test]
async fn a_member_completes_an_offer_event_once_but_the_seeded_click_is_exempt() {
    let t = tenant(SandboxConfig::default()).await;
    let click = t.click("once").await;
    let convert = |click: String| {
        let t = &t;
        async move {
            let (status, body) = t.convert(&click, "signup").await;
            assert_eq!(status, 201, "{body}");
            body["data"].clone()
        }
    };
    assert_eq!(convert(click.clone()).await["status"], "Success");
    let second = convert(click).await;
    assert_eq!(second["status"], "Rejected");
    assert!(
        second["rejectionReason"]
            .as_str()
            .unwrap()
            .contains("already")
    );
    let rejected = t.receiver.deliveries(&Key::Conversion(
        second["conversionId"].as_str().unwrap().to_string(),
    ));
    assert_eq!(
        rejected[0].json.as_ref().unwrap()["conversion"]["status"],
        "Rejected"
    );
    for _ in 0..2 {
        let data = convert(sandbox::SEEDED_CLICK.to_string()).await;
        assert_eq!(data["status"], "Success", "the seeded click converts again");
    }
}

#[tokio::test]
async fn resending_returns_the_endpoints_full_response_and_the_log_keeps_every_attempt() {
    let t = tenant(SandboxConfig::default()).await;
    let (status, body) = t
        .post(
            "/tools/callbacks",
            json!({"clickId": sandbox::SEEDED_CLICK, "conversionId": sandbox::SEEDED_CONVERSION}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["response"]["status"], 200);
    assert_eq!(data["response"]["body"], "OK");
    assert!(data["response"]["durationMs"].is_u64());
    assert_eq!(data["request"]["method"], "POST");
    assert_eq!(
        data["request"]["headers"]["X-Api-Token"], "***",
        "the secret is masked"
    );
    assert_eq!(
        data["request"]["body"]["conversion"]["conversionId"],
        sandbox::SEEDED_CONVERSION
    );

    let (status, log) = t
        .get(&format!(
            "/conversion-callbacks?conversionId={}",
            sandbox::SEEDED_CONVERSION
        ))
        .await;
    assert_eq!(status, 200);
    let attempts = log["data"].as_array().unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0]["outcome"], "Delivered");
    assert_eq!(attempts[0]["status"], 200);
    assert_eq!(
        attempts[0]["note"]["conversion"]["conversionId"],
        sandbox::SEEDED_CONVERSION
    );

    let (status, _) = t
        .post(
            "/tools/callbacks",
            json!({"clickId": sandbox::SEEDED_CLICK, "conversionId": "nope"}),
        )
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_status_change_calls_back_again_with_the_same_conversion_id() {
    let t = tenant(SandboxConfig::default()).await;
    let click = t.click("status-change").await;
    let (_, body) = t.convert(&click, "install").await;
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let r = t
        .http
        .patch(format!("{}/conversions/{conversion}", t.base))
        .json(&json!({"status": "Rejected", "rejectionReason": "fraud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let got = t
        .receiver
        .wait(
            &Key::Conversion(conversion.clone()),
            &|d| d.len() >= 2,
            Instant::now() + Duration::from_secs(5),
        )
        .await;
    assert_eq!(got.len(), 2);
    let second = &got[1].json.as_ref().unwrap()["conversion"];
    assert_eq!(second["status"], "Rejected");
    assert_eq!(second["rejectionReason"], "fraud");
}

/// A tenant whose partner's endpoint takes `delay` to answer 503 to the first `down` calls,
/// then 200, on a platform minute of `minute`; the calls it got.
async fn tenant_calling_a_flaky_endpoint(
    minute: Duration,
    delay: Duration,
    down: u32,
) -> (Tenant, Arc<AtomicU32>) {
    let hits = Arc::new(AtomicU32::new(0));
    let endpoint = {
        let hits = hits.clone();
        axum::Router::new().fallback(move || {
            let hits = hits.clone();
            async move {
                tokio::time::sleep(delay).await;
                if hits.fetch_add(1, Ordering::SeqCst) < down {
                    (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down")
                } else {
                    (axum::http::StatusCode::OK, "OK")
                }
            }
        })
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, endpoint).await });
    let mut config = SandboxConfig {
        minute,
        ..SandboxConfig::default()
    };
    config.partners[0].callback_url = Some(url);
    (tenant(config).await, hits)
}

#[tokio::test]
async fn callbacks_answered_503_are_retried_on_the_compressed_schedule() {
    let (t, hits) =
        tenant_calling_a_flaky_endpoint(Duration::from_millis(5), Duration::ZERO, 2).await;
    let click = t.click("retry").await;
    let (_, body) = t.convert(&click, "install").await;
    assert_eq!(body["data"]["callback"]["outcome"], "Retrying", "{body}");
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(5);
    let attempts = loop {
        let (_, log) = t
            .get(&format!("/conversion-callbacks?conversionId={conversion}"))
            .await;
        let attempts = log["data"].as_array().unwrap().clone();
        if attempts.len() == 3 || Instant::now() > deadline {
            break attempts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["Retrying", "Retrying", "Delivered"]);
    assert_eq!(
        attempts[0]["callbackId"], attempts[2]["callbackId"],
        "one callback, three attempts"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 3);
}

/// `/sandbox/pending` tells a run on `--target URL` when it may stop waiting for late
/// duplicates: null when nothing is due, else how long until the next callback goes out.
#[tokio::test]
async fn the_sandbox_says_when_it_next_sends_a_callback() {
    let t = tenant(SandboxConfig::default()).await;
    let next = |body: Value| body["data"]["nextDeliveryInMs"].clone();
    let (status, body) = t.get("/sandbox/pending").await;
    assert_eq!(status, 200, "{body}");
    assert_wrapped(&body, true);
    assert_eq!(next(body), Value::Null, "nothing sent yet");
    let click = t.click("pending").await;
    let (status, body) = t
        .post(
            "/tools/conversions",
            json!({"clickId": click, "eventId": "install", "faults": {"duplicate_callback": "2s"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let (_, body) = t.get("/sandbox/pending").await;
    let ms = next(body.clone())
        .as_u64()
        .unwrap_or_else(|| panic!("{body}"));
    assert!(
        (500..=2000).contains(&ms),
        "the duplicate is due in under 2 s: {body}"
    );
    // Asked about the conversion: one attempt made, one still due; another conversion has none.
    let of = |id: &str| format!("/sandbox/pending?conversionId={id}");
    let (_, mine) = t.get(&of(&conversion)).await;
    assert_eq!(
        (&mine["data"]["deliveries"], &mine["data"]["made"]),
        (&json!(1), &json!(1)),
        "{mine}"
    );
    let (_, other) = t.get(&of(&uuid::Uuid::new_v4().to_string())).await;
    assert!(next(other.clone()).is_null(), "{other}");
    assert_eq!(attempts_of(&t, &conversion, 2).await.len(), 2);
    // Its task ends just after the attempt is logged.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, body) = t.get(&of(&conversion)).await;
        if next(body.clone()).is_null() {
            assert_eq!(body["data"]["made"], 2, "{body}");
            break;
        }
        assert!(Instant::now() < deadline, "the duplicate went out: {body}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A callback being sent counts as pending (`nextDeliveryInMs: 0`), a retry it leads to too:
/// a run must not take a case's verdict as final while the sandbox is still talking to the
/// endpoint.
#[tokio::test]
async fn a_callback_being_sent_or_retried_is_pending() {
    // An endpoint that takes 300 ms to answer 503, then answers 200.
    let (t, hits) =
        tenant_calling_a_flaky_endpoint(Duration::from_millis(50), Duration::from_millis(300), 1)
            .await;
    let t = Arc::new(t);
    let click = t.click("sending").await;
    let converting = {
        let t = t.clone();
        tokio::spawn(async move { t.convert(&click, "install").await })
    };
    let mut seen = Vec::new();
    while !converting.is_finished() {
        let (_, body) = t.get("/sandbox/pending").await;
        seen.push(body["data"]["nextDeliveryInMs"].clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = converting.await.unwrap();
    assert_eq!(body["data"]["callback"]["outcome"], "Retrying", "{body}");
    assert!(seen.contains(&json!(0)), "pending while sent: {seen:?}");
    let (_, body) = t.get("/sandbox/pending").await;
    assert!(
        body["data"]["nextDeliveryInMs"].is_u64(),
        "the retry is pending: {body}"
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while !t.get("/sandbox/pending").await.1["data"]["nextDeliveryInMs"].is_null() {
        assert!(Instant::now() < deadline, "the retry never ended");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "nothing pending once delivered"
    );
}

/// `--target URL` believes a sandbox about what it still has to send for a case only from a
/// 2xx answer that says so; anything else (an error, an unknown shape) means it cannot tell.
/// It asks about the case's own conversion.
#[tokio::test]
async fn a_run_believes_the_sandboxs_outbox_only_when_it_says_so() {
    use pitcrew::platform::outbox::{Outbox, Pending, SandboxApi};
    #[derive(Debug, PartialEq)]
    enum Said {
        Nothing(Option<u64>),
        DueIn(u64),
        Unknown,
    }
    let answers: [(u16, Value, Said); 7] = [
        (
            200,
            json!({"data": {"nextDeliveryInMs": null}}),
            Said::Nothing(None),
        ),
        (
            200,
            json!({"data": {"nextDeliveryInMs": null, "made": 2}}),
            Said::Nothing(Some(2)),
        ),
        (
            200,
            json!({"data": {"nextDeliveryInMs": 3_600_000}}),
            Said::DueIn(3_600_000),
        ),
        (
            200,
            json!({"data": {"nextDeliveryInMs": 0}}),
            Said::DueIn(0),
        ),
        (
            200,
            json!({"data": {"nextDeliveryInMs": 5}}),
            Said::DueIn(5),
        ),
        (
            500,
            json!({"data": {"nextDeliveryInMs": null}}),
            Said::Unknown,
        ),
        (200, json!({"data": {}}), Said::Unknown),
    ];
    for (status, answer, said) in answers {
        let body = answer.clone();
        let app = axum::Router::new().route(
            "/api/v1/sandbox/pending",
            axum::routing::get(
                move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
                    let body = body.clone();
                    async move {
                        assert_eq!(q.get("conversionId").map(String::as_str), Some("cv-1"));
                        let status = axum::http::StatusCode::from_u16(status).unwrap();
                        (status, axum::Json(body))
                    }
                },
            ),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/api/v1", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let outbox = SandboxApi::new(&base, vec![]);
        let asked = Instant::now();
        let got = match outbox.pending(&Key::Conversion("cv-1".into())).await {
            Pending::Nothing { made } => Said::Nothing(made),
            Pending::Unknown => Said::Unknown,
            // Due this long after the question, give or take the time the answer took.
            Pending::Due(at) => {
                let after = at.saturating_duration_since(asked).as_millis() as u64;
                match said {
                    Said::DueIn(ms) if (ms..ms + 1_000).contains(&after) => Said::DueIn(ms),
                    _ => Said::DueIn(after),
                }
            }
        };
        assert_eq!(got, said, "HTTP {status} {answer}");
    }
}

#[tokio::test]
async fn a_configured_token_is_required() {
    let t = tenant(SandboxConfig {
        token: Some("t0ken".into()),
        ..SandboxConfig::default()
    })
    .await;
    let (status, body) = t
        .post(
            "/tools/clicks",
            json!({"offerId": "demo-offer", "publisherMemberId": "m"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_wrapped(&body, false);
    let r = t
        .http
        .post(format!("{}/tools/clicks", t.base))
        .header("Authorization", "ApiToken t0ken")
        .json(&json!({"offerId": "demo-offer", "publisherMemberId": "m"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
}

/// Polls the log of `conversion` until `n` attempts are there (or 5 s pass).
async fn attempts_of(t: &Tenant, conversion: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, log) = t
            .get(&format!("/conversion-callbacks?conversionId={conversion}"))
            .await;
        let attempts = log["data"].as_array().cloned().unwrap_or_default();
        if attempts.len() >= n || Instant::now() > deadline {
            return attempts;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn after_max_attempts_a_callback_is_failed() {
    let mut config = SandboxConfig {
        minute: Duration::from_millis(5),
        ..SandboxConfig::default()
    };
    config.partners[0].max_attempts = 3;
    let t = tenant(config).await;
    let click = t.click("always-down").await;
    let down = pitcrew::delivery::Script {
        answers: vec![pitcrew::delivery::ScriptedAnswer {
            status: 500,
            body: "down".into(),
            delay: Duration::ZERO,
        }],
    };
    t.receiver.script(Key::Click(click.clone()), Arc::new(down));
    let (_, body) = t.convert(&click, "install").await;
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let attempts = attempts_of(&t, &conversion, 3).await;
    // Once the sandbox has nothing left to send for the conversion, no attempt can follow.
    let deadline = Instant::now() + Duration::from_secs(5);
    let pending = format!("/sandbox/pending?conversionId={conversion}");
    while !t.get(&pending).await.1["data"]["nextDeliveryInMs"].is_null() {
        assert!(Instant::now() < deadline, "the retries never ended");
        tokio::task::yield_now().await;
    }
    let attempts_later = attempts_of(&t, &conversion, 3).await;
    let outcomes: Vec<&str> = attempts_later
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["Retrying", "Retrying", "Failed"],
        "{attempts:#?}"
    );
}

#[tokio::test]
async fn a_partner_is_called_back_only_for_the_statuses_it_wants() {
    let mut config = SandboxConfig::default();
    config.partners[0].statuses = vec!["Success".into()];
    let t = tenant(config).await;
    let click = t.click("pending-member").await;
    let (status, body) = t.convert(&click, "deposit").await;
    assert_eq!(status, 201);
    assert_eq!(
        body["data"]["status"], "Pending",
        "deposit starts Pending: {body}"
    );
    assert_eq!(body["data"]["callback"]["outcome"], "NotSent", "{body}");
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let (_, log) = t
        .get(&format!("/conversion-callbacks?conversionId={conversion}"))
        .await;
    assert_eq!(
        log["data"].as_array().unwrap().len(),
        0,
        "no Pending callback: {log}"
    );
    // Approved: now there is a status it wants.
    let r = t
        .http
        .patch(format!("{}/conversions/{conversion}", t.base))
        .json(&json!({"status": "Success"}))
        .send()
        .await
        .unwrap();
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["data"]["callback"]["outcome"], "Delivered",
        "{answer}"
    );
}

#[tokio::test]
async fn api_faults_slow_or_fail_the_conversion_tool() {
    let t = tenant(SandboxConfig::default()).await;
    let click = t.click("api-faults").await;
    let (status, body) = t
        .post(
            "/tools/conversions",
            json!({"clickId": click, "eventId": "install", "faults": {"api_error": 503}}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_wrapped(&body, false);
    let started = std::time::Instant::now();
    let (status, _) = t
        .post(
            "/tools/conversions",
            json!({"clickId": click, "eventId": "install", "faults": {"api_latency": "250ms"}}),
        )
        .await;
    assert_eq!(
        status, 201,
        "the failed call made no conversion, so this one is the first"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));
    let (status, body) = t
        .post(
            "/tools/conversions",
            json!({"clickId": click, "eventId": "install", "faults": {"api_error": 404}}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn a_legacy_partner_gets_pascal_case_callbacks() {
    let mut config = SandboxConfig::default();
    config.partners[0].legacy_payload = true;
    let t = tenant(config).await;
    let click = t.click("legacy").await;
    let (_, body) = t.convert(&click, "install").await;
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let got = t.receiver.deliveries(&Key::Conversion(conversion.clone()));
    let json = got[0].json.clone().unwrap();
    assert_eq!(
        json["Conversion"]["ConversionId"],
        conversion.as_str(),
        "{json:#}"
    );
    assert!(json["Id"].is_string() && json["SentAt"].is_string());
    assert!(pitcrew::check::schema::check(&json, "schema", "t.yaml:1:1").is_empty());
}

/// The OpenAPI document lists exactly the routes the sandbox serves.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let t = tenant(SandboxConfig::default()).await;
    let doc: Value = t
        .http
        .get(format!("{}/openapi.json", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "OpenAPI 3"
    );
    let mut documented: Vec<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                // A path's own `servers` is no operation.
                .filter(|k| *k != "servers")
                .map(move |m| (m.clone(), path.clone()))
        })
        .collect();
    documented.sort();
    let mut served: Vec<(String, String)> = pitcrew::sandbox::ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    served.sort();
    assert_eq!(documented, served);
    for (method, path) in pitcrew::sandbox::ROUTES {
        // A path with its own `servers: [{url: /}]` is at the host's root.
        let base = match doc["paths"][path]["servers"][0]["url"].as_str() {
            Some("/") => t.base.trim_end_matches("/api/v1"),
            _ => t.base.as_str(),
        };
        let url = format!("{base}{}", path.replace("{id}", "nope"));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = t.http.request(method, &url).send().await.unwrap();
        let body = r.text().await.unwrap();
        assert!(
            !body.contains("no such endpoint"),
            "{path} is documented but not served"
        );
    }
}

/// A partner endpoint that answers every request with `answer` (raw bytes, then it hangs up),
/// on an ephemeral port; the sandbox calls it back.
async fn tenant_calling_a_raw_endpoint(answer: Vec<u8>) -> Tenant {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/cb", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = vec![0u8; 64 * 1024];
                let _ = socket.read(&mut request).await;
                let _ = socket.write_all(&answer).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    let mut config = SandboxConfig::default();
    config.partners[0].callback_url = Some(url);
    tenant(config).await
}

/// A 200 whose body is cut off (it promises 100 bytes, sends 5 and hangs up) is not an
/// accepted callback: the attempt failed in transport, saying so (it once counted as
/// Delivered).
#[tokio::test]
async fn an_answer_cut_off_is_not_an_accepted_callback() {
    let t = tenant_calling_a_raw_endpoint(
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nhello".to_vec(),
    )
    .await;
    let click = t.click("cut-off").await;
    let (status, body) = t.convert(&click, "install").await;
    assert_eq!(status, 201, "{body}");
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let attempts = attempts_of(&t, &conversion, 1).await;
    let attempt = &attempts[0];
    assert_eq!(attempt["outcome"], "Failed", "{attempt:#}");
    assert!(attempt["status"].is_null(), "{attempt:#}");
    assert!(
        attempt["error"].as_str().unwrap().contains("cut off"),
        "{attempt:#}"
    );
}

/// An endpoint that answers megabytes is kept to its first 64 KiB, with a note of the rest: the
/// sandbox's memory does not grow with what endpoints answer (six 64 MiB answers once took
/// 1.5 GB).
#[tokio::test]
async fn a_huge_answer_is_kept_to_a_bounded_prefix() {
    let size = 2 * 1024 * 1024;
    let mut answer =
        format!("HTTP/1.1 200 OK\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n")
            .into_bytes();
    answer.extend(std::iter::repeat_n(b'x', size));
    let t = tenant_calling_a_raw_endpoint(answer).await;
    let click = t.click("huge").await;
    let (status, body) = t.convert(&click, "install").await;
    assert_eq!(status, 201, "{body}");
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let attempts = attempts_of(&t, &conversion, 1).await;
    let attempt = &attempts[0];
    assert_eq!(
        attempt["outcome"],
        "Delivered",
        "{}",
        &attempt.to_string()[..300]
    );
    let kept = attempt["responseBody"].as_str().unwrap();
    assert!(kept.len() < 65 * 1024, "{} bytes kept", kept.len());
    assert!(
        kept.ends_with(&format!("({} more bytes not kept)", size - 64 * 1024)),
        "{}",
        &kept[kept.len() - 60..]
    );
}

/// GoKart's public path on the sandbox: the offer's tracking link makes a click with the
/// publisher's parameters and redirects to the advertiser's landing page with its id (no
/// token needed, as on a tenant); the advertiser's postback converts it, matching the event id
/// exactly and once per member; the callback carries the link's subs and the postback's
/// `cnv_*` values, and no testing-tools flag.
#[tokio::test]
async fn the_tracking_link_and_the_advertisers_postback_make_a_conversion() {
    let t = tenant(SandboxConfig {
        token: Some("sandbox-token-5f1".into()),
        ..SandboxConfig::default()
    })
    .await;
    let root = t.base.trim_end_matches("/api/v1").to_string();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |url: String| {
        let http = http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            let status = r.status().as_u16();
            let location = r
                .headers()
                .get("location")
                .map(|l| l.to_str().unwrap().to_string());
            let body: Value = r.json().await.unwrap_or(Value::Null);
            (status, location, body)
        }
    };
    let link = format!("{}/offer-link/redirect/demo-offer", t.base);
    let (status, location, _) = get(format!(
        "{link}?pub_member_id=m-link-1&pub_click_id=pc-9&pub_sub_1=s1&pub_sub_5=mine"
    ))
    .await;
    assert_eq!(status, 302);
    let location = location.unwrap();
    let click = location
        .strip_prefix("https://advertiser.example/landing?gk_click_id=")
        .unwrap_or_else(|| panic!("{location}"))
        .to_string();
    assert_eq!(uuid::Uuid::parse_str(&click).unwrap().to_string(), click);
    let (status, _, body) = get(format!("{link}?pub_click_id=pc-9")).await;
    assert_eq!(status, 400, "{body}");
    let (status, _, body) = get(format!(
        "{}/offer-link/redirect/no-offer?pub_member_id=m",
        t.base
    ))
    .await;
    assert_eq!(status, 404, "{body}");

    let postback = |event: &str, extra: &str| {
        format!("{root}/postback?gk_click_id={click}&event_id={event}{extra}")
    };
    let (status, _, body) = get(postback("Install", "")).await;
    assert_eq!(status, 422, "event ids match exactly: {body}");
    let (status, _, body) = get(postback("install", "&cnv_amount=2.50&cnv_sub_1=adv")).await;
    assert_eq!(status, 200, "{body}");
    assert_wrapped(&body, true);
    assert_eq!(body["data"]["status"], "Success", "{body}");
    let conversion = body["data"]["conversionId"].as_str().unwrap().to_string();
    let got = t.receiver.deliveries(&Key::Conversion(conversion.clone()));
    assert_eq!(got.len(), 1, "the automatic callback was sent");
    let c = &got[0].json.as_ref().unwrap()["conversion"];
    assert_eq!(c["pubMemberId"], "m-link-1", "{c}");
    assert_eq!(c["pubClickId"], "pc-9", "{c}");
    assert_eq!(c["pubSub1"], "s1", "{c}");
    assert_eq!(c["pubSub5"], "mine", "no testing-tools flag: {c}");
    assert_eq!(c["trackSysConversionAmount"], "2.50", "{c}");
    assert_eq!(c["trackSysConversionSub1"], "adv", "{c}");

    let (status, _, body) = get(postback("install", "")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"]["status"], "Rejected",
        "a member completes once: {body}"
    );
    let unknown = uuid::Uuid::new_v4();
    let (status, _, body) = get(format!(
        "{root}/postback?gk_click_id={unknown}&event_id=install"
    ))
    .await;
    assert_eq!(status, 404, "{body}");
    let (status, _, body) = get(format!("{root}/postback?event_id=install")).await;
    assert_eq!(status, 400, "{body}");
    // The seeded click converts again and again through the tools, not through the postback.
    let seeded = sandbox::SEEDED_CLICK;
    let (_, _, first) = get(format!(
        "{root}/postback?gk_click_id={seeded}&event_id=signup"
    ))
    .await;
    let (_, _, second) = get(format!(
        "{root}/postback?gk_click_id={seeded}&event_id=signup"
    ))
    .await;
    assert_eq!(first["data"]["status"], "Success", "{first}");
    assert_eq!(second["data"]["status"], "Rejected", "{second}");
    let (status, _, body) = get(postback("%20install", "")).await;
    assert_eq!(status, 422, "an event id is taken as sent: {body}");
}
