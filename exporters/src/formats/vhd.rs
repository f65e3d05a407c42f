//! `vhd`: a fixed VHD for Azure — the raw disk followed by one 512-byte footer, written
//! field for field as `qemu-img convert -O vpc -o subformat=fixed,force_size` does, with the
//! timestamp from SOURCE_DATE_EPOCH and the UUID from the content digest.

use std::io::{Seek, SeekFrom, Write};

use sha2::Digest;

use diskimg::ImageFormat;

use crate::artifact::TempArtifact;
use crate::batch::Batch;
use diskimg::vhd::{VHD_EPOCH, fixed_footer};

use crate::error::{IoContext, Result};
use crate::format::Format;
use crate::formats::raw::write_sparse;
use crate::ids::content_uuid;
use crate::pipeline::{DiskWriter, FinishContext, Produced};

/// Writes `NAME.vhd`.
#[derive(Debug)]
pub struct VhdWriter {
    out: TempArtifact,
}

impl VhdWriter {
    /// Starts `dir/NAME.vhd`.
    pub fn new(dir: &std::path::Path, name: &str) -> Result<Self> {
        Ok(VhdWriter {
            out: TempArtifact::create(dir, &format!("{name}.vhd"))?,
        })
    }
}

impl DiskWriter for VhdWriter {
    fn task(&self) -> &'static str {
        "vhd"
    }

    fn consume(&mut self, batch: &Batch) -> Result<()> {
        write_sparse(&mut self.out, batch, 0)
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Result<Vec<Produced>> {
        let path = self.out.temp_path().to_path_buf();
        let timestamp = ctx.options.source_date_epoch.saturating_sub(VHD_EPOCH);
        let uuid = content_uuid(&ctx.content_digest, "vhd");
        let footer = fixed_footer(
            ctx.virtual_size,
            u32::try_from(timestamp).unwrap_or(u32::MAX),
            uuid,
        );
        let file = self.out.file();
        file.seek(SeekFrom::Start(ctx.virtual_size))
            .at("seeking", &path)?;
        file.write_all(&footer).at("writing footer of", &path)?;
        let size = self.out.sync()?;
        let mut hasher = ctx.content_hasher.clone();
        hasher.update(footer);
        Ok(vec![Produced::disk(
            self.out,
            Format::Vhd,
            ImageFormat::Vhd,
            size,
            hasher.finalize().into(),
        )])
    }
}
