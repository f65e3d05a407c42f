//! The bill of materials: collected from the build guest after provisioning (`collect`),
//! written as `bom.json` (`model`) and as a CycloneDX 1.5 SBOM (`cyclonedx`), compared between
//! builds (`diff`) and matched against advisory feeds (`scan`).

pub mod collect;
pub mod cyclonedx;
pub mod diff;
pub mod model;
pub mod scan;

pub use model::{BOM_FILE, Bom, BomError, SBOM_FILE};
