//! Handlebars templates in scenario values, strict: an unknown variable is an error, not "".
//!
//! Context: `vars`, `matrix`, `env`, `case.name`, `case.index`, `run.id`; helpers `uuid`,
//! `now`, `random`, `default`.

use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// A strict handlebars registry with pitcrew's helpers, and every template it has compiled.
///
/// A matrix renders the same few templates for each of its cases: each is compiled once
/// (registered under its own text) and rendered from then on, instead of parsed per case.
pub struct Templates {
    registry: RefCell<Handlebars<'static>>,
    /// Templates that did not compile, with the reason.
    broken: RefCell<HashMap<String, String>>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// A registry in strict mode, without HTML escaping.
    pub fn new() -> Self {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper("uuid", Box::new(uuid_helper));
        registry.register_helper("now", Box::new(now_helper));
        registry.register_helper("random", Box::new(random_helper));
        registry.register_helper("default", Box::new(default_helper));
        Templates {
            registry: RefCell::new(registry),
            broken: RefCell::new(HashMap::new()),
        }
    }

    /// Renders `text` against `context`; text without `{{` is returned as is.
    ///
    /// The context is built once per case and reused for every value, so that no render
    /// serializes it again.
    pub fn render(&self, text: &str, context: &Context) -> Result<String, String> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        if let Some(reason) = self.broken.borrow().get(text) {
            return Err(reason.clone());
        }
        if !self.registry.borrow().has_template(text) {
            let compiled = self
                .registry
                .borrow_mut()
                .register_template_string(text, text);
            if let Err(e) = compiled {
                let reason = unparsable(text, &e);
                self.broken
                    .borrow_mut()
                    .insert(text.to_owned(), reason.clone());
                return Err(reason);
            }
        }
        let mut rendered = self
            .registry
            .borrow()
            .render_with_context(text, context)
            .map_err(|e| explain(&e, text, context.data()))?;
        // handlebars renders into an 8 KiB buffer; kept as is, 100,000 cases would hold GiBs.
        rendered.shrink_to_fit();
        Ok(rendered)
    }
}

/// The helpers a template may call.
pub const HELPER_NAMES: &[&str] = &["uuid", "now", "random", "default"];
const HELPERS: &str =
    "uuid, now \"FORMAT\", random LO HI | random \"A\" \"B\", default VALUE \"FALLBACK\"";

/// Why a template does not compile, in one line.
fn unparsable(text: &str, error: &impl std::fmt::Display) -> String {
    if text.matches("{{").count() != text.matches("}}").count() {
        format!("invalid template `{text}`: a `{{{{` is not closed by `}}}}`")
    } else {
        let reason = error.to_string();
        let reason = reason.lines().next().unwrap_or_default();
        format!("invalid template `{text}`: {reason}")
    }
}

fn explain(error: &RenderError, text: &str, context: &Value) -> String {
    match error.reason() {
        RenderErrorReason::TemplateError(e) => unparsable(text, e),
        RenderErrorReason::MissingVariable(Some(path)) => {
            if let Some(name) = path.strip_prefix("env.") {
                return format!(
                    "environment variable `{name}` is not set (or write `{{{{default env.{name} \"fallback\"}}}}`)"
                );
            }
            if let Some(key) = path.strip_prefix("matrix.") {
                let defined: Vec<&str> = match context.get("matrix") {
                    Some(Value::Object(m)) if !m.is_empty() => {
                        m.keys().map(String::as_str).collect()
                    }
                    _ => return format!("`matrix.{key}` is used, but this case has no `matrix:`"),
                };
                let hint = crate::scenario::did_you_mean(key, defined.iter().copied())
                    .map(|s| format!(" (did you mean `matrix.{s}`?)"))
                    .unwrap_or_default();
                return format!(
                    "matrix key `{key}` is not defined by this case's `matrix:`{hint}; defined: {}",
                    defined.join(", ")
                );
            }
            let known = known_variables(context);
            let candidates = known
                .iter()
                .map(String::as_str)
                .chain(HELPER_NAMES.iter().copied());
            let hint = crate::scenario::did_you_mean(path, candidates)
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!(
                "unknown template variable `{path}`{hint}; known: {}, env.NAME, and helpers {HELPERS}",
                known.join(", ")
            )
        }
        RenderErrorReason::HelperNotFound(name) => {
            let hint = crate::scenario::did_you_mean(name, HELPER_NAMES.iter().copied())
                .map(|s| format!(" (did you mean `{s}`?)"))
                .unwrap_or_default();
            format!("unknown template helper `{name}`{hint}; helpers are {HELPERS}")
        }
        _ => format!("template error: {}", error.reason()),
    }
}

fn known_variables(context: &Value) -> Vec<String> {
    let mut names = Vec::new();
    if let Value::Object(top) = context {
        for (section, inner) in top {
            if section == "env" {
                continue;
            }
            if let Value::Object(fields) = inner {
                for field in fields.keys() {
                    names.push(format!("{section}.{field}"));
                }
            }
        }
    }
    names
}

fn uuid_helper(
    _: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    out.write(&uuid::Uuid::new_v4().to_string())?;
    Ok(())
}

/// `{{now}}` is RFC 3339 UTC; `{{now "%Y-%m-%d"}}` takes a strftime format.
fn now_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let now = chrono::Utc::now();
    let text = match h.param(0).and_then(|p| p.value().as_str()) {
        Some(format) => {
            use std::fmt::Write;
            let mut s = String::new();
            write!(s, "{}", now.format(format)).map_err(|_| {
                RenderErrorReason::Other(format!("`{format}` is not a valid strftime format"))
            })?;
            s
        }
        None => now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    };
    out.write(&text)?;
    Ok(())
}

/// `{{default env.REGION "eu"}}`: the first value when it is set and not empty, else the
/// fallback. A missing variable here is not an error: that is what the helper is for.
fn default_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let (Some(value), Some(fallback)) = (h.param(0), h.param(1)) else {
        return Err(RenderErrorReason::Other(
            "default takes a value and a fallback: {{default env.NAME \"fallback\"}}".into(),
        )
        .into());
    };
    let chosen = match value.value() {
        _ if value.is_value_missing() => fallback.value(),
        Value::Null => fallback.value(),
        Value::String(s) if s.is_empty() => fallback.value(),
        v => v,
    };
    out.write(&match chosen {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })?;
    Ok(())
}

/// `{{random 1 100}}` is an integer in the range (inclusive); `{{random "a" "b"}}` picks one.
fn random_helper(
    h: &Helper,
    _: &Handlebars,
    _: &Context,
    _: &mut RenderContext,
    out: &mut dyn Output,
) -> HelperResult {
    let draw = uuid::Uuid::new_v4().as_u128();
    let params: Vec<&Value> = h.params().iter().map(|p| p.value()).collect();
    let text = match params.as_slice() {
        [Value::Number(lo), Value::Number(hi)] if lo.is_i64() && hi.is_i64() => {
            let (lo, hi) = (lo.as_i64().unwrap_or(0), hi.as_i64().unwrap_or(0));
            if hi < lo {
                return Err(RenderErrorReason::Other(format!(
                    "random {lo} {hi}: the upper bound is below the lower bound"
                ))
                .into());
            }
            // In i128: the widest i64 range does not overflow.
            let span = (i128::from(hi) - i128::from(lo) + 1) as u128;
            (i128::from(lo) + (draw % span) as i128).to_string()
        }
        [] => {
            return Err(RenderErrorReason::Other(
                "random needs two integers (a range) or the choices to pick from".into(),
            )
            .into());
        }
        choices => {
            let pick = choices[(draw % choices.len() as u128) as usize];
            match pick {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        }
    };
    out.write(&text)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> Context {
        Context::from(
            json!({"vars": {"amount": "1.50"}, "env": {"HOME_X": "h"}, "case": {"name": "c", "index": 0}, "run": {"id": "r1"}}),
        )
    }

    #[test]
    fn renders_variables_and_helpers() {
        let t = Templates::new();
        assert_eq!(t.render("{{vars.amount}}", &ctx()).unwrap(), "1.50");
        assert_eq!(t.render("x-{{env.HOME_X}}", &ctx()).unwrap(), "x-h");
        assert_eq!(t.render("{{uuid}}", &ctx()).unwrap().len(), 36);
        let n: i64 = t.render("{{random 3 5}}", &ctx()).unwrap().parse().unwrap();
        assert!((3..=5).contains(&n));
        let wide = "{{random -9223372036854775808 9223372036854775807}}";
        let drawn = t.render(wide, &ctx()).unwrap();
        assert!(drawn.parse::<i64>().is_ok(), "{drawn} is an i64");
        let pick = t.render("{{random \"a\" \"b\"}}", &ctx()).unwrap();
        assert!(pick == "a" || pick == "b");
        assert_eq!(t.render("{{now \"%Y\"}}", &ctx()).unwrap().len(), 4);
        assert_eq!(t.render("<&>", &ctx()).unwrap(), "<&>");
        assert_eq!(
            t.render("{{default env.NOPE_X \"eu\"}}", &ctx()).unwrap(),
            "eu"
        );
        assert_eq!(
            t.render("{{default env.HOME_X \"eu\"}}", &ctx()).unwrap(),
            "h"
        );
        assert_eq!(t.render("{{default vars.none 3}}", &ctx()).unwrap(), "3");
        assert!(t.render("{{default vars.amount}}", &ctx()).is_err());
    }

    #[test]
    fn strict_mode_names_what_is_missing() {
        let t = Templates::new();
        let e = t.render("{{env.NOPE_X}}", &ctx()).unwrap_err();
        assert!(
            e.starts_with("environment variable `NOPE_X` is not set"),
            "{e}"
        );
        let e = t.render("{{vars.amout}}", &ctx()).unwrap_err();
        assert!(e.contains("did you mean `vars.amount`"), "{e}");
        let e = t.render("{{uuuid}}", &ctx()).unwrap_err();
        assert!(e.contains("did you mean `uuid`"), "{e}");
        let e = t.render("{{matrix.event}}", &ctx()).unwrap_err();
        assert!(e.contains("this case has no `matrix:`"), "{e}");
        let mut with_matrix = ctx().data().clone();
        with_matrix["matrix"] = json!({"event": "install", "amount": "1"});
        let e = t
            .render("{{matrix.evnt}}", &Context::from(with_matrix))
            .unwrap_err();
        assert!(
            e.contains("did you mean `matrix.event`") && e.contains("defined: amount, event"),
            "{e}"
        );
    }
}
