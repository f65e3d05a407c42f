//! The bill of materials of a built image: the `bom.json` model ([`model`]), its CycloneDX 1.5
//! rendering ([`cyclonedx`]), the comparison of two BOMs ([`diff`]) and the offline
//! vulnerability scan's feed parsers and matcher ([`scan`]).
//!
//! Pure data and parsing: no file system, no processes, no terminal. The `nodeimg` command line
//! reads the files (with its size limits), collects the BOM in the build guest, and prints.

pub mod cyclonedx;
pub mod diff;
pub mod model;
pub mod scan;

pub use model::{BOM_FILE, Bom, BomError, SBOM_FILE};
