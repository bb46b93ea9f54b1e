//! Expression rules' evaluation cost (being written).
fn main() {}
