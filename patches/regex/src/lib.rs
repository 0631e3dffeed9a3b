//! The `regex` crate as crabcan's binary links it: [regex-lite](https://docs.rs/regex-lite)
//! under `regex`'s name, through `[patch.crates-io]` in the workspace's `Cargo.toml`.
//!
//! Why: oci-spec checks one field with one pattern (`process.execCPUAffinity`,
//! `^(\d+(-\d+)?)(,\d+(-\d+)?)*$`), and for that it depends on the full `regex` with its
//! default features. Those bring regex-syntax's Unicode tables: ~11,000 pointers that the
//! static-pie loader relocates on every start, across ~35 pages that each take a copy-on-write
//! fault, whatever the command line (a direct-mode run never parses an OCI config). regex-lite
//! (by regex's authors) has the same API for what oci-spec calls, without Unicode classes.
//!
//! What it changes: `\d` in that one pattern matches ASCII digits only (with `regex` it also
//! matched other scripts' decimal digits, which are no CPU numbers). The library crates as
//! published keep depending on the real `regex` through oci-spec: the patch applies to builds
//! of this workspace only.

pub use regex_lite::*;
