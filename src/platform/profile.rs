//! A target profile, ready to drive the HTTP platform: each step's request template and the JSON
//! Pointers into its answer. The sandbox API is the built-in profile; a `pitcrew.yaml` target
//! compiles into the same thing (`from_spec`), checked when it is loaded.
//!
//! Templates hold `{{name}}` placeholders, filled per call from the step's variables
//! (`offer`, `member`, `partner`, `click`, `event`, `conversion`, `status`, `reason`), and
//! `{{env.NAME}}`, filled when the profile is loaded. In a JSON body or a query, a value that is
//! exactly one placeholder of a variable the call does not have is left out; `"{{params}}"` is
//! the params object and `"{{faults}}"` the sandbox's faults.

use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::delivery::Correlation;

/// A profile: where a platform lives and how each step is asked.
#[derive(Debug, Clone)]
pub struct Profile {
    /// e.g. `http://127.0.0.1:41234/api/v1`
    pub base_url: String,
    /// Headers sent with every call (values already rendered).
    pub headers: Vec<(String, String)>,
    /// Whether the target understands the sandbox's `faults`.
    pub sandbox: bool,
    /// How long one platform minute lasts.
    pub minute: Duration,
    /// The offer of cases that name none.
    pub default_offer: Option<String>,
    pub click: Option<Step>,
    pub conversion: Option<Step>,
    /// The offer's tracking link, as a click step (`click: link`).
    pub link: Option<Step>,
    /// The advertiser's postback, as a conversion step (`convert: postback`).
    pub postback: Option<Step>,
    pub resend: Option<Step>,
    pub change_status: Option<Step>,
    pub callback_log: Option<LogStep>,
    /// Where the ids sit in a callback body.
    pub correlation: Correlation,
    /// How a callback carries its payload (a JSON body, a form, the query).
    pub callback_format: crate::delivery::Format,
    /// The platform's words for conversion states.
    pub states: States,
    /// Where a callback says its conversion's state.
    pub callback_states: CallbackStates,
    /// How many requests a second (or minute) pitcrew may send the target (`rate:`, `--rate`).
    pub rate: Option<super::pace::Rate>,
}

/// Where a callback says its conversion's state, and the platform's words for the states: a
/// payload check on that field compares states (`Rejected` holds for `declined`), and a word
/// that stands for no state errors the case.
#[derive(Debug, Clone)]
pub struct CallbackStates {
    /// JSON Pointers into the payload, first match wins.
    pub pointers: Vec<String>,
    /// The target named the pointer (`callbacks.state`): a callback without a state there
    /// cannot be judged.
    pub required: bool,
    pub states: States,
}

impl Default for CallbackStates {
    /// GoKart's schema v1 and its legacy spelling, then a top-level `status` or `state` (a
    /// postback's usual names): a state a callback says is never left unread by default.
    fn default() -> Self {
        CallbackStates {
            pointers: [
                "/conversion/status",
                "/Conversion/Status",
                "/status",
                "/state",
            ]
            .map(String::from)
            .to_vec(),
            required: false,
            states: States::default(),
        }
    }
}

impl CallbackStates {
    /// The field of `payload` that holds the state, if any.
    pub fn field<'v>(&self, payload: &'v Value) -> Option<&'v Value> {
        self.pointers
            .iter()
            .find_map(|p| payload.pointer(p).filter(|v| !v.is_null()))
    }

    /// The state a callback's payload says, or why it cannot be read: its word stands for no
    /// state, or (the target named the pointer) it has none. `Ok(None)`: it says none.
    pub fn state_of(&self, payload: &Value) -> Result<Option<&'static str>, String> {
        let Some(field) = self.field(payload) else {
            return match self.required {
                true => Err(format!(
                    "the callback holds no conversion state at `{}` (the target's `callbacks.state`)",
                    self.pointers.join("` or `")
                )),
                false => Ok(None),
            };
        };
        let word = match field {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        match self.states.state_of(&word) {
            Some(state) => Ok(Some(state)),
            None => Err(format!(
                "the callback says the conversion state `{}`, which no state stands for \
                 (the target's words: {}); add it to the target's `states:`",
                crate::check::callback::truncate(&word, 60),
                self.states.described()
            )),
        }
    }
}

/// A platform's status words for pitcrew's conversion states (`states:` in a target): by
/// default each state's own name. A state named in no list keeps its own name.
#[derive(Debug, Clone)]
pub struct States(Vec<(&'static str, Vec<String>)>);

impl Default for States {
    fn default() -> Self {
        States(
            crate::scenario::model::CONVERSION_STATES
                .iter()
                .map(|s| (*s, vec![s.to_string()]))
                .collect(),
        )
    }
}

impl States {
    /// The states with these words (a state not given keeps its own name).
    pub fn with(words: impl IntoIterator<Item = (&'static str, Vec<String>)>) -> States {
        let mut states = States::default();
        for (state, list) in words {
            if let Some(slot) = states.0.iter_mut().find(|(s, _)| *s == state) {
                slot.1 = list;
            }
        }
        states
    }

    /// The state a platform's word stands for (case and spaces aside), if any.
    pub fn state_of(&self, word: &str) -> Option<&'static str> {
        let word = word.trim();
        self.0
            .iter()
            .find(|(_, words)| words.iter().any(|w| w.eq_ignore_ascii_case(word)))
            .map(|(state, _)| *state)
    }

    /// The word pitcrew sends for `state` (its first word).
    pub fn word_for(&self, state: &str) -> String {
        self.0
            .iter()
            .find(|(s, _)| s.eq_ignore_ascii_case(state))
            .and_then(|(_, words)| words.first().cloned())
            .unwrap_or_else(|| state.to_string())
    }

    /// `Success: approved; Pending: pending, hold; Rejected: declined`, for messages.
    pub fn described(&self) -> String {
        self.0
            .iter()
            .map(|(state, words)| format!("{state}: {}", words.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// Where a step's answer keeps a value: a JSON Pointer into its body, a header (or one query
/// parameter of the URL in it, such as a redirect's `Location`, or a regex's first capture
/// over it), or the first capture of a regex over the body's text
/// (`success=true; conversion_id=(\w+);`).
#[derive(Debug, Clone)]
pub enum Extract {
    Pointer(String),
    Header {
        name: String,
        query: Option<String>,
        regex: Option<regex::Regex>,
    },
    Regex(regex::Regex),
}

/// The first capture of `regex` in `text` (the whole match when it captures nothing).
fn capture(regex: &regex::Regex, text: &str) -> Option<Value> {
    let captures = regex.captures(text)?;
    let found = captures.get(1).or_else(|| captures.get(0))?;
    Some(Value::String(found.as_str().to_string()))
}

impl Extract {
    /// A JSON Pointer.
    pub fn pointer(p: &str) -> Extract {
        Extract::Pointer(p.to_string())
    }

    /// The value in `answer`'s headers and body (`None` when absent or null).
    pub fn read(&self, headers: &[(String, String)], body: &Value) -> Option<Value> {
        match self {
            Extract::Pointer(p) => body.pointer(p).filter(|v| !v.is_null()).cloned(),
            Extract::Header { name, query, regex } => {
                let value = headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.as_str())?;
                let text = match query {
                    None => value.to_string(),
                    Some(param) => {
                        let query = value.split_once('?').map_or("", |(_, q)| q);
                        let query = query.split('#').next().unwrap_or_default();
                        form_urlencoded::parse(query.as_bytes())
                            .find(|(k, _)| k == param.as_str())
                            .map(|(_, v)| v.into_owned())?
                    }
                };
                match regex {
                    Some(regex) => capture(regex, &text),
                    None => (!text.is_empty()).then_some(Value::String(text)),
                }
            }
            Extract::Regex(regex) => match body {
                Value::String(s) => capture(regex, s),
                other => capture(regex, &other.to_string()),
            },
        }
    }

    /// Where it reads, for messages: `` `/data/status` ``, `` header `Location` (its `click_id`) ``.
    pub fn describe(&self) -> String {
        match self {
            Extract::Pointer(p) => format!("`{p}`"),
            Extract::Header { name, query, regex } => {
                let mut text = format!("header `{name}`");
                if let Some(q) = query {
                    text.push_str(&format!(" (its `{q}` parameter)"));
                }
                if let Some(r) = regex {
                    text.push_str(&format!(" (regex `{}`)", r.as_str()));
                }
                text
            }
            Extract::Regex(r) => format!("regex `{}`", r.as_str()),
        }
    }
}

/// One step's request and where its answer keeps what a run needs.
#[derive(Debug, Clone, Default)]
pub struct Step {
    pub request: Request,
    /// The statuses that mean done (empty: any 2xx).
    pub ok: Vec<u16>,
    /// What the body must also match for the step to be done (a platform that answers 200
    /// to a failure: `ok_when: { matches: "^success=true" }`).
    pub ok_when: Option<crate::scenario::matcher::Matcher>,
    pub id: Option<Extract>,
    pub state: Option<Extract>,
    pub reason: Option<Extract>,
    pub callback_id: Option<Extract>,
    pub endpoint_status: Option<String>,
    pub endpoint_body: Option<String>,
    pub endpoint_headers: Option<String>,
    pub endpoint_error: Option<String>,
}

impl Step {
    /// The statuses that mean done, as a report shows them: `201`, `200 or 204`, `2xx`.
    pub fn ok_text(&self) -> String {
        let statuses = match self.ok.as_slice() {
            [] => "2xx".into(),
            list => list
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(" or "),
        };
        match &self.ok_when {
            None => statuses,
            Some(m) => format!(
                "{statuses} with a body that is {} (the step's `ok_when`)",
                crate::check::matcher::show_expected(m)
            ),
        }
    }

    /// True when an answer of `status` with `body` means the step was done.
    pub fn done(&self, status: u16, body: &Value) -> bool {
        let status_ok = if self.ok.is_empty() {
            (200..300).contains(&status)
        } else {
            self.ok.contains(&status)
        };
        status_ok
            && self
                .ok_when
                .as_ref()
                .is_none_or(|m| crate::check::matcher::holds(m, Some(body)))
    }
}

/// The callback log step.
#[derive(Debug, Clone, Default)]
pub struct LogStep {
    pub request: Request,
    pub items: String,
    pub payload: String,
    /// Within an item: the request headers as sent.
    pub headers: Option<String>,
    pub endpoint_status: Option<String>,
    pub endpoint_body: Option<String>,
    pub error: Option<String>,
    pub attempt: Option<String>,
    pub sent_at: Option<String>,
    pub callback_id: Option<String>,
    pub attempt_id: Option<String>,
    pub duration_ms: Option<String>,
    /// Within an item: a partner postback's URL; an item that has one is a postback.
    pub postback_url: Option<String>,
}

/// An HTTP request template.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: reqwest::Method,
    /// Appended to the base URL, or to its host alone when `from_root`.
    pub path: String,
    /// The path is from the host's root, not the base URL (the sandbox's `/postback`).
    pub from_root: bool,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            method: reqwest::Method::GET,
            path: String::new(),
            from_root: false,
            query: Vec::new(),
            headers: Vec::new(),
            body: Body::None,
        }
    }
}

/// A request's body template.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Json(Value),
    Form(Vec<(String, String)>),
}

/// One call's variables.
#[derive(Debug, Default)]
pub struct Vars<'a> {
    pub text: Vec<(&'static str, &'a str)>,
    pub params: Option<&'a std::collections::BTreeMap<String, String>>,
    pub faults: Option<&'a Value>,
}

impl<'a> Vars<'a> {
    /// Adds a variable when it has a value.
    pub fn with(mut self, name: &'static str, value: Option<&'a str>) -> Self {
        if let Some(v) = value {
            self.text.push((name, v));
        }
        self
    }

    /// A variable's value; `params.NAME` is one parameter of the case.
    fn get(&self, name: &str) -> Option<&'a str> {
        if let Some(param) = name.strip_prefix("params.") {
            return self.params?.get(param.trim()).map(String::as_str);
        }
        self.text.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }
}

/// The names between `{{` and `}}` in `text`, trimmed.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        names.push(rest[start + 2..start + 2 + len].trim().to_string());
        rest = &rest[start + 2 + len + 2..];
    }
    names
}

/// `text` with every `{{name}}` replaced by what `value` makes of the name (trimmed), or the
/// first error it gives.
fn substitute<E>(
    text: &str,
    mut value: impl FnMut(&str) -> Result<String, E>,
) -> Result<String, E> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start + 2..].find("}}") else {
            break;
        };
        out.push_str(&rest[..start]);
        out.push_str(&value(rest[start + 2..start + 2 + len].trim())?);
        rest = &rest[start + 2 + len + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `text` with every placeholder filled (an absent variable becomes empty text).
pub fn fill(text: &str, vars: &Vars) -> String {
    if !text.contains("{{") {
        return text.to_string();
    }
    let filled = substitute(text, |name| {
        Ok::<_, std::convert::Infallible>(vars.get(name).unwrap_or_default().to_string())
    });
    filled.unwrap_or_else(|never| match never {})
}

/// A path with every placeholder filled with its value as `encode` writes it, or the name of
/// the first variable the call does not have (an empty segment would change the path's sense).
pub fn fill_path(
    text: &str,
    vars: &Vars,
    encode: impl Fn(&str) -> String,
) -> Result<String, String> {
    substitute(text, |name| {
        vars.get(name).map(&encode).ok_or_else(|| name.to_string())
    })
}

/// The variable a text is exactly a placeholder of (`"{{params}}"` → `params`).
fn sole_placeholder(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{")).then_some(inner.trim())
}

/// A JSON body template filled: `"{{params}}"` is the params object, `"{{faults}}"` the faults,
/// and a value that is only an absent variable is left out.
pub fn fill_json(template: &Value, vars: &Vars) -> Option<Value> {
    match template {
        Value::String(s) => match sole_placeholder(s) {
            Some("params") => vars.params.map(|p| json!(p)),
            Some("faults") => vars.faults.cloned(),
            Some(name) => vars.get(name).map(|v| Value::String(v.to_string())),
            None => Some(Value::String(fill(s, vars))),
        },
        Value::Object(map) => Some(Value::Object(
            map.iter()
                .filter_map(|(k, v)| Some((k.clone(), fill_json(v, vars)?)))
                .collect::<Map<String, Value>>(),
        )),
        Value::Array(items) => Some(Value::Array(
            items.iter().filter_map(|v| fill_json(v, vars)).collect(),
        )),
        other => Some(other.clone()),
    }
}

/// Pairs filled, leaving out those whose value is only an absent variable; a pair whose value
/// is exactly `{{params}}` is every parameter of the case, each as a pair of its own.
pub fn fill_pairs(pairs: &[(String, String)], vars: &Vars) -> Vec<(String, String)> {
    let mut filled = Vec::with_capacity(pairs.len());
    for (k, v) in pairs {
        match sole_placeholder(v) {
            Some("params") => filled.extend(
                (vars.params.into_iter().flatten())
                    .map(|(name, value)| (name.clone(), value.clone())),
            ),
            // The sandbox's faults, as JSON text (its public calls take them so).
            Some("faults") => filled.extend(vars.faults.map(|f| (k.clone(), f.to_string()))),
            Some(name) if vars.get(name).is_none() => {}
            _ => filled.push((k.clone(), fill(v, vars))),
        }
    }
    filled
}

/// The sandbox's public path (DESIGN §5), as the built-in profile's `link` and `postback`
/// steps: public, so the tools' token is not needed; the postback is at the host's root.
fn public_steps() -> (Step, Step) {
    let extract = |p: &str| Some(Extract::pointer(p));
    let link = Step {
        request: Request {
            path: "/offer-link/redirect/{{offer}}".into(),
            query: vec![
                ("pub_member_id".into(), "{{member}}".into()),
                ("params".into(), "{{params}}".into()),
                ("faults".into(), "{{faults}}".into()),
            ],
            ..Request::default()
        },
        ok: vec![302],
        // The click id is where the offer's advertiser_url put `{gk_click_id}`: the
        // UUID in the Location, whatever its parameter's name.
        id: Some(Extract::Header {
            name: "location".into(),
            query: None,
            regex: regex::Regex::new(
                "([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})",
            )
            .ok(),
        }),
        ..Step::default()
    };
    let postback = Step {
        request: Request {
            path: "/postback".into(),
            from_root: true,
            query: vec![
                ("gk_click_id".into(), "{{click}}".into()),
                ("event_id".into(), "{{event}}".into()),
                ("params".into(), "{{params}}".into()),
                ("faults".into(), "{{faults}}".into()),
            ],
            ..Request::default()
        },
        ok: vec![200],
        id: extract("/data/conversionId"),
        state: extract("/data/status"),
        reason: extract("/data/rejectionReason"),
        callback_id: extract("/data/callback/callbackId"),
        ..Step::default()
    };
    (link, postback)
}

/// A request of the sandbox API.
fn sandbox_request(method: reqwest::Method, path: &str, body: Value) -> Request {
    Request {
        method,
        path: path.into(),
        body: Body::Json(body),
        ..Request::default()
    }
}

impl Profile {
    /// The sandbox API of DESIGN §5 at `base_url`: the built-in profile.
    pub fn sandbox(base_url: String) -> Profile {
        use reqwest::Method;
        let pointer = |p: &str| Some(p.to_string());
        let extract = |p: &str| Some(Extract::pointer(p));
        let (link, postback) = public_steps();
        Profile {
            rate: None,
            base_url,
            headers: Vec::new(),
            sandbox: true,
            minute: Duration::from_secs(60),
            default_offer: Some(crate::sandbox::DEMO_OFFER.to_string()),
            click: Some(Step {
                request: sandbox_request(
                    Method::POST,
                    "/tools/clicks",
                    json!({"offerId": "{{offer}}", "publisherMemberId": "{{member}}", "partnerId": "{{partner}}"}),
                ),
                ok: vec![201],
                id: extract("/data/clickId"),
                ..Step::default()
            }),
            conversion: Some(Step {
                request: sandbox_request(
                    Method::POST,
                    "/tools/conversions",
                    json!({"clickId": "{{click}}", "eventId": "{{event}}", "params": "{{params}}", "faults": "{{faults}}"}),
                ),
                ok: vec![201],
                id: extract("/data/conversionId"),
                state: extract("/data/status"),
                reason: extract("/data/rejectionReason"),
                callback_id: extract("/data/callback/callbackId"),
                ..Step::default()
            }),
            resend: Some(Step {
                request: sandbox_request(
                    Method::POST,
                    "/tools/callbacks",
                    json!({"clickId": "{{click}}", "conversionId": "{{conversion}}"}),
                ),
                ok: vec![200],
                callback_id: extract("/data/callbackId"),
                endpoint_status: pointer("/data/response/status"),
                endpoint_body: pointer("/data/response/body"),
                endpoint_headers: pointer("/data/response/headers"),
                endpoint_error: pointer("/data/error"),
                ..Step::default()
            }),
            change_status: Some(Step {
                request: sandbox_request(
                    Method::PATCH,
                    "/conversions/{{conversion}}",
                    json!({"status": "{{status}}", "rejectionReason": "{{reason}}"}),
                ),
                ok: vec![200],
                state: extract("/data/status"),
                callback_id: extract("/data/callback/callbackId"),
                ..Step::default()
            }),
            link: Some(link),
            postback: Some(postback),
            callback_log: Some(LogStep {
                request: Request {
                    path: "/conversion-callbacks".into(),
                    query: vec![
                        ("conversionId".into(), "{{conversion}}".into()),
                        ("clickId".into(), "{{click}}".into()),
                    ],
                    ..Request::default()
                },
                items: "/data".into(),
                // The sandbox's log keeps no request headers.
                headers: None,
                payload: "/note".into(),
                endpoint_status: pointer("/status"),
                endpoint_body: pointer("/responseBody"),
                error: pointer("/error"),
                attempt: pointer("/attempt"),
                sent_at: pointer("/sentAt"),
                callback_id: pointer("/callbackId"),
                attempt_id: pointer("/id"),
                duration_ms: pointer("/durationMs"),
                postback_url: pointer("/url"),
            }),
            correlation: Correlation::default(),
            callback_format: Default::default(),
            callback_states: CallbackStates::default(),
            states: States::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_fill_and_absent_sole_values_are_left_out() {
        let params = [("pub_sub_1".to_string(), "a".to_string())].into();
        let vars = Vars {
            params: Some(&params),
            ..Vars::default()
        }
        .with("click", Some("c1"))
        .with("partner", None);
        let body = json!({"clickId": "{{click}}", "partnerId": "{{partner}}", "params": "{{params}}", "note": "x-{{ click }}-{{partner}}"});
        assert_eq!(
            fill_json(&body, &vars),
            Some(json!({"clickId": "c1", "params": {"pub_sub_1": "a"}, "note": "x-c1-"}))
        );
        let query = vec![
            ("conversionId".to_string(), "{{conversion}}".to_string()),
            ("clickId".to_string(), "{{click}}".to_string()),
        ];
        assert_eq!(
            fill_pairs(&query, &vars),
            [("clickId".to_string(), "c1".to_string())]
        );
        assert_eq!(placeholders("/a/{{x}}/{{ env.Y }}"), ["x", "env.Y"]);
    }

    /// A path is filled with encoded values, and a variable the call does not have is named
    /// rather than left as an empty segment; `{{params.NAME}}` and `{{params}}` in a query.
    #[test]
    fn paths_never_take_an_empty_placeholder_and_params_fill_queries() {
        let params: std::collections::BTreeMap<String, String> = [
            ("sub".to_string(), "a b".to_string()),
            ("n".to_string(), "1".to_string()),
        ]
        .into();
        let vars = Vars {
            params: Some(&params),
            ..Vars::default()
        }
        .with("click", Some("c/1"));
        let encode = |v: &str| v.replace('/', "%2F").replace(' ', "%20");
        assert_eq!(
            fill_path("/clicks/{{click}}/{{params.sub}}", &vars, encode).as_deref(),
            Ok("/clicks/c%2F1/a%20b")
        );
        assert_eq!(
            fill_path("/conversions/{{conversion}}/log", &vars, encode),
            Err("conversion".to_string())
        );
        let pairs = [
            ("all".to_string(), "{{params}}".to_string()),
            ("one".to_string(), "{{params.n}}".to_string()),
            ("gone".to_string(), "{{conversion}}".to_string()),
        ];
        assert_eq!(
            fill_pairs(&pairs, &vars),
            [
                ("n".to_string(), "1".to_string()),
                ("sub".to_string(), "a b".to_string()),
                ("one".to_string(), "1".to_string())
            ]
        );
    }
}
