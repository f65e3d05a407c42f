//! `--to TARGET`: where to publish, and which export each target needs.

use std::fmt;
use std::str::FromStr;

use exporters::Format;

use crate::error::Error;

/// A publish target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `aws`: an EBS snapshot through the EBS direct APIs, then an AMI. Region, endpoint and
    /// credentials from the AWS SDK's standard chain.
    Aws,
    /// `gcp:BUCKET`: the GCE tarball to Cloud Storage, then a Compute Engine image. Project
    /// from `GOOGLE_CLOUD_PROJECT` or the credentials file.
    Gcp {
        /// The Cloud Storage bucket.
        bucket: String,
    },
    /// `azure:CONTAINER`: the fixed VHD as a page blob, by SAS from the environment.
    Azure {
        /// The blob container.
        container: String,
    },
    /// `oci:HOST/REPOSITORY[:TAG]`: the disks as an OCI artifact at the reference, and a
    /// KubeVirt containerDisk at `TAG-containerdisk`.
    Oci {
        /// The reference as given.
        reference: String,
    },
    /// `vsphere`: no API here; the export's `import-vsphere.txt` has the commands.
    Vsphere,
}

const FORMS: &str = "one of aws, gcp:BUCKET, azure:CONTAINER, oci:HOST/REPOSITORY[:TAG], vsphere";

impl Target {
    /// The exports the target reads; a build without one of them is refused before anything
    /// is sent.
    pub fn required_formats(&self) -> &'static [Format] {
        match self {
            Target::Aws => &[Format::Aws],
            Target::Gcp { .. } => &[Format::Gce],
            Target::Azure { .. } => &[Format::Vhd],
            Target::Oci { .. } => &[Format::Qcow2],
            Target::Vsphere => &[Format::Ova],
        }
    }

    /// The target's kind: `aws`, `gcp`, `azure`, `oci`, `vsphere`.
    pub fn kind(&self) -> &'static str {
        match self {
            Target::Aws => "aws",
            Target::Gcp { .. } => "gcp",
            Target::Azure { .. } => "azure",
            Target::Oci { .. } => "oci",
            Target::Vsphere => "vsphere",
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Aws | Target::Vsphere => f.write_str(self.kind()),
            Target::Gcp { bucket } => write!(f, "gcp:{bucket}"),
            Target::Azure { container } => write!(f, "azure:{container}"),
            Target::Oci { reference } => write!(f, "oci:{reference}"),
        }
    }
}

impl FromStr for Target {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::BadTarget {
            given: s.to_owned(),
            why: why.to_owned(),
        };
        let (kind, rest) = match s.split_once(':') {
            Some((k, r)) => (k, Some(r)),
            None => (s, None),
        };
        let part = |what: &str, form: &str| match rest {
            Some(r) if !r.is_empty() => Ok(r.to_owned()),
            _ => Err(bad(&format!("{kind} needs {what}: {kind}:{form}"))),
        };
        match kind {
            "aws" | "vsphere" if rest.is_some() => {
                Err(bad(&format!("{kind} takes no argument ({FORMS})")))
            }
            "aws" => Ok(Target::Aws),
            "vsphere" => Ok(Target::Vsphere),
            "gcp" => {
                let bucket = part("a bucket", "BUCKET")?;
                if !bucket
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
                {
                    return Err(bad("a bucket name has only a-z, 0-9, '-', '_' and '.'"));
                }
                Ok(Target::Gcp { bucket })
            }
            "azure" => Ok(Target::Azure {
                container: part("a container", "CONTAINER")?,
            }),
            "oci" => {
                let reference = part("a reference", "HOST/REPOSITORY[:TAG]")?;
                if !reference.contains('/') {
                    return Err(bad(
                        "the reference needs a registry host: oci:HOST/REPOSITORY[:TAG]",
                    ));
                }
                Ok(Target::Oci { reference })
            }
            _ => Err(bad(&format!("unknown target; {FORMS}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse_and_print_back() {
        for s in [
            "aws",
            "gcp:my-bucket",
            "azure:images",
            "oci:127.0.0.1:5000/node/img:1",
            "vsphere",
        ] {
            let t: Target = s.parse().unwrap();
            assert_eq!(t.to_string(), s);
        }
        assert_eq!(
            "gcp:b".parse::<Target>().unwrap().required_formats(),
            [Format::Gce]
        );
    }

    #[test]
    fn bad_targets_say_what_is_accepted() {
        for (s, want) in [
            ("s3", "unknown target; one of aws"),
            ("gcp", "gcp needs a bucket: gcp:BUCKET"),
            ("gcp:", "gcp needs a bucket"),
            ("gcp:Bad_Bucket", "only a-z"),
            ("aws:eu", "aws takes no argument"),
            ("oci:repo", "needs a registry host"),
        ] {
            let e = s.parse::<Target>().unwrap_err().to_string();
            assert!(
                e.starts_with(&format!("--to {s}: ")) && e.contains(want),
                "{s}: {e}"
            );
        }
    }
}
