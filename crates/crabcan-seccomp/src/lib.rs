//! Seccomp profiles as data (placeholder: being written).
