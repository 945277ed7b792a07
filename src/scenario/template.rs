//! Handlebars templates in scenario values, strict: an unknown variable is an error, not "".
//!
//! Context: `vars`, `matrix`, `env`, `case.name`, `case.index`, `case.attempt`, `run.id`; helpers `uuid`,
//! `now`, `random`, `default`.
//!
//! Templates are expressions only: partials, inline templates, decorators and block helpers
//! (`{{> p}}`, `{{#*inline}}`, `{{#each}}`) are refused before they are compiled, so that no
//! template can recurse, loop or nest without bound; a value holds at most
//! [`MAX_EXPRESSIONS`] expressions; and a rendered value is at most [`MAX_RENDERED_BYTES`].

use super::ScenarioError;
use handlebars::{
    Context, Handlebars, Helper, HelperResult, Output, RenderContext, RenderError,
    RenderErrorReason,
};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::HashMap;

/// The largest value one template may render to.
pub const MAX_RENDERED_BYTES: usize = 1024 * 1024;
/// How deep parentheses (subexpressions) may nest in one template.
const MAX_NESTING: usize = 32;
/// How many expressions (`{{…}}`) one value may hold: the template parser's work grows with
/// their number times the value's length.
pub const MAX_EXPRESSIONS: usize = 1_000;

/// A strict handlebars registry with pitcrew's helpers, and every template it has compiled.
///
/// A matrix renders the same few templates for each of its cases: each is compiled once
/// (registered under its own text) and rendered from then on, instead of parsed per case.
pub struct Templates {
    registry: RefCell<Handlebars<'static>>,
    /// Templates that did not compile, with the reason.
    broken: RefCell<HashMap<String, ScenarioError>>,
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
    pub fn render(&self, text: &str, context: &Context) -> Result<String, ScenarioError> {
        if !text.contains("{{") {
            return Ok(text.to_owned());
        }
        if let Some(reason) = self.broken.borrow().get(text) {
            return Err(reason.clone());
        }
        if !self.registry.borrow().has_template(text) {
            if let Err(reason) = refuse_unsafe(text) {
                self.broken
                    .borrow_mut()
                    .insert(text.to_owned(), reason.clone());
                return Err(reason);
            }
            let compiled = self
                .registry
                .borrow_mut()
                .register_template_string(text, text);
            if let Err(e) = compiled {
                let reason = ScenarioError::Template(unparsable(text, &e));
                self.broken
                    .borrow_mut()
                    .insert(text.to_owned(), reason.clone());
                return Err(reason);
            }
        }
        let mut out = Bounded(Vec::new());
        self.registry
            .borrow()
            .render_with_context_to_write(text, context, &mut out)
            .map_err(|e| {
                ScenarioError::Template(match out.0.len() > MAX_RENDERED_BYTES {
                    true => format!(
                        "`{}` renders to more than {} KiB, the most a value may hold",
                        shown(text),
                        MAX_RENDERED_BYTES / 1024
                    ),
                    false => explain(&e, text, context.data()),
                })
            })?;
        let mut rendered = String::from_utf8(out.0).map_err(|_| {
            ScenarioError::Template(format!(
                "`{}` renders to text that is not UTF-8",
                shown(text)
            ))
        })?;
        rendered.shrink_to_fit();
        Ok(rendered)
    }
}

/// A writer that refuses to grow past [`MAX_RENDERED_BYTES`].
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_RENDERED_BYTES {
            // Keep the length past the limit: the caller reads it to say why rendering stopped.
            self.0.resize(MAX_RENDERED_BYTES + 1, 0);
            return Err(std::io::Error::other("rendered value too large"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses what could recurse or loop (partials, inline templates, decorators, blocks) and
/// parentheses nested deeper than the parser should be asked to go.
fn refuse_unsafe(text: &str) -> Result<(), ScenarioError> {
    let expressions = text.matches("{{").count();
    if expressions > MAX_EXPRESSIONS {
        return Err(ScenarioError::Template(format!(
            "`{}` holds {expressions} expressions (`{{{{…}}}}`), more than the {MAX_EXPRESSIONS} one value may hold",
            shown(text)
        )));
    }
    for (at, _) in text.match_indices("{{") {
        let after = text[at + 2..].trim_start_matches(['~', '{']).trim_start();
        let kind = match after.chars().next() {
            Some('>') => "partials (`{{> name}}`)",
            Some('#') if after[1..].trim_start().starts_with('*') => {
                "inline templates and decorators (`{{#*inline}}`)"
            }
            Some('*') => "decorators (`{{*name}}`)",
            Some('#' | '^' | '/') => "block helpers (`{{#each}}`, `{{#if}}`)",
            _ => continue,
        };
        return Err(ScenarioError::Template(format!(
            "invalid template `{}`: {kind} are not available in scenario templates; use variables and the helpers {HELPERS}",
            shown(text)
        )));
    }
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(ScenarioError::Template(format!(
                        "invalid template `{}`: parentheses nest deeper than {MAX_NESTING}",
                        shown(text)
                    )));
                }
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The helpers a template may call.
pub const HELPER_NAMES: &[&str] = &["uuid", "now", "random", "default"];
const HELPERS: &str =
    "uuid, now \"FORMAT\", random LO HI | random \"A\" \"B\", default VALUE \"FALLBACK\"";

/// A template as an error message shows it: at most 80 characters.
fn shown(text: &str) -> String {
    match text.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

/// Why a template does not compile, in one line.
fn unparsable(text: &str, error: &impl std::fmt::Display) -> String {
    if text.matches("{{").count() != text.matches("}}").count() {
        format!(
            "invalid template `{}`: a `{{{{` is not closed by `}}}}`",
            shown(text)
        )
    } else {
        let reason = error.to_string();
        let reason = reason.lines().next().unwrap_or_default();
        format!("invalid template `{}`: {reason}", shown(text))
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
    out.write(&crate::ids::new_uuid().to_string())?;
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
    let draw = crate::ids::random_u128();
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
    fn partials_blocks_and_decorators_are_refused_before_compiling() {
        let t = Templates::new();
        for text in [
            "{{#*inline \"r\"}}x{{> r}}{{/inline}}{{> r}}",
            "{{> r}}",
            "{{~> r}}",
            "{{#each vars}}{{#each vars}}x{{/each}}{{/each}}",
            "{{#if vars.a}}x{{/if}}",
            "{{*decorator}}",
        ] {
            let e = t.render(text, &ctx()).unwrap_err();
            assert!(
                e.to_string()
                    .contains("not available in scenario templates"),
                "{text}: {e}"
            );
        }
        let deep = format!("{{{{{}uuid{}}}}}", "(".repeat(100), ")".repeat(100));
        assert!(
            t.render(&deep, &ctx())
                .unwrap_err()
                .to_string()
                .contains("nest deeper")
        );
    }

    #[test]
    fn a_rendered_value_is_bounded() {
        let t = Templates::new();
        let mut big = ctx().data().clone();
        big["vars"]["big"] = json!("x".repeat(400 * 1024));
        let e = t
            .render("{{vars.big}}{{vars.big}}{{vars.big}}", &Context::from(big))
            .unwrap_err();
        assert!(
            e.to_string().contains("renders to more than 1024 KiB"),
            "{e}"
        );
    }

    #[test]
    fn strict_mode_names_what_is_missing() {
        let t = Templates::new();
        let e = t.render("{{env.NOPE_X}}", &ctx()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("environment variable `NOPE_X` is not set"),
            "{e}"
        );
        let e = t.render("{{vars.amout}}", &ctx()).unwrap_err();
        assert!(e.to_string().contains("did you mean `vars.amount`"), "{e}");
        let e = t.render("{{uuuid}}", &ctx()).unwrap_err();
        assert!(e.to_string().contains("did you mean `uuid`"), "{e}");
        let e = t.render("{{matrix.event}}", &ctx()).unwrap_err();
        assert!(e.to_string().contains("this case has no `matrix:`"), "{e}");
        let mut with_matrix = ctx().data().clone();
        with_matrix["matrix"] = json!({"event": "install", "amount": "1"});
        let e = t
            .render("{{matrix.evnt}}", &Context::from(with_matrix))
            .unwrap_err();
        assert!(
            e.to_string().contains("did you mean `matrix.event`")
                && e.to_string().contains("defined: amount, event"),
            "{e}"
        );
    }
}
