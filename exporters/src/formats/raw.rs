//! `raw`: a sparse copy of the virtual disk; zero grains stay holes.

use std::io::{Seek, SeekFrom, Write};

use diskimg::ImageFormat;

use crate::artifact::TempArtifact;
use crate::batch::Batch;
use crate::error::{IoContext, Result};
use crate::format::Format;
use crate::pipeline::{DiskWriter, FinishContext, Produced};

/// Writes `NAME.raw`.
#[derive(Debug)]
pub struct RawWriter {
    out: TempArtifact,
}

impl RawWriter {
    /// Starts `dir/NAME.raw`.
    pub fn new(dir: &std::path::Path, name: &str) -> Result<Self> {
        Ok(RawWriter {
            out: TempArtifact::create(dir, &format!("{name}.raw"))?,
        })
    }
}

/// Writes the non-zero grains of `batch` at their offsets in `out` (a sparse copy).
pub(crate) fn write_sparse(out: &mut TempArtifact, batch: &Batch, base: u64) -> Result<()> {
    let path = out.temp_path().to_path_buf();
    for (offset, _, bytes) in batch.data_grains() {
        let file = out.file();
        file.seek(SeekFrom::Start(base + offset))
            .at("seeking", &path)?;
        file.write_all(bytes).at("writing", &path)?;
    }
    Ok(())
}

impl DiskWriter for RawWriter {
    fn task(&self) -> &'static str {
        "raw"
    }

    fn consume(&mut self, batch: &Batch) -> Result<()> {
        write_sparse(&mut self.out, batch, 0)
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Result<Vec<Produced>> {
        let path = self.out.temp_path().to_path_buf();
        self.out
            .file()
            .set_len(ctx.virtual_size)
            .at("sizing", &path)?;
        let size = self.out.sync()?;
        Ok(vec![Produced::disk(
            self.out,
            Format::Raw,
            ImageFormat::Raw,
            size,
            ctx.content_digest,
        )])
    }
}
