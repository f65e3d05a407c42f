//! The bill of materials' guest side: collected from the build guest after provisioning
//! (`collect`). The model, CycloneDX, diff and scan live in the `bom` crate.

pub mod collect;
