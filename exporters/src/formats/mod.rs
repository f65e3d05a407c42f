//! One module per output format. Each writer consumes the shared pass ([`crate::pipeline`]);
//! each container has a reader used by `verify` and `inspect`.

pub mod aws;
pub mod gce;
pub mod ova;
pub mod qcow2;
pub mod raw;
pub mod vhd;
pub mod vmdk;

use std::path::Path;

use crate::error::Result;
use crate::format::{ExportOptions, Format};
use crate::pipeline::DiskWriter;

/// The writers for the requested formats. OVA and AWS share one streamOptimized VMDK writer.
pub fn writers_for(
    options: &ExportOptions,
    dir: &Path,
    virtual_size: u64,
) -> Result<Vec<Box<dyn DiskWriter>>> {
    let mut writers: Vec<Box<dyn DiskWriter>> = Vec::new();
    let name = options.name.as_str();
    if options.wants(Format::Raw) {
        writers.push(Box::new(raw::RawWriter::new(dir, name)?));
    }
    if options.wants(Format::Qcow2) {
        writers.push(Box::new(qcow2::Qcow2Writer::new(
            dir,
            name,
            options.compress,
            virtual_size,
        )?));
    }
    if options.wants(Format::Vhd) {
        writers.push(Box::new(raw::RawWriter::fixed_vhd(dir, name)?));
    }
    if options.wants(Format::Ova) || options.wants(Format::Aws) {
        writers.push(vmdk::vmdk_family_writer(dir, options, virtual_size)?);
    }
    if options.wants(Format::Gce) {
        writers.push(Box::new(gce::GceWriter::new(dir, name, virtual_size)?));
    }
    Ok(writers)
}
