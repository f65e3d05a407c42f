//! `nodeimg`: the command line and build pipeline of the offline Kubernetes node image builder.
//! The binary is a thin wrapper over [`cli::main`].

mod boot;
pub mod build;
pub mod cli;
mod commands;
mod doctor;
mod interrupt;
mod phases;
mod progress;
pub mod spec;
