//! Colour on the console and in diagnostics: `--color auto|always|never`, then NO_COLOR,
//! CLICOLOR_FORCE and CLICOLOR (https://no-color.org, https://bixense.com/clicolors), then
//! whether the stream is a terminal. Colour is added after masking, to words pitcrew writes
//! itself (verdicts, headings), never inside user text.

use std::sync::OnceLock;

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Colour when the output is a terminal, unless NO_COLOR is set (CLICOLOR_FORCE forces it).
    #[default]
    Auto,
    /// Always colour, even into a file or a pipe.
    Always,
    /// Never colour.
    Never,
}

static CHOICE: OnceLock<ColorChoice> = OnceLock::new();

/// Sets the process's choice, once, from the command line.
pub fn set_choice(choice: ColorChoice) {
    let _ = CHOICE.set(choice);
}

/// True when output to a stream (a terminal or not) is to be coloured.
pub fn enabled(is_terminal: bool) -> bool {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    match CHOICE.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if var("NO_COLOR").is_some() {
                false
            } else if var("CLICOLOR_FORCE").is_some_and(|v| v != "0") {
                true
            } else if var("CLICOLOR").is_some_and(|v| v == "0") {
                false
            } else {
                is_terminal && var("TERM").is_none_or(|t| t != "dumb")
            }
        }
    }
}

/// The few tones pitcrew uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Green,
    Red,
    Yellow,
    Magenta,
    Dim,
    Bold,
}

/// `text` in `tone` when `on`, else as is.
pub fn paint(text: &str, tone: Tone, on: bool) -> String {
    if !on {
        return text.to_string();
    }
    let code = match tone {
        Tone::Green => "32",
        Tone::Red => "31",
        Tone::Yellow => "33",
        Tone::Magenta => "35",
        Tone::Dim => "2",
        Tone::Bold => "1",
    };
    format!("\x1b[{code}m{text}\x1b[0m")
}

/// `text` as a terminal should show it: control characters (an escape sequence that would hide,
/// recolour or move text, a bell, a carriage return) written out as `\u{1b}`, so that no name,
/// tag, path or answer a user or an endpoint wrote can act on the terminal. Lines and tabs stay.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let acts = |c: char| c.is_control() && c != '\n' && c != '\t';
    if !text.chars().any(acts) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut shown = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if acts(c) {
            shown.push_str(&c.escape_unicode().to_string());
        } else {
            shown.push(c);
        }
    }
    std::borrow::Cow::Owned(shown)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_shown_not_obeyed() {
        assert_eq!(visible("plain\ttext\n"), "plain\ttext\n");
        assert_eq!(visible("a\u{1b}[8mhidden"), "a\\u{1b}[8mhidden");
        assert_eq!(visible("bell\u{7}\r\u{9b}"), "bell\\u{7}\\u{d}\\u{9b}");
    }
}
