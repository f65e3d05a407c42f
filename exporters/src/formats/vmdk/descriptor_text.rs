//! The embedded descriptor of the streamOptimized VMDK this crate writes: its text, its
//! content ids and the padded block (the header layout lives in [`diskimg::vmdk::descriptor`]).

use diskimg::vmdk::descriptor::{DESCRIPTOR_SECTORS, DESCRIPTOR_SIGNATURE};

use crate::batch::SECTOR;
use crate::error::{Error, Result};
use crate::ids::{content_uuid, vmdk_cid};

/// The content ids of a disk: `CID` and `ddb.longContentID` (32 hex ending in the CID).
pub fn content_ids(content_digest: &[u8; 32]) -> (u32, String) {
    let cid = vmdk_cid(content_digest);
    let long = content_uuid(content_digest, "vmdk-long-content-id");
    (cid, format!("{}{cid:08x}", hex::encode(&long[..12])))
}

/// The embedded descriptor text (formats.md §2.2) for `capacity` sectors in file `extent`.
pub fn descriptor_text(capacity: u64, extent: &str, content_digest: &[u8; 32]) -> String {
    let (cid, long) = content_ids(content_digest);
    let cylinders = capacity.div_ceil(255 * 63).min(65535);
    format!(
        "{DESCRIPTOR_SIGNATURE}\n\
         version=1\n\
         encoding=\"UTF-8\"\n\
         CID={cid:08x}\n\
         parentCID=ffffffff\n\
         createType=\"streamOptimized\"\n\
         \n\
         # Extent description\n\
         RW {capacity} SPARSE \"{extent}\"\n\
         \n\
         # The Disk Data Base\n\
         #DDB\n\
         \n\
         ddb.adapterType = \"lsilogic\"\n\
         ddb.geometry.cylinders = \"{cylinders}\"\n\
         ddb.geometry.heads = \"255\"\n\
         ddb.geometry.sectors = \"63\"\n\
         ddb.longContentID = \"{long}\"\n\
         ddb.toolsInstallType = \"4\"\n\
         ddb.toolsVersion = \"2147483647\"\n\
         ddb.virtualHWVersion = \"4\"\n"
    )
}

/// The descriptor text as stored: NUL-padded to exactly [`DESCRIPTOR_SECTORS`] sectors.
pub fn descriptor_block(text: &str) -> Result<Vec<u8>> {
    let len = usize::try_from(DESCRIPTOR_SECTORS * SECTOR).unwrap_or(usize::MAX);
    if text.len() >= len {
        return Err(Error::Pipeline(format!(
            "VMDK descriptor of {} bytes does not fit in {len}",
            text.len()
        )));
    }
    let mut block = vec![0u8; len];
    block[..text.len()].copy_from_slice(text.as_bytes());
    Ok(block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_ids_follow_the_content() {
        let text = descriptor_text(2049, "n.vmdk", &[5; 32]);
        let (cid, long) = content_ids(&[5; 32]);
        assert!(text.starts_with("# Disk DescriptorFile\n"));
        assert!(text.contains(&format!("CID={cid:08x}\n")));
        assert_eq!(long.len(), 32);
        assert!(long.ends_with(&format!("{cid:08x}")));
        assert!(text.contains("RW 2049 SPARSE \"n.vmdk\"\n"));
        assert!(text.contains("ddb.geometry.cylinders = \"1\"\n"));
        assert_ne!(content_ids(&[6; 32]).1, long);
        assert_eq!(descriptor_block(&text).unwrap().len(), 10240);
    }
}
