//! `nodeimg`: the command line and build pipeline of the offline Kubernetes node image builder.
//! The binary is a thin wrapper over [`cli::main`].

pub mod args;
pub mod audit;
mod bom_diff;
mod boot;
pub mod cli;
mod commands;
mod conformance_command;
mod doctor;
pub mod documents;
mod exit;
pub mod fetch;
pub mod image_check;
mod interrupt;
pub mod junit;
pub mod pipeline;
mod publish_command;
pub mod report;
mod scan;
pub mod untrusted;
