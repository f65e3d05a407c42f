//! streamOptimized VMDK (version 3, zlib grains, markers, end-of-stream), shared by the OVA
//! and the AWS import input. (Stub: to be written.)

use std::path::Path;

use crate::error::{Error, Result};
use crate::format::ExportOptions;
use crate::image::{DiskImage, FileSlice};
use crate::pipeline::DiskWriter;

/// The writer that produces `NAME.vmdk` once and from it the OVA and/or the AWS artifacts,
/// depending on which of the two `options` requests.
pub fn vmdk_family_writer(
    dir: &Path,
    options: &ExportOptions,
    virtual_size: u64,
) -> Result<Box<dyn DiskWriter>> {
    let _ = (dir, options, virtual_size);
    Err(Error::Pipeline("vmdk writer not written yet".into()))
}

/// A streamOptimized VMDK opened for reading (a whole file or a member of an OVA).
#[derive(Debug)]
pub struct VmdkImage {}

impl VmdkImage {
    /// Opens `path`.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_slice(FileSlice::open(path)?)
    }

    /// Opens the VMDK held in `slice`.
    pub fn open_slice(slice: FileSlice) -> Result<Self> {
        Err(Error::corrupt(
            slice.path(),
            slice.base(),
            "vmdk reader not written yet",
        ))
    }
}

impl DiskImage for VmdkImage {
    fn virtual_size(&self) -> u64 {
        0
    }
    fn read_at(&mut self, _offset: u64, _buf: &mut [u8]) -> Result<()> {
        Err(Error::Pipeline("vmdk reader not written yet".into()))
    }
}
