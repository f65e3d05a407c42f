//! vSphere OVA: an OVF 1.x envelope, a `.mf` manifest and the streamOptimized VMDK, packed as
//! ustar in that order (formats.md §3). Written from the finished VMDK; read back with every
//! member checked against the manifest.

pub mod ovf;

pub use diskimg::ova::{manifest_text, ustar};

#[cfg(test)]
mod tests;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use diskimg::ImageFormat;

use crate::artifact::TempArtifact;
use crate::error::{Error, IoContext, Result};
use crate::format::{ExportOptions, Format};
use crate::pipeline::Produced;

/// The finished VMDK that goes into the OVA.
#[derive(Debug)]
pub struct OvaDisk<'a> {
    /// The VMDK temporary (read from the start).
    pub file: &'a mut TempArtifact,
    /// Its size.
    pub size: u64,
    /// Its SHA-256.
    pub sha256: [u8; 32],
}

/// Writes `dir/NAME.ova` from the finished VMDK.
pub fn write_ova(
    dir: &Path,
    options: &ExportOptions,
    virtual_size: u64,
    disk: OvaDisk<'_>,
) -> Result<Produced> {
    let name = &options.name;
    let (ovf_name, mf_name, disk_name) = (
        format!("{name}.ovf"),
        format!("{name}.mf"),
        format!("{name}.vmdk"),
    );
    let params = ovf::OvfParams {
        options,
        disk_file: &disk_name,
        disk_size: disk.size,
        capacity: virtual_size,
    };
    let ovf_text = ovf::envelope(&params);
    let ovf_digest: [u8; 32] = Sha256::digest(ovf_text.as_bytes()).into();
    let mf_text = manifest_text(&[(&ovf_name, &ovf_digest), (&disk_name, &disk.sha256)]);
    let mtime = options.source_date_epoch;

    let mut ova = TempArtifact::create(dir, &format!("{name}.ova"))?;
    let vmdk_path = disk.file.temp_path().to_path_buf();
    let (size, sha256) = ova.write_hashed(|out, ova_path| {
        for (member, bytes) in [
            (&ovf_name, ovf_text.as_bytes()),
            (&mf_name, mf_text.as_bytes()),
        ] {
            write_member_header(
                out,
                member,
                u64::try_from(bytes.len()).unwrap_or(u64::MAX),
                mtime,
                ova_path,
            )?;
            out.write_all(bytes).at("writing", ova_path)?;
            write_zeros(
                out,
                ustar::padding(u64::try_from(bytes.len()).unwrap_or(0)),
                ova_path,
            )?;
        }
        write_member_header(out, &disk_name, disk.size, mtime, ova_path)?;
        let vmdk = disk.file.file();
        vmdk.seek(SeekFrom::Start(0)).at("seeking", &vmdk_path)?;
        let copied =
            std::io::copy(&mut Read::take(&mut *vmdk, disk.size), out).at("copying", &vmdk_path)?;
        if copied != disk.size {
            return Err(Error::Pipeline(format!(
                "{} shrank while packing the OVA",
                vmdk_path.display()
            )));
        }
        write_zeros(out, ustar::padding(disk.size), ova_path)?;
        // End of archive: two zero blocks, then pad to whole 10 KiB records like GNU tar.
        let end = out.written() + 2 * ustar::BLOCK;
        write_zeros(
            out,
            2 * ustar::BLOCK + (ustar::RECORD - end % ustar::RECORD) % ustar::RECORD,
            ova_path,
        )
    })?;
    tracing::debug!(path = %ova.temp_path().display(), size, "ova written");
    Ok(Produced::disk(
        ova,
        Format::Ova,
        ImageFormat::Ova,
        size,
        sha256,
    ))
}

fn write_member_header(
    out: &mut impl Write,
    name: &str,
    size: u64,
    mtime: u64,
    path: &Path,
) -> Result<()> {
    out.write_all(&ustar::header(name, size, mtime).map_err(Error::Pipeline)?)
        .at("writing", path)?;
    Ok(())
}

fn write_zeros(out: &mut impl Write, mut count: u64, path: &Path) -> Result<()> {
    const ZEROS: [u8; 4096] = [0; 4096];
    while count > 0 {
        let n = usize::try_from(count.min(4096)).unwrap_or(4096);
        out.write_all(&ZEROS[..n]).at("writing", path)?;
        count -= u64::try_from(n).unwrap_or(count);
    }
    Ok(())
}
