//! The command line's arguments, one clap `Args` struct per subcommand, with their value
//! parsers. `cli.rs` assembles them into the `nodeimg` command and dispatches; each
//! command's module reads its struct from here (so no command module imports the CLI).

use std::path::PathBuf;

use clap::Args;
use clap::builder::{PossibleValuesParser, TypedValueParser};
use exporters::{Firmware, Format};
use qemu::accel::AccelChoice;

/// `nodeimg bom diff`.
#[derive(Debug, Args)]
pub struct BomDiffArgs {
    /// The older build: its output directory or its `bom.json`.
    pub a: PathBuf,
    /// The newer build: its output directory or its `bom.json`.
    pub b: PathBuf,
    /// Print the differences as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `nodeimg scan`.
#[derive(Debug, Args)]
#[command(
    after_help = "Feeds (kind detected per file): the Debian security tracker's JSON export \
                  (security-tracker.debian.org/tracker/data/json), matched by source package and \
                  the image's VERSION_CODENAME with Debian version ordering; OSV records (one \
                  record, an array, or {\"vulns\": [...]}) of the Go ecosystem, matched to the \
                  components (kubeadm/kubelet/kubectl: k8s.io/kubernetes, containerd, runc, \
                  cni_plugins, crictl), and of the Debian ecosystem, matched like the tracker.\n\n\
                  Listed: issues fixed in a version later than the installed one, open issues \
                  (\"no fix yet\") and undetermined ones. Severity scale: unknown < unimportant \
                  < low < medium < high < critical (Debian urgency; OSV/GHSA severity, else \
                  the CVSS v3 base score's rating).\n\n\
                  Exit status: 0 nothing at or above --fail-on (always 0 without it), 1 some \
                  finding at or above it (open issues count by their severity), 2 bad input \
                  (the error line names the file and the fault; the BOM and every feed must be \
                  regular files of at most 1 GiB)."
)]
pub struct ScanArgs {
    /// A bom.json, or a build output directory holding one.
    pub bom: PathBuf,
    /// An advisory feed file (repeatable).
    #[arg(long = "feed", value_name = "FILE", required = true)]
    pub feeds: Vec<PathBuf>,
    /// Print one JSON document (findings, summary, notes) instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Exit 1 when some finding is at or above this severity [default: never].
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<bom::scan::Severity>,
}

/// `nodeimg fetch`.
#[derive(Debug, Args)]
pub struct FetchArgs {
    /// The build spec; the lock is written next to it (`NAME.toml` → `NAME.lock`).
    pub spec: PathBuf,
    /// Download everything from this mirror instead: `https://HOST/PATH` is fetched as
    /// `URL/HOST/PATH`, and images from the registry API at URL's scheme and host
    /// [default: the spec's `[fetch] mirror`, else upstream].
    #[arg(long, value_name = "URL")]
    pub mirror: Option<String>,
    /// The cache directory [default: $NODEIMG_CACHE, else $XDG_CACHE_HOME/nodeimg, else
    /// ~/.cache/nodeimg].
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    /// Give up on one attempt at a request after this long without progress: to connect, to
    /// get the response headers, and between two reads of the body (`90`, `90s`, `5m`, `2h`).
    /// A failed attempt is logged and retried (up to 5 times).
    #[arg(long, value_name = "DURATION", default_value = "30s",
          value_parser = inputs::fetch::http::parse_duration)]
    pub timeout: std::time::Duration,
    /// Give up on an artifact after this long, all its requests and attempts together (raise
    /// it on a slow link).
    #[arg(long, value_name = "DURATION", default_value = "30m",
          value_parser = inputs::fetch::http::parse_duration)]
    pub deadline: std::time::Duration,
    /// Resolve the distro packages against the archive again, even when the lock's set was
    /// resolved from the same inputs and is cached (a fetch otherwise keeps it, downloading
    /// nothing): picks up the archive's security updates.
    #[arg(long)]
    pub refresh_packages: bool,
}

/// `nodeimg boot`.
#[derive(Debug, Args)]
pub struct BootArgs {
    /// A qcow2 or raw cloud image (cloud-init with the NoCloud datasource, UEFI-bootable).
    pub image: PathBuf,
    /// A shell command to run in the guest as the build user (repeatable, in order; stops at
    /// the first non-zero exit). Without any, the guest stays up until Ctrl-C.
    #[arg(long = "exec", value_name = "CMD")]
    pub exec: Vec<String>,
    /// After the commands, keep the guest running (and print how to reach it) until Ctrl-C.
    #[arg(long)]
    pub keep: bool,
    /// Accelerator: auto probes whether KVM really runs a guest, else uses TCG.
    #[arg(long, default_value = "auto")]
    pub accel: AccelChoice,
    /// Guest memory in MiB.
    #[arg(long, default_value_t = 2048)]
    pub memory: u32,
    /// Guest vCPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
    /// Seconds from QEMU's start until the guest must report ready (cloud-init done).
    #[arg(long, default_value_t = 600)]
    pub ready_timeout: u64,
    /// Where the VM directory (overlay, seed, key, logs, sockets) is created [default: $TMPDIR or /tmp].
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// The build user created by cloud-init.
    #[arg(long, default_value = "builder", value_parser = user_name)]
    pub user: String,
    /// The guest's hostname.
    #[arg(long, default_value = "nodeimg-boot")]
    pub hostname: String,
}

/// The guests of a build or a conformance run: accelerator, memory, vCPUs.
#[derive(Debug, Clone, Copy, Args)]
pub struct GuestArgs {
    /// Accelerator: auto probes whether KVM really runs a guest, else uses TCG.
    #[arg(long, default_value = "auto")]
    pub accel: AccelChoice,
    /// Guest memory in MiB (at least 1024: a node's).
    #[arg(long, default_value_t = 4096)]
    pub memory: u32,
    /// Guest vCPUs.
    #[arg(long, default_value_t = 2)]
    pub cpus: u32,
}

impl GuestArgs {
    /// Refuses sizes no node boots with.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.cpus == 0 {
            anyhow::bail!("--cpus must be at least 1");
        }
        if self.memory < 1024 {
            anyhow::bail!("--memory {}: a node needs at least 1024 MiB", self.memory);
        }
        Ok(())
    }
}

/// `nodeimg conformance`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads SPEC's lock and the cache for the test suite and its images (a lock with \
                  them: `make-disk fixture-spec DIR --conformance` for the fixtures). Writes \
                  OUT/conformance.junit.xml and OUT/conformance.json. Exit 0 when every focused \
                  test passed (or was skipped by name offline), 1 otherwise."
)]
pub struct ConformanceArgs {
    /// A qcow2 or raw node image (cloud-init with the NoCloud datasource, UEFI-bootable): a
    /// build's golden.raw, or its qcow2.
    pub image: PathBuf,
    /// The spec whose lock pins the test suite and images.
    #[arg(long)]
    pub spec: PathBuf,
    /// The quick subset (the default): pods, probes, volumes, security context, lifecycle
    /// hooks, logs.
    #[arg(long)]
    pub quick: bool,
    /// Every [NodeConformance] test of the suite's version.
    #[arg(long)]
    pub full: bool,
    /// Where the reports go (created if missing).
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// The artifact cache [default: $NODEIMG_CACHE, else ~/.cache/nodeimg].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// The guests' accelerator and size.
    #[command(flatten)]
    pub guest: GuestArgs,
    /// Print JSON event lines on stdout instead of drawing progress.
    #[arg(long)]
    pub json: bool,
}

/// `nodeimg build`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads SPEC, its lock (SPEC with the extension .lock, written by `nodeimg fetch`) and the \
                  cache; never the network. Writes OUT/NAME/: golden.raw, the exported artifacts, \
                  validation.junit.xml, build.log, serial.log, boot-test-serial.log, SHA256SUMS and \
                  manifest.json (last). A failed build leaves OUT/.NAME.partial/ (no manifest) for \
                  inspection. The spec and the lock must be regular files of at most 4 MiB; every \
                  [[files]] source is checked (a readable regular file) before anything is written.\n\nEnvironment: NODEIMG_CACHE (the cache), SOURCE_DATE_EPOCH (timestamps \
                  in the exports), NODEIMG_QEMU."
)]
pub struct BuildArgs {
    /// The build spec (TOML).
    pub spec: PathBuf,
    /// Where the output directory OUT/NAME is created.
    #[arg(long, default_value = "out")]
    pub out: PathBuf,
    /// The artifact cache [default: $NODEIMG_CACHE, else ~/.cache/nodeimg].
    #[arg(long)]
    pub cache: Option<PathBuf>,
    /// The guests' accelerator and size.
    #[command(flatten)]
    pub guest: GuestArgs,
    /// Run every check even after one failed (the build still fails).
    #[arg(long)]
    pub keep_going: bool,
    /// Skip the offline `kubeadm init` in the boot test.
    #[arg(long)]
    pub no_kubeadm_test: bool,
    /// Run Kubernetes' node conformance suite in the boot test: `quick` (pods, probes,
    /// volumes, security context, lifecycle hooks, logs: about ten minutes under TCG), `full`
    /// (every [NodeConformance] test) or `off` [default: the spec's `kubernetes.conformance`,
    /// else off]. Needs the test suite and images in the lock (`nodeimg fetch`).
    #[arg(long, value_name = "off|quick|full")]
    pub conformance: Option<ConformanceChoice>,
    /// Print JSON event lines on stdout instead of drawing progress.
    #[arg(long)]
    pub json: bool,
    /// Check the inputs, render and check the plan, print its phases and steps (with --json
    /// every script too); no VM, nothing written.
    #[arg(long)]
    pub dry_run: bool,
}

/// `--conformance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ConformanceChoice {
    /// No conformance run.
    Off,
    /// The quick subset.
    Quick,
    /// Every node conformance test.
    Full,
}

impl ConformanceChoice {
    /// The scope it asks for (`None`: off).
    pub fn scope(self) -> Option<distros::node_conformance::Scope> {
        use distros::node_conformance::Scope;
        match self {
            ConformanceChoice::Off => None,
            ConformanceChoice::Quick => Some(Scope::Quick),
            ConformanceChoice::Full => Some(Scope::Full),
        }
    }
}

/// `nodeimg export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The golden raw disk.
    pub disk: PathBuf,
    /// Output directory (created if missing).
    #[arg(long)]
    pub out: PathBuf,
    /// Base name of the artifacts [default: the disk's file stem].
    #[arg(long)]
    pub name: Option<String>,
    /// Formats to write, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "raw,qcow2,vhd,ova,gce,aws"
    )]
    pub formats: Vec<Format>,
    /// Firmware the image boots with (OVF firmware setting, AWS boot mode, Azure generation).
    #[arg(long, default_value = "uefi")]
    pub firmware: Firmware,
    /// Deflate-compress qcow2 clusters.
    #[arg(long)]
    pub compress: bool,
    /// Grow the exported copy to the next whole GiB (moving the backup GPT) instead of refusing
    /// a size a requested cloud rejects.
    #[arg(long)]
    pub pad: bool,
    /// A version string for the OVF product properties, as KEY=VALUE (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Print the manifest as JSON on stdout and draw no progress.
    #[arg(long)]
    pub json: bool,
}

/// `nodeimg verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// An export's output directory (holding manifest.json).
    pub dir: PathBuf,
    /// Print the report as JSON and draw no progress.
    #[arg(long)]
    pub json: bool,
}

/// `nodeimg publish`.
#[derive(Debug, Args)]
#[command(
    after_help = "Targets: aws (EBS snapshot through the EBS direct APIs, then an AMI), \
                  gcp:BUCKET (Cloud Storage, then a Compute Engine image), azure:CONTAINER (a \
                  page blob by SAS), oci:HOST/REPOSITORY[:TAG] (an OCI artifact of the disks and \
                  a KubeVirt containerDisk at TAG-containerdisk), vsphere (prints the export's \
                  govc/ovftool commands: no API is called). Endpoints and credentials come from \
                  each ecosystem's standard places: the AWS SDK's chain (environment, \
                  AWS_PROFILE, web identity, AWS_ENDPOINT_URL); Google application default \
                  credentials, GOOGLE_CLOUD_PROJECT, STORAGE_EMULATOR_HOST, \
                  CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE; AZURE_STORAGE_CONNECTION_STRING or \
                  AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_SAS_TOKEN; the Docker/Podman auth \
                  files. The output is verified first; what was made is recorded in publish.json."
)]
pub struct PublishArgs {
    /// A build's or export's output directory (holding manifest.json).
    pub dir: PathBuf,
    /// Where to publish (see below).
    #[arg(long, value_name = "TARGET", value_parser = parse_target)]
    pub to: publishers::Target,
    /// A stage name (`dev`, `prod`, …: 1–20 of a-z, 0-9, '-', starting with a letter),
    /// recorded and part of the names and tags, so a build can be published once per stage.
    #[arg(long, value_name = "NAME", value_parser = parse_stage)]
    pub stage: Option<String>,
    /// Print the record of this publish as JSON and draw no progress.
    #[arg(long)]
    pub json: bool,
}

fn parse_target(s: &str) -> Result<publishers::Target, String> {
    s.parse().map_err(|e: publishers::Error| e.to_string())
}

fn parse_stage(s: &str) -> Result<String, String> {
    let ok = (1..=20).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(s.to_owned())
    } else {
        Err("a stage is 1 to 20 of a-z, 0-9 and '-', starting with a letter".into())
    }
}

/// `nodeimg inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// A raw, qcow2, vhd, vmdk, ova or GCE tar.gz file.
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `nodeimg audit`.
#[derive(Debug, Args)]
#[command(
    after_help = "Reads the disk read-only: the GPT, then the ext4 filesystem of the Linux root (or Linux \
                  filesystem data) partition through nodeimg's own ext4 reader. Prints `ok` or `FAIL` for \
                  each check, with the paths found under each failure (file names escaped). A walk \
                  that cannot finish (deeper than 256 levels, more than 5 million entries) fails \
                  its check.\n\nExit status: 0 when every check \
                  passes, 1 when a check fails, 2 when the disk cannot be read (no GPT, no Linux \
                  partition, not ext4, corrupt or unsupported filesystem; one `error:` line names the file \
                  and what is wrong) or the command line is wrong."
)]
pub struct AuditArgs {
    /// The disk image: raw or qcow2 (vmdk, vhd and ova are read too).
    pub disk: PathBuf,
    /// Also write the checks as a JUnit XML report to FILE (atomically).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// The build user the seal deletes (a Linux user name: 1–32 of `a-z 0-9 _ -`, not
    /// starting with a digit or `-`).
    #[arg(long, value_name = "NAME", default_value = distros::BUILD_USER, value_parser = user_name)]
    pub build_user: String,
    /// Most bytes the regular files under /var/log may hold together.
    #[arg(long, value_name = "BYTES", default_value_t = crate::audit::DEFAULT_VAR_LOG_LIMIT)]
    pub var_log_limit: u64,
}

/// `nodeimg doctor`.
#[derive(Debug, Args)]
#[command(
    after_help = "Environment:\n  NODEIMG_QEMU=PATH  use this qemu-system-x86_64 instead of searching $PATH, /usr/bin and \
                        /usr/libexec (doctor and boot)\n\nExit status: 0 when a build can run here (TCG only is fine), 1 when \
                        something required is missing (the error line says what to install)."
)]
pub struct DoctorArgs {
    /// Print one JSON document (every check and an overall `ok`) and nothing else on stdout.
    #[arg(long)]
    pub json: bool,
    /// Directory whose free space to check [default: the system temporary directory, where
    /// VM directories go].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Accelerator: auto probes KVM by running a tiny guest (up to 3 s) and falls back to TCG.
    #[arg(
        long,
        default_value = "auto",
        value_parser = accel_choice_parser()
    )]
    pub accel: AccelChoice,
}

/// A user name as `useradd` accepts it by default (`[a-z_][a-z0-9_-]*`, at most 32
/// characters); anything else (an empty name, a space, a `:`) would make every check that
/// looks for the user meaningless.
fn user_name(text: &str) -> Result<String, String> {
    if qemu::seed::is_user_name(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "{:?} is not a user name: 1 to 32 of a-z, 0-9, _ and -, starting with a letter or _",
            text
        ))
    }
}

/// The `--accel` value parser: auto, kvm or tcg (listed in `--help` and in usage errors).
pub fn accel_choice_parser() -> impl TypedValueParser<Value = AccelChoice> {
    PossibleValuesParser::new(["auto", "kvm", "tcg"]).try_map(|s| s.parse::<AccelChoice>())
}

/// `SOURCE_DATE_EPOCH` from the environment, or the fixed default; refused when negative, not
/// a number, or later than every export format can record.
pub fn source_date_epoch() -> anyhow::Result<u64> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => exporters::format::parse_source_date_epoch(&v).map_err(anyhow::Error::msg),
        Err(std::env::VarError::NotPresent) => Ok(exporters::format::DEFAULT_SOURCE_DATE_EPOCH),
        Err(e) => anyhow::bail!("SOURCE_DATE_EPOCH: {e}"),
    }
}
