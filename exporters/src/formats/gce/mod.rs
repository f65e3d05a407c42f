//! GCE: `NAME.tar.gz` holding exactly one member `disk.raw`, old-GNU sparse, gzip.
//! (Stub: to be written.)

use std::path::Path;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::pipeline::{DiskWriter, FinishContext, Produced};

/// Writes `NAME.tar.gz`.
#[derive(Debug)]
pub struct GceWriter {}

impl GceWriter {
    /// Starts `dir/NAME.tar.gz` for a disk of `virtual_size` bytes.
    pub fn new(dir: &Path, name: &str, virtual_size: u64) -> Result<Self> {
        let _ = (dir, name, virtual_size);
        Err(Error::Pipeline("gce writer not written yet".into()))
    }
}

impl DiskWriter for GceWriter {
    fn task(&self) -> &'static str {
        "gce"
    }
    fn needs_deflate(&self) -> bool {
        true
    }
    fn consume(&mut self, _batch: &Batch) -> Result<()> {
        Err(Error::Pipeline("gce writer not written yet".into()))
    }
    fn finish(self: Box<Self>, _ctx: &FinishContext) -> Result<Vec<Produced>> {
        Err(Error::Pipeline("gce writer not written yet".into()))
    }
}

/// What a GCE tarball holds, read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GceContent {
    /// Size of `disk.raw`.
    pub virtual_size: u64,
    /// SHA-256 of `disk.raw`.
    pub content_digest: [u8; 32],
}

/// Decompresses and parses `path`, checking that it holds exactly `disk.raw`, and hashes it.
pub fn read_content(path: &Path, on_progress: &mut dyn FnMut(u64)) -> Result<GceContent> {
    let _ = on_progress;
    Err(Error::corrupt(path, 0, "gce reader not written yet"))
}
