//! `raw`: a sparse copy of the virtual disk; zero grains stay holes. The fixed VHD is the same
//! copy with a footer after it ([`super::vhd`]), so one writer makes both.

use std::io::{Seek, SeekFrom, Write};

use diskimg::ImageFormat;

use crate::artifact::TempArtifact;
use crate::batch::Batch;
use crate::error::{IoContext, Result};
use crate::format::Format;
use crate::formats::vhd;
use crate::pipeline::{DiskWriter, FinishContext, Produced};

/// Writes `NAME.raw`, or `NAME.vhd` (the raw copy and the fixed VHD footer).
#[derive(Debug)]
pub struct RawWriter {
    out: TempArtifact,
    /// [`Format::Raw`] or [`Format::Vhd`].
    format: Format,
}

impl RawWriter {
    /// Starts `dir/NAME.raw`.
    pub fn new(dir: &std::path::Path, name: &str) -> Result<Self> {
        Self::start(dir, name, Format::Raw)
    }

    /// Starts `dir/NAME.vhd`: a fixed VHD.
    pub fn fixed_vhd(dir: &std::path::Path, name: &str) -> Result<Self> {
        Self::start(dir, name, Format::Vhd)
    }

    fn start(dir: &std::path::Path, name: &str, format: Format) -> Result<Self> {
        Ok(RawWriter {
            out: TempArtifact::create(dir, &format!("{name}.{}", format.name()))?,
            format,
        })
    }
}

/// Writes the non-zero grains of `batch` at their offsets in `out` (a sparse copy).
fn write_sparse(out: &mut TempArtifact, batch: &Batch) -> Result<()> {
    let path = out.temp_path().to_path_buf();
    for (offset, _, bytes) in batch.data_grains() {
        let file = out.file();
        file.seek(SeekFrom::Start(offset)).at("seeking", &path)?;
        file.write_all(bytes).at("writing", &path)?;
    }
    Ok(())
}

impl DiskWriter for RawWriter {
    fn task(&self) -> &'static str {
        self.format.name()
    }

    fn consume(&mut self, batch: &Batch) -> Result<()> {
        write_sparse(&mut self.out, batch)
    }

    fn finish(mut self: Box<Self>, ctx: &FinishContext) -> Result<Vec<Produced>> {
        let (container, sha256) = if self.format == Format::Vhd {
            (ImageFormat::Vhd, vhd::append_footer(&mut self.out, ctx)?)
        } else {
            let path = self.out.temp_path().to_path_buf();
            self.out
                .file()
                .set_len(ctx.virtual_size)
                .at("sizing", &path)?;
            (ImageFormat::Raw, ctx.content_digest)
        };
        let size = self.out.sync()?;
        Ok(vec![Produced::disk(
            self.out,
            self.format,
            container,
            size,
            sha256,
        )])
    }
}
