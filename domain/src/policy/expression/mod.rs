//! Expression rules: CEL over `tx.*` and `f.*` (being written).
