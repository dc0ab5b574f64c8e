//! The fuzz targets' logic, shared by the cargo-fuzz targets and the stable regression test.
#![forbid(unsafe_code)]

pub mod targets;
