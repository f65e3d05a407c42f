//! dpkg's status database (`/var/lib/dpkg/status`): which packages are installed.

use crate::control;
use crate::packages::{self, Package, ParseError};

/// The packages of a dpkg status file whose `Status` is `<want> ok installed` (any want:
/// `install`, `hold`, `deinstall`, `purge`); stanzas in any other state (`config-files`,
/// `half-installed`, `not-installed`, …) or with a flag other than `ok` are skipped, as apt
/// does not count them as installed.
pub fn installed(text: &str, file: &str) -> Result<Vec<Package>, ParseError> {
    let mut installed = Vec::new();
    for paragraph in control::parse(text, file)? {
        let Some(status) = paragraph.get("Status") else {
            return Err(ParseError::Missing {
                file: file.to_owned(),
                line: paragraph.line,
                field: "Status",
            });
        };
        let words: Vec<&str> = status.split_whitespace().collect();
        let [_want, flag, state] = words[..] else {
            return Err(ParseError::Invalid {
                file: file.to_owned(),
                line: paragraph.field("Status").map_or(paragraph.line, |f| f.line),
                field: "Status",
                why: format!("expected three words (want flag state), not {status:?}"),
            });
        };
        if flag == "ok" && state == "installed" {
            installed.push(packages::from_paragraph(&paragraph, file)?);
        }
    }
    Ok(installed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ok_installed_counts() {
        let text = "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\n\
                    Package: b\nStatus: deinstall ok config-files\nVersion: 1\nArchitecture: amd64\n\n\
                    Package: c\nStatus: hold ok installed\nVersion: 2\nArchitecture: all\n\n\
                    Package: d\nStatus: install reinstreq half-installed\nVersion: 1\nArchitecture: all\n\n\
                    Package: e\nStatus: purge ok not-installed\nArchitecture: amd64\n";
        let names: Vec<String> = installed(text, "status")
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["a", "c"]);
    }

    #[test]
    fn bad_status_is_an_error() {
        let e = installed("Package: a\nStatus: installed\n", "status").unwrap_err();
        assert!(e.to_string().starts_with("status:2: field Status"), "{e}");
        let e = installed("Package: a\nVersion: 1\n", "status").unwrap_err();
        assert!(e.to_string().contains("no Status"), "{e}");
    }
}
