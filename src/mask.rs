//! Secrets never reach an output: the one masking path every writer goes through.
//!
//! What is secret (DESIGN §4): values given with `--secret K=V`; values of environment
//! variables whose names contain TOKEN, SECRET, PASSWORD, KEY or AUTH; auth headers and partner
//! secrets (registered as they become known); credentials in URLs; values of headers and query
//! parameters whose names look secret. Each is shown as `***`.
//!
//! One rule keeps masking from both leaking and garbling: a secret has at least
//! [`MIN_SECRET_CHARS`] characters. A shorter one is refused where it is given (`--secret`,
//! `--auth-header`, `--endpoint-header`, `--api-token`, `PITCREW_RECEIVER_TOKEN`, a secret in
//! pitcrew.yaml or a sandbox config, an environment variable a file reads with `{{env.NAME}}`
//! whose name looks secret); an environment variable nothing reads is masked when it is long
//! enough, else left alone. Common words and small numbers under secret-looking names
//! (`AUTH_ENABLED=true`) are not secrets.
//!
//! The console masks every line it prints, the file reports mask every string of the run
//! record before they render it, and the command line masks its error lines: all through
//! [`mask`].

use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

use regex::Regex;
use serde_json::Value;

/// What a masked secret is shown as.
pub const MASK: &str = "***";

/// The fewest characters a secret may have. Every secret is masked wherever it appears, so a
/// shorter one would hide the same letters in every word (`s` turns `cases` into `ca***e***`),
/// and leaving it unmasked would leak it: a shorter secret is refused where it is given.
pub const MIN_SECRET_CHARS: usize = 6;

/// Words that make a name (of a variable, a header, a query parameter) secret.
const SECRET_WORDS: &[&str] = &[
    "token",
    "secret",
    "password",
    "passwd",
    "key",
    "auth",
    "cookie",
    "signature",
    "credential",
];

/// Environment values too common to mask without garbling every line (`AUTH_ENABLED=true`).
const NOT_SECRETS: &[&str] = &["true", "false", "yes", "no", "on", "off", "null", "none"];

static URL_CREDENTIALS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/\s@:]+(:[^/\s@]*)?@").expect("a valid regex")
});

static SECRET_QUERY: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)([?&][^=&\s]*(?:token|secret|password|passwd|key|auth|signature|credential)[^=&\s]*=)[^&\s#]+",
    )
    .expect("a valid regex")
});

/// The secrets known so far, and how to hide them.
#[derive(Debug, Default, Clone)]
pub struct Masker {
    /// Each secret as written and in the forms other outputs escape it to, longest first.
    patterns: Vec<String>,
}

impl Masker {
    /// A masker knowing the secrets in this process's environment.
    pub fn from_env() -> Masker {
        let mut masker = Masker::default();
        for (name, value) in std::env::vars() {
            if is_secret_name(&name) && worth_masking(&value) {
                masker.add(&value);
            }
        }
        masker
    }

    /// Adds a secret (an empty one is ignored).
    pub fn add(&mut self, secret: &str) {
        if secret.is_empty() {
            return;
        }
        let json = Value::String(secret.to_string()).to_string();
        let json = json[1..json.len() - 1].to_string();
        // As a query or a form writes it (`+` for a space, `%2B`, `%2F`, `%3D`…), and as a
        // path segment or `encodeURIComponent` writes it (`%20`).
        let form: String = form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        let percent = form.replace('+', "%20");
        for form in [secret.to_string(), json, form, percent] {
            if !self.patterns.contains(&form) {
                self.patterns.push(form);
            }
        }
        // Longest first: a secret that contains another is hidden whole.
        self.patterns.sort_by_key(|p| std::cmp::Reverse(p.len()));
    }

    /// `text` with every secret, URL credential and secret query value replaced by `***`.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut text = Cow::Borrowed(text);
        for secret in &self.patterns {
            if text.contains(secret.as_str()) {
                text = Cow::Owned(text.replace(secret.as_str(), MASK));
            }
        }
        if text.contains("://")
            && let Cow::Owned(s) = URL_CREDENTIALS.replace_all(&text, "$1***@")
        {
            text = Cow::Owned(s);
        }
        if text.contains('=')
            && let Cow::Owned(s) = SECRET_QUERY.replace_all(&text, "$1***")
        {
            text = Cow::Owned(s);
        }
        text
    }
}

/// True when a variable, header or parameter name says its value is secret.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w))
}

/// True when a value whose name looks secret is no secret after all: empty, a common word, or
/// a small number (`AUTH_ENABLED=true`, `X-Key-Version: 2`).
pub fn not_a_secret(value: &str) -> bool {
    let value = value.trim();
    value.is_empty()
        || NOT_SECRETS.contains(&value.to_ascii_lowercase().as_str())
        || (value.len() < MIN_SECRET_CHARS && value.bytes().all(|b| b.is_ascii_digit()))
}

/// True when `value`, found under a name that looks secret, is masked: it is a secret, and
/// long enough to be one (see [`MIN_SECRET_CHARS`]).
pub fn worth_masking(value: &str) -> bool {
    !not_a_secret(value) && value.trim().chars().count() >= MIN_SECRET_CHARS
}

/// Why `secret` cannot be used as one: it is shorter than [`MIN_SECRET_CHARS`]. The message
/// names neither the secret nor its characters.
pub fn too_short(secret: &str) -> Option<String> {
    let n = secret.chars().count();
    (n < MIN_SECRET_CHARS).then(|| {
        format!(
            "a secret must be at least {MIN_SECRET_CHARS} characters, and this one has {n}: a \
             shorter one cannot be masked in pitcrew's output without hiding the same letters \
             everywhere"
        )
    })
}

/// Why a file may not read environment variable `var` (whose value is `value`) with
/// `{{env.NAME}}`, and what to do: its name looks secret and its value is too short to be one.
pub fn env_too_short(var: &str, value: &str) -> Option<(String, String)> {
    if !is_secret_name(var) {
        return None;
    }
    too_short_if_secret(value).map(|why| {
        (
            format!("`{{{{env.{var}}}}}` reads a secret too short to mask: {why}"),
            format!("give {var} a longer value, or pass one with `--secret {var}=…`"),
        )
    })
}

/// Like [`too_short`], for a value found under a name that looks secret: none when it is no
/// secret after all (see [`not_a_secret`]).
pub fn too_short_if_secret(value: &str) -> Option<String> {
    if not_a_secret(value) {
        None
    } else {
        too_short(value)
    }
}

static GLOBAL: LazyLock<RwLock<Masker>> = LazyLock::new(|| RwLock::new(Masker::from_env()));

/// Makes `secret` masked in every output of this process from now on.
pub fn register(secret: &str) {
    GLOBAL
        .write()
        .unwrap_or_else(|p| p.into_inner())
        .add(secret);
}

/// The process's masker as it is now, for masking many texts in a row.
pub fn current() -> Masker {
    GLOBAL.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// `text` as it may be shown: see [`Masker::mask`].
pub fn mask(text: &str) -> String {
    GLOBAL
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .mask(text)
        .into_owned()
}

/// A header value as it may be shown: `***` when its name looks secret, else masked text.
pub fn header_value(name: &str, value: &str) -> String {
    if is_secret_name(name) {
        MASK.to_string()
    } else {
        mask(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(secrets: &[&str]) -> Masker {
        let mut m = Masker::default();
        secrets.iter().for_each(|s| m.add(s));
        m
    }

    /// A base64 secret in a query or a path is written encoded (`+` `/` `=` as `%2B` `%2F`
    /// `%3D`, a space as `+` or `%20`): masked all the same.
    #[test]
    fn secrets_are_hidden_in_their_url_encoded_forms() {
        let m = masker(&["a+b/c=d e~12"]);
        for text in [
            "GET /pb?sig=a%2Bb%2Fc%3Dd+e%7E12&x=1",
            "GET /pb/a%2Bb%2Fc%3Dd%20e%7E12/x",
        ] {
            assert!(!m.mask(text).contains("a%2Bb"), "{text}: {}", m.mask(text));
        }
    }

    #[test]
    fn secrets_and_their_escaped_forms_are_hidden() {
        let m = masker(&["s3cr\"et", "tok-123456"]);
        assert_eq!(m.mask("a tok-123456 b"), "a *** b");
        assert_eq!(m.mask(r#"{"h": "s3cr\"et"}"#), r#"{"h": "***"}"#);
        assert_eq!(m.mask("nothing here"), "nothing here");
    }

    #[test]
    fn a_secret_inside_another_is_hidden_whole() {
        let m = masker(&["abcd", "abcdefgh"]);
        assert_eq!(m.mask("xabcdefghx"), "x***x");
    }

    #[test]
    fn url_credentials_and_secret_query_values_are_hidden() {
        let m = Masker::default();
        assert_eq!(
            m.mask("GET https://qa:hunter2@api.example.com/v1?conversionId=1&api_key=zz9&x=2"),
            "GET https://***@api.example.com/v1?conversionId=1&api_key=***&x=2"
        );
        assert_eq!(
            m.mask("http://user@host/"),
            "http://***@host/",
            "a user alone is a credential too"
        );
        assert_eq!(m.mask("see https://host/path"), "see https://host/path");
    }

    #[test]
    fn names_that_say_secret() {
        for name in [
            "GOKART_API_TOKEN",
            "X-Partner-Key",
            "Authorization",
            "PARTNER_SECRET",
            "db_password",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["HOME", "content-type", "X-Request-Id"] {
            assert!(!is_secret_name(name), "{name}");
        }
        assert!(!worth_masking("true") && !worth_masking("123") && !worth_masking("on"));
        assert!(worth_masking("hunter2") && worth_masking("98765432"));
        assert!(!worth_masking("abcde"), "shorter than a secret may be");
        assert!(too_short("abcde").is_some() && too_short("abcdef").is_none());
        assert!(too_short_if_secret("true").is_none() && too_short_if_secret("x1").is_some());
        let why = too_short("s").unwrap();
        assert!(
            why.contains("at least 6 characters, and this one has 1"),
            "{why}"
        );
    }
}
