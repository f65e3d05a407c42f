//! vSphere OVA: an OVF 1.x envelope, a `.mf` manifest and the streamOptimized VMDK, packed as
//! ustar in that order. (Stub: to be written.)

use std::path::Path;

use crate::error::{Error, Result};
use crate::formats::vmdk::VmdkImage;

/// Checks an OVA's structure (member order, ustar headers, manifest digests, `ovf:size`) and
/// opens the disk inside it.
pub fn open_disk(path: &Path) -> Result<VmdkImage> {
    Err(Error::corrupt(path, 0, "ova reader not written yet"))
}
