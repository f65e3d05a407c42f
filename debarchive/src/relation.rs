//! Package relations: `Depends: a (>= 1) | b:any, c [amd64] <!nocheck>`.

use std::fmt;

use crate::version;

/// A version comparison in a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// `<<`
    Lt,
    /// `<=` (also the obsolete `<`)
    Le,
    /// `=`
    Eq,
    /// `>=` (also the obsolete `>`)
    Ge,
    /// `>>`
    Gt,
}

impl Op {
    /// The operator as written in control files.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<<",
            Op::Le => "<=",
            Op::Eq => "=",
            Op::Ge => ">=",
            Op::Gt => ">>",
        }
    }

    /// Whether `have` satisfies `self want`.
    pub fn holds(self, have: &str, want: &str) -> bool {
        let ord = version::compare(have, want);
        match self {
            Op::Lt => ord.is_lt(),
            Op::Le => ord.is_le(),
            Op::Eq => ord.is_eq(),
            Op::Ge => ord.is_ge(),
            Op::Gt => ord.is_gt(),
        }
    }
}

/// One relation to a package name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relation {
    /// The package (or virtual package) name.
    pub name: String,
    /// The architecture qualifier after `:` (`any`, `native`, or an architecture name).
    pub arch: Option<String>,
    /// The version constraint, if any.
    pub constraint: Option<(Op, String)>,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(arch) = &self.arch {
            write!(f, ":{arch}")?;
        }
        if let Some((op, v)) = &self.constraint {
            write!(f, " ({} {v})", op.as_str())?;
        }
        Ok(())
    }
}

/// `a | b | c`: any one of them satisfies the dependency.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Alternatives(pub Vec<Relation>);

impl fmt::Display for Alternatives {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

/// Parses a relation field of a binary package (`Depends`, `Pre-Depends`, …).
///
/// Binary packages carry no architecture restrictions, so one (`[amd64]`) is an error here:
/// use [`parse_list_for`] with the native architecture for source-style fields. Build profiles
/// (`<!nocheck>`) are evaluated with no profile active.
pub fn parse_list(field: &str) -> Result<Vec<Alternatives>, String> {
    parse_inner(field, None)
}

/// As [`parse_list`], evaluating architecture restrictions (`[amd64 !i386 linux-any]`) for
/// `native_arch`: a relation whose restriction excludes it is dropped, and an alternative
/// group left empty is dropped.
pub fn parse_list_for(field: &str, native_arch: &str) -> Result<Vec<Alternatives>, String> {
    parse_inner(field, Some(native_arch))
}

fn parse_inner(field: &str, native_arch: Option<&str>) -> Result<Vec<Alternatives>, String> {
    let mut list = Vec::new();
    let field = field.trim();
    if field.is_empty() {
        return Ok(list);
    }
    for group in field.split(',') {
        let mut alternatives = Vec::new();
        for one in group.split('|') {
            if let Some(relation) = parse_one(one, native_arch)? {
                alternatives.push(relation);
            }
        }
        if !alternatives.is_empty() {
            list.push(Alternatives(alternatives));
        }
    }
    Ok(list)
}

/// Parses one relation; `None` when its restrictions drop it.
fn parse_one(text: &str, native_arch: Option<&str>) -> Result<Option<Relation>, String> {
    let mut rest = text.trim();
    let name_end = rest
        .find(|c: char| c.is_whitespace() || "([<".contains(c))
        .unwrap_or(rest.len());
    let (name_arch, after) = rest.split_at(name_end);
    if name_arch.is_empty() {
        return Err(format!("empty package name in relation {:?}", text.trim()));
    }
    let (name, arch) = match name_arch.split_once(':') {
        Some((n, a)) => (n, Some(a)),
        None => (name_arch, None),
    };
    check_name(name).map_err(|why| format!("{why} in relation {:?}", text.trim()))?;
    if let Some(a) = arch
        && (a.is_empty() || !a.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    {
        return Err(format!(
            "invalid architecture qualifier in {:?}",
            text.trim()
        ));
    }
    rest = after.trim_start();
    let mut constraint = None;
    if let Some(inner) = rest.strip_prefix('(') {
        let Some((inside, after)) = inner.split_once(')') else {
            return Err(format!("missing ')' in relation {:?}", text.trim()));
        };
        constraint = Some(
            parse_constraint(inside.trim())
                .map_err(|why| format!("{why} in relation {:?}", text.trim()))?,
        );
        rest = after.trim_start();
    }
    let mut keep = true;
    if let Some(inner) = rest.strip_prefix('[') {
        let Some((inside, after)) = inner.split_once(']') else {
            return Err(format!("missing ']' in relation {:?}", text.trim()));
        };
        let Some(native) = native_arch else {
            return Err(format!(
                "architecture restriction [{inside}] in a binary package relation {:?}",
                text.trim()
            ));
        };
        keep &= arch_list_matches(inside, native)?;
        rest = after.trim_start();
    }
    while let Some(inner) = rest.strip_prefix('<') {
        let Some((inside, after)) = inner.split_once('>') else {
            return Err(format!("missing '>' in relation {:?}", text.trim()));
        };
        // With no build profile active, `<a b>` (a and b) holds only if every term is negated.
        keep &= inside.split_whitespace().all(|term| term.starts_with('!'));
        rest = after.trim_start();
    }
    if !rest.is_empty() {
        return Err(format!("unexpected {rest:?} in relation {:?}", text.trim()));
    }
    Ok(keep.then(|| Relation {
        name: name.to_owned(),
        arch: arch.map(str::to_owned),
        constraint,
    }))
}

/// Debian package names: lower-case letters, digits, `+ - .`, at least two characters,
/// starting with an alphanumeric. dpkg accepts upper-case in relations, and so do we.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "+-.".contains(c);
    if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(format!("invalid package name {name:?}"));
    }
    if let Some(c) = name.chars().find(|&c| !ok(c)) {
        return Err(format!("invalid character {c:?} in package name {name:?}"));
    }
    Ok(())
}

fn parse_constraint(inside: &str) -> Result<(Op, String), String> {
    let (op, version) = [
        ("<<", Op::Lt),
        ("<=", Op::Le),
        (">=", Op::Ge),
        (">>", Op::Gt),
        ("=", Op::Eq),
        ("<", Op::Le),
        (">", Op::Ge),
    ]
    .into_iter()
    .find_map(|(text, op)| inside.strip_prefix(text).map(|v| (op, v.trim())))
    .ok_or_else(|| format!("invalid version constraint ({inside})"))?;
    version::check(version)?;
    Ok((op, version.to_owned()))
}

/// `[amd64 linux-any]` or `[!i386 !arm64]` for `native`.
fn arch_list_matches(list: &str, native: &str) -> Result<bool, String> {
    let terms: Vec<&str> = list.split_whitespace().collect();
    if terms.is_empty() {
        return Err("empty architecture restriction []".into());
    }
    let negated = terms[0].starts_with('!');
    if terms.iter().any(|t| t.starts_with('!') != negated) {
        return Err(format!(
            "architecture restriction [{list}] mixes negated and plain names"
        ));
    }
    let hit = terms
        .iter()
        .any(|t| arch_matches(t.trim_start_matches('!'), native));
    Ok(hit != negated)
}

/// Whether the architecture `pattern` (`amd64`, `any`, `linux-any`, `any-amd64`) matches
/// `arch`, for the Linux architectures Debian names by their CPU alone.
pub(crate) fn arch_matches(pattern: &str, arch: &str) -> bool {
    let (os, cpu) = arch.split_once('-').unwrap_or(("linux", arch));
    match pattern.split_once('-') {
        _ if pattern == "any" || pattern == arch => true,
        Some(("any", p_cpu)) => p_cpu == cpu,
        Some((p_os, "any")) => p_os == os,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(name: &str, arch: Option<&str>, c: Option<(Op, &str)>) -> Relation {
        Relation {
            name: name.into(),
            arch: arch.map(Into::into),
            constraint: c.map(|(o, v)| (o, v.into())),
        }
    }

    #[test]
    fn parses_groups_alternatives_constraints_and_qualifiers() {
        let list =
            parse_list("libc6 (>= 2.34), perl:any | python3:any (>>3.1~) ,libx (= 1:2-3)").unwrap();
        assert_eq!(
            list,
            vec![
                Alternatives(vec![rel("libc6", None, Some((Op::Ge, "2.34")))]),
                Alternatives(vec![
                    rel("perl", Some("any"), None),
                    rel("python3", Some("any"), Some((Op::Gt, "3.1~"))),
                ]),
                Alternatives(vec![rel("libx", None, Some((Op::Eq, "1:2-3")))]),
            ]
        );
        assert_eq!(list[1].to_string(), "perl:any | python3:any (>> 3.1~)");
        assert_eq!(parse_list("  ").unwrap(), vec![]);
        assert_eq!(
            parse_list("a (< 1), b (> 2)").unwrap()[0].0[0].constraint,
            Some((Op::Le, "1".into()))
        );
    }

    #[test]
    fn multi_line_field() {
        let list = parse_list("a,\nb (>= 1),\n c").unwrap();
        assert_eq!(list.len(), 3);
    }

    #[test]
    fn restrictions_evaluated_for_native() {
        let list = parse_list_for(
            "a [amd64], b [!amd64], c [linux-any] <!nocheck>, d <nocheck>",
            "amd64",
        )
        .unwrap();
        let names: Vec<&str> = list.iter().map(|a| a.0[0].name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(parse_list("a [amd64]").is_err());
        assert!(parse_list_for("a [amd64 !i386]", "amd64").is_err());
    }

    #[test]
    fn refuses_bad_relations() {
        for bad in [
            "a (>= )", "a (~ 1)", "a (>= 1", "(>= 1)", "a,,b", "a b", "a | ", "Ä", "a:",
        ] {
            assert!(parse_list(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn op_holds() {
        assert!(Op::Ge.holds("2.36-9", "2.34"));
        assert!(!Op::Lt.holds("1.0", "1.0"));
        assert!(Op::Le.holds("1.0~rc1", "1.0"));
        assert!(Op::Eq.holds("0:1.0", "1.0-0"));
    }
}
