//! publishers' integration tests: the fixture build published to local emulators, one module
//! per target.

mod aws;
mod azure;
mod common;
mod gcp;
mod oci;
mod smoke;
