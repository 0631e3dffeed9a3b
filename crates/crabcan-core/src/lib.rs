//! crabcan-core (placeholder).
