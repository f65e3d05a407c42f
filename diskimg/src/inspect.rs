//! `nodeimg inspect FILE`: what a disk image is — format, virtual size, allocation, and its GPT.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{IoContext, Result};
use crate::format::ImageFormat;
use crate::gce;
pub use crate::gpt_table::{GptInfo, PartitionInfo};
use crate::gpt_table::{GptRead, read_gpt};

/// What `inspect` found.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// The file.
    pub path: PathBuf,
    /// Detected container: raw, qcow2, vhd, vmdk, ova, tar.gz.
    pub format: ImageFormat,
    /// Size of the disk inside.
    pub virtual_size: u64,
    /// Size of the file.
    pub file_size: u64,
    /// Bytes the file occupies on disk.
    pub allocated_bytes: u64,
    /// The GPT, when there is a readable one.
    pub gpt: Option<GptInfo>,
    /// What is wrong with the partition table, one line each: a damaged primary header (the
    /// backup was used), a GPT that cannot be read at all, invalid partitions. Empty when fine.
    pub warnings: Vec<String>,
}

/// Inspects `path`.
pub fn inspect(path: &Path) -> Result<Inspection> {
    let format = ImageFormat::detect(path)?;
    let meta = std::fs::metadata(path).at("reading metadata of", path)?;
    if format == ImageFormat::GceTarGz {
        let content = gce::read_content(path, &mut |_| {})?;
        return Ok(Inspection {
            path: path.to_path_buf(),
            format,
            virtual_size: content.virtual_size,
            file_size: meta.len(),
            allocated_bytes: meta.blocks() * 512,
            gpt: None,
            warnings: Vec::new(),
        });
    }
    let mut image = format.open(path)?;
    let (gpt, warnings) = match read_gpt(image.as_mut())? {
        GptRead::Absent => (None, Vec::new()),
        GptRead::Damaged(why) => (None, vec![format!("damaged GPT, not shown: {why}")]),
        GptRead::Found(gpt) => {
            let warnings = gpt.warnings();
            (Some(gpt), warnings)
        }
    };
    Ok(Inspection {
        path: path.to_path_buf(),
        format,
        virtual_size: image.virtual_size(),
        file_size: meta.len(),
        allocated_bytes: meta.blocks() * 512,
        gpt,
        warnings,
    })
}
