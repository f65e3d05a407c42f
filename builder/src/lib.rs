//! `nodeimg`: the command line and build pipeline of the offline Kubernetes node image builder.
//! The binary is a thin wrapper over [`cli::main`].

pub mod atomic;
pub mod audit;
pub mod bom;
mod boot;
/// The build's progress and log (its new home is the progress module; the pipeline is
/// [`pipeline`]).
pub mod build {
    pub mod report;
}
pub mod cache;
pub mod cli;
mod commands;
mod doctor;
pub mod documents;
pub mod fetch;
pub mod image_check;
mod interrupt;
pub mod junit;
pub mod located;
pub mod lock;
mod phases;
pub mod pipeline;
mod progress;
pub mod spec;
pub mod untrusted;
