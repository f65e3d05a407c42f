//! Binary package stanzas: a `Packages` index of an archive, or dpkg's `status` database.

use thiserror::Error;

use crate::control::{self, ControlError, Paragraph};
use crate::relation::{self, Alternatives, Relation};
use crate::version;

/// A package's `Multi-Arch` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MultiArch {
    /// No field, or `no`: satisfies only relations from its own architecture.
    #[default]
    No,
    /// `same`: co-installable with itself for other architectures.
    Same,
    /// `foreign`: satisfies relations from packages of any architecture.
    Foreign,
    /// `allowed`: may be depended on as `name:any`.
    Allowed,
}

/// One binary package stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// `Package`
    pub name: String,
    /// `Version`
    pub version: String,
    /// `Architecture` (`amd64`, `all`, …)
    pub architecture: String,
    /// `Multi-Arch`
    pub multi_arch: MultiArch,
    /// `Essential: yes`
    pub essential: bool,
    /// `Pre-Depends`
    pub pre_depends: Vec<Alternatives>,
    /// `Depends`
    pub depends: Vec<Alternatives>,
    /// `Provides` (only `=` constraints)
    pub provides: Vec<Relation>,
    /// `Conflicts`
    pub conflicts: Vec<Relation>,
    /// `Breaks`
    pub breaks: Vec<Relation>,
    /// `Filename`: the path of the `.deb` under the archive root (indexes only).
    pub filename: Option<String>,
    /// `Size` of the `.deb` in bytes (indexes only).
    pub size: Option<u64>,
    /// `SHA256` of the `.deb`, lower-case hex (indexes only).
    pub sha256: Option<String>,
    /// The source package's name (`Source`, else the package's own name).
    pub source: String,
    /// The source package's version (`Source: name (version)`, else the package's version).
    pub source_version: String,
    /// `Priority` (`required`, `important`, …), if given.
    pub priority: Option<String>,
    /// 1-based line of the stanza in its file.
    pub line: usize,
}

/// A stanza that is not a valid binary package.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Not deb822 at all.
    #[error(transparent)]
    Control(#[from] ControlError),
    /// A required field is absent.
    #[error("{file}:{line}: the stanza has no {field} field")]
    Missing {
        /// The file name given to the parser.
        file: String,
        /// 1-based line of the stanza.
        line: usize,
        /// The missing field.
        field: &'static str,
    },
    /// A field's value is invalid.
    #[error("{file}:{line}: field {field}: {why}")]
    Invalid {
        /// The file name given to the parser.
        file: String,
        /// 1-based line of the field.
        line: usize,
        /// The field's name.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
}

/// Parses a `Packages` index; each stanza must have `Package`, `Version`, `Architecture`,
/// `Filename`, `Size` and `SHA256`.
pub fn parse_index(text: &str, file: &str) -> Result<Vec<Package>, ParseError> {
    control::parse(text, file)?
        .iter()
        .map(|p| {
            let package = from_paragraph(p, file)?;
            for (field, present) in [
                ("Filename", package.filename.is_some()),
                ("Size", package.size.is_some()),
                ("SHA256", package.sha256.is_some()),
            ] {
                if !present {
                    return Err(ParseError::Missing {
                        file: file.to_owned(),
                        line: p.line,
                        field,
                    });
                }
            }
            Ok(package)
        })
        .collect()
}

/// Reads one binary package stanza; `Package`, `Version` and `Architecture` are required.
pub fn from_paragraph(p: &Paragraph, file: &str) -> Result<Package, ParseError> {
    let required = |field: &'static str| {
        p.get(field).ok_or_else(|| ParseError::Missing {
            file: file.to_owned(),
            line: p.line,
            field,
        })
    };
    let invalid = |field: &'static str, why: String| ParseError::Invalid {
        file: file.to_owned(),
        line: p.field(field).map_or(p.line, |f| f.line),
        field,
        why,
    };
    let name = required("Package")?;
    relation::check_name(name).map_err(|why| invalid("Package", why))?;
    let version = required("Version")?;
    version::check(version).map_err(|why| invalid("Version", why))?;
    let architecture = required("Architecture")?;
    if architecture.is_empty() || architecture.contains(char::is_whitespace) {
        return Err(invalid(
            "Architecture",
            format!("invalid architecture {architecture:?}"),
        ));
    }
    let multi_arch = match p.get("Multi-Arch") {
        None | Some("no") => MultiArch::No,
        Some("same") => MultiArch::Same,
        Some("foreign") => MultiArch::Foreign,
        Some("allowed") => MultiArch::Allowed,
        Some(other) => return Err(invalid("Multi-Arch", format!("unknown value {other:?}"))),
    };
    let essential = match p.get("Essential") {
        None | Some("no") => false,
        Some("yes") => true,
        Some(other) => {
            return Err(invalid(
                "Essential",
                format!("expected yes or no, not {other:?}"),
            ));
        }
    };
    let list = |field: &'static str| {
        p.get(field)
            .map_or(Ok(Vec::new()), relation::parse_list)
            .map_err(|why| invalid(field, why))
    };
    let flat = |field: &'static str| -> Result<Vec<Relation>, ParseError> {
        list(field)?
            .into_iter()
            .map(|a| match <[Relation; 1]>::try_from(a.0) {
                Ok([one]) => Ok(one),
                Err(_) => Err(invalid(
                    field,
                    "alternatives ('|') are not allowed here".into(),
                )),
            })
            .collect()
    };
    let provides = flat("Provides")?;
    if let Some(bad) = provides.iter().find(|r| {
        r.constraint
            .as_ref()
            .is_some_and(|(op, _)| *op != relation::Op::Eq)
    }) {
        return Err(invalid(
            "Provides",
            format!("only '=' is allowed in Provides, not {bad}"),
        ));
    }
    let size = p
        .get("Size")
        .map(|s| {
            s.parse::<u64>()
                .map_err(|e| invalid("Size", format!("{s:?}: {e}")))
        })
        .transpose()?;
    let sha256 = p
        .get("SHA256")
        .map(|s| {
            if s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
                Ok(s.to_ascii_lowercase())
            } else {
                Err(invalid("SHA256", format!("{s:?} is not 64 hex digits")))
            }
        })
        .transpose()?;
    let filename = p.get("Filename").map(str::to_owned);
    if let Some(f) = &filename
        && (f.is_empty() || f.starts_with('/') || f.split('/').any(|part| part == ".."))
    {
        return Err(invalid(
            "Filename",
            format!("{f:?} is not a relative path inside the archive"),
        ));
    }
    let (source, source_version) = match p.get("Source") {
        None => (name, None),
        Some(field) => parse_source(field).map_err(|why| invalid("Source", why))?,
    };
    Ok(Package {
        source: source.to_owned(),
        source_version: source_version.unwrap_or(version).to_owned(),
        name: name.to_owned(),
        version: version.to_owned(),
        architecture: architecture.to_owned(),
        multi_arch,
        essential,
        pre_depends: list("Pre-Depends")?,
        depends: list("Depends")?,
        provides,
        conflicts: flat("Conflicts")?,
        breaks: flat("Breaks")?,
        filename,
        size,
        sha256,
        priority: p.get("Priority").map(str::to_owned),
        line: p.line,
    })
}

/// `name` or `name (version)`.
fn parse_source(field: &str) -> Result<(&str, Option<&str>), String> {
    let (name, version) = match field.split_once('(') {
        None => (field.trim(), None),
        Some((name, rest)) => {
            let version = rest
                .strip_suffix(')')
                .ok_or_else(|| format!("expected name (version), not {field:?}"))?
                .trim();
            version::check(version)?;
            (name.trim(), Some(version))
        }
    };
    relation::check_name(name)?;
    Ok((name, version))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn stanza(extra: &str) -> String {
        format!(
            "Package: foo\nVersion: 1.0-1\nArchitecture: amd64\nFilename: pool/main/f/foo/foo_1.0-1_amd64.deb\nSize: 1234\nSHA256: {HASH}\n{extra}"
        )
    }

    #[test]
    fn parses_a_full_stanza() {
        let text = stanza(
            "Multi-Arch: foreign\nEssential: yes\nPre-Depends: libc6 (>= 2.34)\nDepends: a | b, c\nProvides: bar (= 1.0), baz\nConflicts: old\nBreaks: older (<< 2)\nPriority: required\n",
        );
        let ps = parse_index(&text, "Packages").unwrap();
        let p = &ps[0];
        assert_eq!((p.name.as_str(), p.version.as_str()), ("foo", "1.0-1"));
        assert_eq!(p.multi_arch, MultiArch::Foreign);
        assert!(p.essential);
        assert_eq!(p.depends.len(), 2);
        assert_eq!(p.provides.len(), 2);
        assert_eq!(p.breaks[0].to_string(), "older (<< 2)");
        assert_eq!(p.size, Some(1234));
        assert_eq!(p.sha256.as_deref(), Some(HASH));
        assert_eq!(p.priority.as_deref(), Some("required"));
        assert_eq!(
            (p.source.as_str(), p.source_version.as_str()),
            ("foo", "1.0-1")
        );
        let binnmu =
            stanza("Source: foo-src (1.0-1)\n").replace("Version: 1.0-1", "Version: 1.0-1+b1");
        let p = &parse_index(&binnmu, "P").unwrap()[0];
        assert_eq!(
            (p.source.as_str(), p.source_version.as_str()),
            ("foo-src", "1.0-1")
        );
        let p = &parse_index(&stanza("Source: bar\n"), "P").unwrap()[0];
        assert_eq!(
            (p.source.as_str(), p.source_version.as_str()),
            ("bar", "1.0-1")
        );
        assert!(parse_index(&stanza("Source: bar (1.0\n"), "P").is_err());
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let text = format!(
            "{}\nPackage: bar\nVersion: 1\nArchitecture: all\n",
            stanza("")
        );
        let e = parse_index(&text, "P").unwrap_err();
        assert_eq!(
            e,
            ParseError::Missing {
                file: "P".into(),
                line: 8,
                field: "Filename"
            }
        );
        let e = parse_index(&stanza("Depends: a (>= )\n"), "P").unwrap_err();
        assert!(e.to_string().starts_with("P:7: field Depends:"), "{e}");
        let e = parse_index(&stanza("Conflicts: a | b\n"), "P").unwrap_err();
        assert!(e.to_string().contains("alternatives"), "{e}");
        let e = parse_index(&stanza("Provides: a (>= 1)\n"), "P").unwrap_err();
        assert!(e.to_string().contains("Provides"), "{e}");
        let e = parse_index(&stanza("Multi-Arch: maybe\n"), "P").unwrap_err();
        assert!(e.to_string().contains("Multi-Arch"), "{e}");
        let bad_size = stanza("").replace("Size: 1234", "Size: -1");
        let e = parse_index(&bad_size, "P").unwrap_err();
        assert!(e.to_string().starts_with("P:5: field Size"), "{e}");
        let bad_path = stanza("").replace("pool/main", "../main");
        assert!(parse_index(&bad_path, "P").is_err());
        let bad_version = stanza("").replace("1.0-1", "x 1");
        assert!(parse_index(&bad_version, "P").is_err());
    }
}
