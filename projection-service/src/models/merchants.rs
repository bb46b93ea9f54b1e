//! `merchants` read model (being written).
