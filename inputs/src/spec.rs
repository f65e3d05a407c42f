//! The build spec: one TOML file describing an image. Parsing is strict: an unknown key, a
//! wrong type, a missing field or a value that breaks a rule is one error naming the file, the
//! line and the column (`spec.toml:7:10: base.sha256: …`).
//!
//! ```toml
//! [image]
//! name = "debian12-k8s"
//! distro = "debian-12"
//! firmware = "uefi"          # or "bios"
//! disk_gib = 8               # whole GiB, so Azure's MiB and GCE's GiB rules hold
//!
//! [base]                     # the distro cloud image, pinned
//! path = "debian-12-genericcloud-amd64.qcow2"   # or url = "https://…"
//! sha256 = "…64 hex digits…" # optional for a path (hashed and locked) and for a url on
//!                            # the distro's image host (pinned from its checksum file)
//! keyring = "keys/images.gpg" # optional, url only, for a distro that signs its checksum
//!                            # file (Ubuntu): the key that signs it, instead of the distro's;
//!                            # relative to the spec's directory; the url may then be on any host
//! format = "qcow2"           # or "raw"
//!
//! [kubernetes]
//! version = "v1.20.2"
//! skip_addons = ["coredns"]  # optional: addons whose images are left out ("coredns",
//!                            # "kube-proxy"); the boot test's kubeadm init skips them
//! conformance = "quick"      # optional: "off" (default), "quick" or "full": the node
//!                            # conformance suite in the boot test (`nodeimg build
//!                            # --conformance` overrides it); fetch then locks its inputs
//!
//! [components]
//! containerd = "1.6.20"
//! runc = "1.1.5"
//! crictl = "1.20.0"
//! cni_plugins = "1.1.1"
//! pause = "3.2"              # optional: the sandbox image's tag; kubeadm's own pause is
//!                            # pulled in any case (its list comes from the locked kubeadm)
//!
//! [export]
//! formats = ["raw", "qcow2", "vhd", "ova", "gce", "aws"]
//!
//! [[files]]                  # copied into the guest after the built-in role
//! source = "files/motd"      # relative to the spec's directory
//! dest = "/etc/motd"
//! mode = "0644"
//!
//! [[commands]]               # run as root after the files, in order
//! name = "motd-perms"
//! run = "chmod 0644 /etc/motd"
//!
//! [[checks]]                 # run during validation; exit 0 passes
//! name = "motd-present"
//! run = "test -s /etc/motd"
//!
//! [fetch]                    # optional; only `nodeimg fetch` reads it
//! mirror = "http://mirror.example:8080"   # see `nodeimg fetch --mirror`
//!
//! [packages]                 # optional; see `spec::packages`
//! extra = ["nfs-common"]
//! ```

use std::path::{Path, PathBuf};

use diskimg::ImageFormat;
pub use distros::kubeadm_test::Addon;
pub use distros::node_conformance::Scope;
use exporters::{Firmware, Format};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;

use crate::located::{LocatedError, Locator};

pub mod packages;
pub use packages::{PackagesSection, PrivateArchive};

/// A spec that does not parse or breaks a rule: `file:line:column: what`.
pub type SpecError = LocatedError;

/// A parsed and checked build spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Where it was read from.
    pub path: PathBuf,
    /// SHA-256 of the file's bytes (recorded in the manifest and the BOM).
    pub sha256: String,
    /// `[image]`.
    pub image: ImageSection,
    /// `[base]`.
    pub base: BaseImage,
    /// `[kubernetes] version`, e.g. `v1.20.2`.
    pub kubernetes_version: String,
    /// `[kubernetes] skip_addons`: addons whose images are left out, sorted, without
    /// duplicates.
    pub skip_addons: Vec<Addon>,
    /// `[kubernetes] conformance`: which node conformance tests the boot test runs (`None`:
    /// off).
    pub conformance: Option<Scope>,
    /// `[components]`.
    pub components: Components,
    /// `[export] formats`, sorted, without duplicates.
    pub formats: Vec<Format>,
    /// `[[files]]`.
    pub files: Vec<ExtraFile>,
    /// `[[commands]]`.
    pub commands: Vec<NamedScript>,
    /// `[[checks]]`.
    pub checks: Vec<NamedScript>,
    /// `[fetch]` (optional).
    pub fetch: FetchSection,
    /// `[packages]` (optional).
    pub packages: PackagesSection,
}

/// `[fetch]`: how `nodeimg fetch` downloads (nothing here changes what is built).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FetchSection {
    /// Base URL of a mirror that serves every upstream URL as `{mirror}/{host}{path}` and
    /// registry images at `{mirror scheme and host}/v2/…` (`--mirror` overrides it).
    pub mirror: Option<String>,
}

/// `[image]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSection {
    /// Artifact base name: 1–64 characters of `[a-z0-9._-]`, starting with a letter or digit.
    pub name: String,
    /// Distro id, one of `distros::known_ids()` (`debian-12`, `ubuntu-24.04`, …).
    pub distro: String,
    /// Boot firmware.
    pub firmware: Firmware,
    /// Disk size in GiB.
    pub disk_gib: u64,
}

/// Where the base image comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseSource {
    /// A local file (relative paths are resolved against the spec's directory).
    Path(PathBuf),
    /// A URL `nodeimg fetch` downloads.
    Url(String),
}

/// `[base]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// Path or URL.
    pub source: BaseSource,
    /// Lower-case hex SHA-256 of the image file. Optional for a `path` (the file is hashed)
    /// and for a `url` on the distro's image host (pinned from its published checksum file).
    pub sha256: Option<String>,
    /// The keyring that verifies the signature of the checksum file next to a `url`, instead
    /// of the distro's (a private image host, a test key). Only for a distro that signs its
    /// checksum files; with it, the url may be on any host.
    pub keyring: Option<PathBuf>,
    /// `qcow2` or `raw` (a cloud image; nothing else boots as a base).
    pub format: ImageFormat,
}

/// `[components]`: the pinned versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Components {
    /// containerd.
    pub containerd: String,
    /// runc.
    pub runc: String,
    /// crictl (cri-tools).
    pub crictl: String,
    /// CNI plugins.
    pub cni_plugins: String,
    /// The pause (sandbox) image tag, when the spec chooses it; otherwise kubeadm's own.
    pub pause: Option<String>,
}

/// A user file copied into the guest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraFile {
    /// On the host (resolved against the spec's directory).
    pub source: PathBuf,
    /// Absolute path in the guest.
    pub dest: String,
    /// Permission bits.
    pub mode: u32,
}

/// A user command or check: a name and a shell script run as root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedScript {
    /// Unique within its list: 1–64 characters of `[A-Za-z0-9._-]`.
    pub name: String,
    /// The script (`sh -c`).
    pub run: String,
}

// ---- the TOML shape (strict) ----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    image: RawImage,
    base: RawBase,
    kubernetes: RawKubernetes,
    components: RawComponents,
    export: RawExport,
    #[serde(default)]
    files: Vec<RawFile>,
    #[serde(default)]
    commands: Vec<RawScript>,
    #[serde(default)]
    checks: Vec<RawScript>,
    fetch: Option<RawFetch>,
    packages: Option<packages::RawPackages>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFetch {
    mirror: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawImage {
    name: Spanned<String>,
    distro: Spanned<String>,
    firmware: Spanned<String>,
    disk_gib: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    path: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    sha256: Option<Spanned<String>>,
    keyring: Option<Spanned<String>>,
    format: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKubernetes {
    version: Spanned<String>,
    skip_addons: Option<Spanned<Vec<Spanned<String>>>>,
    conformance: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponents {
    containerd: Spanned<String>,
    runc: Spanned<String>,
    crictl: Spanned<String>,
    cni_plugins: Spanned<String>,
    pause: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExport {
    formats: Spanned<Vec<Spanned<String>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    source: Spanned<String>,
    dest: Spanned<String>,
    mode: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScript {
    name: Spanned<String>,
    run: Spanned<String>,
}

/// Reads and checks the spec at `path`.
pub fn load(path: &Path) -> Result<Spec, SpecError> {
    crate::located::load(path, crate::documents::SPEC_LIMIT, "a spec", parse)
}

/// Parses and checks spec `text` read from `path`.
pub fn parse(path: &Path, text: &str) -> Result<Spec, SpecError> {
    let loc = Locator { path, text };
    let raw: RawSpec = loc.parse_toml()?;
    let sha256 = hex::encode(Sha256::digest(text.as_bytes()));
    check(&loc, raw, sha256)
}

/// Checks a mirror base URL: `http://` or `https://`, a host, no query, fragment, user
/// information or white space. Returns it without trailing slashes.
pub fn check_mirror(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or_else(|| format!("{url:?} must start with http:// or https://"))?;
    let host = rest.split('/').next().unwrap_or("");
    if host.is_empty() {
        return Err(format!("{url:?} has no host"));
    }
    if let Some(c) = url
        .chars()
        .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '?' | '#' | '@'))
    {
        return Err(format!("{url:?} must not contain {c:?}"));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// An absolute guest path without `..` components or NUL bytes.
pub(crate) fn is_guest_path(dest: &str) -> bool {
    dest.starts_with('/')
        && !dest.contains("/../")
        && !dest.ends_with("/..")
        && !dest.contains('\0')
}

/// An absolute guest path naming a file: [`is_guest_path`], not `/`, and no empty, `.` or `..`
/// component (so no trailing slash and no `//`).
pub(crate) fn is_guest_file_path(dest: &str) -> bool {
    is_guest_path(dest)
        && dest[1..]
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

/// Octal permission bits written as 3 or 4 octal digits such as `"0644"` or `"755"` (no sign,
/// no space, no `0o`).
pub(crate) fn parse_mode(text: &str) -> Option<u32> {
    if !(3..=4).contains(&text.len()) || !text.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    u32::from_str_radix(text, 8).ok()
}

fn is_name_char(c: char, extra: &str) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || extra.contains(c)
}

/// Whether `s` is 1 to 64 characters, each `allowed`, starting with an ASCII letter or digit.
fn is_short_word(s: &str, allowed: impl Fn(char) -> bool) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        && s.chars().all(allowed)
}

pub(crate) fn check_name(
    loc: &Locator<'_>,
    v: &Spanned<String>,
    key: &str,
    upper: bool,
) -> Result<String, SpecError> {
    let s = v.get_ref();
    if !is_short_word(s, |c| {
        is_name_char(c, "._-") || (upper && c.is_ascii_uppercase())
    }) {
        let set = if upper { "A-Za-z0-9._-" } else { "a-z0-9._-" };
        return Err(loc.bad(
            v,
            key,
            format!("{s:?} must be 1-64 characters of [{set}], starting with a letter or digit"),
        ));
    }
    Ok(s.clone())
}

/// `base.format`: `qcow2` or `raw`, the two a cloud image comes as.
fn base_format(loc: &Locator<'_>, f: &Spanned<String>) -> Result<ImageFormat, SpecError> {
    match ImageFormat::from_name(f.get_ref()) {
        Some(format @ (ImageFormat::Qcow2 | ImageFormat::Raw)) => Ok(format),
        _ => Err(loc.bad(
            f,
            "base.format",
            format!("{:?}: expected \"qcow2\" or \"raw\"", f.get_ref()),
        )),
    }
}

pub(crate) fn check_version(
    loc: &Locator<'_>,
    v: &Spanned<String>,
    key: &str,
) -> Result<String, SpecError> {
    let s = v.get_ref();
    if !is_short_word(s, |c| c.is_ascii_alphanumeric() || ".+-~_:".contains(c)) {
        return Err(loc.bad(
            v,
            key,
            format!("{s:?} is not a version (letters, digits and . + - ~ _ :)"),
        ));
    }
    Ok(s.clone())
}

fn check(loc: &Locator<'_>, raw: RawSpec, sha256: String) -> Result<Spec, SpecError> {
    let name = check_name(loc, &raw.image.name, "image.name", false)?;
    // The artifacts' base name: the export's own rule too (the one `export --name` obeys).
    exporters::format::validate_name(&name)
        .map_err(|e| loc.bad(&raw.image.name, "image.name", e))?;
    let distro = check_name(loc, &raw.image.distro, "image.distro", false)?;
    distros::find(&distro).map_err(|e| loc.bad(&raw.image.distro, "image.distro", e))?;
    let firmware = match raw.image.firmware.get_ref().as_str() {
        "uefi" => Firmware::Uefi,
        "bios" => Firmware::Bios,
        other => {
            return Err(loc.bad(
                &raw.image.firmware,
                "image.firmware",
                format!("{other:?}: expected \"uefi\" or \"bios\""),
            ));
        }
    };
    let disk_gib = *raw.image.disk_gib.get_ref();
    if !(1..=2048).contains(&disk_gib) {
        return Err(loc.bad(
            &raw.image.disk_gib,
            "image.disk_gib",
            format!("{disk_gib}: expected 1 to 2048"),
        ));
    }

    let source = match (&raw.base.path, &raw.base.url) {
        (Some(p), None) if !p.get_ref().is_empty() => {
            let p = PathBuf::from(p.get_ref());
            BaseSource::Path(if p.is_absolute() {
                p
            } else {
                loc.path.parent().unwrap_or(Path::new(".")).join(p)
            })
        }
        (None, Some(u))
            if u.get_ref().starts_with("https://") || u.get_ref().starts_with("http://") =>
        {
            BaseSource::Url(u.get_ref().clone())
        }
        (None, Some(u)) => {
            return Err(loc.bad(u, "base.url", "must start with https:// or http://"));
        }
        (Some(p), None) => return Err(loc.bad(p, "base.path", "is empty")),
        (Some(_), Some(u)) => return Err(loc.bad(u, "base", "give either path or url, not both")),
        (None, None) => return Err(loc.bad(&raw.base.format, "base", "needs a path or a url")),
    };
    let base_keyring = base_keyring(loc, &raw.base, &source, &distro)?;
    let base_sha256 = base_sha256(loc, &raw.base, &source, &distro, base_keyring.is_some())?;

    let kv = &raw.kubernetes.version;
    let k = kv.get_ref();
    let parts: Vec<&str> = k.strip_prefix('v').unwrap_or("").split('.').collect();
    if parts.len() != 3
        || parts
            .iter()
            .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(loc.bad(
            kv,
            "kubernetes.version",
            format!("{k:?}: expected vMAJOR.MINOR.PATCH, e.g. \"v1.30.2\""),
        ));
    }

    let c = &raw.components;
    let components = Components {
        containerd: check_version(loc, &c.containerd, "components.containerd")?,
        runc: check_version(loc, &c.runc, "components.runc")?,
        crictl: check_version(loc, &c.crictl, "components.crictl")?,
        cni_plugins: check_version(loc, &c.cni_plugins, "components.cni_plugins")?,
        pause: c
            .pause
            .as_ref()
            .map(|p| check_version(loc, p, "components.pause"))
            .transpose()?,
    };
    let skip_addons = skip_addons(loc, raw.kubernetes.skip_addons.as_ref())?;
    let conformance = match &raw.kubernetes.conformance {
        None => None,
        Some(c) if c.get_ref() == "off" => None,
        Some(c) => Some(Scope::from_name(c.get_ref()).ok_or_else(|| {
            loc.bad(
                c,
                "kubernetes.conformance",
                format!("{:?}: expected \"off\", \"quick\" or \"full\"", c.get_ref()),
            )
        })?),
    };

    let mut formats = Vec::new();
    for f in raw.export.formats.get_ref() {
        let parsed: Format = f
            .get_ref()
            .parse()
            .map_err(|e: String| loc.bad(f, "export.formats", e))?;
        formats.push(parsed);
    }
    if formats.is_empty() {
        return Err(loc.bad(
            &raw.export.formats,
            "export.formats",
            "is empty; name at least one format",
        ));
    }
    formats.sort();
    formats.dedup();

    let mut files = Vec::new();
    for f in &raw.files {
        let dest = f.dest.get_ref();
        if !is_guest_file_path(dest) {
            return Err(loc.bad(
                &f.dest,
                "files.dest",
                format!(
                    "{dest:?} must be an absolute path naming a file (not /, no trailing slash, \
                     no . or .. components)"
                ),
            ));
        }
        let mode_text = f.mode.get_ref();
        let mode = parse_mode(mode_text).ok_or_else(|| {
            loc.bad(
                &f.mode,
                "files.mode",
                format!("{mode_text:?}: expected 3 or 4 octal digits like \"0644\""),
            )
        })?;
        if f.source.get_ref().is_empty() {
            return Err(loc.bad(&f.source, "files.source", "is empty"));
        }
        let source = PathBuf::from(f.source.get_ref());
        let source = if source.is_absolute() {
            source
        } else {
            loc.path.parent().unwrap_or(Path::new(".")).join(source)
        };
        files.push(ExtraFile {
            source,
            dest: dest.clone(),
            mode,
        });
    }

    let mut fetch = FetchSection::default();
    if let Some(m) = raw.fetch.as_ref().and_then(|f| f.mirror.as_ref()) {
        fetch.mirror = Some(check_mirror(m.get_ref()).map_err(|e| loc.bad(m, "fetch.mirror", e))?);
    }

    let commands = scripts(loc, &raw.commands, "commands")?;
    let checks = scripts(loc, &raw.checks, "checks")?;

    Ok(Spec {
        path: loc.path.to_path_buf(),
        sha256,
        image: ImageSection {
            name,
            distro,
            firmware,
            disk_gib,
        },
        base: BaseImage {
            source,
            sha256: base_sha256,
            keyring: base_keyring,
            format: base_format(loc, &raw.base.format)?,
        },
        kubernetes_version: k.clone(),
        skip_addons,
        conformance,
        components,
        formats,
        files,
        commands,
        checks,
        fetch,
        packages: packages::check(loc, raw.packages.as_ref())?,
    })
}

/// `base.keyring`: a path (relative to the spec's directory), for a `url` base of a distro
/// that signs its checksum files.
fn base_keyring(
    loc: &Locator<'_>,
    raw: &RawBase,
    source: &BaseSource,
    distro: &str,
) -> Result<Option<PathBuf>, SpecError> {
    let Some(keyring) = &raw.keyring else {
        return Ok(None);
    };
    if matches!(source, BaseSource::Path(_)) {
        return Err(loc.bad(
            keyring,
            "base.keyring",
            "applies to a url only (it verifies the checksum file published next to the image)",
        ));
    }
    let image = distros::find(distro).map(|d| d.cloud_image).ok();
    if let Some(image) = image.filter(|i| i.checksums_signature.is_none()) {
        return Err(loc.bad(
            keyring,
            "base.keyring",
            format!(
                "{distro} does not sign its checksum file ({}), so there is no signature for a \
                 keyring to verify",
                image.checksums_url.rsplit('/').next().unwrap_or_default()
            ),
        ));
    }
    packages::spec_relative_path(loc, keyring, "base.keyring").map(Some)
}

/// `base.sha256`: 64 lower-case hex digits when given. Without it, a `url` must be on the
/// distro's image host (where its published checksum file pins it), or the spec must give the
/// keyring that signs the checksum file next to it (`keyed`); a `path` is hashed.
fn base_sha256(
    loc: &Locator<'_>,
    raw: &RawBase,
    source: &BaseSource,
    distro: &str,
    keyed: bool,
) -> Result<Option<String>, SpecError> {
    let Some(sum) = &raw.sha256 else {
        if let (BaseSource::Url(url), Some(u), false) = (source, &raw.url, keyed) {
            let published = distros::find(distro)
                .ok()
                .and_then(|d| d.cloud_image.checksums_for(url));
            if published.is_none() {
                return Err(loc.bad(
                    u,
                    "base.sha256",
                    format!(
                        "is needed: {url:?} is not on {distro}'s image host, so no published \
                         checksum file pins it (or give base.keyring, the key that signs the \
                         checksum file next to it)"
                    ),
                ));
            }
        }
        return Ok(None);
    };
    let hex = sum.get_ref();
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(loc.bad(sum, "base.sha256", "expected 64 lower-case hex digits"));
    }
    Ok(Some(hex.clone()))
}

/// `kubernetes.skip_addons`: each one of [`Addon::ALL`] by name; sorted, duplicates dropped.
fn skip_addons(
    loc: &Locator<'_>,
    raw: Option<&Spanned<Vec<Spanned<String>>>>,
) -> Result<Vec<Addon>, SpecError> {
    let mut out = Vec::new();
    for a in raw.map(|r| r.get_ref().as_slice()).unwrap_or_default() {
        let addon = Addon::from_name(a.get_ref()).ok_or_else(|| {
            let known: Vec<&str> = Addon::ALL.iter().map(|a| a.name()).collect();
            loc.bad(
                a,
                "kubernetes.skip_addons",
                format!(
                    "{:?} is not an addon nodeimg can leave out ({})",
                    a.get_ref(),
                    known.join(", ")
                ),
            )
        })?;
        out.push(addon);
    }
    out.sort();
    out.dedup();
    Ok(out)
}

fn scripts(
    loc: &Locator<'_>,
    raw: &[RawScript],
    list: &str,
) -> Result<Vec<NamedScript>, SpecError> {
    let mut out: Vec<NamedScript> = Vec::new();
    for s in raw {
        let name = check_name(loc, &s.name, &format!("{list}.name"), true)?;
        if out.iter().any(|o| o.name == name) {
            return Err(loc.bad(
                &s.name,
                &format!("{list}.name"),
                format!("{name:?} is used twice"),
            ));
        }
        if s.run.get_ref().trim().is_empty() {
            return Err(loc.bad(&s.run, &format!("{list}.run"), "is empty"));
        }
        out.push(NamedScript {
            name,
            run: s.run.get_ref().clone(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
