//! `pitcrew receive`: the receiver as a service many runs share (DESIGN §6): the callback
//! endpoint under `/callbacks`, the API under `/api`, a store, retention and limits.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::scenarios::SecretPair;
use super::{CliError, Outcome, exit, say};
use crate::delivery::Correlation;
use crate::receiver::credentials::Credential;
use crate::receiver::{PgStore, Receiver, ReceiverConfig, SqliteStore, Store};

#[derive(Debug, Args)]
pub struct ReceiveArgs {
    /// Address to listen on, e.g. `0.0.0.0:8787`.
    #[arg(long, default_value = "127.0.0.1:8787")]
    pub listen: String,
    /// The header and secret every callback must carry, e.g. `X-Api-Token=s3cret`
    /// (repeatable: one per partner).
    #[arg(long = "auth-header", value_name = "NAME=SECRET", value_parser = SecretPair,
          required_unless_present_any = ["auth_query", "signature"])]
    pub auth_headers: Vec<(String, String)>,
    /// A query parameter and the token every callback must carry in it, e.g. `token=s3cret`
    /// (repeatable; kept as `***` in the store).
    #[arg(long = "auth-query", value_name = "NAME=SECRET", value_parser = SecretPair)]
    pub auth_query: Vec<(String, String)>,
    /// A query parameter and the token every partner postback (`/postbacks/{pub_click_id}…`)
    /// must carry in it instead of the callbacks' credentials, e.g. `token=s3cret` (repeatable).
    #[arg(long = "postback-auth-query", value_name = "NAME=SECRET", value_parser = SecretPair)]
    pub postback_auth_query: Vec<(String, String)>,
    /// A signature every callback must carry, as `key=value` pairs separated by commas, with
    /// the keys of a target's `signature:`: `scheme=standard-webhooks,secret=whsec_…`, or
    /// `scheme=hmac-sha256,header=X-Signature,over=query,encoding=hex,secret=…` (repeatable).
    #[arg(long, value_name = "SPEC", value_parser = SignatureArg)]
    pub signature: Vec<crate::receiver::credentials::Signature>,
    /// How callbacks carry their payload: `json` (a JSON body), `form` (a form-encoded body)
    /// or `query` (the query string of a GET).
    #[arg(long, value_name = "json|form|query", default_value = "json", value_parser = parse_format)]
    pub format: crate::delivery::Format,
    /// The API's bearer token (runs send it as `Authorization: Bearer TOKEN`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "PITCREW_RECEIVER_TOKEN",
        hide_env_values = true
    )]
    pub api_token: String,
    /// `memory` (the default); `sqlite:PATH` to keep every callback across restarts; or
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` for several replicas behind a load
    /// balancer sharing one database (schema migrated at start; the URL, which may hold a
    /// password, also from PITCREW_RECEIVER_STORE).
    #[arg(
        long,
        default_value = "memory",
        value_name = "memory|sqlite:PATH|postgres://…",
        env = "PITCREW_RECEIVER_STORE",
        hide_env_values = true
    )]
    pub store: String,
    /// Forget callbacks older than this, e.g. `24h`.
    #[arg(long, value_name = "DUR", default_value = "24h", value_parser = parse_keep)]
    pub keep: Duration,
    /// The largest callback body taken, in KiB (larger ones are answered 413).
    #[arg(long, value_name = "KIB", default_value_t = 1024)]
    pub body_limit_kib: usize,
    /// Connections served at once (a flood cannot take every file descriptor): when all are
    /// taken, a new one takes the slot of a client stalled for over a second, else it is closed.
    #[arg(long, value_name = "N", default_value_t = 4096)]
    pub max_connections: usize,
    /// A client must send its request head within this long, e.g. `10s` (a stalled or
    /// slowloris client is dropped then).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_keep)]
    pub header_timeout: Duration,
    /// A client must send a request body within this long of its head, e.g. `10s`, and after
    /// its first second at 1 KiB/s or faster (a body that falls behind is answered 400).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_keep)]
    pub body_timeout: Duration,
    /// Where the conversion id sits in a callback body, as a JSON Pointer (repeatable: the
    /// first found wins; default GoKart's `/conversion/conversionId` and its legacy spelling).
    #[arg(long = "conversion-id", value_name = "POINTER")]
    pub conversion_id: Vec<String>,
    /// Where the click id sits (default `/conversion/clickId`).
    #[arg(long = "click-id", value_name = "POINTER")]
    pub click_id: Vec<String>,
    /// Where the callback record's id sits (default `/id`).
    #[arg(long = "callback-id", value_name = "POINTER")]
    pub callback_id: Vec<String>,
}

fn parse_format(text: &str) -> Result<crate::delivery::Format, String> {
    crate::delivery::Format::parse(text)
        .ok_or_else(|| format!("expected {}", crate::delivery::Format::NAMES.join(", ")))
}

/// `--signature`, whose value holds a secret: a mistake in it is told without the value.
#[derive(Clone)]
struct SignatureArg;

impl clap::builder::TypedValueParser for SignatureArg {
    type Value = crate::receiver::credentials::Signature;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Self::Value, clap::Error> {
        parse_signature(&value.to_string_lossy()).map_err(|e| {
            clap::Error::raw(
                clap::error::ErrorKind::ValueValidation,
                format!("a value for '--signature <SPEC>' is not valid: {e}\n"),
            )
            .with_cmd(cmd)
        })
    }
}

/// `--signature scheme=…,secret=…,…`.
fn parse_signature(text: &str) -> Result<crate::receiver::credentials::Signature, String> {
    use crate::receiver::credentials::{Signature, SignatureParts};
    let mut parts = SignatureParts::default();
    let mut tolerance = None;
    for pair in text.split(',') {
        let (key, value) = pair
            .split_once('=')
            .ok_or("expected key=value pairs separated by commas (scheme=…,secret=…)")?;
        match key.trim() {
            "scheme" => parts.scheme = value,
            "secret" => parts.secret = value.to_string(),
            "header" => parts.header = Some(value),
            "over" => parts.over = Some(value),
            "encoding" => parts.encoding = Some(value),
            "prefix" => parts.prefix = Some(value),
            "timestamp_header" => parts.timestamp_header = Some(value),
            "tolerance" => {
                tolerance = Some(crate::duration::parse_duration(value).map_err(|e| e.to_string())?)
            }
            // Not echoed: a comma in the secret would put part of it here.
            _ => {
                return Err(
                    "a key is not one of a signature's: scheme, secret, header, over, encoding, prefix, timestamp_header, tolerance (a secret may not hold a comma here)".into(),
                );
            }
        }
    }
    if let Some(why) = crate::mask::too_short(&parts.secret) {
        return Err(format!("`secret`: {why}"));
    }
    parts.tolerance = tolerance;
    Signature::from_parts(parts).map_err(|m| format!("{}; {}", m.message, m.help))
}

fn parse_keep(text: &str) -> Result<Duration, crate::duration::DurationError> {
    crate::duration::parse_duration(text)
}

/// How long a stopping receiver lets the requests in flight finish.
const DRAIN: Duration = Duration::from_secs(10);

/// `pitcrew receive`: serves until Ctrl-C or SIGTERM.
pub fn receive(args: ReceiveArgs) -> Outcome {
    if let Some(why) = crate::mask::too_short(&args.api_token) {
        return Err(CliError::Usage(format!(
            "--api-token (or PITCREW_RECEIVER_TOKEN): {why}"
        )));
    }
    crate::mask::register(&args.api_token);
    for credential in credentials(&args) {
        for secret in credential.secrets() {
            crate::mask::register(secret);
        }
    }
    for (_, secret) in &args.postback_auth_query {
        crate::mask::register(secret);
    }
    for signature in &args.signature {
        if let Err(why) = signature.covers(args.format) {
            return Err(CliError::Usage(format!("--signature: {why}")));
        }
    }
    let postgres = ["postgres://", "postgresql://"]
        .iter()
        .any(|scheme| args.store.starts_with(scheme));
    let store = match args.store.as_str() {
        "memory" => None,
        _ if postgres => None,
        other => match other.strip_prefix("sqlite:") {
            Some(path) if !path.is_empty() => {
                let store = SqliteStore::open(&PathBuf::from(path))
                    .map_err(|e| CliError::Usage(e.to_string()))?;
                Some(Store::Sqlite(Arc::new(store)))
            }
            _ => {
                return Err(CliError::Usage(format!(
                    "--store `{}`: give `memory`, `sqlite:PATH` or `postgres://USER@HOST:PORT/DATABASE`",
                    crate::mask::mask(other)
                )));
            }
        },
    };
    let mut correlation = Correlation::default();
    for (given, field) in [
        (&args.conversion_id, &mut correlation.conversion_id),
        (&args.click_id, &mut correlation.click_id),
        (&args.callback_id, &mut correlation.callback_id),
    ] {
        if let Some(bad) = given.iter().find(|p| !p.starts_with('/')) {
            return Err(CliError::Usage(format!(
                "`{bad}` is not a JSON Pointer: it starts with `/`, e.g. `/event/id`"
            )));
        }
        if !given.is_empty() {
            *field = given.clone();
        }
    }
    let config = ReceiverConfig {
        correlation,
        auth: Some(credentials(&args)),
        // Without their own token, postbacks prove themselves as callbacks do.
        postback_auth: (!args.postback_auth_query.is_empty()).then(|| {
            (args.postback_auth_query.iter())
                .map(|(name, secret)| Credential::Query {
                    name: name.clone(),
                    secret: secret.clone(),
                })
                .collect()
        }),
        format: args.format,
        api_token: Some(args.api_token.clone()),
        store,
        body_limit: args.body_limit_kib.saturating_mul(1024).max(1024),
    };
    let (runtime, mut signals) = super::runtime_and_signals()?;
    runtime.block_on(async move {
        let shutdown = CancellationToken::new();
        let mut config = config;
        if postgres {
            let store = PgStore::open(&args.store)
                .await
                .map_err(|e| CliError::Infrastructure(e.to_string()))?;
            config.store = Some(Store::Postgres(Arc::new(store)));
        }
        let receiver = Receiver::new(config);
        // What the replicas took before this one started; then what they take, as they do.
        receiver
            .refresh()
            .await
            .map_err(|e| CliError::Infrastructure(e.to_string()))?;
        tokio::spawn(receiver.clone().follow(shutdown.clone()));
        let listener = TcpListener::bind(&args.listen).await.map_err(|e| {
            CliError::Infrastructure(format!("cannot listen on {}: {e}", args.listen))
        })?;
        let limits = crate::serve::Limits {
            header_timeout: args.header_timeout,
            body_timeout: args.body_timeout,
            max_connections: args.max_connections.max(1),
        };
        let addr = listener.local_addr().map_err(|e| {
            CliError::Infrastructure(format!("cannot listen on {}: {e}", args.listen))
        })?;
        let app = crate::receiver::http::router(receiver.clone());
        let served = tokio::spawn(crate::serve::serve(listener, app, shutdown.clone(), limits));
        let keep = args.keep;
        let retention = receiver.clone();
        tokio::spawn(async move {
            let every = (keep / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
            loop {
                tokio::time::sleep(every).await;
                let keep = chrono::Duration::from_std(keep).unwrap_or(chrono::Duration::MAX);
                retention.retain(chrono::Utc::now() - keep).await;
            }
        });
        say(&format!(
            "pitcrew receive: callbacks at http://{addr}/callbacks, API at http://{addr}/api"
        ));
        say(&format!(
            "pitcrew receive: {} callback(s) kept from before; press Ctrl-C to stop",
            receiver.kept()
        ));
        signals.next().await;
        // New connections are refused; what is being answered is finished (a long poll is
        // cut after DRAIN: its run asks another replica, or this one once it is back).
        shutdown.cancel();
        let _ = tokio::time::timeout(DRAIN, served).await;
        Ok(exit::PASSED)
    })
}

/// Every credential the receiver takes: any one of them lets a callback in.
fn credentials(args: &ReceiveArgs) -> Vec<Credential> {
    let headers = args
        .auth_headers
        .iter()
        .map(|(name, secret)| Credential::Header {
            name: name.clone(),
            secret: secret.clone(),
        });
    let queries = args
        .auth_query
        .iter()
        .map(|(name, secret)| Credential::Query {
            name: name.clone(),
            secret: secret.clone(),
        });
    let signatures = args.signature.iter().cloned().map(Credential::Signature);
    headers.chain(queries).chain(signatures).collect()
}
