//! `profiles` read model (being written).
