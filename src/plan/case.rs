//! One case of one combination: its identity (offer, member, partner, event), its mode, its
//! parameters and checks, each rendered with the case's template context.

use std::collections::BTreeMap;
use std::sync::Arc;

use handlebars::Context;
use serde_json::Value;

use super::PublicPath;
use super::suite::{SuiteBuilder, pick};
use super::{Case, DEFAULT_TIMEOUT, Mode, PUB_CLICK_ID};
use crate::scenario::model::{CallbackSpec, CaseSpec, Defaults, Located, ScenarioFile};

/// The longest `pub_click_id` pitcrew's receiver files a postback under (its
/// `MAX_REFUSED_ID`): a longer one would make every postback of the case a stray.
const MAX_PUB_CLICK_ID: usize = crate::receiver::MAX_REFUSED_ID;

impl SuiteBuilder<'_> {
    /// Builds one case; `None` when it has an error (reported).
    pub(super) fn case(
        &mut self,
        spec: &Located<CaseSpec>,
        defaults: &Defaults,
        file: &ScenarioFile,
        context: &Context,
        name: String,
    ) -> Option<Case> {
        let before = self.errors();
        let c = &spec.value;
        let offer = match pick(&c.offer, &defaults.offer) {
            Some(v) => self
                .render(v, context)
                .map(|o| self.shared_values.texts.text(o)),
            None if self.options.default_offer.is_some() => self
                .options
                .default_offer
                .clone()
                .map(|o| self.shared_values.texts.text(o)),
            None => {
                self.error(
                    &spec.referenced,
                    "this case names no `offer`",
                    Some("set `offer:` on the case or under `defaults:`".into()),
                );
                None
            }
        };
        let member = match pick(&c.member, &defaults.member) {
            Some(v) => self.render(v, context),
            None => Some(format!("pitcrew-{}", crate::ids::new_uuid())),
        };
        let partner = pick(&c.partner, &defaults.partner).and_then(|v| self.render(v, context));
        let event = pick(&c.event, &defaults.event)
            .and_then(|v| self.render(v, context))
            .map(|e| self.shared_values.texts.text(e));
        let mode = self.mode(spec, defaults, context);
        let public = self.public_path(c, defaults, context, mode.as_ref());
        // An `event:` that is written but does not render is reported as such already.
        let unwritten = pick(&c.event, &defaults.event).is_none();
        if matches!(mode, Some(Mode::Generate | Mode::Click(_))) && event.is_none() && unwritten {
            self.error(
                &spec.referenced,
                "this case converts a click but names no `event`",
                Some("set `event:` (e.g. install, signup, purchase) on the case or under `defaults:`".into()),
            );
        }
        let public_path = public.unwrap_or_default();
        if let Some(redirect) = c.expect.click.as_ref().and_then(|e| e.redirect.as_ref())
            && public.is_some_and(|p| !p.link)
        {
            self.error(
                &redirect.referenced,
                "`redirect` checks a tracking link's redirect, and this case's click is not made through the link",
                Some("add `click: link`, or remove `redirect`".into()),
            );
        }
        let click_step = if public_path.link { "link" } else { "click" };
        let convert_step = if public_path.postback {
            "postback"
        } else {
            "conversion"
        };
        let needs: Vec<&str> = match &mode {
            Some(Mode::Generate) => vec![click_step, convert_step],
            Some(Mode::Click(_)) => vec![convert_step],
            Some(Mode::CallbackOnly { .. }) => vec!["resend"],
            None => Vec::new(),
        };
        self.needs_steps(&needs, &spec.referenced);
        let converts = matches!(mode, Some(Mode::Generate | Mode::Click(_)));
        let mut params = self.params(c, defaults, context, converts);
        self.pub_click_id(spec, public_path, &mut params);
        let params = self.shared_values.params.share(params);
        let deal_alone = deal_alone(c, defaults);
        let flag = self
            .flag(c, defaults, file, context, (mode.as_ref(), public_path))
            .map(|f| self.shared_values.texts.text(f));
        let schema = [&c.schema, &defaults.schema, &file.schema]
            .into_iter()
            .find_map(|s| s.as_ref().map(|s| s.value))
            .unwrap_or(true);
        let sandbox_faults = self.sandbox(spec, defaults);
        let script = self.script(spec, defaults);
        let timeout = match pick(&c.timeout, &defaults.timeout) {
            Some(t) => self.duration_in(t, context),
            None => Some(self.options.timeout.unwrap_or(DEFAULT_TIMEOUT)),
        };
        let settle = match c.expect.callback.as_ref().map(|c| &c.value) {
            Some(CallbackSpec::Some(e)) => e.settle.as_ref().map(|s| self.duration_in(s, context)),
            _ => None,
        };
        let (expect, steps) = self.shared_expectations(spec, mode.as_ref(), context, schema);
        if let (Some(timeout), Some(expect)) = (timeout, expect.as_deref()) {
            self.within_longer_than_timeout(c, expect, timeout);
        }
        if self.errors() > before {
            return None;
        }
        Some(Case {
            index: 0,
            origin: super::Origin::default(),
            attempt: 1,
            name: Arc::from(name),
            suite: Arc::from(""),
            file: Arc::from(""),
            line: spec.referenced.line(),
            tags: c.tags.clone(),
            offer: offer?,
            member: member?,
            partner,
            mode: mode?,
            public: public?,
            event,
            params,
            flag,
            sandbox_faults: sandbox_faults?,
            script: script?,
            timeout: timeout?,
            settle: match settle {
                Some(window) => Some(window?),
                None => None,
            },
            expect: expect?,
            steps: steps?,
            deal_alone,
        })
    }

    /// A case (or step) at `at` needs these steps of the target's profile.
    pub(super) fn needs_steps(&mut self, needs: &[&str], at: &serde_saphyr::Location) {
        for step in needs {
            if self.options.missing_steps.contains(step) {
                self.target_error(
                    at,
                    format!(
                        "this needs the `{step}` step, which target `{}` leaves out",
                        self.options.target_name
                    ),
                    Some(format!(
                        "add `steps.{step}` to the target in pitcrew.yaml, or run this case on another target"
                    )),
                );
            }
        }
    }

    /// Which of the tools' modes: `generate`, a click id, or a click and a conversion.
    fn mode(
        &mut self,
        spec: &Located<CaseSpec>,
        defaults: &Defaults,
        context: &Context,
    ) -> Option<Mode> {
        let c = &spec.value;
        let click = pick(&c.click, &defaults.click);
        let conversion = c.conversion.as_ref().and_then(|v| self.render(v, context));
        match (click, conversion) {
            (None, Some(_)) => {
                self.error(
                    &c.conversion.as_ref()?.referenced,
                    "`conversion:` needs the click id it belongs to",
                    Some("add `click: <click id>` to resend this conversion's callback".into()),
                );
                None
            }
            (Some(click), conversion) => match (self.render(click, context), conversion) {
                (Some(id), None) if id == "generate" || id == "link" => Some(Mode::Generate),
                (Some(id), Some(_)) if id == "generate" || id == "link" => {
                    self.error(
                        &c.conversion.as_ref()?.referenced,
                        format!("`conversion:` cannot be combined with `click: {id}`"),
                        Some("a generated click has no conversion yet: drop `conversion:`, or give the click id".into()),
                    );
                    None
                }
                (Some(id), Some(conversion)) => Some(Mode::CallbackOnly {
                    click: id,
                    conversion,
                }),
                (Some(id), None) => Some(Mode::Click(id)),
                (None, _) => None,
            },
            (None, None) => Some(Mode::Generate),
        }
    }

    /// `click: link` and `convert: postback`: which steps go through the public surfaces.
    fn public_path(
        &mut self,
        c: &CaseSpec,
        defaults: &Defaults,
        context: &Context,
        mode: Option<&Mode>,
    ) -> Option<PublicPath> {
        let link = pick(&c.click, &defaults.click)
            .and_then(|v| self.render(v, context))
            .is_some_and(|click| click == "link");
        let Some(convert) = pick(&c.convert, &defaults.convert) else {
            return Some(PublicPath {
                link,
                postback: false,
            });
        };
        let postback = match self.render(convert, context)?.as_str() {
            "tools" => false,
            "postback" => true,
            other => {
                let hint = crate::scenario::did_you_mean(other, ["tools", "postback"])
                    .map(|s| format!("did you mean `{s}`? "))
                    .unwrap_or_default();
                self.error(
                    &convert.referenced,
                    format!("`convert: {other}` is not a way to convert a click"),
                    Some(format!(
                        "{hint}`tools` (the Operation Tools, the default) or `postback` (the advertiser's postback)"
                    )),
                );
                return None;
            }
        };
        if postback && matches!(mode, Some(Mode::CallbackOnly { .. })) {
            self.error(
                &convert.referenced,
                "`convert: postback` converts a click, and this case resends an existing conversion's callback",
                Some("remove `conversion:`, or `convert:`".into()),
            );
            return None;
        }
        Some(PublicPath { link, postback })
    }

    /// The case's `pub_click_id`, by which its partner postbacks are matched: a fresh one for a
    /// tracking-link click that gives none; and the mistakes `postbacks` can make with it.
    fn pub_click_id(
        &mut self,
        spec: &Located<CaseSpec>,
        public_path: PublicPath,
        params: &mut BTreeMap<String, String>,
    ) {
        let c = &spec.value;
        if public_path.link && !params.contains_key(PUB_CLICK_ID) {
            // The partner postbacks are matched to the case by it.
            params.insert(
                PUB_CLICK_ID.into(),
                format!("pc-{}", crate::ids::new_uuid()),
            );
        }
        if let (Some(postbacks), Some(why)) = (&c.expect.postbacks, &self.options.no_postbacks) {
            self.target_error(
                &postbacks.referenced,
                format!("partner postbacks cannot be checked here: {why}"),
                Some("point `steps.callback_log.postback_url` at a logged postback's URL, or observe them `via: receiver` (docs/targets.md)".into()),
            );
        }
        if let Some(id) = params
            .get(PUB_CLICK_ID)
            .filter(|id| id.len() > MAX_PUB_CLICK_ID)
        {
            self.error(
                &spec.referenced,
                format!("`params.pub_click_id` is {} bytes long; partner postbacks are matched by it, and pitcrew's receiver takes one of at most {MAX_PUB_CLICK_ID}", id.len()),
                None,
            );
        }
        if let Some(postbacks) = &c.expect.postbacks
            && !params.contains_key(PUB_CLICK_ID)
        {
            self.error(
                &postbacks.referenced,
                "partner postbacks are matched to a case by its `pub_click_id`, and this case has none",
                Some("add `click: link` (it sends a fresh one), or set `params.pub_click_id`".into()),
            );
        }
    }

    /// The conversion's parameters: the defaults', then the case's (`null` removes one).
    fn params(
        &mut self,
        c: &CaseSpec,
        defaults: &Defaults,
        context: &Context,
        converts: bool,
    ) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        for (key, value) in defaults.params.iter().chain(c.params.iter()) {
            if key == "pub_sub_5" && converts {
                self.pub_sub_5_overwritten(value);
            }
            match self.render_value(value, context) {
                Some(Value::String(s)) => {
                    params.insert(key.clone(), s);
                }
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    params.insert(key.clone(), v.to_string());
                }
                Some(Value::Null) => {
                    params.remove(key);
                }
                Some(other) => self.error(
                    &value.referenced,
                    format!(
                        "parameter `{key}` must be a scalar, not {}",
                        crate::scenario::matcher::describe(&other)
                    ),
                    None,
                ),
                None => {}
            }
        }
        params
    }

    /// The testing-tools flag text to expect; `None` when the check is off.
    fn flag(
        &mut self,
        c: &CaseSpec,
        defaults: &Defaults,
        file: &ScenarioFile,
        context: &Context,
        (mode, public): (Option<&Mode>, PublicPath),
    ) -> Option<String> {
        let setting = c
            .flag
            .as_ref()
            .or(defaults.flag.as_ref())
            .or(file.flag.as_ref());
        let Some(setting) = setting else {
            // Off by default where the conversion may predate the tools, and for one the
            // advertiser's postback makes: it is real. (A link's click converted by the tools
            // is still the tools' conversion, flag and all.)
            return match mode {
                Some(Mode::CallbackOnly { .. }) => None,
                _ if public.postback => None,
                _ => Some(crate::TESTING_TOOLS_FLAG.to_string()),
            };
        };
        match self.render_value(setting, context) {
            Some(Value::Bool(false)) => None,
            Some(Value::Bool(true)) => Some(crate::TESTING_TOOLS_FLAG.to_string()),
            Some(Value::String(s)) => Some(s),
            Some(_) => {
                self.error(
                    &setting.referenced,
                    "`flag` takes false, true or the expected pubSub5 text",
                    None,
                );
                None
            }
            None => None,
        }
    }

    /// The case's expectations and steps, built once per mode and shared by every case of a
    /// matrix when they hold no template.
    #[allow(clippy::type_complexity)]
    fn shared_expectations(
        &mut self,
        spec: &Located<CaseSpec>,
        mode: Option<&Mode>,
        context: &Context,
        schema: bool,
    ) -> (Option<Arc<super::CaseExpect>>, Option<Arc<[super::Step]>>) {
        let kind = match mode {
            Some(Mode::Generate) => 0,
            Some(Mode::Click(_)) => 1,
            _ => 2,
        };
        if let Some((expect, steps)) = self.shared.get(&kind) {
            return (Some(expect.clone()), Some(steps.clone()));
        }
        let expect = self.expect(spec, mode, context, schema).map(Arc::new);
        let steps = self.steps(spec, mode, context, schema);
        if let (Some(e), Some(s)) = (&expect, &steps)
            && !self.expect_templated
        {
            self.shared.insert(kind, (e.clone(), s.clone()));
        }
        (expect, steps)
    }
}

/// True when the case's member, click or `pub_click_id` is rendered by `random` or `now`:
/// `--shard` cannot group by values no two CI jobs render alike.
fn deal_alone(c: &CaseSpec, defaults: &Defaults) -> bool {
    let volatile =
        |text: &str| text.contains("{{") && ["random", "now"].iter().any(|h| text.contains(h));
    let raw_pub_click = (c.params.get(PUB_CLICK_ID))
        .or_else(|| defaults.params.get(PUB_CLICK_ID))
        .and_then(|v| v.value.as_str());
    [
        pick(&c.member, &defaults.member).map(|m| m.value.as_str()),
        pick(&c.click, &defaults.click).map(|m| m.value.as_str()),
        raw_pub_click,
    ]
    .into_iter()
    .flatten()
    .any(volatile)
}
