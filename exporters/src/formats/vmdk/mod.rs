//! streamOptimized VMDK (version 3, zlib grains, markers, end-of-stream), shared by the OVA
//! and the AWS import input: one writer streams `NAME.vmdk` during the pass and, when it
//! finishes, packs it into `NAME.ova` and/or keeps it (with the JSON inputs) for AWS.

pub mod descriptor_text;
pub mod writer;

pub use diskimg::vmdk::descriptor;

#[cfg(test)]
pub(crate) mod tests;

use std::path::{Path, PathBuf};

use diskimg::ImageFormat;

use crate::batch::Batch;
use crate::error::Result;
use crate::format::{ExportOptions, Format};
use crate::pipeline::{DiskWriter, FinishContext, Produced};

pub use diskimg::vmdk::VmdkImage;
pub use writer::StreamVmdkWriter;

/// The writer that produces `NAME.vmdk` once and from it the OVA and/or the AWS artifacts,
/// depending on which of the two `options` requests.
pub fn vmdk_family_writer(
    dir: &Path,
    options: &ExportOptions,
    virtual_size: u64,
) -> Result<Box<dyn DiskWriter>> {
    let file_name = format!("{}.vmdk", options.name);
    Ok(Box::new(VmdkFamilyWriter {
        vmdk: StreamVmdkWriter::new(dir, &file_name, virtual_size)?,
        dir: dir.to_path_buf(),
    }))
}

/// `NAME.vmdk` during the pass; OVA and AWS artifacts at the end.
#[derive(Debug)]
struct VmdkFamilyWriter {
    vmdk: StreamVmdkWriter,
    dir: PathBuf,
}

impl DiskWriter for VmdkFamilyWriter {
    fn task(&self) -> &'static str {
        "vmdk"
    }

    fn needs_deflate(&self) -> bool {
        true
    }

    fn consume(&mut self, batch: &Batch) -> Result<()> {
        self.vmdk.consume(batch)
    }

    fn finish(self: Box<Self>, ctx: &FinishContext) -> Result<Vec<Produced>> {
        let VmdkFamilyWriter { vmdk, dir } = *self;
        let mut vmdk = vmdk.finish(&ctx.content_digest)?;
        // The header and descriptor were patched after streaming: hash the file as it is.
        let (size, sha256) = vmdk.sync_and_sha256()?;
        let options = &ctx.options;
        let mut produced = Vec::new();
        if options.wants(Format::Ova) {
            let disk = crate::formats::ova::OvaDisk {
                file: &mut vmdk,
                size,
                sha256,
            };
            produced.push(crate::formats::ova::write_ova(
                &dir,
                options,
                ctx.virtual_size,
                disk,
            )?);
        }
        if options.wants(Format::Aws) {
            produced.push(Produced::disk(
                vmdk,
                Format::Aws,
                ImageFormat::Vmdk,
                size,
                sha256,
            ));
            produced.extend(crate::formats::aws::aws_metadata(
                &dir,
                options,
                ctx.virtual_size,
            )?);
        }
        Ok(produced)
    }
}
