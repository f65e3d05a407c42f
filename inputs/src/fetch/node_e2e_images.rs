//! The container images the node conformance suite (`e2e_node.test`) uses at a Kubernetes
//! version, derived from that version's source, not from a hand-kept table.
//!
//! # How the list is derived
//!
//! The suite pre-pulls `framework.ImagePrePullList`, which `updateImageAllowList`
//! (`test/e2e_node/image_list.go`) sets to `NodePrePullImageList` (same file) ∪
//! `PrePulledImages` (`test/e2e/common`, `util.go` at v1.20.2). [`derive`] reads both
//! `var NAME = sets.NewString(` blocks (one entry a line) and evaluates each entry as Go
//! would with `KUBE_TEST_REPO_LIST` unset (manifest.go's default registries):
//!
//! - a string literal `"ref"` is itself;
//! - `imageutils.GetE2EImage(imageutils.X)` is `REGISTRY/NAME:VERSION` from the line
//!   `configs[X] = Config{registryVar, "NAME", "VERSION"}` of `test/utils/image/manifest.go`,
//!   `registryVar` being `registry.Field` in its `var` block and `Field` the default
//!   `Field: "value",` of `initReg`'s `RegistryList{…}` literal (and manifest.go's
//!   `GetE2EImage` must still format `"%s/%s:%s"` from registry, name and version);
//! - `imageutils.F()` is evaluated as above when manifest.go's `func F() string` body is
//!   `return GetE2EImage(X)` (`GetPauseImageName`);
//! - an identifier is the one-line `var`/`const IDENT = …` of the same package directory,
//!   evaluated in turn (`busyboxImage`);
//! - a call to a function of the package that reads its image from a DaemonSet manifest
//!   (`e2emanifest.DaemonSetFromURL`/`DaemonSetFromData`: the GPU device plugin's, fetched
//!   from raw.githubusercontent.com at run time) is left out, with the reason, as the suite
//!   offline gets "" for it and skips it; so is an entry that evaluates to "".
//!
//! Any other form is an error naming `file:line`, so a version that writes the list another
//! way fails loudly instead of losing images. What `updateImageAllowList` adds from the
//! environment (node-problem-detector, the SR-IOV plugin) is not part of the union.
//!
//! Added to that ([`ImageList::static_pods`]): every `image: REF` line of a YAML template in
//! `test/e2e_node/*.go` (a static pod the kubelet runs, e.g. `mirror_pod_grace_period_test.go`'s
//! `image: busybox:1.31.1`), skipping format verbs (`image: %s`, filled from the list) and Go
//! fields (`image: "…",`), any other value an error naming `file:line`, normalized as
//! containerd normalizes a name
//! ([`normalize_reference`]: `busybox:1.31.1` → `docker.io/library/busybox:1.31.1`).
//!
//! [`read_source_tar_gz`] reads only the needed members (the `.go` files directly in
//! [`SOURCE_DIRS`]) from the stream of upstream's `kubernetes-src.tar.gz` (the repository at
//! the archive's root); [`Sources::from_dir`] reads them from an unpacked tree.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// The directories whose `.go` files (not those of subdirectories) the list is derived from.
pub const SOURCE_DIRS: &[&str] = &["test/e2e_node", "test/e2e/common", "test/utils/image"];

/// The file of the suite's own pre-pull list.
pub const IMAGE_LIST_GO: &str = "test/e2e_node/image_list.go";

/// The file of the image table and registries.
pub const MANIFEST_GO: &str = "test/utils/image/manifest.go";

/// The two declared lists: (package directory, variable).
const DECLARED: [(&str, &str); 2] = [
    ("test/e2e_node", "NodePrePullImageList"),
    ("test/e2e/common", "PrePulledImages"),
];

/// How deep identifiers may refer to identifiers.
const MAX_DEPTH: usize = 4;

/// The list cannot be derived from the source given.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageListError {
    /// A needed file or definition is not in the source.
    #[error("{file}: {what} not found in the Kubernetes source")]
    Missing {
        /// The file or directory looked in.
        file: String,
        /// What was looked for.
        what: String,
    },
    /// An entry or definition has a form the evaluator does not know.
    #[error("{file}:{line}: cannot evaluate {text:?}: {why}")]
    Unsupported {
        /// The file.
        file: String,
        /// Its 1-based line.
        line: usize,
        /// The line's text, trimmed.
        text: String,
        /// What was expected.
        why: String,
    },
    /// The source archive could not be read.
    #[error("{archive}: {cause}")]
    Archive {
        /// The archive.
        archive: String,
        /// The error.
        cause: std::io::Error,
    },
}

/// The source files the list is read from: path in the tree → text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sources {
    files: BTreeMap<String, String>,
}

/// Whether `path` (relative to the tree's root) is one of the files [`derive`] reads.
pub fn wanted(path: &str) -> bool {
    let Some((dir, name)) = path.rsplit_once('/') else {
        return false;
    };
    name.ends_with(".go") && SOURCE_DIRS.contains(&dir)
}

impl Sources {
    /// Adds one file.
    pub fn insert(&mut self, path: &str, text: &str) {
        self.files.insert(path.to_owned(), text.to_owned());
    }

    /// The [`wanted`] files of the tree at `root`.
    pub fn from_dir(root: &Path) -> std::io::Result<Self> {
        let mut s = Self::default();
        for dir in SOURCE_DIRS {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
                continue;
            };
            for e in entries {
                let e = e?;
                let name = e.file_name().to_string_lossy().into_owned();
                let path = format!("{dir}/{name}");
                if wanted(&path) && e.file_type()?.is_file() {
                    s.insert(&path, &std::fs::read_to_string(e.path())?);
                }
            }
        }
        Ok(s)
    }

    fn get(&self, path: &str) -> Result<&str, ImageListError> {
        self.files
            .get(path)
            .map(String::as_str)
            .ok_or_else(|| ImageListError::Missing {
                file: path.to_owned(),
                what: "the file".into(),
            })
    }

    /// The files directly in `dir`.
    fn in_dir<'a>(&'a self, dir: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.files
            .iter()
            .filter(move |(p, _)| p.rsplit_once('/').is_some_and(|(d, _)| d == dir))
            .map(|(p, t)| (p.as_str(), t.as_str()))
    }
}

/// Reads the [`wanted`] members of a `kubernetes-src.tar.gz` (`archive` names it in errors)
/// from its stream, without unpacking the rest. Members may be named with or without a
/// leading `./`.
pub fn read_source_tar_gz(reader: impl Read, archive: &str) -> Result<Sources, ImageListError> {
    let bad = |cause| ImageListError::Archive {
        archive: archive.to_owned(),
        cause,
    };
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(reader));
    let mut s = Sources::default();
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path().map_err(bad)?.to_string_lossy().into_owned();
        let path = path.strip_prefix("./").unwrap_or(&path).to_owned();
        if wanted(&path) {
            let mut text = String::new();
            entry.read_to_string(&mut text).map_err(bad)?;
            s.insert(&path, &text);
        }
    }
    Ok(s)
}

/// An entry of a declared list that is not an image the suite pulls, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeftOut {
    /// `file:line`.
    pub at: String,
    /// The entry as written.
    pub entry: String,
    /// Why it is left out.
    pub why: String,
}

/// What [`derive`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageList {
    /// `NodePrePullImageList ∪ PrePulledImages` as the suite evaluates them, sorted, without
    /// "" (what the fixtures' Go lister prints).
    pub declared: Vec<String>,
    /// The static pods' images, normalized, sorted.
    pub static_pods: Vec<String>,
    /// Entries left out.
    pub left_out: Vec<LeftOut>,
}

impl ImageList {
    /// Every image, normalized ([`normalize_reference`]), sorted, each once.
    pub fn all(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .declared
            .iter()
            .map(|r| normalize_reference(r))
            .chain(self.static_pods.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// A reference as containerd names it: a first path segment without `.` or `:` (and not
/// `localhost`) is a Docker Hub repository (`docker.io/`, and `library/` for a one-segment
/// name); no tag or digest means `:latest`.
pub fn normalize_reference(reference: &str) -> String {
    let (name, at) = match reference.split_once('@') {
        Some((n, d)) => (n, format!("@{d}")),
        None => (reference, String::new()),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let tagged = at.is_empty() && !last.contains(':');
    let name = match name.split_once('/') {
        None => format!("docker.io/library/{name}"),
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => name.to_owned(),
        Some(_) => format!("docker.io/{name}"),
    };
    if tagged {
        format!("{name}:latest")
    } else {
        format!("{name}{at}")
    }
}

/// Derives the list from `sources` (see the module doc).
pub fn derive(sources: &Sources) -> Result<ImageList, ImageListError> {
    let manifest = Manifest::read(sources)?;
    let mut declared = Vec::new();
    let mut left_out = Vec::new();
    for (dir, var) in DECLARED {
        let eval = Eval {
            sources,
            manifest: &manifest,
            dir,
        };
        for (file, line, entry) in set_entries(sources, dir, var)? {
            match eval.entry(file, line, &entry, 0)? {
                Value::Image(r) if !r.is_empty() => declared.push(r),
                Value::Image(_) => left_out.push(LeftOut {
                    at: format!("{file}:{line}"),
                    entry,
                    why: "evaluates to \"\"".into(),
                }),
                Value::LeftOut(why) => left_out.push(LeftOut {
                    at: format!("{file}:{line}"),
                    entry,
                    why,
                }),
            }
        }
    }
    declared.sort();
    declared.dedup();
    let mut static_pods = Vec::new();
    for (file, text) in sources.in_dir("test/e2e_node") {
        for (i, l) in text.lines().enumerate() {
            if let Some(r) = static_pod_image(l).map_err(|why| unsupported(file, i + 1, l, why))? {
                static_pods.push(normalize_reference(r));
            }
        }
    }
    static_pods.sort();
    static_pods.dedup();
    Ok(ImageList {
        declared,
        static_pods,
        left_out,
    })
}

/// The reference of a YAML `image: REF` (or `- image: REF`) line: none for another line, a format verb
/// (`image: %s`, filled from the declared images) or a Go field (`image: "…",` or
/// `image: x,`); an error for any other value.
fn static_pod_image(line: &str) -> Result<Option<&str>, &'static str> {
    let t = line.trim();
    let t = t.strip_prefix("- ").unwrap_or(t);
    let Some(value) = t.strip_prefix("image:").map(str::trim) else {
        return Ok(None);
    };
    if value == "%s" || value.ends_with(',') {
        return Ok(None);
    }
    let plain = !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-/:@".contains(c));
    if plain {
        Ok(Some(value))
    } else {
        Err("expected a static pod's `image: REF` or `image: %s`, or a Go field ending with ','")
    }
}

fn unsupported(file: &str, line: usize, text: &str, why: &str) -> ImageListError {
    ImageListError::Unsupported {
        file: file.to_owned(),
        line,
        text: text.trim().to_owned(),
        why: why.to_owned(),
    }
}

/// The entries of `var VAR = sets.NewString(` … `)` in a file of `dir`: (file, line, entry).
fn set_entries<'a>(
    sources: &'a Sources,
    dir: &'a str,
    var: &str,
) -> Result<Vec<(&'a str, usize, String)>, ImageListError> {
    let opening = format!("var {var} = sets.NewString(");
    for (file, text) in sources.in_dir(dir) {
        let lines: Vec<&str> = text.lines().collect();
        let Some(start) = lines
            .iter()
            .position(|l| l.trim_start().starts_with(&opening))
        else {
            continue;
        };
        if lines[start].trim() != opening {
            return Err(unsupported(
                file,
                start + 1,
                lines[start],
                "expected the entries on the lines after the opening, one a line",
            ));
        }
        let mut entries = Vec::new();
        for (i, l) in lines.iter().enumerate().skip(start + 1) {
            let t = l.trim();
            if t == ")" {
                return Ok(entries);
            }
            if t.is_empty() || t.starts_with("//") {
                continue;
            }
            let entry = t.strip_suffix(',').ok_or_else(|| {
                unsupported(file, i + 1, l, "expected one entry a line, ending with ','")
            })?;
            entries.push((file, i + 1, entry.trim().to_owned()));
        }
        return Err(unsupported(file, start + 1, lines[start], "no closing ')'"));
    }
    Err(ImageListError::Missing {
        file: format!("{dir}/*.go"),
        what: format!("`{opening}`"),
    })
}

enum Value {
    Image(String),
    LeftOut(String),
}

struct Eval<'a> {
    sources: &'a Sources,
    manifest: &'a Manifest,
    dir: &'a str,
}

const FORMS: &str = "expected a string literal, imageutils.GetE2EImage(imageutils.NAME), \
                     imageutils.F() returning GetE2EImage(NAME), a package variable set to one \
                     of those, or a package function reading a DaemonSet manifest";

fn is_ident(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Eval<'_> {
    fn entry(
        &self,
        file: &str,
        line: usize,
        expr: &str,
        depth: usize,
    ) -> Result<Value, ImageListError> {
        let bad = |why: &str| unsupported(file, line, expr, why);
        if depth > MAX_DEPTH {
            return Err(bad("identifiers nested too deep"));
        }
        if let Some(lit) = expr.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
            if lit.contains(['"', '\\']) {
                return Err(bad("a string literal with escapes"));
            }
            return Ok(Value::Image(lit.to_owned()));
        }
        if let Some(rest) = expr.strip_prefix("imageutils.") {
            let text = self.sources.get(file)?;
            if !text.contains("imageutils \"k8s.io/kubernetes/test/utils/image\"") {
                return Err(bad(
                    "the file does not import k8s.io/kubernetes/test/utils/image as imageutils",
                ));
            }
            if let Some(arg) = rest
                .strip_prefix("GetE2EImage(imageutils.")
                .and_then(|r| r.strip_suffix(')'))
            {
                return self
                    .manifest
                    .image(arg)
                    .map(Value::Image)
                    .ok_or_else(|| bad(&format!("{MANIFEST_GO} has no configs[{arg}]")));
            }
            if let Some(f) = rest.strip_suffix("()").filter(|f| is_ident(f)) {
                let name = self.manifest.functions.get(f).ok_or_else(|| {
                    bad(&format!(
                        "{MANIFEST_GO} has no `func {f}() string` returning GetE2EImage(NAME)"
                    ))
                })?;
                return self
                    .manifest
                    .image(name)
                    .map(Value::Image)
                    .ok_or_else(|| bad(&format!("{MANIFEST_GO} has no configs[{name}]")));
            }
            return Err(bad(FORMS));
        }
        if let Some(f) = expr.strip_suffix("()").filter(|f| is_ident(f)) {
            return self.package_function(file, line, expr, f);
        }
        if is_ident(expr) {
            let (def_file, def_line, value) = self.definition(expr).ok_or_else(|| {
                bad(&format!(
                    "no one-line `var {expr} = …` in {}/*.go; {FORMS}",
                    self.dir
                ))
            })?;
            return self.entry(def_file, def_line, &value, depth + 1);
        }
        Err(bad(FORMS))
    }

    /// `var NAME = EXPR` or `const NAME = EXPR` on one line of a file of the package.
    fn definition(&self, name: &str) -> Option<(&str, usize, String)> {
        for (file, text) in self.sources.in_dir(self.dir) {
            for (i, l) in text.lines().enumerate() {
                let t = l.trim();
                let rest = t
                    .strip_prefix("var ")
                    .or_else(|| t.strip_prefix("const "))
                    .and_then(|r| r.strip_prefix(name))
                    .map(str::trim_start);
                if let Some(value) = rest.and_then(|r| r.strip_prefix('=')) {
                    return Some((file, i + 1, value.trim().to_owned()));
                }
            }
        }
        None
    }

    /// A package function whose image comes from a DaemonSet manifest: left out.
    fn package_function(
        &self,
        file: &str,
        line: usize,
        expr: &str,
        f: &str,
    ) -> Result<Value, ImageListError> {
        let opening = format!("func {f}() string {{");
        for (def_file, text) in self.sources.in_dir(self.dir) {
            let lines: Vec<&str> = text.lines().collect();
            let Some(start) = lines.iter().position(|l| l.trim() == opening) else {
                continue;
            };
            let body = lines[start..]
                .iter()
                .take_while(|l| **l != "}")
                .copied()
                .collect::<Vec<_>>()
                .join("\n");
            let from = ["DaemonSetFromURL(", "DaemonSetFromData("]
                .into_iter()
                .find(|m| body.contains(m));
            return match from {
                Some(m) => Ok(Value::LeftOut(format!(
                    "{f} ({def_file}:{}) reads the image from a DaemonSet manifest at run time \
                     ({}); the suite gets \"\" for it offline and skips it",
                    start + 1,
                    m.trim_end_matches('(')
                ))),
                None => Err(unsupported(file, line, expr, FORMS)),
            };
        }
        Err(unsupported(
            file,
            line,
            expr,
            &format!("no `{opening}` in {}/*.go", self.dir),
        ))
    }
}

/// What manifest.go says: configs, registry variables' defaults, image functions.
struct Manifest {
    /// `configs[X]` → (registry value, name, version).
    configs: BTreeMap<String, (String, String, String)>,
    /// `F` → `X` for `func F() string { return GetE2EImage(X) }`.
    functions: BTreeMap<String, String>,
}

impl Manifest {
    fn read(sources: &Sources) -> Result<Self, ImageListError> {
        let text = sources.get(MANIFEST_GO)?;
        let lines: Vec<&str> = text.lines().collect();
        if !text.contains(
            "fmt.Sprintf(\"%s/%s:%s\", imageConfigs[image].registry, imageConfigs[image].name, imageConfigs[image].version)",
        ) {
            return Err(ImageListError::Missing {
                file: MANIFEST_GO.into(),
                what: "GetE2EImage formatting \"%s/%s:%s\" from registry, name and version".into(),
            });
        }
        // initReg's defaults: `Field: "value",` inside `registry := RegistryList{`.
        let mut fields = BTreeMap::new();
        let start = lines
            .iter()
            .position(|l| l.trim() == "registry := RegistryList{")
            .ok_or_else(|| ImageListError::Missing {
                file: MANIFEST_GO.into(),
                what: "`registry := RegistryList{` (initReg's defaults)".into(),
            })?;
        for (i, l) in lines.iter().enumerate().skip(start + 1) {
            let t = l.trim();
            if t == "}" {
                break;
            }
            let (field, value) = t
                .strip_suffix(',')
                .and_then(|t| t.split_once(':'))
                .map(|(f, v)| (f.trim(), v.trim()))
                .filter(|(f, _)| is_ident(f))
                .and_then(|(f, v)| Some((f, v.strip_prefix('"')?.strip_suffix('"')?)))
                .ok_or_else(|| {
                    unsupported(MANIFEST_GO, i + 1, l, "expected `Field: \"registry\",`")
                })?;
            fields.insert(field.to_owned(), value.to_owned());
        }
        // The registry variables: `name = registry.Field`.
        let mut vars = BTreeMap::new();
        for l in &lines {
            if let Some((name, field)) = l.trim().split_once('=')
                && let Some(field) = field.trim().strip_prefix("registry.")
                && is_ident(name.trim())
                && let Some(value) = fields.get(field.trim())
            {
                vars.insert(name.trim().to_owned(), value.clone());
            }
        }
        let mut configs = BTreeMap::new();
        for (i, l) in lines.iter().enumerate() {
            let t = l.trim();
            let Some(rest) = t.strip_prefix("configs[") else {
                continue;
            };
            let bad = |why: &str| unsupported(MANIFEST_GO, i + 1, l, why);
            let (key, rest) = rest.split_once("] = Config{").ok_or_else(|| {
                bad("expected `configs[X] = Config{registry, \"name\", \"version\"}`")
            })?;
            let parts: Vec<&str> = rest
                .strip_suffix('}')
                .ok_or_else(|| bad("expected the Config literal on one line"))?
                .split(',')
                .map(str::trim)
                .collect();
            let [registry, name, version] = parts.as_slice() else {
                return Err(bad("expected three fields: registry, name, version"));
            };
            let registry = vars
                .get(*registry)
                .ok_or_else(|| bad(&format!("{registry} is not a registry variable")))?;
            let unquote = |s: &str| -> Result<String, ImageListError> {
                s.strip_prefix('"')
                    .and_then(|s| s.strip_suffix('"'))
                    .map(str::to_owned)
                    .ok_or_else(|| bad(&format!("{s} is not a string literal")))
            };
            configs.insert(
                key.to_owned(),
                (registry.clone(), unquote(name)?, unquote(version)?),
            );
        }
        let mut functions = BTreeMap::new();
        for (i, l) in lines.iter().enumerate() {
            if let Some(f) = l
                .strip_prefix("func ")
                .and_then(|r| r.strip_suffix("() string {"))
                .filter(|f| is_ident(f))
                && let Some(x) = lines
                    .get(i + 1)
                    .and_then(|b| b.trim().strip_prefix("return GetE2EImage("))
                    .and_then(|r| r.strip_suffix(')'))
                    .filter(|x| is_ident(x))
                && lines.get(i + 2).is_some_and(|e| *e == "}")
            {
                functions.insert(f.to_owned(), x.to_owned());
            }
        }
        Ok(Self { configs, functions })
    }

    fn image(&self, key: &str) -> Option<String> {
        self.configs
            .get(key)
            .map(|(r, n, v)| format!("{r}/{n}:{v}"))
    }
}

#[cfg(test)]
#[path = "node_e2e_images_tests.rs"]
mod tests;
