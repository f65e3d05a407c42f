//! One short text file per cloud (with the format it belongs to) with the exact import commands for the artifacts.

use crate::format::{ExportOptions, Firmware, Format, GIB};

/// `(file name, text)` for every cloud whose format was requested.
pub fn import_instructions(
    options: &ExportOptions,
    virtual_size: u64,
    sizes: &[(String, u64)],
) -> Vec<(Format, String, String)> {
    let name = &options.name;
    let size_of = |file: &str| sizes.iter().find(|(f, _)| f == file).map_or(0, |(_, s)| *s);
    let uefi = options.firmware == Firmware::Uefi;
    let mut out = Vec::new();
    if options.wants(Format::Aws) {
        out.push((
            Format::Aws,
            "import-aws.txt".to_string(),
            format!(
                "# AWS: upload the streamOptimized VMDK, import it as a snapshot, register an AMI.\n\
                 aws s3 cp {name}.vmdk s3://BUCKET/{name}.vmdk\n\
                 # edit aws-import.json: set S3Bucket (and S3Key if you changed it)\n\
                 aws ec2 import-snapshot --disk-container file://aws-import.json\n\
                 aws ec2 wait snapshot-imported --import-task-ids IMPORT_TASK_ID\n\
                 aws ec2 describe-import-snapshot-tasks --import-task-ids IMPORT_TASK_ID\n\
                 # put the SnapshotId into register-image.json in place of snap-REPLACE-ME, then:\n\
                 aws ec2 register-image --cli-input-json file://register-image.json\n"
            ),
        ));
    }
    if options.wants(Format::Gce) {
        let features = if uefi {
            " --guest-os-features=UEFI_COMPATIBLE,VIRTIO_SCSI_MULTIQUEUE,GVNIC"
        } else {
            " --guest-os-features=VIRTIO_SCSI_MULTIQUEUE,GVNIC"
        };
        out.push((
            Format::Gce,
            "import-gce.txt".to_string(),
            format!(
                "# GCE: upload the tarball, create the image ({} GiB disk.raw).\n\
                 gcloud storage cp {name}.tar.gz gs://BUCKET/{name}.tar.gz\n\
                 gcloud compute images create {gce_name} --source-uri=gs://BUCKET/{name}.tar.gz --architecture=X86_64{features}\n",
                virtual_size / GIB,
                gce_name = name.to_ascii_lowercase().replace(['.', '_', '+'], "-"),
            ),
        ));
    }
    if options.wants(Format::Vhd) {
        let vhd = format!("{name}.vhd");
        let generation = if uefi { "V2" } else { "V1" };
        out.push((
            Format::Vhd,
            "import-azure.txt".to_string(),
            format!(
                "# Azure: create an empty managed disk of the exact VHD file size, upload, make an image.\n\
                 az disk create -g RESOURCE_GROUP -n {name} --os-type Linux --hyper-v-generation {generation} --upload-type Upload --upload-size-bytes {size}\n\
                 SAS=$(az disk grant-access -g RESOURCE_GROUP -n {name} --access-level Write --duration-in-seconds 86400 --query accessSas -o tsv)\n\
                 azcopy copy {vhd} \"$SAS\" --blob-type PageBlob\n\
                 az disk revoke-access -g RESOURCE_GROUP -n {name}\n\
                 az image create -g RESOURCE_GROUP -n {name} --os-type Linux --hyper-v-generation {generation} --source {name}\n",
                size = size_of(&vhd),
            ),
        ));
    }
    if options.wants(Format::Ova) {
        out.push((
            Format::Ova,
            "import-vsphere.txt".to_string(),
            format!(
                "# vSphere: import the OVA as a VM (then mark it a template if you like).\n\
                 govc import.spec {name}.ova > {name}.spec.json\n\
                 govc import.ova -options {name}.spec.json -ds DATASTORE -pool RESOURCE_POOL -name {name} {name}.ova\n\
                 govc vm.markastemplate {name}\n"
            ),
        ));
    }
    out
}
