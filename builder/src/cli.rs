//! The `nodeimg` command: the subcommands assembled from [`crate::args`], logging set up,
//! each dispatched to its module, the outcome turned into an exit code ([`crate::exit`]).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::args::{
    AuditArgs, BomDiffArgs, BootArgs, BuildArgs, ConformanceArgs, DoctorArgs, ExportArgs,
    FetchArgs, InspectArgs, PublishArgs, ScanArgs, VerifyArgs,
};
use crate::{commands, exit};

/// nodeimg — build Kubernetes node VM images offline and export them to every cloud.
#[derive(Debug, Parser)]
#[command(name = "nodeimg", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Build a node image from a spec and its lock, offline: provision, validate, seal, boot
    /// test (with an offline `kubeadm init`), export to every format.
    Build(BuildArgs),
    /// Export a golden raw disk to raw, qcow2, VHD, OVA, GCE and AWS artifacts in one pass.
    Export(ExportArgs),
    /// Re-read every artifact of an export and check it against its manifest.
    Verify(VerifyArgs),
    /// Send a verified build or export to a cloud or registry through its own API (AWS EBS
    /// direct + RegisterImage, Cloud Storage + images.insert, an Azure page blob, an OCI
    /// registry) and record what was made in publish.json.
    Publish(PublishArgs),
    /// Show a disk image's format, sizes and GPT partitions.
    Inspect(InspectArgs),
    /// Check a disk image's seal offline, reading its ext4 root filesystem in place (no boot,
    /// no mount): empty machine-id, no SSH host keys, no build user, no cloud-init instance
    /// data, histories, private keys or core dumps, empty apt lists, a small /var/log.
    Audit(AuditArgs),
    /// Boot a qcow2 or raw cloud image (never modified: the guest writes to an overlay) with a
    /// fresh NoCloud seed and no outbound network, wait until it is ready, run commands over
    /// SSH, power it off.
    Boot(BootArgs),
    /// Run Kubernetes' node conformance suite on an existing image (never modified: it boots
    /// through an overlay, offline), with the test suite and images a spec's lock pins.
    Conformance(ConformanceArgs),
    /// Check that this host can build and boot images: QEMU, UEFI firmware, accelerator,
    /// qemu-img, free disk space.
    Doctor(DoctorArgs),
    /// Download the base image and every pinned artifact and image, verify their checksums,
    /// store them in the cache and write the spec's lock (the only step that uses the network).
    Fetch(FetchArgs),
    /// Work with bills of materials (`bom.json` in a build's output).
    #[command(subcommand)]
    Bom(BomCommand),
    /// Match a BOM's distro packages and components against offline advisory feeds (Debian
    /// security tracker JSON, OSV) and list the vulnerabilities a later version fixes.
    Scan(ScanArgs),
}

/// `nodeimg bom …`.
#[derive(Debug, Subcommand)]
pub enum BomCommand {
    /// Show what was added, removed and changed between two builds: packages, components,
    /// images, configuration, inputs. Exit 0 when identical, 1 when different, 2 on error
    /// (each BOM must be a regular file of at most 1 GiB).
    Diff(BomDiffArgs),
}

/// Parses the command line, runs it, and turns the outcome into an exit code: 0 success,
/// 1 failure (bad input, mismatch), 2 usage error. `audit` has its own: 0 all checks pass,
/// 1 a check failed, 2 the disk cannot be read.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // A build shows its own progress; library logs would interleave with it.
    init_logging(if matches!(cli.command, Command::Build(_)) {
        "warn"
    } else {
        "info"
    });
    let result = match cli.command {
        Command::Build(args) => crate::pipeline::run(&args),
        Command::Export(args) => commands::export(&args),
        Command::Verify(args) => commands::verify(&args),
        Command::Publish(args) => crate::publish_command::run(&args),
        Command::Inspect(args) => commands::inspect(&args),
        Command::Audit(args) => return commands::audit(&args),
        Command::Boot(args) => crate::boot::boot(&args),
        Command::Conformance(args) => crate::conformance_command::run(&args),
        Command::Doctor(args) => crate::doctor::run(&args),
        Command::Fetch(args) => crate::fetch::run(&args),
        Command::Bom(BomCommand::Diff(args)) => return commands::bom_diff(&args),
        Command::Scan(args) => return crate::scan::run(&args),
    };
    exit::from_result(result)
}

/// Crates (tracing targets) whose logs are capped at `warn`: the AWS SDK's runtime, signer and
/// clients, and Google's auth library.
const CREDENTIAL_LOGGERS: [&str; 10] = [
    "aws_config",
    "aws_runtime",
    "aws_sigv4",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_sdk_ebs",
    "aws_sdk_ec2",
    "aws_sdk_sts",
    "google_cloud_auth",
];

fn init_logging(default: &str) {
    let mut filter = tracing_subscriber::EnvFilter::try_from_env("NODEIMG_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    // The cloud SDKs' own logs show parts of credentials (an access key id in a signing
    // scope) at info and debug: they are kept to warnings whatever NODEIMG_LOG asks for.
    for quiet in CREDENTIAL_LOGGERS {
        if let Ok(d) = format!("{quiet}=warn").parse() {
            filter = filter.add_directive(d);
        }
    }
    // Colour only for a terminal: a log file or a pipe gets plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
