//! A case's expectations: the answers of the click, conversion and callback tools, and the
//! deliveries each part of the case must get.

use std::collections::BTreeMap;
use std::time::Duration;

use handlebars::Context;
use serde_json::Value;

use super::suite::SuiteBuilder;
use super::{
    AnswerChecks, AttemptCheck, CallbackCheck, CallbackExpect, CaseExpect, DEFAULT_NONE_WAIT,
    DEFAULT_WITHIN, DeliveryAnswerCheck, Mode, PayloadCheck, PostbackCheck, ResponseCheck, Written,
};
use crate::scenario::model::{
    CallbackSpec, CaseSpec, ConversionExpect, DeliveryResponseSpec, Located, PostbacksSpec,
    ResponseExpect,
};

/// True when any expectation or step of `spec` holds a template (so it may differ per case).
pub(super) fn templated(spec: &CaseSpec) -> bool {
    fn value(v: &Value) -> bool {
        match v {
            Value::String(s) => s.contains("{{"),
            Value::Array(items) => items.iter().any(value),
            Value::Object(map) => map.values().any(value),
            _ => false,
        }
    }
    fn lines(map: &BTreeMap<String, Located<Value>>) -> bool {
        map.values().any(|v| value(&v.value))
    }
    let answer = |r: Option<AnswerSpec>| {
        r.is_some_and(|r| {
            r.body.is_some_and(|b| value(&b.value))
                || r.redirect.is_some_and(|b| value(&b.value))
                || lines(r.json)
                || lines(r.headers)
        })
    };
    let text = |t: &Option<Located<String>>| t.as_ref().is_some_and(|t| t.value.contains("{{"));
    let callback = |c: &Option<Located<CallbackSpec>>| match c.as_ref().map(|c| &c.value) {
        Some(CallbackSpec::Some(c)) => {
            text(&c.within)
                || text(&c.settle)
                || c.attempts
                    .as_ref()
                    .is_some_and(|a| a.value.iter().any(|a| text(&a.value.after)))
                || c.response.as_ref().is_some_and(|r| text(&r.within))
                || lines(&c.payload)
                || lines(&c.headers)
                || c.attempts.as_ref().is_some_and(|a| {
                    a.value.iter().any(|a| {
                        [&a.value.status, &a.value.body]
                            .into_iter()
                            .flatten()
                            .any(|v| value(&v.value))
                    })
                })
                || c.response.as_ref().is_some_and(|r| {
                    [&r.status, &r.body]
                        .into_iter()
                        .flatten()
                        .any(|v| value(&v.value))
                })
        }
        _ => false,
    };
    let e = &spec.expect;
    let postbacks = match e.postbacks.as_ref().map(|p| &p.value) {
        Some(PostbacksSpec::Some(p)) => lines(&p.query) || text(&p.within),
        _ => false,
    };
    postbacks
        || callback(&e.callback)
        || answer(e.click.as_ref().map(AnswerSpec::from))
        || answer(e.conversion.as_ref().map(AnswerSpec::from))
        || answer(e.callback_response.as_ref().map(AnswerSpec::from))
        || answer(e.resend.as_ref().map(AnswerSpec::from))
        || spec.then.iter().any(|step| {
            let s = &step.value;
            text(&s.change_status)
                || text(&s.reason)
                || text(&s.wait)
                || callback(&s.expect.callback)
                || answer(s.expect.callback_response.as_ref().map(AnswerSpec::from))
        })
}

/// The parts of an answer expectation that every answer has.
#[derive(Clone, Copy)]
pub(super) struct AnswerSpec<'a> {
    body: Option<&'a Located<Value>>,
    json: &'a BTreeMap<String, Located<Value>>,
    headers: &'a BTreeMap<String, Located<Value>>,
    /// A tracking link's `Location` (`expect.click.redirect`).
    redirect: Option<&'a Located<Value>>,
}

impl<'a> From<&'a ResponseExpect> for AnswerSpec<'a> {
    fn from(r: &'a ResponseExpect) -> Self {
        AnswerSpec {
            body: r.body.as_ref(),
            json: &r.json,
            headers: &r.headers,
            redirect: r.redirect.as_ref(),
        }
    }
}

impl<'a> From<&'a ConversionExpect> for AnswerSpec<'a> {
    fn from(r: &'a ConversionExpect) -> Self {
        AnswerSpec {
            body: r.body.as_ref(),
            json: &r.json,
            headers: &r.headers,
            redirect: None,
        }
    }
}

impl SuiteBuilder<'_> {
    /// What the first part of a case expects.
    pub(super) fn expect(
        &mut self,
        spec: &Located<CaseSpec>,
        mode: Option<&Mode>,
        context: &Context,
        schema: bool,
    ) -> Option<CaseExpect> {
        let c = &spec.value;
        let at = self.at(&spec.referenced);
        let e = &c.expect;
        let status_at = |r: Option<&Located<u16>>| r.map(|s| self.at(&s.referenced));
        let written = Written {
            click_status: status_at(e.click.as_ref().and_then(|r| r.status.as_ref())),
            conversion_status: status_at(e.conversion.as_ref().and_then(|r| r.status.as_ref())),
            conversion_state: e
                .conversion
                .as_ref()
                .and_then(|r| r.state.as_ref())
                .map(|s| self.at(&s.referenced)),
            resend_status: status_at(e.resend.as_ref().and_then(|r| r.status.as_ref())),
        };
        let click_status = e
            .click
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .map(|s| s.value);
        let conversion_status = e
            .conversion
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .map(|s| s.value);
        let conversion_state = match e.conversion.as_ref().and_then(|r| r.state.as_ref()) {
            None => Some(None),
            Some(state) => self.conversion_state(state).map(Some),
        };
        let resend_status = e
            .resend
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .map(|s| s.value);
        let resend = self.answer(e.resend.as_ref().map(AnswerSpec::from), context);
        if let (Some(r), false) = (&e.resend, matches!(mode, Some(Mode::CallbackOnly { .. }))) {
            let at = r.status.as_ref().map_or(spec.referenced, |s| s.referenced);
            self.error(
                &at,
                "`expect.resend` checks the callback tool's answer, which only a callback-only case (`click:` and `conversion:`, no `event:`) calls",
                Some("to resend after a conversion, add a `then:` step `- resend: true`".into()),
            );
        }
        // The tool refusing is what the case expects: there is no endpoint answer to check, and
        // no callback may follow.
        let resend_refused = resend_status.filter(|s| !(200..300).contains(s));
        if let (Some(_), Some(r)) = (resend_refused, &e.callback_response) {
            let at = r.status.as_ref().map_or(spec.referenced, |s| s.referenced);
            self.error(
                &at,
                "`callback_response` checks the endpoint's answer to a resent callback, but this case expects the callback tool to refuse (`expect.resend.status`), so nothing is sent",
                Some("remove one of the two".into()),
            );
        }
        // A refusal told by its status alone is what a wrong `resend` path answers too.
        if let (Some(status), Some(r)) = (resend_refused, &e.resend)
            && r.body.is_none()
            && r.json.is_empty()
        {
            let at = r.status.as_ref().map_or(spec.referenced, |s| s.referenced);
            self.warn(
                &at,
                format!("`resend.status: {status}` alone would also hold for a `resend` request that went to a wrong path"),
                Some("check why it refused too, e.g. `json: { messages.0: { contains: \"not found\" } }`".into()),
            );
        }
        let misplaced = [e.callback_response.as_ref(), e.resend.as_ref()]
            .into_iter()
            .chain(
                c.then
                    .iter()
                    .map(|s| s.value.expect.callback_response.as_ref()),
            )
            .flatten()
            .find_map(|r| r.redirect.as_ref());
        if let Some(redirect) = misplaced {
            self.error(
                &redirect.referenced,
                "`redirect` is for `expect.click` (a tracking link's answer)",
                None,
            );
        }
        let click = self.answer(e.click.as_ref().map(AnswerSpec::from), context);
        let conversion = self.answer(e.conversion.as_ref().map(AnswerSpec::from), context);
        let default = match mode {
            Some(Mode::CallbackOnly { .. }) if resend_refused.is_some() => CallbackCheck::None {
                wait: Duration::ZERO,
                at: at.clone(),
            },
            Some(Mode::CallbackOnly { .. }) => CallbackCheck::Unchecked,
            _ if conversion_status.is_none_or(|s| (200..300).contains(&s)) => {
                one_callback(schema, &at)
            }
            _ => CallbackCheck::None {
                wait: Duration::ZERO,
                at: at.clone(),
            },
        };
        let callback = self.callback(e.callback.as_ref(), default, context, schema);
        let refused = e
            .conversion
            .as_ref()
            .and_then(|r| r.status.as_ref())
            .filter(|s| !(200..300).contains(&s.value));
        if let (Some(why), Some(status), false) = (
            &self.options.no_click_log,
            refused,
            matches!(callback, Some(CallbackCheck::Unchecked)),
        ) {
            self.target_error(
                &status.referenced,
                format!("a refused conversion's callbacks are looked for by its click, but {why}"),
                Some("give `steps.callback_log` a way to read by click (`{{click}}` in its query), or observe callbacks through a receiver".into()),
            );
        }
        let callback_response = match (&e.callback_response, mode) {
            (Some(r), _) => self.response_check(r, context, &at).map(Some),
            (None, Some(Mode::CallbackOnly { .. })) if resend_refused.is_none() => {
                Some(Some(ResponseCheck {
                    status: None,
                    answer: AnswerChecks::default(),
                    at: at.clone(),
                }))
            }
            (None, _) => Some(None),
        };
        let postbacks = self.postbacks(e.postbacks.as_ref(), context);
        Some(CaseExpect {
            postbacks: postbacks?,
            at,
            written,
            click_status,
            click: click?,
            conversion_status,
            conversion_state: conversion_state?,
            conversion: conversion?,
            callback: callback?,
            callback_response: callback_response?,
            resend_status,
            resend: resend?,
        })
    }

    /// The callback tool's answer as a check (`at`: of the case or step that expects it).
    pub(super) fn response_check(
        &mut self,
        r: &ResponseExpect,
        context: &Context,
        at: &str,
    ) -> Option<ResponseCheck> {
        Some(ResponseCheck {
            status: r.status.as_ref().map(|s| s.value),
            answer: self.answer(Some(AnswerSpec::from(r)), context)?,
            at: r
                .status
                .as_ref()
                .map_or_else(|| at.to_string(), |s| self.at(&s.referenced)),
        })
    }

    /// `callback:` as a check, or `default` when it is not written.
    pub(super) fn callback(
        &mut self,
        spec: Option<&Located<CallbackSpec>>,
        default: CallbackCheck,
        context: &Context,
        schema: bool,
    ) -> Option<CallbackCheck> {
        let Some(spec) = spec else {
            return Some(default);
        };
        let at = self.at(&spec.referenced);
        let expect = match &spec.value {
            CallbackSpec::None => {
                return Some(CallbackCheck::None {
                    wait: DEFAULT_NONE_WAIT,
                    at,
                });
            }
            CallbackSpec::Some(expect) => expect,
        };
        let before = self.errors();
        let within = match &expect.within {
            Some(w) => self.duration_in(w, context),
            None => Some(DEFAULT_WITHIN),
        };
        let count = expect.count.as_ref().map_or(1, |c| c.value);
        let payload = self.checks(&expect.payload, context, false);
        let headers = self.checks(&expect.headers, context, true);
        if let (Some(why), Some((_, first))) = (
            &self.options.no_callback_headers,
            expect.headers.iter().next(),
        ) {
            self.target_error(
                &first.referenced,
                format!("`headers:` checks a callback's request headers, but {why}"),
                Some("observe callbacks through pitcrew's receiver or `pitcrew receive`, or remove the check".into()),
            );
        }
        let attempts = expect
            .attempts
            .as_ref()
            .map(|a| self.attempts(a, count, context));
        let response = expect
            .response
            .as_ref()
            .map(|r| self.delivery_response(r, context));
        let schema = expect.schema.as_ref().map_or(schema, |s| s.value);
        if self.errors() > before {
            return None;
        }
        let within = within?;
        let count_at = expect.count.as_ref().map(|c| self.at(&c.referenced));
        if count == 0 && attempts.is_none() {
            return Some(CallbackCheck::None {
                wait: within,
                at: count_at.unwrap_or(at),
            });
        }
        Some(CallbackCheck::Expect(Box::new(CallbackExpect {
            at,
            count_at,
            within,
            count,
            payload,
            headers,
            attempts: attempts.flatten(),
            response: response.flatten(),
            schema,
        })))
    }

    /// `attempts:`: every delivery in order; as many accepted ones as `count` says.
    fn attempts(
        &mut self,
        list: &Located<Vec<Located<crate::scenario::model::AttemptSpec>>>,
        count: u32,
        context: &Context,
    ) -> Option<Vec<AttemptCheck>> {
        let before = self.errors();
        let mut checks = Vec::with_capacity(list.value.len());
        for (i, entry) in list.value.iter().enumerate() {
            let a = &entry.value;
            let status = a.status.as_ref().and_then(|s| self.answer_line(s, context));
            let body = a.body.as_ref().and_then(|b| self.answer_line(b, context));
            let after = a.after.as_ref().and_then(|t| self.duration_in(t, context));
            if i == 0
                && let Some(after) = &a.after
            {
                self.error(
                    &after.referenced,
                    "the first attempt has no attempt before it: `after` starts at the second",
                    None,
                );
            }
            checks.push(AttemptCheck {
                status,
                body,
                after,
                at: self.at(&entry.referenced),
            });
        }
        if list.value.is_empty() {
            self.error(
                &list.referenced,
                "`attempts` lists no delivery",
                Some("list each delivery, e.g. `[{ status: 503 }, { status: 200, after: 2m }]`, or remove `attempts`".into()),
            );
        } else if (count as usize) > list.value.len() {
            self.error(
                &list.referenced,
                format!(
                    "`count: {count}` accepted deliveries cannot fit in {} listed attempt(s)",
                    list.value.len()
                ),
                Some("`attempts` lists every delivery, accepted or not".into()),
            );
        }
        (self.errors() == before).then_some(checks)
    }

    /// `response:`: the endpoint's answer to each accepted delivery.
    fn delivery_response(
        &mut self,
        r: &DeliveryResponseSpec,
        context: &Context,
    ) -> Option<DeliveryAnswerCheck> {
        let before = self.errors();
        let status = r.status.as_ref().and_then(|s| self.answer_line(s, context));
        let body = r.body.as_ref().and_then(|b| self.answer_line(b, context));
        let within = r
            .within
            .as_ref()
            .and_then(|w| Some((self.duration_in(w, context)?, self.at(&w.referenced))));
        (self.errors() == before).then_some(DeliveryAnswerCheck {
            status,
            body,
            within,
        })
    }

    fn answer_line(&mut self, value: &Located<Value>, context: &Context) -> Option<PayloadCheck> {
        Some(PayloadCheck {
            path: String::new(),
            matcher: self.matcher(value, context)?,
            at: self.at(&value.referenced),
        })
    }

    /// `postbacks:` as a check (`None` unwritten: none may arrive).
    fn postbacks(
        &mut self,
        spec: Option<&Located<PostbacksSpec>>,
        context: &Context,
    ) -> Option<Option<Box<PostbackCheck>>> {
        let Some(spec) = spec else {
            return Some(None);
        };
        let at = self.at(&spec.referenced);
        let PostbacksSpec::Some(e) = &spec.value else {
            return Some(Some(Box::new(PostbackCheck {
                at,
                written: true,
                ..PostbackCheck::default()
            })));
        };
        let before = self.errors();
        let within = match &e.within {
            Some(w) => self.duration_in(w, context),
            None => Some(DEFAULT_WITHIN),
        };
        let query = self.checks(&e.query, context, false);
        if self.errors() > before {
            return None;
        }
        Some(Some(Box::new(PostbackCheck {
            count: e.count.as_ref().map_or(1, |c| c.value),
            query,
            within: within?,
            at,
            written: true,
        })))
    }

    /// `path: matcher` lines (header names lowercased when `headers`).
    fn checks(
        &mut self,
        lines: &BTreeMap<String, Located<Value>>,
        context: &Context,
        headers: bool,
    ) -> Vec<PayloadCheck> {
        let mut checks = Vec::with_capacity(lines.len());
        for (path, value) in lines {
            if let Some(matcher) = self.matcher(value, context) {
                checks.push(PayloadCheck {
                    path: if headers {
                        path.to_ascii_lowercase()
                    } else {
                        path.clone()
                    },
                    matcher,
                    at: self.at(&value.referenced),
                });
            }
        }
        checks
    }

    /// A conversion state, spelled as the platform spells it.
    pub(super) fn conversion_state(&mut self, state: &Located<String>) -> Option<String> {
        use crate::scenario::model::CONVERSION_STATES;
        if let Some(known) = CONVERSION_STATES
            .iter()
            .find(|s| s.eq_ignore_ascii_case(&state.value))
        {
            return Some(known.to_string());
        }
        let hint = crate::scenario::did_you_mean(&state.value, CONVERSION_STATES.iter().copied())
            .map(|s| format!("did you mean `{s}`? "))
            .unwrap_or_default();
        self.error(
            &state.referenced,
            format!("`{}` is not a conversion state", state.value),
            Some(format!(
                "{hint}a conversion is {}",
                CONVERSION_STATES.join(", ")
            )),
        );
        None
    }

    fn answer(&mut self, spec: Option<AnswerSpec>, context: &Context) -> Option<AnswerChecks> {
        let Some(spec) = spec else {
            return Some(AnswerChecks::default());
        };
        let before = self.errors();
        let body = spec.body.and_then(|b| self.answer_line(b, context));
        let json = self.checks(spec.json, context, false);
        let mut headers = self.checks(spec.headers, context, true);
        // The redirect is the answer's `Location`.
        if let Some(redirect) = spec.redirect {
            let location = BTreeMap::from([("location".to_string(), redirect.clone())]);
            headers.extend(self.checks(&location, context, true));
        }
        (self.errors() == before).then_some(AnswerChecks {
            body,
            json,
            headers,
        })
    }
}

/// The default when a part makes the platform call back: exactly one accepted delivery within
/// 10 s, with the flag and schema checks (`at`: of the case or step it is the default of).
pub(super) fn one_callback(schema: bool, at: &str) -> CallbackCheck {
    CallbackCheck::Expect(Box::new(CallbackExpect {
        at: at.to_string(),
        count_at: None,
        within: DEFAULT_WITHIN,
        count: 1,
        payload: Vec::new(),
        headers: Vec::new(),
        attempts: None,
        response: None,
        schema,
    }))
}
