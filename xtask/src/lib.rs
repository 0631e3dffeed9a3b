//! xtask library (placeholder).
