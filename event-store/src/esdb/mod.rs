//! The KurrentDB / EventStoreDB backend (cargo feature `esdb`).
