//! `data_quality` read model (being written).
