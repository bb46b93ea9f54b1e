//! `alerts` read model (being written).
