//! Strings that come from input we do not control (a BOM's package names, an advisory's text,
//! file names on a disk, partition names) on their way to a terminal: the one escaping function
//! every human-readable output uses. JSON output is escaped by serde and does not use this.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must not reach a terminal as it is: C0 controls (with newline and tab), DEL,
/// C1 controls, and the bidirectional marks, embeddings, overrides and isolates (U+200E/F,
/// U+202A–E, U+2066–9) that reorder what is shown.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every control and bidi character written as an escape (`\n`, `\r`, `\t`, else
/// `\u{1b}`), so an untrusted string is shown on one line, in order, and cannot colour,
/// move the cursor or forge a line. Borrowed when nothing needs escaping.
pub fn escape(s: &str) -> Cow<'_, str> {
    if !s.chars().any(is_unsafe) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_borrowed() {
        assert!(matches!(escape("bash 5.2-1 ünïcode"), Cow::Borrowed(_)));
    }

    #[test]
    fn controls_and_bidi_are_escaped() {
        assert_eq!(escape("a\u{1b}[31mred"), "a\\u{1b}[31mred");
        assert_eq!(escape("x\n+ injected"), "x\\n+ injected");
        assert_eq!(escape("evil\u{202e}txt.exe"), "evil\\u{202e}txt.exe");
        assert_eq!(escape("\u{7f}\u{85}\u{9b}"), "\\u{7f}\\u{85}\\u{9b}");
        assert_eq!(
            escape("\u{200e}\u{200f}\u{2066}\u{2069}\r\t"),
            "\\u{200e}\\u{200f}\\u{2066}\\u{2069}\\r\\t"
        );
        assert!(!escape("\u{202a}\u{202b}\u{202c}\u{202d}").contains(is_unsafe));
    }
}
