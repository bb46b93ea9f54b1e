//! `geo` read model (being written).
