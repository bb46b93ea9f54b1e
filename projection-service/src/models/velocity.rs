//! `velocity` read model (being written).
