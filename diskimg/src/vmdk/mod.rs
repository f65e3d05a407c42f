//! streamOptimized VMDK (version 3, zlib grains, markers, end-of-stream): the sparse extent
//! header layout (shared with the exporters' writer) and the reader.

pub mod descriptor;
mod reader;

pub use reader::VmdkImage;
