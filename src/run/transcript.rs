//! A failing case's requests, answers and callbacks as text, with secrets masked.

use super::case::Entry;

const SECRET_WORDS: &[&str] = &[
    "authorization",
    "token",
    "secret",
    "password",
    "signature",
    "cookie",
    "api-key",
    "apikey",
];

/// Replaces secrets (values of secret-looking environment variables) with `***`.
#[derive(Debug, Clone, Default)]
pub struct Masker {
    secrets: Vec<String>,
}

impl Masker {
    /// Masks the values of environment variables whose names look secret.
    pub fn from_env() -> Masker {
        let secrets = std::env::vars()
            .filter(|(k, v)| v.len() >= 4 && is_secret_name(k))
            .map(|(_, v)| v)
            .collect();
        Masker { secrets }
    }

    /// `text` with every known secret replaced.
    pub fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), "***");
            }
        }
        text
    }
}

fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SECRET_WORDS.iter().any(|w| lower.contains(w)) || lower.ends_with("_key")
}

/// One line (or a few) per entry, in the order they happened.
pub fn render(entries: &[Entry], masker: &Masker) -> Vec<String> {
    entries
        .iter()
        .map(|entry| match entry {
            Entry::Exchange(e) => format!(
                "> {} {}\n> {}\n< HTTP {} ({} ms)\n< {}",
                e.method,
                e.url,
                e.request_body,
                e.status,
                e.duration.as_millis(),
                e.body
            ),
            Entry::Callback(c) => {
                let headers: Vec<String> = c
                    .headers
                    .iter()
                    .map(|(k, v)| {
                        let v = if is_secret_name(k) { "***" } else { v.as_str() };
                        format!("{k}: {v}")
                    })
                    .collect();
                format!(
                    "<= callback #{} {} {}{}\n<= {}\n<= {}",
                    c.seq,
                    c.method,
                    c.path,
                    c.query
                        .as_ref()
                        .map(|q| format!("?{q}"))
                        .unwrap_or_default(),
                    headers.join(", "),
                    c.body
                )
            }
        })
        .map(|line| masker.mask(&line))
        .collect()
}
