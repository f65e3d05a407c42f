//! `qcow2`: v3, 64 KiB clusters, 16-bit refcounts, zero clusters unallocated, optional
//! deflate-compressed clusters. (Stub: to be written.)

use std::path::Path;

use crate::batch::Batch;
use crate::error::{Error, Result};
use crate::image::DiskImage;
use crate::pipeline::{DiskWriter, FinishContext, Produced};

/// Writes `NAME.qcow2`.
#[derive(Debug)]
pub struct Qcow2Writer {}

impl Qcow2Writer {
    /// Starts `dir/NAME.qcow2` for a disk of `virtual_size` bytes.
    pub fn new(dir: &Path, name: &str, compress: bool, virtual_size: u64) -> Result<Self> {
        let _ = (dir, name, compress, virtual_size);
        Err(Error::Pipeline("qcow2 writer not written yet".into()))
    }
}

impl DiskWriter for Qcow2Writer {
    fn task(&self) -> &'static str {
        "qcow2"
    }
    fn consume(&mut self, _batch: &Batch) -> Result<()> {
        Err(Error::Pipeline("qcow2 writer not written yet".into()))
    }
    fn finish(self: Box<Self>, _ctx: &FinishContext) -> Result<Vec<Produced>> {
        Err(Error::Pipeline("qcow2 writer not written yet".into()))
    }
}

/// A qcow2 image opened for reading.
#[derive(Debug)]
pub struct Qcow2Image {}

impl Qcow2Image {
    /// Opens and checks the header of `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Err(Error::corrupt(path, 0, "qcow2 reader not written yet"))
    }
}

impl DiskImage for Qcow2Image {
    fn virtual_size(&self) -> u64 {
        0
    }
    fn read_at(&mut self, _offset: u64, _buf: &mut [u8]) -> Result<()> {
        Err(Error::Pipeline("qcow2 reader not written yet".into()))
    }
}
