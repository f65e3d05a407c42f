//! `vhd`: a fixed VHD for Azure — the raw disk (written by [`super::raw::RawWriter`]) followed
//! by one 512-byte footer, written field for field as `qemu-img convert -O vpc -o
//! subformat=fixed,force_size` does, with the timestamp from SOURCE_DATE_EPOCH and the UUID
//! from the content digest.

use std::io::{Seek, SeekFrom, Write};

use sha2::Digest;

use diskimg::vhd::{VHD_EPOCH, fixed_footer};

use crate::artifact::TempArtifact;
use crate::error::{IoContext, Result};
use crate::ids::content_uuid;
use crate::pipeline::FinishContext;

/// Writes the fixed VHD footer after the raw copy of the disk in `out`; returns the SHA-256
/// of the whole file (the content followed by the footer).
pub(crate) fn append_footer(out: &mut TempArtifact, ctx: &FinishContext) -> Result<[u8; 32]> {
    let path = out.temp_path().to_path_buf();
    let timestamp = ctx.options.source_date_epoch.saturating_sub(VHD_EPOCH);
    let uuid = content_uuid(&ctx.content_digest, "vhd");
    let footer = fixed_footer(
        ctx.virtual_size,
        u32::try_from(timestamp).unwrap_or(u32::MAX),
        uuid,
    );
    let file = out.file();
    file.seek(SeekFrom::Start(ctx.virtual_size))
        .at("seeking", &path)?;
    file.write_all(&footer).at("writing footer of", &path)?;
    let mut hasher = ctx.content_hasher.clone();
    hasher.update(footer);
    Ok(hasher.finalize().into())
}
