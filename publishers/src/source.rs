//! The output being published: its manifest, its BOM, the artifact of each format, and the
//! labels every target attaches (content digest, name, stage, the BOM's versions), by which
//! a later publish of the same content finds what this one made.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use exporters::Format;
use exporters::Manifest;
use exporters::manifest::ManifestArtifact;
use exporters::pipeline::Role;

use crate::error::{Error, Result};

/// Largest `bom.json` read (a build's is a few hundred KiB).
const BOM_LIMIT: u64 = 64 << 20;

/// A verified build or export output.
#[derive(Debug, Clone)]
pub struct Source {
    /// The output directory.
    pub dir: PathBuf,
    /// Its manifest.
    pub manifest: Manifest,
    /// Its BOM, when it is a build's output (an export's has none).
    pub bom: Option<bom::Bom>,
}

/// Label keys, the same for every target (each spells them as its service allows).
pub mod keys {
    /// SHA-256 of the virtual disk (hex): what finds an earlier publish.
    pub const CONTENT: &str = "content-sha256";
    /// The manifest's name.
    pub const NAME: &str = "name";
    /// `--stage`.
    pub const STAGE: &str = "stage";
    /// The nodeimg version that built it.
    pub const NODEIMG: &str = "nodeimg";
    /// `ID-VERSION_ID` of the image's os-release.
    pub const OS: &str = "os";
    /// The kernel release.
    pub const KERNEL: &str = "kernel";
}

impl Source {
    /// Reads `dir`'s manifest and, when the build lists one, its `bom.json`. The caller has
    /// verified `dir` first.
    pub fn open(dir: &Path) -> Result<Source> {
        let manifest = Manifest::load(dir)?;
        let listed = manifest
            .build
            .iter()
            .flat_map(|b| b.files.iter())
            .any(|f| f.file == bom::BOM_FILE);
        let bom = if listed {
            let path = dir.join(bom::BOM_FILE);
            let text = diskimg::input_file::read_bounded_string(&path, BOM_LIMIT, "a BOM")
                .map_err(|e| Error::Input {
                    path: path.clone(),
                    why: e.to_string(),
                })?;
            Some(
                bom::Bom::parse(&path, text.as_bytes()).map_err(|e| Error::Input {
                    path: path.clone(),
                    why: e.to_string(),
                })?,
            )
        } else {
            None
        };
        Ok(Source {
            dir: dir.to_owned(),
            manifest,
            bom,
        })
    }

    /// The formats the output has.
    pub fn formats(&self) -> Vec<Format> {
        let mut v: Vec<Format> = self.manifest.artifacts.iter().map(|a| a.format).collect();
        v.dedup();
        v
    }

    /// The disk artifact of `format` and its path; [`Error::NotExported`] when there is none.
    pub fn disk(&self, target: &str, format: Format) -> Result<(PathBuf, &ManifestArtifact)> {
        self.artifacts(format)
            .find(|a| a.role == Role::Disk)
            .map(|a| (self.dir.join(&a.file), a))
            .ok_or_else(|| self.not_exported(target, format))
    }

    /// Every artifact (disk and metadata) of `format`.
    pub fn artifacts(&self, format: Format) -> impl Iterator<Item = &ManifestArtifact> {
        self.manifest
            .artifacts
            .iter()
            .filter(move |a| a.format == format)
    }

    /// The refusal for a target whose format is missing.
    pub fn not_exported(&self, target: &str, format: Format) -> Error {
        Error::NotExported {
            target: target.to_owned(),
            format,
            dir: self.dir.clone(),
            exported: self
                .formats()
                .iter()
                .map(|f| f.name())
                .collect::<Vec<_>>()
                .join(","),
        }
    }

    /// The content digest (hex).
    pub fn content_sha256(&self) -> &str {
        &self.manifest.content_sha256
    }

    /// The first 12 hex digits of the content digest, for names that must be short.
    pub fn content_short(&self) -> &str {
        let d = self.content_sha256();
        &d[..d.len().min(12)]
    }

    /// The labels every target attaches, by [`keys`] and component name: the content
    /// digest, the name, the stage, and from the BOM the nodeimg version, the OS, the kernel
    /// and each pinned component's version (`kubeadm`, `kubelet`, `containerd`, `runc`, …).
    pub fn labels(&self, stage: Option<&str>) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert(keys::CONTENT.into(), self.content_sha256().to_owned());
        l.insert(keys::NAME.into(), self.manifest.name.clone());
        if let Some(stage) = stage {
            l.insert(keys::STAGE.into(), stage.to_owned());
        }
        if let Some(bom) = &self.bom {
            l.insert(keys::NODEIMG.into(), bom.inputs.nodeimg_version.clone());
            let release = &bom.os.os_release;
            if let (Some(id), Some(version)) = (release.get("ID"), release.get("VERSION_ID")) {
                l.insert(keys::OS.into(), format!("{id}-{version}"));
            }
            l.insert(keys::KERNEL.into(), bom.os.kernel_release.clone());
            for c in &bom.components {
                l.entry(c.name.clone()).or_insert_with(|| c.version.clone());
            }
        }
        l
    }
}
