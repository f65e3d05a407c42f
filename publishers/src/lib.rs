//! `nodeimg publish`: a build (or export) output that `nodeimg verify` has passed, sent to a
//! cloud or registry through the service's own API, and what was made recorded.
//!
//! The command line (in `builder`) verifies the output first, refuses a target whose format
//! was not exported ([`Target::required_formats`]), calls the target's module, and writes the
//! returned [`Published`] into `publish.json` ([`record`]), last. Each target module:
//!
//! - finds what an earlier publish of the same content made (by the content-digest tag,
//!   label or metadata, see [`source::Source::labels`]) and then uploads nothing;
//! - uploads, then reads the data back through the same API and compares it with the
//!   artifact's digest before it registers anything;
//! - takes its endpoint and credentials from the ecosystem's standard places only, and never
//!   lets a secret reach an error, a log line or the record ([`secret::Secret`]);
//! - retries throttling, 5xx and unreachable endpoints a bounded number of times with backoff,
//!   printing each retry ([`retry`]).

pub mod aws;
pub mod azure;
pub mod error;
pub mod gcp;
pub mod oci;
pub mod record;
pub mod retry;
pub mod secret;
pub mod source;
pub mod target;
pub mod url;

pub use error::{Error, Result};
pub use record::{PublishRecord, Published};
pub use source::Source;
pub use target::Target;

/// The export's ready-to-run `govc`/`ovftool` commands (vSphere has no API nodeimg calls).
pub const VSPHERE_INSTRUCTIONS: &str = "import-vsphere.txt";

/// What every target module is given.
#[derive(Debug, Clone, Copy)]
pub struct Job<'a> {
    /// The verified output.
    pub source: &'a Source,
    /// `--stage NAME` (`dev`, `prod`, …): recorded, and part of the tags or labels that find
    /// an earlier publish, so the same build can be published once per stage.
    pub stage: Option<&'a str>,
}

/// Publishes `job` to `target`.
pub fn publish(job: &Job<'_>, target: &Target) -> Result<Published> {
    match target {
        Target::Vsphere => Err(Error::NoApi {
            target: "vsphere".into(),
            instructions: job.source.dir.join(VSPHERE_INSTRUCTIONS),
        }),
        Target::Azure { container } => azure::publish(job, container),
        Target::Oci { reference } => oci::publish(job, reference),
        Target::Gcp { bucket } => gcp::publish(job, bucket),
        Target::Aws => aws::publish(job),
    }
}
