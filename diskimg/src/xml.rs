//! XML 1.0 text: escaping for element content and double-quoted attribute values (the OVF
//! envelope, JUnit reports), and the reverse for attribute values read back.

use std::fmt::Write as _;

/// How [`escape`] writes tab and newline (carriage return is always `&#13;`: parsers turn a
/// bare CR into LF).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whitespace {
    /// As `&#9;` and `&#10;`, so attribute-value normalisation keeps them (fine anywhere).
    Reference,
    /// As themselves (element content only).
    Keep,
}

/// What [`escape`] writes for a character XML 1.0 does not allow at all: a C0 control other
/// than tab, newline and carriage return, U+FFFE or U+FFFF.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disallowed {
    /// U+FFFD.
    Replace,
    /// Its escape as visible text: `\xNN` for a control, `\u{FFFE}` / `\u{FFFF}`.
    Show,
}

/// Escapes `text` for XML 1.0 element content or a double-quoted attribute value.
pub fn escape(text: &str, whitespace: Whitespace, disallowed: Disallowed) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            '\n' | '\t' if whitespace == Whitespace::Keep => out.push(c),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c if u32::from(c) >= 0x20 && c != '\u{FFFE}' && c != '\u{FFFF}' => out.push(c),
            c => match disallowed {
                Disallowed::Replace => out.push('\u{FFFD}'),
                Disallowed::Show if u32::from(c) < 0x20 => {
                    let _ = write!(out, "\\x{:02x}", u32::from(c));
                }
                Disallowed::Show => {
                    let _ = write!(out, "\\u{{{:X}}}", u32::from(c));
                }
            },
        }
    }
    out
}

/// Undoes the XML escapes of attribute values.
pub fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&#9;", "\t")
        .replace("&#10;", "\n")
        .replace("&#13;", "\r")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_and_disallowed_characters() {
        let text = "<a\t\n\r\u{1b}\u{FFFF}é>";
        assert_eq!(
            escape(text, Whitespace::Reference, Disallowed::Replace),
            "&lt;a&#9;&#10;&#13;\u{FFFD}\u{FFFD}é&gt;"
        );
        assert_eq!(
            escape(text, Whitespace::Keep, Disallowed::Show),
            "&lt;a\t\n&#13;\\x1b\\u{FFFF}é&gt;"
        );
        assert_eq!(
            unescape(&escape(
                "a&amp;<b>\t\"'\n\r",
                Whitespace::Reference,
                Disallowed::Show
            )),
            "a&amp;<b>\t\"'\n\r"
        );
    }
}
