//! A `pitcrew.yaml` target, checked and compiled: its profile, and how its callbacks are
//! observed. Every mistake is a diagnostic at its place in the file, like a scenario's.

use std::time::Duration;

use serde_json::Value;
use serde_saphyr::Location;
use std::collections::BTreeMap;

use super::profile::{Body, Extract, LogStep, Profile, Request, Step, placeholders};
use crate::delivery::Correlation;
use crate::delivery::Format;
use crate::project::{
    AuthHeaderSpec, CallbacksSpec, ExtractSpec, LogStepSpec, RequestSpec, SignatureSpec, StepSpec,
    TargetSpec,
};
use crate::receiver::credentials::{Credential, Signature, SignatureParts};
use crate::scenario::model::Located;
use crate::scenario::{ScenarioDiagnostic, SourceFile};

/// How a target's callbacks are observed.
#[derive(Debug, Clone)]
pub enum Observe {
    /// pitcrew's own receiver, listening at `listen` for the platform to post to.
    Receiver {
        listen: String,
        /// What a callback must hold to be taken; `None` when the target says `auth: none`.
        auth: Option<Vec<Credential>>,
        /// What a partner postback must hold instead, when the target says
        /// (`postback_auth_query`).
        postback_auth: Option<Vec<Credential>>,
    },
    /// A shared `pitcrew receive` service.
    Remote { url: String, token: Option<String> },
    /// The platform's callback log.
    Log,
}

/// A target ready to run against.
#[derive(Debug, Clone)]
pub struct Target {
    pub name: String,
    pub profile: Profile,
    pub observe: Observe,
    /// The secrets its configuration holds (header values from the environment, the auth
    /// secret, the receiver token), to mask.
    pub secrets: Vec<String>,
}

/// The variables each step's templates may use.
const STEP_VARIABLES: &[(&str, &[&str])] = &[
    ("click", &["offer", "member", "partner", "params"]),
    (
        "conversion",
        &["click", "event", "params", "offer", "member"],
    ),
    ("resend", &["click", "conversion"]),
    (
        "change_status",
        &["conversion", "click", "status", "reason"],
    ),
    ("callback_log", &["conversion", "click"]),
    ("link", &["offer", "member", "partner", "params"]),
    ("postback", &["click", "event", "params", "offer", "member"]),
];

struct Compiler<'a> {
    source: &'a SourceFile,
    /// `--secret K=V`, read as `{{env.K}}` before the environment.
    secrets: &'a [(String, String)],
    problems: Vec<ScenarioDiagnostic>,
    used_secrets: Vec<String>,
}

/// Compiles target `name` of the project at `source`.
pub fn compile(
    name: &str,
    spec: &Located<TargetSpec>,
    source: &SourceFile,
    secrets: &[(String, String)],
) -> Result<Target, Vec<ScenarioDiagnostic>> {
    let mut c = Compiler {
        source,
        secrets,
        problems: Vec::new(),
        used_secrets: Vec::new(),
    };
    let t = &spec.value;
    let base_url = c.env_text(&t.base_url);
    if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
        c.error(
            &t.base_url.referenced,
            format!("`base_url` must be an http(s) URL, not `{base_url}`"),
            Some("e.g. `https://api.acme.getgokart.ai/api/v1`".into()),
        );
    }
    let headers = t
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), c.env_secret(k, v)))
        .collect();
    let minute = t.minute.as_ref().map_or(Duration::from_secs(60), |m| {
        crate::duration::parse_duration(&m.value).unwrap_or_else(|e| {
            c.error(&m.referenced, e.to_string(), None);
            Duration::from_secs(60)
        })
    });
    let steps = &t.steps;
    let step = |c: &mut Compiler, name: &'static str, s: &Option<Located<StepSpec>>| {
        s.as_ref().map(|s| c.step(name, s))
    };
    let click = step(&mut c, "click", &steps.click);
    let conversion = step(&mut c, "conversion", &steps.conversion);
    let resend = step(&mut c, "resend", &steps.resend);
    let change_status = step(&mut c, "change_status", &steps.change_status);
    let link = step(&mut c, "link", &steps.link);
    let postback = step(&mut c, "postback", &steps.postback);
    let callback_log = steps.callback_log.as_ref().map(|s| c.log_step(s));
    let correlation = c.correlation(&t.callbacks);
    let callback_format = c.format(&t.callbacks);
    let states = c.states(t.states.as_ref());
    let callback_states = match &t.callbacks.state {
        // Said outright: the callbacks say no state (their `status` means something else).
        Some(none) if none.value.trim() == "none" => super::profile::CallbackStates {
            pointers: Vec::new(),
            required: false,
            states: states.clone(),
        },
        given => match c.pointer(given) {
            Some(pointer) => super::profile::CallbackStates {
                pointers: vec![pointer],
                required: true,
                states: states.clone(),
            },
            None => super::profile::CallbackStates {
                states: states.clone(),
                ..Default::default()
            },
        },
    };
    let observe = c.observe(
        &t.callbacks,
        (callback_log.is_some(), callback_format),
        &spec.referenced,
    );
    let rate = t.rate.as_ref().and_then(|r| match r.value.parse() {
        Ok(rate) => Some(rate),
        Err(e) => {
            c.error(
                &r.referenced,
                e,
                Some("e.g. `rate: 20/s` for a staging tenant".into()),
            );
            None
        }
    });
    if !c.problems.is_empty() {
        return Err(c.problems);
    }
    Ok(Target {
        name: name.to_string(),
        profile: Profile {
            rate,
            base_url,
            headers,
            sandbox: false,
            minute,
            default_offer: t.offer.as_ref().map(|o| o.value.clone()),
            click,
            conversion,
            link,
            postback,
            resend,
            change_status,
            callback_log,
            correlation,
            callback_format,
            states,
            callback_states,
        },
        observe,
        secrets: c.used_secrets,
    })
}

impl Compiler<'_> {
    /// `states:`: the platform's words for each conversion state, every word for one state.
    fn states(
        &mut self,
        spec: Option<&Located<BTreeMap<String, Vec<String>>>>,
    ) -> crate::platform::profile::States {
        let Some(spec) = spec else {
            return Default::default();
        };
        let known = crate::scenario::model::CONVERSION_STATES;
        let mut words: Vec<(&'static str, Vec<String>)> = Vec::new();
        let mut seen: Vec<(String, &str)> = Vec::new();
        for (state, list) in &spec.value {
            let Some(state) = known.iter().copied().find(|k| k == state) else {
                self.error(
                    &spec.referenced,
                    format!("`states:` names `{state}`, which is not a conversion state"),
                    Some(format!("the states are {}", known.join(", "))),
                );
                continue;
            };
            if list.is_empty() {
                self.error(
                    &spec.referenced,
                    format!("`states.{state}` lists no word"),
                    Some(format!("e.g. `{state}: [{}]`", state.to_lowercase())),
                );
            }
            for word in list {
                let lower = word.trim().to_lowercase();
                if let Some((_, other)) = seen.iter().find(|(w, _)| *w == lower) {
                    self.error(
                        &spec.referenced,
                        format!("`states:` gives the word `{word}` to both {other} and {state}"),
                        Some("a word stands for one state".into()),
                    );
                }
                seen.push((lower, state));
            }
            words.push((state, list.clone()));
        }
        crate::platform::profile::States::with(words)
    }

    fn error(&mut self, at: &Location, message: impl Into<String>, help: Option<String>) {
        self.problems
            .push(self.source.diagnostic(Some(at), message, help));
    }

    /// The value of `env.NAME` (or `--secret NAME=…`).
    fn env(&self, name: &str) -> Option<String> {
        self.secrets
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .or_else(|| std::env::var(name).ok())
    }

    /// `{{env.NAME}}` placeholders filled now; other placeholders are left for each call.
    fn env_text(&mut self, text: &Located<String>) -> String {
        let mut out = String::with_capacity(text.value.len());
        let mut rest = text.value.as_str();
        while let Some(start) = rest.find("{{") {
            let Some(len) = rest[start + 2..].find("}}") else {
                break;
            };
            out.push_str(&rest[..start]);
            let whole = &rest[start..start + 2 + len + 2];
            let name = rest[start + 2..start + 2 + len].trim();
            match name.strip_prefix("env.") {
                Some(var) => match self.env(var) {
                    Some(value) => {
                        if let Some((message, help)) = crate::mask::env_too_short(var, &value) {
                            self.error(&text.referenced, message, Some(help));
                        }
                        out.push_str(&value);
                    }
                    None => self.error(
                        &text.referenced,
                        format!("environment variable `{var}` is not set"),
                        Some(format!("export {var}=…, or pass `--secret {var}=…`")),
                    ),
                },
                None => out.push_str(whole),
            }
            rest = &rest[start + 2 + len + 2..];
        }
        out.push_str(rest);
        out
    }

    /// Like `env_text`; what came from the environment, or is the value of a field whose
    /// `name` looks secret (`X-Api-Key`, `token`), is kept as a secret to mask, unless it is
    /// a common word or a small number (masking `2` would hide every 2 in every report); a
    /// secret shorter than [`crate::mask::MIN_SECRET_CHARS`] is refused.
    fn env_secret(&mut self, name: &str, text: &Located<String>) -> String {
        let value = self.env_text(text);
        let secret_like = value != text.value
            || crate::mask::is_secret_name(name)
            || crate::mask::is_secret_name(&text.value);
        if !secret_like {
            return value;
        }
        match crate::mask::too_short_if_secret(&value) {
            Some(why) => self.error(
                &text.referenced,
                format!("`{name}` holds a secret too short to mask: {why}"),
                Some("use a longer secret (a platform's API token usually is)".into()),
            ),
            None if crate::mask::worth_masking(&value) => self.used_secrets.push(value.clone()),
            None => {}
        }
        value
    }

    /// Checks that `text` uses only `allowed` variables (and `env.*`).
    fn variables(&mut self, step: &str, text: &Located<String>, allowed: &[&str]) {
        for name in placeholders(&text.value) {
            let one_param = name
                .strip_prefix("params.")
                .is_some_and(|p| !p.trim().is_empty())
                && allowed.contains(&"params");
            if name.starts_with("env.") || allowed.contains(&name.as_str()) || one_param {
                continue;
            }
            let hint = crate::scenario::did_you_mean(&name, allowed.iter().copied())
                .map(|s| format!("did you mean `{{{{{s}}}}}`? "))
                .unwrap_or_default();
            self.error(
                &text.referenced,
                format!("`{{{{{name}}}}}` is not a variable of the `{step}` step"),
                Some(format!(
                    "{hint}its variables: {}{}, and env.NAME",
                    allowed.join(", "),
                    if allowed.contains(&"params") {
                        ", params.NAME"
                    } else {
                        ""
                    }
                )),
            );
        }
    }

    /// Where a step's answer keeps a value (`id:`, `state:`, …).
    fn extract(&mut self, e: &Option<Located<ExtractSpec>>) -> Option<Extract> {
        let e = e.as_ref()?;
        let located = |value: &str| Located {
            value: value.to_string(),
            referenced: e.referenced,
        };
        match &e.value {
            ExtractSpec::Pointer(p) => self.pointer(&Some(located(p))).map(Extract::Pointer),
            ExtractSpec::Header {
                header,
                query,
                regex,
            } => Some(Extract::Header {
                name: header.trim().to_string(),
                query: query.as_ref().map(|q| q.trim().to_string()),
                regex: match regex {
                    Some(regex) => Some(self.regex(regex, &e.referenced)?),
                    None => None,
                },
            }),
            ExtractSpec::Regex { regex } => self.regex(regex, &e.referenced).map(Extract::Regex),
        }
    }

    /// A regex of an answer's value, or a located mistake.
    fn regex(&mut self, regex: &str, at: &Location) -> Option<regex::Regex> {
        match regex::Regex::new(regex) {
            Ok(r) => Some(r),
            Err(err) => {
                self.error(
                    at,
                    format!("`{regex}` is not a regular expression: {err}"),
                    Some(
                        "its first capture group is the value, e.g. `conversion_id=(\\w+)`".into(),
                    ),
                );
                None
            }
        }
    }

    fn pointer(&mut self, p: &Option<Located<String>>) -> Option<String> {
        let p = p.as_ref()?;
        if !(p.value.is_empty() || p.value.starts_with('/')) {
            self.error(
                &p.referenced,
                format!("`{}` is not a JSON Pointer", p.value),
                Some(format!(
                    "a JSON Pointer (RFC 6901) starts with `/`, e.g. `/{}`",
                    p.value.replace('.', "/")
                )),
            );
        }
        Some(p.value.clone())
    }

    fn request(&mut self, step: &'static str, r: &RequestSpec) -> Request {
        let allowed = STEP_VARIABLES
            .iter()
            .find(|(s, _)| *s == step)
            .map_or(&[][..], |(_, v)| *v);
        let method = match r.method.value.to_ascii_uppercase().as_str() {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE") => {
                reqwest::Method::from_bytes(m.as_bytes()).unwrap_or(reqwest::Method::GET)
            }
            other => {
                self.error(
                    &r.method.referenced,
                    format!("`{other}` is not a method pitcrew sends"),
                    Some("GET, POST, PUT, PATCH or DELETE".into()),
                );
                reqwest::Method::GET
            }
        };
        self.variables(step, &r.path, allowed);
        // A path may hold a secret from the environment (a token in a whole URL): masked.
        let path = self.env_secret("path", &r.path);
        let pairs =
            |c: &mut Compiler, map: &std::collections::BTreeMap<String, Located<String>>| {
                map.iter()
                    .map(|(k, v)| {
                        c.variables(step, v, allowed);
                        (k.clone(), c.env_secret(k, v))
                    })
                    .collect::<Vec<_>>()
            };
        let query = pairs(self, &r.query);
        let headers = pairs(self, &r.headers);
        let body = match (&r.body, r.form.is_empty()) {
            (Some(body), false) => {
                self.error(
                    &body.referenced,
                    "a request has a JSON `body` or a `form`, not both",
                    None,
                );
                Body::None
            }
            (Some(body), true) => Body::Json(self.json(step, body, allowed)),
            (None, false) => Body::Form(pairs(self, &r.form)),
            (None, true) => Body::None,
        };
        Request {
            method,
            path,
            from_root: false,
            query,
            headers,
            body,
        }
    }

    /// A JSON body template: its strings checked and their `env.*` filled.
    fn json(&mut self, step: &'static str, body: &Located<Value>, allowed: &[&str]) -> Value {
        /// `key`: the name of the field `v` is the value of (a secret-named one is masked).
        fn walk(
            c: &mut Compiler,
            key: &str,
            v: &Value,
            at: &Location,
            step: &'static str,
            allowed: &[&str],
        ) -> Value {
            match v {
                Value::String(s) => {
                    let located = Located {
                        value: s.clone(),
                        referenced: *at,
                    };
                    c.variables(step, &located, allowed);
                    Value::String(c.env_secret(key, &located))
                }
                Value::Array(items) => Value::Array(
                    items
                        .iter()
                        .map(|i| walk(c, key, i, at, step, allowed))
                        .collect(),
                ),
                Value::Object(map) => Value::Object(
                    map.iter()
                        .map(|(k, v)| (k.clone(), walk(c, k, v, at, step, allowed)))
                        .collect(),
                ),
                other => other.clone(),
            }
        }
        walk(self, "", &body.value, &body.referenced, step, allowed)
    }

    fn step(&mut self, name: &'static str, spec: &Located<StepSpec>) -> Step {
        let s = &spec.value;
        for status in &s.ok {
            if !(100..600).contains(status) {
                self.error(
                    &spec.referenced,
                    format!("`ok` lists `{status}`, which is not an HTTP status"),
                    None,
                );
            }
        }
        let ok_when = s.ok_when.as_ref().and_then(|m| {
            crate::scenario::matcher::Matcher::parse(&m.value)
                .map_err(|e| {
                    self.error(
                        &m.referenced,
                        format!("`ok_when` is not a matcher: {e}"),
                        Some("e.g. `ok_when: { matches: \"^success=true\" }`".into()),
                    )
                })
                .ok()
        });
        Step {
            request: self.request(name, &s.request),
            ok: s.ok.clone(),
            ok_when,
            id: self.extract(&s.id),
            state: self.extract(&s.state),
            reason: self.extract(&s.reason),
            callback_id: self.extract(&s.callback_id),
            endpoint_status: self.pointer(&s.endpoint_status),
            endpoint_body: self.pointer(&s.endpoint_body),
            endpoint_headers: self.pointer(&s.endpoint_headers),
            endpoint_error: self.pointer(&s.endpoint_error),
        }
    }

    fn log_step(&mut self, spec: &Located<LogStepSpec>) -> LogStep {
        let s = &spec.value;
        let items = Some(s.items.clone());
        let payload = Some(s.payload.clone());
        LogStep {
            request: self.request("callback_log", &s.request),
            items: self.pointer(&items).unwrap_or_default(),
            payload: self.pointer(&payload).unwrap_or_default(),
            headers: self.pointer(&s.headers),
            endpoint_status: self.pointer(&s.endpoint_status),
            endpoint_body: self.pointer(&s.endpoint_body),
            error: self.pointer(&s.error),
            attempt: self.pointer(&s.attempt),
            sent_at: self.pointer(&s.sent_at),
            callback_id: self.pointer(&s.callback_id),
            attempt_id: self.pointer(&s.attempt_id),
            duration_ms: self.pointer(&s.duration_ms),
            postback_url: self.pointer(&s.postback_url),
        }
    }

    fn correlation(&mut self, c: &CallbacksSpec) -> Correlation {
        let mut correlation = Correlation::default();
        for (spec, field) in [
            (&c.conversion_id, &mut correlation.conversion_id),
            (&c.click_id, &mut correlation.click_id),
            (&c.callback_id, &mut correlation.callback_id),
        ] {
            if let Some(p) = self.pointer(spec) {
                *field = vec![p];
            }
        }
        correlation
    }

    /// `callbacks.format`.
    fn format(&mut self, c: &CallbacksSpec) -> Format {
        let Some(format) = &c.format else {
            return Format::default();
        };
        Format::parse(&format.value).unwrap_or_else(|| {
            self.error(
                &format.referenced,
                format!("`format: {}` is not a callback format", format.value),
                Some(Format::NAMES.join(", ")),
            );
            Format::default()
        })
    }

    /// A `name` + `secret` pair (`auth_header`, `auth_query`), its secret kept to mask.
    fn named_secret(&mut self, spec: &AuthHeaderSpec) -> (String, String) {
        let name = self.env_text(&spec.name).trim().to_string();
        if name.is_empty() {
            self.error(
                &spec.name.referenced,
                "the name is empty: every callback would be refused",
                Some(
                    "the header's or the query parameter's name, e.g. `X-Api-Token` or `token`"
                        .into(),
                ),
            );
        }
        let secret = self.env_secret("secret", &spec.secret);
        self.keep_secret(&spec.secret, &secret);
        (name, secret)
    }

    /// Keeps a credential's `secret` (written at `at`) to mask. One too short to mask was
    /// refused by [`Self::env_secret`]; one that is no secret at all (empty, `true`, `42`) is
    /// refused here: anyone could guess it.
    fn keep_secret(&mut self, at: &Located<String>, secret: &str) {
        if crate::mask::not_a_secret(secret) {
            self.error(
                &at.referenced,
                "a callback credential's secret is empty, a common word or a small number: anyone could forge it",
                Some("use the secret the platform is configured with".into()),
            );
        } else if crate::mask::too_short(secret).is_none()
            && !self.used_secrets.iter().any(|s| s == secret)
        {
            self.used_secrets.push(secret.to_string());
        }
    }

    fn signature(&mut self, spec: &Located<SignatureSpec>) -> Option<Signature> {
        let s = &spec.value;
        let secret = self.env_secret("secret", &s.secret);
        self.keep_secret(&s.secret, &secret);
        fn text(v: &Option<Located<String>>) -> Option<&str> {
            v.as_ref().map(|v| v.value.as_str())
        }
        let tolerance = s.tolerance.as_ref().and_then(|t| {
            crate::duration::parse_duration(&t.value)
                .map_err(|e| self.error(&t.referenced, e.to_string(), None))
                .ok()
        });
        let parts = SignatureParts {
            scheme: &s.scheme.value,
            secret,
            header: text(&s.header),
            over: text(&s.over),
            encoding: text(&s.encoding),
            prefix: text(&s.prefix),
            timestamp_header: text(&s.timestamp_header),
            tolerance,
        };
        match Signature::from_parts(parts) {
            Ok(signature) => Some(signature),
            Err(mistake) => {
                let at = match mistake.field {
                    "scheme" => Some(&s.scheme),
                    "header" => s.header.as_ref(),
                    "over" => s.over.as_ref(),
                    "encoding" => s.encoding.as_ref(),
                    "prefix" => s.prefix.as_ref(),
                    "timestamp_header" => s.timestamp_header.as_ref(),
                    _ => None,
                }
                .map_or(spec.referenced, |l| l.referenced);
                self.error(&at, mistake.message, Some(mistake.help));
                None
            }
        }
    }

    /// The credentials a callback must hold (`auth_header`, `auth_query`, `signature`), or
    /// `None` for `auth: none`; neither is a mistake where pitcrew takes callbacks itself.
    fn credentials(
        &mut self,
        c: &CallbacksSpec,
        format: Format,
        via_at: &Location,
    ) -> Option<Vec<Credential>> {
        let mut credentials = Vec::new();
        if let Some(h) = &c.auth_header {
            let (name, secret) = self.named_secret(h);
            credentials.push(Credential::Header { name, secret });
        }
        if let Some(q) = &c.auth_query {
            let (name, secret) = self.named_secret(q);
            credentials.push(Credential::Query { name, secret });
        }
        if let Some(spec) = &c.signature
            && let Some(signature) = self.signature(spec)
        {
            if let Err(why) = signature.covers(format) {
                self.error(&spec.referenced, why, None);
            }
            credentials.push(Credential::Signature(signature));
        }
        match (&c.auth, credentials.is_empty()) {
            (Some(auth), _) if auth.value.trim() != "none" => {
                self.error(
                    &auth.referenced,
                    format!("`auth: {}` is not a setting", auth.value),
                    Some("`auth: none` takes callbacks without credentials; otherwise give `auth_header`, `auth_query` or `signature`".into()),
                );
                Some(credentials)
            }
            (Some(auth), false) => {
                self.error(
                    &auth.referenced,
                    "`auth: none` beside a credential: callbacks would be checked and not",
                    Some("remove `auth: none`, or the credentials".into()),
                );
                Some(credentials)
            }
            (Some(_), true) => None,
            // A platform that sends several proves itself with all of them.
            (None, false) => Some(Credential::all(credentials).into_iter().collect()),
            (None, true) => {
                if c.signature.is_none()
                    && matches!(c.via.as_ref().map(|v| v.value.as_str()), Some("receiver"))
                {
                    self.error(
                        via_at,
                        "pitcrew's receiver would take any callback: the target gives no credential for them",
                        Some("give `auth_header: { name, secret }`, `auth_query: { name, secret }` or `signature: { scheme, secret }` as the platform sends them; or say `auth: none` to take callbacks without credentials (pitcrew warns on every run)".into()),
                    );
                }
                Some(credentials)
            }
        }
    }

    fn observe(
        &mut self,
        c: &CallbacksSpec,
        (has_log, format): (bool, Format),
        at: &Location,
    ) -> Observe {
        let via_at = c.via.as_ref().map_or(*at, |v| v.referenced);
        let auth = self.credentials(c, format, &via_at);
        let via = c.via.as_ref().map_or("log", |v| v.value.as_str());
        match via {
            "receiver" => {
                let Some(listen) = &c.listen else {
                    self.error(
                        &via_at,
                        "`via: receiver` needs `listen:`, the address the platform posts to",
                        Some("e.g. `listen: \"0.0.0.0:8787\"`".into()),
                    );
                    return Observe::Log;
                };
                let postback_auth = c.postback_auth_query.as_ref().map(|q| {
                    let (name, secret) = self.named_secret(q);
                    vec![Credential::Query { name, secret }]
                });
                Observe::Receiver {
                    listen: listen.value.clone(),
                    auth,
                    postback_auth,
                }
            }
            "remote" => {
                if let Some(at) = credential_given(c) {
                    self.error(
                        &at.referenced,
                        "under `via: remote`, callbacks are checked by the `pitcrew receive` service, not by this run",
                        Some("give the credential to the service (`--auth-header`, `--auth-query` or `--signature`) and remove it here".into()),
                    );
                }
                let Some(url) = &c.url else {
                    self.error(
                        &via_at,
                        "`via: remote` needs `url:`, the `pitcrew receive` service",
                        Some("e.g. `url: https://hooks.acme.dev`".into()),
                    );
                    return Observe::Log;
                };
                let token = c.token.as_ref().map(|t| self.env_secret("token", t));
                Observe::Remote {
                    url: self.env_text(url).trim_end_matches('/').to_string(),
                    token,
                }
            }
            "log" => {
                if let Some(at) = credential_given(c) {
                    self.error(
                        &at.referenced,
                        "callbacks read from the platform's log are not checked for credentials: the log holds none",
                        Some("observe callbacks `via: receiver` (pitcrew checks them) or `via: remote` (the service does), or remove the credential".into()),
                    );
                }
                if !has_log {
                    self.error(
                        &via_at,
                        "callbacks are read from the platform's log, but `steps.callback_log` is not there",
                        Some("add `steps.callback_log`, or observe callbacks `via: receiver` or `via: remote`".into()),
                    );
                }
                Observe::Log
            }
            other => {
                let hint = crate::scenario::did_you_mean(other, ["receiver", "remote", "log"])
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                self.error(
                    &via_at,
                    format!("`via: {other}` is not a way of observing callbacks"),
                    Some(format!("{hint}`receiver`, `remote` or `log`")),
                );
                Observe::Log
            }
        }
    }
}

/// Where the first credential a `callbacks:` gives is written, if it gives one.
fn credential_given(c: &CallbacksSpec) -> Option<&Located<String>> {
    [
        c.auth_header.as_ref().map(|h| &h.name),
        c.auth_query.as_ref().map(|q| &q.name),
        c.postback_auth_query.as_ref().map(|q| &q.name),
        c.signature.as_ref().map(|s| &s.value.scheme),
    ]
    .into_iter()
    .flatten()
    .next()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The secrets a target's values make: what a secret-named field or the environment holds,
    /// but not a value too short or common to be one (masking `2` would hide every 2).
    #[test]
    fn secret_named_fields_are_masked_but_not_small_values() {
        let text = r#"targets:
  t:
    base_url: "http://127.0.0.1:9/api"
    headers: { X-Api-Key: "literal-key-123", X-Auth-Version: "2", Accept: "application/json" }
    steps:
      click:
        request:
          method: POST
          path: /clicks
          body: { offer: "{{offer}}", password: "hunter2-abc", note: "plain words", auth: { token: "nested-tok-9" } }
        id: /id
      callback_log:
        request: { method: GET, path: "/log/{{conversion}}" }
        items: /items
        payload: /body
    callbacks: { via: log }
"#;
        let source = SourceFile::new("pitcrew.yaml", text);
        let project = crate::project::from_source(source).unwrap_or_else(|e| panic!("{e:?}"));
        let spec = &project.file.targets["t"];
        let target = compile(
            "t",
            spec,
            &project.source,
            &[("REGION".into(), "eu".into())],
        )
        .unwrap_or_else(|e| panic!("{e:#?}"));
        let mut secrets = target.secrets.clone();
        secrets.sort();
        assert_eq!(secrets, ["hunter2-abc", "literal-key-123", "nested-tok-9"]);
    }
}
