//! An apt-like resolver: what `apt-get install --no-install-recommends WANTED` would install on
//! a system with the given dpkg status, from the given `Packages` indexes.
//!
//! Behaviour, read from apt 2.6's `pkgDepCache::MarkInstall` and checked against `apt-get -s`
//! (on the host's lists and on synthetic archives, in the integration tests):
//! - The candidate of a name is its highest version across all indexes (every suite has apt's
//!   default priority 500), of the native architecture or `all`; on equal versions the first
//!   index given wins. Foreign architectures are never installed.
//! - A wanted name is installed, or upgraded when its candidate is newer than the installed
//!   version; it is not chosen when the installed version is the candidate (or newer). All
//!   wanted names are marked first, then each one's dependencies are followed depth-first in
//!   the order given (apt-get marks the command line, then auto-installs).
//! - Following a package: installed binaries of the same source whose candidate is built from
//!   the same source version are upgraded too (apt's `Upgrade-By-Source-Package`, on by
//!   default); installed packages whose dependency the upgrade breaks are upgraded (apt's
//!   `CollectReverseDepends`); then each `Pre-Depends` and `Depends` group not already met by
//!   an installed or chosen package is installed (no upgrade for a met dependency).
//! - An unmet group `a | b`: the candidates meeting each alternative in turn (the real package
//!   and the providers, sorted as apt's `CompareProviders`: installed first, the package named
//!   by the relation, `Essential`, higher `Priority`, then the name first mentioned later in
//!   the indexes, standing in for apt's higher package id), those of installed packages
//!   before new ones over the whole group; the first whose own dependencies can be met wins.
//!   So a virtual first alternative with several providers takes the first provider in that
//!   order, as apt does, rather than failing or moving on to `b`.
//! - Versioned relations: an unversioned `Provides` meets only unversioned relations;
//!   `Provides: foo (= 1.2)` meets `foo (>= 1)`. An installed package too old for a versioned
//!   dependency is upgraded when its candidate is new enough, else the group is unsatisfiable.
//! - `pkg:any` is met only by a `Multi-Arch: allowed` package; an unqualified relation by the
//!   native architecture, `all`, or a `Multi-Arch: foreign` package.
//! - A wanted name that is only virtual is taken when exactly one candidate provides it, and
//!   refused naming the providers when several do (as `apt-get install` refuses).
//! - `Conflicts` and `Breaks` are checked once everything is chosen. An installed package that
//!   conflicts with a chosen one is upgraded when its candidate ends the conflict; anything
//!   else is a [`ResolveError::Conflict`] naming both packages. This resolver never removes
//!   packages and does not search other combinations the way apt's problem resolver may (apt
//!   would remove the installed side); it reports instead.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::packages::{MultiArch, Package};
use crate::relation::{Alternatives, Relation};
use crate::version;

/// One `Packages` index and where it came from.
#[derive(Debug, Clone)]
pub struct Index {
    /// The suite, e.g. `bookworm-security`.
    pub suite: String,
    /// For messages, e.g. `http://deb.debian.org/debian-security bookworm-security/main amd64`.
    pub label: String,
    /// The index's packages.
    pub packages: Vec<Package>,
}

/// A package version to download and install.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Choice {
    /// Package name.
    pub name: String,
    /// The candidate version.
    pub version: String,
    /// `amd64`, `all`, …
    pub architecture: String,
    /// The `.deb`'s path under the archive root.
    pub filename: String,
    /// The `.deb`'s size in bytes.
    pub size: u64,
    /// The `.deb`'s SHA-256, lower-case hex.
    pub sha256: String,
    /// The suite of the index the candidate came from.
    pub suite: String,
}

/// Why a set of wanted packages cannot be installed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ResolveError {
    /// A wanted name is neither a package nor provided by one in any index.
    #[error("package {name:?} is in none of the indexes: {}", searched.join("; "))]
    UnknownPackage {
        /// The wanted name.
        name: String,
        /// The labels of the indexes searched.
        searched: Vec<String>,
    },
    /// A wanted name is virtual and several packages provide it.
    #[error("{name:?} is a virtual package provided by {}; want one of them explicitly", providers.join(", "))]
    AmbiguousVirtual {
        /// The wanted name.
        name: String,
        /// The providing packages, sorted.
        providers: Vec<String>,
    },
    /// A dependency cannot be met.
    #[error("{}: depends on {relation:?}, which cannot be met: {why}", chain.join(" -> "))]
    Unsatisfiable {
        /// The wanted package, then each package depended on, down to the one whose
        /// dependency fails.
        chain: Vec<String>,
        /// The dependency's text.
        relation: String,
        /// Why no alternative works.
        why: String,
    },
    /// Two packages of the result (chosen or installed) conflict.
    #[error("{0}")]
    Conflict(Box<Conflict>),
}

/// A `Conflicts` or `Breaks` relation met between two packages of the result.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "{package} {version} {kind} {relation:?}, which {other} {other_version} ({other_state}) matches"
)]
pub struct Conflict {
    /// The package whose `Conflicts` or `Breaks` field matches.
    pub package: String,
    /// Its version.
    pub version: String,
    /// `Conflicts` or `Breaks`.
    pub kind: &'static str,
    /// The relation's text.
    pub relation: String,
    /// The package it matches.
    pub other: String,
    /// That package's version.
    pub other_version: String,
    /// `chosen` or `installed`.
    pub other_state: &'static str,
}

/// Chooses what `apt-get install --no-install-recommends wanted…` would download: the wanted
/// packages and the closure of their dependencies not met by `installed`, sorted by name.
pub fn resolve(
    native_arch: &str,
    installed: &[Package],
    indexes: &[Index],
    wanted: &[String],
) -> Result<Vec<Choice>, ResolveError> {
    let mut resolver = Resolver::new(native_arch, installed, indexes);
    resolver.run(wanted)?;
    Ok(resolver.choices())
}

/// A candidate version and its index's suite.
#[derive(Debug, Clone, Copy)]
struct Candidate<'a> {
    package: &'a Package,
    suite: &'a str,
}

struct Resolver<'a> {
    native: &'a str,
    labels: Vec<String>,
    installed: BTreeMap<&'a str, Vec<&'a Package>>,
    /// Virtual name -> installed packages providing it.
    installed_providers: BTreeMap<&'a str, Vec<&'a Package>>,
    candidates: BTreeMap<&'a str, Candidate<'a>>,
    /// Virtual name -> candidate names providing it.
    provided_by: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// apt's package ids, approximated by the order in which names are first mentioned in
    /// the indexes; apt's last tie-break between providers prefers the higher id.
    first_mention: BTreeMap<&'a str, usize>,
    /// Names chosen for install or upgrade.
    chosen: BTreeMap<&'a str, Candidate<'a>>,
}

impl<'a> Resolver<'a> {
    fn new(native: &'a str, installed: &'a [Package], indexes: &'a [Index]) -> Self {
        let mut by_name: BTreeMap<&str, Vec<&Package>> = BTreeMap::new();
        let mut installed_providers: BTreeMap<&str, Vec<&Package>> = BTreeMap::new();
        for p in installed {
            by_name.entry(p.name.as_str()).or_default().push(p);
            for v in &p.provides {
                installed_providers
                    .entry(v.name.as_str())
                    .or_default()
                    .push(p);
            }
        }
        let mut candidates: BTreeMap<&str, Candidate> = BTreeMap::new();
        let mut first_mention: BTreeMap<&str, usize> = BTreeMap::new();
        for index in indexes {
            for package in &index.packages {
                let relations = package
                    .pre_depends
                    .iter()
                    .chain(&package.depends)
                    .flat_map(|a| &a.0)
                    .chain(&package.conflicts)
                    .chain(&package.breaks)
                    .chain(&package.provides);
                for name in std::iter::once(&package.name).chain(relations.map(|r| &r.name)) {
                    let next = first_mention.len();
                    first_mention.entry(name).or_insert(next);
                }
                if package.architecture != native && package.architecture != "all" {
                    continue;
                }
                let better = candidates
                    .get(package.name.as_str())
                    .is_none_or(|c| version::compare(&package.version, &c.package.version).is_gt());
                if better {
                    candidates.insert(
                        &package.name,
                        Candidate {
                            package,
                            suite: &index.suite,
                        },
                    );
                }
            }
        }
        let mut provided_by: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (name, c) in &candidates {
            for p in &c.package.provides {
                provided_by.entry(p.name.as_str()).or_default().insert(name);
            }
        }
        Resolver {
            native,
            labels: indexes.iter().map(|i| i.label.clone()).collect(),
            installed: by_name,
            installed_providers,
            candidates,
            provided_by,
            first_mention,
            chosen: BTreeMap::new(),
        }
    }

    fn choices(&self) -> Vec<Choice> {
        self.chosen
            .values()
            .map(|c| Choice {
                name: c.package.name.clone(),
                version: c.package.version.clone(),
                architecture: c.package.architecture.clone(),
                filename: c.package.filename.clone().unwrap_or_default(),
                size: c.package.size.unwrap_or_default(),
                sha256: c.package.sha256.clone().unwrap_or_default(),
                suite: c.suite.to_owned(),
            })
            .collect()
    }

    fn run(&mut self, wanted: &[String]) -> Result<(), ResolveError> {
        // As apt-get: mark every wanted package first, then follow their dependencies.
        let mut roots = Vec::new();
        for name in wanted {
            let candidate = self.wanted_candidate(name)?;
            if self.mark(candidate) {
                roots.push(candidate);
            }
        }
        for root in roots {
            self.follow(root, &mut vec![root.package.name.clone()])?;
        }
        self.settle_conflicts()
    }

    fn wanted_candidate(&self, name: &str) -> Result<Candidate<'a>, ResolveError> {
        if let Some(c) = self.candidates.get(name) {
            return Ok(*c);
        }
        let providers: Vec<&str> = self
            .provided_by
            .get(name)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        match providers[..] {
            [] => Err(ResolveError::UnknownPackage {
                name: name.to_owned(),
                searched: self.labels.clone(),
            }),
            [one] => Ok(self.candidates[one]),
            _ => Err(ResolveError::AmbiguousVirtual {
                name: name.to_owned(),
                providers: providers.iter().map(|p| (*p).to_owned()).collect(),
            }),
        }
    }

    /// Marks `candidate` for install or upgrade; false when it is already marked, or
    /// installed at a version apt keeps (the candidate or newer).
    fn mark(&mut self, candidate: Candidate<'a>) -> bool {
        let name = candidate.package.name.as_str();
        if self.chosen.contains_key(name) || self.is_kept(candidate) {
            return false;
        }
        self.chosen.insert(name, candidate);
        true
    }

    fn is_kept(&self, candidate: Candidate<'a>) -> bool {
        self.installed
            .get(candidate.package.name.as_str())
            .into_iter()
            .flatten()
            .any(|p| version::compare(&p.version, &candidate.package.version).is_ge())
    }

    /// For a marked `candidate`: upgrade the installed packages its upgrade would break
    /// (apt's `CollectReverseDepends`) and the installed binaries of the same source version
    /// (apt's `Upgrade-By-Source-Package`), then install its unmet dependencies.
    fn follow(
        &mut self,
        candidate: Candidate<'a>,
        chain: &mut Vec<String>,
    ) -> Result<(), ResolveError> {
        let broken_dependers = self.dependers_broken_by(candidate.package);
        let siblings: Vec<Candidate<'a>> = self
            .same_source_upgrades(candidate.package)
            .into_iter()
            .filter(|c| self.mark(*c))
            .collect();
        for sibling in siblings {
            self.follow_in_chain(sibling, chain)?;
        }
        for depender in broken_dependers {
            if self.mark(depender) {
                self.follow_in_chain(depender, chain)?;
            }
        }
        let groups = candidate
            .package
            .pre_depends
            .iter()
            .chain(&candidate.package.depends);
        for group in groups {
            if !group.0.iter().any(|r| self.satisfied(r)) {
                self.install_one_of(group, chain)?;
            }
        }
        Ok(())
    }

    fn follow_in_chain(
        &mut self,
        candidate: Candidate<'a>,
        chain: &mut Vec<String>,
    ) -> Result<(), ResolveError> {
        chain.push(candidate.package.name.clone());
        let result = self.follow(candidate, chain);
        chain.pop();
        result
    }

    /// The candidates of installed packages whose dependency on `package`'s name is met by
    /// the installed version but not by `package`.
    fn dependers_broken_by(&self, package: &Package) -> Vec<Candidate<'a>> {
        let Some(current) = self.installed.get(package.name.as_str()) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for depender in self.installed.values().flatten() {
            if self.chosen.contains_key(depender.name.as_str()) {
                continue;
            }
            let breaks = depender
                .pre_depends
                .iter()
                .chain(&depender.depends)
                .flat_map(|a| &a.0)
                .any(|r| {
                    current.iter().any(|c| self.real_satisfies(c, r))
                        && r.name == package.name
                        && !self.real_satisfies(package, r)
                });
            if breaks && let Some(c) = self.candidates.get(depender.name.as_str()) {
                found.push(*c);
            }
        }
        found
    }

    /// Installed binaries built from `package`'s source at another version whose candidate
    /// is built from the same source version as `package`.
    fn same_source_upgrades(&self, package: &Package) -> Vec<Candidate<'a>> {
        self.installed
            .values()
            .flatten()
            .filter(|p| p.name != package.name)
            .filter_map(|p| {
                let c = self.candidates.get(p.name.as_str())?;
                let same_source = c.package.source == package.source
                    && c.package.source_version == package.source_version;
                (same_source && p.version != c.package.version).then_some(*c)
            })
            .collect()
    }

    /// The installed versions of `name` that are not being replaced by a chosen upgrade.
    fn installed_of(&self, name: &str) -> impl Iterator<Item = &'a Package> + '_ {
        let replaced = self.chosen.contains_key(name);
        self.installed
            .get(name)
            .into_iter()
            .flatten()
            .copied()
            .filter(move |_| !replaced)
    }

    /// The packages of the future system named `name`: chosen, else installed.
    fn present(&self, name: &str) -> Vec<&'a Package> {
        match self.chosen.get(name) {
            Some(c) => vec![c.package],
            None => self.installed_of(name).collect(),
        }
    }

    /// Whether `package` (as a real package, not via Provides) satisfies `relation`.
    fn real_satisfies(&self, package: &Package, relation: &Relation) -> bool {
        package.name == relation.name
            && self.arch_ok(package, relation)
            && relation
                .constraint
                .as_ref()
                .is_none_or(|(op, v)| op.holds(&package.version, v))
    }

    /// dpkg's architecture rule for a relation from a native or `all` package: `:any` needs
    /// `Multi-Arch: allowed`; an unqualified relation takes the native architecture, `all`,
    /// or a `Multi-Arch: foreign` package of any architecture.
    fn arch_ok(&self, package: &Package, relation: &Relation) -> bool {
        let own = if package.architecture == "all" {
            self.native
        } else {
            package.architecture.as_str()
        };
        match relation.arch.as_deref() {
            Some("any") => package.multi_arch == MultiArch::Allowed,
            None | Some("native") => own == self.native || package.multi_arch == MultiArch::Foreign,
            Some(arch) => own == arch,
        }
    }

    /// Whether `package` provides `relation`'s name in a way that satisfies it: unversioned
    /// Provides meet only unversioned relations, `name (= v)` meets a constraint `v` satisfies.
    fn provides(package: &Package, relation: &Relation) -> bool {
        if relation.arch.as_deref() == Some("any") && package.multi_arch != MultiArch::Allowed {
            return false;
        }
        package.provides.iter().any(|p| {
            p.name == relation.name
                && match (&relation.constraint, &p.constraint) {
                    (None, _) => true,
                    (Some(_), None) => false,
                    (Some((op, want)), Some((_, have))) => op.holds(have, want),
                }
        })
    }

    /// Whether a package of the future system satisfies `relation`.
    fn satisfied(&self, relation: &Relation) -> bool {
        let name = relation.name.as_str();
        if self
            .present(name)
            .iter()
            .any(|p| self.real_satisfies(p, relation))
        {
            return true;
        }
        let chosen = self
            .provided_by
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|n| self.chosen.get(n))
            .any(|c| Self::provides(c.package, relation));
        chosen
            || self
                .installed_providers
                .get(name)
                .into_iter()
                .flatten()
                .filter(|p| !self.chosen.contains_key(p.name.as_str()))
                .any(|p| Self::provides(p, relation))
    }

    /// The candidates that could satisfy one of `group`'s relations, in the order apt tries
    /// them: per relation the real package and its providers sorted as apt's
    /// `CompareProviders` (installed first, the package named by the relation, essential,
    /// higher priority, later first mention), then those of installed packages before new
    /// ones.
    fn solutions_in_apt_order(&self, group: &Alternatives) -> Vec<Candidate<'a>> {
        let (mut upgrades, mut new) = (Vec::new(), Vec::new());
        for relation in &group.0 {
            let mut found: Vec<Candidate<'a>> = Vec::new();
            if let Some(c) = self.candidates.get(relation.name.as_str())
                && self.real_satisfies(c.package, relation)
            {
                found.push(*c);
            }
            for name in self
                .provided_by
                .get(relation.name.as_str())
                .into_iter()
                .flatten()
            {
                let c = self.candidates[name];
                if Self::provides(c.package, relation)
                    && !found.iter().any(|f| f.package.name == c.package.name)
                {
                    found.push(c);
                }
            }
            found.sort_by_key(|c| self.provider_rank(c.package, relation));
            for c in found {
                if self.installed.contains_key(c.package.name.as_str()) {
                    upgrades.push(c);
                } else {
                    new.push(c);
                }
            }
        }
        upgrades.extend(new);
        let mut seen = BTreeSet::new();
        upgrades.retain(|c| seen.insert(c.package.name.as_str()));
        upgrades
    }

    /// Sort key: apt's `CompareProviders`, smaller first.
    fn provider_rank(&self, package: &Package, relation: &Relation) -> impl Ord {
        let priority = match package.priority.as_deref() {
            None => 0,
            Some("required") => 1,
            Some("important") => 2,
            Some("standard") => 3,
            Some("optional") => 4,
            Some("extra") => 5,
            Some(_) => 6,
        };
        let mention = self
            .first_mention
            .get(package.name.as_str())
            .copied()
            .unwrap_or(0);
        (
            !self.installed.contains_key(package.name.as_str()),
            package.name != relation.name,
            !package.essential,
            priority,
            std::cmp::Reverse(mention),
        )
    }

    fn install_one_of(
        &mut self,
        group: &Alternatives,
        chain: &mut Vec<String>,
    ) -> Result<(), ResolveError> {
        let options = self.solutions_in_apt_order(group);
        let mut why: Vec<String> = group
            .0
            .iter()
            .filter(|r| {
                !options
                    .iter()
                    .any(|c| self.real_satisfies(c.package, r) || Self::provides(c.package, r))
            })
            .map(|r| self.why_not(r))
            .collect();
        let only_option = options.len() == 1 && why.is_empty();
        for option in options {
            let saved = self.chosen.clone();
            if !self.mark(option) {
                continue;
            }
            match self.follow_in_chain(option, chain) {
                Ok(()) => return Ok(()),
                // Nothing else could have met the group: the deeper failure is the reason.
                Err(e) if only_option => {
                    self.chosen = saved;
                    return Err(e);
                }
                Err(e) => {
                    self.chosen = saved;
                    why.push(e.to_string());
                }
            }
        }
        Err(ResolveError::Unsatisfiable {
            chain: chain.clone(),
            relation: group.to_string(),
            why: why.join("; "),
        })
    }

    fn why_not(&self, relation: &Relation) -> String {
        match self.candidates.get(relation.name.as_str()) {
            Some(c) => format!(
                "{} has candidate {} ({}), which does not satisfy {relation}",
                relation.name, c.package.version, c.package.architecture
            ),
            None => format!("no package is or provides {relation}"),
        }
    }

    /// Checks `Conflicts` and `Breaks` between the future system's packages, upgrading an
    /// installed package when its candidate ends the conflict (as apt does); any other
    /// conflict is an error.
    fn settle_conflicts(&mut self) -> Result<(), ResolveError> {
        while let Some(conflict) = self.find_conflict() {
            let upgrade = conflict
                .installed_side
                .and_then(|name| self.candidates.get(name).copied())
                .filter(|c| !self.chosen.contains_key(c.package.name.as_str()));
            let Some(upgrade) = upgrade else {
                return Err(conflict.error);
            };
            let saved = self.chosen.clone();
            let mut chain = vec![upgrade.package.name.clone()];
            if !self.mark(upgrade) {
                return Err(conflict.error);
            }
            self.follow(upgrade, &mut chain)?;
            if self
                .find_conflict()
                .is_some_and(|c| c.error == conflict.error)
            {
                self.chosen = saved;
                return Err(conflict.error);
            }
        }
        Ok(())
    }

    /// The first conflict that involves a chosen package.
    fn find_conflict(&self) -> Option<FoundConflict<'a>> {
        let present: Vec<(&'a Package, bool)> = self
            .chosen
            .values()
            .map(|c| (c.package, true))
            .chain(
                self.installed
                    .iter()
                    .filter(|(name, _)| !self.chosen.contains_key(*name))
                    .flat_map(|(_, ps)| ps.iter().map(|p| (*p, false))),
            )
            .collect();
        let mut by_name: BTreeMap<&str, Vec<(&'a Package, bool)>> = BTreeMap::new();
        for &(p, chosen) in &present {
            by_name
                .entry(p.name.as_str())
                .or_default()
                .push((p, chosen));
            for v in &p.provides {
                by_name
                    .entry(v.name.as_str())
                    .or_default()
                    .push((p, chosen));
            }
        }
        for &(package, chosen) in &present {
            let fields = [
                ("Conflicts", &package.conflicts),
                ("Breaks", &package.breaks),
            ];
            for (kind, relations) in fields {
                for relation in relations {
                    let Some(others) = by_name.get(relation.name.as_str()) else {
                        continue;
                    };
                    for &(other, other_chosen) in others {
                        if other.name == package.name || !(chosen || other_chosen) {
                            continue;
                        }
                        let matches = if other.name == relation.name {
                            relation
                                .constraint
                                .as_ref()
                                .is_none_or(|(op, v)| op.holds(&other.version, v))
                        } else {
                            Self::provides(other, relation)
                        };
                        if matches {
                            let installed_side = match (chosen, other_chosen) {
                                (false, _) => Some(package.name.as_str()),
                                (true, false) => Some(other.name.as_str()),
                                (true, true) => None,
                            };
                            return Some(FoundConflict {
                                installed_side,
                                error: ResolveError::Conflict(Box::new(Conflict {
                                    package: package.name.clone(),
                                    version: package.version.clone(),
                                    kind,
                                    relation: relation.to_string(),
                                    other: other.name.clone(),
                                    other_version: other.version.clone(),
                                    other_state: if other_chosen { "chosen" } else { "installed" },
                                })),
                            });
                        }
                    }
                }
            }
        }
        None
    }
}

/// A conflict found, and the installed (not chosen) package whose upgrade might end it.
struct FoundConflict<'a> {
    installed_side: Option<&'a str>,
    error: ResolveError,
}

#[cfg(test)]
mod tests;
