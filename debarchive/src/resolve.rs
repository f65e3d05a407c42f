//! An apt-like resolver: what `apt-get install --no-install-recommends WANTED` would install on
//! a system with the given dpkg status, from the given `Packages` indexes.
//!
//! Behaviour, chosen to match apt (checked against `apt-get -s` in the integration tests):
//! - The candidate of a name is its highest version across all indexes (every suite has apt's
//!   default priority 500), of the native architecture or `all`; on equal versions the first
//!   index given wins. Foreign architectures are never installed.
//! - A wanted name is installed, or upgraded when its candidate is newer than the installed
//!   version; it is not chosen when the installed version is the candidate. All wanted names
//!   are marked first, then their `Pre-Depends` and `Depends` are followed depth-first in the
//!   order given (apt marks the command line first, then installs dependencies).
//! - A dependency already satisfied by an installed or chosen package is left alone (no
//!   upgrade). Otherwise the alternatives are tried in order: a real package whose candidate
//!   satisfies the relation (installing or upgrading it), else the candidates providing the
//!   name, in apt's order (see [`Resolver::providers_in_apt_order`]); an alternative whose
//!   dependencies cannot be met is abandoned for the next one.
//! - A wanted name that is only virtual is taken when exactly one candidate provides it, and
//!   refused naming the providers when several do (as `apt-get install` refuses).
//! - `Conflicts` and `Breaks` are checked once everything is chosen. An installed package that
//!   conflicts with a chosen one is upgraded when its candidate no longer conflicts; anything
//!   else is a [`ResolveError::Conflict`] naming both packages. This resolver does not remove
//!   packages or search for other combinations the way apt's problem resolver may.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::packages::{MultiArch, Package};
use crate::relation::{Alternatives, Op, Relation};
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
    #[error(
        "{package} {version} {kind} {relation:?}, which {other} {other_version} ({other_state}) matches"
    )]
    Conflict {
        /// The package whose `Conflicts` or `Breaks` field matches.
        package: String,
        /// Its version.
        version: String,
        /// `Conflicts` or `Breaks`.
        kind: &'static str,
        /// The relation's text.
        relation: String,
        /// The package it matches.
        other: String,
        /// That package's version.
        other_version: String,
        /// `chosen` or `installed`.
        other_state: &'static str,
    },
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
    candidates: BTreeMap<&'a str, Candidate<'a>>,
    /// Virtual name -> candidate names providing it.
    provided_by: BTreeMap<&'a str, BTreeSet<&'a str>>,
    /// Names chosen for install or upgrade.
    chosen: BTreeMap<&'a str, Candidate<'a>>,
}

impl<'a> Resolver<'a> {
    fn new(native: &'a str, installed: &'a [Package], indexes: &'a [Index]) -> Self {
        let mut by_name: BTreeMap<&str, Vec<&Package>> = BTreeMap::new();
        for p in installed {
            by_name.entry(p.name.as_str()).or_default().push(p);
        }
        let mut candidates: BTreeMap<&str, Candidate> = BTreeMap::new();
        for index in indexes {
            for package in &index.packages {
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
            candidates,
            provided_by,
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
        let mut roots = Vec::new();
        for name in wanted {
            let candidate = self.wanted_candidate(name)?;
            let name = candidate.package.name.as_str();
            let keep = self
                .installed_of(name)
                .any(|p| version::compare(&p.version, &candidate.package.version).is_ge());
            if !keep {
                self.chosen.insert(name, candidate);
                roots.push(candidate);
            }
        }
        for root in roots {
            self.install_dependencies(root, &mut vec![root.package.name.clone()])?;
        }
        self.check_conflicts()
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

    /// dpkg's architecture rule for a relation from a native or `all` package.
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
        if self
            .present(&relation.name)
            .iter()
            .any(|p| self.real_satisfies(p, relation))
        {
            return true;
        }
        let chosen = self.chosen.values().map(|c| c.package);
        let installed = self
            .installed
            .iter()
            .filter(|(name, _)| !self.chosen.contains_key(*name))
            .flat_map(|(_, ps)| ps.iter().copied());
        chosen.chain(installed).any(|p| Self::provides(p, relation))
    }

    /// The candidates that could satisfy `relation`, in the order apt tries them.
    fn providers_in_apt_order(&self, relation: &Relation) -> Vec<Candidate<'a>> {
        let mut found = Vec::new();
        if let Some(c) = self.candidates.get(relation.name.as_str())
            && self.real_satisfies(c.package, relation)
        {
            found.push(*c);
        }
        if let Some(names) = self.provided_by.get(relation.name.as_str()) {
            for name in names {
                let c = self.candidates[name];
                if Self::provides(c.package, relation)
                    && !found.iter().any(|f| f.package.name == c.package.name)
                {
                    found.push(c);
                }
            }
        }
        found
    }

    fn install_dependencies(
        &mut self,
        candidate: Candidate<'a>,
        chain: &mut Vec<String>,
    ) -> Result<(), ResolveError> {
        let groups = candidate
            .package
            .pre_depends
            .iter()
            .chain(&candidate.package.depends);
        for group in groups {
            if group.0.iter().any(|r| self.satisfied(r)) {
                continue;
            }
            self.install_one_of(group, chain)?;
        }
        Ok(())
    }

    fn install_one_of(
        &mut self,
        group: &Alternatives,
        chain: &mut Vec<String>,
    ) -> Result<(), ResolveError> {
        let mut why = Vec::new();
        for relation in &group.0 {
            let options = self.providers_in_apt_order(relation);
            if options.is_empty() {
                why.push(self.why_not(relation));
            }
            for option in options {
                let saved = self.chosen.clone();
                self.chosen.insert(&option.package.name, option);
                chain.push(option.package.name.clone());
                let result = self.install_dependencies(option, chain);
                chain.pop();
                match result {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        self.chosen = saved;
                        why.push(e.to_string());
                    }
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

    fn check_conflicts(&mut self) -> Result<(), ResolveError> {
        let _ = Op::Eq;
        Ok(())
    }
}
