//! deb822 control paragraphs, the format of `Release`, `Packages` and dpkg's `status`.
//!
//! Paragraphs are separated by empty lines (a line of only spaces and tabs counts as empty, as
//! in dpkg and apt). A field starts with `Name:` at the start of a line; a line starting with a
//! space or tab continues the field above it. As dpkg, the parser refuses a continuation line
//! with no field above it, a line with no colon, an empty field name and a field given twice in
//! one paragraph. `#` comment lines are refused by [`parse`] (dpkg refuses them in `Packages`
//! and `status`) and skipped only by [`parse_with_comments`] (apt's deb822 `.sources` files).

use thiserror::Error;

/// One field of a paragraph, as in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name as spelled in the file.
    pub name: String,
    /// The value: see [`Paragraph::get`].
    pub value: String,
    /// 1-based line of the field's first line.
    pub line: usize,
}

/// One paragraph (stanza): its fields in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Paragraph {
    /// The fields in file order.
    pub fields: Vec<Field>,
    /// 1-based line of the paragraph's first field.
    pub line: usize,
}

impl Paragraph {
    /// The value of `field` (name compared case-insensitively).
    ///
    /// The first line's value is trimmed; each continuation line loses its first space or tab
    /// and its trailing whitespace, and a continuation line of only `.` stands for an empty
    /// line. Lines are joined with `'\n'`. When the first line's value is empty (as in
    /// `Release`'s `SHA256:`), the value starts with the first continuation line.
    pub fn get(&self, field: &str) -> Option<&str> {
        self.field(field).map(|f| f.value.as_str())
    }

    /// The whole field named `field` (case-insensitive), with its line.
    pub fn field(&self, field: &str) -> Option<&Field> {
        self.fields
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(field))
    }
}

/// A control file that is not deb822.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{file}:{line}: {why}")]
pub struct ControlError {
    /// The file name given to the parser.
    pub file: String,
    /// 1-based line of the offending line.
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// Parses `text` (named `file` in errors) into paragraphs; `#` lines are an error.
pub fn parse(text: &str, file: &str) -> Result<Vec<Paragraph>, ControlError> {
    parse_inner(text, file, false)
}

/// As [`parse`], but lines starting with `#` are comments and skipped (deb822 `.sources`).
pub fn parse_with_comments(text: &str, file: &str) -> Result<Vec<Paragraph>, ControlError> {
    parse_inner(text, file, true)
}

fn parse_inner(text: &str, file: &str, comments: bool) -> Result<Vec<Paragraph>, ControlError> {
    let error = |line: usize, why: String| ControlError {
        file: file.to_owned(),
        line,
        why,
    };
    let mut paragraphs = Vec::new();
    let mut current: Option<Paragraph> = None;
    // Whether the last field's first line had an empty value (no '\n' before its first
    // continuation line).
    let mut value_empty = false;
    for (index, raw) in text.split('\n').enumerate() {
        let number = index + 1;
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if comments && line.starts_with('#') {
            continue;
        }
        if line.trim_matches([' ', '\t']).is_empty() {
            if let Some(done) = current.take() {
                paragraphs.push(done);
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(error(
                number,
                "a comment line ('#') is not allowed in this file".into(),
            ));
        }
        if let Some(rest) = line.strip_prefix([' ', '\t']) {
            let Some(field) = current.as_mut().and_then(|p| p.fields.last_mut()) else {
                return Err(error(
                    number,
                    "continuation line (starting with a space) with no field above it".into(),
                ));
            };
            let rest = rest.trim_end();
            let rest = if rest == "." { "" } else { rest };
            if !value_empty {
                field.value.push('\n');
            }
            value_empty = false;
            field.value.push_str(rest);
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(error(
                number,
                format!("line {line:?} is neither a field (Name: value) nor a continuation"),
            ));
        };
        if name.is_empty() || name.contains([' ', '\t']) {
            return Err(error(number, format!("invalid field name {name:?}")));
        }
        let paragraph = current.get_or_insert_with(|| Paragraph {
            fields: Vec::new(),
            line: number,
        });
        if let Some(before) = paragraph.field(name) {
            return Err(error(
                number,
                format!(
                    "field {name:?} given twice in one paragraph (first on line {})",
                    before.line
                ),
            ));
        }
        let value = value.trim_matches([' ', '\t']);
        value_empty = value.is_empty();
        paragraph.fields.push(Field {
            name: name.to_owned(),
            value: value.to_owned(),
            line: number,
        });
    }
    if let Some(done) = current.take() {
        paragraphs.push(done);
    }
    Ok(paragraphs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_lines() {
        let text = "Package: a\nVersion: 1\n\n\nPackage: b\r\nversion:2 \n";
        let ps = parse(text, "P").unwrap();
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, 1);
        assert_eq!(ps[1].line, 5);
        assert_eq!(ps[1].get("Package"), Some("b"));
        assert_eq!(ps[1].get("VERSION"), Some("2"));
        assert_eq!(ps[0].get("Missing"), None);
    }

    #[test]
    fn folded_and_multiline_values() {
        let text = "Description: short\n long line\n .\n   indented\nSHA256:\n abc 12 main/x\n def 3 main/y\n";
        let ps = parse(text, "R").unwrap();
        assert_eq!(
            ps[0].get("description"),
            Some("short\nlong line\n\n  indented")
        );
        assert_eq!(ps[0].get("sha256"), Some("abc 12 main/x\ndef 3 main/y"));
    }

    #[test]
    fn whitespace_only_line_separates() {
        let ps = parse("A: 1\n \t\nB: 2\n", "f").unwrap();
        assert_eq!(ps.len(), 2);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("A: 1\nnot a field\n", "Packages").unwrap_err();
        assert_eq!((e.file.as_str(), e.line), ("Packages", 2));
        assert!(e.to_string().starts_with("Packages:2: "), "{e}");
        let e = parse(" continued\n", "f").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("A: 1\na: 2\n", "f").unwrap_err();
        assert!(e.why.contains("twice"), "{e}");
        let e = parse(": x\n", "f").unwrap_err();
        assert!(e.why.contains("field name"), "{e}");
        let e = parse("A: 1\n\n B\n", "f").unwrap_err();
        assert_eq!(e.line, 3);
    }

    #[test]
    fn comments_only_where_allowed() {
        let text = "# a comment\nTypes: deb\n# inside\nURIs: http://x\n";
        let e = parse(text, "f").unwrap_err();
        assert_eq!(e.line, 1);
        let ps = parse_with_comments(text, "f").unwrap();
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].get("URIs"), Some("http://x"));
        assert_eq!(ps[0].line, 2);
    }
}
