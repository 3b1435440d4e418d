//! Text from the system (file names, command lines, script output) made safe
//! to print and bounded in length: a
//! newline in a script's name must not forge a log line, and an escape
//! sequence in a stray's command line must not drive the reader's terminal.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character written as an escape (`\n`, `\t`,
/// `\r`, `\x1b`, `\u{85}`); text without any is returned as it is.
pub fn escape_controls(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len().saturating_add(8));
    for c in text.chars() {
        match c {
            '\n' => escaped.push_str("\\n"),
            '\r' => escaped.push_str("\\r"),
            '\t' => escaped.push_str("\\t"),
            c if c.is_control() && u32::from(c) < 0x80 => {
                let _ = write!(escaped, "\\x{:02x}", u32::from(c));
            }
            c if c.is_control() => {
                let _ = write!(escaped, "\\u{{{:x}}}", u32::from(c));
            }
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// `text` cut to at most `limit` bytes at a character boundary, the cut
/// marked with `…`; shorter text is returned whole.
pub fn cut(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_string();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end = end.saturating_sub(1);
    }
    format!("{}…", text.get(..end).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_untouched() {
        assert!(matches!(escape_controls("10-db.sh"), Cow::Borrowed(_)));
        assert_eq!(
            escape_controls("a\nb\tc\r\u{1b}[31md\u{7f}\u{85}é"),
            "a\\nb\\tc\\r\\x1b[31md\\x7f\\u{85}é"
        );
    }
}
