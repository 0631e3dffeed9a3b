//! Container cgroups (placeholder: being written).
