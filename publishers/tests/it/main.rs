//! publishers' integration tests: the fixture build published to local emulators, one module
//! per target.

mod aws;
mod common;
mod smoke;
