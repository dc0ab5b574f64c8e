//! What Cairn's tests and benchmarks share, so that each suite does not grow its own copy: a
//! server directory made one way ([`ServerDir`]) and started either in this process
//! ([`LocalServer`]) or as a real `cairn-server` process ([`ServerProcess`]); a TCP relay that
//! counts the bytes it carries and can cut or slow connections ([`Relay`]); the office's
//! admission of a device ([`admit`]); the path of a workspace binary, built on first use
//! ([`bin`]); and a small file system to fill up ([`SmallDisk`]).
//!
//! Test code only (`publish = false`): it panics on any failure, as a test should, and no
//! product crate may depend on it.

mod bin;
mod disk;
mod relay;
mod roster;
mod server;

pub use bin::bin;
pub use disk::SmallDisk;
pub use relay::Relay;
pub use roster::{admit, roster};
pub use server::{LocalServer, ServerDir, ServerProcess};
