//! `nodeimg bom diff`'s readable report (the differences themselves, and the `--json` report,
//! are the `bom` crate's [`bom::diff`]).

use std::fmt::Write as _;
use std::path::Path;

use bom::diff::BomDiff;

use crate::untrusted::escape;

/// The readable report of `d`, the differences from BOM `a` to BOM `b`: one block per group
/// that differs. Every string from the BOMs (and the paths) is shown through [`escape`], so a
/// name cannot colour the terminal or forge a line.
pub fn render(d: &BomDiff, a: &Path, b: &Path) -> String {
    let mut out = String::new();
    let a = a.display().to_string();
    let b = b.display().to_string();
    if d.is_identical() {
        let _ = writeln!(
            out,
            "identical: {} and {} list the same contents",
            escape(&a),
            escape(&b)
        );
        return out;
    }
    let _ = writeln!(out, "--- {}\n+++ {}", escape(&a), escape(&b));
    for (name, g) in d.groups() {
        if g.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n{name}: {} added, {} removed, {} changed",
            g.added.len(),
            g.removed.len(),
            g.changed.len()
        );
        for a in &g.added {
            let _ = writeln!(out, "  + {}", escape(a));
        }
        for r in &g.removed {
            let _ = writeln!(out, "  - {}", escape(r));
        }
        for c in &g.changed {
            let _ = writeln!(
                out,
                "  ~ {}: {} -> {}",
                escape(&c.key),
                escape(&c.from),
                escape(&c.to)
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use bom::diff::{Change, Group};

    use super::*;

    #[test]
    fn identical_boms_say_so() {
        assert!(
            render(&BomDiff::default(), Path::new("a"), Path::new("b")).starts_with("identical")
        );
    }

    #[test]
    fn each_group_that_differs_is_one_block() {
        let d = BomDiff {
            packages: Group {
                added: vec!["zsh:amd64 5.9-4".into()],
                removed: vec!["bash:amd64 5.2.15-2+b7".into()],
                changed: vec![Change {
                    key: "runc:amd64 held".into(),
                    from: "true".into(),
                    to: "false".into(),
                }],
            },
            components: Group {
                changed: vec![Change {
                    key: "kubeadm /usr/bin/kubeadm version".into(),
                    from: "v1.20.2".into(),
                    to: "v1.20.3".into(),
                }],
                ..Group::default()
            },
            ..BomDiff::default()
        };
        let text = render(&d, Path::new("old"), Path::new("new"));
        assert!(
            text.contains("packages: 1 added, 1 removed, 1 changed"),
            "{text}"
        );
        assert!(
            text.contains("  ~ kubeadm /usr/bin/kubeadm version: v1.20.2 -> v1.20.3"),
            "{text}"
        );
    }
}
