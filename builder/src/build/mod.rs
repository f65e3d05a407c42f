//! `nodeimg build` (issue 4, in progress): the pipeline's phases, one module each.

pub mod workdisk;
