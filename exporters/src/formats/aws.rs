//! AWS: `aws-import.json` (import-snapshot disk container) and `register-image.json`
//! (register-image input with a placeholder snapshot id) next to the VMDK (formats.md §5).

use std::path::Path;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::{ExportOptions, Firmware, Format, GIB};
use crate::pipeline::Produced;
use crate::pipeline::metadata_artifact;

/// File name of the import-snapshot disk container.
pub const IMPORT_FILE: &str = "aws-import.json";
/// File name of the register-image input.
pub const REGISTER_FILE: &str = "register-image.json";
/// Placeholder bucket in `aws-import.json`.
pub const BUCKET_PLACEHOLDER: &str = "REPLACE-ME-BUCKET";
/// Placeholder snapshot id in `register-image.json`.
pub const SNAPSHOT_PLACEHOLDER: &str = "snap-REPLACE-ME";

/// `aws ec2 import-snapshot --disk-container file://aws-import.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DiskContainer {
    /// Free text.
    pub description: String,
    /// Always `VMDK`.
    pub format: &'static str,
    /// Where the VMDK is uploaded.
    pub user_bucket: UserBucket,
}

/// The S3 location of the uploaded disk.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct UserBucket {
    /// Bucket (placeholder).
    pub s3_bucket: String,
    /// Key: the VMDK's file name.
    pub s3_key: String,
}

/// `aws ec2 register-image --cli-input-json file://register-image.json`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RegisterImage {
    /// AMI name (3–128 allowed characters).
    pub name: String,
    /// Free text.
    pub description: String,
    /// `x86_64`.
    pub architecture: &'static str,
    /// `hvm`.
    pub virtualization_type: &'static str,
    /// `/dev/xvda`.
    pub root_device_name: &'static str,
    /// The root volume from the imported snapshot.
    pub block_device_mappings: Vec<BlockDeviceMapping>,
    /// ENA networking.
    pub ena_support: bool,
    /// `simple`.
    pub sriov_net_support: &'static str,
    /// `uefi` or `legacy-bios`.
    pub boot_mode: &'static str,
    /// `v2.0`: IMDSv2 only.
    pub imds_support: &'static str,
}

/// One block device mapping.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct BlockDeviceMapping {
    /// Device name.
    pub device_name: &'static str,
    /// The EBS volume.
    pub ebs: Ebs,
}

/// The EBS volume of a mapping.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct Ebs {
    /// Snapshot id (placeholder until the import finished).
    pub snapshot_id: String,
    /// GiB, at least the disk.
    pub volume_size: u64,
    /// `gp3`.
    pub volume_type: &'static str,
    /// Delete with the instance.
    pub delete_on_termination: bool,
}

/// An AMI name from `name`: characters outside `A-Za-z0-9()[] ./-'@_` become `-`, padded to
/// 3 and cut to 128 characters.
pub fn ami_name(name: &str) -> String {
    let ok = |c: char| c.is_ascii_alphanumeric() || "()[] ./-'@_".contains(c);
    let mut out: String = name
        .chars()
        .map(|c| if ok(c) { c } else { '-' })
        .take(128)
        .collect();
    while out.len() < 3 {
        out.push('-');
    }
    out
}

/// Volume size in GiB for a disk of `virtual_size` bytes: rounded up, at least 1.
pub fn volume_size_gib(virtual_size: u64) -> u64 {
    virtual_size.div_ceil(GIB).max(1)
}

/// The two documents, as pretty JSON with a trailing newline.
pub fn documents(
    options: &ExportOptions,
    virtual_size: u64,
) -> serde_json::Result<(String, String)> {
    let name = &options.name;
    let description = format!("{name} (nodeimg export)");
    let import = DiskContainer {
        description: description.clone(),
        format: "VMDK",
        user_bucket: UserBucket {
            s3_bucket: BUCKET_PLACEHOLDER.into(),
            s3_key: format!("{name}.vmdk"),
        },
    };
    let register = RegisterImage {
        name: ami_name(name),
        description,
        architecture: "x86_64",
        virtualization_type: "hvm",
        root_device_name: "/dev/xvda",
        block_device_mappings: vec![BlockDeviceMapping {
            device_name: "/dev/xvda",
            ebs: Ebs {
                snapshot_id: SNAPSHOT_PLACEHOLDER.into(),
                volume_size: volume_size_gib(virtual_size),
                volume_type: "gp3",
                delete_on_termination: true,
            },
        }],
        ena_support: true,
        sriov_net_support: "simple",
        boot_mode: match options.firmware {
            Firmware::Uefi => "uefi",
            Firmware::Bios => "legacy-bios",
        },
        imds_support: "v2.0",
    };
    let import = serde_json::to_string_pretty(&import)? + "\n";
    let register = serde_json::to_string_pretty(&register)? + "\n";
    Ok((import, register))
}

/// Writes `aws-import.json` and `register-image.json` into `dir`.
pub fn aws_metadata(
    dir: &Path,
    options: &ExportOptions,
    virtual_size: u64,
) -> Result<Vec<Produced>> {
    let (import, register) = documents(options, virtual_size)
        .map_err(|e| Error::Pipeline(format!("serializing AWS JSON: {e}")))?;
    Ok(vec![
        metadata_artifact(dir, IMPORT_FILE, import.as_bytes(), Format::Aws)?,
        metadata_artifact(dir, REGISTER_FILE, register.as_bytes(), Format::Aws)?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_have_the_expected_fields_in_order() {
        let mut options = ExportOptions::new("node+1.30");
        options.firmware = Firmware::Bios;
        let (import, register) = documents(&options, GIB + 512).unwrap();
        assert!(import.ends_with("}\n"));
        let v: serde_json::Value = serde_json::from_str(&import).unwrap();
        assert_eq!(v["Format"], "VMDK");
        assert_eq!(v["UserBucket"]["S3Key"], "node+1.30.vmdk");
        assert_eq!(v["UserBucket"]["S3Bucket"], BUCKET_PLACEHOLDER);
        let r: serde_json::Value = serde_json::from_str(&register).unwrap();
        assert_eq!(r["Name"], "node-1.30");
        assert_eq!(r["BootMode"], "legacy-bios");
        assert_eq!(r["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"], 2);
        assert_eq!(
            r["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"],
            SNAPSHOT_PLACEHOLDER
        );
        assert_eq!(
            r["RootDeviceName"],
            r["BlockDeviceMappings"][0]["DeviceName"]
        );
        let order: Vec<usize> = [
            "\"Name\"",
            "\"Architecture\"",
            "\"BlockDeviceMappings\"",
            "\"ImdsSupport\"",
        ]
        .iter()
        .map(|k| register.find(k).unwrap())
        .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "key order changed");
        options.firmware = Firmware::Uefi;
        assert!(
            documents(&options, 1)
                .unwrap()
                .1
                .contains("\"BootMode\": \"uefi\"")
        );
        assert_eq!(volume_size_gib(0), 1);
        assert_eq!(volume_size_gib(GIB), 1);
        assert_eq!(ami_name("t"), "t--");
    }
}
