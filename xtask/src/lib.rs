//! xtask: crabcan's developer tasks as a library.
//!
//! The `xtask` binary (`cargo xtask ...`) is a thin clap front end over these
//! modules; the integration tests and the benchmarks call the rootfs API
//! ([`rootfs::ensure_rootfs`], [`rootfs::build_busybox_rootfs`],
//! [`rootfs::find_static_busybox`]) directly.

pub mod bench;
pub mod cmd;
pub mod paths;
pub mod rootfs;
pub mod util;
pub mod vm;

pub use rootfs::{
    build_busybox_rootfs, ensure_rootfs, find_static_busybox, RootfsError, RootfsKind, RootfsOptions, RootfsSource,
};
